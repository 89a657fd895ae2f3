//! Deployments and StatefulSets reduced to what the model needs: replicas, rollout state, labels,
//! selector, pod template, and the Milvus image they run.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::labels;
use super::{ComponentKind, WorkloadRef};

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

/// The field manager Helm writes with (client-side updates and server-side applies alike).
pub const HELM_FIELD_MANAGER: &str = "helm";

/// What a workload (or a row of them, summed) says of its replicas and rollout.
#[derive(Debug, Clone, Default)]
pub struct ReplicaFacts {
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// A new revision is not fully rolled out yet.
    pub rollout_pending: bool,
    /// Deployment condition Progressing=False, reason ProgressDeadlineExceeded.
    pub deadline_exceeded: bool,
    /// Deployment condition ReplicaFailure=True: its message (quota, admission…).
    pub replica_failure: Option<String>,
    pub created: Option<Timestamp>,
}

impl ReplicaFacts {
    /// Adds another workload's facts to a row's; counts come from the server and saturate.
    pub fn add(&mut self, other: &ReplicaFacts) {
        self.desired = self.desired.saturating_add(other.desired);
        self.ready = self.ready.saturating_add(other.ready);
        self.updated = self.updated.saturating_add(other.updated);
        self.available = self.available.saturating_add(other.available);
        self.rollout_pending |= other.desired > 0 && other.rollout_pending;
        self.deadline_exceeded |= other.deadline_exceeded;
        if self.replica_failure.is_none() {
            self.replica_failure.clone_from(&other.replica_failure);
        }
        self.created = min_time(self.created, other.created);
    }
}

/// The earlier of two optional times.
pub fn min_time(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A Deployment or StatefulSet, reduced to what discovery needs.
pub struct Workload<'a> {
    pub kind: WorkloadKind,
    pub namespace: &'a str,
    pub name: &'a str,
    pub meta: &'a ObjectMeta,
    pub labels: &'a BTreeMap<String, String>,
    pub selector: Option<&'a LabelSelector>,
    pub template: Option<&'a PodTemplateSpec>,
    pub facts: ReplicaFacts,
}

/// `metadata.generation` not yet observed by the controller.
fn generation_pending(meta: &ObjectMeta, observed: Option<i64>) -> bool {
    matches!((meta.generation, observed), (Some(g), Some(o)) if o < g)
}

impl<'a> Workload<'a> {
    fn new(
        kind: WorkloadKind,
        meta: &'a ObjectMeta,
        spec: Option<(&'a LabelSelector, &'a PodTemplateSpec)>,
        facts: ReplicaFacts,
    ) -> Option<Workload<'a>> {
        Some(Workload {
            kind,
            namespace: meta.namespace.as_deref().unwrap_or("default"),
            name: meta.name.as_deref()?,
            meta,
            labels: meta.labels.as_ref().unwrap_or(&NO_LABELS),
            selector: spec.map(|(selector, _)| selector),
            template: spec.map(|(_, template)| template),
            facts: ReplicaFacts { created: meta.creation_timestamp.as_ref().map(|t| t.0), ..facts },
        })
    }

    pub fn from_deployment(d: &'a Deployment) -> Option<Workload<'a>> {
        let spec = d.spec.as_ref();
        let status = d.status.as_ref();
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
        let updated = status.and_then(|s| s.updated_replicas).unwrap_or(0);
        let current = status.and_then(|s| s.replicas).unwrap_or(0);
        let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
        let deadline_exceeded = conditions.iter().any(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        let replica_failure = conditions
            .iter()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
            .map(|c| c.message.clone().or_else(|| c.reason.clone()).unwrap_or_default());
        let facts = ReplicaFacts {
            desired,
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated,
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            rollout_pending: generation_pending(&d.metadata, status.and_then(|s| s.observed_generation))
                || updated < desired
                || current > updated,
            deadline_exceeded,
            replica_failure,
            created: None,
        };
        Workload::new(WorkloadKind::Deployment, &d.metadata, spec.map(|s| (&s.selector, &s.template)), facts)
    }

    pub fn from_stateful_set(s: &'a StatefulSet) -> Option<Workload<'a>> {
        let spec = s.spec.as_ref();
        let status = s.status.as_ref();
        let revision_pending = match (
            status.and_then(|s| s.current_revision.as_deref()),
            status.and_then(|s| s.update_revision.as_deref()),
        ) {
            (Some(c), Some(u)) => c != u,
            _ => false,
        };
        let facts = ReplicaFacts {
            desired: spec.and_then(|s| s.replicas).unwrap_or(1).max(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            rollout_pending: generation_pending(&s.metadata, status.and_then(|s| s.observed_generation))
                || revision_pending,
            ..ReplicaFacts::default()
        };
        Workload::new(WorkloadKind::StatefulSet, &s.metadata, spec.map(|s| (&s.selector, &s.template)), facts)
    }

    pub fn label(&self, key: &str) -> Option<&'a str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Helm applies this workload server-side (Helm 4's default): a `helm` field manager whose
    /// operation is `Apply`. Its next `helm upgrade` then fails with a conflict on a field another
    /// manager changed, where a client-side (three-way merge) upgrade writes its own value back.
    pub fn helm_applies_server_side(&self) -> bool {
        self.meta.managed_fields.iter().flatten().any(|f| {
            f.manager.as_deref() == Some(HELM_FIELD_MANAGER) && f.operation.as_deref() == Some("Apply")
        })
    }

    pub fn workload_ref(&self) -> WorkloadRef {
        WorkloadRef { kind: self.kind.as_str().to_string(), name: self.name.to_string() }
    }

    pub fn is_operator_managed(&self) -> bool {
        self.label(labels::MANAGED_BY) == Some(labels::OPERATOR_MANAGER) || self.milvus_owner().is_some()
    }

    /// The name of the `Milvus` object that owns this workload, if any.
    pub fn milvus_owner(&self) -> Option<&'a str> {
        self.meta
            .owner_references
            .as_deref()?
            .iter()
            .find(|o| o.kind == "Milvus" && o.api_version.starts_with("milvus.io/"))
            .map(|o| o.name.as_str())
    }

    /// Resource group (Helm) or deployment group (operator).
    pub fn group(&self) -> Option<&'a str> {
        self.label(labels::RESOURCE_GROUP)
            .or_else(|| self.label(labels::DEPLOYMENT_GROUP))
            .filter(|g| !g.is_empty())
    }

    /// The Milvus image: the container named like the component, else the one whose repository is
    /// `…/milvus`, else the first.
    pub fn milvus_image(&self, kind: &ComponentKind) -> Option<&'a str> {
        let containers = &self.template?.spec.as_ref()?.containers;
        let image = |c: &'a Container| c.image.as_deref();
        containers
            .iter()
            .find(|c| c.name == kind.label())
            .and_then(image)
            .or_else(|| {
                containers.iter().filter_map(image).find(|i| {
                    let repo = i.split('@').next().unwrap_or(i);
                    let last = repo.rsplit('/').next().unwrap_or(repo);
                    last.split(':').next() == Some("milvus")
                })
            })
            .or_else(|| containers.first().and_then(image))
    }
}

/// The tag of an image reference: `milvusdb/milvus:v2.6.15` → `v2.6.15`. Handles registries
/// with ports (`reg:5000/milvus:v2.6.15`) and digests (`…:v2.6.15@sha256:…` → `v2.6.15`;
/// digest only → `sha256:` and the first 12 hex digits). No tag and no digest → `latest`.
pub fn image_tag(image: &str) -> Option<String> {
    let image = image.trim();
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if let Some((_, tag)) = last_segment.rsplit_once(':')
        && !tag.is_empty()
    {
        return Some(tag.to_string());
    }
    match digest {
        Some(d) => {
            let (algo, hex) = d.split_once(':').unwrap_or(("sha256", d));
            Some(format!("{algo}:{}", hex.chars().take(12).collect::<String>()))
        }
        None => Some("latest".to_string()),
    }
}
