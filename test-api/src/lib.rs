//! A loopback Kubernetes API server for `kubectl-milvus` integration tests and the sandbox.
//!
//! The server speaks real HTTPS on `127.0.0.1` (self-signed CA in a generated kubeconfig, bearer
//! tokens per user), stores objects in memory as JSON, and serves enough of the Kubernetes API
//! (discovery, list/get/watch with label and field selectors, pagination, create/update/patch/
//! delete, the `scale` subresource, `dryRun`) for `kubectl`, `kube-rs` and the plugin. A
//! deterministic in-process controller turns Deployments, StatefulSets and Jobs into ReplicaSets
//! and Pods with configurable [`PodBehaviour`]s; faults and latency can be injected at run time and
//! every request is recorded.
//!
//! ```no_run
//! use milvus_test_api::{Fault, PodBehaviour, Rules, TestApi};
//! use std::time::Duration;
//!
//! let api = TestApi::builder()
//!     .fixture("helm/default.yaml")          // release my-release in namespace default
//!     .helm_install(true)                    // Helm annotations + release Secret
//!     .pod_behaviour("my-release-milvus-querynode", 0, PodBehaviour::oom_killed(5))
//!     .user("viewer", Rules::read_only().deny("list", "milvuses"))
//!     .start();
//! let kubeconfig = api.kubeconfig_path();    // pass as KUBECONFIG to the plugin
//! api.set_fault(Fault::status(500).on("GET", "/apis/autoscaling/*"));
//! let d = api.get_json("apps", "v1", "deployments", Some("default"), "my-release-milvus-querynode");
//! assert_eq!(d.unwrap()["status"]["readyReplicas"], serde_json::Value::Null); // crash-looping: 0 ready
//! assert!(api.requests().iter().all(|r| !r.is_mutating()));
//! api.wait_until(|s| s.count("", "pods", Some("default")) > 0, Duration::from_secs(5)).unwrap();
//! # let _ = kubeconfig;
//! ```
//!
//! # What is served
//!
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}`
//!   (legacy documents; aggregated discovery and `/openapi/*` answer as plain JSON / 404 and
//!   clients fall back). CRDs loaded into the store add their group and resources.
//! - Resources: pods, namespaces, nodes (three: `node-1..3`), events, secrets, configmaps,
//!   services, serviceaccounts, persistentvolumeclaims; deployments, statefulsets, replicasets,
//!   daemonsets; jobs; horizontalpodautoscalers (stored as `autoscaling/v2`, also served as `v1`);
//!   poddisruptionbudgets; RBAC objects; customresourcedefinitions; and any custom resource whose
//!   CRD is loaded (`milvuses.milvus.io`). Unknown kinds in a fixture are skipped.
//! - Verbs: list (namespaced and cluster-wide; `labelSelector`, `fieldSelector`, `limit`/`continue`),
//!   get, watch (`watch=true`, `resourceVersion`, `timeoutSeconds`, `sendInitialEvents`), create,
//!   update, patch (merge, strategic-merge treated as merge, JSON patch, apply treated as merge),
//!   delete; subresources `scale` (autoscaling/v1 `Scale`) and `status`; `dryRun=All`.
//!   `kubectl get`'s `as=Table` requests get server-side tables (pods, deployments, statefulsets,
//!   replicasets, jobs, HPAs, CRD printer columns, otherwise NAME/AGE).
//! - Errors are `metav1.Status` objects with the real server's messages (NotFound, Forbidden,
//!   Unauthorized, Conflict, AlreadyExists, Invalid, BadRequest, MethodNotAllowed).
//!
//! # Simulated controllers
//!
//! Every Deployment gets a ReplicaSet `<deployment>-<hash>` (hash of the pod template) and pods
//! `<replicaset>-<suffix>`; every StatefulSet gets pods `<sts>-0..N`; every Job one pod, Completed.
//! Names, uids and IPs are derived from names (stable across runs); `creationTimestamp` is
//! `start − age`. Workload status (`replicas`, `readyReplicas`, `availableReplicas`,
//! `updatedReplicas`, `currentReplicas`, `observedGeneration`, Deployment conditions) follows the
//! pods. Misbehaving pods also get the Warning [Event](https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/)
//! the kubelet or scheduler would emit. The stand-in Milvus Operator (off by default, see
//! [`TestApiBuilder::operator_reconciler`]) copies `spec.components.<comp>.replicas` of a `Milvus`
//! object to its Deployments.
//!
//! # Backends
//!
//! [`Backend::Loopback`] (the default) is everything above. [`Backend::KubeApiserver`]
//! (`MILVUS_TEST_BACKEND=kube-apiserver`, or [`TestApiBuilder::backend`]) runs the same builder
//! against a real kube-apiserver 1.20 + kube-controller-manager + etcd started by
//! `scripts/control-plane.sh up` (one control plane per `TestApi`, `down` on drop; the binaries
//! must have been built once with `scripts/control-plane.sh build`). There, the sources are
//! created over HTTPS (HPAs as `autoscaling/v2beta2`, `policy/v1` as `v1beta1`, the Milvus CR's
//! status through its status subresource, its uid in the ownerReferences), users get tokens and
//! RBAC objects equivalent to their [`Rules`], the real controllers create ReplicaSets and pods
//! and an in-process kubelet stand-in gives each pod the status of its [`PodBehaviour`] (pod
//! `index` = the lowest index free in its workload when the pod appears; StatefulSet ordinals),
//! and the Milvus Operator stand-in runs when enabled. `start()` and the mutating helpers return
//! once the controllers have converged ([`TestApi::settle`]). [`TestApi::requests`] reads the API
//! server's audit log (the kubeconfig's users only; no `content_type`, `body` only for writes).
//! Not available there: faults, latency, `stop_listening` (they panic; check
//! [`TestApi::supports_faults`]), `progress_deadline_exceeded` (an error), the builder's
//! `server_version` and `port` (ignored), and ages: objects are created now (the pods' container
//! and condition timestamps are backdated by `age`), so a `Terminating` pod is not minutes old.
//!
//! # Limits
//!
//! Continue tokens do not give a snapshot (later pages show the current state); there is no
//! garbage collection beyond one owner level plus pods; no admission, defaulting or validation
//! beyond `spec.replicas`, names and namespaces; strategic-merge patches replace lists instead of
//! merging them by key; deletion is immediate (no finalizers, no graceful termination).
#![warn(missing_docs)]

mod auth;
mod controller;
mod faults;
mod fixtures;
mod real;
mod resources;
mod selector;
mod server;
mod status;
mod store;
mod table;
mod tls;
mod util;

pub use auth::Rules;
pub use controller::PodBehaviour;
pub use faults::{Fault, FaultAction};
pub use fixtures::{FIXTURE_RELEASE, MilvusStatus, decode_helm_release, fixtures_dir, parse_yaml_docs};
pub use label_selector::Selector as LabelSelector;
pub use resources::ResKey;
pub use selector::FieldSelector;

use controller::{Controller, Target};
use fixtures::{Origin, Source};
use selector::MatchesObject as _;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::Store;

/// Which API server a [`TestApi`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The in-process loopback API (default): deterministic names, fault injection, fast.
    Loopback,
    /// A real kube-apiserver 1.20 + kube-controller-manager + etcd started by
    /// `scripts/control-plane.sh` (binaries built once with `scripts/control-plane.sh build`), with
    /// an in-process kubelet stand-in. Selected with `MILVUS_TEST_BACKEND=kube-apiserver`.
    KubeApiserver,
}

impl Backend {
    /// The backend named by `MILVUS_TEST_BACKEND` (`loopback`, the default, or `kube-apiserver`).
    ///
    /// # Panics
    /// On any other value.
    pub fn from_env() -> Backend {
        match std::env::var("MILVUS_TEST_BACKEND").unwrap_or_default().as_str() {
            "" | "loopback" => Backend::Loopback,
            "kube-apiserver" => Backend::KubeApiserver,
            other => panic!("MILVUS_TEST_BACKEND={other}: expected `loopback` or `kube-apiserver`"),
        }
    }

    /// `loopback` or `kube-apiserver`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Loopback => "loopback",
            Backend::KubeApiserver => "kube-apiserver",
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// 1-based sequence number.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Authenticated user, if the token was known.
    pub user: Option<String>,
    /// A non-reversible fingerprint of the bearer token (never the token itself).
    pub credential: Option<String>,
    /// Response status (0 when the connection was dropped by a fault).
    pub status: u16,
    /// Kubernetes verb (`get`, `list`, `watch`, `patch`, …) for resource requests.
    pub verb: Option<String>,
    /// `dryRun=All` was set.
    pub dry_run: bool,
    /// `watch=true` was set.
    pub watch: bool,
    /// An injected fault answered (or dropped) this request.
    pub fault: bool,
    /// The connection was closed without a response.
    pub dropped: bool,
    /// Request Content-Type.
    pub content_type: Option<String>,
    /// Request body (JSON, or the raw text as a JSON string).
    pub body: Option<Value>,
    /// User-Agent header.
    pub user_agent: Option<String>,
    /// Time the server spent answering (for watches: until the stream started).
    pub duration: Duration,
}

impl RequestRecord {
    /// Value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Any method other than GET/HEAD/OPTIONS.
    pub fn is_mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }

    /// Discovery and version requests (`/api`, `/apis…` without a resource, `/version`).
    pub fn is_discovery(&self) -> bool {
        self.verb.is_none()
    }
}

pub(crate) struct State {
    pub store: Store,
    pub ctl: Controller,
    pub users: Vec<auth::User>,
    pub faults: faults::Faults,
    pub log: Vec<RequestRecord>,
    pub git_version: String,
    pub port: u16,
    pub listening: bool,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    pub rv_watch: tokio::sync::watch::Sender<u64>,
    pub timer: tokio::sync::Notify,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub stop_listening: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tell watchers, waiters and the timer that the store changed.
    pub fn changed(&self, rv: u64) {
        self.rv_watch.send_replace(rv);
        self.cond.notify_all();
        self.timer.notify_one();
    }

    /// Wake [`TestApi::wait_until`] and [`TestApi::stop_listening`] waiters.
    pub fn notify_waiters(&self) {
        self.cond.notify_all();
    }

    pub fn record(&self, mut rec: RequestRecord, started: Instant) {
        rec.duration = started.elapsed();
        let mut st = self.lock();
        rec.seq = st.log.len() as u64 + 1;
        st.log.push(rec);
        drop(st);
        self.cond.notify_all();
    }
}

/// Read-only view of the server state, given to [`TestApi::wait_until`] and [`TestApi::with_state`].
///
/// On the kube-apiserver backend every query is a request to the server (made once per view),
/// objects are as served (HPAs through `autoscaling/v2beta2`), and the request log is read from
/// the audit log.
pub struct StateView<'a> {
    inner: View<'a>,
}

enum View<'a> {
    Loopback { store: &'a Store, log: &'a [RequestRecord] },
    Real(real::RealView<'a>),
}

impl StateView<'_> {
    /// One stored object (storage version; HPAs are stored as autoscaling/v2).
    pub fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        match &self.inner {
            View::Loopback { store, .. } => {
                store.get(&ResKey::new(group, plural), namespace.unwrap_or_default(), name)
            }
            View::Real(r) => r.get(group, plural, namespace, name),
        }
    }

    /// Objects of a type (one namespace, or all), ordered by namespace and name.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        match &self.inner {
            View::Loopback { store, .. } => {
                store.list(&ResKey::new(group, plural), namespace, None).collect()
            }
            View::Real(r) => r.list(group, plural, namespace),
        }
    }

    /// Number of objects of a type (one namespace, or all).
    pub fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        match (&self.inner, namespace) {
            (View::Loopback { store, .. }, None) => store.count(&ResKey::new(group, plural)),
            (View::Loopback { store, .. }, Some(ns)) => {
                store.list(&ResKey::new(group, plural), Some(ns), None).count()
            }
            (View::Real(r), _) => r.list(group, plural, namespace).len(),
        }
    }

    /// The request log.
    pub fn requests(&self) -> &[RequestRecord] {
        match &self.inner {
            View::Loopback { log, .. } => log,
            View::Real(r) => r.requests(),
        }
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        match &self.inner {
            View::Loopback { store, .. } => store.rv(),
            View::Real(r) => r.real.resource_version(),
        }
    }
}

/// Configures and starts a [`TestApi`]. Created by [`TestApi::builder`].
///
/// Source modifiers ([`release`](Self::release), [`namespace`](Self::namespace),
/// [`helm_install`](Self::helm_install), [`helm_values`](Self::helm_values),
/// [`milvus_status`](Self::milvus_status)) apply to the most recently added source; called before
/// any source, they set the defaults for the sources added afterwards.
#[derive(Debug)]
#[must_use]
pub struct TestApiBuilder {
    sources: Vec<Source>,
    defaults: Source,
    default_behaviour: PodBehaviour,
    rules: Vec<(Target, PodBehaviour)>,
    selector_errors: Vec<String>,
    users: Vec<(String, Rules)>,
    age: Duration,
    scale_up_delay: Duration,
    progress_deadline_exceeded: Vec<String>,
    reconciler: bool,
    git_version: String,
    port: u16,
    kubeconfig_path: Option<PathBuf>,
    kubeconfig_namespace: String,
    current_context: String,
    replicas: Vec<(String, i64)>,
    backend: Option<Backend>,
}

impl Default for TestApiBuilder {
    fn default() -> Self {
        TestApiBuilder {
            sources: Vec::new(),
            defaults: Source::new(Origin::Json(vec![])),
            default_behaviour: PodBehaviour::Ready,
            rules: Vec::new(),
            selector_errors: Vec::new(),
            users: Vec::new(),
            age: Duration::from_secs(300),
            scale_up_delay: Duration::ZERO,
            progress_deadline_exceeded: Vec::new(),
            reconciler: false,
            git_version: "v1.33.0".into(),
            port: 0,
            kubeconfig_path: None,
            kubeconfig_namespace: "default".into(),
            current_context: "admin".into(),
            replicas: Vec::new(),
            backend: None,
        }
    }
}

impl TestApiBuilder {
    fn add(mut self, origin: Origin) -> Self {
        let mut s = self.defaults.clone();
        s.origin = origin;
        self.sources.push(s);
        self
    }

    fn last(&mut self) -> &mut Source {
        match self.sources.last_mut() {
            Some(s) => s,
            None => &mut self.defaults,
        }
    }

    /// Load a fixture file (path relative to the fixtures directory, see [`fixtures_dir`], or an
    /// existing path). Objects keep the fixture's release `my-release` unless [`release`](Self::release)
    /// renames it.
    pub fn fixture(self, path: &str) -> Self {
        self.add(Origin::File(path.to_string()))
    }

    /// Load a fixture as release `release` in namespace `namespace` (every `my-release` in the
    /// objects is rewritten).
    pub fn fixture_as(self, path: &str, release: &str, namespace: &str) -> Self {
        self.fixture(path).release(release).namespace(namespace)
    }

    /// Load objects from a (multi-document) YAML string.
    pub fn yaml(self, text: &str) -> Self {
        self.add(Origin::Yaml(text.to_string()))
    }

    /// Load objects given as JSON.
    pub fn objects(self, objects: Vec<Value>) -> Self {
        self.add(Origin::Json(objects))
    }

    /// Load one object given as JSON.
    pub fn object(self, object: Value) -> Self {
        self.objects(vec![object])
    }

    /// Rename the fixture's release (`my-release`) in the latest source.
    pub fn release(mut self, name: &str) -> Self {
        self.last().release = Some(name.to_string());
        self
    }

    /// Put every namespaced object of the latest source into `namespace` (default: the object's
    /// own namespace, else `default`).
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.last().namespace = Some(namespace.to_string());
        self
    }

    /// Emulate `helm install` for the latest source: `meta.helm.sh/release-*` annotations on every
    /// object and the release Secret `sh.helm.release.v1.<release>.v1`.
    pub fn helm_install(mut self, yes: bool) -> Self {
        self.last().helm_install = yes;
        self
    }

    /// The user-supplied values stored as `config` in the Helm release Secret.
    pub fn helm_values(mut self, values: Value) -> Self {
        self.last().helm_values = values;
        self
    }

    /// Status given to `Milvus` objects of the latest source (default [`MilvusStatus::Healthy`]).
    pub fn milvus_status(mut self, status: MilvusStatus) -> Self {
        self.last().milvus_status = status;
        self
    }

    /// Default behaviour of every pod (default [`PodBehaviour::Ready`]).
    pub fn pods(mut self, behaviour: PodBehaviour) -> Self {
        self.default_behaviour = behaviour;
        self
    }

    /// Behaviour of pod `index` (0-based; for StatefulSets the ordinal) of workload `workload`
    /// (`name` or `namespace/name` of a Deployment, StatefulSet or Job).
    pub fn pod_behaviour(mut self, workload: &str, index: u32, behaviour: PodBehaviour) -> Self {
        self.rules.push((Target::Workload { name: workload.to_string(), index: Some(index) }, behaviour));
        self
    }

    /// Behaviour of every pod of a workload.
    pub fn workload_behaviour(mut self, workload: &str, behaviour: PodBehaviour) -> Self {
        self.rules.push((Target::Workload { name: workload.to_string(), index: None }, behaviour));
        self
    }

    /// Behaviour of every pod whose template labels match `selector` (e.g. `component=querynode`).
    pub fn selector_behaviour(mut self, selector: &str, behaviour: PodBehaviour) -> Self {
        match LabelSelector::parse(selector) {
            Ok(s) => self.rules.push((Target::Selector(s), behaviour)),
            Err(e) => self.selector_errors.push(format!("{selector}: {e}")),
        }
        self
    }

    /// Add a user with these rules (a context and user entry are added to the kubeconfig).
    /// The user `admin` always exists with [`Rules::admin`] unless redefined here.
    pub fn user(mut self, name: &str, rules: Rules) -> Self {
        self.users.retain(|(n, _)| n != name);
        self.users.push((name.to_string(), rules));
        self
    }

    /// The kubeconfig's current context (a user name; default `admin`).
    pub fn current_user(mut self, name: &str) -> Self {
        self.current_context = name.to_string();
        self
    }

    /// Age of everything loaded: `creationTimestamp = start − age` (default 5 minutes).
    pub fn age(mut self, age: Duration) -> Self {
        self.age = age;
        self
    }

    /// Pods created after start-up (scale-up) become ready after this delay (default: at once).
    pub fn scale_up_ready_delay(mut self, delay: Duration) -> Self {
        self.scale_up_delay = delay;
        self
    }

    /// Mark a Deployment's `Progressing` condition False with reason `ProgressDeadlineExceeded`.
    pub fn progress_deadline_exceeded(mut self, deployment: &str) -> Self {
        self.progress_deadline_exceeded.push(deployment.to_string());
        self
    }

    /// Run the stand-in Milvus Operator reconciler (off by default).
    pub fn operator_reconciler(mut self, on: bool) -> Self {
        self.reconciler = on;
        self
    }

    /// Override `spec.replicas` of a loaded Deployment or StatefulSet (`name` or `ns/name`),
    /// e.g. to build a 1,000-pod release.
    pub fn replicas(mut self, workload: &str, replicas: i64) -> Self {
        self.replicas.push((workload.to_string(), replicas));
        self
    }

    /// `gitVersion` served at `/version` (default `v1.33.0`).
    pub fn server_version(mut self, git_version: &str) -> Self {
        self.git_version = git_version.to_string();
        self
    }

    /// Listen on this port instead of an ephemeral one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Write the kubeconfig here instead of a temporary directory.
    pub fn kubeconfig_path(mut self, path: impl AsRef<Path>) -> Self {
        self.kubeconfig_path = Some(path.as_ref().to_path_buf());
        self
    }

    /// Namespace of every kubeconfig context (default `default`).
    pub fn kubeconfig_namespace(mut self, ns: &str) -> Self {
        self.kubeconfig_namespace = ns.to_string();
        self
    }

    /// Which server to run (default: [`Backend::from_env`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Start the server, panicking with a message on failure.
    pub fn start(self) -> TestApi {
        match self.try_start() {
            Ok(api) => api,
            Err(e) => panic!("milvus-test-api failed to start: {e}"),
        }
    }

    /// Start the server.
    pub fn try_start(self) -> Result<TestApi, String> {
        if !self.selector_errors.is_empty() {
            return Err(format!("invalid selectors: {}", self.selector_errors.join("; ")));
        }
        if self.backend.unwrap_or_else(Backend::from_env) == Backend::KubeApiserver {
            return self.start_real();
        }
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let seed = format!("{}-{}-{n}-{:?}", std::process::id(), util::now_ts(), Instant::now());

        let mut users: Vec<auth::User> = vec![auth::User {
            name: "admin".into(),
            token: auth::new_token("admin", &seed),
            rules: Rules::admin(),
        }];
        for (name, rules) in &self.users {
            users.retain(|u| u.name != *name);
            users.push(auth::User {
                name: name.clone(),
                token: auth::new_token(name, &seed),
                rules: rules.clone(),
            });
        }

        let mut ctl = Controller::new(self.age);
        ctl.default = self.default_behaviour.clone();
        ctl.rules = self.rules.clone();
        ctl.scale_up_delay = self.scale_up_delay;
        ctl.progress_deadline_exceeded = self.progress_deadline_exceeded.iter().cloned().collect();
        ctl.reconciler = self.reconciler;
        let mut store = Store::default();
        let created = util::ts(util::minus(ctl.start_wall, self.age));
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            fixtures::ensure_namespace(&mut store, ns, &created);
        }
        for i in 1..=3 {
            store.put(&ResKey::new("", "nodes"), node_object(i, &created, &self.git_version));
        }
        fixtures::load(&mut store, &self.sources, self.age, ctl.start_wall)?;
        apply_replicas(&mut store, &self.replicas)?;
        controller::reconcile_all(&mut store, &mut ctl, Instant::now());
        ctl.initial = false;

        let tls = tls::generate().map_err(|e| format!("TLS: {e}"))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port))
            .map_err(|e| format!("bind 127.0.0.1:{}: {e}", self.port))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let url = format!("https://127.0.0.1:{port}");

        let (dir, owned_dir) = match &self.kubeconfig_path {
            Some(p) => (p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")), false),
            None => (
                std::env::temp_dir().join(format!("milvus-test-api-{}-{n}-{port}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let kubeconfig = self.kubeconfig_path.clone().unwrap_or_else(|| dir.join("kubeconfig"));
        let pairs: Vec<(String, String)> = users.iter().map(|u| (u.name.clone(), u.token.clone())).collect();
        tls::write_kubeconfig(
            &kubeconfig,
            &url,
            &tls.ca_pem,
            &pairs,
            &self.current_context,
            &self.kubeconfig_namespace,
        )
        .map_err(|e| format!("kubeconfig: {e}"))?;

        let rv = store.rv();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                ctl,
                users,
                faults: faults::Faults::default(),
                log: Vec::new(),
                git_version: self.git_version.clone(),
                port,
                listening: true,
            }),
            cond: Condvar::new(),
            rv_watch: tokio::sync::watch::channel(rv).0,
            timer: tokio::sync::Notify::new(),
            shutdown: tokio::sync::watch::channel(false).0,
            stop_listening: tokio::sync::watch::channel(false).0,
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("milvus-test-api")
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let s2 = shared.clone();
        let server_config = tls.server_config.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("milvus-test-api".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            l
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    server::serve(s2, listener, server_config).await;
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| e.to_string())?;
        ready_rx.recv().map_err(|e| e.to_string())??;
        Ok(TestApi {
            shared,
            thread: Some(thread),
            port,
            url,
            kubeconfig,
            dir,
            owned_dir,
            ca_pem: tls.ca_pem,
            namespace: self.kubeconfig_namespace,
            real: None,
        })
    }

    fn start_real(self) -> Result<TestApi, String> {
        if !self.progress_deadline_exceeded.is_empty() {
            return Err("progress_deadline_exceeded is not supported on the kube-apiserver backend \
                 (the real Deployment controller decides when a rollout times out)"
                .into());
        }
        let mut ctl = Controller::new(self.age);
        ctl.default = self.default_behaviour.clone();
        ctl.rules = self.rules.clone();
        ctl.scale_up_delay = self.scale_up_delay;
        let cfg = real::Config {
            sources: self.sources,
            replicas: self.replicas,
            users: self.users,
            ctl,
            age: self.age,
            kubeconfig_path: self.kubeconfig_path,
            kubeconfig_namespace: self.kubeconfig_namespace.clone(),
            current_context: self.current_context,
            reconciler: self.reconciler,
        };
        let r = real::Real::start(cfg)?;
        // The users live in the shared state too, for kubeconfig_for() and token().
        let users = r
            .tokens
            .iter()
            .map(|(name, token)| auth::User {
                name: name.clone(),
                token: token.clone(),
                rules: Rules::none(),
            })
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store: Store::default(),
                ctl: Controller::new(self.age),
                users,
                faults: faults::Faults::default(),
                log: Vec::new(),
                git_version: r.git_version.clone(),
                port: r.port,
                listening: true,
            }),
            cond: Condvar::new(),
            rv_watch: tokio::sync::watch::channel(0).0,
            timer: tokio::sync::Notify::new(),
            shutdown: tokio::sync::watch::channel(false).0,
            stop_listening: tokio::sync::watch::channel(false).0,
        });
        Ok(TestApi {
            shared,
            thread: None,
            port: r.port,
            url: r.url.clone(),
            kubeconfig: r.kubeconfig.clone(),
            dir: r.dir.clone(),
            owned_dir: false,
            ca_pem: r.ca_pem.clone(),
            namespace: self.kubeconfig_namespace,
            real: Some(Box::new(r)),
        })
    }
}

/// Override `spec.replicas` of loaded Deployments and StatefulSets (`name` or `ns/name`).
fn apply_replicas(store: &mut Store, replicas: &[(String, i64)]) -> Result<(), String> {
    for (w, r) in replicas {
        let (ns, name) = match w.split_once('/') {
            Some((a, b)) => (Some(a), b),
            None => (None, w.as_str()),
        };
        let mut found = false;
        for plural in ["deployments", "statefulsets"] {
            let k = ResKey::new("apps", plural);
            let hits: Vec<Value> =
                store.list(&k, ns, None).filter(|o| util::meta_str(o, "name") == name).cloned().collect();
            for mut o in hits {
                o["spec"]["replicas"] = json!(r);
                store.put(&k, o);
                found = true;
            }
        }
        if !found {
            return Err(format!("replicas({w}): no such Deployment or StatefulSet"));
        }
    }
    Ok(())
}

fn node_object(i: u32, created: &str, version: &str) -> Value {
    let name = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": util::uid(&["Node", &name]), "creationTimestamp": created,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": format!("10.244.{i}.0/24")},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "31Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": created, "lastTransitionTime": created}],
            "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", 10 + i)}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": version, "containerRuntimeVersion": "containerd://2.0.5", "osImage": "Ubuntu 24.04 LTS", "kernelVersion": "6.8.0", "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
        },
    })
}

/// A running server. Dropping it shuts the server down and removes its temporary files.
pub struct TestApi {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
    url: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    owned_dir: bool,
    ca_pem: String,
    namespace: String,
    real: Option<Box<real::Real>>,
}

impl std::fmt::Debug for TestApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApi").field("url", &self.url).field("kubeconfig", &self.kubeconfig).finish()
    }
}

/// Returned by [`TestApi::wait_until`] when the condition did not hold in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "condition not met within {:?}", self.0)
    }
}

impl std::error::Error for Timeout {}

impl TestApi {
    /// A builder with no objects, default pods Ready, user `admin`.
    pub fn builder() -> TestApiBuilder {
        TestApiBuilder::default()
    }

    /// The backend this server runs on.
    pub fn backend(&self) -> Backend {
        if self.real.is_some() { Backend::KubeApiserver } else { Backend::Loopback }
    }

    /// Whether [`set_fault`](Self::set_fault), [`set_latency`](Self::set_latency) and
    /// [`stop_listening`](Self::stop_listening) work (loopback only).
    pub fn supports_faults(&self) -> bool {
        self.real.is_none()
    }

    /// `gitVersion` the server reports at `/version` (the builder's
    /// [`server_version`](TestApiBuilder::server_version) on the loopback; `v1.20.2` on the real one).
    pub fn server_version(&self) -> String {
        self.shared.lock().git_version.clone()
    }

    fn loopback_only(&self, what: &str) {
        if self.real.is_some() {
            panic!(
                "TestApi::{what} is loopback-only: check TestApi::supports_faults() and skip the test \
                 on the kube-apiserver backend"
            );
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The generated kubeconfig (context per user, current context `admin` unless changed).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Write (once) and return a kubeconfig whose current context is `user`.
    pub fn kubeconfig_for(&self, user: &str) -> PathBuf {
        let path = self.dir.join(format!("kubeconfig-{user}"));
        let pairs: Vec<(String, String)> =
            self.shared.lock().users.iter().map(|u| (u.name.clone(), u.token.clone())).collect();
        if let Err(e) = tls::write_kubeconfig(&path, &self.url, &self.ca_pem, &pairs, user, &self.namespace) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// The bearer token of a user.
    pub fn token(&self, user: &str) -> Option<String> {
        self.shared.lock().users.iter().find(|u| u.name == user).map(|u| u.token.clone())
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A URL on 127.0.0.1 where nothing listens (for "connection refused" tests).
    pub fn unused_url() -> String {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        format!("https://127.0.0.1:{port}")
    }

    /// Stop accepting new connections (new connects are refused; open ones keep working).
    /// Returns once the listening socket is closed.
    pub fn stop_listening(&self) {
        self.loopback_only("stop_listening");
        self.shared.stop_listening.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut st = self.shared.lock();
        while st.listening && Instant::now() < deadline {
            st = match self.shared.cond.wait_timeout(st, deadline.saturating_duration_since(Instant::now())) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }

    /// Every request so far.
    ///
    /// On the kube-apiserver backend: the audit log's events of the kubeconfig's users (the
    /// harness's and the controllers' requests are not included), read up to this call.
    pub fn requests(&self) -> Vec<RequestRecord> {
        if let Some(r) = &self.real {
            return r.requests();
        }
        self.shared.lock().log.clone()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        if let Some(r) = &self.real {
            return r.clear_requests();
        }
        self.shared.lock().log.clear();
    }

    /// Add a fault.
    pub fn set_fault(&self, fault: Fault) {
        self.loopback_only("set_fault");
        self.shared.lock().faults.list.push(fault);
    }

    /// The active faults (with their [`Fault::fired`] counters).
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.list.clone()
    }

    /// Remove every fault and the added latency.
    pub fn clear_faults(&self) {
        let mut st = self.shared.lock();
        st.faults.list.clear();
        st.faults.latency = Duration::ZERO;
    }

    /// Add latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.loopback_only("set_latency");
        self.shared.lock().faults.latency = latency;
    }

    /// Change the behaviour of one pod (`Some(index)`) or all pods of a workload, at run time.
    pub fn set_pod_behaviour(&self, workload: &str, index: Option<u32>, behaviour: PodBehaviour) {
        if let Some(r) = &self.real {
            return r.set_pod_behaviour((Target::Workload { name: workload.to_string(), index }, behaviour));
        }
        self.mutate(|st| {
            st.ctl.rules.push((Target::Workload { name: workload.to_string(), index }, behaviour));
            controller::reconcile_all(&mut st.store, &mut st.ctl, Instant::now());
        });
    }

    /// Turn the stand-in Milvus Operator reconciler on or off.
    pub fn set_operator_reconciler(&self, on: bool) {
        if let Some(r) = &self.real {
            return r.set_operator_reconciler(on);
        }
        self.mutate(|st| st.ctl.reconciler = on);
    }

    /// Change `spec.replicas` of a Deployment or StatefulSet directly (no request recorded).
    pub fn set_replicas(
        &self,
        group_plural: (&str, &str),
        namespace: &str,
        name: &str,
        replicas: i64,
    ) -> Result<(), String> {
        self.patch_json(
            group_plural.0,
            group_plural.1,
            Some(namespace),
            name,
            json!({"spec": {"replicas": replicas}}),
        )
        .map(|_| ())
    }

    fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.shared.lock();
        let r = f(&mut st);
        let rv = st.store.rv();
        drop(st);
        self.shared.changed(rv);
        r
    }

    /// An object as served in `version` (e.g. an HPA through `autoscaling/v1`), or None.
    pub fn get_json(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        if let Some(r) = &self.real {
            return r.get(group, Some(version), plural, namespace, name);
        }
        let st = self.shared.lock();
        let obj = st.store.get(&ResKey::new(group, plural), namespace.unwrap_or_default(), name)?;
        if group == "autoscaling" && version == "v1" {
            return Some(fixtures::hpa_v2_to_v1(obj));
        }
        Some(obj.clone())
    }

    /// Objects of a type, optionally in one namespace and filtered by a label selector.
    pub fn list_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let sel = LabelSelector::parse(label_selector.unwrap_or_default()).map_err(|e| e.to_string())?;
        if let Some(r) = &self.real {
            return r.list(group, plural, namespace, label_selector);
        }
        let st = self.shared.lock();
        Ok(st
            .store
            .list(&ResKey::new(group, plural), namespace, None)
            .filter(|o| sel.matches_object(o))
            .cloned()
            .collect())
    }

    /// Create or replace an object (like `kubectl apply` of a full object); the controller reacts.
    /// Namespaced objects without a namespace go to `default`. Returns the stored object.
    pub fn apply_json(&self, object: Value) -> Result<Value, String> {
        if let Some(r) = &self.real {
            return r.apply(object);
        }
        self.mutate(|st| {
            let types = fixtures::all_types(&st.store);
            let av = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
            let rt = fixtures::type_for_kind(&types, av, kind)
                .ok_or_else(|| format!("unknown kind {av}/{kind}"))?;
            let mut obj = if rt.plural == "horizontalpodautoscalers" && av == "autoscaling/v1" {
                fixtures::hpa_v1_to_v2(&object)
            } else {
                object
            };
            let name = util::meta_str(&obj, "name").to_string();
            if name.is_empty() {
                return Err("object has no metadata.name".to_string());
            }
            let ns = if rt.namespaced {
                let n = util::meta_str(&obj, "namespace");
                if n.is_empty() { "default".to_string() } else { n.to_string() }
            } else {
                String::new()
            };
            let existing = st.store.get(&rt.key(), &ns, &name).cloned();
            let now = util::ts(util::now_ts());
            {
                let m = util::meta_mut(&mut obj);
                if rt.namespaced {
                    m.insert("namespace".into(), json!(ns));
                }
                let keep = |k: &str, default: Value| {
                    existing
                        .as_ref()
                        .and_then(|e| e.pointer(&format!("/metadata/{k}")).cloned())
                        .unwrap_or(default)
                };
                m.insert("uid".into(), keep("uid", json!(util::uid(&[&rt.kind, &ns, &name]))));
                m.insert("creationTimestamp".into(), keep("creationTimestamp", json!(now)));
                let generation = keep("generation", json!(0)).as_i64().unwrap_or(0);
                let spec_changed = existing.as_ref().is_none_or(|e| e.get("spec") != obj.get("spec"));
                let m = util::meta_mut(&mut obj);
                m.insert(
                    "generation".into(),
                    json!(if spec_changed { generation + 1 } else { generation.max(1) }),
                );
            }
            controller::apply_defaults(&rt.key(), &mut obj);
            fixtures::ensure_namespace(&mut st.store, &ns, &now);
            st.store.put(&rt.key(), obj);
            controller::on_write(&mut st.store, &mut st.ctl, &rt.key(), &ns, &name, Instant::now());
            st.store.get(&rt.key(), &ns, &name).cloned().ok_or_else(|| "vanished".to_string())
        })
    }

    /// Apply a JSON merge patch to a stored object (the controller reacts). Returns the result.
    pub fn patch_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, String> {
        if let Some(r) = &self.real {
            return r.patch(group, plural, namespace, name, patch);
        }
        self.mutate(|st| {
            let k = ResKey::new(group, plural);
            let ns = namespace.unwrap_or_default();
            let mut obj = st
                .store
                .get(&k, ns, name)
                .cloned()
                .ok_or_else(|| format!("{plural} {ns}/{name} not found"))?;
            let spec_before = obj.get("spec").cloned();
            util::merge_patch(&mut obj, &patch);
            if obj.get("spec") != spec_before.as_ref() {
                let g = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1) + 1;
                util::meta_mut(&mut obj).insert("generation".into(), json!(g));
            }
            st.store.put(&k, obj);
            controller::on_write(&mut st.store, &mut st.ctl, &k, ns, name, Instant::now());
            st.store.get(&k, ns, name).cloned().ok_or_else(|| "vanished".to_string())
        })
    }

    /// Delete a stored object (dependants are garbage-collected, pods are recreated by their owner).
    pub fn delete_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        if let Some(r) = &self.real {
            return r.delete(group, plural, namespace, name);
        }
        self.mutate(|st| {
            let k = ResKey::new(group, plural);
            let gone = st.store.delete(&k, namespace.unwrap_or_default(), name)?;
            controller::on_delete(&mut st.store, &mut st.ctl, &k, &gone, Instant::now());
            Some(gone)
        })
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        if let Some(r) = &self.real {
            return r.resource_version();
        }
        self.shared.lock().store.rv()
    }

    fn real_view<'a>(&self, r: &'a real::Real) -> StateView<'a> {
        StateView {
            inner: View::Real(real::RealView {
                real: r,
                arena: real::Arena::default(),
                log: Default::default(),
            }),
        }
    }

    /// Run `f` on a consistent view of the state (on the kube-apiserver backend: each query of
    /// the view is answered by the server when first made).
    pub fn with_state<R>(&self, f: impl FnOnce(&StateView<'_>) -> R) -> R {
        if let Some(r) = &self.real {
            return f(&self.real_view(r));
        }
        let st = self.shared.lock();
        f(&StateView { inner: View::Loopback { store: &st.store, log: &st.log } })
    }

    /// On the kube-apiserver backend, wait until the real controllers and the stand-ins have
    /// converged (every pod created and in its behaviour's state, workload statuses up to date);
    /// the loopback is always settled. The harness's own mutations already wait for this.
    pub fn settle(&self) -> Result<(), String> {
        match &self.real {
            Some(r) => r.settle(),
            None => Ok(()),
        }
    }

    /// Block until `cond` holds (re-checked on every store change and every request), or fail
    /// after `timeout`.
    pub fn wait_until(
        &self,
        mut cond: impl FnMut(&StateView<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        let deadline = Instant::now() + timeout;
        if let Some(r) = &self.real {
            // The real server is polled: each round is a fresh view.
            loop {
                if cond(&self.real_view(r)) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(Timeout(timeout));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut st = self.shared.lock();
        loop {
            if cond(&StateView { inner: View::Loopback { store: &st.store, log: &st.log } }) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Timeout(timeout));
            }
            st = match self.shared.cond.wait_timeout(st, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if self.owned_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
