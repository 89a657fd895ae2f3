//! Workloads as the Milvus model reads them, decoded without the fields it never looks at.
//!
//! A Deployment as the API server sends it carries its whole pod template (volumes, environment,
//! probes, security contexts) and its `managedFields`. The model needs identity, labels, annotations
//! and owners, the field managers' names, the replicas and selector, the template's containers' names
//! and images and grace period, and the status. The slim types deserialise only those (serde skips
//! the rest as it reads) and become k8s-openapi objects holding just them, so the model keeps its
//! types. Pods, far more numerous, are decoded straight into the model's own [`crate::milvus::Pod`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ManagedFieldsEntry, ObjectMeta, OwnerReference, Time,
};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    generation: Option<i64>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
    /// Who manages fields, and how; never which fields (`fieldsV1`).
    managed_fields: Option<Vec<SlimManager>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimManager {
    manager: Option<String>,
    operation: Option<String>,
}

impl From<SlimMeta> for ObjectMeta {
    fn from(m: SlimMeta) -> Self {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            generation: m.generation,
            labels: m.labels,
            annotations: m.annotations,
            owner_references: m.owner_references,
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            managed_fields: m.managed_fields.map(|fields| {
                fields
                    .into_iter()
                    .map(|f| ManagedFieldsEntry {
                        manager: f.manager,
                        operation: f.operation,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..ObjectMeta::default()
        }
    }
}

/// The parts of a Deployment the model uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SlimDeployment {
    metadata: SlimMeta,
    spec: Option<SlimWorkloadSpec>,
    status: Option<DeploymentStatus>,
}

/// The parts of a StatefulSet the model uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SlimStatefulSet {
    metadata: SlimMeta,
    spec: Option<SlimWorkloadSpec>,
    status: Option<StatefulSetStatus>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimWorkloadSpec {
    replicas: Option<i32>,
    selector: LabelSelector,
    template: SlimTemplate,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimTemplate {
    metadata: Option<SlimTemplateMeta>,
    spec: Option<SlimSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SlimTemplateMeta {
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
}

impl From<SlimTemplate> for PodTemplateSpec {
    fn from(t: SlimTemplate) -> Self {
        PodTemplateSpec {
            metadata: t.metadata.map(|m| ObjectMeta {
                labels: m.labels,
                annotations: m.annotations,
                ..ObjectMeta::default()
            }),
            spec: t.spec.map(PodSpec::from),
        }
    }
}

impl From<SlimDeployment> for Deployment {
    fn from(d: SlimDeployment) -> Self {
        Deployment {
            metadata: d.metadata.into(),
            spec: d.spec.map(|s| DeploymentSpec {
                replicas: s.replicas,
                selector: s.selector,
                template: s.template.into(),
                ..DeploymentSpec::default()
            }),
            status: d.status,
        }
    }
}

impl From<SlimStatefulSet> for StatefulSet {
    fn from(s: SlimStatefulSet) -> Self {
        StatefulSet {
            metadata: s.metadata.into(),
            spec: s.spec.map(|spec| StatefulSetSpec {
                replicas: spec.replicas,
                selector: spec.selector,
                template: spec.template.into(),
                ..StatefulSetSpec::default()
            }),
            status: s.status,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SlimSpec {
    node_name: Option<String>,
    containers: Vec<SlimContainer>,
    init_containers: Option<Vec<SlimContainer>>,
    termination_grace_period_seconds: Option<i64>,
}

impl From<SlimSpec> for PodSpec {
    fn from(s: SlimSpec) -> Self {
        PodSpec {
            node_name: s.node_name,
            containers: s.containers.into_iter().map(Container::from).collect(),
            init_containers: s.init_containers.map(|c| c.into_iter().map(Container::from).collect()),
            termination_grace_period_seconds: s.termination_grace_period_seconds,
            ..PodSpec::default()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployment_keeps_replicas_selector_images_and_status() {
        let json = serde_json::json!({
            "metadata": {"name": "qn", "namespace": "default", "generation": 3, "labels": {"component": "querynode"},
                "managedFields": [{"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"component": "querynode"}},
                "strategy": {"type": "RollingUpdate"},
                "template": {"metadata": {"labels": {"component": "querynode"}, "annotations": {"checksum": "x"}},
                    "spec": {"terminationGracePeriodSeconds": 1800,
                        "containers": [{"name": "querynode", "image": "milvusdb/milvus:v2.6.15", "env": [{"name": "A"}]}]}}},
            "status": {"replicas": 2, "readyReplicas": 1, "observedGeneration": 3}
        });
        let d: Deployment = serde_json::from_value::<SlimDeployment>(json).expect("decodes").into();
        assert_eq!(d.metadata.generation, Some(3));
        assert_eq!(d.metadata.managed_fields.expect("managers")[0].operation.as_deref(), Some("Apply"));
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(2));
        assert!(spec.strategy.is_none());
        assert_eq!(spec.selector.match_labels.expect("labels")["component"], "querynode");
        let template = spec.template.spec.expect("template spec");
        assert_eq!(template.containers[0].image.as_deref(), Some("milvusdb/milvus:v2.6.15"));
        assert_eq!(template.termination_grace_period_seconds, Some(1800));
        assert!(template.containers[0].env.is_none());
        assert_eq!(d.status.expect("status").ready_replicas, Some(1));
        let s: StatefulSet = serde_json::from_value::<SlimStatefulSet>(serde_json::json!({
            "metadata": {"name": "etcd"}, "spec": {"replicas": 3, "serviceName": "etcd", "selector": {}, "template": {}},
            "status": {"replicas": 3, "currentRevision": "a", "updateRevision": "b"}
        }))
        .expect("decodes")
        .into();
        assert_eq!(s.spec.expect("spec").replicas, Some(3));
        assert_eq!(s.status.expect("status").update_revision.as_deref(), Some("b"));
    }
}
