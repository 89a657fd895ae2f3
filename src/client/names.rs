//! Names the user types, checked as the API server would check them, before any request: a namespace
//! is an RFC 1123 label, a release name an RFC 1123 subdomain that is also a valid label value (it is
//! matched as `app.kubernetes.io/instance`). Nothing unchecked reaches a URL path or a label selector.

const LABEL_HINT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', \
and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation \
is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const SUBDOMAIN_HINT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation \
is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// `Err` with the API server's wording unless `namespace` is an RFC 1123 label.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    if is_label(namespace) {
        Ok(())
    } else {
        Err(format!("invalid namespace {}: {LABEL_HINT}", quoted(namespace)))
    }
}

/// A release name (Helm release or `Milvus` object): an RFC 1123 subdomain of at most 63 characters, so
/// that it is also the value of the `app.kubernetes.io/instance` label.
pub fn check_release_name(name: &str) -> Result<(), String> {
    let valid = name.len() <= 63 && name.split('.').all(is_label);
    if valid {
        Ok(())
    } else if name.len() > 63 {
        Err(format!("invalid release name {}: must be no more than 63 characters", quoted(name)))
    } else {
        Err(format!("invalid release name {}: {SUBDOMAIN_HINT}", quoted(name)))
    }
}

/// clap value parser for a RELEASE argument.
pub fn parse_release_name(name: &str) -> Result<String, String> {
    check_release_name(name).map(|()| name.to_string())
}

/// `"text"` with control characters escaped, for messages about what the user typed.
pub fn quoted(text: &str) -> String {
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_labels() {
        for ok in ["default", "a", "team-1", "0", &"a".repeat(63)] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "Bad NS", "../kube-system", "-a", "a-", "a_b", "A", "a.b", &"a".repeat(64), "a\u{1b}[31m"]
        {
            let error = check_namespace(bad).err().unwrap_or_default();
            assert!(error.starts_with("invalid namespace"), "{bad}: {error}");
            assert!(!error.contains('\u{1b}'), "control characters are escaped: {error}");
        }
    }

    #[test]
    fn release_names_are_subdomains_and_label_values() {
        for ok in ["my-release", "vdb.prod", "r1", &"a".repeat(63)] {
            assert!(check_release_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "My-Release", "a b", "a,b=c", "x)", "../x", "-x", &"a".repeat(64), "a..b"] {
            assert!(check_release_name(bad).is_err(), "{bad}");
        }
    }
}
