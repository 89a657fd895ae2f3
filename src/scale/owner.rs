//! The objects that own replicas: reading one, what it holds now, and the patch that changes it, with
//! optimistic concurrency (the `resourceVersion` that was read travels with the patch).

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::Kube;
use crate::client::read::milvus_resource;
use crate::milvus::{ComponentKind, Milvus};

/// The field manager of this plugin's writes, as `managedFields` name it.
pub const FIELD_MANAGER: &str = "kubectl-milvus";

/// The object that really owns a component's replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Owner {
    /// Helm release: the component's Deployment (`spec.replicas`).
    Deployment { name: String },
    /// Operator release: the `Milvus` object, at `spec.components.<key>.replicas` or a group's `replicas`.
    Milvus {
        name: String,
        /// `queryNode`
        key: String,
        /// Deployment group name, when the target is one.
        group: Option<String>,
        #[serde(skip)]
        component: ComponentKind,
    },
}

impl Owner {
    /// kubectl's `-o name` form: `deployment.apps/x`, `milvus.milvus.io/x`.
    pub fn reference(&self) -> String {
        match self {
            Owner::Deployment { name } => format!("deployment.apps/{name}"),
            Owner::Milvus { name, .. } => format!("milvus.milvus.io/{name}"),
        }
    }

    /// The field that changes, as written in result lines (`queryNode.replicas`).
    pub fn field(&self) -> String {
        match self {
            Owner::Deployment { .. } => "spec.replicas".into(),
            Owner::Milvus { key, group: None, .. } => format!("{key}.replicas"),
            Owner::Milvus { key, group: Some(group), .. } => format!("{key}.groups[{group}].replicas"),
        }
    }

    /// Reads the owner object as the server has it (all its fields, for diffs and list patches).
    pub async fn get(&self, kube: &Kube, namespace: &str) -> Result<Value, kube::Error> {
        let object = match self {
            Owner::Deployment { name } => serde_json::to_value(
                Api::<Deployment>::namespaced(kube.client.clone(), namespace).get(name).await?,
            ),
            Owner::Milvus { name, .. } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(kube.client.clone(), namespace, &milvus_resource());
                serde_json::to_value(api.get(name).await?)
            }
        };
        object.map_err(kube::Error::SerdeError)
    }

    /// The replicas `object` (as read by [`Owner::get`]) holds now. A Deployment without
    /// `spec.replicas` has Kubernetes' default of 1; a `Milvus` object is read by
    /// [`Milvus::replicas`].
    pub fn current(&self, object: &Value) -> Result<i32, String> {
        let unreadable =
            |e: &dyn std::fmt::Display| format!("{} has no readable {}: {e}", self.reference(), self.field());
        match self {
            Owner::Deployment { .. } => {
                let deployment: Deployment =
                    serde_json::from_value(object.clone()).map_err(|e| unreadable(&e))?;
                Ok(deployment.spec.and_then(|s| s.replicas).unwrap_or(1))
            }
            Owner::Milvus { component, group, .. } => {
                let milvus = Milvus::from_value(object.clone()).map_err(|e| unreadable(&e))?;
                milvus.replicas(component, group.as_deref()).map_err(|e| unreadable(&e))
            }
        }
    }

    /// Who last set the replicas field, other than this plugin: the newest `managedFields` entry that
    /// owns it (`kubectl-scale (Update at 2026-12-01T10:00:00Z)`).
    pub fn last_replicas_manager(&self, object: &Value) -> Option<String> {
        let fields = |entry: &Value| -> bool {
            let spec = &entry["fieldsV1"]["f:spec"];
            match self {
                Owner::Deployment { .. } => !spec["f:replicas"].is_null(),
                Owner::Milvus { key, group, .. } => {
                    let component = &spec["f:components"][format!("f:{key}")];
                    !component[if group.is_some() { "f:groups" } else { "f:replicas" }].is_null()
                }
            }
        };
        object["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .filter(|entry| entry["manager"].as_str() != Some(FIELD_MANAGER) && fields(entry))
            .max_by_key(|entry| entry["time"].as_str().unwrap_or_default().to_string())
            .map(|entry| {
                let manager = entry["manager"].as_str().unwrap_or("an unknown manager");
                match (entry["operation"].as_str(), entry["time"].as_str()) {
                    (Some(operation), Some(time)) => format!("{manager} ({operation} at {time})"),
                    _ => manager.to_string(),
                }
            })
    }

    /// The JSON merge patch that sets the replicas, carrying the resourceVersion of `object` so that a
    /// concurrent change fails with a conflict instead of being overwritten.
    pub fn patch_body(&self, object: &Value, replicas: i32) -> Result<Value, String> {
        match self {
            Owner::Deployment { .. } => Ok(json!({
                "metadata": {"resourceVersion": object["metadata"]["resourceVersion"].clone()},
                "spec": {"replicas": replicas},
            })),
            Owner::Milvus { component, group, .. } => {
                Milvus::replicas_patch(object, component, group.as_deref(), replicas)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Sends the merge patch (with `dryRun=All` for a server dry run) and returns the object the server
    /// answered.
    pub async fn patch(
        &self,
        kube: &Kube,
        namespace: &str,
        body: &Value,
        server_dry_run: bool,
    ) -> Result<Value, kube::Error> {
        let params = PatchParams {
            dry_run: server_dry_run,
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let object = match self {
            Owner::Deployment { name } => {
                let api = Api::<Deployment>::namespaced(kube.client.clone(), namespace);
                serde_json::to_value(api.patch(name, &params, &Patch::Merge(body)).await?)
            }
            Owner::Milvus { name, .. } => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(kube.client.clone(), namespace, &milvus_resource());
                serde_json::to_value(api.patch(name, &params, &Patch::Merge(body)).await?)
            }
        };
        object.map_err(kube::Error::SerdeError)
    }
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// Apply the change (the default).
    #[default]
    #[value(alias = "false")]
    None,
    /// Compute and print; send no mutating request.
    #[value(alias = "true")]
    Client,
    /// Send the request with dryRun=All: the server validates and admits it but stores nothing.
    Server,
}

impl DryRun {
    /// The suffix kubectl appends to success lines.
    pub fn suffix(self) -> &'static str {
        match self {
            DryRun::None => "",
            DryRun::Client => " (client dry run)",
            DryRun::Server => " (server dry run)",
        }
    }
}

/// True for a 409 Conflict (the object changed since it was read).
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_carry_the_resource_version_and_only_the_replicas() {
        let deployment = json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 1}});
        let owner = Owner::Deployment { name: "q".into() };
        assert_eq!(
            owner.patch_body(&deployment, 3),
            Ok(json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 3}}))
        );
        assert_eq!(owner.current(&deployment), Ok(1));
        assert_eq!(owner.current(&json!({"metadata": {}, "spec": {}})), Ok(1), "Kubernetes' default");

        let milvus = json!({"metadata": {"resourceVersion": "7"}, "spec": {"components": {"dataNode": {"groups": [
            {"name": "a", "replicas": 1}, {"name": "b", "replicas": 2}, {"name": "c"}]}}}});
        let group = |g: &str| Owner::Milvus {
            name: "m".into(),
            key: "dataNode".into(),
            group: Some(g.into()),
            component: ComponentKind::DataNode,
        };
        assert_eq!(group("b").current(&milvus), Ok(2));
        assert_eq!(group("c").current(&milvus), Ok(1), "a group entry without replicas has the default");
        let body = group("b").patch_body(&milvus, 4).expect("a patch");
        assert_eq!(
            body["spec"]["components"]["dataNode"]["groups"],
            json!([{"name": "a", "replicas": 1}, {"name": "b", "replicas": 4}, {"name": "c"}])
        );
        let mut merged = milvus.clone();
        json_patch::merge(&mut merged, &body);
        assert_eq!(group("b").current(&merged), Ok(4));
    }
}
