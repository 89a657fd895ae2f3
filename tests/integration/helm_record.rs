//! Scaling a Helm release writes the change into Helm's record of it: a new revision, as
//! `helm upgrade --reuse-values --set KEY=N` would store it, created pending before the workloads
//! change and settled after. On both backends; what Helm itself makes of the record is in `helm.rs`
//! (real Helm 3 and 4 on the real backend).

use std::time::Duration;

use milvus_test_api::{Fault, Gate};
use serde_json::{Value, json};

use crate::support::*;

const QUERYNODE: &str = "my-release-milvus-querynode";

/// `(revision, status)` of each release Secret (or ConfigMap: `plural`), oldest first.
fn revisions_in(api: &TestApi, plural: &str) -> Vec<(i64, String)> {
    let mut revisions: Vec<(i64, String)> = api
        .list_json("", plural, Some("default"), Some("owner=helm,name=my-release"))
        .expect("list the record")
        .iter()
        .map(|s| {
            let labels = &s["metadata"]["labels"];
            let version = labels["version"].as_str().and_then(|v| v.parse().ok()).expect("version label");
            (version, labels["status"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    revisions.sort();
    revisions
}

pub fn revisions(api: &TestApi) -> Vec<(i64, String)> {
    revisions_in(api, "secrets")
}

fn secret(api: &TestApi, revision: i64) -> Value {
    let name = format!("sh.helm.release.v1.my-release.v{revision}");
    api.get_json("", "v1", "secrets", Some("default"), &name).unwrap_or_else(|| panic!("{name}"))
}

/// The release JSON a revision's Secret holds.
fn release(api: &TestApi, revision: i64) -> Value {
    milvus_test_api::decode_helm_release(&secret(api, revision)).expect("a Helm release")
}

/// The lines of `after` that differ from `before` (same number of lines), as `(before, after)`.
fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
    assert_eq!(before.lines().count(), after.lines().count(), "lines added or removed");
    before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn a_scale_is_recorded_as_a_new_helm_revision() {
    let api = helm_release("helm/default.yaml");
    let before = release(&api, 1);
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "querynode=3"]).success();
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 3);
    assert!(
        out.stdout.ends_with(
            "deployment.apps/my-release-milvus-querynode scaled (1 → 3)\n\
             secret/sh.helm.release.v1.my-release.v2 created: Helm revision 2 deployed, 1 superseded; \
             queryNode.replicas=3 (was 1)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("Helm release my-release: revision 1 → 2"), "{}", out.stdout);
    assert!(!out.stderr.contains("helm upgrade"), "nothing left to run: {}", out.stderr);
    // In order: the deployed revision checked (dry run), the new one created pending, the workload,
    // the new revision deployed, the old one superseded.
    assert_eq!(
        writes(&api),
        [
            "PUT sh.helm.release.v1.my-release.v1 dry",
            "POST secrets",
            "PATCH my-release-milvus-querynode",
            "PUT sh.helm.release.v1.my-release.v2",
            "PUT sh.helm.release.v1.my-release.v1",
        ]
    );
    let created = mutating(&api)[1].body.clone().expect("the created Secret");
    assert_eq!(created["metadata"]["labels"]["status"], "pending-upgrade", "{}", created["metadata"]);
    assert_eq!(revisions(&api), [(1, "superseded".into()), (2, "deployed".into())]);

    // The new revision: the value in the user values and in the manifest, nothing else changed.
    let new = release(&api, 2);
    assert_eq!(new["version"], 2);
    assert_eq!(new["config"]["queryNode"]["replicas"], 3);
    let mut config = new["config"].clone();
    config["queryNode"].as_object_mut().expect("queryNode").remove("replicas");
    let mut old_config = before["config"].clone();
    if let Some(query_node) = old_config["queryNode"].as_object_mut() {
        query_node.remove("replicas");
    }
    if old_config["queryNode"] == json!({}) {
        old_config.as_object_mut().expect("config").remove("queryNode");
    }
    if config["queryNode"] == json!({}) {
        config.as_object_mut().expect("config").remove("queryNode");
    }
    assert_eq!(config, old_config, "the other user values are kept");
    let changed =
        changed_lines(before["manifest"].as_str().expect("manifest"), new["manifest"].as_str().expect("m"));
    assert_eq!(changed, [("  replicas: 1".to_string(), "  replicas: 3".to_string())]);
    let manifest = new["manifest"].as_str().expect("manifest");
    let querynode = manifest
        .split("\n---\n")
        .find(|d| d.contains("kind: Deployment") && d.contains(&format!("  name: {QUERYNODE}\n")))
        .expect("the querynode Deployment");
    assert!(querynode.contains("\nspec:\n  replicas: 3\n"), "{querynode}");
    for kept in ["chart", "hooks", "name", "namespace"] {
        assert_eq!(new[kept], before[kept], "{kept} is carried over");
    }
    assert_eq!(new["info"]["status"], "deployed");
    assert_eq!(new["info"]["description"], "Scaled by kubectl-milvus: queryNode.replicas=3 (was 1)");
    assert_eq!(new["info"]["first_deployed"], before["info"]["first_deployed"]);
    assert_ne!(new["info"]["last_deployed"], before["info"]["last_deployed"]);
    let labels = &secret(&api, 2)["metadata"]["labels"];
    for (key, value) in [("owner", "helm"), ("name", "my-release"), ("status", "deployed"), ("version", "2")]
    {
        assert_eq!(labels[key], value, "{labels}");
    }
    assert!(labels["modifiedAt"].as_str().is_some_and(|t| t.parse::<i64>().is_ok()), "{labels}");

    // The old revision: only its status changed.
    let mut old = release(&api, 1);
    assert_eq!(old["info"]["status"], "superseded");
    old["info"]["status"] = before["info"]["status"].clone();
    assert_eq!(old, before);

    // The release records the live count: no drift, and scaling to it again changes nothing.
    let status = run(&api, &["status", "my-release"]).success().stdout;
    assert!(!status.contains("Helm release says"), "{status}");
    api.clear_requests();
    run(&api, &["scale", "my-release", "querynode=3"]).success();
    assert!(mutating(&api).is_empty(), "{:?}", writes(&api));
}

#[test]
fn helms_history_limit_is_kept_and_json_says_what_was_written() {
    let api = helm_release("helm/default.yaml");
    let scale = |target: &str| {
        let output =
            command(Via::Binary, Some(api.kubeconfig_path()), &["scale", "my-release", target, "-o", "json"])
                .env("HELM_MAX_HISTORY", "2")
                .output()
                .expect("run the plugin");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<Value>(&output.stdout).expect("a ScaleResult")
    };
    let first = scale("querynode=2");
    assert_eq!(
        first["helm"]["record"],
        json!({"state": "written", "driver": "Secret", "revision": 1, "newRevision": 2,
               "object": "secret/sh.helm.release.v1.my-release.v2",
               "values": [{"key": "queryNode.replicas", "from": 1, "to": 2}]})
    );
    let second = scale("datanode=2");
    assert_eq!(second["helm"]["record"]["state"], "written");
    assert_eq!(second["helm"]["record"]["pruned"], json!([1]), "{second}");
    assert_eq!(revisions(&api), [(2, "superseded".into()), (3, "deployed".into())]);
    let latest = release(&api, 3);
    assert_eq!(latest["config"]["queryNode"]["replicas"], 2, "built on revision 2");
    assert_eq!(latest["config"]["dataNode"]["replicas"], 2);
}

#[test]
fn a_helm_operation_in_progress_refuses_the_scale() {
    let api = helm_release("helm/default.yaml");
    let mut pending = secret(&api, 1);
    pending["metadata"] = json!({"name": "sh.helm.release.v1.my-release.v2", "namespace": "default",
        "labels": {"owner": "helm", "name": "my-release", "status": "pending-upgrade", "version": "2"}});
    api.apply_json(pending).expect("a pending revision");
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    assert!(
        out.stderr.contains(
            "another Helm operation is in progress on my-release: revision 2 is pending-upgrade. Wait for it to \
             finish (helm history my-release -n default), or scale without updating Helm's record (--helm-record=false)"
        ),
        "{}",
        out.stderr
    );
    assert!(mutating(&api).is_empty(), "{:?}", writes(&api));
}

#[test]
fn without_permission_to_write_the_record_the_workloads_alone_change() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .user("scaler", Rules::read_only().allow(&["patch"], &["deployments"]))
        .start();
    api.clear_requests();
    let kubeconfig = api.kubeconfig_for("scaler");
    let out = run_via(Via::Binary, Some(&kubeconfig), &["scale", "my-release", "querynode=2"]).success();
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 2);
    assert_eq!(revisions(&api), [(1, "deployed".into())]);
    // Only the dry-run check was tried before the workload.
    assert_eq!(
        writes(&api),
        ["PUT sh.helm.release.v1.my-release.v1 dry", "PATCH my-release-milvus-querynode"]
    );
    assert!(
        out.stderr.contains("the Helm release my-release still records queryNode.replicas=1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values --set queryNode.replicas=2"),
        "{}",
        out.stderr
    );
    let json = run_via(Via::Binary, Some(&kubeconfig), &["scale", "my-release", "querynode=3", "-o", "json"])
        .success()
        .json();
    let record = &json["helm"]["record"];
    assert_eq!(record["state"], "skipped", "{json}");
    let reason = record["reason"].as_str().expect("a reason");
    assert!(
        reason.starts_with("Helm's record may not be written: ") && reason.contains("forbidden"),
        "{reason}"
    );
}

#[test]
fn a_release_changed_between_read_and_write_stops_the_scale_with_nothing_changed() {
    let api = helm_release("helm/default.yaml");
    let gate = Gate::new();
    api.set_fault(Fault::hold(&gate).on("PUT", "/api/v1/namespaces/default/secrets/*"));
    api.clear_requests();
    let child = command(Via::Binary, Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    assert!(gate.wait_held(1, Duration::from_secs(30)), "the record's first write is held");
    // Meanwhile another client upgrades the release: revision 2 deployed, 1 superseded.
    let mut upgraded = secret(&api, 1);
    upgraded["metadata"] = json!({"name": "sh.helm.release.v1.my-release.v2", "namespace": "default",
        "labels": {"owner": "helm", "name": "my-release", "status": "deployed", "version": "2"}});
    api.apply_json(upgraded).expect("revision 2");
    api.patch_json(
        "",
        "secrets",
        Some("default"),
        "sh.helm.release.v1.my-release.v1",
        json!({"metadata": {"labels": {"status": "superseded"}}}),
    )
    .expect("revision 1 superseded");
    gate.open();
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the Helm release my-release changed since it was read (another helm upgrade or rollback?)"
        ) && stderr.contains("Nothing was changed; run the command again"),
        "{stderr}"
    );
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 1);
    // The plugin wrote nothing: its one write, the check, was refused.
    assert_eq!(writes(&api), ["PUT sh.helm.release.v1.my-release.v1 dry"]);
    assert_eq!(mutating(&api)[0].status, 409);
    assert_eq!(revisions(&api), [(1, "superseded".into()), (2, "deployed".into())]);
}

#[test]
fn a_failed_workload_write_leaves_a_failed_revision_and_the_old_one_deployed() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(
        Fault::status(403)
            .message("deployments.apps \"my-release-milvus-querynode\" is forbidden: injected")
            .on("PATCH", "/apis/apps/v1/namespaces/default/deployments/*"),
    );
    let out = kubectl(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    assert!(out.stderr.contains("is forbidden: injected"), "{}", out.stderr);
    assert!(
        out.stderr.contains("Helm revision 2 of my-release is marked failed (querynode not changed); revision 1 stays deployed"),
        "{}",
        out.stderr
    );
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 1);
    assert_eq!(revisions(&api), [(1, "deployed".into()), (2, "failed".into())]);
    assert_eq!(release(&api, 2)["info"]["description"], "kubectl-milvus scale failed: querynode not changed");
    // The failed revision does not block the next scale.
    api.clear_faults();
    let again = kubectl(&api, &["scale", "my-release", "querynode=3"]).success();
    assert!(
        again.stdout.contains(
            "secret/sh.helm.release.v1.my-release.v3 created: Helm revision 3 deployed, 1 superseded"
        ),
        "{}",
        again.stdout
    );
    assert_eq!(revisions(&api), [(1, "superseded".into()), (2, "failed".into()), (3, "deployed".into())]);
}

#[test]
fn configmap_storage_is_read_and_written_with_helm_driver_configmap() {
    let api = helm_release("helm/default.yaml");
    // The fixture's record, moved to a ConfigMap as `HELM_DRIVER=configmap helm install` stores it.
    let stored = secret(&api, 1);
    let inner = base64_decode(stored["data"]["release"].as_str().expect("data.release"));
    api.apply_json(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "sh.helm.release.v1.my-release.v1", "namespace": "default",
                     "labels": stored["metadata"]["labels"].clone()},
        "data": {"release": inner}}))
        .expect("the ConfigMap");
    api.delete_json("", "secrets", Some("default"), "sh.helm.release.v1.my-release.v1").expect("deleted");
    let output = command(Via::Kubectl, Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=2"])
        .env("HELM_DRIVER", "configmap")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("configmap/sh.helm.release.v1.my-release.v2 created"), "{stdout}");
    assert_eq!(revisions_in(&api, "configmaps"), [(1, "superseded".into()), (2, "deployed".into())]);
    assert!(revisions(&api).is_empty(), "no Secret is written");
}

fn base64_decode(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
    String::from_utf8(bytes).expect("the inner base64 text")
}
