//! The ClusterRole shipped in deploy/rbac.yaml is exactly enough for list and status.

use serde_json::Value;

use crate::support::*;

/// The rules of deploy/rbac.yaml, as test-API rules, leaving out the rule for `skip` (a resource name).
fn shipped_rules(skip: Option<&str>) -> Rules {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).expect("rbac.yaml");
    let role: Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(role["kind"], "ClusterRole");
    let mut rules = Rules::none();
    for rule in role["rules"].as_array().expect("rules") {
        let strings = |key: &str| -> Vec<String> {
            rule[key].as_array().expect(key).iter().filter_map(|v| v.as_str().map(String::from)).collect()
        };
        let verbs = strings("verbs");
        for resource in strings("resources") {
            if Some(resource.as_str()) == skip {
                continue;
            }
            let verbs: Vec<&str> = verbs.iter().map(String::as_str).collect();
            rules = rules.allow(&verbs, &[resource.as_str()]);
        }
    }
    rules
}

fn api_with(rules: Rules) -> TestApi {
    TestApi::builder()
        .age(AGE)
        .fixture("helm/coordinators-hpa.yaml")
        .helm_install(true)
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "default")
        .user("milvus-viewer", rules)
        .start()
}

fn as_viewer(api: &TestApi, args: &[&str]) -> Run {
    run_via(Via::Kubectl, Some(&api.kubeconfig_for("milvus-viewer")), args)
}

#[test]
fn the_shipped_role_is_enough_for_every_read_command() {
    let api = api_with(shipped_rules(None));
    let admin_list = run(&api, &["list", "-A"]).success();
    let list = as_viewer(&api, &["list", "-A"]).success();
    assert_eq!(list.stdout, admin_list.stdout);
    assert_eq!(list.stderr, "");
    let status = as_viewer(&api, &["status", "my-release"]).success();
    assert_eq!(status.stdout, run(&api, &["status", "my-release"]).success().stdout);
    assert_eq!(status.stderr, "");
    as_viewer(&api, &["version"]).success();
}

#[test]
fn each_rule_removed_is_named_in_the_message() {
    // Required kinds: an error naming the resource and verb.
    for resource in ["deployments", "statefulsets"] {
        let api = api_with(shipped_rules(Some(resource)));
        let out = as_viewer(&api, &["status", "my-release"]).failure(1);
        assert!(
            out.stderr.contains(&format!("cannot list resource \"{resource}\" in API group \"apps\"")),
            "{resource}: {}",
            out.stderr
        );
    }
    // Optional kinds: a warning naming the resource, the rest of the report intact.
    for (resource, qualified) in [
        ("pods", "pods"),
        ("horizontalpodautoscalers", "horizontalpodautoscalers.autoscaling"),
        ("milvuses", "milvuses.milvus.io"),
    ] {
        let api = api_with(shipped_rules(Some(resource)));
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            out.stdout.contains(&format!("cannot list {qualified} in the namespace \"default\"")),
            "{resource}: {}",
            out.stdout
        );
        assert!(
            out.stdout.contains(&format!("cannot list resource \"{resource}\"")),
            "{resource}: {}",
            out.stdout
        );
    }
}
