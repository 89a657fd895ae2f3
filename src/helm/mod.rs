//! Helm's record of a release: reading what the deployed revision records
//! (`sh.helm.release.v1.<release>.v<N>`, `data.release` = base64(gzip(JSON))), and writing a scale
//! into it as a new revision ([`record`]).
//!
//! Only the chart's name and version and single values are taken out of it; nothing of the
//! record's contents is ever printed or logged.

pub mod codec;
pub mod record;
pub mod revision;
pub mod storage;

use serde_json::Value;

use crate::client::Kube;
use codec::ReleaseDoc;
use storage::{Driver, Storage, Stored};

/// The label selector of a release's deployed revision.
pub fn deployed_selector(release: &str) -> String {
    format!("owner=helm,name={release},status=deployed")
}

/// The server's message of a failed request (`secrets "x" is forbidden: …`), or the error.
pub fn message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Reads the deployed revision of `release` (one label-selected list of the storage `HELM_DRIVER`
/// names). `Ok(None)` when there is none (an operator release); `Err` with the server's message when
/// it cannot be read (e.g. forbidden).
pub async fn read_deployed(
    kube: &Kube,
    namespace: &str,
    release: &str,
) -> Result<Option<HelmRelease>, String> {
    let driver = Driver::from_env().map_err(|e| e.to_string())?;
    let storage = Storage { kube, namespace, driver };
    let revisions = storage.deployed(release).await.map_err(|e| message(&e))?;
    HelmRelease::latest_stored(&revisions)
}

/// Every revision of `release` (for writing a new one), with the deployed one decoded.
#[derive(Debug)]
pub struct History {
    pub driver: Driver,
    pub revisions: Vec<Stored>,
    pub deployed: Option<HelmRelease>,
}

impl History {
    /// Whether the deployed revision's manifest has the object `kind`/`name` (the chart renders it).
    pub fn deployed_renders(&self, kind: &str, name: &str) -> bool {
        self.deployed.as_ref().is_some_and(|d| revision::renders(&d.manifest, kind, name))
    }
}

/// Reads every revision of `release` (one label-selected list, as Helm's own query).
pub async fn read_history(kube: &Kube, namespace: &str, release: &str) -> Result<History, String> {
    let driver = Driver::from_env().map_err(|e| e.to_string())?;
    let storage = Storage { kube, namespace, driver };
    let revisions = storage.history(release).await.map_err(|e| message(&e))?;
    let deployed = revisions
        .iter()
        .filter(|s| s.status() == revision::status::DEPLOYED)
        .max_by_key(|s| s.version())
        .map(HelmRelease::decode)
        .transpose()?;
    Ok(History { driver, revisions, deployed })
}

/// The parts of a Helm release the plugin needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmRelease {
    pub revision: i64,
    pub chart_name: String,
    pub chart_version: String,
    /// User-supplied values (`helm install --set …`, `-f …`).
    config: Value,
    /// The chart's defaults.
    defaults: Value,
    /// The rendered manifest Helm applied.
    manifest: String,
}

impl HelmRelease {
    /// The newest revision among `revisions` (all deployed revisions of one release).
    pub fn latest_stored(revisions: &[Stored]) -> Result<Option<HelmRelease>, String> {
        revisions.iter().max_by_key(|s| s.version()).map(HelmRelease::decode).transpose()
    }

    pub fn decode(stored: &Stored) -> Result<HelmRelease, String> {
        let doc = ReleaseDoc::decode(&stored.data).map_err(|e| e.to_string())?;
        let chart: Value = doc.get("chart").map_err(|e| e.to_string())?.unwrap_or_default();
        let metadata = &chart["metadata"];
        Ok(HelmRelease {
            revision: doc.get::<i64>("version").ok().flatten().unwrap_or_else(|| stored.version()),
            chart_name: metadata["name"].as_str().unwrap_or("milvus").to_string(),
            chart_version: metadata["version"].as_str().unwrap_or_default().to_string(),
            config: doc.get("config").map_err(|e| e.to_string())?.unwrap_or_default(),
            defaults: chart["values"].clone(),
            manifest: doc.get("manifest").map_err(|e| e.to_string())?.unwrap_or_default(),
        })
    }

    /// The value recorded for a dotted key (`queryNode.replicas`): the user's, else the chart default.
    pub fn recorded_replicas(&self, key: &str) -> Option<i64> {
        lookup(&self.config, key).or_else(|| lookup(&self.defaults, key)).and_then(Value::as_i64)
    }

    /// The command that makes a replica count permanent in the release.
    pub fn upgrade_command(&self, release: &str, namespace: &str, settings: &[(String, i32)]) -> String {
        let sets: Vec<String> = settings.iter().map(|(key, value)| format!("--set {key}={value}")).collect();
        let version = if self.chart_version.is_empty() {
            String::new()
        } else {
            format!(" --version {}", self.chart_version)
        };
        format!(
            "helm upgrade {release} milvus/{}{version} -n {namespace} --reuse-values {}",
            self.chart_name,
            sets.join(" ")
        )
    }
}

fn lookup<'a>(values: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(values, |v, part| v.get(part)).filter(|v| !v.is_null())
}

/// What the next `helm upgrade` does to a replica count changed outside Helm: a client-side upgrade
/// (Helm 3, Helm 4 with `--server-side=false`) writes the recorded value back; a server-side apply
/// (Helm 4's default) fails with a conflict on the field until `--force-conflicts` takes it over.
pub fn next_upgrade(server_side_apply: bool) -> &'static str {
    if server_side_apply {
        "fails with a conflict on spec.replicas (Helm applies server-side), and with --force-conflicts sets it back"
    } else {
        "sets it back"
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use base64::Engine;
    use serde_json::json;

    use super::*;

    fn stored(version: i64, release: &Value) -> Stored {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release.to_string().as_bytes()).expect("gzip");
        let encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        Stored {
            name: storage::object_name("my-release", version),
            labels: BTreeMap::from([("version".to_string(), version.to_string())]),
            resource_version: None,
            data: encoded.into_bytes(),
        }
    }

    #[test]
    fn the_latest_revision_decides_and_user_values_win_over_defaults() {
        let chart = json!({"metadata": {"name": "milvus", "version": "5.0.19"}, "values": {"queryNode": {"replicas": 1}, "dataNode": {"replicas": 1}}});
        let old = stored(1, &json!({"version": 1, "chart": chart, "config": {"queryNode": {"replicas": 7}}}));
        let new = stored(2, &json!({"version": 2, "chart": chart, "config": {"dataNode": {"replicas": 2}}}));
        let release = HelmRelease::latest_stored(&[old, new]).expect("decodes").expect("found");
        assert_eq!(release.revision, 2);
        assert_eq!(release.recorded_replicas("queryNode.replicas"), Some(1));
        assert_eq!(release.recorded_replicas("dataNode.replicas"), Some(2));
        assert_eq!(release.recorded_replicas("proxy.replicas"), None);
        assert_eq!(
            release.upgrade_command("my-release", "default", &[("queryNode.replicas".into(), 3)]),
            "helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values --set queryNode.replicas=3"
        );
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut bad = stored(1, &json!({}));
        bad.data = b"%%%".to_vec();
        assert!(HelmRelease::latest_stored(&[bad]).is_err());
    }
}
