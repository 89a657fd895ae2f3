//! Reading the Argo CD Application or Flux HelmRelease that applies a release: one GET, optional.
//! What it says is parsed by the model ([`crate::milvus::owners::Details`]); a refusal or absence is
//! named without details.

use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

use crate::client::Kube;
use crate::milvus::owners::{Details, Tool, Tracker};

/// Why the object could not be read: given to the user in a few words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitOpsError {
    #[error("forbidden to get {resource} in namespace {namespace}")]
    Forbidden { resource: &'static str, namespace: String },
    #[error("{resource} {namespace}/{name} not found")]
    NotFound { resource: &'static str, namespace: String, name: String },
    #[error("reading {resource} failed: {message}")]
    Failed { resource: &'static str, message: String },
}

/// `argoproj.io/v1alpha1` `applications`, or `helm.toolkit.fluxcd.io/v2` `helmreleases`.
pub fn api_resource(tool: Tool) -> ApiResource {
    match tool {
        Tool::ArgoCd => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
            "applications",
        ),
        Tool::Flux => ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
            "helmreleases",
        ),
    }
}

/// Reads the object `tracker` names (one GET) and what it says of replicas.
pub async fn read(kube: &Kube, tracker: &Tracker) -> Result<Details, GitOpsError> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(kube.client.clone(), &tracker.namespace, &api_resource(tracker.tool));
    let resource = tracker.resource();
    match api.get(&tracker.name).await {
        Ok(object) => {
            let value = serde_json::to_value(object)
                .map_err(|e| GitOpsError::Failed { resource, message: e.to_string() })?;
            Ok(Details::from_value(tracker.tool, &value))
        }
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 401 => {
            Err(GitOpsError::Forbidden { resource, namespace: tracker.namespace.clone() })
        }
        // Also when the CRD is not installed: nothing of that name can be read there.
        Err(kube::Error::Api(status)) if status.code == 404 => Err(GitOpsError::NotFound {
            resource,
            namespace: tracker.namespace.clone(),
            name: tracker.name.clone(),
        }),
        Err(other) => Err(GitOpsError::Failed { resource, message: other.to_string() }),
    }
}
