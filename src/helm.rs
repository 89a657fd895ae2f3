//! What the Helm release records: the latest deployed release Secret
//! (`sh.helm.release.v1.<release>.v<N>`, `data.release` = base64(gzip(JSON))).
//!
//! Only the chart's name and version and single replica values are taken out of it; nothing of the
//! Secret's contents is ever printed or logged.

use std::io::Read;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde_json::Value;

use crate::client::Kube;

/// The label selector of a release's deployed revision.
pub fn deployed_selector(release: &str) -> String {
    format!("owner=helm,name={release},status=deployed")
}

/// Reads the deployed revision of `release` (one label-selected list of Secrets). `Ok(None)` when there is
/// none (an operator release); `Err` with the server's message when it cannot be read (e.g. forbidden).
pub async fn read_deployed(
    kube: &Kube,
    namespace: &str,
    release: &str,
) -> Result<Option<HelmRelease>, String> {
    let api: Api<Secret> = Api::namespaced(kube.client.clone(), namespace);
    match api.list(&ListParams::default().labels(&deployed_selector(release))).await {
        Ok(list) => HelmRelease::latest(&list.items),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(other) => Err(other.to_string()),
    }
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
}

impl HelmRelease {
    /// The newest deployed revision among `secrets` (all of one release).
    pub fn latest(secrets: &[Secret]) -> Result<Option<HelmRelease>, String> {
        let newest = secrets
            .iter()
            .filter(|s| s.type_.as_deref() == Some("helm.sh/release.v1"))
            .max_by_key(|s| revision(s));
        newest.map(HelmRelease::decode).transpose()
    }

    pub fn decode(secret: &Secret) -> Result<HelmRelease, String> {
        let raw = secret
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .ok_or("the release Secret has no data.release")?;
        let gzipped = base64::engine::general_purpose::STANDARD
            .decode(raw.0.trim_ascii())
            .map_err(|e| format!("data.release is not base64: {e}"))?;
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(gzipped.as_slice())
            .read_to_end(&mut json)
            .map_err(|e| format!("data.release is not gzip: {e}"))?;
        let release: Value =
            serde_json::from_slice(&json).map_err(|e| format!("data.release is not JSON: {e}"))?;
        let metadata = &release["chart"]["metadata"];
        Ok(HelmRelease {
            revision: release["version"].as_i64().unwrap_or_else(|| revision(secret)),
            chart_name: metadata["name"].as_str().unwrap_or("milvus").to_string(),
            chart_version: metadata["version"].as_str().unwrap_or_default().to_string(),
            config: release["config"].clone(),
            defaults: release["chart"]["values"].clone(),
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

fn revision(secret: &Secret) -> i64 {
    secret.metadata.labels.as_ref().and_then(|l| l.get("version")).and_then(|v| v.parse().ok()).unwrap_or(0)
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

    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;

    fn secret(version: i64, release: &Value) -> Secret {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(release.to_string().as_bytes()).expect("gzip");
        let encoded = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        let mut secret = Secret { type_: Some("helm.sh/release.v1".into()), ..Default::default() };
        secret.metadata.labels = Some(BTreeMap::from([("version".to_string(), version.to_string())]));
        secret.data = Some(BTreeMap::from([("release".to_string(), ByteString(encoded.into_bytes()))]));
        secret
    }

    #[test]
    fn the_latest_revision_decides_and_user_values_win_over_defaults() {
        let chart = json!({"metadata": {"name": "milvus", "version": "5.0.19"}, "values": {"queryNode": {"replicas": 1}, "dataNode": {"replicas": 1}}});
        let old = secret(1, &json!({"version": 1, "chart": chart, "config": {"queryNode": {"replicas": 7}}}));
        let new = secret(2, &json!({"version": 2, "chart": chart, "config": {"dataNode": {"replicas": 2}}}));
        let release = HelmRelease::latest(&[old, new]).expect("decodes").expect("found");
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
        let mut bad = secret(1, &json!({}));
        bad.data = Some(BTreeMap::from([("release".to_string(), ByteString(b"%%%".to_vec()))]));
        assert!(HelmRelease::latest(&[bad]).is_err());
    }
}
