//! The label vocabulary of Milvus releases (reference §1, §2, §4), and what a workload is by its
//! labels: a component of a release, a dependency, or neither.

use std::collections::BTreeMap;

use super::workload::Workload;
use super::{ComponentKind, DependencyKind};

/// `app.kubernetes.io/name`: `milvus` on Milvus workloads (the chart's `nameOverride` changes it).
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the Helm release or `Milvus` object name.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The operator's component label.
pub const APP_COMPONENT: &str = "app.kubernetes.io/component";
/// The chart's component label (and pulsar's part label).
pub const COMPONENT: &str = "component";
/// The release label of the chart's dependencies (minio, pulsar).
pub const RELEASE: &str = "release";
pub const APP: &str = "app";
pub const HELM_CHART: &str = "helm.sh/chart";
pub const RESOURCE_GROUP: &str = "milvus.io/resource-group";
pub const DEPLOYMENT_GROUP: &str = "milvus.io/deployment-group";
pub const QUERYNODE_GROUP_ID: &str = "milvus.io/querynode-group-id";
/// The value of [`MANAGED_BY`] on the Milvus Operator's workloads.
pub const OPERATOR_MANAGER: &str = "milvus-operator";
/// Helm releases the operator installs for a CR's in-cluster dependencies: `<cr>-etcd`…
pub const OPERATOR_DEPENDENCY_SUFFIXES: [&str; 4] = ["-etcd", "-minio", "-pulsar", "-kafka"];

/// What a workload is.
pub enum Class<'a> {
    Component { operator: bool, instance: &'a str, kind: ComponentKind },
    Dependency { kind: DependencyKind, display: String, part: Option<String> },
    None,
}

/// Classifies a workload by its labels and owner; `name_label` is the value of [`NAME`] on Milvus workloads.
pub fn classify_workload<'a>(w: &Workload<'a>, name_label: &str) -> Class<'a> {
    if w.is_operator_managed() {
        let instance = w.label(INSTANCE).or_else(|| w.milvus_owner());
        let component = w.label(APP_COMPONENT).or_else(|| w.label(COMPONENT));
        return match (instance, component) {
            (Some(instance), Some(c)) if !c.is_empty() => {
                Class::Component { operator: true, instance, kind: ComponentKind::from_label(c) }
            }
            _ => Class::None,
        };
    }
    if w.label(NAME) == Some(name_label) {
        let component = w.label(COMPONENT).or_else(|| w.label(APP_COMPONENT));
        return match (w.label(INSTANCE), component) {
            (Some(instance), Some(c)) if !c.is_empty() => {
                Class::Component { operator: false, instance, kind: ComponentKind::from_label(c) }
            }
            _ => Class::None,
        };
    }
    match classify_dependency(w.labels) {
        Some((kind, display, part)) => Class::Dependency { kind, display, part },
        None => Class::None,
    }
}

/// Which dependency a workload is, from its labels (reference §4).
fn classify_dependency(
    labels: &BTreeMap<String, String>,
) -> Option<(DependencyKind, String, Option<String>)> {
    let get = |k: &str| labels.get(k).map(String::as_str);
    let single = |kind: DependencyKind| Some((kind, kind.as_str().to_string(), None));
    match (get(NAME), get(APP)) {
        (Some("etcd"), _) => single(DependencyKind::Etcd),
        (Some("minio"), _) | (_, Some("minio")) => single(DependencyKind::Minio),
        (Some("kafka"), _) => single(DependencyKind::Kafka),
        (Some("zookeeper"), _) => single(DependencyKind::Zookeeper),
        (Some("woodpecker"), _) => single(DependencyKind::Woodpecker),
        (Some("tei"), _) => single(DependencyKind::Tei),
        (_, Some(app @ ("pulsar" | "pulsarv3"))) => {
            let kind = if app == "pulsar" { DependencyKind::Pulsar } else { DependencyKind::PulsarV3 };
            let part = get(COMPONENT).filter(|p| !p.is_empty());
            let display = match part {
                Some(p) => format!("{app}-{p}"),
                None => app.to_string(),
            };
            Some((kind, display, part.map(str::to_string)))
        }
        _ if get(COMPONENT) == Some("woodpecker") || get(APP_COMPONENT) == Some("woodpecker") => {
            single(DependencyKind::Woodpecker)
        }
        _ => None,
    }
}

/// The display order of pulsar's parts.
pub fn pulsar_part_order(part: Option<&str>) -> u8 {
    match part {
        Some("zookeeper") => 0,
        Some("bookie") => 1,
        Some("broker") => 2,
        Some("proxy") => 3,
        Some("recovery") => 4,
        _ => 5,
    }
}
