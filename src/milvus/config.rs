//! A release's Milvus configuration, as far as the plugin needs it: the graceful-stop timeouts (for
//! the scale-in preflight) and the endpoints of dependencies that run outside the release (external
//! etcd, S3, Pulsar, Kafka). Pure: built from the chart's ConfigMap (`default.yaml` rendered from the
//! values, `user.yaml` the user's overrides on top) or the operator's `spec.config` and
//! `spec.dependencies`; read by `client::milvus_config`.

use serde::Serialize;
use serde_json::Value;

use super::{ComponentKind, DependencyKind, Release};

/// `common.gracefulStopTimeout`, `queryNode.gracefulStopTimeout` and `dataNode.gracefulStopTimeout`
/// default to 1800 s in Milvus 2.5 and 2.6 (`configs/milvus.yaml`).
pub const DEFAULT_GRACEFUL_STOP_SECS: i64 = 1800;

/// Kubernetes' default `terminationGracePeriodSeconds`.
pub const DEFAULT_TERMINATION_GRACE_SECS: i64 = 30;

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigSource {
    /// The chart's ConfigMap (`default.yaml` + `user.yaml`), by name.
    ChartConfigMap(String),
    /// The `Milvus` object's `spec.config` (and `spec.dependencies`).
    OperatorSpec,
}

/// The merged Milvus configuration of a release.
#[derive(Debug, Clone, PartialEq)]
pub struct MilvusConfig {
    pub source: ConfigSource,
    /// `default.yaml` with `user.yaml` merged over it (chart), or `spec.config` (operator).
    pub config: Value,
    /// The operator's `spec.dependencies` (Null for the chart).
    pub dependencies: Value,
}

/// Merges `over` into `base`, objects key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o,
        _ => {}
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k)).filter(|v| !v.is_null())
}

/// A duration in seconds as Milvus's config holds it (a number, or a number in a string).
fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

/// Where a graceful-stop timeout came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulStop {
    pub seconds: i64,
    /// The key that set it (`queryNode.gracefulStopTimeout`), or `default` for the version's default.
    pub key: String,
}

impl MilvusConfig {
    /// From the chart ConfigMap's `default.yaml` and `user.yaml` (either may be missing).
    pub fn from_chart(
        name: &str,
        default_yaml: Option<&str>,
        user_yaml: Option<&str>,
    ) -> Result<Self, String> {
        let mut config = Value::Object(Default::default());
        for (key, text) in [("default.yaml", default_yaml), ("user.yaml", user_yaml)] {
            let Some(text) = text else { continue };
            let parsed: Value =
                serde_yaml::from_str(text).map_err(|e| format!("{key} of ConfigMap {name}: {e}"))?;
            merge(&mut config, parsed);
        }
        Ok(MilvusConfig {
            source: ConfigSource::ChartConfigMap(name.to_string()),
            config,
            dependencies: Value::Null,
        })
    }

    /// From the operator's `spec.config` and `spec.dependencies`.
    pub fn from_operator(config: Option<&Value>, dependencies: Option<&Value>) -> Self {
        MilvusConfig {
            source: ConfigSource::OperatorSpec,
            config: config.cloned().unwrap_or(Value::Null),
            dependencies: dependencies.cloned().unwrap_or(Value::Null),
        }
    }

    /// How long a node of `kind` waits for its data to move off when stopped (querynode, and the
    /// query node a 2.6 streaming node embeds: `queryNode.gracefulStopTimeout`, else
    /// `common.gracefulStopTimeout`; datanode: `dataNode.gracefulStopTimeout`), else the default.
    pub fn graceful_stop(&self, kind: &ComponentKind) -> Option<GracefulStop> {
        let keys: &[&str] = match kind {
            ComponentKind::QueryNode | ComponentKind::StreamingNode => {
                &["queryNode.gracefulStopTimeout", "common.gracefulStopTimeout"]
            }
            ComponentKind::DataNode => &["dataNode.gracefulStopTimeout"],
            _ => return None,
        };
        let found = keys.iter().find_map(|k| lookup(&self.config, k).and_then(seconds).map(|s| (k, s)));
        Some(match found {
            Some((key, seconds)) => GracefulStop { seconds, key: key.to_string() },
            None => GracefulStop { seconds: DEFAULT_GRACEFUL_STOP_SECS, key: "default".into() },
        })
    }
}

/// A dependency the release uses but does not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDependency {
    pub kind: DependencyKind,
    /// `etcd`, `s3`, `pulsar`, `kafka`.
    pub display_name: String,
    pub endpoints: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => {
            s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

fn host_port(config: &Value, host: &str, port: &str) -> Vec<String> {
    let host = lookup(config, host).and_then(Value::as_str).filter(|h| !h.is_empty());
    let port = lookup(config, port).map(|p| match p {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    match (host, port) {
        (Some(h), Some(p)) if !h.contains(':') && !p.is_empty() => vec![format!("{h}:{p}")],
        (Some(h), _) => vec![h.to_string()],
        _ => Vec::new(),
    }
}

/// The dependencies `release` uses but has no workload for, with their endpoints from its config:
/// etcd (`etcd.endpoints`), object storage (`minio.address`/`port`, the chart's `externalS3`),
/// the message queue Milvus is configured with (`pulsar.address`/`port`, `kafka.brokerList`).
/// The operator's `spec.dependencies.<dep>.external: true` says it outright.
pub fn external_dependencies(config: &MilvusConfig, release: &Release) -> Vec<ExternalDependency> {
    let runs = |kinds: &[DependencyKind]| release.dependencies.iter().any(|d| kinds.contains(&d.kind));
    let c = &config.config;
    let deps = &config.dependencies;
    let operator_external = |key: &str| deps[key]["external"] == true;
    let mut out = Vec::new();
    let mut add = |kind: DependencyKind, name: &str, endpoints: Vec<String>| {
        out.push(ExternalDependency { kind, display_name: name.to_string(), endpoints });
    };
    // etcd
    if operator_external("etcd") {
        add(DependencyKind::Etcd, "etcd", strings(deps["etcd"].get("endpoints")));
    } else if config.source != ConfigSource::OperatorSpec && !runs(&[DependencyKind::Etcd]) {
        let endpoints = strings(lookup(c, "etcd.endpoints"));
        let embedded = lookup(c, "etcd.use.embed") == Some(&Value::Bool(true));
        if !endpoints.is_empty() && !embedded {
            add(DependencyKind::Etcd, "etcd", endpoints);
        }
    }
    // object storage
    if operator_external("storage") {
        let endpoint = deps["storage"]["endpoint"].as_str().map(str::to_string).into_iter().collect();
        add(DependencyKind::Minio, "s3", endpoint);
    } else if config.source != ConfigSource::OperatorSpec && !runs(&[DependencyKind::Minio]) {
        let local = lookup(c, "common.storageType").and_then(Value::as_str) == Some("local");
        let endpoints = host_port(c, "minio.address", "minio.port");
        if !endpoints.is_empty() && !local {
            add(DependencyKind::Minio, "s3", endpoints);
        }
    }
    // message queue
    let mq = lookup(c, "mq.type")
        .or_else(|| lookup(c, "messageQueue"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if operator_external("pulsar") {
        let endpoint = deps["pulsar"]["endpoint"].as_str().map(str::to_string).into_iter().collect();
        add(DependencyKind::Pulsar, "pulsar", endpoint);
    } else if operator_external("kafka") {
        add(DependencyKind::Kafka, "kafka", strings(deps["kafka"].get("brokerList")));
    } else if config.source != ConfigSource::OperatorSpec {
        if mq == "pulsar" && !runs(&[DependencyKind::Pulsar, DependencyKind::PulsarV3]) {
            let endpoints = host_port(c, "pulsar.address", "pulsar.port");
            if !endpoints.is_empty() {
                add(DependencyKind::Pulsar, "pulsar", endpoints);
            }
        }
        if mq == "kafka" && !runs(&[DependencyKind::Kafka]) {
            let endpoints = strings(lookup(c, "kafka.brokerList"));
            if !endpoints.is_empty() {
                add(DependencyKind::Kafka, "kafka", endpoints);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_yaml_overrides_default_yaml_and_timeouts_fall_back() {
        let c = MilvusConfig::from_chart(
            "r-milvus",
            Some("queryNode:\n  port: 21123\ncommon:\n  gracefulStopTimeout: 60\n"),
            Some("queryNode:\n  gracefulStopTimeout: 600\n"),
        )
        .expect("parses");
        assert_eq!(
            c.graceful_stop(&ComponentKind::QueryNode),
            Some(GracefulStop { seconds: 600, key: "queryNode.gracefulStopTimeout".into() })
        );
        assert_eq!(c.config["queryNode"]["port"], 21123);
        assert_eq!(
            c.graceful_stop(&ComponentKind::DataNode),
            Some(GracefulStop { seconds: 1800, key: "default".into() })
        );
        let c = MilvusConfig::from_chart("r", Some("common:\n  gracefulStopTimeout: \"45\"\n"), None)
            .expect("parses");
        assert_eq!(c.graceful_stop(&ComponentKind::StreamingNode).map(|g| g.seconds), Some(45));
        assert_eq!(c.graceful_stop(&ComponentKind::Proxy), None);
        let op = MilvusConfig::from_operator(Some(&json!({"queryNode": {"gracefulStopTimeout": 20}})), None);
        assert_eq!(op.graceful_stop(&ComponentKind::QueryNode).map(|g| g.seconds), Some(20));
    }
}
