//! A user's [`Rules`] as RBAC objects (ClusterRoles, Roles and their bindings) for the resources
//! the server serves, created before the tests run and in effect before `start()` returns.

use super::Real;
use super::client::{Discovery, JSON};
use crate::auth::Rules;
use crate::util::meta_str;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// The RBAC objects that give `user` what `rules` allow, for the resources the server serves.
pub(super) fn rbac_objects(user: &str, rules: &Rules, disc: &Discovery, namespaces: &[String]) -> Vec<Value> {
    const VERBS: [&str; 8] =
        ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    let mut seen = HashSet::new();
    let mut resources: Vec<(&str, &str, bool)> = Vec::new();
    for r in &disc.res {
        if seen.insert((r.group.as_str(), r.plural.as_str())) {
            resources.push((&r.group, &r.plural, r.namespaced));
        }
    }
    let verbs_for = |group: &str, plural: &str| -> Vec<&'static str> {
        let mut v = VERBS.to_vec();
        if matches!((group, plural), ("", "users" | "groups" | "serviceaccounts")) {
            v.push("impersonate");
        }
        v
    };
    let collect = |ns: Option<&str>| -> Vec<Value> {
        let mut by: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (group, plural, namespaced) in &resources {
            if ns.is_some() && !namespaced {
                continue;
            }
            for verb in verbs_for(group, plural) {
                let here = rules.allows(verb, plural, ns);
                let everywhere = ns.is_some() && rules.allows(verb, plural, None);
                if here && !everywhere {
                    by.entry((group.to_string(), verb.to_string())).or_default().push(plural.to_string());
                }
            }
        }
        by.into_iter().map(|((g, v), rs)| json!({"apiGroups": [g], "resources": rs, "verbs": [v]})).collect()
    };
    let name = format!("milvus-test:{user}");
    let subject = json!([{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]);
    let mut out = Vec::new();
    let cluster = collect(None);
    if !cluster.is_empty() {
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": cluster}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}));
    }
    for ns in namespaces {
        let rules = collect(Some(ns));
        if rules.is_empty() {
            continue;
        }
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": ns}, "rules": rules}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}}));
    }
    out
}

impl Real {
    /// Users and their rules as RBAC objects; returns once the authorizer enforces them.
    pub(super) fn grant(&self, users: &[(String, Rules)], namespaces: &[String]) -> Result<(), String> {
        let disc = self.h.disc();
        let mut probes = Vec::new();
        for (user, rules) in users {
            if user == "admin" {
                continue;
            }
            for o in rbac_objects(user, rules, &disc, namespaces) {
                self.create(&o)?;
                if let Some(rule) = o.pointer("/rules/0") {
                    let ns = meta_str(&o, "namespace").to_string();
                    probes.push((user.clone(), ns, rule.clone()));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (user, ns, rule) in probes {
            let attrs = json!({
                "group": rule["apiGroups"][0], "resource": rule["resources"][0],
                "verb": rule["verbs"][0], "namespace": ns,
            });
            let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "resourceAttributes": attrs}});
            loop {
                let v = self.call_ok(
                    "POST",
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    Some((&review, JSON)),
                )?;
                if v.pointer("/status/allowed").and_then(Value::as_bool) == Some(true) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("RBAC for {user} not in effect after 30s"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real::client::ApiRes;
    use std::collections::HashMap;

    #[test]
    fn rules_become_rbac() {
        let disc = Discovery {
            res: vec![
                ApiRes {
                    group: "".into(),
                    version: "v1".into(),
                    plural: "pods".into(),
                    kind: "Pod".into(),
                    namespaced: true,
                },
                ApiRes {
                    group: "milvus.io".into(),
                    version: "v1beta1".into(),
                    plural: "milvuses".into(),
                    kind: "Milvus".into(),
                    namespaced: true,
                },
                ApiRes {
                    group: "".into(),
                    version: "v1".into(),
                    plural: "users".into(),
                    kind: "User".into(),
                    namespaced: false,
                },
            ],
            preferred: HashMap::new(),
        };
        let objs =
            rbac_objects("v", &Rules::read_only().deny("list", "milvuses"), &disc, &["default".into()]);
        assert_eq!(objs.len(), 2, "{objs:#?}");
        let rules = objs[0]["rules"].to_string();
        assert!(
            rules.contains(r#"{"apiGroups":["milvus.io"],"resources":["milvuses"],"verbs":["get"]}"#),
            "{rules}"
        );
        assert!(!rules.contains(r#""resources":["milvuses"],"verbs":["list"]"#), "{rules}");
        assert!(!rules.contains("impersonate"), "{rules}");
        let ns = rbac_objects(
            "v",
            &Rules::none().allow_in("default", &["list"], &["pods"]),
            &disc,
            &["default".into(), "prod".into()],
        );
        assert_eq!(ns.len(), 2);
        assert_eq!(ns[0]["kind"], "Role");
        assert_eq!(ns[0]["metadata"]["namespace"], "default");
    }
}
