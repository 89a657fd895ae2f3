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
        async move { page::fetch(client, built?).await }
    };
    let mut body = fetch(&params).await?;
    let mut items = Vec::new();
    loop {
        let (head, head_read) = tokio::sync::oneshot::channel();
        let decoding = tokio::task::spawn_blocking(move || page::decode::<T>(body, head));
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
            Some(next) => body = next?,
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
    list_selected_pods(kube, scope, vec![by_instance], by_release).await
}

/// The pods selected by any of `by_instance` (lists of disjoint sets of releases, read concurrently)
/// and `by_release`: each pod once, in the order one list of all would give them (by namespace and
/// name, then those only `release`-labelled).
async fn list_selected_pods(
    kube: &Kube,
    scope: &Scope,
    by_instance: Vec<String>,
    by_release: String,
) -> Result<Versioned<Pod>, kube::Error> {
    let parts = by_instance.len();
    let (instance, release) = futures::try_join!(
        futures::future::try_join_all(by_instance.iter().map(|selector| list_pods(
            kube,
            scope,
            Some(selector)
        ))),
        list_pods(kube, scope, Some(&by_release))
    )?;
    let (release, release_version) = release;
    // A pod labelled both ways is read twice: kept once.
    let key = |pod: &Pod| (pod.metadata.namespace.clone(), pod.metadata.name.clone());
    let both: std::collections::HashSet<_> = {
        let of_release: std::collections::HashSet<_> = release.iter().map(key).collect();
        instance
            .iter()
            .flat_map(|(part, _)| part)
            .filter(|pod| of_release.contains(&key(pod)))
            .map(key)
            .collect()
    };
    let only_release: Vec<Pod> = release.into_iter().filter(|pod| !both.contains(&key(pod))).collect();
    // Every pod moves once, into a list of exactly their number (growing it would copy them all, and
    // hold both copies for a moment).
    let count = instance.iter().map(|(part, _)| part.len()).sum::<usize>() + only_release.len();
    let mut listed = Vec::with_capacity(parts + 1);
    let mut pods = Vec::with_capacity(count);
    for (selector, (part, version)) in by_instance.into_iter().zip(instance) {
        listed.push((Query { kind: Kind::Pods, labels: Some(selector) }, version));
        pods.extend(part);
    }
    if parts > 1 {
        pods.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
    }
    listed.push((Query { kind: Kind::Pods, labels: Some(by_release) }, release_version));
    pods.extend(only_release);
    Ok((pods, listed))
}

/// Instance-labelled pods are read in at most this many concurrent lists (a server answers lists in
/// parallel; one list's pages come one after another)…
const MAX_POD_LISTS: u64 = 3;
/// …each expected to hold at least this many pages, so that a small cluster is read in one list.
const PAGES_PER_POD_LIST: u64 = 4;

/// The `app.kubernetes.io/instance` selectors that together select the pods of `releases` (name,
/// pods expected), split by release into lists of about equal size: as many lists as the expected
/// pods fill `PAGES_PER_POD_LIST` pages of `chunk_size`, at most [`MAX_POD_LISTS`]; one when unpaged.
fn instance_selectors(releases: &[(String, u64)], chunk_size: u32) -> Vec<String> {
    let mut releases = releases.to_vec();
    releases.sort();
    let expected: u64 = releases.iter().map(|(_, pods)| *pods).sum();
    let per_list = u64::from(chunk_size).saturating_mul(PAGES_PER_POD_LIST);
    let parts = expected.checked_div(per_list).map_or(1, |lists| lists.clamp(1, MAX_POD_LISTS));
    let share = expected / parts;
    let mut groups: Vec<Vec<String>> = vec![Vec::new()];
    let mut filled = 0u64;
    for (name, pods) in releases {
        // A group is closed once it holds its share (the last takes the rest).
        if filled >= share.max(1) && u64::try_from(groups.len()).unwrap_or(u64::MAX) < parts {
            groups.push(Vec::new());
            filled = 0;
        }
        filled = filled.saturating_add(pods);
        if let Some(group) = groups.last_mut() {
            group.push(name);
        }
    }
    groups
        .iter()
        .filter_map(|group| release_pod_selectors(group).map(|[by_instance, _]| by_instance))
        .collect()
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
    let none = |_: &Inventory| None::<std::future::Ready<()>>;
    read_with_then(kube, scope, kinds, pods, none).await.0
}

/// As [`read_with`], and `then`: given the Deployments, StatefulSets and `Milvus` objects as soon as
/// they are read (an inventory without pods or HPAs), it may start one more request, which runs
/// concurrently with the lists still under way (the pods). Its result comes back beside the reading.
pub async fn read_with_then<F, Fut>(
    kube: &Kube,
    scope: &Scope,
    kinds: Kinds,
    pods: Pods<'_>,
    then: F,
) -> (Result<Reading, Error>, Option<Fut::Output>)
where
    F: FnOnce(&Inventory) -> Option<Fut>,
    Fut: std::future::Future,
{
    let pod_list = async {
        match pods {
            Pods::All => list_pods(kube, scope, None).await.map(at(Query::all(Kind::Pods))),
            Pods::OfReleases(releases) => list_release_pods(kube, scope, releases).await,
        }
    };
    let owners = async {
        let (deployments, stateful_sets, milvuses) = futures::join!(
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
            optional(kinds.milvuses, async {
                list_milvuses(kube, scope, kinds.whole_owners).await.map(at(Query::all(Kind::Milvuses)))
            }),
        );
        // The follow-up's view: the lists read so far, moved in and back out (no copy).
        let mut so_far = Inventory::default();
        let deployments = take(deployments, &mut so_far.deployments);
        let stateful_sets = take(stateful_sets, &mut so_far.stateful_sets);
        let milvuses = take(milvuses, &mut so_far.milvuses);
        let followed = match then(&so_far) {
            Some(request) => Some(request.await),
            None => None,
        };
        (so_far, deployments, stateful_sets, milvuses, followed)
    };
    let ((so_far, deployments, stateful_sets, milvuses, followed), pods, hpas) = futures::join!(
        owners,
        optional(kinds.pods, pod_list),
        optional(kinds.hpas, async {
            list::<HorizontalPodAutoscaler>(kube, scope).await.map(at(Query::all(Kind::Hpas)))
        }),
    );
    let Inventory { deployments: d, stateful_sets: s, milvuses: m, .. } = so_far;
    let deployments = deployments.map(|v| (d, v));
    let stateful_sets = stateful_sets.map(|v| (s, v));
    let milvuses = milvuses.map(|v| (m, v));
    (assemble(kube, scope, deployments, stateful_sets, pods, hpas, milvuses), followed)
}

/// A list's objects moved `into` the follow-up's view; its versions (or its error) kept.
fn take<T>(
    result: Result<Versioned<T>, kube::Error>,
    into: &mut Vec<T>,
) -> Result<Vec<(Query, String)>, kube::Error> {
    result.map(|(items, versions)| {
        *into = items;
        versions
    })
}

/// The reading from each list's result: required kinds fail it, optional ones become notes.
fn assemble(
    kube: &Kube,
    scope: &Scope,
    deployments: Result<Versioned<Deployment>, kube::Error>,
    stateful_sets: Result<Versioned<StatefulSet>, kube::Error>,
    pods: Result<Versioned<Pod>, kube::Error>,
    hpas: Result<Versioned<HorizontalPodAutoscaler>, kube::Error>,
    milvuses: Result<Versioned<Milvus>, kube::Error>,
) -> Result<Reading, Error> {
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

/// Only the pods of `releases` (each with the pods it is expected to have): label-selected lists, the
/// `app.kubernetes.io/instance` one split by release when large ([`instance_selectors`]), all issued
/// concurrently. A refusal becomes a [`Note`] and no pods.
pub async fn read_pods(
    kube: &Kube,
    scope: &Scope,
    releases: &[(String, u64)],
    notes: &mut Vec<Note>,
) -> Result<Vec<Pod>, Error> {
    let names: Vec<String> = releases.iter().map(|(name, _)| name.clone()).collect();
    let Some([_, by_release]) = release_pod_selectors(&names) else {
        return Ok(Vec::new());
    };
    let by_instance = instance_selectors(releases, kube.chunk_size);
    let pods = list_selected_pods(kube, scope, by_instance, by_release).await.map(|(pods, _)| pods);
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

    /// The release names an `app.kubernetes.io/instance in (…)` selector names, without dependencies.
    fn named(selector: &str) -> Vec<&str> {
        let set = selector.trim_start_matches("app.kubernetes.io/instance in (").trim_end_matches(')');
        set.split(',').filter(|n| !n.contains('-')).collect()
    }

    #[test]
    fn a_small_cluster_is_read_in_one_instance_list() {
        let releases = [("b".to_string(), 1_000), ("a".to_string(), 900)];
        let selectors = instance_selectors(&releases, 500);
        assert_eq!(selectors.len(), 1, "{selectors:?}");
        assert_eq!(named(&selectors[0]), ["a", "b"]);
        // Unpaged (--chunk-size 0): one reply in any case.
        assert_eq!(instance_selectors(&[("a".into(), 1_000_000)], 0).len(), 1);
    }

    #[test]
    fn a_large_cluster_is_read_in_lists_of_about_equal_size_each_release_in_one() {
        let releases: Vec<(String, u64)> = (0..200).map(|i| (format!("r{i:03}"), 100 + i % 7)).collect();
        let selectors = instance_selectors(&releases, 500);
        assert_eq!(selectors.len(), 3, "20,600 pods: at most three lists");
        let groups: Vec<Vec<&str>> = selectors.iter().map(|s| named(s)).collect();
        let mut all: Vec<&str> = groups.iter().flatten().copied().collect();
        all.sort_unstable();
        let names: Vec<&str> = releases.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(all, names, "each release in exactly one list");
        for group in &groups {
            let pods: u64 =
                releases.iter().filter(|(n, _)| group.contains(&n.as_str())).map(|(_, p)| p).sum();
            assert!((6_500..=7_100).contains(&pods), "about a third of 20,600: {pods}");
        }
        // One release larger than the rest cannot be split: it is a list of its own.
        let uneven = [("big".to_string(), 9_000), ("x".to_string(), 10), ("y".to_string(), 10)];
        let selectors = instance_selectors(&uneven, 500);
        let groups: Vec<Vec<&str>> = selectors.iter().map(|s| named(s)).collect();
        assert_eq!(groups, [vec!["big"], vec!["x", "y"]]);
    }
}
