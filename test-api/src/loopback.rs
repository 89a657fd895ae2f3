//! The loopback backend: the in-process API server ([`crate::server`]) on a runtime thread of its
//! own, its in-memory [`Store`] and the simulated [`Controller`], all behind one lock ([`Shared`]).

use crate::backend::{ApiBackend, Endpoint, ViewSource};
use crate::controller::{self, Controller, PodBehaviour, Target};
use crate::fixtures;
use crate::resources::ResKey;
use crate::selector::MatchesObject as _;
use crate::store::Store;
use crate::{Backend, LabelSelector, RequestRecord, Rules, StateView, TestApiBuilder, Timeout};
use crate::{auth, server, tls, util};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Everything the server, the controller and the harness share.
pub(crate) struct State {
    pub store: Store,
    pub ctl: Controller,
    pub users: Vec<auth::User>,
    pub log: Vec<RequestRecord>,
    pub git_version: String,
    pub port: u16,
    /// What the pods answer through the proxy subresources.
    pub http: Arc<crate::pod_http::PodHttp>,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    pub rv_watch: tokio::sync::watch::Sender<u64>,
    pub timer: tokio::sync::Notify,
    pub shutdown: tokio::sync::watch::Sender<bool>,
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

    pub fn record(&self, mut rec: RequestRecord, started: Instant) {
        rec.duration = started.elapsed();
        let mut st = self.lock();
        rec.seq = st.log.len() as u64 + 1;
        st.log.push(rec);
        drop(st);
        self.cond.notify_all();
    }
}

/// A running loopback server. Dropping it shuts the server down and removes its temporary files.
pub(crate) struct Loopback {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
    owned_dir: bool,
}

impl Loopback {
    /// Load the builder's sources, run the controller once, and start serving.
    pub(crate) fn start(b: TestApiBuilder) -> Result<(Loopback, Endpoint), String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let seed = format!("{}-{}-{n}-{:?}", std::process::id(), util::now_ts(), Instant::now());

        let mut users: Vec<auth::User> = vec![auth::User {
            name: "admin".into(),
            token: auth::new_token("admin", &seed),
            rules: Rules::admin(),
        }];
        for (name, rules) in &b.users {
            users.retain(|u| u.name != *name);
            users.push(auth::User {
                name: name.clone(),
                token: auth::new_token(name, &seed),
                rules: rules.clone(),
            });
        }

        let mut ctl = Controller::new(b.age);
        ctl.default = b.default_behaviour.clone();
        ctl.rules = b.rules.clone();
        ctl.scale_up_delay = b.scale_up_delay;
        ctl.progress_deadline_exceeded = b.progress_deadline_exceeded.iter().cloned().collect();
        ctl.reconciler = b.reconciler;
        let mut store = Store::default();
        let created = util::ts(util::minus(ctl.start_wall, b.age));
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            fixtures::ensure_namespace(&mut store, ns, &created);
        }
        for i in 1..=3 {
            store.put(&ResKey::new("", "nodes"), fixtures::node_object(i, &created, &b.git_version));
        }
        fixtures::load(&mut store, &b.sources, b.age, ctl.start_wall)?;
        fixtures::apply_replicas(&mut store, &b.replicas)?;
        controller::reconcile_all(&mut store, &mut ctl, Instant::now());
        ctl.initial = false;

        let tls = tls::generate().map_err(|e| format!("TLS: {e}"))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", b.port))
            .map_err(|e| format!("bind 127.0.0.1:{}: {e}", b.port))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let url = format!("https://127.0.0.1:{port}");

        let (dir, owned_dir) = match &b.kubeconfig_path {
            Some(p) => (p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")), false),
            None => (
                std::env::temp_dir().join(format!("milvus-test-api-{}-{n}-{port}", std::process::id())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let kubeconfig = b.kubeconfig_path.clone().unwrap_or_else(|| dir.join("kubeconfig"));
        let pairs: Vec<(String, String)> = users.iter().map(|u| (u.name.clone(), u.token.clone())).collect();
        tls::write_kubeconfig(
            &kubeconfig,
            &url,
            &tls.ca_pem,
            &pairs,
            &b.current_context,
            &b.kubeconfig_namespace,
        )
        .map_err(|e| format!("kubeconfig: {e}"))?;

        let rv = store.rv();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                ctl,
                users,
                log: Vec::new(),
                git_version: b.git_version.clone(),
                port,
                http: b.http.clone(),
            }),
            cond: Condvar::new(),
            rv_watch: tokio::sync::watch::channel(rv).0,
            timer: tokio::sync::Notify::new(),
            shutdown: tokio::sync::watch::channel(false).0,
        });
        let rt = crate::util::runtime("milvus-test-api")?;
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
        let loopback = Loopback { shared, thread: Some(thread), dir: dir.clone(), owned_dir };
        Ok((loopback, Endpoint { url, port, ca_pem: tls.ca_pem, kubeconfig, dir }))
    }

    fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut st = self.shared.lock();
        let r = f(&mut st);
        let rv = st.store.rv();
        drop(st);
        self.shared.changed(rv);
        r
    }
}

impl Drop for Loopback {
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

impl ApiBackend for Loopback {
    fn kind(&self) -> Backend {
        Backend::Loopback
    }

    fn server_version(&self) -> String {
        self.shared.lock().git_version.clone()
    }

    fn users(&self) -> Vec<(String, String)> {
        self.shared.lock().users.iter().map(|u| (u.name.clone(), u.token.clone())).collect()
    }

    fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.clone()
    }

    fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    fn set_pod_behaviour(&self, target: Target, behaviour: PodBehaviour) {
        self.mutate(|st| {
            st.ctl.rules.push((target, behaviour));
            controller::reconcile_all(&mut st.store, &mut st.ctl, Instant::now());
        });
    }

    fn set_operator_reconciler(&self, on: bool) {
        self.mutate(|st| st.ctl.reconciler = on);
    }

    fn get_json(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let st = self.shared.lock();
        let obj = st.store.get(&ResKey::new(group, plural), namespace.unwrap_or_default(), name)?;
        if group == "autoscaling" && version == "v1" {
            return Some(fixtures::hpa_v2_to_v1(obj));
        }
        Some(obj.clone())
    }

    fn list_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Value>, String> {
        let st = self.shared.lock();
        Ok(st
            .store
            .list(&ResKey::new(group, plural), namespace, None)
            .filter(|o| selector.matches_object(o))
            .cloned()
            .collect())
    }

    fn apply_json(&self, object: Value) -> Result<Value, String> {
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
                    json!(if spec_changed { generation.saturating_add(1) } else { generation.max(1) }),
                );
            }
            controller::apply_defaults(&rt.key(), &mut obj);
            fixtures::ensure_namespace(&mut st.store, &ns, &now);
            st.store.put(&rt.key(), obj);
            controller::on_write(&mut st.store, &mut st.ctl, &rt.key(), &ns, &name, Instant::now());
            st.store.get(&rt.key(), &ns, &name).cloned().ok_or_else(|| "vanished".to_string())
        })
    }

    fn patch_json(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Result<Value, String> {
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
                let g = obj
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    .saturating_add(1);
                util::meta_mut(&mut obj).insert("generation".into(), json!(g));
            }
            st.store.put(&k, obj);
            controller::on_write(&mut st.store, &mut st.ctl, &k, ns, name, Instant::now());
            st.store.get(&k, ns, name).cloned().ok_or_else(|| "vanished".to_string())
        })
    }

    fn delete_json(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.mutate(|st| {
            let k = ResKey::new(group, plural);
            let gone = st.store.delete(&k, namespace.unwrap_or_default(), name)?;
            controller::on_delete(&mut st.store, &mut st.ctl, &k, &gone, Instant::now());
            Some(gone)
        })
    }

    fn resource_version(&self) -> u64 {
        self.shared.lock().store.rv()
    }

    fn compact(&self) -> Result<(), String> {
        self.shared.lock().store.compact();
        Ok(())
    }

    fn with_view(&self, f: &mut dyn FnMut(&StateView<'_>)) {
        let st = self.shared.lock();
        f(&StateView::new(&LoopbackView { store: &st.store, log: &st.log }));
    }

    /// The loopback is always settled: the controller reacts within each write.
    fn settle(&self) -> Result<(), String> {
        Ok(())
    }

    /// Re-checked on every store change and every request.
    fn wait_until(
        &self,
        cond: &mut dyn FnMut(&StateView<'_>) -> bool,
        timeout: Duration,
    ) -> Result<(), Timeout> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if cond(&StateView::new(&LoopbackView { store: &st.store, log: &st.log })) {
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

/// The store and the request log under the lock.
struct LoopbackView<'a> {
    store: &'a Store,
    log: &'a [RequestRecord],
}

impl ViewSource for LoopbackView<'_> {
    fn get(&self, group: &str, plural: &str, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.store.get(&ResKey::new(group, plural), namespace.unwrap_or_default(), name)
    }

    fn list(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.store.list(&ResKey::new(group, plural), namespace, None).collect()
    }

    fn count(&self, group: &str, plural: &str, namespace: Option<&str>) -> usize {
        match namespace {
            None => self.store.count(&ResKey::new(group, plural)),
            Some(ns) => self.store.list(&ResKey::new(group, plural), Some(ns), None).count(),
        }
    }

    fn requests(&self) -> &[RequestRecord] {
        self.log
    }

    fn resource_version(&self) -> u64 {
        self.store.rv()
    }
}
