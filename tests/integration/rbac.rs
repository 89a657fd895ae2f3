//! The ClusterRoles shipped in deploy/rbac.yaml are exactly enough for each command.

use crate::support::*;

/// The rules of the ClusterRole `name` in deploy/rbac.yaml, as test-API rules, leaving out `skip`
/// (a resource, or `verb resource`).
fn role_rules(name: &str, skip: Option<&str>) -> Rules {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac.yaml")).expect("rbac.yaml");
    let role = milvus_test_api::parse_yaml_docs(&text)
        .expect("yaml")
        .into_iter()
        .find(|doc| doc["kind"] == "ClusterRole" && doc["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("ClusterRole {name} in deploy/rbac.yaml"));
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
            let verbs: Vec<&str> = verbs
                .iter()
                .map(String::as_str)
                .filter(|v| Some(format!("{v} {resource}").as_str()) != skip)
                .collect();
            if !verbs.is_empty() {
                rules = rules.allow(&verbs, &[resource.as_str()]);
            }
        }
    }
    rules
}

fn shipped_rules(skip: Option<&str>) -> Rules {
    role_rules("kubectl-milvus-viewer", skip)
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
    // Ages tick between the runs on a real server (its objects cannot be backdated).
    assert_eq!(without_ages(&list.stdout), without_ages(&admin_list.stdout));
    assert_eq!(list.stderr, "");
    let status = as_viewer(&api, &["status", "my-release"]).success();
    let admin_status = run(&api, &["status", "my-release"]).success();
    // The viewer reads no Secrets: its owner line cannot name the Helm revision; the rest is the same.
    let owner_line = |s: &str| s.lines().find(|l| l.starts_with("Owner:")).map(str::to_string);
    assert_eq!(owner_line(&status.stdout).as_deref(), Some("Owner:      Helm release my-release"));
    assert_eq!(
        owner_line(&admin_status.stdout).as_deref(),
        Some("Owner:      Helm release my-release rev 1")
    );
    let others = |s: &str| {
        without_ages(&s.lines().filter(|l| !l.starts_with("Owner:")).collect::<Vec<_>>().join("\n"))
    };
    assert_eq!(others(&status.stdout), others(&admin_status.stdout));
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

#[test]
fn without_pods_proxy_status_warns_that_milvus_own_view_is_not_shown() {
    for role in ["kubectl-milvus-viewer", "kubectl-milvus-scaler"] {
        let api = api_with(role_rules(role, Some("pods/proxy")));
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            out.stdout.contains("not shown: not allowed to get pods/proxy in namespace default"),
            "{role}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("Components"), "{role}: {}", out.stdout);
        // With the rule, Milvus is asked (here nothing answers its routes, which the warning says).
        let api = api_with(role_rules(role, None));
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(out.stdout.contains("answers none of Milvus's HTTP routes"), "{role}: {}", out.stdout);
    }
}

#[test]
fn without_configmaps_status_warns_that_the_configuration_is_not_read() {
    for role in ["kubectl-milvus-viewer", "kubectl-milvus-scaler"] {
        let api = api_with(role_rules(role, Some("configmaps")));
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            out.stdout.contains(
                "cannot get configmaps in the namespace \"default\": the release's Milvus configuration"
            ),
            "{role}: {}",
            out.stdout
        );
        let api = api_with(role_rules(role, None));
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(!out.stdout.contains("configmaps"), "{role}: {}", out.stdout);
    }
}

/// A release with 3 query nodes whose pods have time to drain, a fake Milvus, and the scaler role
/// without `skip`.
fn drainable(skip: Option<&str>) -> (TestApi, FakeMilvus) {
    let milvus = FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 6);
    let mut docs = fixture_docs("helm/default.yaml");
    for d in &mut docs {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == "my-release-milvus-querynode" {
            d["spec"]["replicas"] = serde_json::json!(3);
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = serde_json::json!(1900);
        }
    }
    let api = TestApi::builder()
        .age(AGE)
        .objects(docs)
        .milvus(&milvus)
        .user("milvus-viewer", role_rules("kubectl-milvus-scaler", skip))
        .start();
    (api, milvus)
}

#[test]
fn the_scaler_role_is_enough_for_a_drained_scale_in_and_each_rule_removed_is_named() {
    let (api, milvus) = drainable(None);
    as_viewer(&api, &["scale", "my-release", "querynode=2", "--timeout", "60s"]).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    assert!(milvus.requests().iter().any(|r| r.path.ends_with("/node/suspend")));

    let (api, milvus) = drainable(Some("create pods/proxy"));
    let out = as_viewer(&api, &["scale", "my-release", "querynode=2", "--timeout", "60s"]).failure(1);
    assert!(out.stderr.contains("not allowed to create pods/proxy in namespace default"), "{}", out.stderr);
    assert!(milvus.requests().iter().all(|r| r.method == "GET"));
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 3);

    let (api, milvus) = drainable(Some("patch pods"));
    let out = as_viewer(&api, &["scale", "my-release", "querynode=2", "--timeout", "60s"]).failure(1);
    assert!(out.stderr.contains("cannot mark pod"), "{}", out.stderr);
    assert!(out.stderr.contains("resumed"), "{}", out.stderr);
    assert!(milvus.query_nodes().iter().all(|(_, _, state)| state == "active"));
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 3);
}

#[test]
fn the_scaler_role_is_enough_to_scale_helm_and_operator_releases() {
    let api = api_with(role_rules("kubectl-milvus-scaler", None));
    let helm =
        as_viewer(&api, &["scale", "my-release", "datanode=3", "--wait", "--timeout", "60s"]).success();
    assert!(!helm.stderr.contains("could not be checked"), "the Helm record is readable: {}", helm.stderr);
    assert!(helm.stdout.contains("secret/sh.helm.release.v1.my-release.v2 created"), "{}", helm.stdout);
    assert_eq!(crate::helm_record::revisions(&api), [(1, "superseded".into()), (2, "deployed".into())]);
    as_viewer(&api, &["scale", "vectors", "datanode=1", "--dry-run=server"]).success();
    as_viewer(&api, &["scale", "vectors", "datanode=1"]).success();
    as_viewer(&api, &["list", "-A"]).success();
    as_viewer(&api, &["status", "vectors"]).success();
}

#[test]
fn the_scaler_role_without_patch_fails_naming_the_permission() {
    let api = api_with(role_rules("kubectl-milvus-scaler", Some("patch deployments")));
    let out = as_viewer(&api, &["scale", "my-release", "datanode=3"]).failure(1);
    assert!(
        out.stderr.contains("cannot patch resource \"deployments\" in API group \"apps\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("datanode: not changed (2)"), "{}", out.stderr);
    let api = api_with(role_rules("kubectl-milvus-scaler", Some("patch milvuses")));
    let out = as_viewer(&api, &["scale", "vectors", "datanode=1"]).failure(1);
    assert!(
        out.stderr.contains("cannot patch resource \"milvuses\" in API group \"milvus.io\""),
        "{}",
        out.stderr
    );
}

#[test]
fn the_scaler_role_without_writing_secrets_scales_the_workloads_alone() {
    for skip in ["create secrets", "update secrets"] {
        let api = api_with(role_rules("kubectl-milvus-scaler", Some(skip)));
        let out = as_viewer(&api, &["scale", "my-release", "datanode=3"]).success();
        assert!(
            out.stderr.contains("the Helm release my-release still records dataNode.replicas=2"),
            "{skip}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("--reuse-values --set dataNode.replicas=3"), "{skip}: {}", out.stderr);
        assert_eq!(
            crate::helm_record::revisions(&api),
            [(1, "deployed".into())],
            "{skip}: nothing half-written"
        );
        assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 3, "{skip}");
        let json = as_viewer(&api, &["scale", "my-release", "datanode=4", "-o", "json"]).success().json();
        let reason = json["helm"]["record"]["reason"].as_str().unwrap_or_default().to_string();
        let verb = skip.split(' ').next().unwrap_or_default();
        assert!(reason.contains(&format!("cannot {verb} resource \"secrets\"")), "{skip}: {reason}");
    }
}

#[test]
fn the_scaler_role_changes_autoscaler_bounds_and_without_patch_names_the_permission() {
    let api = api_with(role_rules("kubectl-milvus-scaler", None));
    as_viewer(&api, &["scale", "my-release", "querynode", "--max", "6"]).success();
    let api = api_with(role_rules("kubectl-milvus-scaler", Some("patch horizontalpodautoscalers")));
    let out = as_viewer(&api, &["scale", "my-release", "querynode", "--max", "6"]).failure(1);
    assert!(
        out.stderr
            .contains("cannot patch resource \"horizontalpodautoscalers\" in API group \"autoscaling\""),
        "{}",
        out.stderr
    );
    // Nothing of Helm's record is left behind: its new revision is marked failed.
    assert_eq!(crate::helm_record::revisions(&api), [(1, "deployed".into()), (2, "failed".into())]);
}

#[test]
fn the_scaler_role_without_deleting_secrets_keeps_old_revisions_and_says_so() {
    let api = api_with(role_rules("kubectl-milvus-scaler", Some("delete secrets")));
    let scale = |target: &str| {
        let output = command(
            Via::Binary,
            Some(&api.kubeconfig_for("milvus-viewer")),
            &["scale", "my-release", target],
        )
        .env("HELM_MAX_HISTORY", "2")
        .output()
        .expect("run");
        Run::from(output).success()
    };
    scale("datanode=3");
    let out = scale("datanode=4");
    assert!(
        out.stderr.contains(
            "revision 1 of the Helm release my-release could not be deleted to keep Helm's history limit of 2"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        crate::helm_record::revisions(&api),
        [(1, "superseded".into()), (2, "superseded".into()), (3, "deployed".into())]
    );
}

#[test]
fn the_scaler_role_without_watch_fails_the_wait_naming_the_permission() {
    // Waiting follows the release with watches: listing alone is not enough.
    // The new pod is slow to start, so that the wait has to follow it.
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/coordinators-hpa.yaml")
        .helm_install(true)
        .scale_up_ready_delay(std::time::Duration::from_secs(30))
        .user("milvus-viewer", role_rules("kubectl-milvus-scaler", Some("watch pods")))
        .start();
    let out =
        as_viewer(&api, &["scale", "my-release", "datanode=3", "--wait", "--timeout", "60s"]).failure(1);
    assert!(out.stderr.contains("cannot watch resource \"pods\""), "{}", out.stderr);
    assert!(!out.stderr.contains("timed out"), "refused, not timed out: {}", out.stderr);
}

#[test]
fn the_shipped_roles_read_gitops_objects_and_without_them_still_name_them() {
    use crate::owners::{argo_release, flux_release, status_line};
    for role in ["kubectl-milvus-viewer", "kubectl-milvus-scaler"] {
        let api = argo_release().user("milvus-viewer", role_rules(role, None)).start();
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            status_line(&out.stdout).ends_with("Argo CD application milvus (auto-sync, self-heal)"),
            "{role}: {}",
            out.stdout
        );
        let api = argo_release().user("milvus-viewer", role_rules(role, Some("applications"))).start();
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            status_line(&out.stdout).ends_with(
                "Argo CD application milvus (details not readable: forbidden to get applications.argoproj.io in namespace argocd)"
            ),
            "{role}: {}",
            out.stdout
        );
        let api = flux_release(true).user("milvus-viewer", role_rules(role, None)).start();
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            status_line(&out.stdout).ends_with("Flux HelmRelease flux-system/milvus (suspended)"),
            "{role}: {}",
            out.stdout
        );
        let api = flux_release(true).user("milvus-viewer", role_rules(role, Some("helmreleases"))).start();
        let out = as_viewer(&api, &["status", "my-release"]).success();
        assert!(
            status_line(&out.stdout).contains("(details not readable: forbidden"),
            "{role}: {}",
            out.stdout
        );
    }
    // The scaler role reads the Application when scale refuses: the refusal says where the value is.
    let api = argo_release().user("milvus-viewer", role_rules("kubectl-milvus-scaler", None)).start();
    let out = as_viewer(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    assert!(out.stderr.contains("spec.source.helm.valuesObject (now 1)"), "{}", out.stderr);
}
