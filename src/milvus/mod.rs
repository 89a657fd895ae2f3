//! The Milvus model: releases, components, dependencies, pods and their health.
//!
//! Everything here is pure: [`discover`] turns an [`Inventory`] (the objects read from the
//! API server) into [`Release`]s. No I/O, so it is tested directly against the fixtures.

mod component;
pub mod config;
mod discovery;
mod duration;
mod health;
pub mod labels;
mod object;
pub mod owners;
mod pod;
mod pod_labels;
mod pods;
mod problems;
mod rows;
pub mod serving;
mod workload;

pub use component::{ComponentKind, ComponentRole, DependencyKind, KINDS, KindInfo};
pub use discovery::discover;
pub use duration::human_duration;
pub use health::Health;
pub use object::{Milvus, ReplicasError};
pub use pod::{Container, ContainerState, ContainerStatus, Pod, PodCondition, PodMeta, PodSpec, PodStatus};
pub use pod_labels::PodLabels;
pub use problems::{PodProblem, ProblemKind, detect_problem, pod_status, pod_summary};
pub use workload::image_tag;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use serde::Serialize;

/// The label that names the Milvus chart (`app.kubernetes.io/name`); `nameOverride` changes it.
pub const DEFAULT_NAME_LABEL: &str = "milvus";

/// Everything read from the API server for one scope (a namespace, or the whole cluster).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub pods: Vec<Pod>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    /// `milvuses.milvus.io/v1beta1` objects.
    pub milvuses: Vec<Milvus>,
}

/// Inputs of discovery that are not objects.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Value of `app.kubernetes.io/name` on Milvus workloads (`milvus` unless the chart's `nameOverride` is set).
    pub name_label: String,
    /// "Now", for ages and stuck-terminating detection; passed in so that results are reproducible.
    pub now: Timestamp,
}

/// How a release got onto the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ManagedBy {
    /// Installed with the Helm chart; `chart` is the `helm.sh/chart` label, e.g. `milvus-5.0.19`.
    Helm { chart: Option<String> },
    /// A `Milvus` custom resource reconciled by the Milvus Operator.
    Operator {
        /// `status.status` of the CR (Pending, Healthy, Unhealthy, Deleting, Stopped); None when the CR could not be read.
        status: Option<String>,
        conditions: Vec<OperatorCondition>,
        /// False when the workloads say operator but the `Milvus` object itself was not found or not readable.
        resource_found: bool,
    },
}

impl ManagedBy {
    /// `helm` or `operator`, as shown in the MANAGED-BY column.
    pub fn short(&self) -> &'static str {
        match self {
            ManagedBy::Helm { .. } => "helm",
            ManagedBy::Operator { .. } => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    Cluster,
    Standalone,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Cluster => "cluster",
            Mode::Standalone => "standalone",
        }
    }
}

/// One Milvus release (a Helm release or a `Milvus` custom resource).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub namespace: String,
    pub name: String,
    pub managed_by: ManagedBy,
    pub mode: Mode,
    /// Milvus version: the image tag of the Milvus containers (e.g. `v2.6.15`).
    pub version: Option<String>,
    /// Oldest creation time of the release's objects (the CR's for operator releases).
    pub created: Option<Timestamp>,
    pub components: Vec<Component>,
    pub dependencies: Vec<Dependency>,
    /// Dependencies the release uses but does not run (external etcd, S3, Pulsar, Kafka), with their
    /// endpoints from its configuration; filled in by `status` once the configuration is read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_dependencies: Vec<config::ExternalDependency>,
    /// Every pod of the release (components and dependencies) that is not healthy.
    pub problems: Vec<PodProblem>,
    pub health: Health,
    /// Why the release has that health, in a few words (empty when Healthy).
    pub health_reason: String,
}

impl Release {
    /// `ready/total` over components: how many components have all desired replicas ready.
    pub fn components_ready(&self) -> (usize, usize) {
        let counted: Vec<&Component> = self.components.iter().filter(|c| c.desired > 0).collect();
        let ready = counted.iter().filter(|c| c.ready >= c.desired).count();
        (ready, counted.len())
    }
}

/// A Kubernetes workload that belongs to a component or dependency.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `Deployment` or `StatefulSet`.
    pub kind: String,
    pub name: String,
}

/// One row of the components table: a Milvus component, or one group of it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub kind: ComponentKind,
    /// Resource group (Helm `replicaResourceGroups`) or operator deployment group.
    pub group: Option<String>,
    /// Display name: `querynode`, or `querynode[rg1]` for a group.
    pub display_name: String,
    pub workloads: Vec<WorkloadRef>,
    /// Operator querynode: the Deployment currently serving (`my-release-milvus-querynode-0`).
    pub active_workload: Option<String>,
    pub desired: i32,
    pub ready: i32,
    pub up_to_date: i32,
    pub available: i32,
    /// Sum of container restarts over the component's pods.
    pub restarts: i32,
    pub created: Option<Timestamp>,
    pub hpa: Option<HpaRef>,
    /// Helm applies the component's workloads server-side (a `helm` field manager with operation
    /// `Apply`): its next upgrade conflicts on a changed field instead of setting it back.
    #[serde(skip)]
    pub helm_applies_server_side: bool,
    pub pods: Vec<PodSummary>,
    pub health: Health,
    /// Short reason for the STATUS column (empty when Healthy), e.g. `1/2 ready, CrashLoopBackOff`.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaRef {
    pub name: String,
    pub min_replicas: i32,
    pub max_replicas: i32,
}

/// One row of the dependencies table.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    pub kind: DependencyKind,
    /// Display name: `etcd`, `minio`, `pulsarv3-bookie`, `kafka`, `zookeeper`, `woodpecker`…
    pub display_name: String,
    pub workloads: Vec<WorkloadRef>,
    pub desired: i32,
    pub ready: i32,
    pub restarts: i32,
    pub created: Option<Timestamp>,
    pub pods: Vec<PodSummary>,
    pub health: Health,
    pub reason: String,
}

/// A pod as `kubectl get pods` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSummary {
    pub name: String,
    pub ready_containers: i32,
    pub total_containers: i32,
    /// kubectl's STATUS column: Running, Pending, CrashLoopBackOff, ImagePullBackOff, Terminating, Evicted, Completed…
    pub status: String,
    pub restarts: i32,
    pub created: Option<Timestamp>,
    pub node: Option<String>,
}
