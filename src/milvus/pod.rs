//! A pod as the model reads it: the fields of the Kubernetes `Pod` that discovery, health and problem
//! detection look at, under the same names and JSON keys, and nothing else.
//!
//! The API server sends a pod's whole spec (volumes, environment, probes, security contexts), its
//! `managedFields` and every status detail. Decoded into k8s-openapi's `Pod` that is about 8 KB of
//! memory per pod even when most fields are empty (a `PodSpec` alone is 1.4 KB, each `Container`
//! 2.1 KB); these types are decoded straight from the JSON (serde skips what they do not name) and
//! hold about a tenth of that, so `list -A` over tens of thousands of pods stays small. Lists are
//! boxed slices: a `Vec` decoded by serde keeps room for four elements (a pod's one container status
//! would take four times its size), a boxed slice exactly what it holds.

use std::borrow::Cow;

use super::pod_labels::PodLabels;
use k8s_openapi::api::core::v1::{ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize};

/// A pod: identity, labels and owners, where it runs, and its status. The spec and status are boxed:
/// a list of pods then holds their identities only, and moving one (growing or joining lists) moves a
/// fifth of the bytes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Pod {
    pub metadata: PodMeta,
    pub spec: Option<Box<PodSpec>>,
    pub status: Option<Box<PodStatus>>,
}

/// Identity, labels, owners and lifetime. Annotations and the uid are not kept (nothing reads them; an
/// annotation map costs a whole B-tree node per pod).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// What a watch resumes from.
    pub resource_version: Option<String>,
    pub labels: Option<PodLabels>,
    pub owner_references: Option<Box<[OwnerReference]>>,
    pub creation_timestamp: Option<Time>,
    pub deletion_timestamp: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    pub node_name: Option<String>,
    pub containers: Box<[Container]>,
    pub init_containers: Option<Box<[Container]>>,
    pub termination_grace_period_seconds: Option<i64>,
}

/// A container of the pod's spec: its name, image and (an init container) restart policy, which
/// makes it a sidecar when `Always`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    pub restart_policy: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    pub phase: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub start_time: Option<Time>,
    pub conditions: Option<Box<[PodCondition]>>,
    pub container_statuses: Option<Box<[ContainerStatus]>>,
    pub init_container_statuses: Option<Box<[ContainerStatus]>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodCondition {
    #[serde(rename = "type", deserialize_with = "word")]
    pub type_: Cow<'static, str>,
    #[serde(deserialize_with = "word")]
    pub status: Cow<'static, str>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

/// The types and statuses of pod conditions that Kubernetes sets: each pod has about five conditions,
/// and these are held as `&'static str`, not as two allocations per condition.
const CONDITION_WORDS: [&str; 9] = [
    "PodScheduled",
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
    "DisruptionTarget",
    "True",
    "False",
    "Unknown",
];

/// A condition's type or status: one of [`CONDITION_WORDS`] borrowed, any other string owned.
fn word<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cow<'static, str>, D::Error> {
    struct Word;
    impl Visitor<'_> for Word {
        type Value = Cow<'static, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(CONDITION_WORDS
                .iter()
                .find(|w| **w == s)
                .map_or_else(|| Cow::Owned(s.to_string()), |w| Cow::Borrowed(*w)))
        }
    }
    deserializer.deserialize_str(Word)
}

/// A container's status: readiness, restarts, and its current and last state.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub image: String,
    pub ready: bool,
    pub started: Option<bool>,
    pub restart_count: i32,
    pub state: Option<ContainerState>,
    pub last_state: Option<ContainerState>,
}

/// What a container is doing: Kubernetes' `ContainerState`, whose one set field is boxed (k8s-openapi's
/// holds all three inline, about 300 bytes for each of a container's two states).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Box<ContainerStateRunning>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Box<ContainerStateTerminated>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Box<ContainerStateWaiting>>,
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
                "annotations": {"controller.kubernetes.io/pod-deletion-cost": "-100"},
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
            "status": {"phase": "Running", "podIP": "10.0.0.1", "qosClass": "BestEffort",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:01:00Z"}],
                "containerStatuses": [{"name": "querynode", "ready": true, "restartCount": 2, "image": "i", "imageID": "",
                    "state": {"running": {"startedAt": "2026-01-01T00:00:30Z"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}
        });
        let pod: Pod = serde_json::from_value(json).expect("decodes");
        assert_eq!(pod.metadata.name.as_deref(), Some("qn-0"));
        assert_eq!(pod.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(pod.metadata.labels.as_ref().and_then(|l| l.get("component")), Some("querynode"));
        assert_eq!(pod.metadata.owner_references.as_ref().map(|o| o[0].kind.as_str()), Some("ReplicaSet"));
        let spec = pod.spec.as_ref().expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("milvusdb/milvus:v2.6.15"));
        let init = spec.init_containers.as_ref().expect("init containers");
        assert_eq!(init[0].restart_policy.as_deref(), Some("Always"));
        let status = pod.status.as_ref().expect("status");
        assert_eq!(status.pod_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(status.conditions.as_ref().map(|c| c[0].type_.as_ref()), Some("Ready"));
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!((c.ready, c.restart_count), (true, 2));
        assert!(c.state.as_ref().is_some_and(|s| s.running.is_some()));
        let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()).expect("last terminated");
        assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("OOMKilled")));
        // What it keeps goes back out as the same JSON (tests edit pods as JSON).
        let again: Pod =
            serde_json::from_value(serde_json::to_value(&pod).expect("encodes")).expect("decodes");
        assert_eq!(again, pod);
    }

    #[test]
    fn condition_words_are_not_allocated_and_other_conditions_are_kept() {
        let status: PodStatus = serde_json::from_value(serde_json::json!({"conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "example.com/Gate", "status": "Maybe"},
        ]}))
        .expect("decodes");
        let conditions = status.conditions.as_deref().expect("conditions");
        assert!(matches!(conditions[0].type_, Cow::Borrowed("Ready")));
        assert!(matches!(conditions[0].status, Cow::Borrowed("True")));
        assert_eq!(
            (conditions[1].type_.as_ref(), conditions[1].status.as_ref()),
            ("example.com/Gate", "Maybe")
        );
        let again = serde_json::to_value(&status).expect("encodes");
        assert_eq!(again["conditions"][1]["type"], "example.com/Gate");
        assert!(serde_json::from_value::<PodCondition>(serde_json::json!({"type": 1})).is_err());
    }

    #[test]
    fn a_pod_without_spec_or_status_decodes() {
        let pod: Pod =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}})).expect("decodes");
        assert!(pod.spec.is_none() && pod.status.is_none());
    }

    #[test]
    fn a_pod_is_a_fraction_of_the_kubernetes_type() {
        assert!(size_of::<Pod>() * 4 < size_of::<k8s_openapi::api::core::v1::Pod>());
        assert!(size_of::<Container>() * 10 < size_of::<k8s_openapi::api::core::v1::Container>());
        assert!(size_of::<ContainerState>() * 8 < size_of::<k8s_openapi::api::core::v1::ContainerState>());
    }
}
