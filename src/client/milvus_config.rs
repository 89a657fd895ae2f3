//! Reading a release's Milvus configuration: the chart's ConfigMap (`<fullname>`, whose
//! `default.yaml` the chart renders from its values and whose `user.yaml` holds the user's
//! overrides), or the operator's `Milvus` object (`spec.config`, `spec.dependencies`, already read).

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::client::Kube;
use crate::milvus::config::MilvusConfig;
use crate::milvus::{ManagedBy, Milvus, Release};

/// The chart's fullname, from a component workload's name (`<fullname>-<component>[-<group>]`).
pub fn chart_fullname(release: &Release) -> Option<String> {
    release.components.iter().find_map(|c| {
        let suffix = format!("-{}", c.kind.label());
        c.workloads.iter().find_map(|w| {
            let base = match &c.group {
                Some(g) => w.name.strip_suffix(&format!("-{g}")).unwrap_or(&w.name),
                None => &w.name,
            };
            base.strip_suffix(&suffix).map(str::to_string)
        })
    })
}

/// The release's configuration; `Err` is a warning saying what could not be read.
pub async fn read(
    kube: &Kube,
    release: &Release,
    milvus: Option<&Milvus>,
) -> Result<Option<MilvusConfig>, String> {
    if let ManagedBy::Operator { .. } = release.managed_by {
        return Ok(
            milvus.map(|m| MilvusConfig::from_operator(m.spec.config.as_ref(), m.spec.dependencies.as_ref()))
        );
    }
    let Some(name) = chart_fullname(release) else { return Ok(None) };
    let api: Api<ConfigMap> = Api::namespaced(kube.client.clone(), &release.namespace);
    match api.get_opt(&name).await {
        Ok(Some(cm)) => {
            let data = cm.data.unwrap_or_default();
            MilvusConfig::from_chart(
                &name,
                data.get("default.yaml").map(String::as_str),
                data.get("user.yaml").map(String::as_str),
            )
            .map(Some)
        }
        Ok(None) => Ok(None),
        Err(kube::Error::Api(e)) if e.code == 403 => Err(format!(
            "cannot get configmaps in the namespace \"{}\": the release's Milvus configuration ({name}) is not read",
            release.namespace
        )),
        Err(e) => {
            Err(format!("the release's Milvus configuration (ConfigMap {name}) could not be read: {e}"))
        }
    }
}
