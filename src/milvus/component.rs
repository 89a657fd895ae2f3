//! Milvus component and dependency kinds: one table of what each component is (labels, values keys,
//! role, scaling limits, display order), and the dependency kinds.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A Milvus component, as named by the `component` (Helm) or `app.kubernetes.io/component`
/// (operator) label. Serialized as the label value (`"querynode"`). Everything known about a kind
/// is its row in [`KINDS`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    MixCoord,
    RootCoord,
    QueryCoord,
    DataCoord,
    IndexCoord,
    Proxy,
    QueryNode,
    DataNode,
    IndexNode,
    StreamingNode,
    Standalone,
    Cdc,
    Attu,
    /// The Woodpecker WAL service (a StatefulSet, Helm only). Discovery reports it as a
    /// [`DependencyKind::Woodpecker`] row; the kind exists so that the label parses.
    Woodpecker,
    /// A component label this version of the plugin does not know (kept verbatim).
    Other(String),
}

/// What a component does, for scaling advice and health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ComponentRole {
    /// Scalable worker: proxy, querynode, datanode, indexnode, streamingnode.
    Worker,
    /// Coordinator (mixcoord or one of the separate coordinators); not scaled out.
    Coordinator,
    /// The all-in-one standalone server.
    Standalone,
    /// Optional add-ons: cdc, attu, woodpecker, unknown components.
    Auxiliary,
}

/// One row of [`KINDS`]: every fact about a known component kind.
#[derive(Debug)]
pub struct KindInfo {
    pub kind: ComponentKind,
    /// The label value: `querynode`, `mixcoord`…
    pub label: &'static str,
    /// The top-level key in the Helm chart's values (`queryNode`, `mixCoordinator`).
    pub helm_values_key: &'static str,
    /// The key under the `Milvus` object's `spec.components` (`queryNode`, `mixCoord`); `None` for
    /// components the operator does not run.
    pub operator_key: Option<&'static str>,
    pub role: ComponentRole,
    /// The release cannot serve without it.
    pub essential: bool,
    /// `kubectl milvus scale` may change its replicas (the workers, and cdc within its limit).
    pub scalable: bool,
    /// The most replicas Milvus supports, and why, when there is a limit.
    pub max_replicas: Option<(i32, &'static str)>,
    /// The replicas the owner assumes when its `replicas` field is absent (Kubernetes and the
    /// Milvus Operator both default to 1).
    pub default_replicas: i32,
}

const fn kind(
    kind: ComponentKind,
    label: &'static str,
    helm_values_key: &'static str,
    operator_key: Option<&'static str>,
    role: ComponentRole,
    essential: bool,
) -> KindInfo {
    let scalable = matches!(role, ComponentRole::Worker);
    KindInfo {
        kind,
        label,
        helm_values_key,
        operator_key,
        role,
        essential,
        scalable,
        max_replicas: None,
        default_replicas: 1,
    }
}

impl KindInfo {
    /// An add-on that may be scaled, within a limit Milvus sets.
    const fn scalable_up_to(mut self, max: i32, why: &'static str) -> Self {
        self.scalable = true;
        self.max_replicas = Some((max, why));
        self
    }
}

use ComponentRole::{Auxiliary, Coordinator, Standalone as AllInOne, Worker};

/// Every known component, in display order (coordinators, workers, standalone, add-ons). Adding a
/// component kind is adding a variant and its row here.
pub static KINDS: &[KindInfo] = &[
    kind(ComponentKind::MixCoord, "mixcoord", "mixCoordinator", Some("mixCoord"), Coordinator, true),
    kind(ComponentKind::RootCoord, "rootcoord", "rootCoordinator", Some("rootCoord"), Coordinator, true),
    kind(ComponentKind::QueryCoord, "querycoord", "queryCoordinator", Some("queryCoord"), Coordinator, true),
    kind(ComponentKind::DataCoord, "datacoord", "dataCoordinator", Some("dataCoord"), Coordinator, true),
    kind(ComponentKind::IndexCoord, "indexcoord", "indexCoordinator", Some("indexCoord"), Coordinator, true),
    kind(ComponentKind::Proxy, "proxy", "proxy", Some("proxy"), Worker, true),
    kind(ComponentKind::QueryNode, "querynode", "queryNode", Some("queryNode"), Worker, true),
    kind(ComponentKind::DataNode, "datanode", "dataNode", Some("dataNode"), Worker, true),
    // IndexNode serves no query: the release answers without it (and 2.6 removed it).
    kind(ComponentKind::IndexNode, "indexnode", "indexNode", Some("indexNode"), Worker, false),
    kind(ComponentKind::StreamingNode, "streamingnode", "streamingNode", Some("streamingNode"), Worker, true),
    kind(ComponentKind::Standalone, "standalone", "standalone", Some("standalone"), AllInOne, true),
    kind(ComponentKind::Cdc, "cdc", "cdc", Some("cdc"), Auxiliary, false)
        .scalable_up_to(1, "Milvus CDC does not support more than one instance"),
    kind(ComponentKind::Attu, "attu", "attu", None, Auxiliary, false),
    kind(ComponentKind::Woodpecker, "woodpecker", "woodpecker", None, Auxiliary, false),
];

/// The error of [`ComponentKind::from_str`]: the name is not a known component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Milvus component `{name}` (expected one of: {expected})")]
pub struct UnknownComponent {
    pub name: String,
    pub expected: String,
}

impl ComponentKind {
    /// Every known component, in display order.
    pub fn known() -> impl Iterator<Item = &'static ComponentKind> {
        KINDS.iter().map(|info| &info.kind)
    }

    /// This kind's row of [`KINDS`]; `None` for [`ComponentKind::Other`].
    pub fn info(&self) -> Option<&'static KindInfo> {
        KINDS.iter().find(|info| info.kind == *self)
    }

    /// From the component label value (`querynode`). Exact match; anything else is `Other`.
    pub fn from_label(label: &str) -> Self {
        KINDS
            .iter()
            .find(|info| info.label == label)
            .map(|info| info.kind.clone())
            .unwrap_or_else(|| ComponentKind::Other(label.to_string()))
    }

    /// Parses a user-supplied name: the label (`querynode`), the Helm values key (`queryNode`,
    /// `mixCoordinator`) or the operator key (`mixCoord`), case-insensitively. `None` if unknown.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        KINDS
            .iter()
            .find(|info| {
                name.eq_ignore_ascii_case(info.label)
                    || name.eq_ignore_ascii_case(info.helm_values_key)
                    || info.operator_key.is_some_and(|key| name.eq_ignore_ascii_case(key))
            })
            .map(|info| info.kind.clone())
    }

    /// The label value: `querynode`, `mixcoord`…
    pub fn label(&self) -> &str {
        match self {
            ComponentKind::Other(label) => label,
            known => known.info().map_or("", |info| info.label),
        }
    }

    /// The top-level key in the Helm chart's values (`queryNode`, `mixCoordinator`); `None` for
    /// unknown components.
    pub fn helm_values_key(&self) -> Option<&'static str> {
        self.info().map(|info| info.helm_values_key)
    }

    /// The key under the `Milvus` object's `spec.components` (`queryNode`, `mixCoord`); `None` for
    /// components the operator does not run (attu, woodpecker, unknown).
    pub fn operator_key(&self) -> Option<&'static str> {
        self.info().and_then(|info| info.operator_key)
    }

    pub fn role(&self) -> ComponentRole {
        self.info().map_or(ComponentRole::Auxiliary, |info| info.role)
    }

    /// A Milvus server component (worker, coordinator or standalone), as opposed to an add-on.
    pub fn is_server(&self) -> bool {
        self.role() != ComponentRole::Auxiliary
    }

    /// `kubectl milvus scale` may change its replicas: the workers (per the Milvus docs), and cdc
    /// within [`ComponentKind::max_replicas`].
    pub fn is_scalable(&self) -> bool {
        self.info().is_some_and(|info| info.scalable)
    }

    /// The release cannot serve without it: proxy, the coordinators (mixcoord or separate),
    /// querynode, datanode, streamingnode, standalone. IndexNode (< 2.6), cdc, attu are not.
    pub fn is_essential(&self) -> bool {
        self.info().is_some_and(|info| info.essential)
    }

    /// The most replicas Milvus supports for this kind, and why; `None` when there is no limit.
    pub fn max_replicas(&self) -> Option<(i32, &'static str)> {
        self.info().and_then(|info| info.max_replicas)
    }

    /// The replicas its owner assumes when the `replicas` field is absent.
    pub fn default_replicas(&self) -> i32 {
        self.info().map_or(1, |info| info.default_replicas)
    }

    /// Position in tables: the row of [`KINDS`]; unknown components after every known one.
    pub fn display_order(&self) -> usize {
        KINDS.iter().position(|info| info.kind == *self).unwrap_or(KINDS.len())
    }
}

impl PartialOrd for ComponentKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Display order ([`ComponentKind::display_order`]), then label for unknown components.
impl Ord for ComponentKind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.display_order().cmp(&other.display_order()).then_with(|| self.label().cmp(other.label()))
    }
}

impl fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for ComponentKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

/// Accepts any spelling [`ComponentKind::parse`] accepts; unknown names are an error (for the
/// `scale` command, where a typo must not become `Other`).
impl FromStr for ComponentKind {
    type Err = UnknownComponent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownComponent {
            name: s.to_string(),
            expected: KINDS.iter().map(|info| info.label).collect::<Vec<_>>().join(", "),
        })
    }
}

/// A third-party service a release depends on. Serialized lowercase (`"pulsarv3"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    Etcd,
    Minio,
    Pulsar,
    PulsarV3,
    Kafka,
    Zookeeper,
    Woodpecker,
    /// The text-embeddings inference service the chart adds with `tei.enabled`.
    Tei,
}

impl DependencyKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DependencyKind::Etcd => "etcd",
            DependencyKind::Minio => "minio",
            DependencyKind::Pulsar => "pulsar",
            DependencyKind::PulsarV3 => "pulsarv3",
            DependencyKind::Kafka => "kafka",
            DependencyKind::Zookeeper => "zookeeper",
            DependencyKind::Woodpecker => "woodpecker",
            DependencyKind::Tei => "tei",
        }
    }

    /// Metadata store, object storage or message queue: Milvus stops working without it.
    /// Every kind here is one of those (zookeeper backs kafka) except the text-embeddings service,
    /// which only embedding functions need. Individual parts may still be optional: see
    /// [`DependencyKind::is_essential_part`].
    pub fn is_essential(&self) -> bool {
        !matches!(self, DependencyKind::Tei)
    }

    /// Whether a part of this dependency (the `component` label of a pulsar workload, e.g.
    /// `broker`, `recovery`) is needed for Milvus to work. Pulsar: zookeeper, bookie, broker and
    /// proxy are (Milvus connects through the proxy); autorecovery, toolset, managers and
    /// monitoring are not. Other kinds have a single part.
    pub fn is_essential_part(&self, part: Option<&str>) -> bool {
        match (self, part) {
            (DependencyKind::Pulsar | DependencyKind::PulsarV3, Some(part)) => {
                matches!(part, "zookeeper" | "bookie" | "broker" | "proxy")
            }
            _ => self.is_essential(),
        }
    }
}

impl fmt::Display for DependencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_each_kind_once_and_orders_them() {
        for (i, info) in KINDS.iter().enumerate() {
            assert_eq!(info.kind.info().map(|found| found.label), Some(info.label), "{}", info.label);
            assert_eq!(info.kind.display_order(), i, "{}", info.label);
            assert_eq!(KINDS.iter().filter(|other| other.label == info.label).count(), 1, "{}", info.label);
            assert_eq!(ComponentKind::parse(info.helm_values_key), Some(info.kind.clone()), "{}", info.label);
        }
        assert_eq!(ComponentKind::Other("x".into()).display_order(), KINDS.len());
        assert_eq!(ComponentKind::Cdc.max_replicas().map(|(max, _)| max), Some(1));
        assert!(ComponentKind::Cdc.is_scalable() && !ComponentKind::Attu.is_scalable());
    }

    #[test]
    fn labels_round_trip() {
        for k in ComponentKind::known() {
            assert_eq!(&ComponentKind::from_label(k.label()), k);
        }
        assert_eq!(ComponentKind::from_label("flux"), ComponentKind::Other("flux".into()));
        assert_eq!(ComponentKind::from_label("QueryNode").label(), "QueryNode");
    }

    #[test]
    fn parse_accepts_every_spelling() {
        for s in ["querynode", "queryNode", "QueryNode", "QUERYNODE", " querynode "] {
            assert_eq!(ComponentKind::parse(s), Some(ComponentKind::QueryNode), "{s}");
        }
        assert_eq!(ComponentKind::parse("mixCoord"), Some(ComponentKind::MixCoord));
        assert_eq!(ComponentKind::parse("mixCoordinator"), Some(ComponentKind::MixCoord));
        assert_eq!("streamingNode".parse::<ComponentKind>(), Ok(ComponentKind::StreamingNode));
        let err = "querynod".parse::<ComponentKind>().unwrap_err();
        assert!(err.to_string().contains("querynod"));
        assert!(err.to_string().contains("querynode"));
    }

    #[test]
    fn keys_roles_and_essential() {
        assert_eq!(ComponentKind::QueryNode.helm_values_key(), Some("queryNode"));
        assert_eq!(ComponentKind::MixCoord.helm_values_key(), Some("mixCoordinator"));
        assert_eq!(ComponentKind::MixCoord.operator_key(), Some("mixCoord"));
        assert_eq!(ComponentKind::Attu.operator_key(), None);
        assert_eq!(ComponentKind::Other("x".into()).helm_values_key(), None);
        assert_eq!(ComponentKind::Proxy.role(), ComponentRole::Worker);
        assert_eq!(ComponentKind::DataCoord.role(), ComponentRole::Coordinator);
        assert_eq!(ComponentKind::Cdc.role(), ComponentRole::Auxiliary);
        for k in [
            ComponentKind::Proxy,
            ComponentKind::MixCoord,
            ComponentKind::RootCoord,
            ComponentKind::QueryNode,
            ComponentKind::DataNode,
            ComponentKind::StreamingNode,
            ComponentKind::Standalone,
        ] {
            assert!(k.is_essential(), "{k}");
        }
        for k in [
            ComponentKind::IndexNode,
            ComponentKind::Cdc,
            ComponentKind::Attu,
            ComponentKind::Other("x".into()),
        ] {
            assert!(!k.is_essential(), "{k}");
        }
        assert!(ComponentKind::QueryNode.is_scalable());
        assert!(!ComponentKind::MixCoord.is_scalable());
    }

    #[test]
    fn display_order() {
        let mut v = [
            ComponentKind::Other("zeta".into()),
            ComponentKind::Attu,
            ComponentKind::Standalone,
            ComponentKind::StreamingNode,
            ComponentKind::Proxy,
            ComponentKind::IndexCoord,
            ComponentKind::MixCoord,
            ComponentKind::Other("alpha".into()),
        ];
        v.sort();
        let labels: Vec<&str> = v.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            ["mixcoord", "indexcoord", "proxy", "streamingnode", "standalone", "attu", "alpha", "zeta"]
        );
    }

    #[test]
    fn serializes_lowercase() {
        assert_eq!(serde_json::to_string(&ComponentKind::QueryNode).unwrap(), "\"querynode\"");
        assert_eq!(serde_json::to_string(&DependencyKind::PulsarV3).unwrap(), "\"pulsarv3\"");
        assert_eq!(serde_json::to_string(&DependencyKind::Etcd).unwrap(), "\"etcd\"");
        assert_eq!(serde_json::to_string(&ComponentRole::Coordinator).unwrap(), "\"coordinator\"");
    }

    #[test]
    fn dependency_parts() {
        assert!(DependencyKind::PulsarV3.is_essential_part(Some("broker")));
        assert!(DependencyKind::PulsarV3.is_essential_part(Some("proxy")));
        assert!(!DependencyKind::PulsarV3.is_essential_part(Some("recovery")));
        assert!(DependencyKind::Etcd.is_essential_part(None));
        assert!(DependencyKind::Zookeeper.is_essential());
    }
}
