//! The `kube-apiserver` backend: a real control plane (etcd, kube-apiserver 1.20,
//! kube-controller-manager) started by `scripts/control-plane.sh`, loaded with the builder's
//! sources over HTTPS, plus two in-process stand-ins: a kubelet that turns the pods the real
//! controllers create into the chosen [`PodBehaviour`]s, and (optionally) the Milvus Operator's
//! replica handling. The request log is the API server's audit log.

use crate::RequestRecord;
use crate::auth::{self, Rules};
use crate::controller::{self, Controller, PodBehaviour, PodPlan};
use crate::fixtures::{self, Source};
use crate::store::Store;
use crate::util::{self, meta_str};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long `start()` and the harness's mutations wait for the controllers to converge.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The script that builds and runs the control plane.
pub(crate) fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("control-plane.sh")
}

/// What the builder hands to the real backend.
pub(crate) struct Config {
    pub sources: Vec<Source>,
    pub replicas: Vec<(String, i64)>,
    pub users: Vec<(String, Rules)>,
    pub ctl: Controller,
    pub age: Duration,
    pub kubeconfig_path: Option<PathBuf>,
    pub kubeconfig_namespace: String,
    pub current_context: String,
    pub reconciler: bool,
}

/// Runs `control-plane.sh down DIR` when dropped, so nothing outlives a failed start or test.
struct ControlPlane {
    dir: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script_path())
            .arg("down")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

async fn call(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<(&Value, &str)>,
) -> Result<(u16, Value), String> {
    let mut b = http::Request::builder().method(method).uri(path).header("Accept", "application/json");
    let bytes = match body {
        Some((v, ct)) => {
            b = b.header("Content-Type", ct);
            serde_json::to_vec(v).map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    let req = b.body(kube::client::Body::from(bytes)).map_err(|e| e.to_string())?;
    let resp = client.send(req).await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, v))
}

/// `call` that wants a 2xx.
async fn call_ok(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<(&Value, &str)>,
) -> Result<Value, String> {
    let (code, v) = call(client, method, path, body).await?;
    if (200..300).contains(&code) { Ok(v) } else { Err(format!("{method} {path}: {code} {}", message(&v))) }
}

fn message(v: &Value) -> String {
    v.get("message").and_then(Value::as_str).map(String::from).unwrap_or_else(|| v.to_string())
}

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn i64_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn is_deleting(v: &Value) -> bool {
    v.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null())
}

fn is_active(pod: &Value) -> bool {
    !is_deleting(pod)
        && !matches!(pod.pointer("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
}

fn owner_uid(v: &Value) -> Option<&str> {
    let refs = v.pointer("/metadata/ownerReferences")?.as_array()?;
    refs.iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?
        .get("uid")?
        .as_str()
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ApiRes {
    group: String,
    version: String,
    /// `plural` or `plural/subresource`.
    plural: String,
    kind: String,
    namespaced: bool,
}

#[derive(Debug, Default, Clone)]
struct Discovery {
    res: Vec<ApiRes>,
    preferred: HashMap<String, String>,
}

impl Discovery {
    async fn load(client: &kube::Client) -> Result<Discovery, String> {
        let mut d = Discovery::default();
        let mut gvs = vec![(String::new(), "v1".to_string())];
        d.preferred.insert(String::new(), "v1".into());
        let groups = call_ok(client, "GET", "/apis", None).await?;
        for g in groups["groups"].as_array().into_iter().flatten() {
            let name = g["name"].as_str().unwrap_or_default().to_string();
            if let Some(p) = g.pointer("/preferredVersion/version").and_then(Value::as_str) {
                d.preferred.insert(name.clone(), p.to_string());
            }
            for v in g["versions"].as_array().into_iter().flatten() {
                gvs.push((name.clone(), v["version"].as_str().unwrap_or_default().to_string()));
            }
        }
        for (group, version) in gvs {
            let path =
                if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/{version}") };
            // A group version announced before it is served (a new CRD) counts as absent.
            let list = match call(client, "GET", &path, None).await? {
                (200, v) => v,
                (404 | 503, _) => continue,
                (code, v) => return Err(format!("GET {path}: {code} {}", message(&v))),
            };
            for r in list["resources"].as_array().into_iter().flatten() {
                d.res.push(ApiRes {
                    group: group.clone(),
                    version: version.clone(),
                    plural: r["name"].as_str().unwrap_or_default().to_string(),
                    kind: r["kind"].as_str().unwrap_or_default().to_string(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                });
            }
        }
        Ok(d)
    }

    /// The version to read `group/plural` through: the preferred one (HPAs: `v2beta2`, the
    /// closest to the loopback's storage version `autoscaling/v2`).
    fn lookup(&self, group: &str, plural: &str) -> Option<&ApiRes> {
        let cands: Vec<&ApiRes> =
            self.res.iter().filter(|r| r.group == group && r.plural == plural).collect();
        let pick = |v: &str| cands.iter().copied().find(|r| r.version == v);
        if group == "autoscaling"
            && let Some(r) = pick("v2").or_else(|| pick("v2beta2"))
        {
            return Some(r);
        }
        self.preferred.get(group).and_then(|p| pick(p)).or_else(|| cands.first().copied())
    }

    fn lookup_version(&self, group: &str, version: &str, plural: &str) -> Option<&ApiRes> {
        self.res
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .or_else(|| self.lookup(group, plural))
    }

    /// The served resource for an object's `apiVersion` and `kind` (a version this server does not
    /// serve is mapped to one it does: `autoscaling/v2` → `v2beta2`, `policy/v1` → `v1beta1`, …).
    fn for_kind(&self, api_version: &str, kind: &str) -> Option<&ApiRes> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let main = |r: &&ApiRes| r.group == group && r.kind == kind && !r.plural.contains('/');
        if let Some(r) = self.res.iter().filter(main).find(|r| r.version == version) {
            return Some(r);
        }
        let plural = self.res.iter().find(main)?.plural.clone();
        self.lookup(group, &plural)
    }
}

fn res_path(r: &ApiRes, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut p = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced
        && let Some(ns) = namespace.filter(|n| !n.is_empty())
    {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    let (plural, sub) = match r.plural.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (r.plural.as_str(), None),
    };
    p.push('/');
    p.push_str(plural);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
        if let Some(s) = sub {
            p.push('/');
            p.push_str(s);
        }
    }
    p
}

// ---------------------------------------------------------------------------------------------
// The kubelet stand-in
// ---------------------------------------------------------------------------------------------

type Workload = (String, String, String); // (namespace, kind, name)

#[derive(Default)]
struct KState {
    /// Pods whose status matches their behaviour.
    settled: HashSet<String>,
    /// Status last written per pod uid.
    applied: HashMap<String, Value>,
    bound: HashSet<String>,
    slots: HashMap<Workload, BTreeMap<u32, String>>,
    pod_slot: HashMap<String, (Workload, u32)>,
    rs_owner: HashMap<(String, String), Option<String>>,
    /// uid → (first seen, wall clock then, seen before `start()` returned).
    births: HashMap<String, (Instant, jiff::Timestamp, bool)>,
    /// Pods this stand-in deleted to make them Terminating (never confirmed).
    terminating: HashSet<String>,
    deadline: Option<Instant>,
}

struct Kubelet {
    ctl: Mutex<Controller>,
    st: Mutex<KState>,
    started: AtomicBool,
    poke: tokio::sync::Notify,
    wanted: AtomicU64,
    done: AtomicU64,
    age: Duration,
}

impl Kubelet {
    fn forget(&self, uid: &str) {
        let mut st = lock(&self.st);
        st.settled.remove(uid);
        st.applied.remove(uid);
        st.bound.remove(uid);
        st.births.remove(uid);
        st.terminating.remove(uid);
        if let Some((wl, slot)) = st.pod_slot.remove(uid)
            && let Some(m) = st.slots.get_mut(&wl)
        {
            m.remove(&slot);
        }
    }
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

    async fn workload_of(&self, pod: &Value) -> (String, String) {
        let ns = meta_str(pod, "namespace");
        match controller::controller_owner(pod) {
            Some(("ReplicaSet", rs)) => {
                let key = (ns.to_string(), rs.to_string());
                let cached = lock(&self.kubelet.st).rs_owner.get(&key).cloned();
                let owner = match cached {
                    Some(o) => o,
                    None => {
                        let path = format!("/apis/apps/v1/namespaces/{ns}/replicasets/{rs}");
                        let o = match call(&self.client, "GET", &path, None).await {
                            Ok((200, v)) => match controller::controller_owner(&v) {
                                Some(("Deployment", d)) => Some(d.to_string()),
                                _ => None,
                            },
                            _ => None,
                        };
                        lock(&self.kubelet.st).rs_owner.insert(key, o.clone());
                        o
                    }
                };
                match owner {
                    Some(d) => ("Deployment".into(), d),
                    None => ("ReplicaSet".into(), rs.to_string()),
                }
            }
            Some((kind, name)) => (kind.to_string(), name.to_string()),
            None => ("Pod".into(), meta_str(pod, "name").to_string()),
        }
    }

    /// Bring one pod to the state its behaviour asks for.
    async fn process_pod(&self, pod: &Value) {
        let uid = meta_str(pod, "uid").to_string();
        let ns = meta_str(pod, "namespace").to_string();
        let name = meta_str(pod, "name").to_string();
        let k = &self.kubelet;
        if is_deleting(pod) {
            if lock(&k.st).terminating.contains(&uid) {
                lock(&k.st).settled.insert(uid);
                return;
            }
            // A kubelet confirms a graceful deletion once the containers are stopped.
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
            let opts = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
            let _ = call(&self.client, "DELETE", &path, Some((&opts, JSON))).await;
            return;
        }
        let (wkind, wname) = self.workload_of(pod).await;
        let wl: Workload = (ns.clone(), wkind.clone(), wname.clone());
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        let created =
            meta_str(pod, "creationTimestamp").parse::<jiff::Timestamp>().unwrap_or_else(|_| util::now_ts());
        let (plan, born) = {
            let mut st = lock(&k.st);
            let started = k.started.load(Ordering::SeqCst);
            let born =
                *st.births.entry(uid.clone()).or_insert_with(|| (Instant::now(), util::now_ts(), !started));
            let slot = match st.pod_slot.get(&uid) {
                Some((_, s)) => *s,
                None => {
                    let used = st.slots.entry(wl.clone()).or_default();
                    let s = if wkind == "StatefulSet" {
                        name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()).unwrap_or(0)
                    } else {
                        (0..).find(|i| !used.contains_key(i)).unwrap_or(0)
                    };
                    used.insert(s, uid.clone());
                    st.pod_slot.insert(uid.clone(), (wl.clone(), s));
                    s
                }
            };
            let ctl = lock(&k.ctl);
            let fallback = if wkind == "Job" { PodBehaviour::Completed } else { ctl.default.clone() };
            let behaviour = ctl.behaviour(&ns, &wname, slot, &labels, !born.2, &fallback);
            let owner = pod
                .pointer("/metadata/ownerReferences/0")
                .cloned()
                .unwrap_or_else(|| json!({"kind": "Pod", "name": name}));
            (
                PodPlan {
                    name: name.clone(),
                    labels: labels.clone(),
                    annotations: pod.pointer("/metadata/annotations").cloned(),
                    owner,
                    spec: pod.get("spec").cloned().unwrap_or_else(|| json!({})),
                    behaviour,
                    index: slot,
                    counts: true,
                },
                born,
            )
        };
        let created = if born.2 { util::minus(created, k.age) } else { created };
        let rendered = {
            let ctl = lock(&k.ctl);
            controller::render_pod(&ctl, &ns, &plan, created, (born.0, born.1), &uid, Instant::now())
        };
        if let Some(d) = rendered.deadline {
            let mut st = lock(&k.st);
            st.deadline = Some(st.deadline.map_or(d, |x| x.min(d)));
        }
        let pod_path = format!("/api/v1/namespaces/{ns}/pods/{name}");
        let node = rendered.pod.pointer("/spec/nodeName").and_then(Value::as_str);
        let has_node = pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        if let Some(node) = node
            && !has_node
            && !lock(&k.st).bound.contains(&uid)
        {
            let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
            let _ = call(&self.client, "POST", &format!("{pod_path}/binding"), Some((&binding, JSON))).await;
            lock(&k.st).bound.insert(uid.clone());
        }
        let desired = rendered.pod.get("status").cloned().unwrap_or_else(|| json!({}));
        let unchanged = lock(&k.st).applied.get(&uid) == Some(&desired);
        if !unchanged {
            let mut status = desired.as_object().cloned().unwrap_or_default();
            if let Some(cur) = pod.get("status").and_then(Value::as_object) {
                for key in cur.keys() {
                    status.entry(key.clone()).or_insert(Value::Null);
                }
            }
            let patch = json!({"status": status});
            match call(&self.client, "PATCH", &format!("{pod_path}/status"), Some((&patch, MERGE))).await {
                Ok((200, _)) => {
                    lock(&k.st).applied.insert(uid.clone(), desired);
                }
                _ => return,
            }
        }
        if plan.behaviour == PodBehaviour::Terminating && !lock(&k.st).terminating.contains(&uid) {
            // Deleted on a node whose kubelet never confirms: Terminating until the test ends.
            lock(&k.st).terminating.insert(uid.clone());
            let _ = call(&self.client, "DELETE", &pod_path, None).await;
        }
        lock(&k.st).settled.insert(uid);
    }

    async fn kubelet_loop(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let generation = self.kubelet.wanted.load(Ordering::SeqCst);
            lock(&self.kubelet.st).deadline = None;
            let list = match call(&self.client, "GET", "/api/v1/pods", None).await {
                Ok((200, v)) => v,
                _ => {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            let rv =
                list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("0").to_string();
            let mut pods = items(list);
            pods.sort_by_key(|p| meta_str(p, "resourceVersion").parse::<u64>().unwrap_or(0));
            let live: HashSet<String> = pods.iter().map(|p| meta_str(p, "uid").to_string()).collect();
            let gone: Vec<String> =
                lock(&self.kubelet.st).births.keys().filter(|u| !live.contains(*u)).cloned().collect();
            for uid in gone {
                self.kubelet.forget(&uid);
            }
            for p in &pods {
                self.process_pod(p).await;
            }
            self.kubelet.done.store(generation, Ordering::SeqCst);

            let path = format!(
                "/api/v1/pods?watch=true&resourceVersion={rv}&timeoutSeconds=60&allowWatchBookmarks=true"
            );
            let Ok(req) = http::Request::builder().method("GET").uri(&path).body(Vec::new()) else {
                continue;
            };
            let Ok(stream) = self.client.request_events::<Value>(req).await else {
                continue;
            };
            let mut stream = Box::pin(stream);
            loop {
                let deadline = lock(&self.kubelet.st).deadline;
                let sleep = tokio::time::sleep_until(
                    deadline
                        .map_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600), Into::into),
                );
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = self.kubelet.poke.notified() => break,
                    () = sleep => break,
                    ev = stream.next() => match ev {
                        Some(Ok(kube::core::WatchEvent::Added(p) | kube::core::WatchEvent::Modified(p))) => {
                            self.process_pod(&p).await;
                        }
                        Some(Ok(kube::core::WatchEvent::Deleted(p))) => self.kubelet.forget(meta_str(&p, "uid")),
                        Some(Ok(kube::core::WatchEvent::Bookmark(_))) => {}
                        _ => break,
                    },
                }
            }
        }
    }

    /// The stand-in Milvus Operator: copy `spec.components.<comp>.replicas` to the Deployments.
    async fn reconcile_milvuses(&self) {
        let Some(r) = self.disc().lookup("milvus.io", "milvuses").cloned() else {
            return;
        };
        let Ok(crs) = call_ok(&self.client, "GET", &res_path(&r, None, None), None).await else {
            return;
        };
        let Ok(deps) = call_ok(&self.client, "GET", "/apis/apps/v1/deployments", None).await else {
            return;
        };
        let deps = items(deps);
        for cr in items(crs) {
            let ns = meta_str(&cr, "namespace");
            let mine: Vec<&Value> = deps.iter().filter(|d| meta_str(d, "namespace") == ns).collect();
            for (name, replicas) in controller::milvus_replicas(&cr, &mine) {
                let patch = json!({"spec": {"replicas": replicas}});
                let path = format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}");
                let _ = call(&self.client, "PATCH", &path, Some((&patch, MERGE))).await;
            }
        }
    }

    async fn reconciler_loop(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if self.reconciler.load(Ordering::SeqCst) {
                self.reconcile_milvuses().await;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// None when every workload has converged, else what is still moving.
    async fn unsettled(&self) -> Result<Option<String>, String> {
        let k = &self.kubelet;
        if k.done.load(Ordering::SeqCst) < k.wanted.load(Ordering::SeqCst) {
            return Ok(Some("the kubelet stand-in has not re-read the pods".into()));
        }
        let pods = items(call_ok(&self.client, "GET", "/api/v1/pods", None).await?);
        let rss = items(call_ok(&self.client, "GET", "/apis/apps/v1/replicasets", None).await?);
        let deps = items(call_ok(&self.client, "GET", "/apis/apps/v1/deployments", None).await?);
        let stss = items(call_ok(&self.client, "GET", "/apis/apps/v1/statefulsets", None).await?);
        let jobs = items(call_ok(&self.client, "GET", "/apis/batch/v1/jobs", None).await?);
        let id = |v: &Value| format!("{}/{}", meta_str(v, "namespace"), meta_str(v, "name"));
        {
            let st = lock(&k.st);
            for p in &pods {
                if !is_deleting(p) && !st.settled.contains(meta_str(p, "uid")) {
                    return Ok(Some(format!("pod {} not handled by the kubelet stand-in yet", id(p))));
                }
            }
        }
        let owned = |owner: &Value| -> Vec<&Value> {
            let uid = meta_str(owner, "uid");
            pods.iter().filter(|p| owner_uid(p) == Some(uid)).collect()
        };
        let behind = |v: &Value| i64_at(v, "/status/observedGeneration") < i64_at(v, "/metadata/generation");
        let mut rs_ready: HashMap<String, i64> = HashMap::new();
        for rs in &rss {
            let active: Vec<&Value> = owned(rs).into_iter().filter(|p| is_active(p)).collect();
            let ready = active.iter().filter(|p| is_ready(p)).count() as i64;
            if behind(rs)
                || active.len() as i64 != i64_at(rs, "/spec/replicas")
                || i64_at(rs, "/status/replicas") != active.len() as i64
                || i64_at(rs, "/status/readyReplicas") != ready
            {
                return Ok(Some(format!("replicaset {} is converging", id(rs))));
            }
            if let Some(o) = owner_uid(rs) {
                *rs_ready.entry(o.to_string()).or_default() += ready;
            }
        }
        for d in &deps {
            let want = d.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let ready = rs_ready.get(meta_str(d, "uid")).copied().unwrap_or(0);
            if behind(d)
                || i64_at(d, "/status/replicas") != want
                || i64_at(d, "/status/updatedReplicas") != want
                || i64_at(d, "/status/readyReplicas") != ready
                || i64_at(d, "/status/availableReplicas") != ready
            {
                return Ok(Some(format!("deployment {} is converging", id(d))));
            }
        }
        for s in &stss {
            let want = s.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            let mine: Vec<&Value> = owned(s).into_iter().filter(|p| !is_deleting(p)).collect();
            let ready = mine.iter().filter(|p| is_ready(p)).count() as i64;
            let blocked = ready < mine.len() as i64;
            if behind(s)
                || i64_at(s, "/status/replicas") != mine.len() as i64
                || i64_at(s, "/status/readyReplicas") != ready
                || (mine.len() as i64 != want && !blocked)
            {
                return Ok(Some(format!("statefulset {} is converging", id(s))));
            }
        }
        for j in &jobs {
            let mine = owned(j);
            let phase =
                |p: &&&Value, ph: &str| p.pointer("/status/phase").and_then(Value::as_str) == Some(ph);
            let succeeded = mine.iter().filter(|p| phase(p, "Succeeded")).count() as i64;
            let active = mine.iter().filter(|p| is_active(p)).count() as i64;
            if mine.is_empty()
                || i64_at(j, "/status/succeeded") != succeeded
                || i64_at(j, "/status/active") != active
            {
                return Ok(Some(format!("job {} is converging", id(j))));
            }
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// The audit log as the request log
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct AuditReader {
    offset: u64,
    partial: String,
    records: Vec<RequestRecord>,
    by_id: HashMap<String, usize>,
    last_marker: u64,
    next_marker: u64,
    cleared: usize,
}

const MARKER: &str = "milvus-test-api-marker";

fn ts_of(v: &Value, key: &str) -> Option<jiff::Timestamp> {
    v.get(key)?.as_str()?.parse().ok()
}

impl AuditReader {
    fn read(&mut self, path: &Path, users: &HashMap<String, String>) -> Result<(), String> {
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.seek(SeekFrom::Start(self.offset)).map_err(|e| e.to_string())?;
        let mut buf = String::new();
        let n = f.read_to_string(&mut buf).map_err(|e| e.to_string())?;
        self.offset += n as u64;
        self.partial.push_str(&buf);
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            let Ok(ev) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            self.event(&ev, users);
        }
        Ok(())
    }

    fn event(&mut self, ev: &Value, users: &HashMap<String, String>) {
        let uri = ev["requestURI"].as_str().unwrap_or_default();
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let query = util::parse_query(query);
        let authn = ev.pointer("/user/username").and_then(Value::as_str).unwrap_or_default();
        if authn == "audit-marker" {
            if let Some((_, n)) = query.iter().find(|(k, _)| k == MARKER) {
                self.last_marker = self.last_marker.max(n.parse().unwrap_or(0));
            }
            return;
        }
        let anonymous = authn.is_empty() || authn == "system:anonymous";
        if !anonymous && !users.contains_key(authn) {
            return;
        }
        let code = ev.pointer("/responseStatus/code").and_then(Value::as_u64).unwrap_or(0) as u16;
        let id = ev["auditID"].as_str().unwrap_or_default().to_string();
        if let Some(&i) = self.by_id.get(&id) {
            if let Some(r) = self.records.get_mut(i)
                && r.status == 0
            {
                r.status = code;
            }
            return;
        }
        let verb = ev["verb"].as_str().unwrap_or_default().to_string();
        let resource = ev.get("objectRef").is_some_and(|o| !o.is_null());
        let method = match verb.as_str() {
            "get" | "list" | "watch" => "GET".to_string(),
            "create" => "POST".into(),
            "update" => "PUT".into(),
            "patch" => "PATCH".into(),
            "delete" | "deletecollection" => "DELETE".into(),
            other => other.to_ascii_uppercase(),
        };
        let user = ev
            .pointer("/impersonatedUser/username")
            .and_then(Value::as_str)
            .or(Some(authn).filter(|u| !u.is_empty()))
            .map(String::from);
        let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let duration = match (ts_of(ev, "requestReceivedTimestamp"), ts_of(ev, "stageTimestamp")) {
            (Some(a), Some(b)) => Duration::try_from(b.duration_since(a)).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let rec = RequestRecord {
            seq: 0,
            method,
            path: path.to_string(),
            query: query.clone(),
            user,
            credential: users.get(authn).map(|t| auth::fingerprint(t)),
            status: code,
            verb: resource.then(|| verb.clone()),
            dry_run: param("dryRun") == Some("All"),
            watch: verb == "watch" || matches!(param("watch"), Some("true" | "1")),
            fault: false,
            dropped: false,
            content_type: None,
            body: ev.get("requestObject").cloned(),
            user_agent: ev["userAgent"].as_str().map(String::from),
            duration,
        };
        self.by_id.insert(id, self.records.len());
        self.records.push(rec);
    }
}

// ---------------------------------------------------------------------------------------------
// A lazily filled, append-only arena (lets a `StateView` hand out references to fetched objects)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
pub(crate) struct Arena {
    head: OnceCell<Box<ArenaNode>>,
}

struct ArenaNode {
    value: Vec<Value>,
    next: OnceCell<Box<ArenaNode>>,
}

impl Arena {
    pub fn alloc(&self, value: Vec<Value>) -> &[Value] {
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
    pub url: String,
    pub port: u16,
    pub ca_pem: String,
    pub kubeconfig: PathBuf,
    pub dir: PathBuf,
    pub owned_dir: bool,
    pub git_version: String,
    /// Plugin users in kubeconfig order: `(name, token)`.
    pub tokens: Vec<(String, String)>,
    cp: Option<ControlPlane>,
}

impl std::fmt::Debug for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Real").field("url", &self.url).field("dir", &self.dir).finish()
    }
}

fn read_users(dir: &Path) -> Result<HashMap<String, String>, String> {
    let text =
        std::fs::read_to_string(dir.join("users")).map_err(|e| format!("{}/users: {e}", dir.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(u, t)| (u.to_string(), t.trim().to_string()))
        .collect())
}

fn read_env(dir: &Path, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(dir.join("env")).map_err(|e| format!("{}/env: {e}", dir.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .map(|v| v.trim_matches('\'').to_string())
        .ok_or_else(|| format!("{key} missing from {}/env", dir.display()))
}

async fn client_for(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

/// Strip what the server assigns, so the object can be created.
fn for_create(mut obj: Value, api_version: &str) -> Value {
    obj["apiVersion"] = json!(api_version);
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"] {
            m.remove(k);
        }
    }
    obj
}

/// The RBAC objects that give `user` what `rules` allow, for the resources the server serves.
fn rbac_objects(user: &str, rules: &Rules, disc: &Discovery, namespaces: &[String]) -> Vec<Value> {
    const VERBS: [&str; 8] =
        ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"];
    let mut seen = HashSet::new();
    let mut resources: Vec<(&str, &str, bool)> = Vec::new();
    for r in &disc.res {
        if seen.insert((r.group.as_str(), r.plural.as_str())) {
            resources.push((&r.group, &r.plural, r.namespaced));
        }
    }
    let verbs_for = |group: &str, plural: &str| -> Vec<&'static str> {
        let mut v = VERBS.to_vec();
        if matches!((group, plural), ("", "users" | "groups" | "serviceaccounts")) {
            v.push("impersonate");
        }
        v
    };
    let collect = |ns: Option<&str>| -> Vec<Value> {
        let mut by: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (group, plural, namespaced) in &resources {
            if ns.is_some() && !namespaced {
                continue;
            }
            for verb in verbs_for(group, plural) {
                let here = rules.allows(verb, plural, ns);
                let everywhere = ns.is_some() && rules.allows(verb, plural, None);
                if here && !everywhere {
                    by.entry((group.to_string(), verb.to_string())).or_default().push(plural.to_string());
                }
            }
        }
        by.into_iter().map(|((g, v), rs)| json!({"apiGroups": [g], "resources": rs, "verbs": [v]})).collect()
    };
    let name = format!("milvus-test:{user}");
    let subject = json!([{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]);
    let mut out = Vec::new();
    let cluster = collect(None);
    if !cluster.is_empty() {
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "rules": cluster}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}}));
    }
    for ns in namespaces {
        let rules = collect(Some(ns));
        if rules.is_empty() {
            continue;
        }
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": ns}, "rules": rules}));
        out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns}, "subjects": subject,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}}));
    }
    out
}

impl Real {
    pub fn start(cfg: Config) -> Result<Real, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("milvus-test-kube-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let script = script_path();
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("up").arg("--parent-pid").arg(std::process::id().to_string());
        for (u, _) in &cfg.users {
            if u != "admin" {
                cmd.arg("--user").arg(u);
            }
        }
        cmd.arg(&dir);
        let cp = ControlPlane { dir: dir.clone() };
        // `up` picks free ports and then binds them; a parallel test can take one in between.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out = cmd.output().map_err(|e| format!("{}: {e}", script.display()))?;
            if out.status.success() {
                break;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("address already in use") && attempt < 4 {
                continue;
            }
            let hint = if err.contains("not cached") {
                format!("\nbuild the control plane once with `{} build` (about 7 minutes)", script.display())
            } else {
                String::new()
            };
            return Err(format!("{} up failed:\n{err}{hint}", script.display()));
        }
        let all_users = read_users(&dir)?;
        let url = read_env(&dir, "CONTROL_PLANE_SERVER")?;
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let ca_pem =
            std::fs::read_to_string(read_env(&dir, "CONTROL_PLANE_CA")?).map_err(|e| e.to_string())?;
        let audit_log = PathBuf::from(read_env(&dir, "CONTROL_PLANE_AUDIT_LOG")?);

        let mut tokens: Vec<(String, String)> = Vec::new();
        let token_of = |u: &str| all_users.get(u).cloned().ok_or_else(|| format!("no token for user {u}"));
        tokens.push(("admin".into(), token_of("admin")?));
        for (u, _) in &cfg.users {
            if u != "admin" {
                tokens.push((u.clone(), token_of(u)?));
            }
        }
        // The state directory is always ours to delete; a kubeconfig asked for elsewhere stays.
        let owned_dir = true;
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

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("milvus-test-kube")
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
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
        let ctl = cfg.ctl;
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
            log: Mutex::new(AuditReader::default()),
            shutdown,
            url,
            port,
            ca_pem,
            kubeconfig,
            dir,
            owned_dir,
            git_version,
            tokens,
            cp: Some(cp),
        };
        real.load(&cfg.sources, &cfg.replicas, cfg.age, &cfg.users)?;
        real.settle()?;
        real.h.kubelet.started.store(true, Ordering::SeqCst);
        // Forget what loading did: the log starts empty, as the loopback's does.
        real.clear_requests();
        Ok(real)
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("runtime")
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

    fn create(&self, obj: &Value) -> Result<Value, String> {
        let av = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let r =
            self.h.disc().for_kind(av, kind).cloned().ok_or_else(|| format!("{av} {kind} is not served"))?;
        let gv = if r.group.is_empty() { r.version.clone() } else { format!("{}/{}", r.group, r.version) };
        let body = for_create(obj.clone(), &gv);
        let ns = meta_str(&body, "namespace");
        let path = res_path(&r, Some(ns).filter(|n| !n.is_empty()), None);
        self.call_ok("POST", &path, Some((&body, JSON)))
    }

    fn wait_served(&self, group: &str, plural: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.block(Discovery::load(&self.h.client))?;
            let found = d.lookup(group, plural).is_some();
            *lock(&self.h.disc) = d;
            if found {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{plural}.{group} not served 30s after its CRD was created"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn load(
        &self,
        sources: &[Source],
        replicas: &[(String, i64)],
        age: Duration,
        users: &[(String, Rules)],
    ) -> Result<(), String> {
        // The loopback's loader does renames, Helm metadata, release Secrets and CR status.
        let mut store = Store::default();
        fixtures::load_with(&mut store, sources, age, util::now_ts(), false)?;
        crate::apply_replicas(&mut store, replicas)?;
        let types = fixtures::all_types(&store);
        let mut objects: Vec<(String, Value)> = Vec::new(); // (kind, object)
        for t in &types {
            for o in store.list(&t.key(), None, None) {
                objects.push((t.kind.clone(), o.clone()));
            }
        }
        // Nodes for the kubelet stand-in to "run" pods on.
        let created = util::ts(util::now_ts());
        for i in 1..=3 {
            let node = crate::node_object(i, &created, &self.git_version);
            self.create(&node)?;
            let status = json!({"status": node["status"].clone()});
            self.call_ok("PATCH", &format!("/api/v1/nodes/node-{i}/status"), Some((&status, MERGE)))?;
        }
        let mut namespaces: Vec<String> = vec!["default".into()];
        for (kind, o) in objects.iter().filter(|(k, _)| k == "Namespace") {
            let _ = kind;
            let name = meta_str(o, "name").to_string();
            let (code, v) =
                self.call("POST", "/api/v1/namespaces", Some((&for_create(o.clone(), "v1"), JSON)))?;
            if code != 201 && code != 409 {
                return Err(format!("namespace {name}: {code} {}", message(&v)));
            }
            if !namespaces.contains(&name) {
                namespaces.push(name);
            }
        }
        for (_, o) in objects.iter().filter(|(k, _)| k == "CustomResourceDefinition") {
            self.create(o)?;
            let group = o.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
            let plural = o.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default();
            self.wait_served(group, plural)?;
        }
        // Custom resources next (their uids go into the ownerReferences of the rest).
        let builtin: HashSet<String> = crate::resources::builtins().into_iter().map(|t| t.kind).collect();
        let mut uids: HashMap<String, String> = HashMap::new();
        let is_custom = |kind: &str| !builtin.contains(kind);
        for (_, o) in objects.iter().filter(|(k, _)| is_custom(k)) {
            let created = self.create(o)?;
            uids.insert(meta_str(o, "uid").to_string(), meta_str(&created, "uid").to_string());
            if let Some(status) = o.get("status").filter(|s| !s.is_null()) {
                let r = self
                    .h
                    .disc()
                    .for_kind(
                        o["apiVersion"].as_str().unwrap_or_default(),
                        o["kind"].as_str().unwrap_or_default(),
                    )
                    .cloned()
                    .ok_or("custom resource not served")?;
                let mut sr = r.clone();
                sr.plural = format!("{}/status", r.plural);
                let path = res_path(&sr, Some(meta_str(o, "namespace")), Some(meta_str(o, "name")));
                self.call_ok("PATCH", &path, Some((&json!({"status": status}), MERGE)))?;
            }
        }
        for (kind, o) in &objects {
            if matches!(kind.as_str(), "Namespace" | "CustomResourceDefinition") || is_custom(kind) {
                continue;
            }
            let mut o = o.clone();
            if let Some(refs) = o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                for r in refs.iter_mut() {
                    if let Some(new) = r.get("uid").and_then(Value::as_str).and_then(|u| uids.get(u)) {
                        r["uid"] = json!(new);
                    }
                }
            }
            if let Some(m) = o.get_mut("status").filter(|_| kind != "Secret") {
                *m = Value::Null;
            }
            if let Some(obj) = o.as_object_mut() {
                obj.retain(|_, v| !v.is_null());
            }
            match self.create(&o) {
                Ok(_) => {}
                Err(e) if e.contains("is not served") => {} // as the loopback skips unknown kinds
                Err(e) => return Err(format!("{kind} {}: {e}", meta_str(&o, "name"))),
            }
        }
        self.grant(users, &namespaces)
    }

    /// Users and their rules as RBAC objects; returns once the authorizer enforces them.
    fn grant(&self, users: &[(String, Rules)], namespaces: &[String]) -> Result<(), String> {
        let disc = self.h.disc();
        let mut probes = Vec::new();
        for (user, rules) in users {
            if user == "admin" {
                continue;
            }
            for o in rbac_objects(user, rules, &disc, namespaces) {
                self.create(&o)?;
                if let Some(rule) = o.pointer("/rules/0") {
                    let ns = meta_str(&o, "namespace").to_string();
                    probes.push((user.clone(), ns, rule.clone()));
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for (user, ns, rule) in probes {
            let attrs = json!({
                "group": rule["apiGroups"][0], "resource": rule["resources"][0],
                "verb": rule["verbs"][0], "namespace": ns,
            });
            let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "resourceAttributes": attrs}});
            loop {
                let v = self.call_ok(
                    "POST",
                    "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                    Some((&review, JSON)),
                )?;
                if v.pointer("/status/allowed").and_then(Value::as_bool) == Some(true) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("RBAC for {user} not in effect after 30s"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// Wait until the controllers and the stand-ins have converged.
    pub fn settle(&self) -> Result<(), String> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let why = self.block(self.h.unsettled())?;
            let Some(why) = why else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(format!("not settled after {SETTLE_TIMEOUT:?}: {why}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn settle_or_panic(&self) {
        if let Err(e) = self.settle() {
            panic!("kube-apiserver backend: {e}");
        }
    }

    // --- the request log ---

    fn sync_log(&self) -> MutexGuard<'_, AuditReader> {
        let mut log = lock(&self.log);
        log.next_marker += 1;
        let n = log.next_marker;
        let path = format!("/version?{MARKER}={n}");
        let _ = self.block(call(&self.h.marker, "GET", &path, None));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Err(e) = log.read(&self.audit_log, &self.users) {
                panic!("audit log: {e}");
            }
            if log.last_marker >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        let log = self.sync_log();
        log.records[log.cleared..]
            .iter()
            .enumerate()
            .map(|(i, r)| RequestRecord { seq: i as u64 + 1, ..r.clone() })
            .collect()
    }

    pub fn clear_requests(&self) {
        let mut log = self.sync_log();
        log.cleared = log.records.len();
    }

    // --- objects ---

    fn res(&self, group: &str, version: Option<&str>, plural: &str) -> Option<ApiRes> {
        let d = self.h.disc();
        match version {
            Some(v) => d.lookup_version(group, v, plural).cloned(),
            None => d.lookup(group, plural).cloned(),
        }
    }

    pub fn get(
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

    pub fn list(
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

    pub fn resource_version(&self) -> u64 {
        self.call_ok("GET", "/api/v1/namespaces?limit=1", None)
            .ok()
            .and_then(|v| v.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub fn apply(&self, object: Value) -> Result<Value, String> {
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

    pub fn patch(
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

    pub fn delete(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<Value> {
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

    pub fn set_pod_behaviour(&self, rule: (crate::controller::Target, PodBehaviour)) {
        lock(&self.h.kubelet.ctl).rules.push(rule);
        self.repoke();
    }

    fn repoke(&self) {
        let k = &self.h.kubelet;
        k.wanted.fetch_add(1, Ordering::SeqCst);
        k.poke.notify_one();
        self.settle_or_panic();
    }

    pub fn set_operator_reconciler(&self, on: bool) {
        self.h.reconciler.store(on, Ordering::SeqCst);
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Drop for Real {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        drop(self.cp.take()); // `control-plane.sh down`
        if self.owned_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A [`crate::StateView`] over the real server: each query is a request, answered once per view.
pub(crate) struct RealView<'a> {
    pub real: &'a Real,
    pub arena: Arena,
    pub log: OnceCell<Vec<RequestRecord>>,
}

impl RealView<'_> {
    pub fn get(&self, group: &str, plural: &str, ns: Option<&str>, name: &str) -> Option<&Value> {
        let v = self.real.get(group, None, plural, ns, name)?;
        self.arena.alloc(vec![v]).first()
    }

    pub fn list(&self, group: &str, plural: &str, ns: Option<&str>) -> Vec<&Value> {
        let v = self.real.list(group, plural, ns, None).unwrap_or_default();
        self.arena.alloc(v).iter().collect()
    }

    pub fn requests(&self) -> &[RequestRecord] {
        self.log.get_or_init(|| self.real.requests())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_events_become_request_records() {
        let users: HashMap<String, String> = [("admin".to_string(), "t0k3n".to_string())].into();
        let mut r = AuditReader::default();
        let ev = |id: &str, user: &str, stage: &str, verb: &str, uri: &str, code: u16| {
            json!({"auditID": id, "stage": stage, "verb": verb, "requestURI": uri,
                "user": {"username": user}, "objectRef": {"resource": "pods"},
                "responseStatus": {"code": code}, "userAgent": "kubectl-milvus/0.1.0",
                "requestReceivedTimestamp": "2025-01-01T00:00:00.000000Z",
                "stageTimestamp": "2025-01-01T00:00:00.250000Z"})
        };
        r.event(&ev("1", "admin", "ResponseComplete", "list", "/api/v1/pods?limit=500", 200), &users);
        r.event(&ev("2", "kube-controller-manager", "ResponseComplete", "list", "/api/v1/pods", 200), &users);
        r.event(&ev("3", "admin", "ResponseStarted", "watch", "/api/v1/pods?watch=true", 200), &users);
        r.event(&ev("3", "admin", "ResponseComplete", "watch", "/api/v1/pods?watch=true", 200), &users);
        let mut patch = ev(
            "4",
            "admin",
            "ResponseComplete",
            "patch",
            "/apis/apps/v1/namespaces/d/deployments/x?dryRun=All",
            409,
        );
        patch["impersonatedUser"] = json!({"username": "viewer"});
        r.event(&patch, &users);
        r.event(&json!({"auditID": "5", "verb": "get", "requestURI": "/version?milvus-test-api-marker=7", "user": {"username": "audit-marker"}}), &users);
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.records[0].method, "GET");
        assert_eq!(r.records[0].query_param("limit"), Some("500"));
        assert_eq!(r.records[0].verb.as_deref(), Some("list"));
        assert_eq!(r.records[0].duration, Duration::from_millis(250));
        assert_eq!(r.records[0].credential, Some(auth::fingerprint("t0k3n")));
        assert!(r.records[1].watch);
        assert_eq!(r.records[2].method, "PATCH");
        assert_eq!(r.records[2].user.as_deref(), Some("viewer"));
        assert_eq!(r.records[2].status, 409);
        assert!(r.records[2].dry_run);
        assert_eq!(r.last_marker, 7);
    }

    #[test]
    fn rules_become_rbac() {
        let disc = Discovery {
            res: vec![
                ApiRes {
                    group: "".into(),
                    version: "v1".into(),
                    plural: "pods".into(),
                    kind: "Pod".into(),
                    namespaced: true,
                },
                ApiRes {
                    group: "milvus.io".into(),
                    version: "v1beta1".into(),
                    plural: "milvuses".into(),
                    kind: "Milvus".into(),
                    namespaced: true,
                },
                ApiRes {
                    group: "".into(),
                    version: "v1".into(),
                    plural: "users".into(),
                    kind: "User".into(),
                    namespaced: false,
                },
            ],
            preferred: HashMap::new(),
        };
        let objs =
            rbac_objects("v", &Rules::read_only().deny("list", "milvuses"), &disc, &["default".into()]);
        assert_eq!(objs.len(), 2, "{objs:#?}");
        let rules = objs[0]["rules"].to_string();
        assert!(
            rules.contains(r#"{"apiGroups":["milvus.io"],"resources":["milvuses"],"verbs":["get"]}"#),
            "{rules}"
        );
        assert!(!rules.contains(r#""resources":["milvuses"],"verbs":["list"]"#), "{rules}");
        assert!(!rules.contains("impersonate"), "{rules}");
        let ns = rbac_objects(
            "v",
            &Rules::none().allow_in("default", &["list"], &["pods"]),
            &disc,
            &["default".into(), "prod".into()],
        );
        assert_eq!(ns.len(), 2);
        assert_eq!(ns[0]["kind"], "Role");
        assert_eq!(ns[0]["metadata"]["namespace"], "default");
    }

    #[test]
    fn arena_hands_out_stable_references() {
        let a = Arena::default();
        let x = a.alloc(vec![json!(1)]);
        let y = a.alloc(vec![json!(2), json!(3)]);
        assert_eq!(x, [json!(1)]);
        assert_eq!(y.len(), 2);
    }
}
