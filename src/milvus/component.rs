//! Milvus component and dependency kinds: labels, values keys, roles and display order.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A Milvus component, as named by the `component` (Helm) or `app.kubernetes.io/component`
/// (operator) label. Serialized as the label value (`"querynode"`).
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

/// The error of [`ComponentKind::from_str`]: the name is not a known component.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Milvus component `{name}` (expected one of: {expected})")]
pub struct UnknownComponent {
    pub name: String,
    pub expected: String,
}

impl ComponentKind {
    /// Every known component, in display order.
    pub const KNOWN: [ComponentKind; 14] = [
        ComponentKind::MixCoord,
        ComponentKind::RootCoord,
        ComponentKind::QueryCoord,
        ComponentKind::DataCoord,
        ComponentKind::IndexCoord,
        ComponentKind::Proxy,
        ComponentKind::QueryNode,
        ComponentKind::DataNode,
        ComponentKind::IndexNode,
        ComponentKind::StreamingNode,
        ComponentKind::Standalone,
        ComponentKind::Cdc,
        ComponentKind::Attu,
        ComponentKind::Woodpecker,
    ];

    /// From the component label value (`querynode`). Exact match; anything else is `Other`.
    pub fn from_label(label: &str) -> Self {
        Self::KNOWN
            .iter()
            .find(|k| k.label() == label)
            .cloned()
            .unwrap_or_else(|| ComponentKind::Other(label.to_string()))
    }

    /// Parses a user-supplied name: the label (`querynode`), the Helm values key (`queryNode`,
    /// `mixCoordinator`) or the operator key (`mixCoord`), case-insensitively. `None` if unknown.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::KNOWN
            .iter()
            .find(|k| {
                name.eq_ignore_ascii_case(k.label())
                    || k.helm_values_key().is_some_and(|key| name.eq_ignore_ascii_case(key))
                    || k.operator_key().is_some_and(|key| name.eq_ignore_ascii_case(key))
            })
            .cloned()
    }

    /// The label value: `querynode`, `mixcoord`…
    pub fn label(&self) -> &str {
        match self {
            ComponentKind::MixCoord => "mixcoord",
            ComponentKind::RootCoord => "rootcoord",
            ComponentKind::QueryCoord => "querycoord",
            ComponentKind::DataCoord => "datacoord",
            ComponentKind::IndexCoord => "indexcoord",
            ComponentKind::Proxy => "proxy",
            ComponentKind::QueryNode => "querynode",
            ComponentKind::DataNode => "datanode",
            ComponentKind::IndexNode => "indexnode",
            ComponentKind::StreamingNode => "streamingnode",
            ComponentKind::Standalone => "standalone",
            ComponentKind::Cdc => "cdc",
            ComponentKind::Attu => "attu",
            ComponentKind::Woodpecker => "woodpecker",
            ComponentKind::Other(s) => s,
        }
    }

    /// The top-level key in the Helm chart's values (`queryNode`, `mixCoordinator`); `None` for
    /// unknown components.
    pub fn helm_values_key(&self) -> Option<&'static str> {
        Some(match self {
            ComponentKind::MixCoord => "mixCoordinator",
            ComponentKind::RootCoord => "rootCoordinator",
            ComponentKind::QueryCoord => "queryCoordinator",
            ComponentKind::DataCoord => "dataCoordinator",
            ComponentKind::IndexCoord => "indexCoordinator",
            ComponentKind::Proxy => "proxy",
            ComponentKind::QueryNode => "queryNode",
            ComponentKind::DataNode => "dataNode",
            ComponentKind::IndexNode => "indexNode",
            ComponentKind::StreamingNode => "streamingNode",
            ComponentKind::Standalone => "standalone",
            ComponentKind::Cdc => "cdc",
            ComponentKind::Attu => "attu",
            ComponentKind::Woodpecker => "woodpecker",
            ComponentKind::Other(_) => return None,
        })
    }

    /// The key under the `Milvus` CR's `spec.components` (`queryNode`, `mixCoord`); `None` for
    /// components the operator does not run (attu, woodpecker, unknown).
    pub fn operator_key(&self) -> Option<&'static str> {
        Some(match self {
            ComponentKind::MixCoord => "mixCoord",
            ComponentKind::RootCoord => "rootCoord",
            ComponentKind::QueryCoord => "queryCoord",
            ComponentKind::DataCoord => "dataCoord",
            ComponentKind::IndexCoord => "indexCoord",
            ComponentKind::Proxy => "proxy",
            ComponentKind::QueryNode => "queryNode",
            ComponentKind::DataNode => "dataNode",
            ComponentKind::IndexNode => "indexNode",
            ComponentKind::StreamingNode => "streamingNode",
            ComponentKind::Standalone => "standalone",
            ComponentKind::Cdc => "cdc",
            ComponentKind::Attu | ComponentKind::Woodpecker | ComponentKind::Other(_) => {
                return None;
            }
        })
    }

    pub fn role(&self) -> ComponentRole {
        match self {
            ComponentKind::Proxy
            | ComponentKind::QueryNode
            | ComponentKind::DataNode
            | ComponentKind::IndexNode
            | ComponentKind::StreamingNode => ComponentRole::Worker,
            ComponentKind::MixCoord
            | ComponentKind::RootCoord
            | ComponentKind::QueryCoord
            | ComponentKind::DataCoord
            | ComponentKind::IndexCoord => ComponentRole::Coordinator,
            ComponentKind::Standalone => ComponentRole::Standalone,
            ComponentKind::Cdc
            | ComponentKind::Attu
            | ComponentKind::Woodpecker
            | ComponentKind::Other(_) => ComponentRole::Auxiliary,
        }
    }

    /// A Milvus server component (worker, coordinator or standalone), as opposed to an add-on.
    pub fn is_server(&self) -> bool {
        self.role() != ComponentRole::Auxiliary
    }

    /// Scaling out is supported (workers only, per the Milvus docs).
    #[allow(dead_code)] // for the `scale` command
    pub fn is_scalable(&self) -> bool {
        self.role() == ComponentRole::Worker
    }

    /// The release cannot serve without it: proxy, the coordinators (mixcoord or separate),
    /// querynode, datanode, streamingnode, standalone. IndexNode (< 2.6), cdc, attu are not.
    pub fn is_essential(&self) -> bool {
        match self.role() {
            ComponentRole::Coordinator | ComponentRole::Standalone => true,
            ComponentRole::Worker => *self != ComponentKind::IndexNode,
            ComponentRole::Auxiliary => false,
        }
    }

    /// Position in tables: coordinators, then workers, then standalone, add-ons, unknown.
    pub fn display_order(&self) -> u8 {
        match self {
            ComponentKind::MixCoord => 0,
            ComponentKind::RootCoord => 1,
            ComponentKind::QueryCoord => 2,
            ComponentKind::DataCoord => 3,
            ComponentKind::IndexCoord => 4,
            ComponentKind::Proxy => 5,
            ComponentKind::QueryNode => 6,
            ComponentKind::DataNode => 7,
            ComponentKind::IndexNode => 8,
            ComponentKind::StreamingNode => 9,
            ComponentKind::Standalone => 10,
            ComponentKind::Cdc => 11,
            ComponentKind::Attu => 12,
            ComponentKind::Woodpecker => 13,
            ComponentKind::Other(_) => 14,
        }
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
            expected: Self::KNOWN.iter().map(|k| k.label()).collect::<Vec<_>>().join(", "),
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
        }
    }

    /// Metadata store, object storage or message queue: Milvus stops working without it.
    /// Every kind here is one of those (zookeeper backs kafka). Individual parts may still be
    /// optional: see [`DependencyKind::is_essential_part`].
    pub fn is_essential(&self) -> bool {
        true
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
    fn labels_round_trip() {
        for k in ComponentKind::KNOWN {
            assert_eq!(ComponentKind::from_label(k.label()), k);
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
