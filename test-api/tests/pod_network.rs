//! The kube-apiserver backend's pod network: pods get IPs in a network namespace of the test, the
//! real API server proxies to them (`pods/NAME:PORT/proxy/…`, `services/NAME:PORT/proxy/…`), and
//! a responder in the namespace answers what the test asked for.

mod via_kube;

use milvus_test_api::{Backend, HttpReply, TestApi};
use via_kube::get;

fn pod_names(api: &TestApi, prefix: &str) -> Vec<String> {
    let pods = api.list_json("", "pods", Some("default"), None).expect("pods");
    let mut names: Vec<String> = pods
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().filter(|n| n.starts_with(prefix)).map(String::from))
        .collect();
    names.sort();
    names
}

fn pod_ip(api: &TestApi, name: &str) -> String {
    let pod = api.get_json("", "v1", "pods", Some("default"), name).expect("pod");
    pod["status"]["podIP"].as_str().expect("podIP").to_string()
}

const STANDALONE: &str = "my-release-milvus-standalone";

/// The tests of this file one at a time: each makes (or checks that it does not make) a network
/// namespace, and `ip netns list` shows those of every test of the process.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static NETWORK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    NETWORK.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Both proxy forms reach the pods' responder through the API server; each pod answers for
/// itself (the responder tells pods apart by the IP a connection reached), and the service form
/// goes to a ready endpoint.
#[test]
fn both_proxy_forms_reach_the_pods() {
    let _serial = one_at_a_time();
    let api = TestApi::builder()
        .fixture("helm/standalone.yaml")
        .replicas(STANDALONE, 2)
        .pod_http(STANDALONE, "/json", HttpReply::json(201, &serde_json::json!({"a": 1})))
        .start();
    let pods = pod_names(&api, STANDALONE);
    assert_eq!(pods.len(), 2, "{pods:?}");
    for p in &pods {
        api.set_pod_http(p, "/whoami", HttpReply::text(200, p));
    }
    for p in &pods {
        let r = get(&api, &format!("/api/v1/namespaces/default/pods/{p}:9091/proxy/healthz"));
        assert_eq!(
            (r.code, r.content_type.as_str(), r.body.as_str()),
            (200, "text/plain; charset=utf-8", "OK")
        );
        let r = get(&api, &format!("/api/v1/namespaces/default/pods/{p}:9091/proxy/whoami"));
        assert_eq!((r.code, r.body.as_str()), (200, p.as_str()));
        let r = get(&api, &format!("/api/v1/namespaces/default/pods/http:{p}:9091/proxy/json?x=1"));
        assert_eq!(
            (r.code, r.content_type.as_str(), r.body.as_str()),
            (201, "application/json", r#"{"a":1}"#)
        );
        let r = get(&api, &format!("/api/v1/namespaces/default/pods/{p}:9091/proxy/nosuch"));
        assert_eq!((r.code, r.body.as_str()), (404, "404 page not found\n"));
    }
    for port in ["9091", "metrics"] {
        let r =
            get(&api, &format!("/api/v1/namespaces/default/services/my-release-milvus:{port}/proxy/healthz"));
        assert_eq!((r.code, r.body.as_str()), (200, "OK"), "{port}");
        let r =
            get(&api, &format!("/api/v1/namespaces/default/services/my-release-milvus:{port}/proxy/whoami"));
        assert!(r.code == 200 && pods.contains(&r.body), "{port}: {} {}", r.code, r.body);
    }
}

/// A pod that does not listen is a refused connection to its IP: `503 ServiceUnavailable`.
#[test]
fn a_pod_that_does_not_listen_refuses_the_connection() {
    let _serial = one_at_a_time();
    let api = TestApi::builder().fixture("helm/standalone.yaml").replicas(STANDALONE, 2).start();
    let pods = pod_names(&api, STANDALONE);
    api.set_pod_http_refused(&pods[0]);
    let r = get(&api, &format!("/api/v1/namespaces/default/pods/{}:9091/proxy/healthz", pods[0]));
    assert_eq!(r.code, 503, "{}", r.body);
    let status: serde_json::Value = serde_json::from_str(&r.body).expect("Status");
    assert_eq!(status["reason"], "ServiceUnavailable");
    let ip = pod_ip(&api, &pods[0]);
    assert_eq!(
        status["message"],
        format!("error trying to reach service: dial tcp {ip}:9091: connect: connection refused")
    );
    let r = get(&api, &format!("/api/v1/namespaces/default/pods/{}:9091/proxy/healthz", pods[1]));
    assert_eq!((r.code, r.body.as_str()), (200, "OK"));
}

fn netns_list() -> String {
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links() -> String {
    let out = std::process::Command::new("ip").args(["-o", "link"]).output().expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_netns(name: &str) -> bool {
    netns_list().lines().any(|l| l.split_whitespace().next() == Some(name))
}

/// On the kube-apiserver backend the pods' IPs are in a network namespace of the test, which goes
/// (with its veth pair) when the `TestApi` is dropped, also when the test panicked.
#[test]
fn the_pod_network_goes_with_the_test_api() {
    let _serial = one_at_a_time();
    if Backend::from_env() != Backend::KubeApiserver {
        return;
    }
    let api = TestApi::builder().fixture("helm/standalone.yaml").start();
    let netns = api.pod_netns().expect("a pod network");
    assert!(has_netns(&netns), "{netns} not in {}", netns_list());
    let pod = &pod_names(&api, STANDALONE)[0];
    let ip = pod_ip(&api, pod);
    let out = std::process::Command::new("ip").args(["-n", &netns, "-o", "addr"]).output().expect("ip addr");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("inet {ip}/32")), "{ip}");
    let host_if = format!("kmt{}", netns.trim_start_matches("kmt-").replacen('-', "n", 1));
    assert!(links().contains(&format!(": {host_if}@")), "{host_if} not in {}", links());
    drop(api);
    assert!(!has_netns(&netns), "{netns} still in {}", netns_list());
    assert!(!links().contains(&format!(": {host_if}@")), "{host_if} still in {}", links());

    let name = std::sync::Mutex::new(String::new());
    let panicked = std::panic::catch_unwind(|| {
        let api = TestApi::builder().fixture("helm/standalone.yaml").start();
        *name.lock().expect("lock") = api.pod_netns().expect("a pod network");
        panic!("a failing test");
    });
    assert!(panicked.is_err());
    let netns = name.into_inner().expect("lock");
    assert!(!netns.is_empty() && !has_netns(&netns), "{netns} still in {}", netns_list());
}

/// Without a pod network (`pod_network(false)`, for loads larger than its 2,045 addresses) no
/// namespace is made and every pod is still Ready with the made-up IP the loopback gives it.
#[test]
fn without_a_pod_network_pods_keep_made_up_ips() {
    let _serial = one_at_a_time();
    if Backend::from_env() != Backend::KubeApiserver {
        return;
    }
    let before = netns_list();
    let api = TestApi::builder()
        .fixture("helm/standalone.yaml")
        .replicas(STANDALONE, 40)
        .pod_network(false)
        .start();
    assert_eq!(api.pod_netns(), None);
    assert_eq!(netns_list(), before, "no network namespace is made");
    let pods = pod_names(&api, STANDALONE);
    assert_eq!(pods.len(), 40, "{pods:?}");
    let mut ips = std::collections::BTreeSet::new();
    for p in &pods {
        let pod = api.get_json("", "v1", "pods", Some("default"), p).expect("pod");
        let ready = pod["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        assert!(ready, "{p}: {}", pod["status"]);
        let ip = pod["status"]["podIP"].as_str().expect("podIP");
        assert!(!ip.starts_with("10.200.") && ip.parse::<std::net::Ipv4Addr>().is_ok(), "{p}: {ip}");
        ips.insert(ip.to_string());
    }
    assert_eq!(ips.len(), pods.len(), "each pod its own IP: {ips:?}");
}
