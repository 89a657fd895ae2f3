//! Pods as the Milvus model reads them, decoded without the fields it never looks at.
//!
//! A pod as the API server sends it carries its whole spec (volumes, environment, probes, security
//! contexts) and its `managedFields`; decoded into k8s-openapi's `Pod` that is tens of kilobytes per pod.
//! The model needs the identity, labels and owners, the node, the containers' names and images, and
//! the status. [`SlimPod`] deserialises only those (serde skips the rest as it reads) and becomes a
//! k8s-openapi [`Pod`] holding just them, so the model keeps its types.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::Deserialize;

/// The parts of a pod the model uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SlimPod {
    metadata: SlimMeta,
    spec: Option<SlimSpec>,
    status: Option<PodStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimSpec {
    node_name: Option<String>,
    containers: Vec<SlimContainer>,
    init_containers: Option<Vec<SlimContainer>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimContainer {
    name: String,
    image: Option<String>,
    restart_policy: Option<String>,
}

impl From<SlimContainer> for Container {
    fn from(c: SlimContainer) -> Self {
        Container { name: c.name, image: c.image, restart_policy: c.restart_policy, ..Container::default() }
    }
}

impl From<SlimPod> for Pod {
    fn from(pod: SlimPod) -> Self {
        let m = pod.metadata;
        Pod {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                labels: m.labels,
                owner_references: m.owner_references,
                creation_timestamp: m.creation_timestamp,
                deletion_timestamp: m.deletion_timestamp,
                ..ObjectMeta::default()
            },
            spec: pod.spec.map(|s| PodSpec {
                node_name: s.node_name,
                containers: s.containers.into_iter().map(Container::from).collect(),
                init_containers: s.init_containers.map(|c| c.into_iter().map(Container::from).collect()),
                ..PodSpec::default()
            }),
            status: pod.status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_keeps_what_the_model_reads_and_drops_the_rest() {
        let json = serde_json::json!({
            "metadata": {
                "name": "qn-0", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                "labels": {"component": "querynode"},
                "annotations": {"big": "x".repeat(1000)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "qn", "uid": "u0", "controller": true}],
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}}]
            },
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "querynode", "image": "milvusdb/milvus:v2.6.15", "env": [{"name": "A", "value": "b"}]}],
                "initContainers": [{"name": "config", "image": "milvusdb/milvus-config-tool:v0.1.2", "restartPolicy": "Always"}],
                "volumes": [{"name": "config", "configMap": {"name": "milvus"}}]
            },
            "status": {"phase": "Running", "podIP": "10.0.0.1",
                "containerStatuses": [{"name": "querynode", "ready": true, "restartCount": 2, "image": "i", "imageID": "", "state": {"running": {}}}]}
        });
        let pod: Pod = serde_json::from_value::<SlimPod>(json).expect("decodes").into();
        assert_eq!(pod.metadata.name.as_deref(), Some("qn-0"));
        assert_eq!(
            pod.metadata.labels.as_ref().and_then(|l| l.get("component")).map(String::as_str),
            Some("querynode")
        );
        assert_eq!(pod.metadata.owner_references.as_ref().map(Vec::len), Some(1));
        assert!(pod.metadata.annotations.is_none() && pod.metadata.managed_fields.is_none());
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("milvusdb/milvus:v2.6.15"));
        assert!(spec.containers[0].env.is_none() && spec.volumes.is_none());
        let init = spec.init_containers.expect("init containers");
        assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
        let status = pod.status.expect("status");
        assert_eq!(status.container_statuses.expect("statuses")[0].restart_count, 2);
    }

    #[test]
    fn a_pod_without_spec_or_status_decodes() {
        let pod: Pod = serde_json::from_value::<SlimPod>(serde_json::json!({"metadata": {"name": "p"}}))
            .expect("decodes")
            .into();
        assert!(pod.spec.is_none() && pod.status.is_none());
    }
}
