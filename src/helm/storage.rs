//! Where Helm keeps a release's revisions: one Secret (Helm's default) or ConfigMap
//! (`HELM_DRIVER=configmap`) per revision, named `sh.helm.release.v1.<release>.v<N>`, labelled
//! `owner=helm,name=<release>,status=<status>,version=<N>`, with `data.release` holding the encoded
//! release ([`super::codec`]). Reading, creating, replacing (with the `resourceVersion` that was read)
//! and deleting them; the contents never reach a log or the terminal.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};

use crate::client::Kube;

/// The Secret type Helm 3 and 4 give release Secrets.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";

/// Helm's storage driver, from `HELM_DRIVER` as Helm reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Driver {
    Secret,
    ConfigMap,
}

/// A `HELM_DRIVER` whose releases are not in the cluster's Secrets or ConfigMaps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HELM_DRIVER={0}: the release's record is not kept in Secrets or ConfigMaps of the cluster")]
pub struct UnsupportedDriver(pub String);

impl Driver {
    /// `HELM_DRIVER` as Helm reads it: empty, `secret` or `secrets` for Secrets, `configmap` or
    /// `configmaps` for ConfigMaps; `memory` and `sql` keep no record this plugin can reach.
    pub fn from_env() -> Result<Driver, UnsupportedDriver> {
        Driver::parse(&std::env::var("HELM_DRIVER").unwrap_or_default())
    }

    pub fn parse(value: &str) -> Result<Driver, UnsupportedDriver> {
        match value {
            "" | "secret" | "secrets" => Ok(Driver::Secret),
            "configmap" | "configmaps" => Ok(Driver::ConfigMap),
            other => Err(UnsupportedDriver(other.to_string())),
        }
    }

    /// `secret`, `configmap`: as kubectl names the resource.
    pub fn resource(self) -> &'static str {
        match self {
            Driver::Secret => "secret",
            Driver::ConfigMap => "configmap",
        }
    }
}

/// The name of revision `version` of `release`.
pub fn object_name(release: &str, version: i64) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// The label selector of every revision of `release` (Helm's own query).
pub fn history_selector(release: &str) -> String {
    format!("owner=helm,name={release}")
}

/// One stored revision.
#[derive(Clone, PartialEq)]
pub struct Stored {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub resource_version: Option<String>,
    /// `data.release`, as stored (base64 text).
    pub data: Vec<u8>,
}

// The data is never printed, not even in debug output.
impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stored")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("resource_version", &self.resource_version)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

impl Stored {
    /// The `version` label (0 when missing or not a number).
    pub fn version(&self) -> i64 {
        self.labels.get("version").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    /// The `status` label.
    pub fn status(&self) -> &str {
        self.labels.get("status").map(String::as_str).unwrap_or_default()
    }

    fn from_secret(secret: Secret) -> Option<Stored> {
        if secret.type_.as_deref() != Some(SECRET_TYPE) {
            return None;
        }
        let data = secret.data?.remove("release")?.0;
        Some(Stored {
            name: secret.metadata.name?,
            labels: secret.metadata.labels.unwrap_or_default(),
            resource_version: secret.metadata.resource_version,
            data,
        })
    }

    fn from_config_map(map: ConfigMap) -> Option<Stored> {
        let data = map.data?.remove("release")?.into_bytes();
        Some(Stored {
            name: map.metadata.name?,
            labels: map.metadata.labels.unwrap_or_default(),
            resource_version: map.metadata.resource_version,
            data,
        })
    }

    fn metadata(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            labels: Some(self.labels.clone()),
            resource_version: self.resource_version.clone(),
            ..ObjectMeta::default()
        }
    }

    fn secret(&self) -> Secret {
        Secret {
            metadata: self.metadata(),
            type_: Some(SECRET_TYPE.to_string()),
            data: Some(BTreeMap::from([("release".to_string(), ByteString(self.data.clone()))])),
            ..Secret::default()
        }
    }

    fn config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.metadata(),
            data: Some(BTreeMap::from([(
                "release".to_string(),
                String::from_utf8_lossy(&self.data).into_owned(),
            )])),
            ..ConfigMap::default()
        }
    }
}

/// The revisions of one release in one namespace, through one driver.
pub struct Storage<'a> {
    pub kube: &'a Kube,
    pub namespace: &'a str,
    pub driver: Driver,
}

impl Storage<'_> {
    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.kube.client.clone(), self.namespace)
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.kube.client.clone(), self.namespace)
    }

    /// Every stored revision of `release` (one label-selected list), oldest first.
    pub async fn history(&self, release: &str) -> Result<Vec<Stored>, kube::Error> {
        self.list(&history_selector(release)).await
    }

    /// The deployed revisions of `release` (normally one).
    pub async fn deployed(&self, release: &str) -> Result<Vec<Stored>, kube::Error> {
        self.list(&super::deployed_selector(release)).await
    }

    async fn list(&self, selector: &str) -> Result<Vec<Stored>, kube::Error> {
        let params = ListParams::default().labels(selector);
        let mut revisions: Vec<Stored> = match self.driver {
            Driver::Secret => self
                .secrets()
                .list(&params)
                .await?
                .items
                .into_iter()
                .filter_map(Stored::from_secret)
                .collect(),
            Driver::ConfigMap => self
                .config_maps()
                .list(&params)
                .await?
                .items
                .into_iter()
                .filter_map(Stored::from_config_map)
                .collect(),
        };
        revisions.sort_by_key(Stored::version);
        Ok(revisions)
    }

    /// Creates a revision (fails with 409 AlreadyExists when that revision exists); returns it as stored.
    pub async fn create(&self, stored: &Stored, dry_run: bool) -> Result<Stored, kube::Error> {
        let params = PostParams { dry_run, field_manager: Some(crate::scale::owner::FIELD_MANAGER.into()) };
        let mut created = stored.clone();
        created.resource_version = None;
        let version = match self.driver {
            Driver::Secret => {
                self.secrets().create(&params, &created.secret()).await?.metadata.resource_version
            }
            Driver::ConfigMap => {
                self.config_maps().create(&params, &created.config_map()).await?.metadata.resource_version
            }
        };
        created.resource_version = version;
        Ok(created)
    }

    /// Replaces a revision; its `resourceVersion` makes a concurrent change fail with 409 Conflict.
    pub async fn replace(&self, stored: &Stored, dry_run: bool) -> Result<Stored, kube::Error> {
        let params = PostParams { dry_run, field_manager: Some(crate::scale::owner::FIELD_MANAGER.into()) };
        let version = match self.driver {
            Driver::Secret => {
                self.secrets()
                    .replace(&stored.name, &params, &stored.secret())
                    .await?
                    .metadata
                    .resource_version
            }
            Driver::ConfigMap => {
                self.config_maps()
                    .replace(&stored.name, &params, &stored.config_map())
                    .await?
                    .metadata
                    .resource_version
            }
        };
        Ok(Stored { resource_version: version, ..stored.clone() })
    }

    /// Deletes a revision as it was read (a precondition on its `resourceVersion`).
    pub async fn delete(&self, stored: &Stored) -> Result<(), kube::Error> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: stored.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match self.driver {
            Driver::Secret => self.secrets().delete(&stored.name, &params).await.map(|_| ()),
            Driver::ConfigMap => self.config_maps().delete(&stored.name, &params).await.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers_are_read_as_helm_reads_them() {
        assert_eq!(Driver::parse(""), Ok(Driver::Secret));
        assert_eq!(Driver::parse("secrets"), Ok(Driver::Secret));
        assert_eq!(Driver::parse("configmap"), Ok(Driver::ConfigMap));
        assert_eq!(Driver::parse("sql"), Err(UnsupportedDriver("sql".into())));
    }

    #[test]
    fn debug_output_never_shows_the_data() {
        let stored = Stored {
            name: object_name("r", 2),
            labels: BTreeMap::from([("version".into(), "2".into())]),
            resource_version: None,
            data: b"H4sIAAAAsecret".to_vec(),
        };
        let debug = format!("{stored:?}");
        assert!(!debug.contains("H4sI"), "{debug}");
        assert!(debug.contains("<14 bytes>"), "{debug}");
        assert_eq!(stored.version(), 2);
    }
}
