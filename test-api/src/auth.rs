//! Bearer-token authentication and per-user authorisation rules.

use crate::util;

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    verbs: Vec<String>,
    resources: Vec<String>,
    namespaces: Option<Vec<String>>,
}

/// What a user may do. Deny rules win over allow rules; anything not allowed is forbidden.
///
/// Verbs are the Kubernetes ones: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
/// Resources are plurals (`pods`, `milvuses`, `horizontalpodautoscalers`), subresources are
/// `deployments/scale`, and `*` matches everything (`*` does not match subresources unless written
/// `*/scale` or `deployments/*`, as in RBAC). Namespace-limited rules never grant cluster-wide
/// requests (like a RoleBinding).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Rules {
    /// Nothing allowed.
    pub fn none() -> Self {
        Rules::default()
    }

    /// Everything allowed (cluster-admin).
    pub fn admin() -> Self {
        Rules::none().allow(&["*"], &["*", "*/*"])
    }

    /// `get`, `list`, `watch` on every resource and subresource, everywhere.
    pub fn read_only() -> Self {
        Rules::none().allow(&["get", "list", "watch"], &["*", "*/*"])
    }

    /// Allow `verbs` on `resources` in every namespace and at the cluster scope.
    pub fn allow(mut self, verbs: &[&str], resources: &[&str]) -> Self {
        self.rules.push(Rule {
            allow: true,
            verbs: strings(verbs),
            resources: strings(resources),
            namespaces: None,
        });
        self
    }

    /// Allow `verbs` on `resources` only inside `namespace`.
    pub fn allow_in(mut self, namespace: &str, verbs: &[&str], resources: &[&str]) -> Self {
        self.rules.push(Rule {
            allow: true,
            verbs: strings(verbs),
            resources: strings(resources),
            namespaces: Some(vec![namespace.to_string()]),
        });
        self
    }

    /// Deny `verb` on `resource` everywhere (`*` allowed for either).
    pub fn deny(mut self, verb: &str, resource: &str) -> Self {
        self.rules.push(Rule {
            allow: false,
            verbs: vec![verb.into()],
            resources: vec![resource.into()],
            namespaces: None,
        });
        self
    }

    /// Deny `verb` on `resource` inside `namespace` only.
    pub fn deny_in(mut self, namespace: &str, verb: &str, resource: &str) -> Self {
        self.rules.push(Rule {
            allow: false,
            verbs: vec![verb.into()],
            resources: vec![resource.into()],
            namespaces: Some(vec![namespace.to_string()]),
        });
        self
    }

    /// Deny every mutating verb (`create`, `update`, `patch`, `delete`, `deletecollection`) on everything.
    pub fn deny_writes(self) -> Self {
        ["create", "update", "patch", "delete", "deletecollection"]
            .iter()
            .fold(self, |r, v| r.deny(v, "*").deny(v, "*/*"))
    }

    /// Is `verb` on `resource` (plural or `plural/sub`) in `namespace` (None = cluster scope) allowed?
    pub fn allows(&self, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        let applies = |r: &Rule, deny: bool| {
            let verb_ok = r.verbs.iter().any(|v| v == "*" || v == verb);
            let res_ok = r.resources.iter().any(|p| resource_matches(p, resource));
            let ns_ok = match (&r.namespaces, namespace) {
                (None, _) => true,
                (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
                // a namespaced deny also covers a cluster-wide request that would include it
                (Some(_), None) => deny,
            };
            verb_ok && res_ok && ns_ok
        };
        if self.rules.iter().any(|r| !r.allow && applies(r, true)) {
            return false;
        }
        self.rules.iter().any(|r| r.allow && applies(r, false))
    }
}

fn resource_matches(pattern: &str, resource: &str) -> bool {
    let (pr, ps) = match pattern.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (pattern, None),
    };
    let (rr, rs) = match resource.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (resource, None),
    };
    let main_ok = pr == "*" || pr == rr;
    let sub_ok = match (ps, rs) {
        (None, None) => true,
        (Some(p), Some(s)) => p == "*" || p == s,
        _ => false,
    };
    main_ok && sub_ok
}

/// A user known to the server.
#[derive(Debug, Clone)]
pub struct User {
    /// User name (also the kubeconfig context and user entry name).
    pub name: String,
    /// Bearer token.
    pub token: String,
    /// Authorisation rules.
    pub rules: Rules,
}

/// A short, non-reversible fingerprint of a credential for the request log.
pub fn fingerprint(token: &str) -> String {
    format!("fnv64:{:016x}", util::fnv64(&["token-fingerprint", token]))
}

/// Generate a token that is unique per server instance.
pub fn new_token(user: &str, seed: &str) -> String {
    let a = util::fnv64(&[user, seed, "a"]);
    let b = util::fnv64(&[user, seed, "b"]);
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let viewer = Rules::read_only().deny("list", "milvuses");
        assert!(viewer.allows("list", "pods", Some("default")));
        assert!(viewer.allows("get", "deployments/scale", Some("default")));
        assert!(!viewer.allows("list", "milvuses", Some("default")));
        assert!(!viewer.allows("patch", "deployments", Some("default")));
        assert!(Rules::admin().allows("patch", "deployments/scale", None));
        let ns = Rules::none().allow_in("default", &["get", "list"], &["pods"]);
        assert!(ns.allows("list", "pods", Some("default")));
        assert!(!ns.allows("list", "pods", None));
        assert!(!ns.allows("list", "pods", Some("prod")));
        let d = Rules::admin().deny_in("prod", "list", "secrets");
        assert!(d.allows("list", "secrets", Some("default")));
        assert!(!d.allows("list", "secrets", Some("prod")));
        assert!(!d.allows("list", "secrets", None));
        let ro = Rules::admin().deny_writes();
        assert!(!ro.allows("patch", "deployments/scale", Some("x")));
        assert!(ro.allows("get", "deployments/scale", Some("x")));
    }
}
