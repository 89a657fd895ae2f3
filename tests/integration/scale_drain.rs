//! The drained scale-in of query nodes: each step suspends the node Milvus should give up, waits
//! until its data has moved and every collection is fully served, marks its pod with
//! `pod-deletion-cost`, lowers the replicas by one and waits until the pod is gone; data that cannot
//! move stops the scale-in with the node put back; Ctrl-C leaves nothing suspended or marked.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::support::*;

const QUERYNODE: &str = "my-release-milvus-querynode";

/// helm/default.yaml with 4 query nodes whose pods have time to drain, and `milvus` answering.
fn release(milvus: &FakeMilvus) -> TestApi {
    let mut docs = fixture_docs("helm/default.yaml");
    for d in &mut docs {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == QUERYNODE {
            d["spec"]["replicas"] = json!(4);
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1900);
        }
    }
    TestApi::builder().age(AGE).objects(docs).milvus(milvus).start()
}

fn milvus() -> FakeMilvus {
    FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 10).collection(460, "films", 2, 2, 6)
}

fn querynode_pods(api: &TestApi) -> Vec<String> {
    let mut pods: Vec<String> = api
        .list_json("", "pods", Some("default"), None)
        .expect("pods")
        .iter()
        .filter_map(|p| {
            p["metadata"]["name"]
                .as_str()
                .filter(|n| n.starts_with(&format!("{QUERYNODE}-")))
                .map(String::from)
        })
        .collect();
    pods.sort();
    pods
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Suspend(i64),
    Resume(i64),
    Empty(i64),
    Mark(String),
    Unmark(String),
    Scale(i64),
    Gone(i64),
}

/// What the plugin did and saw, in order: Milvus's management calls and answers (from the fake's
/// log) and the pod marks and replica writes (from the API server's log).
fn steps(api: &TestApi, milvus: &FakeMilvus) -> Vec<Step> {
    let mut timed: Vec<(SystemTime, Step)> = Vec::new();
    let mut suspended: Vec<i64> = Vec::new();
    let mut emptied: Vec<i64> = Vec::new();
    let mut gone: Vec<i64> = Vec::new();
    for r in milvus.requests() {
        let node = r.param("node_id").and_then(|n| n.parse::<i64>().ok());
        match (r.method.as_str(), r.path.as_str(), node) {
            ("POST", "/management/querycoord/node/suspend", Some(n)) => {
                suspended.push(n);
                timed.push((r.received, Step::Suspend(n)));
            }
            ("POST", "/management/querycoord/node/resume", Some(n)) => {
                timed.push((r.received, Step::Resume(n)))
            }
            ("GET", "/management/querycoord/distribution/get", Some(n)) if !emptied.contains(&n) => {
                let a = r.answer_json();
                if a["channel_names"].is_null() && a["sealed_segmentIDs"] == json!([]) {
                    emptied.push(n);
                    timed.push((r.received, Step::Empty(n)));
                }
            }
            ("GET", "/management/querycoord/node/list", _) => {
                let listed: Vec<i64> = r.answer_json()["nodeInfos"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["ID"].as_i64())
                    .collect();
                for n in suspended
                    .iter()
                    .copied()
                    .filter(|n| !listed.contains(n) && !gone.contains(n))
                    .collect::<Vec<_>>()
                {
                    gone.push(n);
                    timed.push((r.received, Step::Gone(n)));
                }
            }
            _ => {}
        }
    }
    for r in api.requests().into_iter().filter(|r| r.method == "PATCH") {
        if let Some(pod) = r.path.strip_prefix("/api/v1/namespaces/default/pods/") {
            let cost = r
                .body
                .as_ref()
                .map(|b| b["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"].clone());
            let step = if cost.as_ref().is_some_and(|c| !c.is_null()) {
                Step::Mark(pod.into())
            } else {
                Step::Unmark(pod.into())
            };
            timed.push((r.received, step));
        } else if r.path.ends_with(&format!("/deployments/{QUERYNODE}")) {
            let to = r.body.as_ref().and_then(|b| b["spec"]["replicas"].as_i64()).unwrap_or(-1);
            timed.push((r.received, Step::Scale(to)));
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    timed.into_iter().map(|(_, s)| s).collect()
}

fn pod_of(milvus: &FakeMilvus, pods: &[String], node: i64) -> String {
    pods.iter()
        .find(|p| milvus.node_id(p) == Some(node))
        .cloned()
        .unwrap_or_else(|| panic!("no pod for node {node}"))
}

#[test]
fn a_drained_scale_in_moves_each_nodes_data_before_removing_its_pod() {
    let milvus = milvus();
    let api = release(&milvus);
    let before = querynode_pods(&api);
    assert_eq!(before.len(), 4);
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=2", "--timeout", "60s"]).success();
    let steps = steps(&api, &milvus);
    let suspended: Vec<i64> =
        steps.iter().filter_map(|s| if let Step::Suspend(n) = s { Some(*n) } else { None }).collect();
    assert_eq!(suspended.len(), 2, "{steps:?}");
    let (n1, n2) = (suspended[0], suspended[1]);
    let (p1, p2) = (pod_of(&milvus, &before, n1), pod_of(&milvus, &before, n2));
    assert_eq!(
        steps,
        [
            Step::Suspend(n1),
            Step::Empty(n1),
            Step::Mark(p1.clone()),
            Step::Scale(3),
            Step::Gone(n1),
            Step::Suspend(n2),
            Step::Empty(n2),
            Step::Mark(p2.clone()),
            Step::Scale(2),
            Step::Gone(n2),
        ]
    );
    // The marked pods are the ones removed; the others and every collection are still served.
    let after = querynode_pods(&api);
    assert_eq!(after, before.iter().filter(|p| **p != p1 && **p != p2).cloned().collect::<Vec<_>>());
    assert_eq!(milvus.not_fully_served(), Vec::<String>::new());
    assert!(
        out.stdout.contains(&format!("querynode: node {n1} (pod {p1}) suspended: moving its")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("querynode: pod {p2} is gone and no node is stopping")),
        "{}",
        out.stdout
    );
}

#[test]
fn data_that_cannot_move_stops_the_scale_in_with_the_node_put_back() {
    // Two query nodes, each holding about half of everything, and no room for more on either.
    let milvus = FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 10).node_capacity(6);
    let api = release(&milvus);
    api.set_replicas(("apps", "deployments"), "default", QUERYNODE, 2).expect("two query nodes");
    api.settle().expect("settled");
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=1", "--timeout", "4s"]).failure(1);
    assert!(out.stderr.contains("could not be emptied within 4s"), "{}", out.stderr);
    assert!(
        out.stderr.contains("removing it would have taken service from collection 450"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("resumed"), "{}", out.stderr);
    let steps = steps(&api, &milvus);
    let n = match steps.first() {
        Some(Step::Suspend(n)) => *n,
        other => panic!("{other:?}: {steps:?}"),
    };
    assert_eq!(steps, [Step::Suspend(n), Step::Resume(n)], "no mark, no scale");
    assert!(milvus.query_nodes().iter().all(|(_, _, state)| state == "active"), "{:?}", milvus.query_nodes());
    assert_eq!(milvus.not_fully_served(), Vec::<String>::new(), "nothing lost");
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 2);
}

#[test]
fn ctrl_c_mid_drain_resumes_the_node_and_says_so() {
    // The balancer never gets to move anything within the test.
    let milvus = milvus().balance_delay(Duration::from_secs(600));
    let api = release(&milvus);
    api.clear_requests();
    let child = command(
        Via::Binary,
        Some(api.kubeconfig_path()),
        &["scale", "my-release", "querynode=3", "--timeout", "60s"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start");
    // Interrupt once the node is suspended and its distribution has been polled at least once.
    let polled = || {
        let log = milvus.requests();
        log.iter()
            .position(|r| r.path.ends_with("/node/suspend"))
            .is_some_and(|i| log[i..].iter().any(|r| r.path.ends_with("/distribution/get")))
    };
    let started = std::time::Instant::now();
    while !polled() {
        assert!(started.elapsed() < Duration::from_secs(30), "no drain started: {:?}", milvus.requests());
        std::thread::yield_now();
    }
    // SAFETY: `kill` sends SIGINT to the child process, which this test started and still owns.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = Run::from(child.wait_with_output().expect("wait"));
    assert_eq!(out.code, 130, "{}\n{}", out.stdout, out.stderr);
    let steps = steps(&api, &milvus);
    let n = match steps.first() {
        Some(Step::Suspend(n)) => *n,
        other => panic!("{other:?}: {steps:?}"),
    };
    assert_eq!(steps, [Step::Suspend(n), Step::Resume(n)]);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains(&format!("node {n} (pod")) && said.contains("resumed"), "{said}");
    assert!(said.contains("querynode: not changed (4)"), "{said}");
    assert!(milvus.query_nodes().iter().all(|(_, _, state)| state == "active"));
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 4);
}

#[test]
fn a_dry_run_shows_the_drain_plan_and_calls_nothing() {
    let milvus = milvus();
    let api = release(&milvus);
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=2", "--dry-run"]).success();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("querynode: drained"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let node =
        milvus.query_nodes().into_iter().min_by_key(|(_, id, _)| milvus.items_on(*id)).expect("a node");
    assert!(line.contains("one node per step (2 steps)"), "{line}");
    assert!(
        line.contains(&format!("(pod {})", node.0))
            || milvus
                .query_nodes()
                .iter()
                .filter(|(_, id, _)| milvus.items_on(*id) == milvus.items_on(node.1))
                .count()
                > 1,
        "{line}"
    );
    assert!(line.contains(" segments and ") && line.contains(" channels move"), "{line}");
    // The preflight's verdict.
    assert!(
        out.stdout.contains(
            "querynode: preflight: pods get 1900s to stop, a node's graceful stop takes up to 1800s (Milvus's default): a node has the time to hand its data over"
        ),
        "{}",
        out.stdout
    );
    assert!(milvus.requests().iter().all(|r| r.method == "GET"), "{:?}", milvus.requests());
    assert_eq!(mutating(&api), Vec::<RequestRecord>::new());
}

#[test]
fn without_drain_a_warning_says_milvus_is_not_asked() {
    let api = release(&milvus());
    api.set_pod_http_refused("my-release-milvus-proxy");
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    assert!(out.stderr.contains("cannot drain before scaling in"), "{}", out.stderr);
    assert!(out.stderr.contains("--no-drain scales in without asking Milvus"), "{}", out.stderr);
    assert!(out.stderr.contains("Nothing was changed."), "{}", out.stderr);
    assert_eq!(mutating(&api), Vec::<RequestRecord>::new());
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 4);
    let out = run(&api, &["scale", "my-release", "querynode=3", "--no-drain"]).success();
    assert!(out.stderr.contains("querynode: scaling in without draining (--no-drain)"), "{}", out.stderr);
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 3);
}

#[test]
fn an_operator_release_is_drained_stepping_the_milvus_object_one_replica_at_a_time() {
    let milvus = FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 6);
    let mut docs = fixture_docs("operator/cluster.yaml");
    for d in &mut docs {
        if d["kind"] == "Milvus" {
            d["spec"]["components"]["queryNode"]["replicas"] = json!(3);
        }
        if d["kind"] == "Deployment" {
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(2_592_000);
            if d["metadata"]["name"] == "my-release-milvus-querynode-0" {
                d["spec"]["replicas"] = json!(3);
            }
        }
    }
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .objects(docs)
        .operator_reconciler(true)
        .milvus(&milvus)
        .start();
    api.clear_requests();
    run(&api, &["scale", "my-release", "querynode=1", "--timeout", "60s"]).success();
    // Each write to the Milvus object lowers it by one, after that step's suspend and mark.
    let mut timed: Vec<(SystemTime, String)> = milvus
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/node/suspend"))
        .map(|r| (r.received, "suspend".to_string()))
        .collect();
    for r in api.requests().into_iter().filter(|r| r.method == "PATCH") {
        if r.path.starts_with("/api/v1/namespaces/default/pods/") {
            timed.push((r.received, "mark".into()));
        } else if r.path.ends_with("/milvuses/my-release") {
            let to = r.body.as_ref().map(|b| b["spec"]["components"]["queryNode"]["replicas"].clone());
            timed.push((r.received, format!("milvus {}", to.unwrap_or_default())));
        }
    }
    timed.sort_by_key(|(t, _)| *t);
    let order: Vec<&str> = timed.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(order, ["suspend", "mark", "milvus 2", "suspend", "mark", "milvus 1"]);
    assert_eq!(milvus.query_nodes().len(), 1, "{:?}", milvus.query_nodes());
    assert_eq!(milvus.not_fully_served(), Vec::<String>::new());
}

#[test]
fn a_streaming_node_is_drained_through_the_mixcoord() {
    // The chart's one query node cannot serve films' second replica: that collection is not fully
    // served before the drain begins, and the drain does not wait for it.
    let milvus = milvus();
    let mut docs = fixture_docs("helm/default.yaml");
    for d in &mut docs {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == "my-release-milvus-streamingnode" {
            d["spec"]["replicas"] = json!(2);
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1900);
        }
    }
    let api = TestApi::builder().age(AGE).objects(docs).milvus(&milvus).start();
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "streamingnode=1", "--timeout", "60s"]).success();
    let calls: Vec<(String, String, String)> = milvus
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" || r.path.contains("/streaming/nodes/distribution"))
        .map(|r| (r.method.clone(), r.path.clone(), r.pod.clone()))
        .collect();
    let put = calls.iter().position(|(m, p, pod)| {
        m == "PUT" && p == "/management/streaming/nodes/status" && pod.contains("mixcoord")
    });
    let put = put.unwrap_or_else(|| panic!("{calls:?}"));
    assert!(calls[put..].iter().any(|(_, p, _)| p.ends_with("/streaming/nodes/distribution")), "{calls:?}");
    assert!(out.stdout.contains("streamingnode: node "), "{}", out.stdout);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-streamingnode"), 1);
    let body = milvus.requests().into_iter().find(|r| r.method == "PUT").map(|r| r.body).unwrap_or_default();
    assert!(body.contains("\"status\":\"suspended\""), "{body}");
    assert_eq!(milvus.not_fully_served(), ["films"]);
}

#[test]
fn a_resource_groups_scale_in_drains_its_own_nodes() {
    // querynode (2 pods) and querynode[aa] (2 pods, Helm replicaResourceGroups): scaling the group
    // in suspends the group's own nodes only (`serving::choose_node`'s unit test covers the choice
    // when another group's node holds less data).
    let milvus = milvus();
    let mut docs = fixture_docs("helm/default.yaml");
    for d in &mut docs {
        if d["kind"] == "Deployment" && d["metadata"]["name"] == QUERYNODE {
            d["spec"]["replicas"] = json!(2);
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = json!(1900);
        }
    }
    let group_name = format!("{QUERYNODE}-aa");
    let mut group = grouped_copy(&docs, QUERYNODE, "milvus.io/resource-group", "aa", &group_name);
    group["spec"]["replicas"] = json!(2);
    docs.insert(0, group);
    let api = TestApi::builder().age(AGE).objects(docs).milvus(&milvus).start();
    let group_pods: Vec<String> = api
        .list_json("", "pods", Some("default"), Some("milvus.io/resource-group=aa"))
        .expect("pods")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(String::from))
        .collect();
    assert_eq!(group_pods.len(), 2, "{group_pods:?}");
    api.clear_requests();
    run(&api, &["scale", "my-release", "querynode[aa]=0", "--allow-zero", "--timeout", "60s"]).success();
    let suspended: Vec<i64> = milvus
        .requests()
        .iter()
        .filter(|r| r.path == "/management/querycoord/node/suspend")
        .filter_map(|r| r.param("node_id").and_then(|n| n.parse().ok()))
        .collect();
    let suspended_pods: Vec<String> = suspended.iter().map(|n| pod_of(&milvus, &group_pods, *n)).collect();
    assert_eq!(suspended_pods.len(), 2, "{suspended:?}");
    assert_eq!(deployment_replicas(&api, "default", &group_name), 0);
    assert_eq!(deployment_replicas(&api, "default", QUERYNODE), 2, "the other group is untouched");
    assert_eq!(milvus.not_fully_served(), Vec::<String>::new());
}
