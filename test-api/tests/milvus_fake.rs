//! The fake Milvus answers through the API server's proxy subresource, on both backends (on the
//! kube-apiserver backend, the real server proxies to the responder on the pod network): reads,
//! management calls with their methods, JSON `/healthz`, authorization.

mod via_kube;

use milvus_test_api::{FakeMilvus, MilvusVersion, TestApi};
use serde_json::json;
use via_kube::{get, send};

fn pods_of(api: &TestApi, workload: &str) -> Vec<String> {
    let pods = api.list_json("", "pods", Some("default"), None).expect("pods");
    let mut names: Vec<String> = pods
        .iter()
        .filter_map(|p| {
            p["metadata"]["name"]
                .as_str()
                .filter(|n| n.starts_with(&format!("{workload}-")))
                .map(String::from)
        })
        .collect();
    names.sort();
    names
}

fn proxy_path(pod: &str, rest: &str) -> String {
    format!("/api/v1/namespaces/default/pods/{pod}:9091/proxy{rest}")
}

#[test]
fn the_fake_milvus_answers_through_the_pod_proxy_and_records_management_calls() {
    let milvus = FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 6);
    let api = TestApi::builder()
        .fixture("helm/default.yaml")
        .replicas("my-release-milvus-querynode", 2)
        .milvus(&milvus)
        .start();
    let proxy = pods_of(&api, "my-release-milvus-proxy").remove(0);
    let querynodes = pods_of(&api, "my-release-milvus-querynode");
    assert_eq!(querynodes.len(), 2);

    let list = get(&api, &proxy_path(&proxy, "/management/querycoord/node/list")).json();
    let nodes = list["nodeInfos"].as_array().expect("nodeInfos").clone();
    assert_eq!(nodes.len(), 2, "{list}");
    // Matched by pod IP.
    for qn in &querynodes {
        let ip = api.get_json("", "v1", "pods", Some("default"), qn).expect("pod")["status"]["podIP"]
            .as_str()
            .expect("podIP")
            .to_string();
        let id = milvus.node_id(qn).expect("a node");
        assert!(nodes.iter().any(|n| n["ID"] == id && n["address"] == format!("{ip}:21123")), "{list}");
    }

    let health = send(&api, "GET", &proxy_path(&proxy, "/healthz"), Some("application/json"), Vec::new());
    assert_eq!((health.code, health.content_type.as_str()), (200, "application/json"));
    assert_eq!(health.json(), json!({"state": "OK", "detail": [{"name": "proxy", "code": 1}]}));
    assert_eq!(get(&api, &proxy_path(&proxy, "/healthz")).body, "OK");

    let first = milvus.node_id(&querynodes[0]).expect("a node");
    let suspend = proxy_path(&proxy, &format!("/management/querycoord/node/suspend?node_id={first}"));
    let r = send(&api, "POST", &suspend, None, Vec::new());
    assert_eq!((r.code, r.json()), (200, json!({"msg": "OK"})));
    let dist =
        get(&api, &proxy_path(&proxy, &format!("/management/querycoord/distribution/get?node_id={first}")));
    assert_eq!(dist.json(), json!({"channel_names": null, "sealed_segmentIDs": []}));
    let replica = get(&api, &proxy_path(&proxy, "/api/v1/_qc/replica")).json();
    assert_eq!(replica[0]["rw_nodes"], json!([milvus.node_id(&querynodes[1]).expect("a node")]));

    let mixcoord = pods_of(&api, "my-release-milvus-mixcoord").remove(0);
    let body = serde_json::to_vec(&json!({"node_id": 999, "status": "suspended"})).expect("json");
    let r = send(
        &api,
        "PUT",
        &proxy_path(&mixcoord, "/management/streaming/nodes/status"),
        Some("application/json"),
        body,
    );
    assert_eq!(r.code, 400, "{}", r.body);

    let log: Vec<(String, String)> =
        milvus.requests().into_iter().map(|r| (r.method, r.path)).filter(|(_, p)| p != "/healthz").collect();
    let expected = [
        ("GET", "/management/querycoord/node/list"),
        ("POST", "/management/querycoord/node/suspend"),
        ("GET", "/management/querycoord/distribution/get"),
        ("GET", "/api/v1/_qc/replica"),
        ("PUT", "/management/streaming/nodes/status"),
    ];
    assert_eq!(log, expected.map(|(m, p)| (m.to_string(), p.to_string())));
    let suspended = milvus.requests().into_iter().find(|r| r.path.ends_with("suspend")).expect("suspend");
    assert_eq!(suspended.param("node_id"), Some(first.to_string().as_str()));
}

#[test]
fn with_authorization_on_the_api_routes_answer_401_and_management_stays_open() {
    let milvus = FakeMilvus::new(MilvusVersion::V2_6).authorization(true).collection(450, "books", 1, 1, 1);
    let api = TestApi::builder().fixture("helm/default.yaml").milvus(&milvus).start();
    let proxy = pods_of(&api, "my-release-milvus-proxy").remove(0);
    let r = get(&api, &proxy_path(&proxy, "/api/v1/_qc/dist"));
    assert_eq!(r.code, 401, "{}", r.body);
    assert_eq!(r.json()["code"], 1800);
    assert_eq!(get(&api, &proxy_path(&proxy, "/management/querycoord/node/list")).code, 200);
}
