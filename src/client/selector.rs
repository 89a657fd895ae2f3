//! `-l/--selector`: Kubernetes label-selector syntax, parsed as the API server parses it (the
//! `label-selector` crate of this workspace, shared with the test API) and matched in memory: a release
//! spans objects with different labels, so one server-side selector cannot express "releases whose
//! workloads match".

pub use label_selector::Selector;

/// clap value parser: `a=b,c!=d,e in (f,g),h notin (i),j,!k`, with the API server's error wording.
pub fn parse(text: &str) -> Result<Selector, String> {
    Selector::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_operator_matches_like_the_api_server() {
        let labels: BTreeMap<String, String> = [("app", "milvus"), ("tier", "db"), ("team", "search")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (text, expected) in [
            ("app=milvus", true),
            ("app!=milvus", false),
            ("tier in (db,cache)", true),
            ("missing notin (db)", true),
            ("!team", false),
            ("app=milvus,tier=web", false),
            ("", true),
        ] {
            let selector = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.matches(&labels), expected, "{text}");
        }
        for text in ["app in db", "app in (db", "a b=c", "=x"] {
            assert!(parse(text).is_err(), "{text} should be rejected");
        }
    }
}
