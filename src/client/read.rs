//! Reading the objects the Milvus model needs: one list per kind (pods: two label-selected lists when
//! the releases are known), all issued concurrently, each read page by page.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod as KubePod;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde::de::DeserializeOwned;

use super::follow::{Kind, Query};
use super::slim::{SlimDeployment, SlimStatefulSet};
use super::{Kube, page};
use crate::error::Error;
use crate::milvus::{Inventory, Milvus, Pod};

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
    /// Deployments decoded whole rather than slim, and `Milvus` objects kept whole besides typed
    /// ([`Milvus::whole`]): `scale` shows a dry run's diff of the object as read, without reading it
    /// again.
    pub whole_owners: bool,
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
    /// Each list that was read, as the [`Query`] that follows it, with the list's `resourceVersion`: a
    /// watch of that query from there sees every change after this reading. A kind not read (refused,
    /// not asked for) has none.
    pub listed: Vec<(Query, String)>,
}

pub fn milvus_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("milvus.io", "v1beta1", "Milvus"), "milvuses")
}

impl Scope {
    fn namespace(&self) -> Option<&str> {
        match self {
            Scope::Namespace(ns) => Some(ns),
            Scope::AllNamespaces => None,
        }
    }
}

/// Objects, and the `resourceVersion` their list was read at.
type Listed<T> = (Vec<T>, String);

/// Objects, and the `resourceVersion` of each list they were read in, by the [`Query`] that follows it.
type Versioned<T> = (Vec<T>, Vec<(Query, String)>);

async fn list<K>(kube: &Kube, scope: &Scope) -> Result<Listed<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + DeserializeOwned
        + Send
        + 'static,
{
    list_pages(&kube.client, kube.chunk_size, &K::url_path(&(), scope.namespace()), None).await
}

/// Objects of kind `K` read as their slim form `S` (see [`super::slim`]).
async fn list_slim<K, S>(kube: &Kube, scope: &Scope) -> Result<Listed<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()> + From<S>,
    S: DeserializeOwned + Send + 'static,
{
    let url = K::url_path(&(), scope.namespace());
    let (items, version) = list_pages::<S>(&kube.client, kube.chunk_size, &url, None).await?;
    Ok((items.into_iter().map(K::from).collect(), version))
}

/// Every page of the list at `url`, optionally label-selected, each page decoded as `T` (which may
/// hold less than the whole object: serde skips what `T` does not name). Pages hold `chunk_size`
/// objects (`--chunk-size`: 500, as kubectl; 0: unpaged), so no single reply holds a large list; together they are one
/// consistent snapshot (the `continue` token pins the resourceVersion), given back with the objects.
/// Each page decodes on a blocking thread while the next one is fetched ([`page`]).
pub(super) async fn list_pages<T>(
    client: &kube::Client,
    chunk_size: u32,
    url: &str,
    selector: Option<&str>,
) -> Result<Listed<T>, kube::Error>
where
    T: DeserializeOwned + Send + 'static,
{
    let request = kube::core::Request::new(url);
    let mut params = ListParams::default();
    if chunk_size > 0 {
        params = params.limit(chunk_size);
    }
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let fetch = |params: &ListParams| {
        let built = request.list(params).map_err(kube::Error::BuildRequest);
        async move { client.request_text(built?).await }
    };
    let mut text = fetch(&params).await?;
    let mut items = Vec::new();
    loop {
        let (head, head_read) = tokio::sync::oneshot::channel();
        let decoding = tokio::task::spawn_blocking(move || page::decode::<T>(&text, head));
        // No metadata before the items fail to decode: the decoding's error says why.
        let token = head_read.await.ok().and_then(|m| m.continue_).filter(|token| !token.is_empty());
        let next = async {
            match &token {
                Some(token) => Some(fetch(&params.clone().continue_token(token)).await),
                None => None,
            }
        };
        let (decoded, next) = futures::join!(decoding, next);
        let decoded = decoded.map_err(|e| kube::Error::Service(Box::new(e)))?;
        let page = decoded.map_err(kube::Error::SerdeError)?;
        items.extend(page.items);
        match next {
            Some(next) => text = next?,
            None => {
                // The room left by growing is given back: a large list is held for the whole command.
                items.shrink_to_fit();
                return Ok((items, page.metadata.resource_version.unwrap_or_default()));
            }
        }
    }
}

/// Which pods to read.
#[derive(Debug, Clone, Copy)]
pub enum Pods<'a> {
    /// Every pod in the scope.
    All,
    /// Only the pods of these releases, selected by the server.
    OfReleases(&'a [String]),
}

/// Pods, decoded as the model's [`Pod`]: only what the model reads is kept.
async fn list_pods(kube: &Kube, scope: &Scope, selector: Option<&str>) -> Result<Listed<Pod>, kube::Error> {
    let url = KubePod::url_path(&(), scope.namespace());
    list_pages::<Pod>(&kube.client, kube.chunk_size, &url, selector).await
}

/// The names under which a release's pods are labelled: the release itself, and for an operator
/// release its dependencies, which the operator installs as Helm releases of their own.
fn pod_release_names(releases: &[String]) -> Vec<String> {
    let mut names: Vec<String> = releases
        .iter()
        .flat_map(|r| {
            [String::new(), "-etcd".into(), "-minio".into(), "-pulsar".into(), "-kafka".into()]
                .into_iter()
                .map(move |suffix| format!("{r}{suffix}"))
        })
        .filter(|n| n.len() <= 63)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The two label selectors that together select the pods of `releases` (see [`list_release_pods`]);
/// `None` for no release.
pub fn release_pod_selectors(releases: &[String]) -> Option<[String; 2]> {
    let names = pod_release_names(releases);
    if names.is_empty() {
        return None;
    }
    let set = names.join(",");
    Some([format!("app.kubernetes.io/instance in ({set})"), format!("release in ({set})")])
}

/// The pods of `releases`: every pod of a Milvus release or of its dependencies carries the release
/// name in `app.kubernetes.io/instance` (Milvus, etcd, kafka) or `release` (minio, pulsar), so two
/// label-selected lists, issued concurrently, read them all and no pod of another application. Each
/// list's `resourceVersion` is given with its selector.
async fn list_release_pods(
    kube: &Kube,
    scope: &Scope,
    releases: &[String],
) -> Result<Versioned<Pod>, kube::Error> {
    let Some([by_instance, by_release]) = release_pod_selectors(releases) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let ((instance, instance_version), (release, release_version)) = futures::try_join!(
        list_pods(kube, scope, Some(&by_instance)),
        list_pods(kube, scope, Some(&by_release))
    )?;
    let listed = vec![
        (Query { kind: Kind::Pods, labels: Some(by_instance) }, instance_version),
        (Query { kind: Kind::Pods, labels: Some(by_release) }, release_version),
    ];
    // A pod labelled both ways is read twice: kept once.
    let mut pods = instance;
    let seen: std::collections::HashSet<(Option<String>, Option<String>)> =
        pods.iter().map(|pod| (pod.metadata.namespace.clone(), pod.metadata.name.clone())).collect();
    pods.extend(
        release
            .into_iter()
            .filter(|pod| !seen.contains(&(pod.metadata.namespace.clone(), pod.metadata.name.clone()))),
    );
    Ok((pods, listed))
}

/// Lists `Milvus` objects through the dynamic API, so that one object the plugin cannot read (a field of
/// an unexpected type) leaves only that object out; its release is then shown as one whose `Milvus`
/// object could not be read. With `whole`, each object is also kept as read, every field (as
/// [`crate::scale::owner::Owner::get`] would give it).
async fn list_milvuses(kube: &Kube, scope: &Scope, whole: bool) -> Result<Listed<Milvus>, kube::Error> {
    let url = DynamicObject::url_path(&milvus_resource(), scope.namespace());
    let (items, version) = list_pages::<DynamicObject>(&kube.client, kube.chunk_size, &url, None).await?;
    let milvuses = items
        .into_iter()
        .filter_map(|o| {
            let value = serde_json::to_value(o).ok()?;
            let mut milvus = Milvus::from_value(value.clone()).ok()?;
            milvus.whole = whole.then(|| Box::new(value));
            Some(milvus)
        })
        .collect();
    Ok((milvuses, version))
}

/// Reads Deployments and StatefulSets (required) and the optional kinds, concurrently: one request each.
/// A failure to read an optional kind becomes a [`Note`]; a failure to reach the server is an error.
pub async fn read(kube: &Kube, scope: &Scope, kinds: Kinds) -> Result<Reading, Error> {
    read_with(kube, scope, kinds, Pods::All).await
}

/// As [`read`], with the pods (when `kinds.pods`) limited to `pods`.
pub async fn read_with(kube: &Kube, scope: &Scope, kinds: Kinds, pods: Pods<'_>) -> Result<Reading, Error> {
    let pod_list = async {
        match pods {
            Pods::All => list_pods(kube, scope, None).await.map(at(Query::all(Kind::Pods))),
            Pods::OfReleases(releases) => list_release_pods(kube, scope, releases).await,
        }
    };
    let (deployments, stateful_sets, pods, hpas, milvuses) = futures::join!(
        async {
            let deployments = if kinds.whole_owners {
                list::<Deployment>(kube, scope).await
            } else {
                list_slim::<Deployment, SlimDeployment>(kube, scope).await
            };
            deployments.map(at(Query::all(Kind::Deployments)))
        },
        async {
            list_slim::<StatefulSet, SlimStatefulSet>(kube, scope)
                .await
                .map(at(Query::all(Kind::StatefulSets)))
        },
        optional(kinds.pods, pod_list),
        optional(kinds.hpas, async {
            list::<HorizontalPodAutoscaler>(kube, scope).await.map(at(Query::all(Kind::Hpas)))
        }),
        optional(kinds.milvuses, async {
            list_milvuses(kube, scope, kinds.whole_owners).await.map(at(Query::all(Kind::Milvuses)))
        }),
    );
    let fail = |e| Error::api(e, &kube.server);
    let mut notes = Vec::new();
    let mut listed = Vec::new();
    let deployments = versions(deployments, &mut listed).map_err(fail)?;
    let stateful_sets = versions(stateful_sets, &mut listed).map_err(fail)?;
    let pods = soft(versions(pods, &mut listed), "pods", scope, &mut notes).map_err(fail)?;
    let hpas = versions(hpas, &mut listed);
    let milvuses = versions(milvuses, &mut listed);
    let inventory = Inventory {
        deployments,
        stateful_sets,
        pods,
        hpas: soft(hpas, "horizontalpodautoscalers.autoscaling", scope, &mut notes).map_err(fail)?,
        milvuses: soft(milvuses, "milvuses.milvus.io", scope, &mut notes).map_err(fail)?,
    };
    Ok(Reading { inventory, notes, listed })
}

/// Only the pods of `releases` (two label-selected lists); a refusal becomes a [`Note`] and no pods.
pub async fn read_pods(
    kube: &Kube,
    scope: &Scope,
    releases: &[String],
    notes: &mut Vec<Note>,
) -> Result<Vec<Pod>, Error> {
    let pods = list_release_pods(kube, scope, releases).await.map(|(pods, _)| pods);
    soft(pods, "pods", scope, notes).map_err(|e| Error::api(e, &kube.server))
}

async fn optional<T>(
    wanted: bool,
    request: impl std::future::Future<Output = Result<Versioned<T>, kube::Error>>,
) -> Result<Versioned<T>, kube::Error> {
    if wanted { request.await } else { Ok((Vec::new(), Vec::new())) }
}

/// The objects of lists that were read, their `resourceVersion`s added to `listed`.
fn versions<T>(
    result: Result<Versioned<T>, kube::Error>,
    listed: &mut Vec<(Query, String)>,
) -> Result<Vec<T>, kube::Error> {
    result.map(|(items, mut versions)| {
        listed.append(&mut versions);
        items
    })
}

/// A list's objects, with its `resourceVersion` as that of `query`.
fn at<T>(query: Query) -> impl FnOnce(Listed<T>) -> Versioned<T> {
    move |(items, version)| (items, vec![(query, version)])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_selected_with_its_operator_dependencies_once_each() {
        let names = pod_release_names(&["b".into(), "a".into(), "a".into()]);
        assert_eq!(
            names,
            [
                "a", "a-etcd", "a-kafka", "a-minio", "a-pulsar", "b", "b-etcd", "b-kafka", "b-minio",
                "b-pulsar"
            ]
        );
        // A label value is at most 63 characters: a dependency name longer than that cannot exist.
        let long = "x".repeat(58);
        assert_eq!(pod_release_names(std::slice::from_ref(&long)), [long.clone(), format!("{long}-etcd")]);
        assert!(pod_release_names(&[]).is_empty());
    }
}
