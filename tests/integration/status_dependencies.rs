//! Dependencies the chart can add that `status` shows: the text-embeddings service (`tei.enabled`)
//! and external etcd, S3, Pulsar or Kafka with their endpoints from the release's configuration.

use serde_json::{Value, json};

use crate::support::*;

/// The chart's text-embeddings StatefulSet for release `my-release`.
fn tei(replicas: i64) -> Value {
    let labels = json!({"app.kubernetes.io/name": "tei", "app.kubernetes.io/instance": "my-release"});
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "my-release-tei", "namespace": "default", "labels": labels},
        "spec": {"replicas": replicas, "serviceName": "my-release-tei", "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "tei", "image": "ghcr.io/huggingface/text-embeddings-inference:cpu-1.7"}]}}}
    })
}

#[test]
fn the_text_embeddings_service_is_a_dependency_and_not_essential() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .object(tei(1))
        .workload_behaviour("my-release-tei", PodBehaviour::ImagePullBackOff)
        .start();
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    let tei =
        json["dependencies"].as_array().expect("dependencies").iter().find(|d| d["kind"] == "tei").cloned();
    let tei = tei.expect("a tei row");
    assert_eq!((tei["displayName"].as_str(), tei["ready"].as_i64()), (Some("tei"), Some(0)));
    // Nothing of it ready: the release is Degraded, not Unavailable (it is not essential).
    assert_eq!(json["health"], "Degraded", "{}", json["healthReason"]);
    let out = run(&api, &["status", "my-release"]).success();
    assert!(out.stdout.lines().any(|l| l.starts_with("tei ")), "{}", out.stdout);
}

/// helm/default.yaml as the chart renders it with `externalEtcd` and `externalS3`: no etcd or MinIO
/// workloads, and their endpoints in the ConfigMap's `default.yaml`.
fn external_etcd_and_s3() -> Vec<Value> {
    let mut docs = fixture_docs("helm/default.yaml");
    docs.retain(|d| {
        let labels = &d["metadata"]["labels"];
        labels["app.kubernetes.io/name"] != "etcd" && labels["app"] != "minio"
    });
    for d in &mut docs {
        if d["kind"] == "ConfigMap" && d["metadata"]["name"] == "my-release-milvus" {
            let text = d["data"]["default.yaml"].as_str().expect("default.yaml").to_string();
            let mut config: Value = serde_yaml::from_str(&text).expect("yaml");
            config["etcd"]["endpoints"] = json!(["etcd-a.example.com:2379", "etcd-b.example.com:2379"]);
            config["minio"]["address"] = json!("s3.eu-west-1.amazonaws.com");
            config["minio"]["port"] = json!(443);
            d["data"]["default.yaml"] = json!(serde_yaml::to_string(&config).expect("yaml"));
            d["data"]["user.yaml"] = json!("minio:\n  port: 8443\n");
        }
    }
    docs
}

#[test]
fn external_etcd_and_s3_are_shown_with_their_endpoints() {
    let api = TestApi::builder().age(AGE).objects(external_etcd_and_s3()).start();
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        let deps: Vec<&str> = out.stdout.lines().filter(|l| l.contains("(external)")).collect();
        insta::assert_snapshot!(deps.join("\n"));
    }
    assert!(
        out.stdout.contains("External: etcd-a.example.com:2379,etcd-b.example.com:2379"),
        "{}",
        out.stdout
    );
    // user.yaml overrides default.yaml.
    assert!(out.stdout.contains("External: s3.eu-west-1.amazonaws.com:8443"), "{}", out.stdout);
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    let external = json["externalDependencies"].as_array().expect("externalDependencies");
    let names: Vec<&str> = external.iter().filter_map(|e| e["displayName"].as_str()).collect();
    assert_eq!(names, ["etcd", "s3"], "the in-release Pulsar is not external");
    assert_eq!(external[1]["kind"], "minio");
}

#[test]
fn an_operator_release_says_which_dependencies_are_external() {
    let mut docs = fixture_docs("operator/cluster.yaml");
    for d in &mut docs {
        if d["kind"] == "Milvus" {
            d["spec"]["dependencies"] = json!({
                "etcd": {"external": true, "endpoints": ["etcd.shared:2379"]},
                "kafka": {"external": true, "brokerList": ["kafka-0.shared:9092", "kafka-1.shared:9092"]}
            });
        }
    }
    let api = TestApi::builder().age(AGE).fixture("operator/milvus-crd.yaml").objects(docs).start();
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(
        json["externalDependencies"],
        json!([
            {"kind": "etcd", "displayName": "etcd", "endpoints": ["etcd.shared:2379"]},
            {"kind": "kafka", "displayName": "kafka", "endpoints": ["kafka-0.shared:9092", "kafka-1.shared:9092"]}
        ])
    );
}

#[test]
fn without_configmaps_get_a_warning_says_the_configuration_was_not_read() {
    let api = TestApi::builder()
        .age(AGE)
        .objects(external_etcd_and_s3())
        .user("no-configmaps", Rules::read_only().deny("get", "configmaps"))
        .start();
    let out =
        run_via(Via::Binary, Some(&api.kubeconfig_for("no-configmaps")), &["status", "my-release"]).success();
    assert!(!out.stdout.contains("(external)"), "{}", out.stdout);
    assert!(
        out.stdout.contains("cannot get configmaps in the namespace \"default\": the release's Milvus configuration (my-release-milvus) is not read"),
        "{}",
        out.stdout
    );
}
