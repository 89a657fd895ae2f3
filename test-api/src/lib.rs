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
//! - The proxy subresources `pods/[SCHEME:]NAME[:PORT]/proxy/PATH` and
//!   `services/[SCHEME:]NAME[:PORT]/proxy/PATH`: what the pod answers by the rules of
//!   [`TestApiBuilder::pod_http`] (Ready pods: `/healthz` → `200 OK` on port 9091), or the real
//!   server's error (refused connection, pod without IP, service without ready endpoints, …). A
//!   service goes to its first ready endpoint (the real server picks one at random).
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
//! against a real kube-apiserver 1.34 + kube-controller-manager + etcd started by
//! `scripts/control-plane.sh up` (control planes shared by the tests of a process, reset between
//! them; the binaries must have been built once with `scripts/control-plane.sh build`). There, the
//! sources are created over HTTPS (in the version the server prefers for their kind, the Milvus
//! CR's status through its status subresource, its uid in the ownerReferences), users get tokens and
//! RBAC objects equivalent to their [`Rules`], the real controllers create ReplicaSets and pods
//! and an in-process kubelet stand-in gives each pod the status of its [`PodBehaviour`] (pod
//! `index` = the lowest index free in its workload when the pod appears; StatefulSet ordinals),
//! and the Milvus Operator stand-in runs when enabled. The pods get real IPs: each `TestApi` has a
//! network namespace `kmt-<pid>-<n>` joined to the root namespace by a veth pair (a /21 out of
//! 10.200.0.0/14, the gateway is the pods' `hostIP`), and a responder inside it serves the
//! [`TestApiBuilder::pod_http`] rules on each pod IP, so the real server's proxy subresources
//! reach it; a pod that does not listen refuses connections ([`TestApi::pod_netns`]; needs root
//! and iproute2; removed on drop, and namespaces of killed test processes on the next start). `start()` and the mutating helpers return
//! once the controllers have converged ([`TestApi::settle`]). [`TestApi::requests`] reads the API
//! server's audit log (the kubeconfig's users only; no `content_type`, `body` only for writes).
//! Not available there: `progress_deadline_exceeded` (an error), the builder's `server_version`
//! (ignored), and ages: objects are created now (the pods' container
//! and condition timestamps are backdated by `age`), so a `Terminating` pod is not minutes old.
//!
//! # Faults: a proxy in front of either backend
//!
//! Every `TestApi` starts a fault-injecting HTTPS proxy on `127.0.0.1` (its own CA) in front of
//! its server, and the kubeconfigs ([`TestApi::kubeconfig_path`], [`TestApi::kubeconfig_for`]),
//! [`TestApi::url`], [`TestApi::port`] (and the builder's `port`) and [`TestApi::ca_pem`] are the
//! proxy's. The proxy forwards each request over TLS to the server with its headers (token,
//! `Impersonate-*`) and streams the reply back, unless a [`Fault`] matches: it can answer with a
//! status and a `Status` body (optionally `Retry-After`), drop the connection before forwarding,
//! forward and then drop the reply (the write happened; the client never hears), cut a reply off
//! mid-body, delay the request or each chunk of the reply, and stall new connections after
//! accepting them or after the TLS handshake. [`TestApi::set_latency`] and
//! [`TestApi::stop_listening`] act on it too. So faults work the same on both backends.
//!
//! The request log stays the server's (the loopback's own record, the real server's audit log);
//! the proxy adds what only it knows, in arrival order ([`RequestRecord::received`]): requests it
//! answered or dropped itself (`fault`; `dropped` and status 0 for a dropped connection), and,
//! on the server's record of a request whose reply it dropped or cut off, `fault` and `dropped`
//! with the status the client saw (0 for no reply). Connection-level stalls log nothing (no
//! request was read).
//!
//! # Limits
//!
//! Continue tokens do not give a snapshot (later pages show the current state); there is no
//! garbage collection beyond one owner level plus pods; no admission, defaulting or validation
//! beyond `spec.replicas`, names and namespaces; strategic-merge patches replace lists instead of
//! merging them by key; deletion is immediate (no finalizers, no graceful termination).
#![warn(missing_docs)]

// Shared by both backends: the builder's vocabulary and what it loads.
mod auth; // users, tokens and `Rules`
mod backend; // the `ApiBackend` interface `TestApi` dispatches through
mod controller; // pod behaviours and the simulated controllers (the real backend's kubelet uses them)
mod fixtures; // fixture files and sources, rendered into objects
mod milvus_fake; // a fake Milvus answering on the pods' port 9091
mod pod_http; // what the pods answer over HTTP (the proxy subresources)
mod resources; // the served resource types
mod selector; // label and field selectors over stored objects
mod store; // the in-memory object store
mod tls; // certificates and kubeconfigs
mod util;

// In front of either backend: the fault-injecting proxy the kubeconfigs point at.
mod faults; // fault rules and latency
mod proxy; // the HTTPS proxy that applies them

// The loopback backend: the server and what only it needs.
mod loopback;
mod pod_proxy; // the proxy subresources, answered in process
mod server; // HTTPS, routing and the verbs
mod status; // metav1.Status errors
mod table; // server-side tables for kubectl get

// The kube-apiserver backend.
mod real;

pub use auth::Rules;
pub use controller::PodBehaviour;
pub use faults::{Fault, FaultAction, Gate};
pub use fixtures::{FIXTURE_RELEASE, MilvusStatus, decode_helm_release, fixtures_dir, parse_yaml_docs};
pub use label_selector::Selector as LabelSelector;
pub use milvus_fake::{FakeMilvus, MilvusRequest, MilvusVersion};
pub use pod_http::{DEFAULT_PORT as POD_HTTP_PORT, HttpReply};
pub use proxy::ConnectionRecord;
pub use resources::ResKey;
pub use selector::FieldSelector;

use backend::{ApiBackend, Endpoint, ViewSource};
use controller::{Controller, Target};
use fixtures::{Origin, Source};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which API server a [`TestApi`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The in-process loopback API (default): deterministic names, fault injection, fast.
    Loopback,
    /// A real kube-apiserver 1.34 + kube-controller-manager + etcd started by
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
    /// When the request arrived (wall clock; at the server, or at the proxy for a request the
    /// proxy answered itself). [`TestApi::requests`] is ordered by it.
    pub received: std::time::SystemTime,
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

/// Read-only view of the server state, given to [`TestApi::wait_until`] and [`TestApi::with_state`].
///
/// On the kube-apiserver backend every query is a request to the server (made once per view),
/// objects are as served (in the server's preferred version), and the request log is read from
/// the audit log.
pub struct StateView<'a> {
    source: &'a dyn ViewSource,
}

impl<'a> StateView<'a> {
    pub(crate) fn new(source: &'a dyn ViewSource) -> Self {
        StateView { source }
    }
}

impl StateView<'_> {
    /// One stored object (storage version; HPAs are stored as autoscaling/v2).
    pub fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.source.get(group, plural, namespace, name)
    }

    /// Objects of a type (one namespace, or all), ordered by namespace and name.
    pub fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.source.list(group, plural, namespace)
    }

    /// Number of objects of a type (one namespace, or all).
    pub fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        self.source.count(group, plural, namespace)
    }

    /// The request log.
    pub fn requests(&self) -> &[RequestRecord] {
        self.source.requests()
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.source.resource_version()
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
    pub(crate) sources: Vec<Source>,
    pub(crate) defaults: Source,
    pub(crate) default_behaviour: PodBehaviour,
    pub(crate) rules: Vec<(Target, PodBehaviour)>,
    pub(crate) selector_errors: Vec<String>,
    pub(crate) users: Vec<(String, Rules)>,
    pub(crate) age: Duration,
    pub(crate) scale_up_delay: Duration,
    pub(crate) progress_deadline_exceeded: Vec<String>,
    pub(crate) reconciler: bool,
    pub(crate) git_version: String,
    pub(crate) port: u16,
    pub(crate) kubeconfig_path: Option<PathBuf>,
    pub(crate) kubeconfig_namespace: String,
    pub(crate) current_context: String,
    pub(crate) replicas: Vec<(String, i64)>,
    pub(crate) backend: Option<Backend>,
    pub(crate) http: std::sync::Arc<pod_http::PodHttp>,
    pub(crate) pod_network: bool,
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
            http: std::sync::Arc::default(),
            pod_network: true,
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

    /// Pods of `target` (a pod or a workload: `name` or `namespace/name`) answer `reply` to a GET
    /// of `path` (without the query) on port [`POD_HTTP_PORT`] (9091), as reached through the API
    /// server's proxy subresources. The last matching rule wins. Without one, Ready pods answer
    /// `/healthz` with `200 OK` and other paths with `404 page not found`, and pods that are not
    /// Ready refuse connections.
    pub fn pod_http(self, target: &str, path: &str, reply: HttpReply) -> Self {
        self.pod_http_on(target, pod_http::DEFAULT_PORT, path, reply)
    }

    /// Like [`pod_http`](Self::pod_http) on another port (the pods then listen on it, Ready or not).
    pub fn pod_http_on(self, target: &str, port: u16, path: &str, reply: HttpReply) -> Self {
        self.http.reply(target, port, path, reply);
        self
    }

    /// A fake Milvus answers on the Milvus pods' port [`POD_HTTP_PORT`] (after the
    /// [`pod_http`](Self::pod_http) rules, which still win for their paths); keep a clone of `milvus`
    /// to change it and read its request log during the test.
    pub fn milvus(self, milvus: &FakeMilvus) -> Self {
        self.http.set_handler(std::sync::Arc::new(milvus.clone()));
        self
    }

    /// Pods of `target` refuse connections on port [`POD_HTTP_PORT`] (nothing listens), Ready or not.
    pub fn pod_http_refused(self, target: &str) -> Self {
        self.http.refuse(target, pod_http::DEFAULT_PORT);
        self
    }

    /// On the kube-apiserver backend, whether pods get addresses on a pod network of their own
    /// (a network namespace with a responder for [`pod_http`](Self::pod_http); at most 2,045 pods)
    /// or keep the made-up IPs the loopback gives them, on which nothing answers (`false`: loads
    /// larger than that network, as the benchmark's). The loopback backend answers the proxy
    /// subresources itself either way.
    pub fn pod_network(mut self, on: bool) -> Self {
        self.pod_network = on;
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
    pub fn try_start(mut self) -> Result<TestApi, String> {
        if !self.selector_errors.is_empty() {
            return Err(format!("invalid selectors: {}", self.selector_errors.join("; ")));
        }
        let namespace = self.kubeconfig_namespace.clone();
        let current = self.current_context.clone();
        // A fixed port is the proxy's: that is where clients connect.
        let port = std::mem::take(&mut self.port);
        let http = self.http.clone();
        let (backend, mut endpoint): (Box<dyn ApiBackend>, Endpoint) =
            match self.backend.unwrap_or_else(Backend::from_env) {
                Backend::Loopback => {
                    let (b, e) = loopback::Loopback::start(self)?;
                    (Box::new(b), e)
                }
                Backend::KubeApiserver => {
                    let (b, e) = real::Real::start(self)?;
                    (Box::new(b), e)
                }
            };
        let users = backend.users();
        let proxy = proxy::Proxy::start(port, endpoint.port, &endpoint.ca_pem, users.clone())?;
        endpoint.url = proxy.url.clone();
        endpoint.port = proxy.port;
        endpoint.ca_pem = proxy.ca_pem.clone();
        tls::write_kubeconfig(
            &endpoint.kubeconfig,
            &endpoint.url,
            &endpoint.ca_pem,
            &users,
            &current,
            &namespace,
        )
        .map_err(|e| format!("cannot write {}: {e}", endpoint.kubeconfig.display()))?;
        Ok(TestApi { proxy, backend, endpoint, namespace, http })
    }

    /// The simulated controller both backends' pods follow: default behaviour, rules and delays.
    pub(crate) fn controller(&self) -> Controller {
        let mut ctl = Controller::new(self.age);
        ctl.default = self.default_behaviour.clone();
        ctl.rules = self.rules.clone();
        ctl.scale_up_delay = self.scale_up_delay;
        ctl
    }
}

/// A running server. Dropping it shuts the server down and removes its temporary files.
pub struct TestApi {
    // Declared first: dropped (its connections closed) before the backend stops.
    proxy: proxy::Proxy,
    backend: Box<dyn ApiBackend>,
    endpoint: Endpoint,
    namespace: String,
    http: std::sync::Arc<pod_http::PodHttp>,
}

impl std::fmt::Debug for TestApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApi")
            .field("url", &self.endpoint.url)
            .field("kubeconfig", &self.endpoint.kubeconfig)
            .finish()
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
        self.backend.kind()
    }

    /// Whether [`set_fault`](Self::set_fault), [`set_latency`](Self::set_latency) and
    /// [`stop_listening`](Self::stop_listening) work: always, on both backends (the proxy in
    /// front of the server applies them).
    pub fn supports_faults(&self) -> bool {
        true
    }

    /// `gitVersion` the server reports at `/version` (the builder's
    /// [`server_version`](TestApiBuilder::server_version) on the loopback; `v1.34.4` on the real one).
    pub fn server_version(&self) -> String {
        self.backend.server_version()
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.endpoint.url
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.endpoint.port
    }

    /// The generated kubeconfig (context per user, current context `admin` unless changed).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.endpoint.kubeconfig
    }

    /// Write (once) and return a kubeconfig whose current context is `user`.
    pub fn kubeconfig_for(&self, user: &str) -> PathBuf {
        let e = &self.endpoint;
        let path = e.dir.join(format!("kubeconfig-{user}"));
        let pairs = self.backend.users();
        if let Err(err) = tls::write_kubeconfig(&path, &e.url, &e.ca_pem, &pairs, user, &self.namespace) {
            panic!("cannot write {}: {err}", path.display());
        }
        path
    }

    /// The bearer token of a user.
    pub fn token(&self, user: &str) -> Option<String> {
        self.backend.users().into_iter().find(|(name, _)| name == user).map(|(_, token)| token)
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.endpoint.ca_pem
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
        self.proxy.stop_listening();
    }

    /// Every request so far.
    ///
    /// On the kube-apiserver backend: the audit log's events of the kubeconfig's users (the
    /// harness's and the controllers' requests are not included), read up to this call.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.proxy.merge(self.backend.requests())
    }

    /// The URL of the same API behind a listener that offers HTTP/1.1 only (ALPN `http/1.1`).
    pub fn http1_only_url(&self) -> String {
        self.proxy.http1_only_url.clone()
    }

    /// The TLS connections clients opened to the test API (its proxy) since the start or the last
    /// [`TestApi::clear_requests`], with the protocol each agreed on.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.proxy.connections()
    }

    /// Forget the recorded requests (and connections).
    pub fn clear_requests(&self) {
        self.backend.clear_requests();
        self.proxy.clear_requests();
    }

    /// Add a fault (applied by the proxy in front of the server, on either backend).
    pub fn set_fault(&self, fault: Fault) {
        self.proxy.set_fault(fault);
    }

    /// The active faults (with their [`Fault::fired`] counters).
    pub fn faults(&self) -> Vec<Fault> {
        self.proxy.faults()
    }

    /// Remove every fault and the added latency.
    pub fn clear_faults(&self) {
        self.proxy.clear_faults();
    }

    /// Add latency to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.proxy.set_latency(latency);
    }

    /// Change the behaviour of one pod (`Some(index)`) or all pods of a workload, at run time.
    pub fn set_pod_behaviour(&self, workload: &str, index: Option<u32>, behaviour: PodBehaviour) {
        self.backend.set_pod_behaviour(Target::Workload { name: workload.to_string(), index }, behaviour);
    }

    /// Add a [`TestApiBuilder::pod_http`] rule at run time; it holds once this returns.
    pub fn set_pod_http(&self, target: &str, path: &str, reply: HttpReply) {
        self.http.reply(target, pod_http::DEFAULT_PORT, path, reply);
        self.backend.pod_http_changed();
    }

    /// Add a [`TestApiBuilder::pod_http_refused`] rule at run time; it holds once this returns.
    pub fn set_pod_http_refused(&self, target: &str) {
        self.http.refuse(target, pod_http::DEFAULT_PORT);
        self.backend.pod_http_changed();
    }

    /// The name of the network namespace the pods' IPs live in (kube-apiserver backend; the
    /// loopback has none: it answers the proxy subresources in process).
    pub fn pod_netns(&self) -> Option<String> {
        self.backend.pod_netns()
    }

    /// Turn the stand-in Milvus Operator reconciler on or off.
    pub fn set_operator_reconciler(&self, on: bool) {
        self.backend.set_operator_reconciler(on);
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

    /// An object as served in `version` (e.g. an HPA through `autoscaling/v1`), or None.
    pub fn get_json(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.backend.get_json(group, version, plural, namespace, name)
    }

    /// Objects of a type, optionally in one namespace and filtered by a label selector.
    pub fn list_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let selector = LabelSelector::parse(label_selector.unwrap_or_default()).map_err(|e| e.to_string())?;
        self.backend.list_json(group, plural, namespace, &selector)
    }

    /// Create or replace an object (like `kubectl apply` of a full object); the controller reacts.
    /// Namespaced objects without a namespace go to `default`. Returns the stored object.
    pub fn apply_json(&self, object: Value) -> Result<Value, String> {
        self.backend.apply_json(object)
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
        self.backend.patch_json(group, plural, namespace, name, patch)
    }

    /// Delete a stored object (dependants are garbage-collected, pods are recreated by their owner).
    pub fn delete_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.backend.delete_json(group, plural, namespace, name)
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.backend.resource_version()
    }

    /// Compact the history, as etcd does: from now on a watch from an earlier resourceVersion is
    /// answered with an `ERROR` event `410 Expired` and the client must list again. Watches already
    /// open go on. Loopback only (an error on a real API server).
    pub fn compact(&self) -> Result<(), String> {
        self.backend.compact()
    }

    /// Run `f` on a consistent view of the state (on the kube-apiserver backend: each query of
    /// the view is answered by the server when first made).
    pub fn with_state<R>(&self, f: impl FnOnce(&StateView<'_>) -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        self.backend.with_view(&mut |view| {
            if let Some(f) = f.take() {
                let merged =
                    Merged { inner: view.source, proxy: &self.proxy, log: std::sync::OnceLock::new() };
                out = Some(f(&StateView::new(&merged)));
            }
        });
        out.expect("a backend's with_view calls its closure")
    }

    /// On the kube-apiserver backend, wait until the real controllers and the stand-ins have
    /// converged (every pod created and in its behaviour's state, workload statuses up to date);
    /// the loopback is always settled. The harness's own mutations already wait for this.
    pub fn settle(&self) -> Result<(), String> {
        self.backend.settle()
    }

    /// Block until `cond` holds (re-checked on every store change and every request; on the
    /// kube-apiserver backend polled, a fresh view each round), or fail after `timeout`.
    pub fn wait_until(
        &self,
        mut cond: impl FnMut(&StateView<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        // In slices: a request the proxy answered itself does not wake the backend's waiters.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(Duration::from_millis(50));
            let mut check = |view: &StateView<'_>| {
                let merged =
                    Merged { inner: view.source, proxy: &self.proxy, log: std::sync::OnceLock::new() };
                cond(&StateView::new(&merged))
            };
            match self.backend.wait_until(&mut check, slice) {
                Ok(()) => return Ok(()),
                Err(_) if left > slice => continue,
                Err(_) => return Err(Timeout(timeout)),
            }
        }
    }
}

/// A backend's view with the proxy's log folded into its request log.
struct Merged<'a> {
    inner: &'a dyn ViewSource,
    proxy: &'a proxy::Proxy,
    log: std::sync::OnceLock<Vec<RequestRecord>>,
}

impl ViewSource for Merged<'_> {
    fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.inner.get(group, plural, namespace, name)
    }
    fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.inner.list(group, plural, namespace)
    }
    fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        self.inner.count(group, plural, namespace)
    }
    fn requests(&self) -> &[RequestRecord] {
        self.log.get_or_init(|| self.proxy.merge(self.inner.requests().to_vec()))
    }
    fn resource_version(&self) -> u64 {
        self.inner.resource_version()
    }
}
