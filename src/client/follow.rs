//! Following a namespace (or the cluster) as it changes: one watch per kind instead of a list per kind
//! every second.
//!
//! [`Follow::start`] opens one [`watcher`] per [`Query`] (an initial paged list with its
//! `resourceVersion`, then a watch from there with bookmarks; a `410 Gone` re-lists; errors are retried
//! with backoff). The objects of each stream are kept in a map, and [`Follow::next`] builds the same
//! [`Reading`] that [`read::read`] returns from them: the first only once every initial list is done,
//! then one after each change, bursts of events coalesced into one view every [`COALESCE`].
//!
//! The kinds and their rules are those of [`read`]: Deployments and StatefulSets are required; an
//! optional kind the server refuses (401, 403, 404) becomes a [`Note`] and stays empty, and an absent
//! Milvus CRD is not an error. A kind that could be listed but not watched (401, 403) ends the next
//! view with that error: without the watch no change would ever be seen.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Kube;
use super::read::{self, Kinds, Note, Reading, Scope};
use crate::error::Error;
use crate::milvus::{Inventory, Milvus};

/// The shortest gap between two views: events arriving closer together are seen as one change.
pub const COALESCE: Duration = Duration::from_millis(150);

/// The longest a watch request lasts (`timeoutSeconds`) before it is renewed from where it was.
const WATCH_TIMEOUT: Duration = Duration::from_secs(290);

/// A kind of object the Milvus model is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deployments,
    StatefulSets,
    Pods,
    Hpas,
    Milvuses,
}

impl Kind {
    /// The resource as errors and notes name it.
    fn resource(self) -> &'static str {
        match self {
            Kind::Deployments => "deployments.apps",
            Kind::StatefulSets => "statefulsets.apps",
            Kind::Pods => "pods",
            Kind::Hpas => "horizontalpodautoscalers.autoscaling",
            Kind::Milvuses => "milvuses.milvus.io",
        }
    }

    /// Whether a refusal to read it is a note rather than an error.
    fn optional(self) -> bool {
        !matches!(self, Kind::Deployments | Kind::StatefulSets)
    }
}

/// One stream: a kind, and the label selector that narrows it (`None`: every object in the scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub kind: Kind,
    pub labels: Option<String>,
}

impl Query {
    /// Every object of `kind` in the scope.
    pub fn all(kind: Kind) -> Self {
        Query { kind, labels: None }
    }

    /// The streams that give what [`read::read_with`] reads for `kinds` and the pods of `release`:
    /// the pods by the release's two label selectors, the other kinds unselected.
    pub fn for_release(kinds: Kinds, release: &str) -> Vec<Query> {
        let mut queries = Query::for_kinds(Kinds { pods: false, ..kinds });
        if kinds.pods {
            let selectors = read::release_pod_selectors(&[release.to_string()]).into_iter().flatten();
            queries.extend(selectors.map(|labels| Query { kind: Kind::Pods, labels: Some(labels) }));
        }
        queries
    }

    /// The unselected streams that give what [`read::read`] reads for `kinds`.
    pub fn for_kinds(kinds: Kinds) -> Vec<Query> {
        let mut queries = vec![Query::all(Kind::Deployments), Query::all(Kind::StatefulSets)];
        for (wanted, kind) in
            [(kinds.pods, Kind::Pods), (kinds.hpas, Kind::Hpas), (kinds.milvuses, Kind::Milvuses)]
        {
            if wanted {
                queries.push(Query::all(kind));
            }
        }
        queries
    }
}

/// An object as kept, by kind.
#[derive(Debug, Clone)]
enum Object {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    Pod(Box<Pod>),
    Hpa(Box<HorizontalPodAutoscaler>),
    Milvus(Box<Milvus>),
}

/// Namespace and name.
type Key = (String, String);

/// What one stream has seen.
#[derive(Debug, Default)]
struct Stream {
    objects: BTreeMap<Key, Object>,
    /// The objects of a list in progress (after `Init`): they replace `objects` at `InitDone`, so that a
    /// re-list never shows a half-listed kind.
    listing: Option<BTreeMap<Key, Object>>,
    /// The first list is done (or the kind was refused and stays empty).
    listed: bool,
    note: Option<Note>,
    /// The last error, until the stream yields something again.
    error: Option<watcher::Error>,
    /// The kind could be listed but the server refuses to watch it (401, 403): waiting for it would be
    /// waiting for nothing, so the next view is this error.
    refused: Option<watcher::Error>,
}

#[derive(Debug, Default)]
struct State {
    streams: Vec<Stream>,
    /// Bumped by every change to the objects.
    version: u64,
}

/// State shared by the stream tasks and the [`Follow`].
struct Shared {
    state: Mutex<State>,
    /// Woken on every change, error included.
    wake: watch::Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The release's objects as they change. Dropping it stops the watches.
pub struct Follow {
    shared: Arc<Shared>,
    wake: watch::Receiver<()>,
    tasks: Vec<JoinHandle<()>>,
    queries: Vec<Query>,
    scope: Scope,
    server: String,
    /// The `version` of the last view given out, and when.
    seen: Option<(u64, Instant)>,
}

impl Follow {
    /// Starts one watch per query in `scope` (each does its initial list first).
    pub fn start(kube: &Kube, scope: &Scope, queries: Vec<Query>) -> Follow {
        let (wake, receiver) = watch::channel(());
        let state = State { streams: queries.iter().map(|_| Stream::default()).collect(), version: 0 };
        let shared = Arc::new(Shared { state: Mutex::new(state), wake });
        // Renewed before the connection's read deadline could cut a quiet watch off.
        let timeout = WATCH_TIMEOUT.min(kube.read_timeout.mul_f64(0.75)).as_secs().max(1);
        let tasks = queries
            .iter()
            .enumerate()
            .map(|(index, query)| {
                let mut config = watcher::Config::default().timeout(u32::try_from(timeout).unwrap_or(290));
                if let Some(labels) = &query.labels {
                    config = config.labels(labels);
                }
                let task = Task { shared: shared.clone(), index, kind: query.kind, scope: scope.clone() };
                let client = kube.client.clone();
                match query.kind {
                    Kind::Deployments => tokio::spawn(
                        task.run(api(client, scope), config, |d| Object::Deployment(Box::new(d))),
                    ),
                    Kind::StatefulSets => tokio::spawn(
                        task.run(api(client, scope), config, |s| Object::StatefulSet(Box::new(s))),
                    ),
                    Kind::Pods => {
                        tokio::spawn(task.run(api(client, scope), config, |p| Object::Pod(Box::new(p))))
                    }
                    Kind::Hpas => {
                        tokio::spawn(task.run(api(client, scope), config, |h| Object::Hpa(Box::new(h))))
                    }
                    Kind::Milvuses => {
                        let resource = read::milvus_resource();
                        let api: Api<DynamicObject> = match scope {
                            Scope::Namespace(ns) => Api::namespaced_with(client, ns, &resource),
                            Scope::AllNamespaces => Api::all_with(client, &resource),
                        };
                        tokio::spawn(task.run_milvuses(api, config))
                    }
                }
            })
            .collect();
        Follow {
            shared,
            wake: receiver,
            tasks,
            queries,
            scope: scope.clone(),
            server: kube.server.clone(),
            seen: None,
        }
    }

    /// The unselected streams of [`read::read`]'s `kinds`.
    pub fn kinds(kube: &Kube, scope: &Scope, kinds: Kinds) -> Follow {
        Follow::start(kube, scope, Query::for_kinds(kinds))
    }

    /// The streams of [`Query::for_release`]: `kinds`, with only the pods of `release`.
    pub fn release(kube: &Kube, scope: &Scope, kinds: Kinds, release: &str) -> Follow {
        Follow::start(kube, scope, Query::for_release(kinds, release))
    }

    /// The current view: waits only until every stream's initial list is done. A required kind (or an
    /// optional one, for an error other than a refusal) that cannot be listed at first is an error.
    pub async fn latest(&mut self) -> Result<Reading, Error> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some((index, error)) = refusal(&mut state) {
                    return Err(self.error(index, error));
                }
                if self.seen.is_some() || state.streams.iter().all(|s| s.listed) {
                    let reading = self.view(&state);
                    self.seen = Some((state.version, Instant::now()));
                    return Ok(reading);
                }
                if let Some((index, error)) = state
                    .streams
                    .iter_mut()
                    .enumerate()
                    .find_map(|(i, s)| if s.listed { None } else { s.error.take().map(|e| (i, e)) })
                {
                    return Err(self.error(index, error));
                }
            }
            self.woken().await?;
        }
    }

    /// The next view after the last one given out, once something changed (at most one every
    /// [`COALESCE`]); the first is [`Follow::latest`].
    pub async fn next(&mut self) -> Result<Reading, Error> {
        let Some((seen, at)) = self.seen else {
            return self.latest().await;
        };
        loop {
            let refused = refusal(&mut self.shared.lock());
            if let Some((index, error)) = refused {
                return Err(self.error(index, error));
            }
            if self.shared.lock().version != seen {
                tokio::time::sleep_until(at + COALESCE).await;
                let state = self.shared.lock();
                let reading = self.view(&state);
                self.seen = Some((state.version, Instant::now()));
                return Ok(reading);
            }
            self.woken().await?;
        }
    }

    /// The error of a stream that failed and has not yielded anything since (it is being retried):
    /// what to say when the view may be out of date. Taken: asked again, it is `None` until the next
    /// failure.
    pub fn trouble(&mut self) -> Option<Error> {
        let found = self
            .shared
            .lock()
            .streams
            .iter_mut()
            .enumerate()
            .find_map(|(i, s)| s.error.take().map(|e| (i, e)));
        found.map(|(index, error)| self.error(index, error))
    }

    async fn woken(&mut self) -> Result<(), Error> {
        // The sender lives in `shared`, which this Follow holds: it is never closed while waited on.
        self.wake.changed().await.map_err(|_| Error::Failed("the watches of the release stopped".into()))
    }

    fn view(&self, state: &State) -> Reading {
        let mut inventory = Inventory::default();
        let mut notes = Vec::new();
        // A kind followed by several selectors has each object once.
        let mut seen = std::collections::BTreeSet::new();
        for (query, stream) in self.queries.iter().zip(&state.streams) {
            notes.extend(stream.note.clone());
            for (key, object) in &stream.objects {
                if !seen.insert((query.kind.resource(), key)) {
                    continue;
                }
                match object {
                    Object::Deployment(d) => inventory.deployments.push((**d).clone()),
                    Object::StatefulSet(s) => inventory.stateful_sets.push((**s).clone()),
                    Object::Pod(p) => inventory.pods.push((**p).clone()),
                    Object::Hpa(h) => inventory.hpas.push((**h).clone()),
                    Object::Milvus(m) => inventory.milvuses.push((**m).clone()),
                }
            }
        }
        Reading { inventory, notes }
    }

    /// The error of stream `index` as the user reads it.
    fn error(&self, index: usize, error: watcher::Error) -> Error {
        let resource = self.queries.get(index).map_or("objects", |q| q.kind.resource());
        match error {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => Error::api(e, &self.server),
            watcher::Error::WatchError(status) => Error::api(kube::Error::Api(status), &self.server),
            other @ watcher::Error::NoResourceVersion => {
                Error::Failed(format!("cannot watch {resource} {}: {other}", self.scope.describe()))
            }
        }
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A stream whose watch the server refused, and the refusal.
fn refusal(state: &mut State) -> Option<(usize, watcher::Error)> {
    state.streams.iter_mut().enumerate().find_map(|(i, s)| s.refused.take().map(|e| (i, e)))
}

/// 401 or 403: not allowed, and trying again will not change it.
fn is_refusal(error: &watcher::Error) -> bool {
    let code = match error {
        watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => return false,
    };
    matches!(code, 401 | 403)
}

fn api<K>(client: kube::Client, scope: &Scope) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match scope {
        Scope::Namespace(ns) => Api::namespaced(client, ns),
        Scope::AllNamespaces => Api::all(client),
    }
}

/// One stream's task: applies its watcher's events to its [`Stream`].
struct Task {
    shared: Arc<Shared>,
    index: usize,
    kind: Kind,
    scope: Scope,
}

impl Task {
    async fn run<K>(self, api: Api<K>, config: watcher::Config, keep: impl Fn(K) -> Object)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        self.follow(api, config, |object| Some(keep(object))).await;
    }

    /// `Milvus` objects come through the dynamic API, as [`read::read`] reads them: one the plugin cannot
    /// read is left out.
    async fn run_milvuses(self, api: Api<DynamicObject>, config: watcher::Config) {
        self.follow(api, config, |object| {
            let value = serde_json::to_value(object).ok()?;
            Milvus::from_value(value).ok().map(|m| Object::Milvus(Box::new(m)))
        })
        .await;
    }

    async fn follow<K>(self, api: Api<K>, config: watcher::Config, keep: impl Fn(K) -> Option<Object>)
    where
        K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        let events = watcher::watcher(api, config).default_backoff();
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let stop = self.apply(event, &keep);
            self.shared.wake.send_replace(());
            if stop {
                return;
            }
        }
    }

    /// Applies one event; true when the stream is done (its kind refused: it stays empty).
    fn apply<K: Resource>(
        &self,
        event: watcher::Result<watcher::Event<K>>,
        keep: &impl Fn(K) -> Option<Object>,
    ) -> bool {
        let mut state = self.shared.lock();
        let State { streams, version } = &mut *state;
        let Some(stream) = streams.get_mut(self.index) else {
            return true;
        };
        let key = |object: &K| (object.namespace().unwrap_or_default(), object.name_any());
        match event {
            Ok(watcher::Event::Init) => stream.listing = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(object)) => {
                let key = key(&object);
                if let (Some(listing), Some(object)) = (stream.listing.as_mut(), keep(object)) {
                    listing.insert(key, object);
                }
            }
            Ok(watcher::Event::InitDone) => {
                stream.objects = stream.listing.take().unwrap_or_default();
                stream.listed = true;
                *version += 1;
            }
            Ok(watcher::Event::Apply(object)) => {
                let key = key(&object);
                match keep(object) {
                    Some(object) => stream.objects.insert(key, object),
                    None => stream.objects.remove(&key),
                };
                *version += 1;
            }
            Ok(watcher::Event::Delete(object)) => {
                stream.objects.remove(&key(&object));
                *version += 1;
            }
            Err(error) if stream.listed && is_refusal(&error) => {
                stream.refused = Some(error);
                return true;
            }
            Err(error) => {
                if !stream.listed && self.kind.optional() {
                    let refused = match error {
                        watcher::Error::InitialListFailed(e) | watcher::Error::WatchStartFailed(e) => {
                            read::soft_note(e, self.kind.resource(), &self.scope)
                        }
                        other => {
                            stream.error = Some(other);
                            return false;
                        }
                    };
                    match refused {
                        Ok(note) => {
                            stream.note = note;
                            stream.listed = true;
                            stream.listing = None;
                            *version += 1;
                            return true;
                        }
                        Err(e) => stream.error = Some(watcher::Error::InitialListFailed(e)),
                    }
                } else {
                    stream.error = Some(error);
                }
                return false;
            }
        }
        stream.error = None;
        false
    }
}
