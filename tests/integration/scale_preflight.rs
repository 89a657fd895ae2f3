//! The scale-in preflight: a query node's pods must have more time to stop than Milvus's
//! graceful-stop timeout, or it can be killed before its data has moved.

use serde_json::{Value, json};

use crate::support::*;

const QUERYNODE: &str = "my-release-milvus-querynode";

/// helm/default.yaml with querynode at 3, its pod template's grace period and the ConfigMap's user.yaml.
fn release(grace: Option<i64>, user_yaml: Option<&str>) -> TestApi {
    let mut docs = fixture_docs("helm/default.yaml");
    for d in &mut docs {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == QUERYNODE {
            d["spec"]["replicas"] = json!(3);
            if let Some(g) = grace {
                d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(g);
            }
        }
        if let (Some(user), true) =
            (user_yaml, d["kind"] == "ConfigMap" && d["metadata"]["name"] == "my-release-milvus")
        {
            d["data"]["user.yaml"] = Value::String(user.to_string());
        }
    }
    TestApi::builder().age(AGE).objects(docs).start()
}

#[test]
fn a_grace_period_shorter_than_the_stop_timeout_refuses_the_scale_in_and_changes_nothing() {
    let api = release(None, None);
    // The chart sets no grace period: the API server stores Kubernetes' default in the template.
    let template = &api.get_json("apps", "v1", "deployments", Some("default"), QUERYNODE).expect("querynode")
        ["spec"]["template"]["spec"];
    assert_eq!(template["terminationGracePeriodSeconds"], 30, "{template}");
    api.clear_requests();
    for extra in [&[][..], &["--dry-run"][..], &["--dry-run=server"][..]] {
        let mut args = vec!["scale", "my-release", "querynode=-1"];
        args.extend_from_slice(extra);
        let out = run(&api, &args).failure(1);
        for said in [
            "querynode: a node being removed waits up to 1800s (queryNode.gracefulStopTimeout, Milvus's default)",
            "Kubernetes kills its pod after 30s",
            "it can die before its data has moved",
            "terminationGracePeriodSeconds to at least 1830",
            "--allow-kill-before-drain scales in anyway",
            "Nothing was changed.",
        ] {
            assert!(out.stderr.contains(said), "{extra:?}: {said:?} missing:\n{}", out.stderr);
        }
    }
    assert_eq!(mutating(&api), Vec::<RequestRecord>::new());
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 3);
    // Scaling out, or a component that does not drain, is not concerned.
    run(&api, &["scale", "my-release", "querynode=4", "datanode=0", "--allow-zero"]).success();
}

#[test]
fn the_override_scales_in_with_a_warning_naming_the_risk() {
    let api = release(None, None);
    let out = run(&api, &["scale", "my-release", "querynode=2", "--allow-kill-before-drain", "--no-drain"])
        .success();
    assert!(
        out.stderr.contains("querynode: scaling in with --allow-kill-before-drain: Kubernetes kills a removed node after 30s though it may need 1800s"),
        "{}",
        out.stderr
    );
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 2);
}

#[test]
fn a_long_enough_grace_period_or_a_short_stop_timeout_passes() {
    let api = release(Some(1900), None);
    run(&api, &["scale", "my-release", "querynode=2", "--no-drain"]).success();
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 2);
    // user.yaml overrides: 20s fits in Kubernetes' default 30s.
    let api = release(None, Some("queryNode:\n  gracefulStopTimeout: 20\n"));
    run(&api, &["scale", "my-release", "querynode=2", "--no-drain"]).success();
    // …and the key that set it is named when it does not fit.
    let api = release(Some(60), Some("common:\n  gracefulStopTimeout: 90\n"));
    let out = run(&api, &["scale", "my-release", "querynode=2"]).failure(1);
    assert!(out.stderr.contains("waits up to 90s (common.gracefulStopTimeout)"), "{}", out.stderr);
    assert!(out.stderr.contains("Kubernetes kills its pod after 60s:"), "{}", out.stderr);
}

#[test]
fn an_operator_release_with_the_operators_grace_period_passes_and_a_lowered_one_is_refused() {
    let docs = |grace: i64| {
        let mut docs = fixture_docs("operator/cluster.yaml");
        for d in &mut docs {
            if d["kind"] == "Deployment" {
                d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(grace);
            }
        }
        docs
    };
    let api =
        TestApi::builder().age(AGE).fixture("operator/milvus-crd.yaml").objects(docs(2_592_000)).start();
    run(&api, &["scale", "my-release", "querynode=1", "--no-drain"]).success();
    let api = TestApi::builder().age(AGE).fixture("operator/milvus-crd.yaml").objects(docs(30)).start();
    let out = run(&api, &["scale", "my-release", "querynode=1"]).failure(1);
    assert!(
        out.stderr.contains("the operator sets a one-month grace period unless told otherwise"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("spec.config"), "{}", out.stderr);
}
