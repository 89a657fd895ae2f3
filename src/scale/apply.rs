//! Reading and changing the owner of a component's replicas, with optimistic concurrency.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::plan::Owner;
use crate::client::Kube;
use crate::client::read::milvus_resource;

/// `--dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DryRun {
    /// Apply the change (the default).
    #[default]
    None,
    /// Compute and print; send no mutating request.
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

/// Reads the owner object, as JSON.
pub async fn get(kube: &Kube, namespace: &str, owner: &Owner) -> Result<Value, kube::Error> {
    match owner {
        Owner::Deployment { name } => {
            let deployment = Api::<Deployment>::namespaced(kube.client.clone(), namespace).get(name).await?;
            Ok(serde_json::to_value(deployment).unwrap_or_default())
        }
        Owner::Milvus { name, .. } => {
            let api: Api<DynamicObject> =
                Api::namespaced_with(kube.client.clone(), namespace, &milvus_resource());
            Ok(serde_json::to_value(api.get(name).await?).unwrap_or_default())
        }
    }
}

/// The replicas the owner holds now.
pub fn current(owner: &Owner, object: &Value) -> Option<i32> {
    let value = match owner {
        Owner::Deployment { .. } => object["spec"]["replicas"].as_i64().or(Some(1)),
        Owner::Milvus { key, group: None, .. } => {
            object["spec"]["components"][key]["replicas"].as_i64().or(Some(1))
        }
        Owner::Milvus { key, group: Some(group), .. } => {
            group_entry(object, key, group)?["replicas"].as_i64()
        }
    };
    value.and_then(|v| i32::try_from(v).ok())
}

fn group_entry<'a>(object: &'a Value, key: &str, group: &str) -> Option<&'a Value> {
    object["spec"]["components"][key]["groups"].as_array()?.iter().find(|g| g["name"].as_str() == Some(group))
}

/// The JSON merge patch that sets the replicas, carrying the resourceVersion that was read so that a
/// concurrent change fails with a conflict instead of being overwritten.
pub fn patch_body(owner: &Owner, object: &Value, replicas: i32) -> Value {
    let resource_version = object["metadata"]["resourceVersion"].clone();
    let spec = match owner {
        Owner::Deployment { .. } => json!({"replicas": replicas}),
        Owner::Milvus { key, group: None, .. } => json!({"components": {key: {"replicas": replicas}}}),
        Owner::Milvus { key, group: Some(group), .. } => {
            // A merge patch replaces lists whole: send every group, with this one changed.
            let mut groups = object["spec"]["components"][key]["groups"].clone();
            if let Some(list) = groups.as_array_mut() {
                for entry in list.iter_mut().filter(|g| g["name"].as_str() == Some(group.as_str())) {
                    entry["replicas"] = json!(replicas);
                }
            }
            json!({"components": {key: {"groups": groups}}})
        }
    };
    json!({"metadata": {"resourceVersion": resource_version}, "spec": spec})
}

/// RFC 7386 JSON merge patch, for the client-side dry run's merged object.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Sends the merge patch (with `dryRun=All` for a server dry run) and returns the object the server answered.
pub async fn patch(
    kube: &Kube,
    namespace: &str,
    owner: &Owner,
    body: &Value,
    server_dry_run: bool,
) -> Result<Value, kube::Error> {
    let params = PatchParams { dry_run: server_dry_run, ..PatchParams::default() };
    match owner {
        Owner::Deployment { name } => {
            let api = Api::<Deployment>::namespaced(kube.client.clone(), namespace);
            Ok(serde_json::to_value(api.patch(name, &params, &Patch::Merge(body)).await?).unwrap_or_default())
        }
        Owner::Milvus { name, .. } => {
            let api: Api<DynamicObject> =
                Api::namespaced_with(kube.client.clone(), namespace, &milvus_resource());
            Ok(serde_json::to_value(api.patch(name, &params, &Patch::Merge(body)).await?).unwrap_or_default())
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
            patch_body(&owner, &deployment, 3),
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"replicas": 3}})
        );
        assert_eq!(current(&owner, &deployment), Some(1));

        let milvus = json!({"metadata": {"resourceVersion": "7"}, "spec": {"components": {"dataNode": {"groups": [
            {"name": "a", "replicas": 1}, {"name": "b", "replicas": 2}]}}}});
        let group = Owner::Milvus { name: "m".into(), key: "dataNode".into(), group: Some("b".into()) };
        assert_eq!(current(&group, &milvus), Some(2));
        let body = patch_body(&group, &milvus, 4);
        assert_eq!(
            body["spec"]["components"]["dataNode"]["groups"],
            json!([{"name": "a", "replicas": 1}, {"name": "b", "replicas": 4}])
        );
        let mut merged = milvus.clone();
        merge(&mut merged, &body);
        assert_eq!(current(&group, &merged), Some(4));
    }
}
