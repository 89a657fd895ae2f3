//! Reading the objects the Milvus model needs: one list per kind, all issued concurrently.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde::de::DeserializeOwned;

use super::Kube;
use crate::error::Error;
use crate::milvus::{Inventory, Milvus};

/// Where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    AllNamespaces,
}

impl Scope {
    pub fn describe(&self) -> String {
        match self {
            Scope::Namespace(ns) => format!("in the namespace \"{ns}\""),
            Scope::AllNamespaces => "at the cluster scope".into(),
        }
    }
}

/// Which optional kinds to read besides Deployments and StatefulSets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kinds {
    pub pods: bool,
    pub hpas: bool,
    pub milvuses: bool,
}

/// Something that went wrong while reading but does not stop the command (printed at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// The Milvus CRD is not installed: there can be no operator releases (worth saying in `list` only).
    NoMilvusCrd,
    /// A kind could not be read (forbidden, unauthorised, not served).
    Unreadable,
    /// A live value differs from what the Helm release records (the next `helm upgrade` restores it).
    HelmDrift,
}

pub struct Reading {
    pub inventory: Inventory,
    pub notes: Vec<Note>,
}

pub fn milvus_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("milvus.io", "v1beta1", "Milvus"), "milvuses")
}

fn api<K>(client: &Client, scope: &Scope) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        Scope::AllNamespaces => Api::all(client.clone()),
    }
}

async fn list<K>(client: &Client, scope: &Scope) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(api::<K>(client, scope).list(&ListParams::default()).await?.items)
}

/// Lists `Milvus` objects through the dynamic API, so that one object the plugin cannot read (a field of
/// an unexpected type) leaves only that object out; its release is then shown as one whose `Milvus`
/// object could not be read.
async fn list_milvuses(client: &Client, scope: &Scope) -> Result<Vec<Milvus>, kube::Error> {
    let resource = milvus_resource();
    let api: Api<DynamicObject> = match scope {
        Scope::Namespace(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        Scope::AllNamespaces => Api::all_with(client.clone(), &resource),
    };
    let items = api.list(&ListParams::default()).await?.items;
    Ok(items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok().and_then(|v| Milvus::from_value(v).ok()))
        .collect())
}

/// Reads Deployments and StatefulSets (required) and the optional kinds, concurrently: one request each.
/// A failure to read an optional kind becomes a [`Note`]; a failure to reach the server is an error.
pub async fn read(kube: &Kube, scope: &Scope, kinds: Kinds) -> Result<Reading, Error> {
    let client = &kube.client;
    let (deployments, stateful_sets, pods, hpas, milvuses) = futures::join!(
        list::<Deployment>(client, scope),
        list::<StatefulSet>(client, scope),
        optional(kinds.pods, list::<Pod>(client, scope)),
        optional(kinds.hpas, list::<HorizontalPodAutoscaler>(client, scope)),
        optional(kinds.milvuses, list_milvuses(client, scope)),
    );
    let fail = |e| Error::api(e, &kube.server);
    let mut notes = Vec::new();
    let inventory = Inventory {
        deployments: deployments.map_err(fail)?,
        stateful_sets: stateful_sets.map_err(fail)?,
        pods: soft(pods, "pods", scope, &mut notes).map_err(fail)?,
        hpas: soft(hpas, "horizontalpodautoscalers.autoscaling", scope, &mut notes).map_err(fail)?,
        milvuses: soft(milvuses, "milvuses.milvus.io", scope, &mut notes).map_err(fail)?,
    };
    Ok(Reading { inventory, notes })
}

async fn optional<T>(
    wanted: bool,
    request: impl std::future::Future<Output = Result<Vec<T>, kube::Error>>,
) -> Result<Vec<T>, kube::Error> {
    if wanted { request.await } else { Ok(Vec::new()) }
}

/// Turns a refusal from the server (forbidden, absent resource type) into a note; other errors stay errors.
fn soft<T>(
    result: Result<Vec<T>, kube::Error>,
    resource: &str,
    scope: &Scope,
    notes: &mut Vec<Note>,
) -> Result<Vec<T>, kube::Error> {
    match result {
        Ok(items) => Ok(items),
        Err(kube::Error::Api(status)) if status.code == 404 && resource == "milvuses.milvus.io" => {
            notes.push(Note {
                kind: NoteKind::NoMilvusCrd,
                message: "the Milvus Operator CRD (milvuses.milvus.io) is not installed: showing Helm releases only"
                    .into(),
            });
            Ok(Vec::new())
        }
        Err(kube::Error::Api(status)) if status.code == 403 || status.code == 401 || status.code == 404 => {
            let consequence = match resource {
                "milvuses.milvus.io" => "Milvus Operator releases are not shown",
                "pods" => "pod health and problems are not shown",
                _ => "autoscaler bounds are not shown",
            };
            notes.push(Note {
                kind: NoteKind::Unreadable,
                message: format!(
                    "cannot list {resource} {}: {consequence} ({})",
                    scope.describe(),
                    status.message
                ),
            });
            Ok(Vec::new())
        }
        Err(other) => Err(other),
    }
}

/// The note for a refusal to read `resource` (forbidden, absent resource type), by the same rules as
/// [`read`] (`Some`); any other error is given back. Used by the watches of [`super::follow`].
pub fn soft_note(error: kube::Error, resource: &str, scope: &Scope) -> Result<Option<Note>, kube::Error> {
    let mut notes = Vec::new();
    soft::<()>(Err(error), resource, scope, &mut notes)?;
    Ok(notes.pop())
}
