//! The `kube-apiserver` backend: a real control plane (etcd, kube-apiserver 1.34,
//! kube-controller-manager) started by `scripts/control-plane.sh`, loaded with the builder's
//! sources over HTTPS, plus two in-process stand-ins: a kubelet that turns the pods the real
//! controllers create into the chosen [`PodBehaviour`]s, and (optionally) the Milvus Operator's
//! replica handling. The request log is the API server's audit log.
//!
//! - [`control_plane`]: the processes (`control-plane.sh up`/`down`, the watchdog);
//! - [`client`]: HTTP calls, discovery and resource paths;
//! - [`load`]: the builder's sources created on the server;
//! - [`rbac`]: the users' [`Rules`](crate::Rules) as RBAC objects;
//! - [`kubelet`]: the kubelet and Milvus Operator stand-ins, and the convergence check;
//! - [`netns`]: the pod network (a network namespace with the pod IPs) and its HTTP responder;
//! - [`audit`]: the audit log read as the request log;
//! - here: the backend itself and its views.

mod audit;
mod client;
mod control_plane;
mod kubelet;
mod load;
mod netns;
mod rbac;

use crate::backend::{ApiBackend, Endpoint, ViewSource};
use crate::controller::PodBehaviour;
use crate::controller::Target;
use crate::util::{self, meta_str};
use crate::{Backend, LabelSelector, RequestRecord, StateView, TestApiBuilder, Timeout};
use audit::AuditReader;
use client::{
    ApiRes, Discovery, JSON, MERGE, call, call_ok, client_for, for_create, items, message, percent_encode,
    res_path,
};
use control_plane::ControlPlane;
use kubelet::{KState, Kubelet};
use serde_json::{Value, json};
use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long `start()` and the harness's mutations wait for the controllers to converge while
/// nothing moves: the wait goes on as long as what is still converging changes (a large load
/// converges for minutes, one workload after another), up to [`SETTLE_LIMIT`].
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);
const SETTLE_LIMIT: Duration = Duration::from_secs(1800);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Harness {
    client: kube::Client,
    marker: kube::Client,
    disc: Mutex<Discovery>,
    kubelet: Kubelet,
    reconciler: AtomicBool,
}

impl Harness {
    fn disc(&self) -> Discovery {
        lock(&self.disc).clone()
    }
}

// ---------------------------------------------------------------------------------------------
// A lazily filled, append-only arena (lets a `StateView` hand out references to fetched objects)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Arena {
    head: OnceCell<Box<ArenaNode>>,
}

struct ArenaNode {
    value: Vec<Value>,
    next: OnceCell<Box<ArenaNode>>,
}

impl Arena {
    fn alloc(&self, value: Vec<Value>) -> &[Value] {
        let mut cell = &self.head;
        loop {
            match cell.get() {
                Some(n) => cell = &n.next,
                None => {
                    let node = cell.get_or_init(|| Box::new(ArenaNode { value, next: OnceCell::new() }));
                    return &node.value;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The backend
// ---------------------------------------------------------------------------------------------

/// A running control plane with the builder's objects loaded.
pub(crate) struct Real {
    rt: Option<tokio::runtime::Runtime>,
    h: Arc<Harness>,
    audit_log: PathBuf,
    users: HashMap<String, String>,
    log: Mutex<AuditReader>,
    shutdown: tokio::sync::watch::Sender<bool>,
    url: String,
    dir: PathBuf,
    git_version: String,
    /// Plugin users in kubeconfig order: `(name, token)`.
    tokens: Vec<(String, String)>,
    cp: Option<ControlPlane>,
}

impl std::fmt::Debug for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Real").field("url", &self.url).field("dir", &self.dir).finish()
    }
}

impl Real {
    /// Start a control plane, load the builder's sources, and wait until the controllers have
    /// converged.
    pub(crate) fn start(cfg: TestApiBuilder) -> Result<(Real, Endpoint), String> {
        if !cfg.progress_deadline_exceeded.is_empty() {
            return Err("progress_deadline_exceeded is not supported on the kube-apiserver backend \
                 (the real Deployment controller decides when a rollout times out)"
                .into());
        }
        let names: Vec<&str> = cfg.users.iter().map(|(u, _)| u.as_str()).collect();
        let (cp, audit_offset) = control_plane::acquire(&names)?;
        let control_plane::Info { dir, url, port, ca_pem, audit_log, tokens: all_users } = cp.info().clone();
        let mut tokens: Vec<(String, String)> = Vec::new();
        let token_of = |u: &str| all_users.get(u).cloned().ok_or_else(|| format!("no token for user {u}"));
        tokens.push(("admin".into(), token_of("admin")?));
        for (u, _) in &cfg.users {
            if u != "admin" {
                tokens.push((u.clone(), token_of(u)?));
            }
        }
        let kubeconfig = cfg.kubeconfig_path.clone().unwrap_or_else(|| dir.join("kubeconfig"));
        crate::tls::write_kubeconfig(
            &kubeconfig,
            &url,
            &ca_pem,
            &tokens,
            &cfg.current_context,
            &cfg.kubeconfig_namespace,
        )
        .map_err(|e| format!("kubeconfig: {e}"))?;
        let marker_kc = dir.join("audit-marker.kubeconfig");
        crate::tls::write_kubeconfig(
            &marker_kc,
            &url,
            &ca_pem,
            &[("audit-marker".into(), token_of("audit-marker")?)],
            "audit-marker",
            "default",
        )
        .map_err(|e| format!("kubeconfig: {e}"))?;

        let rt = crate::util::runtime("milvus-test-kube")?;
        let (client, marker) = rt.block_on(async {
            Ok::<_, String>((
                client_for(&dir.join("harness.kubeconfig")).await?,
                client_for(&marker_kc).await?,
            ))
        })?;
        let git_version = rt
            .block_on(call_ok(&client, "GET", "/version", None))?
            .get("gitVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let disc = rt.block_on(Discovery::load(&client))?;
        let ctl = cfg.controller();
        let net = if cfg.pod_network { Some(netns::PodNetwork::create(cfg.http.clone())?) } else { None };
        let h = Arc::new(Harness {
            client,
            marker,
            disc: Mutex::new(disc),
            kubelet: Kubelet {
                ctl: Mutex::new(ctl),
                st: Mutex::new(KState::default()),
                started: AtomicBool::new(false),
                poke: tokio::sync::Notify::new(),
                wanted: AtomicU64::new(0),
                done: AtomicU64::new(0),
                age: cfg.age,
                net,
            },
            reconciler: AtomicBool::new(cfg.reconciler),
        });
        let (shutdown, rx) = tokio::sync::watch::channel(false);
        rt.spawn(h.clone().kubelet_loop(rx.clone()));
        rt.spawn(h.clone().reconciler_loop(rx));

        let users: HashMap<String, String> = tokens.iter().cloned().collect();
        let real = Real {
            rt: Some(rt),
            h,
            audit_log,
            users,
            log: Mutex::new(AuditReader { offset: audit_offset, ..AuditReader::default() }),
            shutdown,
            url: url.clone(),
            dir: dir.clone(),
            git_version,
            tokens,
            cp: Some(cp),
        };
        real.load(&cfg.sources, &cfg.replicas, cfg.age, &cfg.users)?;
        real.settle()?;
        real.h.kubelet.started.store(true, Ordering::SeqCst);
        // Forget what loading did: the log starts empty, as the loopback's does.
        real.clear_requests();
        Ok((real, Endpoint { url, port, ca_pem, kubeconfig, dir }))
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until the backend is dropped")
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt().block_on(f)
    }

    fn call(&self, method: &str, path: &str, body: Option<(&Value, &str)>) -> Result<(u16, Value), String> {
        self.block(call(&self.h.client, method, path, body))
    }

    fn call_ok(&self, method: &str, path: &str, body: Option<(&Value, &str)>) -> Result<Value, String> {
        self.block(call_ok(&self.h.client, method, path, body))
    }

    /// Wait until the controllers and the stand-ins have converged.
    pub fn settle(&self) -> Result<(), String> {
        let started = Instant::now();
        let mut moved = started;
        let mut last = String::new();
        loop {
            let why = self.block(self.h.unsettled())?;
            let Some(why) = why else {
                return Ok(());
            };
            let now = Instant::now();
            if why != last {
                last = why;
                moved = now;
            } else if now.duration_since(moved) > SETTLE_TIMEOUT {
                return Err(format!("not settled, nothing moved for {SETTLE_TIMEOUT:?}: {last}"));
            }
            if now.duration_since(started) > SETTLE_LIMIT {
                return Err(format!("not settled after {SETTLE_LIMIT:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn settle_or_panic(&self) {
        if let Err(e) = self.settle() {
            panic!("kube-apiserver backend: {e}");
        }
    }

    // --- objects ---

    fn res(&self, group: &str, version: Option<&str>, plural: &str) -> Option<ApiRes> {
        let d = self.h.disc();
        match version {
            Some(v) => d.lookup_version(group, v, plural).cloned(),
            None => d.lookup(group, plural).cloned(),
        }
    }

    /// An object through `version` (None: the preferred one), or None.
    fn fetch(
        &self,
        group: &str,
        version: Option<&str>,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let r = self.res(group, version, plural)?;
        match self.call("GET", &res_path(&r, ns, Some(name)), None) {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// Objects of a type (the preferred version), sorted by namespace and name, with the
    /// `apiVersion` and `kind` a get would have.
    fn fetch_list(
        &self,
        group: &str,
        plural: &str,
        ns: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let Some(r) = self.res(group, None, plural) else {
            return Ok(Vec::new());
        };
        let mut path = res_path(&r, ns, None);
        if let Some(s) = label_selector.filter(|s| !s.is_empty()) {
            path.push_str("?labelSelector=");
            path.push_str(&percent_encode(s));
        }
        let v = self.call_ok("GET", &path, None)?;
        let kind = v["kind"].as_str().unwrap_or_default().trim_end_matches("List").to_string();
        let av = v["apiVersion"].clone();
        let mut out = items(v);
        // Items of a list carry no apiVersion/kind on the wire; add them as a get would have them.
        for o in &mut out {
            if let Some(m) = o.as_object_mut() {
                m.entry("apiVersion").or_insert(av.clone());
                m.entry("kind").or_insert(json!(kind));
            }
        }
        out.sort_by(|a, b| {
            (meta_str(a, "namespace"), meta_str(a, "name"))
                .cmp(&(meta_str(b, "namespace"), meta_str(b, "name")))
        });
        Ok(out)
    }

    fn repoke(&self) {
        let k = &self.h.kubelet;
        k.wanted.fetch_add(1, Ordering::SeqCst);
        k.poke.notify_one();
        self.settle_or_panic();
    }

    fn view(&self) -> RealView<'_> {
        RealView { real: self, arena: Arena::default(), log: OnceCell::new() }
    }
}

impl ApiBackend for Real {
    fn kind(&self) -> Backend {
        Backend::KubeApiserver
    }

    fn server_version(&self) -> String {
        self.git_version.clone()
    }

    fn users(&self) -> Vec<(String, String)> {
        self.tokens.clone()
    }

    fn requests(&self) -> Vec<RequestRecord> {
        Real::requests(self)
    }

    fn clear_requests(&self) {
        Real::clear_requests(self);
    }

    fn set_pod_behaviour(&self, target: Target, behaviour: PodBehaviour) {
        lock(&self.h.kubelet.ctl).rules.push((target, behaviour));
        self.repoke();
    }

    fn set_operator_reconciler(&self, on: bool) {
        self.h.reconciler.store(on, Ordering::SeqCst);
    }

    fn pod_http_changed(&self) {
        if let Some(Err(e)) = self.h.kubelet.net.as_ref().map(netns::PodNetwork::sync) {
            panic!("kube-apiserver backend: {e}");
        }
    }

    fn pod_netns(&self) -> Option<String> {
        self.h.kubelet.net.as_ref().map(|n| n.name.clone())
    }

    fn get_json(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.fetch(group, Some(version), plural, ns, name)
    }

    fn list_json(
        &self,
        group: &str,
        plural: &str,
        ns: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Value>, String> {
        self.fetch_list(group, plural, ns, Some(&selector.to_string()))
    }

    fn apply_json(&self, object: Value) -> Result<Value, String> {
        let av = object["apiVersion"].as_str().unwrap_or_default().to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let r =
            self.h.disc().for_kind(&av, &kind).cloned().ok_or_else(|| format!("unknown kind {av}/{kind}"))?;
        let gv = if r.group.is_empty() { r.version.clone() } else { format!("{}/{}", r.group, r.version) };
        let name = meta_str(&object, "name").to_string();
        if name.is_empty() {
            return Err("object has no metadata.name".to_string());
        }
        let ns = if r.namespaced {
            let n = meta_str(&object, "namespace");
            Some(if n.is_empty() { "default".to_string() } else { n.to_string() })
        } else {
            None
        };
        let mut body = for_create(object, &gv);
        if let Some(ns) = &ns {
            util::meta_mut(&mut body).insert("namespace".into(), json!(ns));
            let nso = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let _ = self.call("POST", "/api/v1/namespaces", Some((&nso, JSON)));
        }
        let status = body.get("status").cloned().filter(|s| !s.is_null());
        let (code, v) = self.call("POST", &res_path(&r, ns.as_deref(), None), Some((&body, JSON)))?;
        let stored = match code {
            201 | 200 => v,
            409 => {
                let cur = self.call_ok("GET", &res_path(&r, ns.as_deref(), Some(&name)), None)?;
                util::meta_mut(&mut body)
                    .insert("resourceVersion".into(), cur["metadata"]["resourceVersion"].clone());
                self.call_ok("PUT", &res_path(&r, ns.as_deref(), Some(&name)), Some((&body, JSON)))?
            }
            _ => return Err(format!("{code} {}", message(&v))),
        };
        let stored = match status {
            Some(s)
                if r.plural == "milvuses" || !crate::resources::builtins().iter().any(|t| t.kind == kind) =>
            {
                let mut sr = r.clone();
                sr.plural = format!("{}/status", r.plural);
                self.call_ok(
                    "PATCH",
                    &res_path(&sr, ns.as_deref(), Some(&name)),
                    Some((&json!({"status": s}), MERGE)),
                )
                .unwrap_or(stored)
            }
            _ => stored,
        };
        self.settle()?;
        Ok(stored)
    }

    fn patch_json(
        &self,
        group: &str,
        plural: &str,
        ns: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, String> {
        let r = self.res(group, None, plural).ok_or_else(|| format!("{plural} not served"))?;
        let status = patch.get("status").cloned();
        let mut main = patch;
        if let Some(m) = main.as_object_mut() {
            m.remove("status");
        }
        let path = res_path(&r, ns, Some(name));
        let mut out = self.call_ok("PATCH", &path, Some((&main, MERGE))).map_err(|e| {
            if e.contains(": 404 ") {
                format!("{plural} {}/{name} not found", ns.unwrap_or_default())
            } else {
                e
            }
        })?;
        if let Some(s) = status {
            let mut sr = r.clone();
            sr.plural = format!("{}/status", r.plural);
            out =
                self.call_ok("PATCH", &res_path(&sr, ns, Some(name)), Some((&json!({"status": s}), MERGE)))?;
        }
        self.settle()?;
        Ok(out)
    }

    fn delete_json(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let r = self.res(group, None, plural)?;
        let path = res_path(&r, ns, Some(name));
        let cur = match self.call("GET", &path, None) {
            Ok((200, v)) => v,
            _ => return None,
        };
        let opts = json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"});
        match self.call("DELETE", &path, Some((&opts, JSON))) {
            Ok((200 | 202, _)) => {
                self.settle_or_panic();
                Some(cur)
            }
            _ => None,
        }
    }

    fn resource_version(&self) -> u64 {
        self.call_ok("GET", "/api/v1/namespaces?limit=1", None)
            .ok()
            .and_then(|v| v.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn with_view(&self, f: &mut dyn FnMut(&StateView<'_>)) {
        f(&StateView::new(&self.view()));
    }

    fn settle(&self) -> Result<(), String> {
        Real::settle(self)
    }

    /// The server is polled: each round is a fresh view.
    fn wait_until(
        &self,
        cond: &mut dyn FnMut(&StateView<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&StateView::new(&self.view())) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Timeout(timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Real {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        drop(self.cp.take()); // back to the pool, or `control-plane.sh down`
        if let Some(Err(e)) = self.h.kubelet.net.as_ref().map(netns::PodNetwork::teardown) {
            eprintln!("kube-apiserver backend: removing the pod network: {e}");
        }
    }
}

/// A [`StateView`] over the real server: each query is a request, answered once per view.
struct RealView<'a> {
    real: &'a Real,
    arena: Arena,
    log: OnceCell<Vec<RequestRecord>>,
}

impl ViewSource for RealView<'_> {
    fn get(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<&Value> {
        let v = self.real.fetch(group, None, plural, ns, name)?;
        self.arena.alloc(vec![v]).first()
    }

    fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        let v = self.real.fetch_list(group, plural, ns, None).unwrap_or_default();
        self.arena.alloc(v).iter().collect()
    }

    fn requests(&self) -> &[RequestRecord] {
        self.log.get_or_init(|| self.real.requests())
    }

    fn resource_version(&self) -> u64 {
        self.real.resource_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_hands_out_stable_references() {
        let a = Arena::default();
        let x = a.alloc(vec![json!(1)]);
        let y = a.alloc(vec![json!(2), json!(3)]);
        assert_eq!(x, [json!(1)]);
        assert_eq!(y.len(), 2);
    }
}
