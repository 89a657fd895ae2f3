//! `kubectl milvus scale`: the owner of replicas, Milvus's rules, dry runs, conflicts, gentle scale-in, waiting.

use std::time::Duration;

use serde_json::Value;

use crate::support::*;

fn patches(api: &TestApi) -> Vec<(String, Value, u16)> {
    mutating(api)
        .into_iter()
        .map(|r| (r.path.clone(), r.body.clone().unwrap_or_default()["spec"].clone(), r.status))
        .collect()
}

/// A Helm release whose querynode and datanode run `replicas` pods each.
fn helm_with(querynodes: i64, datanodes: i64) -> TestApi {
    TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .replicas("my-release-milvus-querynode", querynodes)
        .replicas("my-release-milvus-datanode", datanodes)
        .start()
}

// ---------------------------------------------------------------------------------------------
// Refusals: a clear message, exit 1, and not a single mutating request.

fn assert_refused(api: &TestApi, args: &[&str], expected: &[&str]) {
    api.clear_requests();
    let out = kubectl(api, args).failure(1);
    for text in expected {
        assert!(out.stderr.contains(text), "{args:?}: expected {text:?} in\n{}", out.stderr);
    }
    assert!(mutating(api).is_empty(), "{args:?} sent {:?}", mutating(api));
}

#[test]
fn coordinators_are_refused_with_active_standby_advice() {
    let api = helm_release("helm/default.yaml");
    assert_refused(
        &api,
        &["scale", "my-release", "mixcoord=2"],
        &[
            "mixcoord is a coordinator",
            "scaling worker nodes only",
            "activeStandby.enabled=true",
            "Nothing was changed.",
        ],
    );
    let separate = helm_release("helm/coordinators-hpa.yaml");
    for coordinator in ["rootcoord", "querycoord", "datacoord", "indexcoord"] {
        assert_refused(
            &separate,
            &["scale", "my-release", &format!("{coordinator}=2")],
            &["is a coordinator"],
        );
    }
}

#[test]
fn a_standalone_release_is_refused() {
    let api = helm_release("helm/standalone.yaml");
    assert_refused(
        &api,
        &["scale", "my-release", "querynode=2"],
        &["my-release is a standalone release", "single pod by design", "cluster.enabled=true"],
    );
}

#[test]
fn components_owned_by_an_hpa_are_refused() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    assert_refused(
        &api,
        &["scale", "my-release", "querynode=3"],
        &["HorizontalPodAutoscaler my-release-milvus-querynode-hpa (min 1, max 5)", "would be overwritten"],
    );
    // The others are fine, but one refusal refuses the whole command.
    assert_refused(&api, &["scale", "my-release", "datanode=3", "proxy=4"], &["my-release-milvus-proxy-hpa"]);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 2);
}

#[test]
fn operator_replicas_minus_one_is_refused() {
    let docs = fixture_text("operator/cluster.yaml");
    let with_hpa = docs.replacen("    dataNode:\n      replicas: 2", "    dataNode:\n      replicas: -1", 1);
    assert_ne!(with_hpa, docs, "the fixture layout changed");
    let api = TestApi::builder().age(AGE).fixture("operator/milvus-crd.yaml").yaml(&with_hpa).start();
    assert_refused(
        &api,
        &["scale", "my-release", "datanode=3"],
        &["replicas: -1 in the Milvus object", "HorizontalPodAutoscaler"],
    );
}

#[test]
fn bad_values_and_components_are_refused() {
    let api = helm_release("helm/default.yaml");
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["scale", "my-release", "foo=1"],
            &["unknown component \"foo\"", "can scale proxy, querynode, datanode, streamingnode"],
        ),
        (
            &["scale", "my-release", "indexnode=2"],
            &["my-release does not run indexnode (Milvus 2.6 removed it)"],
        ),
        (&["scale", "my-release", "cdc=1"], &["does not run cdc"]),
        (&["scale", "my-release", "attu=1"], &["attu is not a Milvus worker"]),
        (&["scale", "my-release", "querynode=-5"], &["querynode=-5 would leave -4 replicas"]),
        (&["scale", "my-release", "querynode=1.5"], &["\"1.5\" is not a whole number of replicas"]),
        (&["scale", "my-release", "querynode=lots"], &["not a whole number"]),
        (&["scale", "my-release", "querynode=5000"], &["more than the 1000"]),
        (&["scale", "my-release", "querynode"], &["expected COMPONENT=REPLICAS"]),
        (
            &["scale", "my-release", "querynode=0"],
            &["scaling querynode to 0 makes my-release unavailable", "--allow-zero"],
        ),
        (&["scale", "my-release", "querynode=2", "queryNode=3"], &["querynode is named more than once"]),
        (&["scale", "my-release", "querynode[rg1]=2"], &["querynode has no group \"rg1\""]),
        (&["scale", "nope", "querynode=2"], &["Milvus release \"nope\" not found in namespace \"default\""]),
        (&["scale", "my-release", "querynode", "--replicas", "x"], &["invalid --replicas"]),
    ];
    for (args, expected) in cases {
        assert_refused(&api, args, expected);
    }
    // Every refusal of one command is reported at once.
    assert_refused(
        &api,
        &["scale", "my-release", "mixcoord=2", "foo=1", "querynode=0"],
        &["  - mixcoord", "  - unknown component", "  - scaling querynode to 0"],
    );
}

#[test]
fn cdc_runs_one_replica_only() {
    let docs = fixture_docs("helm/default.yaml");
    let mut cdc = fixture_deployment(&docs, "my-release-milvus-datanode");
    let text = serde_json::to_string(&cdc).expect("json").replace("datanode", "cdc");
    cdc = serde_json::from_str(&text).expect("json");
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").objects(vec![cdc]).start();
    assert_refused(&api, &["scale", "my-release", "cdc=2"], &["cdc runs one replica only"]);
    run(&api, &["scale", "my-release", "cdc=0"]).success();
}

// ---------------------------------------------------------------------------------------------
// Dry runs and the diff.

#[test]
fn client_dry_run_sends_nothing_and_prints_a_kubectl_diff() {
    let api = helm_release("helm/default.yaml");
    let out = client_dry_run_of_querynode(&api, "/deployments/my-release-milvus-querynode");
    assert!(
        out.stdout.ends_with(
            "deployment.apps/my-release-milvus-querynode scaled (1 → 3) (client dry run)\n\
             secret/sh.helm.release.v1.my-release.v2 created (client dry run): Helm revision 2 deployed, 1 \
             superseded; queryNode.replicas=3 (was 1)\n"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\n-  replicas: 1\n+  replicas: 3\n"), "{}", out.stdout);
    if backend() == Backend::Loopback {
        // The loopback's objects are deterministic; a real server's carry run-specific fields.
        insta::assert_snapshot!(normalize_server_fields(&out.stdout));
    }
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 1);

    // A bare --dry-run means client, with kubectl's deprecation warning.
    api.clear_requests();
    let bare = run(&api, &["scale", "my-release", "querynode=3", "--dry-run"]).success();
    assert!(bare.stdout.contains("(client dry run)"));
    assert!(
        bare.stderr.contains("--dry-run is deprecated and can be replaced with --dry-run=client"),
        "{}",
        bare.stderr
    );
    assert!(mutating(&api).is_empty());
}

/// `scale my-release querynode=3 --dry-run=client`: nothing written, and only the reads of `status`
/// (7), whatever the release's size; the diff is of the owner (`owner`, a path suffix) as listed, which
/// is not read again.
fn client_dry_run_of_querynode(api: &TestApi, owner: &str) -> Run {
    api.clear_requests();
    let out = kubectl(api, &["scale", "my-release", "querynode=3", "--dry-run=client"]).success();
    assert!(mutating(api).is_empty(), "{:?}", mutating(api));
    let reads = request_lines(&resource_requests(api));
    assert!(reads.len() <= 7, "a fixed number of reads, whatever the release's size: {reads:#?}");
    assert!(!reads.iter().any(|r| r.contains(owner)), "the owner is not read again for its diff: {reads:#?}");
    out
}

/// resourceVersion and uid differ from run to run; the rest of the diff is pinned.
fn normalize_server_fields(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start_matches([' ', '+', '-']);
            if trimmed.starts_with("resourceVersion:")
                || trimmed.starts_with("uid:")
                || trimmed.starts_with("creationTimestamp:")
            {
                let indent = line.len() - line.trim_start().len();
                format!("{}{} <normalized>", &line[..indent], trimmed.split(':').next().unwrap_or(""))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn server_dry_run_sends_only_dry_run_requests() {
    let api = helm_release("helm/default.yaml");
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3", "datanode=+1", "--dry-run=server"]).success();
    let mutations: Vec<String> = mutating(&api)
        .iter()
        .map(|r| {
            format!("{} {} dry_run={}", r.method, r.path.rsplit('/').next().unwrap_or_default(), r.dry_run)
        })
        .collect();
    // Helm's record: the deployed revision checked, the new one created; then the workloads.
    assert_eq!(
        mutations,
        [
            "PUT sh.helm.release.v1.my-release.v1 dry_run=true",
            "POST secrets dry_run=true",
            "PATCH my-release-milvus-querynode dry_run=true",
            "PATCH my-release-milvus-datanode dry_run=true",
        ]
    );
    assert_eq!(api.list_json("", "secrets", Some("default"), Some("owner=helm")).expect("secrets").len(), 1);
    assert!(
        out.stdout.contains("deployment.apps/my-release-milvus-querynode scaled (1 → 3) (server dry run)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("deployment.apps/my-release-milvus-datanode scaled (1 → 2) (server dry run)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("+  replicas: 3"),
        "the diff is against what the server answered:\n{}",
        out.stdout
    );
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 1);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 1);
}

#[test]
fn server_dry_run_reports_what_the_server_refuses() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(
        Fault::status(422)
            .on("PATCH", "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-querynode")
            .message("Deployment.apps \"my-release-milvus-querynode\" is invalid: spec.replicas: Invalid value: 3: exceeds quota"),
    );
    let out = run(&api, &["scale", "my-release", "querynode=3", "--dry-run=server"]).failure(1);
    assert!(
        out.stderr.contains(
            "Error from server (Invalid): Deployment.apps \"my-release-milvus-querynode\" is invalid"
        ),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Applying through the owner.

#[test]
fn without_the_helm_record_the_scale_says_how_to_keep_it() {
    let api = helm_release("helm/default.yaml");
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "queryNode=3", "--helm-record=false"]).success();
    assert!(
        out.stdout.ends_with("deployment.apps/my-release-milvus-querynode scaled (1 → 3)\n"),
        "{}",
        out.stdout
    );
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 3);
    let patches = patches(&api);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].0, "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-querynode");
    assert_eq!(patches[0].1, serde_json::json!({"replicas": 3}));
    let sent = mutating(&api)[0].body.clone().unwrap_or_default();
    assert!(sent["metadata"]["resourceVersion"].is_string(), "optimistic concurrency: {sent}");
    assert!(out.stderr.contains("the Helm release my-release still records queryNode.replicas=1: the next `helm upgrade` of this release sets it back"), "{}", out.stderr);
    assert!(out.stderr.contains("helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values --set queryNode.replicas=3"), "{}", out.stderr);

    // status shows the same drift.
    let status = run(&api, &["status", "my-release"]).success();
    assert!(
        status.stdout.contains("querynode: 3 live, Helm release says 1 (queryNode.replicas)"),
        "{}",
        status.stdout
    );
}

#[test]
fn without_permission_to_read_secrets_the_scale_still_happens() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .user("scaler", Rules::read_only().deny("list", "secrets").allow(&["patch"], &["deployments"]))
        .start();
    let out =
        run_via(Via::Binary, Some(&api.kubeconfig_for("scaler")), &["scale", "my-release", "datanode=2"])
            .success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 2);
    assert!(
        out.stderr.contains("the replicas recorded in the Helm release could not be checked"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("cannot list resource \"secrets\""), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "helm upgrade my-release milvus/milvus -n default --reuse-values --set dataNode.replicas=2"
        ),
        "{}",
        out.stderr
    );
    // status silently leaves the drift check out.
    let status =
        run_via(Via::Binary, Some(&api.kubeconfig_for("scaler")), &["status", "my-release"]).success();
    assert!(!status.stdout.contains("Helm release says"), "{}", status.stdout);
}

#[test]
fn operator_release_patches_only_the_milvus_object() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .fixture("operator/cluster.yaml")
        .operator_reconciler(true)
        .start();
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "querynode=3", "--wait", "--timeout", "60s"]).success();
    assert!(
        out.stdout.contains("milvus.milvus.io/my-release patched (queryNode.replicas 2 → 3)\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("querynode: 3 of 3 replicas ready"), "{}", out.stdout);
    let mutations = mutating(&api);
    assert_eq!(mutations.len(), 1, "{mutations:?}");
    assert_eq!(mutations[0].path, "/apis/milvus.io/v1beta1/namespaces/default/milvuses/my-release");
    assert_eq!(
        mutations[0].body.clone().unwrap_or_default()["spec"],
        serde_json::json!({"components": {"queryNode": {"replicas": 3}}})
    );
    let cr = api.get_json("milvus.io", "v1beta1", "milvuses", Some("default"), "my-release").expect("cr");
    assert_eq!(cr["spec"]["components"]["queryNode"]["replicas"], 3);
    // The operator (stand-in) moved the active querynode Deployment.
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode-0"), 3);
}

#[test]
fn an_operator_client_dry_run_diffs_the_milvus_object_as_listed() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .fixture("operator/cluster.yaml")
        .start();
    let out = client_dry_run_of_querynode(&api, "/milvuses/my-release");
    assert!(
        out.stdout
            .ends_with("milvus.milvus.io/my-release patched (queryNode.replicas 2 → 3) (client dry run)\n"),
        "{}",
        out.stdout
    );
    let diff: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with(['-', '+'])).collect();
    assert!(diff.iter().any(|l| l.ends_with("replicas: 2")), "{}", out.stdout);
    assert!(diff.iter().any(|l| l.ends_with("replicas: 3")), "{}", out.stdout);
    if backend() == Backend::Loopback {
        // The hunk's place pins the whole object before `spec` (metadata as listed, as a GET gives it).
        insta::assert_snapshot!(normalize_server_fields(&out.stdout));
    }
    let cr = api.get_json("milvus.io", "v1beta1", "milvuses", Some("default"), "my-release").expect("cr");
    assert_eq!(cr["spec"]["components"]["queryNode"]["replicas"], 2);
}

#[test]
fn relative_changes_and_the_kubectl_form() {
    let api = helm_with(2, 3);
    run(&api, &["scale", "my-release", "querynode=+2", "datanode=-1"]).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 4);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 2);
    run(&api, &["scale", "my-release", "proxy", "--replicas=2"]).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-proxy"), 2);
    // kubectl scale's --replicas is a count: a sign is refused, and nothing is sent.
    api.clear_requests();
    let signed = run(&api, &["scale", "my-release", "proxy", "--replicas", "+1"]).failure(1);
    assert!(signed.stderr.contains("for a relative change write proxy=+N"), "{}", signed.stderr);
    assert!(api.requests().is_empty(), "refused before any request");
    run(&api, &["scale", "my-release", "proxy=+1"]).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-proxy"), 3);
    // Nothing to do is not an error and sends nothing.
    api.clear_requests();
    let same = run(&api, &["scale", "my-release", "proxy=3"]).success();
    assert!(same.stdout.contains("unchanged"), "{}", same.stdout);
    assert!(mutating(&api).is_empty());
}

#[test]
fn zero_needs_an_explicit_flag() {
    let api = helm_with(2, 1);
    run(&api, &["scale", "my-release", "querynode=0"]).failure(1);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    let args = [
        "scale",
        "my-release",
        "querynode=0",
        "--allow-zero",
        "--step",
        "0",
        "--allow-kill-before-drain",
        "--no-drain",
    ];
    run(&api, &args).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 0);
}

#[test]
fn resource_groups_are_addressed_explicitly() {
    let docs = fixture_docs("helm/default.yaml");
    let rg = grouped_copy(
        &docs,
        "my-release-milvus-querynode",
        "milvus.io/resource-group",
        "rg1",
        "my-release-milvus-querynode-rg1",
    );
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").objects(vec![rg]).start();
    let out = run(&api, &["scale", "my-release", "querynode[rg1]=3"]).success();
    assert!(
        out.stdout.contains("deployment.apps/my-release-milvus-querynode-rg1 scaled (1 → 3)"),
        "{}",
        out.stdout
    );
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode-rg1"), 3);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 1);
    assert_refused(
        &api,
        &["scale", "my-release", "querynode[rg9]=3"],
        &["has no group \"rg9\"; its groups are rg1"],
    );
}

// Loopback only (the name keeps it off a real server): stores a Milvus object its CRD schema refuses.
#[test]
fn an_operator_group_without_replicas_is_scaled_from_the_operators_default_loopback_only() {
    // The CRD of Milvus Operator 1.3.8 requires `replicas` in every group; objects written against older
    // CRDs may lack it, and the operator then runs one replica. The loopback API does not validate the
    // CRD's schema, so it can hold such an object; a real API server refuses to store it.
    let cr = fixture_text("operator/cluster.yaml").replacen(
        "    dataNode:\n      replicas: 2",
        "    dataNode:\n      groups:\n      - name: a\n        replicas: 2\n      - name: b",
        1,
    );
    assert!(cr.contains("- name: b"), "the fixture layout changed");
    let docs = fixture_docs("operator/cluster.yaml");
    let group = |name: &str| {
        let label = "milvus.io/deployment-group";
        grouped_copy(
            &docs,
            "my-release-milvus-datanode",
            label,
            name,
            &format!("my-release-milvus-datanode-{name}"),
        )
    };
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .yaml(&cr)
        .objects(vec![group("a"), group("b")])
        .start();
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "datanode[b]=2"]).success();
    assert!(
        out.stdout.contains("milvus.milvus.io/my-release patched (dataNode.groups[b].replicas 1 → 2)"),
        "{}",
        out.stdout
    );
    let cr = api.get_json("milvus.io", "v1beta1", "milvuses", Some("default"), "my-release").expect("cr");
    assert_eq!(
        cr["spec"]["components"]["dataNode"]["groups"],
        serde_json::json!([{"name": "a", "replicas": 2}, {"name": "b", "replicas": 2}])
    );
    assert_eq!(mutating(&api).len(), 1, "one patch of the Milvus object");
}

// ---------------------------------------------------------------------------------------------
// Concurrency, gentle scale-in, waiting, interruption.

#[test]
fn a_concurrent_change_is_a_conflict_that_is_re_planned_not_overwritten() {
    let api = helm_with(1, 1);
    let deployment = "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-querynode";
    // Hold the plugin's write long enough for another writer to get in between its read and its write.
    api.set_fault(Fault::delay(Duration::from_millis(1500)).on("PATCH", deployment).times(1));
    api.clear_requests();
    let child = command(Via::Binary, Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=+1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    // The plugin has read the Deployment it will patch: now someone else scales it to 4.
    api.wait_until(
        |s| s.requests().iter().any(|r| r.method == "GET" && r.path == deployment),
        Duration::from_secs(20),
    )
    .expect("the plugin reads the owner");
    api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-querynode", 4)
        .expect("concurrent change");
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let statuses: Vec<u16> =
        api.requests().iter().filter(|r| r.method == "PATCH").map(|r| r.status).collect();
    assert_eq!(statuses, [409, 200], "the stale write was rejected, then re-planned");
    assert!(stderr.contains("changed between reading and writing it (409 Conflict)"), "{stderr}");
    assert!(
        stderr.contains("changed since it was read: spec.replicas is 4, not 1. Re-planned querynode: 4 → 5"),
        "{stderr}"
    );
    assert!(stdout.contains("scaled (4 → 5)"), "{stdout}");
    assert_eq!(
        deployment_replicas(&api, "default", "my-release-milvus-querynode"),
        5,
        "+1 applies to the new value"
    );
}

#[test]
fn scale_in_goes_one_replica_at_a_time_with_a_health_check_between() {
    let api = helm_with(1, 5);
    api.clear_requests();
    let out = kubectl(&api, &["scale", "my-release", "datanode=2"]).success();
    assert!(out.stdout.contains("5 → 4 → 3 → 2"), "{}", out.stdout);
    for line in ["scaled (5 → 4)", "scaled (4 → 3)", "scaled (3 → 2)"] {
        assert!(out.stdout.contains(line), "{line}:\n{}", out.stdout);
    }
    let requests = api.requests();
    // A write refused with 409 Conflict (a controller wrote the status in between) is tried again.
    let patches = |requests: &[RequestRecord]| -> Vec<u16> {
        requests.iter().filter(|r| r.method == "PATCH").map(|r| r.status).collect()
    };
    assert!(patches(&requests).iter().all(|s| matches!(s, 200 | 409)), "{:?}", patches(&requests));
    let writes: Vec<(usize, i64)> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.method == "PATCH" && r.status == 200)
        .map(|(i, r)| (i, r.body.clone().unwrap_or_default()["spec"]["replicas"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(writes.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [4, 3, 2]);
    // Between two writes the component's health was checked: after the first write the pods were
    // watched (from the lists that found the release), and every later write came after that watch was
    // opened (its view judged health). The pods are listed only to find the release, not once per check.
    let is_pods = |r: &RequestRecord| r.path.ends_with("/pods");
    for pair in writes.windows(2) {
        let before = &requests[writes[0].0 + 1..pair[1].0];
        assert!(before.iter().any(|r| is_pods(r) && r.watch), "{before:?}");
    }
    // Two label-selected lists to find the release; the watches start from them.
    let pod_lists = requests.iter().filter(|r| is_pods(r) && r.verb.as_deref() == Some("list")).count();
    assert_eq!(pod_lists, 2, "{:#?}", request_lines(&requests));
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 2);

    // --step 0 does it in one change.
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "datanode=1", "--step", "0"]).success();
    let statuses = patches(&api.requests());
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| matches!(s, 200 | 409)), "{statuses:?}");
    assert!(!out.stderr.contains("409"), "a conflict over other fields is no news: {}", out.stderr);
}

#[test]
fn wait_follows_the_pods_until_ready() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .scale_up_ready_delay(Duration::from_secs(2))
        .start();
    let out = run(&api, &["scale", "my-release", "querynode=3", "--wait", "--timeout", "60s"]).success();
    assert!(
        out.stdout.contains("querynode: 1/3 ready, 2 starting"),
        "progress shows pods starting:\n{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("querynode: 3 of 3 replicas ready\n"), "{}", out.stdout);
    let deployment =
        api.get_json("apps", "v1", "deployments", Some("default"), "my-release-milvus-querynode").expect("d");
    assert_eq!(deployment["status"]["readyReplicas"], 3);
}

/// A `scale --wait` on a querynode whose new pod becomes ready only after `delay`, with `faults` set
/// before it starts; returns the requests it made, after checking that the wait ended ready.
fn scale_and_wait_with(delay: Duration, faults: &[Fault]) -> (TestApi, Vec<RequestRecord>) {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .scale_up_ready_delay(delay)
        .start();
    for fault in faults {
        api.set_fault(fault.clone());
    }
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=2", "--wait", "--timeout", "90s"]).success();
    assert!(out.stdout.ends_with("querynode: 2 of 2 replicas ready\n"), "{}", out.stdout);
    let requests = resource_requests(&api);
    (api, requests)
}

/// How many requests of `verb` reached a collection ending in `kind` (`/pods`).
fn count(requests: &[RequestRecord], kind: &str, verb: &str) -> usize {
    requests.iter().filter(|r| r.path.ends_with(kind) && r.verb.as_deref() == Some(verb)).count()
}

#[test]
fn a_quiet_wait_lists_each_kind_once_then_only_watches() {
    // Seconds pass with nothing changing while the new pod starts: the old loop listed every kind
    // every second; now each is listed once, to find the release (the pods: by each of the release's
    // two label selectors), and its watch starts from that list.
    let (_api, requests) = scale_and_wait_with(Duration::from_secs(6), &[]);
    for (kind, streams) in [("/deployments", 1), ("/statefulsets", 1), ("/pods", 2)] {
        let lines = request_lines(&requests);
        assert_eq!(count(&requests, kind, "list"), streams, "{kind}: {lines:#?}");
        assert!(count(&requests, kind, "watch") >= streams, "{kind} watched: {lines:#?}");
    }
    let pod_watches: std::collections::BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/pods") && r.watch)
        .filter_map(|r| r.query_param("labelSelector"))
        .collect();
    assert_eq!(pod_watches.len(), 2, "the release's pods, by its two labels: {pod_watches:?}");
    // HPAs and Milvus objects are not followed for a Helm release: listed only to find it.
    assert_eq!(count(&requests, "/horizontalpodautoscalers", "list"), 1);
    assert_eq!(count(&requests, "/horizontalpodautoscalers", "watch"), 0);
}

#[test]
fn a_watch_the_server_drops_is_resumed_and_the_wait_completes() {
    let drop = Fault::drop_connection().on("GET", "*/pods").with_query("watch", "true").times(1);
    let (api, requests) = scale_and_wait_with(Duration::from_secs(3), &[drop]);
    assert_eq!(api.faults().iter().map(Fault::fired).collect::<Vec<_>>(), [1], "the pods watch was dropped");
    // The dropped watch is resumed from its resourceVersion: watched again by the same selector,
    // without listing those pods again. (Other requests in flight on the dropped connection, such as
    // another stream's first list, are sent again as they must be.)
    let dropped =
        requests.iter().position(|r| r.path.ends_with("/pods") && r.watch && r.dropped).expect("dropped");
    let selector = requests[dropped].query_param("labelSelector").expect("a selected watch");
    let after: Vec<&RequestRecord> = requests[dropped + 1..]
        .iter()
        .filter(|r| r.path.ends_with("/pods") && r.query_param("labelSelector") == Some(selector))
        .collect();
    let lines: Vec<String> =
        after.iter().map(|r| format!("{:?} {} {:?}", r.verb, r.status, r.query)).collect();
    assert!(after.iter().any(|r| r.watch && r.status == 200), "watched again: {lines:#?}");
    assert!(after.iter().all(|r| r.watch), "not listed again: {lines:#?}");
    assert!(
        after.iter().all(|r| r.query_param("resourceVersion").is_some_and(|v| !v.is_empty() && v != "0")),
        "from where it was: {lines:#?}"
    );
}

#[test]
fn a_watch_answered_410_gone_lists_again_and_the_wait_completes() {
    let expired = Fault::watch_expired().on("GET", "*/pods").with_query("watch", "true").times(1);
    let (api, requests) = scale_and_wait_with(Duration::from_secs(3), &[expired]);
    assert_eq!(api.faults().iter().map(Fault::fired).collect::<Vec<_>>(), [1], "the pods watch expired");
    // Listed to find the release (two selectors), the watches started from there, and the expired
    // one's selector listed again after the 410.
    assert_eq!(count(&requests, "/pods", "list"), 3, "{:#?}", request_lines(&requests));
    assert!(count(&requests, "/pods", "watch") >= 3, "{:#?}", request_lines(&requests));
    // The other kinds were not affected.
    assert_eq!(count(&requests, "/deployments", "list"), 1, "{:#?}", request_lines(&requests));
}

#[test]
fn a_wait_follows_the_release_from_the_lists_it_was_found_in() {
    // The watches start from the lookup's lists, each from its list's resourceVersion: nothing is
    // listed a second time. The plugin's own write comes after those lists and before any watch: the
    // wait sees it through the watches, and completes.
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .scale_up_ready_delay(Duration::from_secs(3))
        .start();
    api.clear_requests();
    let before = api.resource_version();
    let out = run(&api, &["scale", "my-release", "querynode=2", "--wait", "--timeout", "90s"]).success();
    assert!(out.stdout.ends_with("querynode: 2 of 2 replicas ready\n"), "{}", out.stdout);
    let requests = resource_requests(&api);
    let lines: Vec<String> =
        requests.iter().map(|r| format!("{} {} {:?} {:?}", r.method, r.path, r.verb, r.query)).collect();
    let write = requests.iter().position(|r| r.method == "PATCH").expect("the write");
    assert!(
        requests[write..].iter().all(|r| r.verb.as_deref() != Some("list")),
        "nothing is listed after the write: {lines:#?}"
    );
    for (kind, streams) in [("/deployments", 1), ("/statefulsets", 1), ("/pods", 2)] {
        let lists: Vec<&RequestRecord> = requests[..write]
            .iter()
            .filter(|r| r.path.ends_with(kind) && r.verb.as_deref() == Some("list"))
            .collect();
        assert_eq!(lists.len(), streams, "{kind} listed to find the release: {lines:#?}");
        for list in lists {
            let selector = list.query_param("labelSelector");
            let (at, first) = requests
                .iter()
                .enumerate()
                .find(|(_, r)| {
                    r.path.ends_with(kind) && r.watch && r.query_param("labelSelector") == selector
                })
                .unwrap_or_else(|| panic!("{kind} {selector:?} watched: {lines:#?}"));
            assert!(at > write, "{kind} {selector:?} watched after the write: {lines:#?}");
            let from: u64 = first
                .query_param("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{kind} watched from a resourceVersion: {lines:#?}"));
            if api.backend() == Backend::Loopback {
                // Nothing changed before the write: every list was read at the same resourceVersion.
                assert_eq!(from, before, "{kind} {selector:?} watched from its list: {lines:#?}");
            } else {
                // Other objects of the cluster change too: the list was read at this run, no earlier.
                assert!(from >= before, "{kind} {selector:?} watched from its list: {lines:#?}");
            }
        }
    }
}

#[test]
fn wait_times_out_and_names_the_failing_pods() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .pod_behaviour("my-release-milvus-querynode", 2, PodBehaviour::oom_killed(3))
        .start();
    let out = run(&api, &["scale", "my-release", "querynode=3", "--wait", "--timeout", "3s"]).failure(1);
    assert!(
        out.stderr.contains("error: timed out after 3s waiting for\n  querynode: 2/3 ready"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("Problems\nPOD"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("CrashLoopBackOff: container querynode last terminated OOMKilled (exit code 137)"),
        "{}",
        out.stdout
    );
}

/// Scales a crash-looping datanode in from 5 to 2 with `extra` arguments and interrupts the plugin with
/// SIGINT after its first step: the component stays unhealthy, so the scale-in waits there.
fn interrupted_scale_in(extra: &[&str]) -> (TestApi, std::process::Output) {
    // After the first write, the plugin reads the release to check health: interrupt it then.
    let (api, child) = scale_in_waiting_after_its_first_step(extra);
    let status =
        std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    (api, output)
}

#[test]
fn interrupting_a_scale_in_stops_after_the_current_step_and_reports() {
    let (api, output) = interrupted_scale_in(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: stopped after the current step"), "{stderr}");
    assert!(stderr.contains("datanode: at 4 of the way 5 → 2"), "{stderr}");
    assert_eq!(api.requests().iter().filter(|r| r.method == "PATCH").count(), 1, "nothing more was written");
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 4);
    // Helm's record: the new revision failed, the one before stays deployed.
    assert!(
        stderr.contains("Helm revision 2 of my-release is marked failed (datanode stopped at 4 of 5 → 2)"),
        "{stderr}"
    );
    assert_eq!(crate::helm_record::revisions(&api), [(1, "deployed".into()), (2, "failed".into())]);
}

#[test]
fn json_after_an_interruption_says_interrupted_and_what_was_applied() {
    let (api, output) = interrupted_scale_in(&["-o", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let result: Value = serde_json::from_slice(&output.stdout).expect("a ScaleResult on stdout");
    let change = &result["changes"][0];
    assert_eq!(change["component"], "datanode");
    assert_eq!(change["status"], "interrupted", "{result}");
    assert_eq!(change["applied"], serde_json::json!([4]), "{result}");
    assert_eq!(change["steps"], serde_json::json!([4, 3, 2]), "{result}");
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 4);
}

#[test]
fn a_failure_midway_reports_what_changed_and_what_did_not() {
    let api = helm_with(1, 1);
    api.set_fault(
        Fault::status(500)
            .on("PATCH", "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-datanode"),
    );
    let out = run(&api, &["scale", "my-release", "querynode=2", "datanode=2"]).failure(1);
    assert!(out.stderr.contains("Internal error occurred: injected fault"), "{}", out.stderr);
    assert!(
        out.stderr.contains("What was applied:\n  querynode: scaled 1 → 2\n  datanode: not changed (1)"),
        "{}",
        out.stderr
    );
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 1);
}

#[test]
fn json_output_carries_the_plan_and_the_result() {
    let api = helm_with(1, 3);
    let plan =
        run(&api, &["scale", "my-release", "querynode=2", "datanode=1", "--dry-run=client", "-o", "json"])
            .success()
            .json();
    assert_eq!(plan["kind"], "ScaleResult");
    assert_eq!(plan["dryRun"], "client");
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes[0]["component"], "querynode");
    assert_eq!(changes[0]["status"], "planned");
    assert_eq!(changes[1]["steps"], serde_json::json!([2, 1]));
    assert_eq!(
        changes[1]["owner"],
        serde_json::json!({"kind": "deployment", "name": "my-release-milvus-datanode"})
    );
    assert!(changes[1]["diff"].as_str().unwrap_or("").contains("+  replicas: 1"));
    // dataNode goes back to the 1 Helm records: only queryNode differs from the record.
    assert_eq!(plan["helm"]["recorded"], serde_json::json!([["queryNode.replicas", 1]]));
    assert!(!plan["helm"]["command"].as_str().unwrap_or("").contains("dataNode"), "{}", plan["helm"]);

    let done = run(&api, &["scale", "my-release", "querynode=2", "-o", "yaml"]).success().yaml();
    assert_eq!(done["changes"][0]["status"], "scaled");
    assert_eq!(done["changes"][0]["applied"], serde_json::json!([2]));
}

#[test]
fn json_after_a_failure_midway_says_which_change_failed() {
    let api = helm_with(1, 1);
    api.set_fault(
        Fault::status(500)
            .on("PATCH", "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-datanode"),
    );
    let out = run(&api, &["scale", "my-release", "querynode=2", "datanode=2", "-o", "json"]).failure(1);
    assert!(out.stderr.contains("Internal error occurred: injected fault"), "{}", out.stderr);
    let result = out.json();
    let changes = result["changes"].as_array().expect("changes");
    assert_eq!(changes[0]["component"], "querynode");
    assert_eq!(changes[0]["status"], "scaled", "{result}");
    assert_eq!(changes[0]["applied"], serde_json::json!([2]));
    assert_eq!(changes[1]["component"], "datanode");
    assert_eq!(changes[1]["status"], "failed", "{result}");
    assert_eq!(changes[1]["applied"], serde_json::json!([]));
    // Helm's record is spoken of for what was written only.
    assert_eq!(result["helm"]["recorded"], serde_json::json!([["queryNode.replicas", 1]]), "{result}");
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-datanode"), 1);
}
