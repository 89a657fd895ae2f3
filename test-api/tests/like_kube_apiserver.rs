//! Where the loopback API and a real kube-apiserver (1.20 first, now 1.34, via
//! scripts/control-plane.sh) were found to disagree, the real one is right: each test records one
//! such difference as the loopback now answers it. With `MILVUS_TEST_BACKEND=kube-apiserver` the same
//! assertions also run against the real server.

mod via_kube;

use milvus_test_api::{Backend, TestApi};
use serde_json::Value;
use via_kube::get;

/// The loopback always; the real server too when it is the selected backend.
fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Loopback];
    if Backend::from_env() == Backend::KubeApiserver {
        b.push(Backend::KubeApiserver);
    }
    b
}

/// A path under a group nobody serves (the Milvus CRD not installed) is the server's catch-all
/// `404 page not found` in plain text, not a `Status` object; an unknown resource of a served group
/// is a `Status`.
#[test]
fn an_unserved_group_is_a_plain_text_404() {
    for backend in backends() {
        let api = TestApi::builder().backend(backend).fixture("helm/standalone.yaml").start();
        for path in [
            "/apis/milvus.io",
            "/apis/milvus.io/v1beta1",
            "/apis/milvus.io/v1beta1/milvuses",
            "/apis/milvus.io/v1beta1/namespaces/default/milvuses",
        ] {
            let r = get(&api, path);
            assert_eq!(r.code, 404, "{backend:?} {path}");
            assert_eq!(r.content_type, "text/plain; charset=utf-8", "{backend:?} {path}");
            assert_eq!(r.body, "404 page not found\n", "{backend:?} {path}");
        }
        for path in ["/apis/apps/v1/namespaces/default/foos", "/api/v1/namespaces/default/foos"] {
            let r = get(&api, path);
            assert_eq!(r.code, 404, "{backend:?} {path}");
            assert_eq!(r.content_type, "application/json", "{backend:?} {path}");
            let status = r.json();
            assert_eq!(status["kind"], "Status", "{backend:?} {path}");
            assert_eq!(status["reason"], "NotFound", "{backend:?} {path}");
            assert_eq!(status["message"], "the server could not find the requested resource", "{backend:?}");
        }
    }
}

/// Items of a list of a built-in type carry no `apiVersion`/`kind` (the list says what they are);
/// items of a custom resource list do.
#[test]
fn list_items_of_built_in_types_have_no_api_version_or_kind() {
    for backend in backends() {
        let api = TestApi::builder()
            .backend(backend)
            .fixture("operator/milvus-crd.yaml")
            .fixture("operator/cluster.yaml")
            .start();
        for path in ["/apis/apps/v1/namespaces/default/deployments", "/api/v1/namespaces/default/pods"] {
            let list = get(&api, path).json();
            let items = list["items"].as_array().expect("items");
            assert!(!items.is_empty(), "{backend:?} {path}");
            for item in items {
                assert!(item.get("apiVersion").is_none() && item.get("kind").is_none(), "{backend:?} {path}");
            }
        }
        let list = get(&api, "/apis/milvus.io/v1beta1/namespaces/default/milvuses").json();
        assert_eq!(list["kind"], "MilvusList", "{backend:?}");
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{backend:?}");
        assert_eq!(items[0]["apiVersion"], "milvus.io/v1beta1", "{backend:?}");
        assert_eq!(items[0]["kind"], "Milvus", "{backend:?}");
        // A single object has them, built-in or not.
        let one = get(&api, "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-proxy").json();
        assert_eq!((one["apiVersion"].as_str(), one["kind"].as_str()), (Some("apps/v1"), Some("Deployment")));
    }
}

/// kube-apiserver fills in the apps/v1 defaults, and the Deployment controller records the rollout's
/// revision on the Deployment (not only on its ReplicaSet).
#[test]
fn workloads_get_the_apps_v1_defaults() {
    for backend in backends() {
        let api = TestApi::builder().backend(backend).fixture("helm/default.yaml").start();
        let d = get(&api, "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-querynode").json();
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600, "{backend:?}");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10, "{backend:?}");
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate", "{backend:?}");
        assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1", "{backend:?}");
        let s = get(&api, "/apis/apps/v1/namespaces/default/statefulsets/my-release-etcd").json();
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10, "{backend:?}");
        assert_eq!(s["spec"]["updateStrategy"]["type"], "RollingUpdate", "{backend:?}");
    }
}

/// An ownerReference names its owner by kind and name; the uid must be the owner's, or a real
/// garbage collector deletes the object. A Deployment added by a later source than its Milvus object
/// gets the Milvus object's uid too (a placeholder uid made the real server delete it).
#[test]
fn owner_references_to_a_milvus_object_get_its_uid_across_sources() {
    let docs = milvus_test_api::parse_yaml_docs(
        &std::fs::read_to_string(
            milvus_test_api::fixtures_dir().expect("fixtures").join("operator/cluster.yaml"),
        )
        .expect("fixture"),
    )
    .expect("yaml");
    let mut extra = docs.iter().find(|d| d["kind"] == "Deployment").cloned().expect("a Deployment");
    extra["metadata"]["name"] = Value::from("my-release-milvus-extra");
    for backend in backends() {
        let api = TestApi::builder()
            .backend(backend)
            .fixture("operator/milvus-crd.yaml")
            .fixture("operator/cluster.yaml")
            .objects(vec![extra.clone()])
            .start();
        let cr = get(&api, "/apis/milvus.io/v1beta1/namespaces/default/milvuses/my-release").json();
        let d = get(&api, "/apis/apps/v1/namespaces/default/deployments/my-release-milvus-extra");
        assert_eq!(d.code, 200, "{backend:?}: the Deployment was garbage-collected");
        assert_eq!(d.json()["metadata"]["ownerReferences"][0]["uid"], cr["metadata"]["uid"], "{backend:?}");
    }
}

/// Label selectors parse as apimachinery's `labels.Parse`: an empty slot in a value set is the
/// empty value (`in ()`, `in (x,)`), `in` and `notin` are names wherever no operator is expected,
/// and a malformed value set is a BadRequest.
#[test]
fn label_selectors_parse_as_apimachinery_does() {
    for backend in backends() {
        let api = TestApi::builder().backend(backend).fixture("helm/standalone.yaml").start();
        let pods = |selector: &str| -> Vec<String> {
            let r = get(&api, &format!("/api/v1/namespaces/default/pods?labelSelector={selector}"));
            assert_eq!(r.code, 200, "{backend:?} {selector}: {}", r.body);
            let list = r.json();
            let items = list["items"].as_array().cloned().unwrap_or_default();
            let mut names: Vec<String> =
                items.iter().filter_map(|p| p["metadata"]["name"].as_str().map(String::from)).collect();
            names.sort();
            names
        };
        let standalone = pods("component%3Dstandalone");
        assert_eq!(standalone.len(), 1, "{backend:?}: {standalone:?}");
        assert_eq!(pods("component%20in%20(standalone,)"), standalone, "{backend:?}");
        assert_eq!(pods("component%20in%20()"), Vec::<String>::new(), "{backend:?}");
        assert_eq!(pods("in"), Vec::<String>::new(), "{backend:?}");
        assert_eq!(pods("component%20in%20(in,notin,standalone)"), standalone, "{backend:?}");
        let r = get(&api, "/api/v1/namespaces/default/pods?labelSelector=component%20in%20standalone");
        assert_eq!(r.code, 400, "{backend:?}: {}", r.body);
        let status = r.json();
        assert_eq!(status["reason"], "BadRequest", "{backend:?}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("unable to parse requirement: found 'standalone' expected: '('"),
            "{backend:?}: {message}"
        );
    }
}

/// A pod's `status.qosClass` is what kube-apiserver derives from its containers' cpu and memory
/// requests and limits when it is created, and 1.34 refuses a status write that changes it:
/// minio (requests only) is Burstable, a pod without resources BestEffort, one that requests what
/// it limits Guaranteed.
#[test]
fn pods_get_the_qos_class_of_their_resources() {
    let guaranteed = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "guaranteed", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "guaranteed"}},
            "template": {"metadata": {"labels": {"app": "guaranteed"}},
                "spec": {"containers": [{"name": "c", "image": "busybox",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}
    });
    for backend in backends() {
        let api = TestApi::builder()
            .backend(backend)
            .fixture("helm/default.yaml")
            .objects(vec![guaranteed.clone()])
            .start();
        let pods = get(&api, "/api/v1/namespaces/default/pods").json();
        let qos_of = |prefix: &str| -> Vec<String> {
            pods["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
                .map(|p| p["status"]["qosClass"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(qos_of("my-release-minio-0"), ["Burstable"], "{backend:?}");
        assert_eq!(qos_of("my-release-milvus-proxy-"), ["BestEffort"], "{backend:?}");
        assert_eq!(qos_of("guaranteed-"), ["Guaranteed"], "{backend:?}");
    }
}

/// The proxy subresources' errors are the real server's: an unknown pod or service is NotFound, a
/// pod without an IP is `400 address not allowed`, a pod that does not listen is a refused
/// connection (`503`; without a port, the first container port is used), a service port that does
/// not exist or has no ready endpoint is `503` (the message names the service, with the port as
/// given when only the port has none), and a malformed name is a BadRequest.
#[test]
fn proxy_errors_are_the_real_servers() {
    for backend in backends() {
        let api = TestApi::builder()
            .backend(backend)
            .fixture("helm/standalone.yaml")
            .pod_behaviour("my-release-minio", 0, milvus_test_api::PodBehaviour::PendingUnschedulable)
            .pod_http_refused("my-release-etcd")
            .start();
        let pods = api.list_json("", "pods", Some("default"), None).expect("pods");
        let pod = |prefix: &str| {
            pods.iter()
                .find(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with(prefix)))
                .cloned()
                .expect("pod")
        };
        let (etcd, minio, sa) =
            (pod("my-release-etcd-0"), pod("my-release-minio"), pod("my-release-milvus-standalone"));
        let name = |p: &Value| p["metadata"]["name"].as_str().expect("name").to_string();
        let ip = |p: &Value| p["status"]["podIP"].as_str().expect("podIP").to_string();
        let refused = |p: &Value, port: u16| {
            format!("error trying to reach service: dial tcp {}:{port}: connect: connection refused", ip(p))
        };
        let pods_path = "/api/v1/namespaces/default/pods";
        let svc_path = "/api/v1/namespaces/default/services";
        let cases: Vec<(String, u16, &str, String)> = vec![
            (
                format!("{pods_path}/nosuch:9091/proxy/healthz"),
                404,
                "NotFound",
                "pods \"nosuch\" not found".into(),
            ),
            (
                format!("{pods_path}/{}:9000/proxy/healthz", name(&minio)),
                400,
                "BadRequest",
                "address not allowed".into(),
            ),
            (
                format!("{pods_path}/{}:9091/proxy/healthz", name(&etcd)),
                503,
                "ServiceUnavailable",
                refused(&etcd, 9091),
            ),
            (
                format!("{pods_path}/{}/proxy/healthz", name(&sa)),
                503,
                "ServiceUnavailable",
                refused(&sa, 19530),
            ),
            (
                format!("{pods_path}/{}:x:y:z/proxy/healthz", name(&sa)),
                400,
                "BadRequest",
                format!("invalid pod request \"{}:x:y:z\"", name(&sa)),
            ),
            (
                format!("{pods_path}/https:{}:9091/proxy/healthz", name(&sa)),
                503,
                "ServiceUnavailable",
                "error trying to reach service: tls: first record does not look like a TLS handshake".into(),
            ),
            (
                format!("{svc_path}/nosuch:9091/proxy/healthz"),
                404,
                "NotFound",
                "services \"nosuch\" not found".into(),
            ),
            (
                format!("{svc_path}/nosuch:named/proxy/x"),
                404,
                "NotFound",
                "services \"nosuch\" not found".into(),
            ),
            (
                format!("{svc_path}/my-release-minio:9000/proxy/healthz"),
                503,
                "ServiceUnavailable",
                "no endpoints available for service \"my-release-minio\"".into(),
            ),
            (
                format!("{svc_path}/my-release-milvus:1234/proxy/healthz"),
                503,
                "ServiceUnavailable",
                "no service port 1234 found for service \"my-release-milvus\"".into(),
            ),
            (
                format!("{svc_path}/my-release-milvus:nope/proxy/healthz"),
                503,
                "ServiceUnavailable",
                "no endpoints available for service \"my-release-milvus:nope\"".into(),
            ),
            (
                format!("{svc_path}/my-release-milvus/proxy/healthz"),
                503,
                "ServiceUnavailable",
                "no endpoints available for service \"my-release-milvus\"".into(),
            ),
            (
                format!("{svc_path}/my-release-milvus:19530/proxy/healthz"),
                503,
                "ServiceUnavailable",
                refused(&sa, 19530),
            ),
        ];
        for (path, code, reason, message) in cases {
            let r = get(&api, &path);
            assert_eq!(r.code, code, "{backend:?} {path}: {}", r.body);
            assert_eq!(r.content_type, "application/json", "{backend:?} {path}");
            let status = r.json();
            assert_eq!(status["kind"], "Status", "{backend:?} {path}");
            assert_eq!(status["reason"], reason, "{backend:?} {path}");
            assert_eq!(status["message"], message, "{backend:?} {path}");
        }
        let r = get(&api, &format!("{pods_path}/{}:9091/proxy/healthz", name(&sa)));
        assert_eq!(
            (r.code, r.content_type.as_str(), r.body.as_str()),
            (200, "text/plain; charset=utf-8", "OK"),
            "{backend:?}"
        );
    }
}

/// A Deployment scaled down loses the pods the ReplicaSet controller ranks first: an unready pod
/// before ready ones, then the lowest `controller.kubernetes.io/pod-deletion-cost`; not simply the
/// newest or the highest index. (A crash-looping pod therefore does not survive a scale-in.)
#[test]
fn a_scale_down_removes_unready_then_cheapest_pods_first() {
    for backend in backends() {
        let api = TestApi::builder()
            .backend(backend)
            .fixture("helm/default.yaml")
            .replicas("my-release-milvus-datanode", 4)
            .pod_behaviour("my-release-milvus-datanode", 2, milvus_test_api::PodBehaviour::oom_killed(3))
            .start();
        let datanodes = || -> Vec<Value> {
            api.list_json("", "pods", Some("default"), Some("component=datanode")).expect("pods")
        };
        let name = |p: &Value| p["metadata"]["name"].as_str().expect("name").to_string();
        let ready = |p: &Value| {
            p["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        };
        let before = datanodes();
        assert_eq!(before.len(), 4, "{backend:?}");
        let unready: Vec<String> = before.iter().filter(|p| !ready(p)).map(name).collect();
        assert_eq!(unready.len(), 1, "{backend:?}: one crash-looping pod");
        let mut healthy: Vec<String> = before.iter().filter(|p| ready(p)).map(name).collect();
        healthy.sort();
        // The cheapest to delete is the last by name, so that neither name nor age picks it.
        let cheap = healthy.pop().expect("three ready pods");
        api.patch_json(
            "",
            "pods",
            Some("default"),
            &cheap,
            serde_json::json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "-10"}}}),
        )
        .expect("annotate");
        api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-datanode", 2).expect("scale");
        let mut after: Vec<String> = datanodes().iter().map(name).collect();
        after.sort();
        assert_eq!(after, healthy, "{backend:?}: the unready pod and the cheapest went");
    }
}

/// A paged list says how many objects are left (`remainingItemCount`) only when it has no selector:
/// with one, the server would have to match the rest to know, and leaves the field out.
#[test]
fn a_selected_page_does_not_count_what_is_left() {
    for backend in backends() {
        let api = TestApi::builder().backend(backend).fixture("helm/default.yaml").start();
        let selected = get(
            &api,
            "/api/v1/namespaces/default/pods?limit=2&labelSelector=app.kubernetes.io%2Fname%3Dmilvus",
        )
        .json();
        assert_eq!(selected["items"].as_array().map(Vec::len), Some(2), "{backend:?}");
        assert!(selected["metadata"]["continue"].as_str().is_some_and(|c| !c.is_empty()), "{backend:?}");
        assert!(
            selected["metadata"].get("remainingItemCount").is_none(),
            "{backend:?}: {}",
            selected["metadata"]
        );
    }
}
