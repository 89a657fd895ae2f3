//! The `Milvus` custom resource (`milvuses.milvus.io/v1beta1`), typed for the fields the plugin reads:
//! the mode, the image, each component's `replicas` and deployment `groups`, the status and its
//! conditions. Everything else of the object is ignored when reading (the CRD is large and grows).
//!
//! [`Milvus::replicas`] is the one place that reads a component's replicas and
//! [`Milvus::replicas_patch`] the one place that writes them.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ComponentKind, Mode, OperatorCondition};

/// The CR annotation naming the querynode Deployment the operator serves from (`0` or `1`).
pub const A_QUERYNODE_CURRENT: &str = "milvus.io/querynode-current-group-id";

/// A `Milvus` object as read from the API server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Milvus {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: MilvusSpec,
    #[serde(default)]
    pub status: MilvusStatus,
    /// The object as read, every field, when it was read to be changed (a dry run diffs it).
    #[serde(skip)]
    pub whole: Option<Box<Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct MilvusSpec {
    /// `cluster` or `standalone`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub components: Components,
    /// `spec.config`: Milvus configuration overrides (as `user.yaml` for the chart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// `spec.dependencies`: etcd, storage, pulsar, kafka… (`external: true` with endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Value>,
}

/// `spec.components`: the shared settings and one entry per component key (`queryNode`, `mixCoord`…).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Components {
    #[serde(default)]
    pub image: Option<String>,
    /// Every other key: component entries (objects) and settings the plugin does not read.
    #[serde(flatten)]
    pub entries: BTreeMap<String, Value>,
}

/// `spec.components.<key>`: what the plugin reads of one component.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ComponentSpec {
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub groups: Option<Vec<GroupSpec>>,
}

/// One deployment group (`spec.components.<key>.groups[]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GroupSpec {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub replicas: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct MilvusStatus {
    /// Pending, Healthy, Unhealthy, Deleting or Stopped.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// Why a component's replicas cannot be read or written through the `Milvus` object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplicasError {
    #[error("{0} has no Milvus spec key")]
    NoSpecKey(String),
    #[error("the Milvus object has no group {group:?} for {key}")]
    NoGroup { key: String, group: String },
    #[error("spec.components.{0} is not an object")]
    NotAnObject(String),
    #[error("spec.components.{key}.replicas is {value}, out of range")]
    OutOfRange { key: String, value: i64 },
}

impl Milvus {
    /// Reads an object from its JSON (a list item of the dynamic API).
    pub fn from_value(value: Value) -> Result<Milvus, serde_json::Error> {
        serde_json::from_value(value)
    }

    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or("default")
    }

    /// `spec.mode`; `None` when the object does not say (discovery infers it from the workloads).
    pub fn mode(&self) -> Option<Mode> {
        self.spec
            .mode
            .as_deref()
            .map(|m| if m.eq_ignore_ascii_case("standalone") { Mode::Standalone } else { Mode::Cluster })
    }

    pub fn created(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp.as_ref().map(|t| t.0)
    }

    pub fn conditions(&self) -> Vec<OperatorCondition> {
        self.status
            .conditions
            .iter()
            .filter(|c| !c.type_.is_empty())
            .map(|c| OperatorCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
            })
            .collect()
    }

    /// The annotation naming the current querynode Deployment (`0`/`1`).
    pub fn querynode_current_group(&self) -> Option<&str> {
        self.metadata.annotations.as_ref()?.get(A_QUERYNODE_CURRENT).map(String::as_str)
    }

    /// The labels of the object itself.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&NONE)
    }

    /// `spec.components.<key>` of a component kind, parsed; `Ok(None)` when the object has no entry.
    pub fn component(&self, kind: &ComponentKind) -> Result<Option<ComponentSpec>, ReplicasError> {
        let key = operator_key(kind)?;
        match self.spec.components.entries.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(entry) => serde_json::from_value(entry.clone())
                .map(Some)
                .map_err(|_| ReplicasError::NotAnObject(key.to_string())),
        }
    }

    /// The replicas the object asks for, for a component or one of its deployment groups. An absent
    /// field is the operator's default ([`ComponentKind::default_replicas`]); `-1` hands the component
    /// to an autoscaler and is returned as is.
    pub fn replicas(&self, kind: &ComponentKind, group: Option<&str>) -> Result<i32, ReplicasError> {
        let key = operator_key(kind)?;
        let spec = self.component(kind)?.unwrap_or_default();
        let value = match group {
            None => spec.replicas,
            Some(group) => {
                spec.groups
                    .unwrap_or_default()
                    .into_iter()
                    .find(|g| g.name == group)
                    .ok_or_else(|| ReplicasError::NoGroup { key: key.to_string(), group: group.to_string() })?
                    .replicas
            }
        };
        match value {
            None => Ok(kind.default_replicas()),
            Some(n) => {
                i32::try_from(n).map_err(|_| ReplicasError::OutOfRange { key: key.to_string(), value: n })
            }
        }
    }

    /// The JSON merge patch that sets a component's (or group's) replicas to `replicas`, carrying the
    /// object's `resourceVersion` so that a concurrent change fails with a conflict instead of being
    /// overwritten. A merge patch replaces lists whole, so a group change sends every group of
    /// `raw` (the object as read, with all its fields) with that one changed.
    pub fn replicas_patch(
        raw: &Value,
        kind: &ComponentKind,
        group: Option<&str>,
        replicas: i32,
    ) -> Result<Value, ReplicasError> {
        let key = operator_key(kind)?;
        let resource_version = raw["metadata"]["resourceVersion"].clone();
        let component = match group {
            None => json!({"replicas": replicas}),
            Some(group) => {
                let mut groups = raw["spec"]["components"][key]["groups"].clone();
                let entry = groups
                    .as_array_mut()
                    .and_then(|list| list.iter_mut().find(|g| g["name"].as_str() == Some(group)))
                    .ok_or_else(|| ReplicasError::NoGroup {
                        key: key.to_string(),
                        group: group.to_string(),
                    })?;
                entry["replicas"] = json!(replicas);
                json!({"groups": groups})
            }
        };
        Ok(
            json!({"metadata": {"resourceVersion": resource_version}, "spec": {"components": {key: component}}}),
        )
    }
}

fn operator_key(kind: &ComponentKind) -> Result<&'static str, ReplicasError> {
    kind.operator_key().ok_or_else(|| ReplicasError::NoSpecKey(kind.label().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn milvus(value: Value) -> (Milvus, Value) {
        (Milvus::from_value(value.clone()).expect("a Milvus object"), value)
    }

    #[test]
    fn replicas_of_components_and_groups_with_the_operator_defaults() {
        let (m, _) = milvus(json!({
            "metadata": {"name": "m", "namespace": "ns", "resourceVersion": "7"},
            "spec": {"mode": "cluster", "components": {"image": "milvusdb/milvus:v2.6.15",
                "queryNode": {"replicas": 3},
                "proxy": {},
                "dataNode": {"groups": [{"name": "a", "replicas": 2}, {"name": "b"}]},
                "indexNode": {"replicas": -1}}},
        }));
        assert_eq!(m.replicas(&ComponentKind::QueryNode, None), Ok(3));
        assert_eq!(m.replicas(&ComponentKind::Proxy, None), Ok(1), "an absent field is the default");
        assert_eq!(m.replicas(&ComponentKind::StreamingNode, None), Ok(1), "an absent entry too");
        assert_eq!(m.replicas(&ComponentKind::DataNode, Some("a")), Ok(2));
        assert_eq!(m.replicas(&ComponentKind::DataNode, Some("b")), Ok(1), "a group without replicas");
        assert_eq!(m.replicas(&ComponentKind::IndexNode, None), Ok(-1));
        assert!(matches!(
            m.replicas(&ComponentKind::DataNode, Some("c")),
            Err(ReplicasError::NoGroup { .. })
        ));
        assert!(matches!(m.replicas(&ComponentKind::Attu, None), Err(ReplicasError::NoSpecKey(_))));
        assert_eq!(m.mode(), Some(Mode::Cluster));
        assert_eq!(m.spec.components.image.as_deref(), Some("milvusdb/milvus:v2.6.15"));
    }

    #[test]
    fn patches_carry_the_resource_version_and_every_group() {
        let (_, raw) = milvus(json!({
            "metadata": {"name": "m", "resourceVersion": "7"},
            "spec": {"components": {"dataNode": {"groups": [
                {"name": "a", "replicas": 1, "nodeSelector": {"pool": "x"}}, {"name": "b"}]}}},
        }));
        let body = Milvus::replicas_patch(&raw, &ComponentKind::DataNode, Some("b"), 4).expect("patch");
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(
            body["spec"]["components"]["dataNode"]["groups"],
            json!([{"name": "a", "replicas": 1, "nodeSelector": {"pool": "x"}}, {"name": "b", "replicas": 4}])
        );
        let body = Milvus::replicas_patch(&raw, &ComponentKind::QueryNode, None, 2).expect("patch");
        assert_eq!(body["spec"], json!({"components": {"queryNode": {"replicas": 2}}}));
        let mut merged = raw.clone();
        json_patch::merge(
            &mut merged,
            &Milvus::replicas_patch(&raw, &ComponentKind::DataNode, Some("b"), 4).expect("patch"),
        );
        let merged = Milvus::from_value(merged).expect("still a Milvus object");
        assert_eq!(merged.replicas(&ComponentKind::DataNode, Some("b")), Ok(4));
    }

    #[test]
    fn status_and_annotations() {
        let (m, _) = milvus(json!({
            "metadata": {"name": "m", "annotations": {A_QUERYNODE_CURRENT: "1"}},
            "status": {"status": "Unhealthy", "conditions": [{"type": "MilvusReady", "status": "False", "message": "x"}]},
        }));
        assert_eq!(m.status.status.as_deref(), Some("Unhealthy"));
        assert_eq!(m.conditions()[0].type_, "MilvusReady");
        assert_eq!(m.querynode_current_group(), Some("1"));
        assert_eq!(m.namespace(), "default");
    }
}
