//! Following a namespace (or the cluster) as it changes: one watch per kind instead of a list per kind
//! every second.
//!
//! [`Follow::start`] runs one stream per [`Query`]: a paged list (consistent: read at the server's
//! latest `resourceVersion`), then a watch from that list's `resourceVersion` with bookmarks, renewed
//! from the last `resourceVersion` seen (of an event or a bookmark) when the server ends it
//! (`timeoutSeconds`); a `410 Gone` lists again; other errors are retried with backoff.
//! [`Follow::seeded`] starts each stream from a [`Seed`] instead: the objects of a reading made just
//! before and the `resourceVersion` each of its lists was read at. Nothing is listed a second time,
//! and the watch from there delivers every change since that reading (a write made after it
//! included). The objects of each stream are kept in a map, and [`Follow::next`] builds the same
//! [`Reading`] that [`read::read`] returns from them: the first only once every initial list is done,
//! then one after each change, bursts of events coalesced into one view every [`COALESCE`].
//!
//! The kinds and their rules are those of [`read`]: Deployments and StatefulSets are required; an
//! optional kind the server refuses (401, 403, 404) becomes a [`Note`] and stays empty, and an absent
//! Milvus CRD is not an error. A kind that could be listed but not watched (401, 403) ends the next
//! view with that error: without the watch no change would ever be seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::{DynamicObject, WatchEvent, WatchParams};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Kube;
use super::read::{self, Kinds, Note, Reading, Scope};
use super::slim::{SlimDeployment, SlimStatefulSet};
use crate::error::Error;
use crate::milvus::{Inventory, Milvus, Pod};

/// The shortest gap between two views: events arriving closer together are seen as one change.
pub const COALESCE: Duration = Duration::from_millis(150);

/// The longest a watch request lasts (`timeoutSeconds`) before it is renewed from where it was.
const WATCH_TIMEOUT: Duration = Duration::from_secs(290);

/// The retries of a failing stream: exponential with jitter from 0.8 s, at most 30 s apart, for as long
/// as it fails (the delays kube's watcher uses); started afresh once the stream works again.
fn backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(800))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

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

impl Object {
    /// Namespace, name, `resourceVersion` and labels, whatever the kind.
    fn identity(&self) -> Identity<'_> {
        fn of(m: &ObjectMeta) -> Identity<'_> {
            Identity {
                namespace: m.namespace.as_deref(),
                name: m.name.as_deref(),
                version: m.resource_version.as_deref(),
                labels: m.labels.as_ref().map(|l| l as &dyn label_selector::Labels),
            }
        }
        match self {
            Object::Deployment(d) => of(&d.metadata),
            Object::StatefulSet(s) => of(&s.metadata),
            Object::Pod(p) => Identity {
                namespace: p.metadata.namespace.as_deref(),
                name: p.metadata.name.as_deref(),
                version: p.metadata.resource_version.as_deref(),
                labels: p.metadata.labels.as_ref().map(|l| l as &dyn label_selector::Labels),
            },
            Object::Hpa(h) => of(&h.metadata),
            Object::Milvus(m) => of(&m.metadata),
        }
    }
}

/// What a stream needs of any object.
struct Identity<'a> {
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    version: Option<&'a str>,
    labels: Option<&'a dyn label_selector::Labels>,
}

impl Identity<'_> {
    fn key(&self) -> Key {
        (self.namespace.unwrap_or_default().to_string(), self.name.unwrap_or_default().to_string())
    }
}

/// Namespace and name.
type Key = (String, String);

fn key(metadata: &ObjectMeta) -> Key {
    (metadata.namespace.clone().unwrap_or_default(), metadata.name.clone().unwrap_or_default())
}

/// An object as a list or a watch event gives it: where it is kept, its `resourceVersion`, and the
/// object (`None`: one the plugin cannot read, left out).
struct Decoded {
    key: Key,
    version: Option<String>,
    object: Option<Object>,
}

impl Decoded {
    fn of(object: Object) -> Decoded {
        let identity = object.identity();
        let (key, version) = (identity.key(), identity.version.map(str::to_string));
        Decoded { key, version, object: Some(object) }
    }

    /// `Milvus` objects come through the dynamic API, as [`read::read`] reads them: one the plugin
    /// cannot read is left out.
    fn milvus(object: DynamicObject) -> Decoded {
        let (key, version) = (key(&object.metadata), object.metadata.resource_version.clone());
        let milvus = serde_json::to_value(object).ok().and_then(|v| Milvus::from_value(v).ok());
        Decoded { key, version, object: milvus.map(|m| Object::Milvus(Box::new(m))) }
    }
}

/// What a [`Follow`] can start from instead of listing: the objects a [`Reading`] of `scope` found, and
/// the `resourceVersion` each of its lists was read at ([`Reading::listed`]).
pub struct Seed {
    pub scope: Scope,
    pub inventory: Inventory,
    pub listed: Vec<(Query, String)>,
}

impl Seed {
    /// The objects of `query` in this reading, and the `resourceVersion` they were listed at; `None`
    /// when the reading did not list `query` in `scope`.
    fn start(&self, scope: &Scope, query: &Query) -> Option<(BTreeMap<Key, Object>, String)> {
        if self.scope != *scope {
            return None;
        }
        let (_, version) = self.listed.iter().find(|(listed, _)| listed == query)?;
        // The pods of both of a release's selectors were read as one list: each stream keeps those its
        // own selector selects, as the server would have listed them.
        let selector = match &query.labels {
            Some(labels) => Some(label_selector::Selector::parse(labels).ok()?),
            None => None,
        };
        let inventory = &self.inventory;
        let objects: Vec<Object> = match query.kind {
            Kind::Deployments => {
                inventory.deployments.iter().map(|d| Object::Deployment(Box::new(d.clone()))).collect()
            }
            Kind::StatefulSets => {
                inventory.stateful_sets.iter().map(|s| Object::StatefulSet(Box::new(s.clone()))).collect()
            }
            Kind::Pods => inventory.pods.iter().map(|p| Object::Pod(Box::new(p.clone()))).collect(),
            Kind::Hpas => inventory.hpas.iter().map(|h| Object::Hpa(Box::new(h.clone()))).collect(),
            Kind::Milvuses => {
                inventory.milvuses.iter().map(|m| Object::Milvus(Box::new(m.clone()))).collect()
            }
        };
        let objects = objects
            .into_iter()
            .filter(|o| selector.as_ref().is_none_or(|s| s.matches(&o.identity().labels)))
            .map(|o| (o.identity().key(), o))
            .collect();
        Some((objects, version.clone()))
    }
}

/// What one stream has seen.
#[derive(Debug, Default)]
struct Stream {
    /// Replaced whole by each list, so that a re-list never shows a half-listed kind.
    objects: BTreeMap<Key, Object>,
    /// The first list is done (or seeded, or the kind was refused and stays empty).
    listed: bool,
    note: Option<Note>,
    /// The last error, until the stream yields something again.
    error: Option<kube::Error>,
    /// The kind could be listed but the server refuses to watch it (401, 403): waiting for it would be
    /// waiting for nothing, so the next view is this error.
    refused: Option<kube::Error>,
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
    server: String,
    /// The `version` of the last view given out, and when.
    seen: Option<(u64, Instant)>,
}

impl Follow {
    /// Starts one stream per query in `scope` (each lists first).
    pub fn start(kube: &Kube, scope: &Scope, queries: Vec<Query>) -> Follow {
        Follow::open(kube, scope, queries, None)
    }

    /// Starts one stream per query in `scope`, each from `seed` when it listed that query in `scope`
    /// (listed at once: its first view is the seed's objects, and its watch starts from the seed's
    /// `resourceVersion`); a query the seed did not list is listed first.
    pub fn seeded(kube: &Kube, scope: &Scope, queries: Vec<Query>, seed: &Seed) -> Follow {
        Follow::open(kube, scope, queries, Some(seed))
    }

    fn open(kube: &Kube, scope: &Scope, queries: Vec<Query>, seed: Option<&Seed>) -> Follow {
        let starts: Vec<_> = queries.iter().map(|query| seed.and_then(|s| s.start(scope, query))).collect();
        let (wake, receiver) = watch::channel(());
        let mut streams = Vec::with_capacity(queries.len());
        let mut froms = Vec::with_capacity(queries.len());
        for start in starts {
            match start {
                Some((objects, version)) => {
                    streams.push(Stream { objects, listed: true, ..Stream::default() });
                    froms.push(Some(version));
                }
                None => {
                    streams.push(Stream::default());
                    froms.push(None);
                }
            }
        }
        let shared = Arc::new(Shared { state: Mutex::new(State { streams, version: 0 }), wake });
        // Renewed before the connection's read deadline could cut a quiet watch off.
        let timeout = WATCH_TIMEOUT.min(kube.read_timeout.mul_f64(0.75)).as_secs().max(1);
        let timeout = u32::try_from(timeout).unwrap_or(290);
        let namespace = match scope {
            Scope::Namespace(ns) => Some(ns.as_str()),
            Scope::AllNamespaces => None,
        };
        let tasks = queries
            .iter()
            .zip(froms)
            .enumerate()
            .map(|(index, (query, from))| {
                let url = match query.kind {
                    Kind::Deployments => Deployment::url_path(&(), namespace),
                    Kind::StatefulSets => StatefulSet::url_path(&(), namespace),
                    Kind::Pods => k8s_openapi::api::core::v1::Pod::url_path(&(), namespace),
                    Kind::Hpas => HorizontalPodAutoscaler::url_path(&(), namespace),
                    Kind::Milvuses => DynamicObject::url_path(&read::milvus_resource(), namespace),
                };
                let task = Task {
                    shared: shared.clone(),
                    index,
                    kind: query.kind,
                    scope: scope.clone(),
                    client: kube.client.clone(),
                    chunk_size: kube.chunk_size,
                    url,
                    labels: query.labels.clone(),
                    timeout,
                };
                match query.kind {
                    Kind::Deployments => {
                        tokio::spawn(task.run(from, |d: SlimDeployment| {
                            Decoded::of(Object::Deployment(Box::new(d.into())))
                        }))
                    }
                    Kind::StatefulSets => tokio::spawn(task.run(from, |s: SlimStatefulSet| {
                        Decoded::of(Object::StatefulSet(Box::new(s.into())))
                    })),
                    Kind::Pods => {
                        tokio::spawn(task.run(from, |p: Pod| Decoded::of(Object::Pod(Box::new(p)))))
                    }
                    Kind::Hpas => tokio::spawn(
                        task.run(from, |h: HorizontalPodAutoscaler| Decoded::of(Object::Hpa(Box::new(h)))),
                    ),
                    Kind::Milvuses => tokio::spawn(task.run(from, Decoded::milvus)),
                }
            })
            .collect();
        Follow { shared, wake: receiver, tasks, queries, server: kube.server.clone(), seen: None }
    }

    /// The unselected streams of [`read::read`]'s `kinds`.
    pub fn kinds(kube: &Kube, scope: &Scope, kinds: Kinds) -> Follow {
        Follow::start(kube, scope, Query::for_kinds(kinds))
    }

    /// The streams of [`Query::for_release`]: `kinds`, with only the pods of `release`.
    pub fn release(kube: &Kube, scope: &Scope, kinds: Kinds, release: &str) -> Follow {
        Follow::start(kube, scope, Query::for_release(kinds, release))
    }

    /// As [`Follow::release`], each stream started from `seed` where it can be (see [`Follow::seeded`]).
    pub fn release_seeded(kube: &Kube, scope: &Scope, kinds: Kinds, release: &str, seed: &Seed) -> Follow {
        Follow::seeded(kube, scope, Query::for_release(kinds, release), seed)
    }

    /// The current view: waits only until every stream's initial list is done. A required kind (or an
    /// optional one, for an error other than a refusal) that cannot be listed at first is an error.
    pub async fn latest(&mut self) -> Result<Reading, Error> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(error) = refusal(&mut state) {
                    return Err(self.error(error));
                }
                if self.seen.is_some() || state.streams.iter().all(|s| s.listed) {
                    let reading = self.view(&state);
                    self.seen = Some((state.version, Instant::now()));
                    return Ok(reading);
                }
                if let Some(error) =
                    state.streams.iter_mut().find_map(|s| if s.listed { None } else { s.error.take() })
                {
                    return Err(self.error(error));
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
            if let Some(error) = refused {
                return Err(self.error(error));
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
        let found = self.shared.lock().streams.iter_mut().find_map(|s| s.error.take());
        found.map(|error| self.error(error))
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
        Reading { inventory, notes, listed: Vec::new() }
    }

    /// A stream's error as the user reads it.
    fn error(&self, error: kube::Error) -> Error {
        Error::api(error, &self.server)
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The refusal of a stream whose watch the server refused.
fn refusal(state: &mut State) -> Option<kube::Error> {
    state.streams.iter_mut().find_map(|s| s.refused.take())
}

/// 401 or 403: not allowed, and trying again will not change it.
fn is_refusal(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if matches!(status.code, 401 | 403))
}

/// 410 Gone: the `resourceVersion` is older than the history the server keeps.
fn is_gone(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 410)
}

/// Which request of a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    List,
    Watch,
}

/// How a watch ended: where the next one starts.
enum Resume {
    /// Watch again from this `resourceVersion` (the server ended the watch, or it failed and was waited
    /// out).
    From(String),
    /// The `resourceVersion` is gone: list again.
    List,
    /// The kind is refused: the stream is done.
    Stop,
}

/// One stream's task: lists (unless seeded), watches, and applies what it sees to its [`Stream`].
struct Task {
    shared: Arc<Shared>,
    index: usize,
    kind: Kind,
    scope: Scope,
    client: kube::Client,
    /// Objects per list page (`--chunk-size`).
    chunk_size: u32,
    /// The collection, in the scope.
    url: String,
    labels: Option<String>,
    /// `timeoutSeconds` of each watch.
    timeout: u32,
}

impl Task {
    /// Follows the collection from `from` (a seed's `resourceVersion`), else from a list, until the
    /// kind is refused or the task is aborted. Objects are decoded as `T`, kept as `decode` makes them.
    async fn run<T>(self, mut from: Option<String>, decode: impl Fn(T) -> Decoded)
    where
        T: Clone + DeserializeOwned + Send + 'static,
    {
        let mut backoff = backoff();
        loop {
            let version = match from.take() {
                Some(version) => version,
                None => match self.list(&decode).await {
                    Ok(version) => {
                        backoff = self::backoff();
                        version
                    }
                    Err(error) => {
                        if self.failed(Phase::List, error) {
                            return;
                        }
                        wait_out(&mut backoff).await;
                        continue;
                    }
                },
            };
            match self.watch(version, &decode, &mut backoff).await {
                Resume::From(version) => from = Some(version),
                Resume::List => {}
                Resume::Stop => return,
            }
        }
    }

    /// Lists the collection page by page ([`read::list_pages`]) and replaces the stream's objects with
    /// the whole list at once. Gives the list's `resourceVersion`.
    async fn list<T>(&self, decode: &impl Fn(T) -> Decoded) -> Result<String, kube::Error>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let (items, version) =
            read::list_pages::<T>(&self.client, self.chunk_size, &self.url, self.labels.as_deref()).await?;
        let objects: BTreeMap<_, _> = items
            .into_iter()
            .map(decode)
            .filter_map(|decoded| Some((decoded.key, decoded.object?)))
            .collect();
        self.change(|stream| {
            stream.objects = objects;
            stream.listed = true;
        });
        Ok(version)
    }

    /// One watch from `version`, applying its events until it ends.
    async fn watch<T>(
        &self,
        mut version: String,
        decode: &impl Fn(T) -> Decoded,
        backoff: &mut ExponentialBackoff,
    ) -> Resume
    where
        T: Clone + DeserializeOwned + Send + 'static,
    {
        // With bookmarks (the default): the watch stays current while nothing changes.
        let mut params = WatchParams::default().timeout(self.timeout);
        if let Some(labels) = &self.labels {
            params = params.labels(labels);
        }
        let request = kube::core::Request::new(&self.url).watch(&params, &version);
        let events = match request.map_err(kube::Error::BuildRequest) {
            Ok(mut request) => {
                request.extensions_mut().insert("watch");
                self.client.request_events::<T>(request).await
            }
            Err(error) => Err(error),
        };
        let events = match events {
            Ok(events) => events,
            Err(error) if is_gone(&error) => return Resume::List,
            Err(error) => return self.retry(error, version, backoff).await,
        };
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                    let decoded = decode(object);
                    version = decoded.version.unwrap_or(version);
                    self.change(|stream| match decoded.object {
                        Some(object) => {
                            stream.objects.insert(decoded.key, object);
                        }
                        None => {
                            stream.objects.remove(&decoded.key);
                        }
                    });
                }
                Ok(WatchEvent::Deleted(object)) => {
                    let decoded = decode(object);
                    version = decoded.version.unwrap_or(version);
                    self.change(|stream| {
                        stream.objects.remove(&decoded.key);
                    });
                }
                Ok(WatchEvent::Bookmark(bookmark)) => {
                    version = bookmark.metadata.resource_version;
                    self.working();
                }
                Ok(WatchEvent::Error(status)) if status.code == 410 => return Resume::List,
                Ok(WatchEvent::Error(status)) => {
                    return self.retry(kube::Error::Api(status), version, backoff).await;
                }
                Err(error) if is_gone(&error) => return Resume::List,
                Err(error) => return self.retry(error, version, backoff).await,
            }
            *backoff = self::backoff();
        }
        // The server ended the watch (timeoutSeconds): renewed at once from where it was.
        Resume::From(version)
    }

    /// A watch from `version` failed: unless the kind is refused, watch again from there after the
    /// next backoff delay.
    async fn retry(&self, error: kube::Error, version: String, backoff: &mut ExponentialBackoff) -> Resume {
        if self.failed(Phase::Watch, error) {
            return Resume::Stop;
        }
        wait_out(backoff).await;
        Resume::From(version)
    }

    /// Applies a change to the stream's objects; the stream works again.
    fn change(&self, apply: impl FnOnce(&mut Stream)) {
        {
            let mut state = self.shared.lock();
            let State { streams, version } = &mut *state;
            if let Some(stream) = streams.get_mut(self.index) {
                apply(stream);
                stream.error = None;
                *version += 1;
            }
        }
        self.shared.wake.send_replace(());
    }

    /// The stream works again (a bookmark arrived), with nothing new to see.
    fn working(&self) {
        if let Some(stream) = self.shared.lock().streams.get_mut(self.index) {
            stream.error = None;
        }
    }

    /// Records a failure; true when the stream is done (its kind refused: it stays as it is, or empty).
    fn failed(&self, phase: Phase, error: kube::Error) -> bool {
        let stop = {
            let mut state = self.shared.lock();
            let State { streams, version } = &mut *state;
            let Some(stream) = streams.get_mut(self.index) else {
                return true;
            };
            if phase == Phase::Watch && stream.listed && is_refusal(&error) {
                stream.refused = Some(error);
                true
            } else if phase == Phase::List && !stream.listed && self.kind.optional() {
                match read::soft_note(error, self.kind.resource(), &self.scope) {
                    Ok(note) => {
                        stream.note = note;
                        stream.listed = true;
                        *version += 1;
                        true
                    }
                    Err(error) => {
                        stream.error = Some(error);
                        false
                    }
                }
            } else {
                stream.error = Some(error);
                false
            }
        };
        self.shared.wake.send_replace(());
        stop
    }
}

/// Waits for the next backoff delay.
async fn wait_out(backoff: &mut ExponentialBackoff) {
    tokio::time::sleep(backoff.next().unwrap_or(Duration::from_secs(30))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Pod {
            metadata: crate::milvus::PodMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(labels),
                ..crate::milvus::PodMeta::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn a_seed_gives_each_stream_what_its_own_list_would_have() {
        let [by_instance, by_release] = read::release_pod_selectors(&["my".to_string()]).unwrap();
        let inventory = Inventory {
            pods: vec![
                pod("milvus", &[("app.kubernetes.io/instance", "my")]),
                pod("minio", &[("release", "my")]),
                pod("both", &[("app.kubernetes.io/instance", "my-etcd"), ("release", "my")]),
            ],
            ..Inventory::default()
        };
        let scope = Scope::Namespace("default".into());
        let instance = Query { kind: Kind::Pods, labels: Some(by_instance) };
        let release = Query { kind: Kind::Pods, labels: Some(by_release) };
        let seed = Seed {
            scope: scope.clone(),
            inventory,
            listed: vec![
                (instance.clone(), "7".into()),
                (release.clone(), "8".into()),
                (Query::all(Kind::Deployments), "9".into()),
            ],
        };
        let names = |query: &Query| {
            let (objects, version) = seed.start(&scope, query).unwrap();
            (objects.into_keys().map(|(_, name)| name).collect::<Vec<_>>(), version)
        };
        assert_eq!(names(&instance), (vec!["both".to_string(), "milvus".to_string()], "7".to_string()));
        assert_eq!(names(&release), (vec!["both".to_string(), "minio".to_string()], "8".to_string()));
        assert_eq!(names(&Query::all(Kind::Deployments)), (Vec::new(), "9".to_string()));
        // Not listed (refused, or not asked for), or listed elsewhere: the stream lists for itself.
        assert!(seed.start(&scope, &Query::all(Kind::StatefulSets)).is_none());
        assert!(seed.start(&Scope::Namespace("other".into()), &instance).is_none());
    }
}
