//! `status` asks Milvus itself (through the API server's proxy subresource) what it serves: the
//! Serving section, node states, Milvus's health and dependency view, and the health model's
//! "all pods ready but a collection not fully served" case. A fake Milvus answers on the pods.

use crate::support::*;

const QUERYNODE: &str = "my-release-milvus-querynode";

/// The chart's default release (Milvus 2.6) with `querynodes` query nodes and a fake Milvus.
fn release_with(milvus: &FakeMilvus, querynodes: i64) -> TestApi {
    TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .replicas(QUERYNODE, querynodes)
        .milvus(milvus)
        .user("no-proxy", Rules::read_only().deny("get", "pods/proxy"))
        .start()
}

fn two_collections() -> FakeMilvus {
    FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 6).collection(460, "films", 2, 1, 3)
}

fn pods_of(api: &TestApi, workload: &str) -> Vec<(String, String)> {
    let mut pods: Vec<(String, String)> = api
        .list_json("", "pods", Some("default"), None)
        .expect("pods")
        .iter()
        .filter(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(&format!("{workload}-"))))
        .map(|p| {
            let name = p["metadata"]["name"].as_str().expect("name").to_string();
            (name, p["status"]["podIP"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    pods.sort();
    pods
}

fn proxy_requests(api: &TestApi) -> Vec<RequestRecord> {
    api.requests().into_iter().filter(|r| r.path.contains("/proxy/")).collect()
}

#[test]
fn status_shows_what_milvus_serves_and_each_node_with_its_pod() {
    let milvus = two_collections();
    let api = release_with(&milvus, 2);
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert!(out.stdout.contains("Health:     Healthy"), "{}", out.stdout);
    assert!(!out.stdout.contains("not shown"), "{}", out.stdout);
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    let collections = json["milvus"]["collections"].as_array().expect("collections");
    assert_eq!(collections.len(), 2);
    assert!(collections.iter().all(|c| c["fullyServed"] == true), "{collections:?}");
    assert_eq!(collections[1]["replicas"].as_array().map(Vec::len), Some(2));
    // Names from `_collection/list`, matched by id.
    let names: Vec<(i64, String)> = collections
        .iter()
        .map(|c| (c["id"].as_i64().unwrap_or_default(), c["name"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(names, milvus.collection_names());
    // Each query node is matched to its pod by IP, with its counts as Milvus has them.
    let nodes = json["milvus"]["nodes"].as_array().expect("nodes");
    let querynodes = pods_of(&api, QUERYNODE);
    assert_eq!(nodes.iter().filter(|n| n["kind"] == "querynode").count(), querynodes.len());
    for (pod, ip) in &querynodes {
        let id = milvus.node_id(pod).expect("a node");
        let node = nodes.iter().find(|n| n["nodeId"] == id).expect("node shown");
        assert_eq!(
            (node["pod"].as_str(), node["address"].as_str()),
            (Some(pod.as_str()), Some(format!("{ip}:21123").as_str()))
        );
        assert_eq!(node["state"], "active");
        let items = node["segments"].as_u64().unwrap_or(0) + node["channels"].as_u64().unwrap_or(0);
        assert_eq!(items as usize, milvus.items_on(id));
    }
    assert_eq!(json["milvus"]["disagreements"], serde_json::json!([]));
    let yaml = run(&api, &["status", "my-release", "-o", "yaml"]).success();
    let parsed: serde_json::Value = serde_yaml::from_str(&yaml.stdout).expect("yaml");
    assert_eq!(parsed["milvus"], json["milvus"]);
}

#[test]
fn milvus_is_asked_a_fixed_number_of_times_whatever_the_release_size() {
    let counts: Vec<(usize, usize)> = [1, 4]
        .into_iter()
        .map(|querynodes| {
            let api = release_with(&two_collections(), querynodes);
            api.clear_requests();
            run(&api, &["status", "my-release"]).success();
            let requests = proxy_requests(&api);
            let pods: std::collections::BTreeSet<String> = requests
                .iter()
                .filter_map(|r| r.path.split("/pods/").nth(1)?.split(':').next().map(String::from))
                .collect();
            assert!(requests.iter().all(|r| r.method == "GET"), "status only reads");
            (requests.len(), pods.len())
        })
        .collect();
    // The proxy pod's eight reads plus the mixcoord's streaming nodes, on two pods.
    assert_eq!(counts, [(9, 2), (9, 2)]);
}

#[test]
fn a_collection_not_fully_served_while_every_pod_is_ready_is_degraded() {
    let milvus = two_collections();
    let api = release_with(&milvus, 2);
    milvus.lose_segment(45003);
    let out = run(&api, &["status", "my-release", "--exit-code"]).failure(3);
    assert!(out.stdout.contains("Health:     Degraded (collection 450 not fully served)"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "not fully served: replica 4501: 1 of 6 segments not loaded on a read-write node (45003)"
        ),
        "{}",
        out.stdout
    );
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(
        (json["health"].as_str(), json["healthReason"].as_str()),
        (Some("Degraded"), Some("collection 450 not fully served"))
    );
    let c = &json["milvus"]["collections"][0];
    assert_eq!((c["id"].as_i64(), c["fullyServed"].as_bool()), (Some(450), Some(false)));
    assert!(json["components"].as_array().expect("components").iter().all(|c| c["health"] == "Healthy"));
}

#[test]
fn milvus_disagreeing_with_the_pods_is_shown() {
    let milvus =
        two_collections().unhealthy_dependency("mq", "cannot reach the WAL").health_code(QUERYNODE, 2);
    let api = release_with(&milvus, 2);
    let out = run(&api, &["status", "my-release"]).success();
    assert!(
        out.stdout.contains("Milvus cannot use its message queue (pulsar): cannot reach the WAL"),
        "{}",
        out.stdout
    );
    let (pod, _) = pods_of(&api, QUERYNODE).remove(0);
    assert!(out.stdout.contains(&format!("(pod {pod}) in error")), "{}", out.stdout);
}

#[test]
fn without_pods_proxy_permission_status_says_what_is_not_shown() {
    let api = release_with(&two_collections(), 2);
    let out =
        run_via(Via::Binary, Some(&api.kubeconfig_for("no-proxy")), &["status", "my-release"]).success();
    assert!(out.stdout.contains("Health:     Healthy"), "{}", out.stdout);
    assert!(out.stdout.contains("Components"), "{}", out.stdout);
    assert!(!out.stdout.contains("Serving"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "Milvus's own view (serving, nodes, component health) not shown: not allowed to get pods/proxy in namespace default"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn with_authorization_on_the_api_routes_are_refused_and_the_nodes_still_shown() {
    let milvus = two_collections().authorization(true);
    let api = release_with(&milvus, 2);
    let out = run(&api, &["status", "my-release"]).success();
    assert!(
        out.stdout.contains("not shown: Milvus has authorization on: its /api/v1 routes refuse requests through the Kubernetes API proxy"),
        "{}",
        out.stdout
    );
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["milvus"]["collections"], serde_json::Value::Null);
    assert_eq!(
        json["milvus"]["nodes"].as_array().map(Vec::len),
        Some(3),
        "two query nodes and a streaming node"
    );
    // Not retried: one refused read per route.
    let refused = proxy_requests(&api).iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 2 * 6, "six /api/v1 routes per run, two runs");
}

#[test]
fn a_milvus_that_does_not_answer_is_asked_once_per_route() {
    let api = release_with(&two_collections(), 2);
    api.set_pod_http_refused("my-release-milvus-proxy");
    api.clear_requests();
    let out = run(&api, &["status", "my-release"]).success();
    assert!(
        out.stdout.contains(
            "Milvus's own view (serving, nodes, component health) not shown: Milvus does not answer on pod"
        ),
        "{}",
        out.stdout
    );
    let requests: Vec<RequestRecord> =
        proxy_requests(&api).into_iter().filter(|r| r.path.contains("milvus-proxy")).collect();
    assert!(requests.iter().all(|r| r.status == 503), "{requests:?}");
    assert_eq!(requests.len(), 8, "no retries of a 503 through the proxy");
}

/// helm/default.yaml as a Milvus 2.5 release: image v2.5.24, no streaming node.
fn release_2_5(milvus: &FakeMilvus) -> TestApi {
    let mut docs = fixture_docs("helm/default.yaml");
    docs.retain(|d| d["metadata"]["name"] != "my-release-milvus-streamingnode");
    let text = serde_json::to_string(&docs)
        .expect("json")
        .replace("milvusdb/milvus:v2.6.15", "milvusdb/milvus:v2.5.24");
    let docs: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    TestApi::builder().age(AGE).objects(docs).replicas(QUERYNODE, 2).milvus(milvus).start()
}

#[test]
fn a_2_5_release_is_read_from_its_leader_views_and_states() {
    let milvus = FakeMilvus::new(MilvusVersion::V2_5).collection(450, "books", 1, 2, 6);
    let api = release_2_5(&milvus);
    api.clear_requests();
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["version"], "v2.5.24");
    assert_eq!(json["milvus"]["collections"][0]["fullyServed"], true, "{}", json["milvus"]);
    let states: Vec<&str> = json["milvus"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["state"].as_str())
        .collect();
    assert_eq!(states, ["Normal", "Normal"]);
    assert_eq!(json["warnings"], serde_json::json!([]), "no streaming-node endpoint asked of a 2.5 release");
    assert!(proxy_requests(&api).iter().all(|r| !r.path.contains("/management/streaming/")));
    // A segment loaded nowhere makes the collection not fully served.
    milvus.lose_segment(45002);
    let out = run(&api, &["status", "my-release"]).success();
    assert!(out.stdout.contains("Health:     Degraded (collection 450 not fully served)"), "{}", out.stdout);
}
