//! Tried as a hostile user would: bad input of every kind refused before anything is sent, cluster data
//! that tries to drive the terminal, silent and flaky servers, and someone else changing what the plugin
//! is waiting for.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Waits for a started plugin at most `limit`; a plugin still running then is killed and fails the test.
fn bounded(mut child: std::process::Child, limit: Duration) -> Run {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the plugin") {
            let mut stdout = String::new();
            let mut stderr = String::new();
            child.stdout.take().map(|mut s| s.read_to_string(&mut stdout));
            child.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
            return Run { stdout, stderr, code: status.code().unwrap_or(-1) };
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the plugin was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(kubeconfig: Option<&Path>, args: &[&str]) -> std::process::Child {
    command(Via::Binary, kubeconfig, args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the plugin")
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear message, exit 1, and (for scale) nothing written.

#[test]
fn bad_input_is_refused_with_a_message_and_nothing_is_written() {
    let api = helm_release("helm/default.yaml");
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.yaml");
    std::fs::write(&garbage, "this: [is not a kubeconfig").expect("write");
    let missing = dir.path().join("missing.yaml");
    let garbage = garbage.to_string_lossy().into_owned();
    let missing = missing.to_string_lossy().into_owned();
    let long = "a".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Release names.
        (vec!["status", "My-Release"], "invalid release name \"My-Release\""),
        (vec!["status", "a b"], "invalid release name"),
        (vec!["status", "x,app=y"], "invalid release name"),
        (vec!["scale", "../etc", "querynode=2"], "invalid release name"),
        (vec!["scale", "-x", "querynode=2"], "unexpected argument"),
        (vec!["status", &long], "must be no more than 63 characters"),
        (vec!["status", "a..b"], "invalid release name"),
        (vec!["scale", "x)", "querynode=2"], "invalid release name"),
        // Namespaces.
        (vec!["list", "-n", "Bad NS"], "invalid namespace \"Bad NS\""),
        (vec!["list", "-n", "../kube-system"], "invalid namespace \"../kube-system\""),
        (vec!["status", "my-release", "-n", "a-"], "invalid namespace"),
        (vec!["scale", "my-release", "querynode=2", "-n", "UPPER"], "invalid namespace"),
        (vec!["status", "my-release", "-n", "a_b"], "invalid namespace"),
        // Components and values.
        (vec!["scale", "my-release", "querynod=2"], "unknown component \"querynod\""),
        (vec!["scale", "my-release", "mixcoord=2"], "mixcoord is a coordinator"),
        (vec!["scale", "my-release", "querynode=1.5"], "not a whole number"),
        (vec!["scale", "my-release", "querynode=-3"], "would leave -2 replicas"),
        (vec!["scale", "my-release", "querynode=1001"], "more than the 1000"),
        (vec!["scale", "my-release", "querynode=99999999999999999999"], "too large"),
        (vec!["scale", "my-release", "querynode"], "expected COMPONENT=REPLICAS"),
        (vec!["scale", "my-release", "querynode=2", "querynode=3"], "named more than once"),
        (vec!["scale", "my-release", "querynode[rg9]=2"], "no group \"rg9\""),
        (vec!["scale", "my-release", "querynode[=2"], "COMPONENT[GROUP]"),
        (vec!["scale", "my-release", "query node=2"], "invalid component name"),
        (vec!["scale", "my-release", "querynode=0"], "--allow-zero"),
        (vec!["scale", "my-release", "attu=1"], "attu is not a Milvus worker"),
        (vec!["scale", "my-release", "standalone=2"], "runs as a single pod"),
        (vec!["scale", "my-release", "querynode", "--replicas=-1"], "0 or more"),
        (vec!["scale", "my-release", "querynode", "--replicas=+1"], "for a relative change"),
        (vec!["scale", "my-release", "querynode=2", "--replicas=3"], "not both"),
        (vec!["scale", "my-release", "querynode", "datanode", "--replicas=3"], "exactly one COMPONENT"),
        // Flags.
        (vec!["scale", "my-release", "querynode=2", "--timeout", "-1s"], "a timeout cannot be negative"),
        (vec!["scale", "my-release", "querynode=2", "--timeout", "soon"], "--timeout"),
        (vec!["scale", "my-release", "querynode=2", "--wait", "--timeout", "0s"], "--timeout 0"),
        (vec!["scale", "my-release", "querynode=2", "--dry-run=maybe"], "invalid value 'maybe'"),
        (vec!["scale", "my-release", "querynode=2", "--allow-zero=perhaps"], "invalid value 'perhaps'"),
        (vec!["scale", "my-release", "querynode=2", "-o", "wide"], "allowed formats are: json,yaml"),
        (vec!["scale", "my-release", "querynode=2", "--step", "-1"], "unexpected argument"),
        (vec!["status", "my-release", "-o", "name"], "allowed formats are: json,wide,yaml"),
        (vec!["status", "my-release", "-w", "--interval", "0s"], "shorter than the 1s"),
        (vec!["list", "-o", "table"], "allowed formats are: json,name,wide,yaml"),
        (vec!["list", "-l", "app in (a"], "unable to parse requirement"),
        (vec!["list", "--request-timeout", "soon"], "invalid timeout value"),
        (vec!["version", "-o", "wide"], "--output must be 'yaml' or 'json'"),
        // Kubeconfigs.
        (vec!["list", "--kubeconfig", &missing], "no such file or directory"),
        (vec!["list", "--kubeconfig", &garbage], "error"),
        (vec!["list", "--context", "nope"], "context was not found for specified context: nope"),
        (vec!["list", "--user", "nobody"], "auth info \"nobody\" does not exist"),
        (vec!["list", "--cluster", "nowhere"], "cluster \"nowhere\" does not exist"),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (args, expected) in cases {
        api.clear_requests();
        let out = run(&api, &args);
        assert_eq!(out.code, 1, "{args:?}: exit {}\n{}", out.code, out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: expected {expected:?} in\n{}", out.stderr);
        assert!(
            out.stderr.starts_with("error: ") || out.stderr.starts_with("Error from server"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(mutating(&api).is_empty(), "{args:?} wrote something: {:?}", mutating(&api));
    }
}

#[test]
fn an_empty_namespace_means_the_default_one() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture_as("helm/default.yaml", "f1", "default")
        .helm_install(true)
        .fixture_as("helm/default.yaml", "f1", "other")
        .helm_install(true)
        .start();
    let list = run(&api, &["list", "-n", ""]).success();
    assert!(!list.stdout.contains("NAMESPACE"), "{}", list.stdout);
    assert_eq!(list.stdout.lines().filter(|l| l.starts_with("f1 ")).count(), 1, "{}", list.stdout);
    run(&api, &["scale", "f1", "-n", "", "querynode=2"]).success();
    assert_eq!(deployment_replicas(&api, "default", "f1-milvus-querynode"), 2);
    assert_eq!(
        deployment_replicas(&api, "other", "f1-milvus-querynode"),
        1,
        "the release in another namespace is untouched"
    );
}

#[test]
fn missing_files_in_kubeconfig_are_skipped_as_kubectl_skips_them() {
    let api = helm_release("helm/default.yaml");
    let joined =
        std::env::join_paths([Path::new("/nonexistent/kubeconfig"), api.kubeconfig_path()]).expect("join");
    let out = command(Via::Binary, None, &["list"]).env("KUBECONFIG", joined).output().expect("run");
    let out = Run {
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        code: out.status.code().unwrap_or(-1),
    };
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("my-release"), "{}", out.stdout);
}

#[test]
fn a_timeout_too_large_for_the_clock_is_no_panic() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .replicas("my-release-milvus-datanode", 3)
        .start();
    let out = run(&api, &["scale", "my-release", "datanode=2", "--timeout", "18446744073709551615s"]);
    assert_ne!(out.code, 134, "a panic: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Cluster data that tries to drive the terminal.

const HOSTILE: &str = "\u{1b}[31mOOM\u{1b}]0;pwned\u{7}\u{1b}[2J";

#[test]
fn control_characters_from_the_cluster_are_escaped_in_human_output_and_exact_in_json() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .pod_behaviour(
            "my-release-milvus-querynode",
            0,
            PodBehaviour::CrashLoopBackOff { restarts: 4, reason: HOSTILE.into(), exit_code: 137 },
        )
        .pod_behaviour(
            "my-release-milvus-datanode",
            0,
            PodBehaviour::CreateContainerConfigError { message: format!("secret {HOSTILE} not found") },
        )
        .start();
    api.settle().expect("settled");
    for args in [&["status", "my-release"][..], &["status", "my-release", "--pods"], &["list"]] {
        let out = run(&api, args);
        assert!(!out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'), "{args:?}:\n{}", out.stdout);
        assert!(!out.stderr.contains('\u{1b}'), "{args:?}:\n{}", out.stderr);
    }
    let status = run(&api, &["status", "my-release"]);
    assert!(status.stdout.contains("\\x1b[31mOOM\\x1b]0;pwned\\x07\\x1b[2J"), "{}", status.stdout);
    let json = run(&api, &["status", "my-release", "-o", "json"]).json();
    let reasons: Vec<&str> =
        json["problems"].as_array().expect("problems").iter().filter_map(|p| p["reason"].as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains(HOSTILE)), "JSON keeps the text exact: {reasons:?}");
}

// ---------------------------------------------------------------------------------------------
// Silent and flaky servers.

#[test]
fn a_server_that_accepts_and_never_answers_is_given_up_on() {
    // Accepts the connection and says nothing: the TLS handshake never completes. Connecting (TCP and
    // TLS) gives up after 10 s by default.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let server = format!("https://{}", listener.local_addr().expect("address"));
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(256).flatten() {
            held.push(stream);
        }
    });
    let api = helm_release("helm/default.yaml");
    for args in [&["list"][..], &["status", "my-release"], &["scale", "my-release", "querynode=2"]] {
        let mut full = args.to_vec();
        full.extend(["--server", &server, "--insecure-skip-tls-verify"]);
        let out = bounded(spawn(Some(api.kubeconfig_path()), &full), Duration::from_secs(40));
        assert_eq!(out.code, 1, "{full:?}: {}", out.stderr);
        assert!(out.stderr.contains("Unable to connect to the server"), "{full:?}: {}", out.stderr);
    }
    drop(held);
}

#[test]
fn a_server_that_never_sends_its_response_is_given_up_on_at_the_request_timeout() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::delay(Duration::from_secs(3600)).on("GET", "*/deployments"));
    let out = bounded(
        spawn(Some(api.kubeconfig_path()), &["list", "--request-timeout", "2s"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    // Without --request-timeout the default deadline (60 s) ends it.
    let out = bounded(spawn(Some(api.kubeconfig_path()), &["list"]), Duration::from_secs(120));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn reads_are_retried_and_writes_are_not() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::status(503).on("GET", "*/pods").times(1));
    api.set_fault(Fault::drop_connection().on("GET", "*/statefulsets").times(1));
    api.clear_requests();
    run(&api, &["status", "my-release"]).success();
    // The release's pods are two label-selected lists: the one answered 503 is sent again, once. The
    // other is sent once, or twice when it was in flight on the connection the dropped StatefulSet
    // read closed (its reply lost with it: on a real server it often is).
    let mut pods: Vec<(String, Vec<u16>)> = Vec::new();
    for r in api.requests().iter().filter(|r| r.path.ends_with("/pods")) {
        let selector = r.query_param("labelSelector").unwrap_or_default().to_string();
        match pods.iter_mut().find(|(s, _)| *s == selector) {
            Some((_, statuses)) => statuses.push(r.status),
            None => pods.push((selector, vec![r.status])),
        }
    }
    assert_eq!(pods.len(), 2, "{pods:?}");
    let refused: Vec<&Vec<u16>> = pods.iter().map(|(_, s)| s).filter(|s| s.contains(&503)).collect();
    assert_eq!(refused, [&vec![503, 200]], "the pod list was tried again after the 503: {pods:?}");
    let other = pods.iter().map(|(_, s)| s).find(|s| !s.contains(&503)).expect("the other pod list");
    assert!(matches!(other.as_slice(), [200] | [200, 200]), "{pods:?}");
    api.clear_faults();
    api.set_fault(Fault::status(503).on("PATCH", "*/deployments/my-release-milvus-querynode").times(1));
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=2"]).failure(1);
    assert!(out.stderr.contains("Error from server"), "{}", out.stderr);
    assert!(!out.stderr.contains("error: Error from server"), "one prefix: {}", out.stderr);
    let deployment_writes = mutating(&api).into_iter().filter(|r| r.path.contains("/deployments/")).count();
    assert_eq!(deployment_writes, 1, "a write is never sent twice");
}

// ---------------------------------------------------------------------------------------------
// Someone else changes what the plugin waits for.

#[test]
fn a_change_by_someone_else_while_waiting_stops_the_wait_and_is_named() {
    // A crash-looping datanode keeps the scale-in waiting after its first step.
    let (api, child) = scale_in_waiting_after_its_first_step(&[]);
    api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-datanode", 12)
        .expect("someone else scales");
    let out = bounded(child, Duration::from_secs(30));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("deployment.apps/my-release-milvus-datanode was changed to 12"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("stopped; nothing more was written"), "{}", out.stderr);
    assert_eq!(
        deployment_replicas(&api, "default", "my-release-milvus-datanode"),
        12,
        "the plugin wrote nothing over the other change"
    );
}

#[test]
fn a_server_lost_while_waiting_ends_the_wait_with_the_error_not_a_success() {
    // The new pod never gets ready in time; the watches are renewed every 2 s (--request-timeout 3s).
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .scale_up_ready_delay(Duration::from_secs(600))
        .start();
    api.clear_requests();
    let args =
        ["scale", "my-release", "querynode=2", "--wait", "--timeout", "10s", "--request-timeout", "3s"];
    let child = spawn(Some(api.kubeconfig_path()), &args);
    api.wait_until(
        |s| s.requests().iter().any(|r| r.watch && r.path.ends_with("/pods") && r.status == 200),
        Duration::from_secs(30),
    )
    .expect("the pods are followed");
    // From now on no request is answered (pooled connections included): no watch can be renewed, and
    // the wait cannot know what the pods do.
    api.stop_listening();
    api.set_fault(Fault::drop_connection());
    let out = bounded(child, Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    // It says what is true: the server could not be reached (not that the pods were slow, not ready).
    assert!(out.stderr.contains("The connection to the server 127.0.0.1:"), "{}", out.stderr);
    assert!(out.stderr.contains("was refused"), "{}", out.stderr);
    assert!(!out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(!out.stdout.contains("replicas ready"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------
// kubectl's flag forms.

#[test]
fn kubectl_flag_forms_are_understood() {
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").helm_install(true).start();
    api.clear_requests();
    // A bare --dry-run before a target: a client dry run of that target.
    let out = run(&api, &["scale", "my-release", "--dry-run", "querynode=2"]).success();
    assert!(out.stdout.contains("scaled (1 → 2) (client dry run)"), "{}", out.stdout);
    assert!(
        out.stderr.contains("--dry-run is deprecated and can be replaced with --dry-run=client."),
        "{}",
        out.stderr
    );
    // --dry-run=true and =false: kubectl's old boolean form.
    let out = run(&api, &["scale", "my-release", "querynode=2", "--dry-run=true"]).success();
    assert!(out.stdout.contains("(client dry run)"), "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "--dry-run=true is deprecated (boolean value) and can be replaced with --dry-run=client."
        ),
        "{}",
        out.stderr
    );
    assert!(mutating(&api).is_empty(), "dry runs write nothing");
    // Boolean flags take =false and =true.
    let out = run(&api, &["scale", "my-release", "querynode=0", "--allow-zero=false"]).failure(1);
    assert!(out.stderr.contains("--allow-zero"), "{}", out.stderr);
    assert!(mutating(&api).is_empty());
    run(&api, &["scale", "my-release", "querynode=2", "--dry-run=false", "--wait=false"]).success();
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    run(&api, &["status", "my-release", "--pods=false", "--exit-code=false"]).success();
    run(&api, &["list", "-A=true"]).success();
}

// ---------------------------------------------------------------------------------------------
// Lost replies, throttling and broken connections, injected by the proxy in front of either
// backend.

const QUERYNODE: &str = "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-querynode";

#[test]
fn a_write_whose_reply_was_lost_is_read_again_and_reported_as_written() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::drop_reply().on("PATCH", QUERYNODE).times(1));
    api.clear_requests();
    let out = bounded(
        spawn(Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=2"]),
        Duration::from_secs(60),
    );
    let log = api.requests();
    let summary: Vec<String> =
        log.iter().map(|r| format!("{} {} {} {}", r.method, r.path, r.status, r.fault)).collect();
    assert_eq!(out.code, 0, "{}\n{}\n{summary:#?}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("deployment.apps/my-release-milvus-querynode scaled (1 → 2)"),
        "the step counts as written: {}",
        out.stdout
    );
    let patches: Vec<&RequestRecord> = log.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "never sent twice: {summary:#?}");
    assert!(patches[0].fault && patches[0].dropped && patches[0].status == 0, "{:?}", patches[0]);
    let patched = log.iter().position(|r| r.method == "PATCH").expect("the patch");
    assert!(
        log[patched..].iter().any(|r| r.method == "GET" && r.path == QUERYNODE && r.status == 200),
        "read again after the lost reply: {summary:#?}"
    );
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
}

#[test]
fn a_write_whose_connection_dropped_before_it_was_sent_did_not_happen() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::drop_connection().on("PATCH", QUERYNODE).times(1));
    api.clear_requests();
    let out = bounded(
        spawn(Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=2"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("the write did not happen"), "{}", out.stderr);
    let patches: Vec<RequestRecord> = mutating(&api).into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "never sent twice: {patches:?}");
    assert!(patches[0].fault && patches[0].dropped, "{:?}", patches[0]);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 1);
    // Helm's record says the same: the new revision failed, the old one stays deployed.
    assert_eq!(crate::helm_record::revisions(&api), [(1, "deployed".into()), (2, "failed".into())]);
}

#[test]
fn a_lost_reply_that_cannot_be_read_again_is_reported_as_unknown() {
    let api = helm_release("helm/default.yaml");
    // The plugin reads the Deployment itself once before writing (the 1st GET) and once after the
    // lost reply (the 2nd); a 500 is not tried again.
    api.set_fault(Fault::drop_reply().on("PATCH", QUERYNODE).times(1));
    api.set_fault(Fault::status(500).on("GET", QUERYNODE).nth(2).message("etcdserver: request timed out"));
    let out = bounded(
        spawn(Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=2", "-o", "json"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is unknown"), "{}", out.stderr);
    assert!(out.stderr.contains("could not be read again"), "{}", out.stderr);
    let result: serde_json::Value = serde_json::from_str(&out.stdout).expect("json on stdout");
    assert_eq!(result["changes"][0]["status"], "unknown", "{result}");
}

#[test]
fn a_read_answered_429_or_503_with_retry_after_is_tried_again_after_it() {
    for code in [429, 503] {
        let api = helm_release("helm/default.yaml");
        api.set_fault(Fault::status(code).retry_after(1).on("GET", "*/statefulsets").times(1));
        api.clear_requests();
        let out =
            bounded(spawn(Some(api.kubeconfig_path()), &["status", "my-release"]), Duration::from_secs(60));
        assert_eq!(out.code, 0, "{code}: {}", out.stderr);
        let tries: Vec<RequestRecord> =
            api.requests().into_iter().filter(|r| r.path.ends_with("/statefulsets")).collect();
        let statuses: Vec<u16> = tries.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [code, 200], "{code}: tried again");
        assert!(tries[0].fault && !tries[1].fault);
        assert!(tries[1].received > tries[0].received, "{code}: the second try came after the first");
    }
}

#[test]
fn a_retry_after_too_long_to_wait_for_is_reported() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::status(429).retry_after(3600).on("GET", "*/statefulsets"));
    api.clear_requests();
    let out = bounded(spawn(Some(api.kubeconfig_path()), &["status", "my-release"]), Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("Too many requests"), "{}", out.stderr);
    let tries = api.requests().iter().filter(|r| r.path.ends_with("/statefulsets")).count();
    assert_eq!(tries, 1, "not waited for");
}

#[test]
fn a_read_dropped_mid_response_is_tried_again() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::drop_mid_response().on("GET", "*/statefulsets").times(1));
    api.clear_requests();
    let out = bounded(spawn(Some(api.kubeconfig_path()), &["status", "my-release"]), Duration::from_secs(60));
    let tries: Vec<(u16, bool)> = api
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/statefulsets"))
        .map(|r| (r.status, r.dropped))
        .collect();
    assert_eq!(out.code, 0, "{}\n{tries:?}", out.stderr);
    assert_eq!(tries, [(200, true), (200, false)], "cut off, then tried again");
}

#[test]
fn slow_bodies_are_read_to_the_end() {
    let api = helm_release("helm/default.yaml");
    api.set_fault(Fault::chunk_delay(Duration::from_millis(200)).on("GET", "*/pods"));
    let out = bounded(spawn(Some(api.kubeconfig_path()), &["status", "my-release"]), Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(api.faults().iter().all(|f| f.fired() > 0));
}

#[test]
fn a_server_that_stalls_after_accepting_or_after_tls_is_given_up_on() {
    for (stall, name) in
        [(Fault::stall_after_accept(), "after accept"), (Fault::stall_after_tls(), "after TLS")]
    {
        let api = helm_release("helm/default.yaml");
        api.set_fault(stall);
        let started = Instant::now();
        let out = bounded(
            spawn(Some(api.kubeconfig_path()), &["list", "--request-timeout", "2s"]),
            Duration::from_secs(30),
        );
        assert_eq!(out.code, 1, "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains("Unable to connect to the server") || out.stderr.contains("timed out"),
            "{name}: {}",
            out.stderr
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{name}: within the deadline");
    }
}
