//! Every fixture's release is discovered with the right mode, components, groups and dependencies.

use serde_json::Value;

use crate::support::*;

fn status_json(api: &TestApi, release: &str, namespace: &str) -> Value {
    run(api, &["status", release, "-n", namespace, "-o", "json"]).success().json()
}

fn names(value: &Value, key: &str) -> Vec<String> {
    value[key]
        .as_array()
        .expect(key)
        .iter()
        .filter_map(|c| c["displayName"].as_str().map(String::from))
        .collect()
}

#[test]
fn helm_default_is_a_cluster_with_mixcoord_and_pulsar_v3() {
    let api = helm_release("helm/default.yaml");
    let status = status_json(&api, "my-release", "default");
    assert_eq!(status["mode"], "cluster");
    assert_eq!(status["managedBy"]["type"], "helm");
    assert_eq!(status["version"], "v2.6.15");
    assert_eq!(names(&status, "components"), ["mixcoord", "proxy", "querynode", "datanode", "streamingnode"]);
    assert_eq!(
        names(&status, "dependencies"),
        [
            "etcd",
            "minio",
            "pulsarv3-zookeeper",
            "pulsarv3-bookie",
            "pulsarv3-broker",
            "pulsarv3-proxy",
            "pulsarv3-recovery"
        ]
    );
    assert_eq!(status["health"], "Healthy");
}

#[test]
fn helm_standalone_is_one_pod_with_etcd_and_minio() {
    let api = helm_release("helm/standalone.yaml");
    let status = status_json(&api, "my-release", "default");
    assert_eq!(status["mode"], "standalone");
    assert_eq!(names(&status, "components"), ["standalone"]);
    assert_eq!(names(&status, "dependencies"), ["etcd", "minio"]);
    let list = run(&api, &["list", "-o", "json"]).success().json();
    assert_eq!(list["items"][0]["mode"], "standalone");
}

#[test]
fn helm_coordinators_with_hpas() {
    let api = helm_release("helm/coordinators-hpa.yaml");
    let status = status_json(&api, "my-release", "default");
    assert_eq!(
        names(&status, "components"),
        [
            "rootcoord",
            "querycoord",
            "datacoord",
            "indexcoord",
            "proxy",
            "querynode",
            "datanode",
            "indexnode",
            "streamingnode"
        ]
    );
    let hpas: Vec<(String, String)> = status["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| !c["hpa"].is_null())
        .map(|c| {
            (c["displayName"].as_str().unwrap_or("").into(), c["hpa"]["name"].as_str().unwrap_or("").into())
        })
        .collect();
    assert_eq!(
        hpas,
        [
            ("proxy".to_string(), "my-release-milvus-proxy-hpa".to_string()),
            ("querynode".to_string(), "my-release-milvus-querynode-hpa".to_string())
        ]
    );
}

#[test]
fn helm_kafka_has_kafka_and_zookeeper() {
    let api = helm_release("helm/kafka.yaml");
    let status = status_json(&api, "my-release", "default");
    assert_eq!(names(&status, "dependencies"), ["etcd", "minio", "kafka", "zookeeper"]);
    assert_eq!(status["health"], "Healthy");
}

#[test]
fn operator_cluster_folds_the_querynode_slots() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .fixture("operator/cluster.yaml")
        .milvus_status(MilvusStatus::Healthy)
        .start();
    let status = status_json(&api, "my-release", "default");
    assert_eq!(status["managedBy"]["type"], "operator");
    assert_eq!(status["managedBy"]["resourceFound"], true);
    assert_eq!(status["mode"], "cluster");
    assert_eq!(status["version"], "v2.6.11");
    assert_eq!(names(&status, "components"), ["mixcoord", "proxy", "querynode", "datanode", "streamingnode"]);
    let list = run(&api, &["list", "-o", "json"]).success().json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "one release, not a Helm one beside it");
    assert_eq!(list["items"][0]["managedBy"], "operator");
}

#[test]
fn helm_resource_groups_are_rows_of_their_own() {
    let docs = fixture_docs("helm/default.yaml");
    let groups = ["rg1", "rg2"]
        .iter()
        .map(|rg| {
            grouped_copy(
                &docs,
                "my-release-milvus-querynode",
                "milvus.io/resource-group",
                rg,
                &format!("my-release-milvus-querynode-{rg}"),
            )
        })
        .collect();
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").objects(groups).start();
    let status = status_json(&api, "my-release", "default");
    let components = names(&status, "components");
    assert!(components.contains(&"querynode[rg1]".to_string()), "{components:?}");
    assert!(components.contains(&"querynode[rg2]".to_string()), "{components:?}");
    let rg1 = component_row(&status, "querynode[rg1]").cloned();
    assert_eq!(rg1.as_ref().map(|c| c["group"].clone()), Some(Value::from("rg1")));
    assert_eq!(
        rg1.map(|c| c["pods"].as_array().map(Vec::len)),
        Some(Some(1)),
        "pods counted once, in their group"
    );
}

#[test]
fn operator_deployment_groups_are_rows_of_their_own() {
    let docs = fixture_docs("operator/cluster.yaml");
    let group = grouped_copy(
        &docs,
        "my-release-milvus-datanode",
        "milvus.io/deployment-group",
        "ssd",
        "my-release-milvus-datanode-ssd",
    );
    let api = TestApi::builder()
        .age(AGE)
        .fixture("operator/milvus-crd.yaml")
        .fixture("operator/cluster.yaml")
        .objects(vec![group])
        .start();
    let status = status_json(&api, "my-release", "default");
    assert!(names(&status, "components").contains(&"datanode[ssd]".to_string()), "{status}");
}

#[test]
fn several_releases_in_several_namespaces() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture_as("helm/default.yaml", "alpha", "team-a")
        .fixture_as("helm/kafka.yaml", "beta", "team-b")
        .fixture_as("helm/standalone.yaml", "gamma", "team-b")
        .start();
    let list = run(&api, &["list", "-A", "-o", "json"]).success().json();
    let found: Vec<(String, String, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["namespace"].as_str().unwrap_or("").into(),
                i["name"].as_str().unwrap_or("").into(),
                i["mode"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("team-a".into(), "alpha".into(), "cluster".into()),
            ("team-b".into(), "beta".into(), "cluster".into()),
            ("team-b".into(), "gamma".into(), "standalone".into()),
        ]
    );
}
