//! Discovery, health and problem detection against the real fixtures in `shared/fixtures`.
//!
//! The fixtures are `helm template` renders and operator objects without status; [`bring_up`]
//! plays the controllers: it gives every workload a ready status and creates its pods from the
//! pod template, all Running and Ready. Tests then break what they need.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kubectl_milvus::milvus::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use kubectl_milvus::milvus::*;

// ---------------------------------------------------------------------------------------------
// Helpers

fn fixtures_dir() -> PathBuf {
    match std::env::var_os("MILVUS_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures")),
    }
}

const NOW: &str = "2025-06-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `now` minus `secs`, as the API server writes it.
fn ago(secs: i64) -> String {
    Timestamp::from_second(now().as_second() - secs).unwrap().to_string()
}

fn opts() -> DiscoveryOptions {
    DiscoveryOptions { name_label: DEFAULT_NAME_LABEL.to_string(), now: now() }
}

/// Parses a multi-document fixture into an inventory. autoscaling/v2 HPAs become v1 (what the
/// plugin reads); Jobs are returned separately so tests can create their pods.
fn load(rel: &str) -> (Inventory, Vec<Value>) {
    let path = fixtures_dir().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut inv = Inventory::default();
    let mut jobs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let mut v = Value::deserialize(doc).unwrap();
        yaml11_octal(&mut v);
        if v.is_null() {
            continue;
        }
        match v["kind"].as_str().unwrap_or("") {
            "Deployment" => inv.deployments.push(serde_json::from_value(v).unwrap()),
            "StatefulSet" => inv.stateful_sets.push(serde_json::from_value(v).unwrap()),
            "Milvus" => inv.milvuses.push(Milvus::from_value(v).unwrap()),
            "Job" => jobs.push(v),
            "HorizontalPodAutoscaler" => {
                let v1 = json!({
                    "apiVersion": "autoscaling/v1",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": v["metadata"],
                    "spec": {
                        "scaleTargetRef": v["spec"]["scaleTargetRef"],
                        "minReplicas": v["spec"]["minReplicas"],
                        "maxReplicas": v["spec"]["maxReplicas"],
                    }
                });
                let mut hpa: HorizontalPodAutoscaler = serde_json::from_value(v1).unwrap();
                hpa.metadata.namespace.get_or_insert_with(|| "default".to_string());
                inv.hpas.push(hpa);
            }
            _ => {}
        }
    }
    (inv, jobs)
}

/// Kubernetes reads manifests as YAML 1.1, where `defaultMode: 0755` is octal; serde_yaml
/// (YAML 1.2) reads a string.
fn yaml11_octal(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if let (true, Value::String(s)) = (k == "defaultMode" || k == "mode", &*x)
                    && let Ok(n) = i64::from_str_radix(s.trim_start_matches('0'), 8)
                {
                    *x = json!(n);
                    continue;
                }
                yaml11_octal(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(yaml11_octal),
        _ => {}
    }
}

fn healthy_container_status(name: &str, image: &str) -> Value {
    json!({
        "name": name, "image": image, "imageID": "", "ready": true, "started": true,
        "restartCount": 0, "state": {"running": {"startedAt": ago(3600)}}
    })
}

/// A Running, Ready pod made from a pod template, as the ReplicaSet/StatefulSet controller would.
fn pod_from_template(ns: &str, name: &str, template: &Value, owner_kind: &str, owner: &str) -> Pod {
    let spec = &template["spec"];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let inits = spec["initContainers"].as_array().cloned().unwrap_or_default();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| healthy_container_status(c["name"].as_str().unwrap(), c["image"].as_str().unwrap()))
        .collect();
    let init_statuses: Vec<Value> = inits
        .iter()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": true,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}
            })
        })
        .collect();
    let mut spec = spec.clone();
    spec["nodeName"] = json!("node-1");
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": ns,
            "labels": template["metadata"]["labels"],
            "creationTimestamp": ago(86400),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "uid": "u", "controller": true}]
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "startTime": ago(86400),
            "conditions": [
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": ago(3600)},
                {"type": "ContainersReady", "status": "True"},
                {"type": "PodScheduled", "status": "True"}
            ],
            "containerStatuses": statuses,
            "initContainerStatuses": init_statuses,
        }
    }))
    .unwrap()
}

/// Plays the controllers: every workload gets a ready status and Running, Ready pods; every Job
/// gets one Succeeded pod (and the pulsar-init job a failed earlier attempt).
fn bring_up(inv: &mut Inventory, jobs: &[Value]) {
    let mut pods = Vec::new();
    for d in &mut inv.deployments {
        d.metadata.creation_timestamp = Some(now_minus(86400));
        d.metadata.generation = Some(1);
        let name = d.metadata.name.clone().unwrap();
        let ns = d.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        d.metadata.namespace = Some(ns.clone());
        let spec = d.spec.as_ref().unwrap();
        let replicas = spec.replicas.unwrap_or(1);
        let template = serde_json::to_value(&spec.template).unwrap();
        let rs = format!("{name}-5d8f7c9b4");
        for i in 0..replicas {
            pods.push(pod_from_template(&ns, &format!("{rs}-p{i:03}"), &template, "ReplicaSet", &rs));
        }
        d.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
                ]
            }))
            .unwrap(),
        );
    }
    for s in &mut inv.stateful_sets {
        s.metadata.creation_timestamp = Some(now_minus(86400 * 2));
        s.metadata.generation = Some(1);
        let name = s.metadata.name.clone().unwrap();
        let ns = s.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        s.metadata.namespace = Some(ns.clone());
        let spec = s.spec.as_ref().unwrap();
        let replicas = spec.replicas.unwrap_or(1);
        let template = serde_json::to_value(&spec.template).unwrap();
        for i in 0..replicas {
            pods.push(pod_from_template(&ns, &format!("{name}-{i}"), &template, "StatefulSet", &name));
        }
        s.status = Some(
            serde_json::from_value(json!({
                "observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                "updatedReplicas": replicas, "availableReplicas": replicas, "currentReplicas": replicas,
                "currentRevision": format!("{name}-1"), "updateRevision": format!("{name}-1")
            }))
            .unwrap(),
        );
    }
    for job in jobs {
        let name = job["metadata"]["name"].as_str().unwrap();
        let ns = job["metadata"]["namespace"].as_str().unwrap_or("default");
        let mut template = job["spec"]["template"].clone();
        template["metadata"] = json!({"labels": {"job-name": name, "batch.kubernetes.io/job-name": name, "controller-uid": "u"}});
        let mut pod = pod_from_template(ns, &format!("{name}-x7k2q"), &template, "Job", name);
        let status = pod.status.as_mut().unwrap();
        status.phase = Some("Succeeded".into());
        for c in status.container_statuses.iter_mut().flatten() {
            c.ready = false;
            c.state = Some(
                serde_json::from_value(json!({"terminated": {"exitCode": 0, "reason": "Completed"}}))
                    .unwrap(),
            );
        }
        pods.push(pod.clone());
        // A failed earlier attempt of the same Job.
        pod.metadata.name = Some(format!("{name}-a1b2c"));
        let status = pod.status.as_mut().unwrap();
        status.phase = Some("Failed".into());
        for c in status.container_statuses.iter_mut().flatten() {
            c.state = Some(
                serde_json::from_value(json!({"terminated": {"exitCode": 1, "reason": "Error"}})).unwrap(),
            );
        }
        pods.push(pod);
    }
    inv.pods.extend(pods);
}

fn now_minus(secs: i64) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::from_second(now().as_second() - secs).unwrap(),
    )
}

/// A fixture, brought up.
fn running(rel: &str) -> Inventory {
    let (mut inv, jobs) = load(rel);
    bring_up(&mut inv, &jobs);
    inv
}

fn only_release(inv: &Inventory) -> Release {
    let mut r = discover(inv, &opts());
    assert_eq!(r.len(), 1, "{r:#?}");
    r.remove(0)
}

fn component<'a>(r: &'a Release, display: &str) -> &'a Component {
    r.components
        .iter()
        .find(|c| c.display_name == display)
        .unwrap_or_else(|| panic!("no component {display} in {:?}", names(r)))
}

fn dependency<'a>(r: &'a Release, display: &str) -> &'a Dependency {
    r.dependencies
        .iter()
        .find(|c| c.display_name == display)
        .unwrap_or_else(|| panic!("no dependency {display} in {:?}", dep_names(r)))
}

fn names(r: &Release) -> Vec<&str> {
    r.components.iter().map(|c| c.display_name.as_str()).collect()
}

fn dep_names(r: &Release) -> Vec<&str> {
    r.dependencies.iter().map(|c| c.display_name.as_str()).collect()
}

fn deployment<'a>(inv: &'a mut Inventory, name: &str) -> &'a mut Deployment {
    inv.deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no deployment {name}"))
}

fn stateful_set<'a>(inv: &'a mut Inventory, name: &str) -> &'a mut StatefulSet {
    inv.stateful_sets
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no statefulset {name}"))
}

/// The pods whose name starts with `prefix-` (a workload's pods).
fn pods_of<'a>(inv: &'a mut Inventory, prefix: &str) -> Vec<&'a mut Pod> {
    let p = format!("{prefix}-");
    inv.pods.iter_mut().filter(|pod| pod.metadata.name.as_deref().unwrap().starts_with(&p)).collect()
}

/// Sets status fields of a Deployment (JSON merge into its status).
fn patch_status(d: &mut Deployment, patch: Value) {
    let mut s = serde_json::to_value(d.status.as_ref().unwrap()).unwrap();
    merge(&mut s, patch);
    d.status = Some(serde_json::from_value(s).unwrap());
}

fn patch_pod(pod: &mut Pod, patch: Value) {
    let mut v = serde_json::to_value(&*pod).unwrap();
    merge(&mut v, patch);
    *pod = serde_json::from_value(v).unwrap();
}

/// Edits a `Milvus` object as JSON.
fn edit_cr(cr: &mut Milvus, edit: impl FnOnce(&mut Value)) {
    let mut value = serde_json::to_value(&*cr).unwrap();
    edit(&mut value);
    *cr = Milvus::from_value(value).unwrap();
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn crash_looping(container: &str, restarts: i32) -> Value {
    json!({"status": {
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "lastTransitionTime": ago(600)},
            {"type": "PodScheduled", "status": "True"}
        ],
        "containerStatuses": [{
            "name": container, "image": "milvusdb/milvus:v2.6.15", "imageID": "", "ready": false,
            "restartCount": restarts,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(60)}}
        }]
    }})
}

fn pod(v: Value) -> Pod {
    let mut base = json!({
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(86400)},
        "spec": {"nodeName": "node-1", "containers": [{"name": "querynode", "image": "milvusdb/milvus:v2.6.15"}]},
        "status": {"phase": "Running", "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True", "lastTransitionTime": ago(3600)},
            {"type": "PodScheduled", "status": "True"}
        ]}
    });
    merge(&mut base, v);
    serde_json::from_value(base).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Fixtures: discovery

#[test]
fn helm_default_release() {
    let inv = running("helm/default.yaml");
    let r = only_release(&inv);
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("default", "my-release"));
    assert_eq!(r.managed_by, ManagedBy::Helm { chart: Some("milvus-5.0.19".into()) });
    assert_eq!(r.mode, Mode::Cluster);
    assert_eq!(r.version.as_deref(), Some("v2.6.15"));
    assert_eq!(names(&r), ["mixcoord", "proxy", "querynode", "datanode", "streamingnode"]);
    assert_eq!(
        dep_names(&r),
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
    assert!(r.dependencies[2..].iter().all(|d| d.kind == DependencyKind::PulsarV3));
    assert_eq!(dependency(&r, "etcd").desired, 3);
    assert_eq!(dependency(&r, "etcd").pods.len(), 3);
    assert_eq!(dependency(&r, "minio").pods.len(), 4);
    assert_eq!(dependency(&r, "pulsarv3-proxy").pods.len(), 2);
    let proxy = component(&r, "proxy");
    assert_eq!(proxy.kind, ComponentKind::Proxy);
    assert_eq!(proxy.group, None);
    assert_eq!(
        proxy.workloads,
        [WorkloadRef { kind: "Deployment".into(), name: "my-release-milvus-proxy".into() }]
    );
    // The Milvus proxy does not take the pulsar proxy's pods (both have component=proxy).
    assert_eq!(proxy.pods.len(), 1);
    assert_eq!(proxy.pods[0].status, "Running");
    assert_eq!(proxy.pods[0].node.as_deref(), Some("node-1"));
    assert_eq!(proxy.hpa, None);
    assert_eq!(proxy.created, Some(now() - jiff::SignedDuration::from_hours(24)));
    // Release created = the oldest object (the StatefulSets).
    assert_eq!(r.created, Some(now() - jiff::SignedDuration::from_hours(48)));
    assert_eq!(r.health, Health::Healthy, "{}", r.health_reason);
    assert_eq!(r.health_reason, "");
    assert!(r.components.iter().all(|c| c.reason.is_empty()));
    // Succeeded and failed pulsar init Job pods are not problems.
    assert!(inv.pods.iter().any(|p| p.metadata.name.as_deref().unwrap().contains("pulsar-init")));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.dependencies.iter().flat_map(|d| &d.pods).all(|p| !p.name.contains("-init-")));
    assert_eq!(r.components_ready(), (5, 5));
}

#[test]
fn helm_standalone_release() {
    let inv = running("helm/standalone.yaml");
    let r = only_release(&inv);
    assert_eq!(r.mode, Mode::Standalone);
    assert_eq!(names(&r), ["standalone"]);
    assert_eq!(dep_names(&r), ["etcd", "minio"]);
    assert_eq!(dependency(&r, "minio").workloads[0].kind, "Deployment", "standalone minio is a Deployment");
    assert_eq!(dependency(&r, "etcd").desired, 1);
    assert_eq!(r.version.as_deref(), Some("v2.6.15"));
    assert_eq!(r.health, Health::Healthy);
}

/// Woodpecker as a service (`woodpecker.enabled`): a Milvus-labelled StatefulSet with
/// `component: woodpecker`, reported as the release's message-queue dependency.
#[test]
fn helm_woodpecker_service_is_a_dependency() {
    let (mut inv, jobs) = load("helm/standalone.yaml");
    let base = deployment(&mut inv, "my-release-milvus-standalone").clone();
    let mut v = serde_json::to_value(&base).unwrap();
    v["kind"] = json!("StatefulSet");
    v["metadata"]["name"] = json!("my-release-milvus-woodpecker");
    for path in ["/metadata/labels", "/spec/selector/matchLabels", "/spec/template/metadata/labels"] {
        v.pointer_mut(path).unwrap()["component"] = json!("woodpecker");
    }
    v["spec"]["replicas"] = json!(4);
    v["spec"].as_object_mut().unwrap().remove("strategy");
    inv.stateful_sets.push(serde_json::from_value(v).unwrap());
    bring_up(&mut inv, &jobs);
    let r = only_release(&inv);
    assert_eq!(names(&r), ["standalone"]);
    assert_eq!(dep_names(&r), ["etcd", "minio", "woodpecker"]);
    let wp = dependency(&r, "woodpecker");
    assert_eq!((wp.kind, wp.desired, wp.pods.len()), (DependencyKind::Woodpecker, 4, 4));
    assert_eq!(r.mode, Mode::Standalone);
}

#[test]
fn helm_coordinators_and_hpas() {
    let inv = running("helm/coordinators-hpa.yaml");
    let r = only_release(&inv);
    assert_eq!(r.mode, Mode::Cluster);
    assert_eq!(
        names(&r),
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
    assert_eq!(
        component(&r, "querynode").hpa,
        Some(HpaRef { name: "my-release-milvus-querynode-hpa".into(), min_replicas: 1, max_replicas: 5 })
    );
    assert_eq!(
        component(&r, "proxy").hpa.as_ref().map(|h| h.name.as_str()),
        Some("my-release-milvus-proxy-hpa")
    );
    assert_eq!(component(&r, "datanode").hpa, None);
    assert_eq!(component(&r, "proxy").desired, 2);
    assert_eq!(component(&r, "datanode").desired, 2);
    // `replicas: -1` omits spec.replicas: Kubernetes defaults it to 1.
    assert_eq!(component(&r, "querynode").desired, 1);
    assert_eq!(r.health, Health::Healthy);
}

#[test]
fn hpa_min_defaults_to_one_and_other_namespaces_do_not_count() {
    let mut inv = running("helm/coordinators-hpa.yaml");
    inv.hpas[0].spec.as_mut().unwrap().min_replicas = None;
    inv.hpas[1].metadata.namespace = Some("elsewhere".into());
    let r = only_release(&inv);
    let with_hpa: Vec<(&str, i32)> = r
        .components
        .iter()
        .filter_map(|c| c.hpa.as_ref().map(|h| (c.display_name.as_str(), h.min_replicas)))
        .collect();
    assert_eq!(with_hpa.len(), 1, "{with_hpa:?}");
    assert_eq!(with_hpa[0].1, 1);
}

#[test]
fn helm_kafka_release() {
    let inv = running("helm/kafka.yaml");
    let r = only_release(&inv);
    assert_eq!(dep_names(&r), ["etcd", "minio", "kafka", "zookeeper"]);
    assert_eq!(dependency(&r, "kafka").kind, DependencyKind::Kafka);
    assert_eq!(dependency(&r, "zookeeper").kind, DependencyKind::Zookeeper);
    assert_eq!(dependency(&r, "kafka").pods.len(), 3);
    assert_eq!(r.health, Health::Healthy);
}

fn operator_inventory() -> Inventory {
    let (mut inv, jobs) = load("operator/cluster.yaml");
    bring_up(&mut inv, &jobs);
    let status = json!({
        "metadata": {"creationTimestamp": ago(3 * 86400)},
        "status": {"status": "Healthy", "conditions": [
            {"type": "EtcdReady", "status": "True", "reason": "EtcdReady", "message": "Etcd endpoints is healthy"},
            {"type": "StorageReady", "status": "True", "reason": "StorageReady"},
            {"type": "MsgStreamReady", "status": "True", "reason": "MsgStreamReady"},
            {"type": "MilvusReady", "status": "True", "reason": "ReasonMilvusHealthy", "message": "Milvus components are healthy"}
        ]}
    });
    edit_cr(&mut inv.milvuses[0], |cr| merge(cr, status));
    inv
}

#[test]
fn operator_cluster_release() {
    let inv = operator_inventory();
    let r = only_release(&inv);
    assert_eq!((r.namespace.as_str(), r.name.as_str()), ("default", "my-release"));
    let ManagedBy::Operator { status, conditions, resource_found } = &r.managed_by else {
        panic!("{:?}", r.managed_by)
    };
    assert_eq!(status.as_deref(), Some("Healthy"));
    assert!(resource_found);
    assert_eq!(conditions.len(), 4);
    assert_eq!(conditions[3].type_, "MilvusReady");
    assert_eq!(conditions[3].message.as_deref(), Some("Milvus components are healthy"));
    assert_eq!(r.mode, Mode::Cluster);
    // The standalone Deployment at 0 is not part of a cluster release.
    assert_eq!(names(&r), ["mixcoord", "proxy", "querynode", "datanode", "streamingnode"]);
    let qn = component(&r, "querynode");
    assert_eq!(qn.workloads.len(), 2);
    assert_eq!((qn.desired, qn.ready), (2, 2));
    assert_eq!(qn.active_workload.as_deref(), Some("my-release-milvus-querynode-0"));
    assert_eq!(qn.pods.len(), 2);
    assert_eq!(component(&r, "proxy").active_workload, None);
    assert_eq!(r.version.as_deref(), Some("v2.6.11"));
    assert_eq!(r.created, Some(now() - jiff::SignedDuration::from_hours(72)));
    assert_eq!(r.health, Health::Healthy, "{}", r.health_reason);
    assert!(r.dependencies.is_empty());
}

#[test]
fn operator_active_querynode_follows_the_annotation() {
    let mut inv = operator_inventory();
    edit_cr(&mut inv.milvuses[0], |cr| {
        cr["metadata"]["annotations"]["milvus.io/querynode-current-group-id"] = json!("1")
    });
    let r = only_release(&inv);
    assert_eq!(component(&r, "querynode").active_workload.as_deref(), Some("my-release-milvus-querynode-1"));
}

#[test]
fn operator_workloads_without_their_resource() {
    let mut inv = operator_inventory();
    inv.milvuses.clear();
    let r = only_release(&inv);
    assert_eq!(r.managed_by, ManagedBy::Operator { status: None, conditions: vec![], resource_found: false });
    assert_eq!(r.mode, Mode::Cluster);
    assert_eq!(
        component(&r, "querynode").active_workload.as_deref(),
        Some("my-release-milvus-querynode-0"),
        "the slot with replicas"
    );
    assert_eq!(r.version.as_deref(), Some("v2.6.11"));
    assert_eq!(r.health, Health::Healthy);
}

#[test]
fn operator_resource_without_workloads() {
    let mut inv = operator_inventory();
    inv.deployments.clear();
    inv.pods.clear();
    edit_cr(&mut inv.milvuses[0], |cr| cr["status"]["status"] = json!("Pending"));
    let r = only_release(&inv);
    assert!(r.components.is_empty());
    assert_eq!(r.version.as_deref(), Some("v2.6.11"), "from spec.components.image");
    assert_eq!(r.health, Health::Progressing);
}

/// The operator's etcd/minio/pulsar are Helm releases named `<cr>-etcd`… .
#[test]
fn operator_dependencies_are_separate_helm_releases() {
    let mut inv = operator_inventory();
    let (mut helm, jobs) = load("helm/default.yaml");
    for s in &mut helm.stateful_sets {
        let name = s.metadata.name.clone().unwrap();
        let target = if name.contains("etcd") {
            "my-release-etcd"
        } else if name.contains("minio") {
            "my-release-minio"
        } else {
            "my-release-pulsar"
        };
        let mut v = serde_json::to_string(&s).unwrap();
        v = v.replace("my-release-", &format!("{target}-"));
        v = v.replace("\"my-release\"", &format!("\"{target}\""));
        *s = serde_json::from_str(&v).unwrap();
    }
    helm.deployments.clear();
    bring_up(&mut helm, &jobs);
    inv.stateful_sets.extend(helm.stateful_sets);
    inv.pods.extend(helm.pods);
    let r = only_release(&inv);
    assert_eq!(
        dep_names(&r),
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
    assert_eq!(dependency(&r, "etcd").pods.len(), 3);
    assert_eq!(r.health, Health::Healthy);
}

#[test]
fn two_releases_in_two_namespaces() {
    let mut inv = Inventory::default();
    for (file, ns) in [("helm/default.yaml", "zeta"), ("helm/standalone.yaml", "alpha")] {
        let (mut part, jobs) = load(file);
        for d in &mut part.deployments {
            d.metadata.namespace = Some(ns.into());
        }
        for s in &mut part.stateful_sets {
            s.metadata.namespace = Some(ns.into());
        }
        bring_up(&mut part, &jobs);
        inv.deployments.extend(part.deployments);
        inv.stateful_sets.extend(part.stateful_sets);
        inv.pods.extend(part.pods);
    }
    // The operator's release, in a third namespace, same name.
    let mut op = operator_inventory();
    let mut op_text = serde_json::to_string(&op.deployments).unwrap();
    op_text = op_text.replace("\"namespace\":\"default\"", "\"namespace\":\"mid\"");
    op.deployments = serde_json::from_str(&op_text).unwrap();
    for p in &mut op.pods {
        p.metadata.namespace = Some("mid".into());
    }
    edit_cr(&mut op.milvuses[0], |cr| cr["metadata"]["namespace"] = json!("mid"));
    inv.deployments.extend(op.deployments);
    inv.pods.extend(op.pods);
    inv.milvuses.extend(op.milvuses);

    let rs = discover(&inv, &opts());
    let keys: Vec<(&str, &str, &str)> =
        rs.iter().map(|r| (r.namespace.as_str(), r.name.as_str(), r.managed_by.short())).collect();
    assert_eq!(
        keys,
        [("alpha", "my-release", "helm"), ("mid", "my-release", "operator"), ("zeta", "my-release", "helm")]
    );
    assert_eq!(rs[0].mode, Mode::Standalone);
    assert_eq!(rs[2].mode, Mode::Cluster);
    assert_eq!(dep_names(&rs[0]), ["etcd", "minio"]);
    assert_eq!(dependency(&rs[0], "etcd").pods.len(), 1, "no pods from the other namespace");
    assert_eq!(dependency(&rs[2], "etcd").pods.len(), 3);
    assert!(rs.iter().all(|r| r.health == Health::Healthy));
}

#[test]
fn name_override() {
    let (mut inv, jobs) = load("helm/default.yaml");
    let mut text = serde_json::to_string(&inv.deployments).unwrap();
    text = text.replace("\"app.kubernetes.io/name\":\"milvus\"", "\"app.kubernetes.io/name\":\"vectordb\"");
    inv.deployments = serde_json::from_str(&text).unwrap();
    bring_up(&mut inv, &jobs);
    assert!(discover(&inv, &opts()).is_empty());
    let o = DiscoveryOptions { name_label: "vectordb".into(), now: now() };
    let rs = discover(&inv, &o);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].components.len(), 5);
    assert_eq!(rs[0].dependencies.len(), 7);
    assert_eq!(component(&rs[0], "querynode").pods.len(), 1);
    assert_eq!(rs[0].health, Health::Healthy);
}

/// `replicaResourceGroups: [rg1]`: a querynode Deployment per group, labelled and selected by
/// `milvus.io/resource-group`; its pods also match the plain querynode selector.
#[test]
fn helm_resource_groups() {
    let (mut inv, jobs) = load("helm/default.yaml");
    for comp in ["querynode", "streamingnode"] {
        let base = deployment(&mut inv, &format!("my-release-milvus-{comp}")).clone();
        let mut v = serde_json::to_value(&base).unwrap();
        v["metadata"]["name"] = json!(format!("my-release-milvus-{comp}-rg1"));
        v["metadata"]["labels"]["milvus.io/resource-group"] = json!("rg1");
        v["spec"]["selector"]["matchLabels"]["milvus.io/resource-group"] = json!("rg1");
        v["spec"]["template"]["metadata"]["labels"]["milvus.io/resource-group"] = json!("rg1");
        v["spec"]["replicas"] = json!(3);
        inv.deployments.push(serde_json::from_value(v).unwrap());
    }
    bring_up(&mut inv, &jobs);
    let r = only_release(&inv);
    assert_eq!(
        names(&r),
        [
            "mixcoord",
            "proxy",
            "querynode",
            "querynode[rg1]",
            "datanode",
            "streamingnode",
            "streamingnode[rg1]"
        ]
    );
    let rg = component(&r, "querynode[rg1]");
    assert_eq!(rg.group.as_deref(), Some("rg1"));
    assert_eq!(rg.kind, ComponentKind::QueryNode);
    assert_eq!((rg.desired, rg.pods.len()), (3, 3));
    assert_eq!(component(&r, "querynode").pods.len(), 1, "rg1 pods not counted twice");
    assert_eq!(r.health, Health::Healthy);
}

#[test]
fn operator_deployment_groups() {
    let mut inv = operator_inventory();
    let base = deployment(&mut inv, "my-release-milvus-proxy").clone();
    let mut v = serde_json::to_value(&base).unwrap();
    v["metadata"]["name"] = json!("my-release-milvus-proxy-edge");
    for path in ["/metadata/labels", "/spec/selector/matchLabels", "/spec/template/metadata/labels"] {
        v.pointer_mut(path).unwrap()["milvus.io/deployment-group"] = json!("edge");
    }
    let mut d: Deployment = serde_json::from_value(v).unwrap();
    d.status = None;
    inv.deployments.push(d);
    let r = only_release(&inv);
    let edge = component(&r, "proxy[edge]");
    assert_eq!(edge.group.as_deref(), Some("edge"));
    // No status and no pods yet: an essential row with nothing ready.
    assert_eq!(edge.health, Health::Unavailable);
    assert_eq!(edge.reason, "0/2 ready, no pods");
}

// ---------------------------------------------------------------------------------------------
// Health rules

#[test]
fn health_progressing_rollout() {
    let mut inv = running("helm/default.yaml");
    let d = deployment(&mut inv, "my-release-milvus-querynode");
    d.metadata.generation = Some(2);
    patch_status(
        d,
        json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "readyReplicas": 1}),
    );
    let template = serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    let mut new_pod =
        pod_from_template("default", "my-release-milvus-querynode-7c4b9-zz", &template, "ReplicaSet", "x");
    patch_pod(
        &mut new_pod,
        json!({"metadata": {"creationTimestamp": ago(20)}, "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False", "lastTransitionTime": ago(20)}],
            "containerStatuses": [{"name": "querynode", "image": "milvusdb/milvus:v2.6.16", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
    );
    inv.pods.push(new_pod);
    let r = only_release(&inv);
    let qn = component(&r, "querynode");
    assert_eq!(qn.health, Health::Progressing);
    assert_eq!(qn.reason, "1/1 ready, old replicas terminating");
    assert_eq!(qn.pods.len(), 2);
    assert_eq!(r.health, Health::Progressing);
    assert_eq!(r.health_reason, "querynode: 1/1 ready (old replicas terminating)");
    assert!(r.problems.is_empty(), "a starting pod is not a problem");
}

#[test]
fn health_progressing_scale_up() {
    let mut inv = running("helm/default.yaml");
    let d = deployment(&mut inv, "my-release-milvus-proxy");
    d.spec.as_mut().unwrap().replicas = Some(3);
    patch_status(d, json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 1}));
    let template = serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    for i in 0..2 {
        let mut p = pod_from_template(
            "default",
            &format!("my-release-milvus-proxy-5d8f7c9b4-n{i}"),
            &template,
            "ReplicaSet",
            "x",
        );
        patch_pod(
            &mut p,
            json!({"metadata": {"creationTimestamp": ago(30)}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "proxy", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        );
        inv.pods.push(p);
    }
    let r = only_release(&inv);
    let proxy = component(&r, "proxy");
    assert_eq!(proxy.health, Health::Progressing);
    assert_eq!(proxy.reason, "1/3 ready, ContainerCreating");
    assert_eq!(r.health, Health::Progressing);
}

#[test]
fn health_degraded_by_crash_loop() {
    let mut inv = running("helm/default.yaml");
    let d = deployment(&mut inv, "my-release-milvus-querynode");
    d.spec.as_mut().unwrap().replicas = Some(2);
    patch_status(d, json!({"replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}));
    let template = serde_json::to_value(&d.spec.as_ref().unwrap().template).unwrap();
    let mut p = pod_from_template(
        "default",
        "my-release-milvus-querynode-5d8f7c9b4-p001",
        &template,
        "ReplicaSet",
        "x",
    );
    patch_pod(&mut p, crash_looping("querynode", 5));
    inv.pods.push(p);
    let r = only_release(&inv);
    let qn = component(&r, "querynode");
    assert_eq!(qn.health, Health::Degraded);
    assert_eq!(qn.reason, "1/2 ready, CrashLoopBackOff");
    assert_eq!(qn.restarts, 5);
    assert_eq!(r.health, Health::Degraded);
    assert_eq!(r.health_reason, "querynode: 1/2 ready (CrashLoopBackOff)");
    assert_eq!(
        r.problems,
        [PodProblem {
            namespace: Some("default".into()),
            pod: "my-release-milvus-querynode-5d8f7c9b4-p001".into(),
            owner: "querynode".into(),
            kind: ProblemKind::CrashLoopBackOff,
            reason:
                "CrashLoopBackOff: container querynode last terminated OOMKilled (exit code 137), 5 restarts"
                    .into(),
        }]
    );
    let crashing = qn.pods.iter().find(|p| p.name.ends_with("p001")).unwrap();
    assert_eq!(crashing.status, "CrashLoopBackOff");
    assert_eq!((crashing.ready_containers, crashing.total_containers), (0, 1));
}

#[test]
fn health_degraded_when_all_ready_but_a_pod_restarts() {
    let mut inv = running("helm/default.yaml");
    let p = pods_of(&mut inv, "my-release-milvus-datanode").pop().unwrap();
    patch_pod(
        p,
        json!({"status": {"containerStatuses": [{"name": "datanode", "image": "i", "imageID": "", "ready": true,
            "restartCount": 2, "state": {"running": {"startedAt": ago(120)}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(125)}}}]}}),
    );
    let r = only_release(&inv);
    let dn = component(&r, "datanode");
    assert_eq!(dn.health, Health::Degraded);
    assert_eq!(dn.reason, "1/1 ready, Restarted");
    assert_eq!(
        r.problems[0].reason,
        "Restarted: container datanode restarted 2m5s ago after OOMKilled (exit code 137), 2 restarts"
    );
}

#[test]
fn health_unavailable_when_proxy_has_no_ready_replica() {
    let mut inv = running("helm/default.yaml");
    patch_status(
        deployment(&mut inv, "my-release-milvus-proxy"),
        json!({"readyReplicas": 0, "availableReplicas": 0}),
    );
    let p = pods_of(&mut inv, "my-release-milvus-proxy").pop().unwrap();
    patch_pod(p, crash_looping("proxy", 12));
    let r = only_release(&inv);
    assert_eq!(component(&r, "proxy").health, Health::Unavailable);
    assert_eq!(component(&r, "proxy").reason, "0/1 ready, CrashLoopBackOff");
    assert_eq!(r.health, Health::Unavailable);
    assert_eq!(r.health_reason, "proxy: 0/1 ready (CrashLoopBackOff)");
}

#[test]
fn health_unavailable_when_an_essential_dependency_is_down() {
    let mut inv = running("helm/default.yaml");
    let s = stateful_set(&mut inv, "my-release-etcd");
    let mut st = s.status.clone().unwrap();
    st.ready_replicas = Some(0);
    s.status = Some(st);
    for p in pods_of(&mut inv, "my-release-etcd") {
        patch_pod(
            p,
            json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ago(900)}],
            "containerStatuses": [{"name": "etcd", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"running": {"startedAt": ago(3600)}}}]}}),
        );
    }
    let r = only_release(&inv);
    assert_eq!(dependency(&r, "etcd").health, Health::Unavailable);
    assert_eq!(dependency(&r, "etcd").reason, "0/3 ready, NotReady");
    assert_eq!(r.health, Health::Unavailable);
    assert_eq!(r.health_reason, "etcd: 0/3 ready (NotReady)");
    assert_eq!(r.problems.len(), 3);
    assert_eq!(r.problems[0].owner, "etcd");
    assert_eq!(r.problems[0].reason, "NotReady: container etcd not ready for 15m");
}

#[test]
fn health_non_essential_at_zero_is_degraded() {
    // pulsar autorecovery
    let mut inv = running("helm/default.yaml");
    let s = stateful_set(&mut inv, "my-release-pulsarv3-recovery");
    let mut st = s.status.clone().unwrap();
    st.ready_replicas = Some(0);
    s.status = Some(st);
    let r = only_release(&inv);
    assert_eq!(dependency(&r, "pulsarv3-recovery").health, Health::Degraded);
    assert_eq!(r.health, Health::Degraded);
    assert!(r.health_reason.starts_with("pulsarv3-recovery: 0/1 ready"), "{}", r.health_reason);

    // indexnode (< 2.6)
    let mut inv = running("helm/coordinators-hpa.yaml");
    patch_status(deployment(&mut inv, "my-release-milvus-indexnode"), json!({"readyReplicas": 0}));
    let r = only_release(&inv);
    assert_eq!(component(&r, "indexnode").health, Health::Degraded);
    assert_eq!(r.health, Health::Degraded);
}

#[test]
fn health_degraded_when_progress_deadline_exceeded() {
    let mut inv = running("helm/default.yaml");
    patch_status(
        deployment(&mut inv, "my-release-milvus-datanode"),
        json!({"updatedReplicas": 0, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
    );
    let r = only_release(&inv);
    assert_eq!(component(&r, "datanode").health, Health::Degraded);
    assert_eq!(component(&r, "datanode").reason, "1/1 ready, ProgressDeadlineExceeded");
}

#[test]
fn health_stopped() {
    let mut inv = running("helm/default.yaml");
    for d in &mut inv.deployments {
        d.spec.as_mut().unwrap().replicas = Some(0);
        patch_status(
            d,
            json!({"replicas": 0, "readyReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0}),
        );
    }
    inv.pods.retain(|p| !p.metadata.name.as_deref().unwrap().starts_with("my-release-milvus-"));
    let r = only_release(&inv);
    assert_eq!(r.health, Health::Stopped);
    assert_eq!(r.health_reason, "all components scaled to 0");
    assert_eq!(r.mode, Mode::Cluster);
    assert!(r.components.iter().all(|c| c.health == Health::Stopped && c.reason == "scaled to 0"));
    assert_eq!(r.components_ready(), (0, 0));
    // The dependencies keep running and are reported as they are.
    assert_eq!(dependency(&r, "etcd").health, Health::Healthy);

    // Operator: the CR scaled everything to 0; the cluster release stays a cluster release.
    let mut inv = operator_inventory();
    for d in &mut inv.deployments {
        d.spec.as_mut().unwrap().replicas = Some(0);
        patch_status(
            d,
            json!({"replicas": 0, "readyReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0}),
        );
    }
    inv.pods.clear();
    edit_cr(&mut inv.milvuses[0], |cr| cr["status"]["status"] = json!("Stopped"));
    let r = only_release(&inv);
    assert_eq!(r.health, Health::Stopped);
    assert_eq!(r.mode, Mode::Cluster);
    assert!(!names(&r).contains(&"standalone"));
}

#[test]
fn health_essential_component_scaled_to_zero_while_the_rest_runs() {
    let mut inv = running("helm/default.yaml");
    let d = deployment(&mut inv, "my-release-milvus-proxy");
    d.spec.as_mut().unwrap().replicas = Some(0);
    patch_status(d, json!({"replicas": 0, "readyReplicas": 0, "updatedReplicas": 0, "availableReplicas": 0}));
    inv.pods.retain(|p| !p.metadata.name.as_deref().unwrap().starts_with("my-release-milvus-proxy"));
    let r = only_release(&inv);
    assert_eq!(component(&r, "proxy").health, Health::Stopped);
    assert_eq!(r.health, Health::Unavailable);
    assert_eq!(r.health_reason, "proxy: scaled to 0");
}

#[test]
fn health_operator_unhealthy_with_healthy_workloads() {
    let mut inv = operator_inventory();
    edit_cr(&mut inv.milvuses[0], |cr| cr["status"]["status"] = json!("Unhealthy"));
    edit_cr(&mut inv.milvuses[0], |cr| {
        cr["status"]["conditions"][2] = json!({"type": "MsgStreamReady", "status": "False",
        "reason": "MsgStreamNotReady", "message": "connection refused"})
    });
    let r = only_release(&inv);
    assert_eq!(r.health, Health::Degraded);
    assert_eq!(r.health_reason, "operator reports Unhealthy (MsgStreamReady: connection refused)");

    // With a workload problem, the workloads lead and the operator is mentioned.
    patch_status(deployment(&mut inv, "my-release-milvus-mixcoord"), json!({"readyReplicas": 0}));
    let r = only_release(&inv);
    assert_eq!(r.health, Health::Unavailable);
    assert_eq!(
        r.health_reason,
        "mixcoord: 0/1 ready; operator: Unhealthy (MsgStreamReady: connection refused)"
    );
}

// ---------------------------------------------------------------------------------------------
// Problems and kubectl's STATUS column

#[test]
fn problem_crash_loop() {
    let p = pod(crash_looping("querynode", 5));
    assert_eq!(
        detect_problem(&p, now()),
        Some((
            ProblemKind::CrashLoopBackOff,
            "CrashLoopBackOff: container querynode last terminated OOMKilled (exit code 137), 5 restarts"
                .into()
        ))
    );
    assert_eq!(pod_status(&p), "CrashLoopBackOff");
}

#[test]
fn problem_image_pull() {
    let p = pod(json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "querynode",
        "image": "milvusdb/milvus:v9.9.9", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"milvusdb/milvus:v9.9.9\""}}}]}}));
    assert_eq!(
        detect_problem(&p, now()),
        Some((
            ProblemKind::ImagePullBackOff,
            "ImagePullBackOff: container querynode image milvusdb/milvus:v2.6.15".into()
        )),
        "the image of the pod spec"
    );
    assert_eq!(pod_status(&p), "ImagePullBackOff");

    let p = pod(json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "querynode",
        "image": "milvusdb/milvus:v2.6.15", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ErrImagePull", "message": "rpc error: code = NotFound desc = not found"}}}]}}));
    assert_eq!(
        detect_problem(&p, now()),
        Some((
            ProblemKind::ErrImagePull,
            "ErrImagePull: container querynode image milvusdb/milvus:v2.6.15: rpc error: code = NotFound desc = not found".into()
        ))
    );
}

#[test]
fn problem_create_container_config_error() {
    let p = pod(json!({"status": {"phase": "Pending", "containerStatuses": [{"name": "querynode",
        "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"my-release-minio\" not found"}}}]}}));
    assert_eq!(
        detect_problem(&p, now()),
        Some((
            ProblemKind::CreateContainerConfigError,
            "CreateContainerConfigError: container querynode: secret \"my-release-minio\" not found".into()
        ))
    );
}

#[test]
fn problem_unschedulable_and_slow_pending() {
    let msg = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    let p = pod(json!({"metadata": {"creationTimestamp": ago(30)}, "spec": {"nodeName": null},
        "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]}}));
    assert_eq!(
        detect_problem(&p, now()),
        Some((ProblemKind::Unschedulable, format!("Unschedulable: {msg}")))
    );
    assert_eq!(pod_status(&p), "Pending");

    // Pending (scheduled, creating) is normal at first, a problem after 5 minutes.
    let creating = |age: i64| {
        pod(json!({"metadata": {"creationTimestamp": ago(age)}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "querynode", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}))
    };
    assert_eq!(detect_problem(&creating(60), now()), None);
    assert_eq!(
        detect_problem(&creating(720), now()),
        Some((ProblemKind::Pending, "Pending for 12m: ContainerCreating".into()))
    );
    assert_eq!(pod_status(&creating(60)), "ContainerCreating");
}

#[test]
fn problem_running_not_ready() {
    let p = pod(
        json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ago(420)}],
        "containerStatuses": [{"name": "querynode", "image": "x", "imageID": "", "ready": false,
        "restartCount": 0, "state": {"running": {"startedAt": ago(3600)}}}]}}),
    );
    assert_eq!(
        detect_problem(&p, now()),
        Some((ProblemKind::NotReady, "NotReady: container querynode not ready for 7m".into()))
    );
    assert_eq!(pod_status(&p), "Running");
    let s = pod_summary(&p);
    assert_eq!((s.ready_containers, s.total_containers), (0, 1));
    // Just started: not yet a problem.
    let p = pod(
        json!({"status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ago(20)}],
        "containerStatuses": [{"name": "querynode", "image": "x", "imageID": "", "ready": false,
        "restartCount": 0, "state": {"running": {"startedAt": ago(20)}}}]}}),
    );
    assert_eq!(detect_problem(&p, now()), None);
}

#[test]
fn problem_terminating() {
    let stuck = pod(json!({"metadata": {"deletionTimestamp": ago(1200)}, "status": {"containerStatuses": [
        {"name": "querynode", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
        "state": {"running": {}}}]}}));
    assert_eq!(
        detect_problem(&stuck, now()),
        Some((ProblemKind::Terminating, "Terminating for 20m on node node-1".into()))
    );
    assert_eq!(pod_status(&stuck), "Terminating");
    let recent = pod(json!({"metadata": {"deletionTimestamp": ago(10)}}));
    assert_eq!(detect_problem(&recent, now()), None);
    assert_eq!(pod_status(&recent), "Terminating");
    let lost = pod(json!({"metadata": {"deletionTimestamp": ago(10)}, "status": {"reason": "NodeLost"}}));
    assert_eq!(pod_status(&lost), "Unknown");
    assert_eq!(detect_problem(&lost, now()).map(|p| p.0), Some(ProblemKind::Unknown));
}

#[test]
fn problem_evicted_and_failed() {
    let msg = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. Container querynode was using 14Gi, request is 8Gi, has larger consumption of memory.";
    let p = pod(json!({"status": {"phase": "Failed", "reason": "Evicted", "message": msg}}));
    assert_eq!(detect_problem(&p, now()), Some((ProblemKind::Evicted, format!("Evicted: {msg}"))));
    assert_eq!(pod_status(&p), "Evicted");

    let p = pod(json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "querynode",
        "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}}));
    assert_eq!(
        detect_problem(&p, now()),
        Some((ProblemKind::Failed, "Failed: container querynode terminated Error (exit code 2)".into()))
    );
    assert_eq!(pod_status(&p), "Error");
}

#[test]
fn problem_init_container() {
    let p = pod(
        json!({"spec": {"initContainers": [{"name": "config", "image": "milvusdb/milvus-config-tool:v0.1.2"}]},
        "status": {"phase": "Pending", "conditions": [{"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [{"name": "config", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}],
        "containerStatuses": [{"name": "querynode", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
    );
    assert_eq!(pod_status(&p), "Init:CrashLoopBackOff");
    assert_eq!(
        detect_problem(&p, now()),
        Some((
            ProblemKind::CrashLoopBackOff,
            "CrashLoopBackOff: init container config last terminated Error (exit code 1), 3 restarts".into()
        ))
    );
    assert_eq!(pod_summary(&p).restarts, 3);
}

#[test]
fn succeeded_pods_are_never_problems() {
    let p = pod(json!({"status": {"phase": "Succeeded", "containerStatuses": [{"name": "querynode",
        "image": "x", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}));
    assert_eq!(detect_problem(&p, now()), None);
    assert_eq!(pod_status(&p), "Completed");
}

#[test]
fn kubectl_status_column() {
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "Running"),
        (
            json!({"spec": {"initContainers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Pending",
                "initContainerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                    {"name": "b", "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]}}),
            "Init:1/2",
        ),
        (
            json!({"spec": {"initContainers": [{"name": "a"}]}, "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "a", "image": "", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3}}}]}}),
            "Init:ExitCode:3",
        ),
        (
            json!({"status": {"containerStatuses": [{"name": "querynode", "image": "", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}}),
            "Signal:9",
        ),
        (
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "a", "image": "", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "b", "image": "", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
            "NotReady",
        ),
        (
            json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
            "SchedulingGated",
        ),
        (json!({"status": {"phase": "Failed", "reason": "Evicted"}}), "Evicted"),
        (json!({"metadata": {"deletionTimestamp": ago(1)}, "status": {"phase": "Succeeded"}}), "Succeeded"),
    ];
    for (patch, want) in cases {
        let p = pod(patch.clone());
        assert_eq!(pod_status(&p), want, "{patch}");
    }
    // A native sidecar (restartable init container) counts in READY and total.
    let p = pod(json!({"spec": {"initContainers": [{"name": "proxy-sidecar", "restartPolicy": "Always"}]},
        "status": {"initContainerStatuses": [{"name": "proxy-sidecar", "image": "", "imageID": "", "ready": true,
            "started": true, "restartCount": 1, "state": {"running": {}}}],
        "containerStatuses": [{"name": "querynode", "image": "", "imageID": "", "ready": true, "restartCount": 2,
            "state": {"running": {}}}]}}));
    let s = pod_summary(&p);
    assert_eq!((s.ready_containers, s.total_containers, s.restarts), (2, 2, 3));
    assert_eq!(s.status, "Running");
}

// ---------------------------------------------------------------------------------------------
// Pieces

#[test]
fn image_tags() {
    let cases = [
        ("milvusdb/milvus:v2.6.15", Some("v2.6.15")),
        ("docker.io/milvusdb/milvus:v2.6.15", Some("v2.6.15")),
        ("registry.local:5000/milvusdb/milvus:v2.5.4-gpu", Some("v2.5.4-gpu")),
        ("registry.local:5000/milvusdb/milvus", Some("latest")),
        ("milvusdb/milvus:v2.6.15@sha256:0123456789abcdef0123", Some("v2.6.15")),
        ("milvusdb/milvus@sha256:0123456789abcdef0123", Some("sha256:0123456789ab")),
        ("milvus", Some("latest")),
        ("", None),
    ];
    for (image, want) in cases {
        assert_eq!(image_tag(image).as_deref(), want, "{image}");
    }
}

#[test]
fn release_serializes_for_json_output() {
    let mut inv = running("helm/default.yaml");
    let p = pods_of(&mut inv, "my-release-milvus-querynode").pop().unwrap();
    patch_pod(p, crash_looping("querynode", 5));
    patch_status(deployment(&mut inv, "my-release-milvus-querynode"), json!({"readyReplicas": 0}));
    let v = serde_json::to_value(only_release(&inv)).unwrap();
    assert_eq!(v["managedBy"]["type"], "helm");
    assert_eq!(v["health"], "Unavailable");
    assert_eq!(v["components"][2]["kind"], "querynode");
    assert_eq!(v["components"][2]["displayName"], "querynode");
    assert_eq!(v["components"][2]["health"], "Unavailable");
    assert_eq!(v["dependencies"][0]["kind"], "etcd");
    assert_eq!(v["dependencies"][2]["kind"], "pulsarv3");
    assert_eq!(v["problems"][0]["kind"], "CrashLoopBackOff");
    assert_eq!(v["problems"][0]["owner"], "querynode");
}

/// 1,000 querynode pods in 100 resource groups, plus the rest of the release: correct rows,
/// every pod in exactly one row. Timing (release build) is in the report, not asserted.
#[test]
fn a_thousand_pods() {
    let (mut inv, jobs) = load("helm/default.yaml");
    let base = deployment(&mut inv, "my-release-milvus-querynode").clone();
    for g in 0..100 {
        let mut v = serde_json::to_value(&base).unwrap();
        let rg = format!("rg{g:02}");
        v["metadata"]["name"] = json!(format!("my-release-milvus-querynode-{rg}"));
        for path in ["/metadata/labels", "/spec/selector/matchLabels", "/spec/template/metadata/labels"] {
            v.pointer_mut(path).unwrap()["milvus.io/resource-group"] = json!(rg);
        }
        v["spec"]["replicas"] = json!(10);
        inv.deployments.push(serde_json::from_value(v).unwrap());
    }
    bring_up(&mut inv, &jobs);
    assert!(inv.pods.len() > 1000);
    // Best of 5, so that a loaded machine does not mislead.
    let mut best = std::time::Duration::MAX;
    let mut rs = Vec::new();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        rs = discover(&inv, &opts());
        best = best.min(start.elapsed());
    }
    eprintln!(
        "discover: {} pods, {} workloads: {best:?} (best of 5)",
        inv.pods.len(),
        inv.deployments.len() + inv.stateful_sets.len()
    );
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(r.components.len(), 105);
    assert_eq!(component(r, "querynode[rg42]").pods.len(), 10);
    assert_eq!(component(r, "querynode").pods.len(), 1);
    let assigned: usize = r.components.iter().map(|c| c.pods.len()).sum::<usize>()
        + r.dependencies.iter().map(|d| d.pods.len()).sum::<usize>();
    let job_pods = 4;
    assert_eq!(assigned, inv.pods.len() - job_pods);
    assert_eq!(r.health, Health::Healthy);
}
