//! `scale RELEASE COMPONENT --min N --max M`: an autoscaled component's bounds, changed through the
//! autoscaler's owner: the HorizontalPodAutoscaler, and Helm's record for the chart's own one.

use serde_json::{Value, json};

use crate::support::*;

const HPA: &str = "my-release-milvus-querynode-hpa";

fn hpa(api: &TestApi, name: &str) -> Value {
    api.get_json("autoscaling", "v1", "horizontalpodautoscalers", Some("default"), name)
        .unwrap_or_else(|| panic!("autoscaler {name}"))
}

fn bounds(api: &TestApi, name: &str) -> (i64, i64) {
    let spec = &hpa(api, name)["spec"];
    (spec["minReplicas"].as_i64().unwrap_or(1), spec["maxReplicas"].as_i64().unwrap_or_default())
}

fn release(api: &TestApi, revision: i64) -> Value {
    let name = format!("sh.helm.release.v1.my-release.v{revision}");
    let secret = api.get_json("", "v1", "secrets", Some("default"), &name).expect("the revision");
    milvus_test_api::decode_helm_release(&secret).expect("a Helm release")
}

#[test]
fn the_charts_autoscaler_changes_on_the_hpa_and_in_helms_record() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    let before = release(&api, 1);
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "querynode", "--min", "2", "--max", "8"]).success();
    assert!(
        out.stdout.contains(&format!(
            "horizontalpodautoscaler.autoscaling/{HPA} patched (minReplicas 1 → 2, maxReplicas 5 → 8)\n\
             secret/sh.helm.release.v1.my-release.v2 created: Helm revision 2 deployed, 1 superseded; \
             queryNode.hpa.minReplicas=2"
        )),
        "{}",
        out.stdout
    );
    insta::assert_snapshot!(out.stdout);
    assert_eq!(bounds(&api, HPA), (2, 8));
    assert_eq!(
        writes(&api),
        [
            "PUT sh.helm.release.v1.my-release.v1 dry",
            "POST secrets",
            &format!("PATCH {HPA}"),
            "PUT sh.helm.release.v1.my-release.v2",
            "PUT sh.helm.release.v1.my-release.v1",
        ]
    );
    let patch = mutating(&api)[2].body.clone().expect("the patch");
    assert_eq!(patch["spec"], json!({"minReplicas": 2, "maxReplicas": 8}));
    assert!(patch["metadata"]["resourceVersion"].is_string(), "optimistic: {patch}");

    let new = release(&api, 2);
    assert_eq!(new["config"]["queryNode"]["hpa"], json!({"minReplicas": 2, "maxReplicas": 8}));
    let old_manifest = before["manifest"].as_str().expect("manifest");
    let new_manifest = new["manifest"].as_str().expect("manifest");
    let changed: Vec<(&str, &str)> =
        old_manifest.lines().zip(new_manifest.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed, [("  minReplicas: 1", "  minReplicas: 2"), ("  maxReplicas: 5", "  maxReplicas: 8")]);
    let doc =
        new_manifest.split("\n---\n").find(|d| d.contains(&format!("  name: {HPA}\n"))).expect("the HPA");
    assert!(doc.contains("  minReplicas: 2\n  maxReplicas: 8\n"), "{doc}");
    // The other autoscaler is untouched.
    assert_eq!(bounds(&api, "my-release-milvus-proxy-hpa"), (1, 5));

    // Only --max: the minimum stays; the same bounds again change nothing.
    run(&api, &["scale", "my-release", "querynode", "--max", "6"]).success();
    assert_eq!(bounds(&api, HPA), (2, 6));
    api.clear_requests();
    let same = run(&api, &["scale", "my-release", "querynode", "--max", "6"]).success();
    assert!(
        same.stdout.contains(&format!("horizontalpodautoscaler.autoscaling/{HPA} unchanged")),
        "{}",
        same.stdout
    );
    assert!(mutating(&api).is_empty(), "{:?}", writes(&api));
}

#[test]
fn bounds_that_cannot_be_are_refused_with_nothing_changed() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    let cases: &[(&[&str], &str)] = &[
        (&["scale", "my-release", "querynode", "--min", "0"], "--min must be at least 1"),
        (&["scale", "my-release", "querynode", "--min", "9"], "--min 9 is above --max 5"),
        (&["scale", "my-release", "querynode", "--max", "5000"], "--max=5000 is more than the 1000"),
        (
            &["scale", "my-release", "datanode", "--max", "4"],
            "datanode has no HorizontalPodAutoscaler: scale it with datanode=N",
        ),
        (&["scale", "my-release", "mixcoord", "--max", "4"], "mixcoord is not a Milvus worker"),
        (
            &["scale", "my-release", "querynode=3", "--max", "4"],
            "give either a replica count or --min/--max, not both",
        ),
        (
            &["scale", "my-release", "querynode", "proxy", "--max", "4"],
            "--min and --max take exactly one COMPONENT",
        ),
        (
            &["scale", "my-release", "querynode", "--max", "4", "--wait"],
            "--wait does not apply to --min/--max",
        ),
    ];
    for (args, expected) in cases {
        api.clear_requests();
        let out = kubectl(&api, args).failure(1);
        assert!(out.stderr.contains(expected), "{args:?}: expected {expected:?} in\n{}", out.stderr);
        assert!(mutating(&api).is_empty(), "{args:?} sent {:?}", writes(&api));
    }
    assert_eq!(bounds(&api, HPA), (1, 5));
}

#[test]
fn a_dry_run_diffs_the_autoscaler_and_json_says_what_would_change() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode", "--max", "7", "--dry-run"]).success();
    assert!(out.stdout.contains("\n-  maxReplicas: 5\n+  maxReplicas: 7\n"), "{}", out.stdout);
    assert!(out.stdout.contains("patched (maxReplicas 5 → 7) (client dry run)"), "{}", out.stdout);
    assert!(out.stdout.contains("Helm release my-release: revision 1 → 2"), "{}", out.stdout);
    assert!(mutating(&api).is_empty(), "{:?}", writes(&api));

    let json =
        run(&api, &["scale", "my-release", "querynode", "--max", "7", "--dry-run=server", "-o", "json"])
            .success()
            .json();
    assert_eq!(json["kind"], "BoundsResult");
    assert_eq!(json["status"], "planned");
    assert_eq!(json["autoscaler"]["autoscaler"], HPA);
    assert_eq!(json["autoscaler"]["from"], json!({"minReplicas": 1, "maxReplicas": 5}));
    assert_eq!(json["autoscaler"]["to"], json!({"minReplicas": 1, "maxReplicas": 7}));
    assert_eq!(json["helm"]["state"], "planned");
    assert_eq!(json["helm"]["values"], json!([{"key": "queryNode.hpa.maxReplicas", "from": 5, "to": 7}]));
    assert!(mutating(&api).iter().all(|r| r.dry_run), "{:?}", writes(&api));
    assert_eq!(bounds(&api, HPA), (1, 5));
}

#[test]
fn without_the_helm_record_the_command_that_keeps_the_bounds_is_printed() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    let out = run(&api, &["scale", "my-release", "querynode", "--min", "2", "--helm-record=false"]).success();
    assert_eq!(bounds(&api, HPA), (2, 5));
    assert!(
        out.stderr.contains(
            "helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values \
             --set queryNode.hpa.minReplicas=2"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(crate::helm_record::revisions(&api), [(1, "deployed".into())]);
}

#[test]
fn a_users_own_autoscaler_is_changed_directly() {
    // An HPA the chart did not render (not in the release's manifest) targeting querynode.
    let own = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "querynode-autoscaler", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "my-release-milvus-querynode"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}});
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").helm_install(true).object(own).start();
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode", "--max", "6"]).success();
    assert!(
        out.stdout
            .contains("horizontalpodautoscaler.autoscaling/querynode-autoscaler patched (maxReplicas 3 → 6)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        writes(&api),
        ["PATCH querynode-autoscaler"],
        "no Helm record for an autoscaler the chart does not render"
    );
    assert_eq!(bounds(&api, "querynode-autoscaler"), (1, 6));
    // Its metrics are kept (the patch went through autoscaling/v1).
    let v2 = api
        .get_json("autoscaling", "v2", "horizontalpodautoscalers", Some("default"), "querynode-autoscaler")
        .expect("v2");
    assert_eq!(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80, "{v2}");
    // A replica count stays refused: the autoscaler owns it.
    let refused = run(&api, &["scale", "my-release", "querynode=4"]).failure(1);
    assert!(refused.stderr.contains("querynode-autoscaler"), "{}", refused.stderr);
}
