//! End-to-end tests of the loopback API server over real HTTPS.

mod common;

use common::{Watch, as_user, get, request};
use milvus_test_api::{Fault, MilvusStatus, PodBehaviour, Rules, TestApi, decode_helm_release};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const QN: &str = "my-release-milvus-querynode";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn helm_default() -> TestApi {
    TestApi::builder()
        .fixture("helm/default.yaml")
        .helm_install(true)
        .user(
            "viewer",
            Rules::read_only()
                .deny("list", "milvuses")
                .deny("list", "horizontalpodautoscalers")
                .deny("*", "secrets"),
        )
        .start()
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn kubeconfig_has_contexts_and_ca() {
    let api = helm_default();
    let text = std::fs::read_to_string(api.kubeconfig_path()).expect("kubeconfig");
    let kc: Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(kc["current-context"], "admin");
    assert_eq!(kc["clusters"][0]["cluster"]["server"], api.url());
    assert!(
        kc["clusters"][0]["cluster"]["certificate-authority-data"].as_str().is_some_and(|s| !s.is_empty())
    );
    let ctxs: Vec<&str> =
        kc["contexts"].as_array().expect("contexts").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(ctxs, vec!["admin", "viewer"]);
    assert_eq!(kc["contexts"][0]["context"]["namespace"], "default");
    assert!(api.url().starts_with("https://127.0.0.1:"));
}

#[test]
fn auth_errors_have_real_status_bodies() {
    let api = helm_default();
    let r = request(&api, "GET", "/api/v1/namespaces/default/pods", None, None, None).expect("req");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let r = request(&api, "GET", "/api/v1/namespaces/default/pods", Some("nope"), None, None).expect("req");
    assert_eq!(r.status, 401);

    let r = as_user(
        &api,
        "viewer",
        "GET",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        None,
        None,
    );
    assert_eq!(r.status, 403);
    let s = r.json();
    assert_eq!(s["reason"], "Forbidden");
    assert_eq!(
        s["message"],
        "horizontalpodautoscalers.autoscaling is forbidden: User \"viewer\" cannot list resource \"horizontalpodautoscalers\" in API group \"autoscaling\" in the namespace \"default\""
    );
    assert_eq!(s["details"], json!({"group": "autoscaling", "kind": "horizontalpodautoscalers"}));
    let r = as_user(&api, "viewer", "GET", "/api/v1/secrets", None, None);
    assert_eq!(
        r.json()["message"],
        "secrets is forbidden: User \"viewer\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
    );
    let r = as_user(
        &api,
        "viewer",
        "GET",
        "/api/v1/namespaces/default/secrets/sh.helm.release.v1.my-release.v1",
        None,
        None,
    );
    assert_eq!(
        r.json()["message"],
        "secrets \"sh.helm.release.v1.my-release.v1\" is forbidden: User \"viewer\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let r = as_user(
        &api,
        "viewer",
        "PATCH",
        &format!("{DEPLOYS}/{QN}/scale"),
        Some("application/merge-patch+json"),
        Some(&json!({"spec": {"replicas": 2}})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        format!(
            "deployments.apps \"{QN}\" is forbidden: User \"viewer\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"default\""
        )
    );
    // viewer may read pods
    assert_eq!(as_user(&api, "viewer", "GET", "/api/v1/pods", None, None).status, 200);

    let log = api.requests();
    assert_eq!(log.len(), 7);
    assert_eq!(log[0].user, None);
    assert_eq!(log[0].status, 401);
    let viewer_tok = api.token("viewer").expect("token");
    for r in &log {
        let dbg = format!("{r:?}");
        assert!(!dbg.contains(&viewer_tok), "token leaked into the request log");
    }
    assert!(log[2].credential.as_deref().is_some_and(|c| c.starts_with("fnv64:")));
}

#[test]
fn not_found_and_absent_resource_types() {
    let api = helm_default();
    let r = as_user(&api, "admin", "GET", &format!("{DEPLOYS}/nothere"), None, None);
    assert_eq!(r.status, 404);
    let s = r.json();
    assert_eq!(s["message"], "deployments.apps \"nothere\" not found");
    assert_eq!(s["details"], json!({"name": "nothere", "group": "apps", "kind": "deployments"}));
    // No Milvus CRD loaded: nothing serves the group, the server's plain-text catch-all answers
    // (see like_kube_apiserver.rs).
    let r = as_user(&api, "admin", "GET", "/apis/milvus.io/v1beta1/namespaces/default/milvuses", None, None);
    assert_eq!(r.status, 404);
    assert_eq!(String::from_utf8_lossy(&r.body), "404 page not found\n");
    let groups = get(&api, "/apis");
    assert!(!groups.to_string().contains("milvus.io"));

    let api = TestApi::builder()
        .fixture("operator/milvus-crd.yaml")
        .fixture("operator/cluster.yaml")
        .milvus_status(MilvusStatus::Unhealthy { message: "[querynode] not ready".into() })
        .start();
    let l = get(&api, "/apis/milvus.io/v1beta1/namespaces/default/milvuses");
    assert_eq!(l["kind"], "MilvusList");
    assert_eq!(names(&l), vec!["my-release"]);
    assert_eq!(l["items"][0]["status"]["status"], "Unhealthy");
    let rl = get(&api, "/apis/milvus.io/v1beta1");
    assert!(
        rl["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .any(|r| r["name"] == "milvuses" && r["shortNames"] == json!(["mi"]))
    );
}

#[test]
fn discovery_documents() {
    let api = TestApi::builder().server_version("v1.31.2").start();
    let v = get(&api, "/version");
    assert_eq!(v["gitVersion"], "v1.31.2");
    assert_eq!(v["minor"], "31");
    assert_eq!(get(&api, "/api")["versions"], json!(["v1"]));
    let apps = get(&api, "/apis/apps/v1");
    let res = apps["resources"].as_array().expect("resources");
    let scale = res.iter().find(|r| r["name"] == "deployments/scale").expect("deployments/scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["group"], "autoscaling");
    let core = get(&api, "/api/v1");
    assert!(core["resources"].as_array().expect("r").iter().any(|r| r["name"] == "pods/status"));
    let groups = get(&api, "/apis");
    let auto = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "autoscaling")
        .expect("autoscaling")
        .clone();
    assert_eq!(auto["preferredVersion"]["version"], "v2");
    let r = as_user(&api, "admin", "GET", "/openapi/v3", None, None);
    assert_eq!(r.status, 404);
}

#[test]
fn selectors_over_http() {
    let api = helm_default();
    let l = get(
        &api,
        "/api/v1/namespaces/default/pods?labelSelector=app.kubernetes.io%2Finstance%3Dmy-release%2Ccomponent%20in%20(querynode%2Cproxy)",
    );
    let n = names(&l);
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(n.iter().any(|x| x.starts_with("my-release-milvus-querynode-")));
    let l = get(&api, "/api/v1/pods?labelSelector=release%3Dmy-release,!component");
    let n = names(&l);
    assert_eq!(
        n,
        vec!["my-release-minio-0", "my-release-minio-1", "my-release-minio-2", "my-release-minio-3"]
    );
    let l = get(&api, "/api/v1/pods?fieldSelector=metadata.name%3Dmy-release-etcd-1");
    assert_eq!(names(&l), vec!["my-release-etcd-1"]);
    let l = get(&api, "/api/v1/pods?fieldSelector=metadata.namespace!%3Ddefault");
    assert!(names(&l).is_empty());
    let r = as_user(&api, "admin", "GET", "/api/v1/pods?labelSelector=a%20in%20(", None, None);
    assert_eq!(r.status, 400);
    let s = r.json();
    assert_eq!(s["reason"], "BadRequest");
    assert_eq!(s["message"], "unable to parse requirement: found '', expected: ',', ')' or identifier");
    let r = as_user(&api, "admin", "GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx", None, None);
    assert_eq!(r.json()["message"], "field label not supported: spec.bogus");
}

#[test]
fn pagination_is_complete_and_ordered() {
    let api = helm_default();
    let all = names(&get(&api, "/api/v1/pods"));
    assert!(all.len() > 20);
    let mut seen = Vec::new();
    let mut path = "/api/v1/pods?limit=7".to_string();
    let mut pages = 0;
    let mut list_rv = None;
    loop {
        let l = get(&api, &path);
        pages += 1;
        let rv = l["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
        assert_eq!(*list_rv.get_or_insert(rv.clone()), rv, "continued pages keep the list resourceVersion");
        let n = names(&l);
        assert!(n.len() <= 7);
        seen.extend(n);
        match l["metadata"]["continue"].as_str() {
            Some(c) => {
                assert!(l["metadata"]["remainingItemCount"].as_u64().is_some());
                path = format!("/api/v1/pods?limit=7&continue={c}");
            }
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(pages, all.len().div_ceil(7));
    let r = as_user(&api, "admin", "GET", "/api/v1/pods?limit=7&continue=garbage", None, None);
    assert_eq!(r.status, 400);
}

#[test]
fn conflicts_dry_run_and_validation() {
    let api = helm_default();
    let d = get(&api, &format!("{DEPLOYS}/{QN}"));
    let rv = d["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let before = api.resource_version();

    // dryRun: would-be object returned, nothing stored, no resourceVersion bump
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        &format!("{DEPLOYS}/{QN}?dryRun=All"),
        Some("application/merge-patch+json"),
        Some(&json!({"spec": {"replicas": 4}})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["spec"]["replicas"], 4);
    assert_eq!(api.resource_version(), before);
    assert_eq!(
        api.get_json("apps", "v1", "deployments", Some("default"), QN).expect("d")["spec"]["replicas"],
        1
    );

    // stale resourceVersion in a PUT body and in a patch
    let mut stale = d.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["replicas"] = json!(2);
    let r = as_user(&api, "admin", "PUT", &format!("{DEPLOYS}/{QN}"), Some("application/json"), Some(&stale));
    assert_eq!(r.status, 409);
    let s = r.json();
    assert_eq!(s["reason"], "Conflict");
    assert_eq!(
        s["message"],
        format!(
            "Operation cannot be fulfilled on deployments.apps \"{QN}\": the object has been modified; please apply your changes to the latest version and try again"
        )
    );
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        &format!("{DEPLOYS}/{QN}"),
        Some("application/merge-patch+json"),
        Some(&json!({"metadata": {"resourceVersion": "5"}, "spec": {"replicas": 2}})),
    );
    assert_eq!(r.status, 409);

    // negative replicas
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        &format!("{DEPLOYS}/{QN}"),
        Some("application/strategic-merge-patch+json"),
        Some(&json!({"spec": {"replicas": -1}})),
    );
    assert_eq!(r.status, 422);
    let s = r.json();
    assert_eq!(s["reason"], "Invalid");
    assert_eq!(
        s["message"],
        format!(
            "Deployment.apps \"{QN}\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        )
    );
    let r = as_user(
        &api,
        "admin",
        "PUT",
        &format!("{DEPLOYS}/{QN}/scale"),
        Some("application/json"),
        Some(
            &json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": QN, "namespace": "default"}, "spec": {"replicas": -3}}),
        ),
    );
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["message"],
        format!(
            "Scale.autoscaling \"{QN}\" is invalid: spec.replicas: Invalid value: -3: must be greater than or equal to 0"
        )
    );

    // a PUT with the current resourceVersion works
    let mut ok = d.clone();
    ok["spec"]["replicas"] = json!(2);
    let r = as_user(&api, "admin", "PUT", &format!("{DEPLOYS}/{QN}"), Some("application/json"), Some(&ok));
    assert_eq!(r.status, 200);
    let out = r.json();
    assert_ne!(out["metadata"]["resourceVersion"].as_str(), Some(rv.as_str()));
    assert_eq!(out["metadata"]["generation"], 2);
    // JSON patch
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        &format!("{DEPLOYS}/{QN}"),
        Some("application/json-patch+json"),
        Some(&json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])),
    );
    assert_eq!(r.status, 200);
    api.wait_until(
        |s| {
            s.list("", "pods", Some("default"))
                .iter()
                .filter(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(QN)))
                .count()
                == 3
        },
        Duration::from_secs(5),
    )
    .expect("3 querynode pods");

    let log = api.requests();
    let muts: Vec<_> = log.iter().filter(|r| r.is_mutating()).collect();
    assert_eq!(muts.len(), 7);
    assert!(muts[0].dry_run && !muts[1].dry_run);
    assert_eq!(muts[0].body, Some(json!({"spec": {"replicas": 4}})));
}

#[test]
fn scale_subresource_and_controller() {
    let api = TestApi::builder()
        .fixture("helm/default.yaml")
        .scale_up_ready_delay(Duration::from_millis(300))
        .start();
    let s = get(&api, &format!("{DEPLOYS}/{QN}/scale"));
    assert_eq!(s["kind"], "Scale");
    assert_eq!(s["spec"]["replicas"], 1);
    assert_eq!(
        s["status"]["selector"],
        "app.kubernetes.io/instance=my-release,app.kubernetes.io/name=milvus,component=querynode"
    );
    let t0 = Instant::now();
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        &format!("{DEPLOYS}/{QN}/scale"),
        Some("application/merge-patch+json"),
        Some(&json!({"spec": {"replicas": 3}})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["spec"]["replicas"], 3);
    let d = api.get_json("apps", "v1", "deployments", Some("default"), QN).expect("d");
    assert_eq!(d["status"]["replicas"], 3);
    assert_eq!(d["status"]["readyReplicas"], 1, "new pods are not ready yet");
    assert_eq!(d["status"]["conditions"][1]["reason"], "ReplicaSetUpdated");
    api.wait_until(
        |s| {
            s.get("apps", "deployments", Some("default"), QN)
                .is_some_and(|d| d["status"]["readyReplicas"] == 3)
        },
        Duration::from_secs(10),
    )
    .expect("ready");
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let d = api.get_json("apps", "v1", "deployments", Some("default"), QN).expect("d");
    assert_eq!(d["status"]["conditions"][1]["reason"], "NewReplicaSetAvailable");
    assert_eq!(d["status"]["observedGeneration"], 2);
    // scale down removes pods
    api.set_replicas(("apps", "deployments"), "default", QN, 0).expect("scale");
    let pods = api.list_json("", "pods", Some("default"), Some("component=querynode")).expect("list");
    assert!(pods.is_empty());
}

#[test]
fn watch_streams_changes() {
    let api = helm_default();
    let l = get(&api, "/api/v1/namespaces/default/pods?labelSelector=component%3Dquerynode");
    let rv = l["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    let mut w = Watch::start(
        &api,
        &format!(
            "/api/v1/namespaces/default/pods?watch=true&labelSelector=component%3Dquerynode&resourceVersion={rv}&timeoutSeconds=30"
        ),
    );
    api.set_replicas(("apps", "deployments"), "default", QN, 2).expect("scale");
    let e = w.next().expect("event");
    assert_eq!(e["type"], "ADDED");
    assert!(e["object"]["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(QN)));
    assert!(
        e["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|r| r.parse::<u64>().expect("rv") > rv.parse::<u64>().expect("rv"))
    );
    // no resourceVersion: synthetic ADDED for the current objects first; honour timeoutSeconds
    let mut w2 = Watch::start(
        &api,
        &format!(
            "/apis/apps/v1/namespaces/default/deployments?watch=true&fieldSelector=metadata.name%3D{QN}&timeoutSeconds=1"
        ),
    );
    let e = w2.next().expect("initial");
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["status"]["replicas"], 2);
    let t0 = Instant::now();
    assert!(w2.next().is_none(), "stream ends at timeoutSeconds");
    assert!(t0.elapsed() < Duration::from_secs(5));
    api.set_replicas(("apps", "deployments"), "default", QN, 1).expect("scale");
    let mut types = Vec::new();
    while let Some(e) = w.next() {
        types.push(e["type"].as_str().unwrap_or_default().to_string());
        if types.contains(&"DELETED".to_string()) {
            break;
        }
    }
    assert!(types.contains(&"DELETED".to_string()), "{types:?}");
    assert_eq!(api.requests().iter().filter(|r| r.watch).count(), 2);
}

#[test]
fn watches_get_bookmarks_and_a_compacted_resource_version_is_expired() {
    let api = helm_default();
    let l = get(&api, "/api/v1/namespaces/default/pods");
    let rv = l["metadata"]["resourceVersion"].as_str().expect("rv").to_string();
    // Nothing changes: with allowWatchBookmarks, a BOOKMARK says up to where the watch is current.
    let mut w = Watch::start(
        &api,
        &format!(
            "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=30"
        ),
    );
    let e = w.next().expect("bookmark");
    assert_eq!(e["type"], "BOOKMARK", "{e}");
    assert_eq!(e["object"]["kind"], "Pod");
    assert_eq!(e["object"]["metadata"]["resourceVersion"], rv.as_str());
    // After a change and a compaction, a watch from before them is told 410 Expired, as a kube-apiserver
    // tells it, and the stream ends: the client has to list again.
    api.set_replicas(("apps", "deployments"), "default", QN, 2).expect("scale");
    api.compact().expect("the loopback compacts");
    let mut old =
        Watch::start(&api, &format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"));
    let e = old.next().expect("error event");
    assert_eq!(e["type"], "ERROR", "{e}");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(old.next().is_none(), "the stream ends after the error");
    // From now on a watch goes on.
    let now = api.resource_version();
    let mut fresh = Watch::start(
        &api,
        &format!(
            "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&resourceVersion={now}&timeoutSeconds=30"
        ),
    );
    assert_eq!(fresh.next().expect("bookmark")["type"], "BOOKMARK");
}

#[test]
fn faults_latency_and_dropped_connections() {
    let api = helm_default();
    api.set_fault(
        Fault::status(500).on("GET", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"),
    );
    let r = as_user(
        &api,
        "admin",
        "GET",
        "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
        None,
        None,
    );
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["reason"], "InternalError");
    api.clear_faults();
    assert_eq!(
        as_user(
            &api,
            "admin",
            "GET",
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            None,
            None
        )
        .status,
        200
    );

    api.set_fault(Fault::status(503).on("GET", "*/pods").nth(2));
    assert_eq!(as_user(&api, "admin", "GET", "/api/v1/pods", None, None).status, 200);
    assert_eq!(as_user(&api, "admin", "GET", "/api/v1/namespaces/default/pods", None, None).status, 503);
    assert_eq!(as_user(&api, "admin", "GET", "/api/v1/pods", None, None).status, 200);
    assert_eq!(api.faults()[0].fired(), 1);
    api.clear_faults();

    api.set_fault(Fault::drop_connection().on("GET", "/api/v1/pods").times(1));
    let tok = api.token("admin").expect("tok");
    assert!(request(&api, "GET", "/api/v1/pods", Some(&tok), None, None).is_err());
    assert_eq!(as_user(&api, "admin", "GET", "/api/v1/pods", None, None).status, 200);
    let log = api.requests();
    let dropped: Vec<_> = log.iter().filter(|r| r.dropped).collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].status, 0);

    api.clear_faults();
    api.set_latency(Duration::from_millis(200));
    let t0 = Instant::now();
    assert_eq!(as_user(&api, "admin", "GET", "/version", None, None).status, 200);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    api.clear_faults();

    api.stop_listening();
    assert!(std::net::TcpStream::connect(("127.0.0.1", api.port())).is_err());
    let unused = TestApi::unused_url();
    let port: u16 = unused.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn helm_release_secret_and_hpa_v1() {
    let api = TestApi::builder()
        .fixture_as("helm/coordinators-hpa.yaml", "search", "prod")
        .helm_install(true)
        .helm_values(json!({"queryNode": {"replicas": -1}}))
        .start();
    let s = get(&api, "/api/v1/namespaces/prod/secrets/sh.helm.release.v1.search.v1");
    assert_eq!(s["type"], "helm.sh/release.v1");
    assert_eq!(
        s["metadata"]["labels"],
        json!({"name": "search", "owner": "helm", "status": "deployed", "version": "1"})
    );
    let rel = decode_helm_release(&s).expect("decode");
    assert_eq!(rel["name"], "search");
    assert_eq!(rel["config"]["queryNode"]["replicas"], -1);
    assert_eq!(rel["chart"]["metadata"]["appVersion"], "2.6.15");
    let d = get(&api, "/apis/apps/v1/namespaces/prod/deployments/search-milvus-querynode");
    assert_eq!(d["metadata"]["annotations"]["meta.helm.sh/release-name"], "search");
    assert_eq!(d["spec"]["replicas"], 1, "omitted replicas default to 1");
    let hpas = get(&api, "/apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers");
    assert_eq!(hpas["apiVersion"], "autoscaling/v1");
    let qn = hpas["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|h| h["metadata"]["name"] == "search-milvus-querynode-hpa")
        .expect("hpa")
        .clone();
    assert_eq!(qn["spec"]["scaleTargetRef"]["name"], "search-milvus-querynode");
    assert_eq!(qn["spec"]["targetCPUUtilizationPercentage"], 40);
    assert_eq!(qn["spec"]["maxReplicas"], 5);
    assert_eq!(qn["status"]["currentReplicas"], 1);
    let v2 = get(
        &api,
        "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/search-milvus-querynode-hpa",
    );
    assert!(v2["spec"]["metrics"].is_array());
}

#[test]
fn operator_reconciler() {
    let path = "/apis/milvus.io/v1beta1/namespaces/operator/milvuses/vectors";
    let api = TestApi::builder()
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "operator")
        .start();
    let patch = json!({"spec": {"components": {"queryNode": {"replicas": 4}}}});
    let r = as_user(&api, "admin", "PATCH", path, Some("application/merge-patch+json"), Some(&patch));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["metadata"]["generation"], 2);
    // off by default: Deployments untouched
    assert_eq!(
        api.get_json("apps", "v1", "deployments", Some("operator"), "vectors-milvus-querynode-0").expect("d")
            ["spec"]["replicas"],
        2
    );
    api.set_operator_reconciler(true);
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        path,
        Some("application/merge-patch+json"),
        Some(&json!({"spec": {"components": {"queryNode": {"replicas": 3}, "proxy": {"replicas": 1}}}})),
    );
    assert_eq!(r.status, 200);
    let qn0 =
        api.get_json("apps", "v1", "deployments", Some("operator"), "vectors-milvus-querynode-0").expect("d");
    assert_eq!(qn0["spec"]["replicas"], 3);
    assert_eq!(qn0["status"]["readyReplicas"], 3);
    assert_eq!(
        api.get_json("apps", "v1", "deployments", Some("operator"), "vectors-milvus-querynode-1").expect("d")
            ["spec"]["replicas"],
        0
    );
    assert_eq!(
        api.get_json("apps", "v1", "deployments", Some("operator"), "vectors-milvus-proxy").expect("d")["spec"]
            ["replicas"],
        1
    );
    let r = as_user(
        &api,
        "admin",
        "PATCH",
        path,
        Some("application/merge-patch+json"),
        Some(&json!({"spec": {"components": {"queryNode": {"replicas": -2}}}})),
    );
    assert_eq!(r.status, 422);
}

#[test]
fn pod_behaviours_show_up_in_workload_status() {
    let api = TestApi::builder()
        .fixture("helm/default.yaml")
        .replicas(QN, 4)
        .pod_behaviour(QN, 0, PodBehaviour::oom_killed(5))
        .pod_behaviour(QN, 1, PodBehaviour::PendingUnschedulable)
        .pod_behaviour(QN, 2, PodBehaviour::ReadyAfter(Duration::from_secs(3)))
        .progress_deadline_exceeded(QN)
        .selector_behaviour("app.kubernetes.io/name=etcd", PodBehaviour::RunningNotReady)
        .start();
    let d = api.get_json("apps", "v1", "deployments", Some("default"), QN).expect("d");
    assert_eq!(d["status"]["readyReplicas"], 1);
    assert_eq!(d["status"]["conditions"][1]["reason"], "ProgressDeadlineExceeded");
    api.wait_until(
        |s| {
            s.get("apps", "deployments", Some("default"), QN)
                .is_some_and(|d| d["status"]["readyReplicas"] == 2)
        },
        Duration::from_secs(30),
    )
    .expect("ready after");
    let etcd = api.get_json("apps", "v1", "statefulsets", Some("default"), "my-release-etcd").expect("sts");
    assert_eq!(etcd["status"].get("readyReplicas"), None);
    assert_eq!(etcd["status"]["replicas"], 3);
    api.set_pod_behaviour("my-release-etcd", None, PodBehaviour::Ready);
    let etcd = api.get_json("apps", "v1", "statefulsets", Some("default"), "my-release-etcd").expect("sts");
    assert_eq!(etcd["status"]["readyReplicas"], 3);
}

#[test]
fn a_thousand_pods_are_listed_and_scaled() {
    // What it costs is measured by the benchmarks (benches/perf.rs), not asserted here.
    let api = TestApi::builder().fixture("helm/default.yaml").replicas(QN, 1000).start();
    let l =
        get(&api, "/api/v1/namespaces/default/pods?labelSelector=app.kubernetes.io%2Finstance%3Dmy-release");
    assert!(names(&l).len() > 1000);
    let d = get(&api, &format!("{DEPLOYS}/{QN}"));
    assert_eq!(d["status"]["readyReplicas"], 1000);
    api.set_replicas(("apps", "deployments"), "default", QN, 999).expect("scale");
    let d = get(&api, &format!("{DEPLOYS}/{QN}"));
    assert_eq!(d["status"]["readyReplicas"], 999);
}

#[test]
fn deterministic_names_across_runs() {
    let a = helm_default();
    let b = helm_default();
    let pa = names(&get(&a, "/api/v1/pods"));
    let pb = names(&get(&b, "/api/v1/pods"));
    assert_eq!(pa, pb);
    let ua = get(&a, &format!("{DEPLOYS}/{QN}"))["metadata"]["uid"].clone();
    let ub = get(&b, &format!("{DEPLOYS}/{QN}"))["metadata"]["uid"].clone();
    assert_eq!(ua, ub);
    let created = get(&a, "/api/v1/pods")["items"][0]["metadata"]["creationTimestamp"]
        .as_str()
        .expect("ts")
        .parse::<jiff::Timestamp>()
        .expect("ts");
    let age = jiff::Timestamp::now().as_second() - created.as_second();
    assert!((299..=310).contains(&age), "age {age}");
}

#[test]
fn create_and_delete() {
    let api = TestApi::builder().start();
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let r = as_user(&api, "admin", "POST", DEPLOYS, Some("application/json"), Some(&dep));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = as_user(&api, "admin", "POST", DEPLOYS, Some("application/json"), Some(&dep));
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["reason"], "AlreadyExists");
    assert_eq!(api.list_json("", "pods", Some("default"), Some("app=web")).expect("pods").len(), 2);
    let r = as_user(&api, "admin", "DELETE", &format!("{DEPLOYS}/web"), None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "Success");
    assert!(api.list_json("", "pods", Some("default"), Some("app=web")).expect("pods").is_empty());
    assert!(api.list_json("apps", "replicasets", Some("default"), None).expect("rs").is_empty());
    let r = as_user(
        &api,
        "admin",
        "POST",
        "/apis/apps/v1/namespaces/nope/deployments",
        Some("application/json"),
        Some(&dep),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "namespaces \"nope\" not found");
}

#[test]
fn objects_deserialize_into_k8s_openapi_types() {
    use k8s_openapi::List;
    use k8s_openapi::api::{
        apps::v1 as apps, autoscaling::v1 as as1, autoscaling::v2 as as2, batch::v1 as batch,
        core::v1 as core,
    };
    fn parse<T: k8s_openapi::ListableResource + serde::de::DeserializeOwned>(
        api: &TestApi,
        path: &str,
    ) -> usize {
        let v = get(api, path);
        match serde_json::from_value::<List<T>>(v) {
            Ok(l) => l.items.len(),
            Err(e) => panic!("{path}: {e}"),
        }
    }
    let api = TestApi::builder()
        .fixture_as("helm/coordinators-hpa.yaml", "search", "prod")
        .helm_install(true)
        .pod_behaviour("search-milvus-querynode", 0, PodBehaviour::oom_killed(2))
        .replicas("search-milvus-proxy", 6)
        .pod_behaviour("search-milvus-proxy", 1, PodBehaviour::PendingUnschedulable)
        .pod_behaviour("search-milvus-proxy", 2, PodBehaviour::Evicted)
        .pod_behaviour("search-milvus-proxy", 3, PodBehaviour::Terminating)
        .pod_behaviour("search-milvus-proxy", 4, PodBehaviour::ErrImagePull)
        .pod_behaviour(
            "search-milvus-proxy",
            5,
            PodBehaviour::CreateContainerConfigError { message: "secret \"x\" not found".into() },
        )
        .start();
    assert!(parse::<core::Pod>(&api, "/api/v1/namespaces/prod/pods") > 20);
    assert!(parse::<apps::Deployment>(&api, "/apis/apps/v1/deployments") > 5);
    assert!(parse::<apps::StatefulSet>(&api, "/apis/apps/v1/statefulsets") > 5);
    assert!(parse::<apps::ReplicaSet>(&api, "/apis/apps/v1/replicasets") > 5);
    assert_eq!(parse::<batch::Job>(&api, "/apis/batch/v1/jobs"), 2);
    assert_eq!(
        parse::<as1::HorizontalPodAutoscaler>(&api, "/apis/autoscaling/v1/horizontalpodautoscalers"),
        2
    );
    assert_eq!(
        parse::<as2::HorizontalPodAutoscaler>(&api, "/apis/autoscaling/v2/horizontalpodautoscalers"),
        2
    );
    assert_eq!(parse::<core::Event>(&api, "/api/v1/namespaces/prod/events"), 5);
    assert!(parse::<core::Secret>(&api, "/api/v1/namespaces/prod/secrets") >= 1);
    assert!(parse::<core::Namespace>(&api, "/api/v1/namespaces") >= 5);
    assert_eq!(parse::<core::Node>(&api, "/api/v1/nodes"), 3);
    assert!(parse::<core::Service>(&api, "/api/v1/namespaces/prod/services") > 5);
    let scale = get(&api, "/apis/apps/v1/namespaces/prod/deployments/search-milvus-proxy/scale");
    let s: as1::Scale = serde_json::from_value(scale).expect("scale");
    assert_eq!(s.spec.and_then(|s| s.replicas), Some(6));
    let d: apps::Deployment =
        serde_json::from_value(get(&api, "/apis/apps/v1/namespaces/prod/deployments/search-milvus-proxy"))
            .expect("deployment");
    let st = d.status.expect("status");
    assert_eq!(st.replicas, Some(6));
    assert_eq!(st.ready_replicas, Some(3), "index 0 ready, 2 and 3 replaced by ready pods");
}
