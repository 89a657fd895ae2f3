//! The in-process stand-ins for what a control plane without nodes lacks: a kubelet that binds
//! the pods the real controllers create to a node and writes the status their [`PodBehaviour`]
//! asks for (pod index = the lowest index free in its workload when the pod appears; StatefulSet
//! ordinals), the Milvus Operator's replica handling (when enabled), and the check that the
//! controllers and the stand-ins have converged.
//!
//! Counts read from the server are compared and added without overflow (the lints below keep it so).
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_possible_truncation)]

use super::client::{JSON, MERGE, call, call_ok, items, res_path};
use super::netns::PodNetwork;
use super::{Harness, lock};
use crate::controller::{self, Controller, PodBehaviour, PodPlan};
use crate::pod_http::PodInfo;
use crate::util::{self, meta_str};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A number of objects, as the server's `int64`/`int32` fields count them.
fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
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

type Workload = (String, String, String); // (namespace, kind, name)

/// How many pods the kubelet stand-in writes at once (a node's kubelet works its pods in parallel;
/// one at a time, a real control plane gets about 35 pods a second ready).
const PARALLEL_PODS: usize = 32;

/// A pod event, admitted in arrival order: `plan` is `None` for a pod being deleted, else its
/// workload's name, the pod as its behaviour renders it now, and that behaviour.
pub(super) struct Admitted {
    uid: String,
    pod: Value,
    plan: Option<(String, controller::Rendered, PodBehaviour)>,
}

/// Admitted pods waiting to be applied, at most [`PARALLEL_PODS`] applied at once and each pod's
/// in the order admitted (a pod's next write waits for its previous one).
#[derive(Default)]
struct Pending {
    queue: std::collections::VecDeque<Admitted>,
    busy: HashSet<String>,
    /// Pods deleted while a write of theirs was running: forgotten when it ends.
    gone: HashSet<String>,
}

impl Pending {
    /// The next admitted pod none of whose writes is running, marked running.
    fn next_ready(&mut self) -> Option<Admitted> {
        let at = self.queue.iter().position(|a| !self.busy.contains(&a.uid))?;
        let a = self.queue.remove(at)?;
        self.busy.insert(a.uid.clone());
        Some(a)
    }
}

#[derive(Default)]
pub(super) struct KState {
    /// Pods whose status matches their behaviour.
    pub(super) settled: HashSet<String>,
    /// Status last written per pod uid.
    pub(super) applied: HashMap<String, Value>,
    pub(super) bound: HashSet<String>,
    pub(super) slots: HashMap<Workload, BTreeMap<u32, String>>,
    pub(super) pod_slot: HashMap<String, (Workload, u32)>,
    pub(super) rs_owner: HashMap<(String, String), Option<String>>,
    /// uid → (first seen, wall clock then, seen before `start()` returned).
    pub(super) births: HashMap<String, (Instant, jiff::Timestamp, bool)>,
    /// Pods this stand-in deleted to make them Terminating (never confirmed).
    pub(super) terminating: HashSet<String>,
    pub(super) deadline: Option<Instant>,
    /// The last request that failed per pod uid (what a "not settled" report says).
    pub(super) failed: HashMap<String, String>,
}

pub(super) struct Kubelet {
    pub(super) ctl: Mutex<Controller>,
    pub(super) st: Mutex<KState>,
    pub(super) started: AtomicBool,
    pub(super) poke: tokio::sync::Notify,
    pub(super) wanted: AtomicU64,
    pub(super) done: AtomicU64,
    pub(super) age: Duration,
    /// The pods' IPs and what answers on them (`None`: pods keep their made-up IPs).
    pub(super) net: Option<PodNetwork>,
}

impl Kubelet {
    pub(super) fn forget(&self, uid: &str) {
        if let Some(net) = &self.net {
            net.release(uid);
        }
        let mut st = lock(&self.st);
        st.settled.remove(uid);
        st.applied.remove(uid);
        st.bound.remove(uid);
        st.births.remove(uid);
        st.terminating.remove(uid);
        st.failed.remove(uid);
        if let Some((wl, slot)) = st.pod_slot.remove(uid)
            && let Some(m) = st.slots.get_mut(&wl)
        {
            m.remove(&slot);
        }
    }
}

impl Kubelet {
    /// Replace the rendered pod's made-up IPs by real ones: a pod IP from the pod network (and
    /// the responder listening on it as the pod would) for a pod that has one, the network's
    /// gateway as `hostIP`.
    fn place_on_network(&self, uid: &str, mut info: PodInfo, status: &mut Value) {
        let Some(net) = &self.net else {
            return;
        };
        info.ready = is_ready(&json!({"status": status.clone()}));
        let Some(s) = status.as_object_mut() else {
            return;
        };
        if s.contains_key("podIP") {
            match net.assign(uid, info) {
                Ok(ip) => {
                    s.insert("podIP".into(), json!(ip.to_string()));
                    s.insert("podIPs".into(), json!([{"ip": ip.to_string()}]));
                }
                Err(e) => {
                    eprintln!("kubelet stand-in: no pod IP for {uid}: {e}");
                    s.remove("podIP");
                    s.remove("podIPs");
                }
            }
        } else {
            net.release(uid);
        }
        if s.contains_key("hostIP") {
            let host = net.host_ip().to_string();
            s.insert("hostIP".into(), json!(host));
            s.insert("hostIPs".into(), json!([{"ip": host}]));
        }
    }
}

impl Harness {
    pub(super) async fn workload_of(&self, pod: &Value) -> (String, String) {
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

    /// The first half of handling a pod event, done in the order the events arrive: the pod's
    /// workload, its index there (the lowest free one when it first appears) and the status its
    /// behaviour gives it now. The second half, [`apply`](Self::apply), writes it and may run
    /// concurrently with other pods'.
    pub(super) async fn admit(&self, pod: Value) -> Admitted {
        let uid = meta_str(&pod, "uid").to_string();
        if is_deleting(&pod) {
            return Admitted { uid, pod, plan: None };
        }
        let ns = meta_str(&pod, "namespace").to_string();
        let name = meta_str(&pod, "name").to_string();
        let k = &self.kubelet;
        let (wkind, wname) = self.workload_of(&pod).await;
        let wl: Workload = (ns.clone(), wkind.clone(), wname.clone());
        let labels = pod.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
        let created =
            meta_str(&pod, "creationTimestamp").parse::<jiff::Timestamp>().unwrap_or_else(|_| util::now_ts());
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
        let behaviour = plan.behaviour.clone();
        Admitted { uid, pod, plan: Some((wname, rendered, behaviour)) }
    }

    /// Bring one admitted pod to the state its behaviour asks for.
    pub(super) async fn apply(&self, admitted: Admitted) {
        let Admitted { uid, pod, plan } = admitted;
        let ns = meta_str(&pod, "namespace").to_string();
        let name = meta_str(&pod, "name").to_string();
        let k = &self.kubelet;
        let Some((wname, rendered, behaviour)) = plan else {
            if lock(&k.st).terminating.contains(&uid) {
                lock(&k.st).settled.insert(uid);
                return;
            }
            // A kubelet confirms a graceful deletion once the containers are stopped.
            let path = format!("/api/v1/namespaces/{ns}/pods/{name}");
            let opts = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
            let _ = call(&self.client, "DELETE", &path, Some((&opts, JSON))).await;
            return;
        };
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
        let mut desired = rendered.pod.get("status").cloned().unwrap_or_else(|| json!({}));
        let info =
            PodInfo { namespace: ns.clone(), name: name.clone(), workload: wname.clone(), ready: false };
        k.place_on_network(&uid, info, &mut desired);
        // The server sets the QoS class when the pod is created, from its resources; it is immutable.
        if let (Some(q), Some(s)) = (pod.pointer("/status/qosClass"), desired.as_object_mut()) {
            s.insert("qosClass".into(), q.clone());
        }
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
                    let mut st = lock(&k.st);
                    st.applied.insert(uid.clone(), desired);
                    st.failed.remove(&uid);
                }
                other => {
                    let why = match other {
                        Ok((code, body)) => {
                            format!("PATCH {pod_path}/status: {code} {}", super::client::message(&body))
                        }
                        Err(e) => format!("PATCH {pod_path}/status: {e}"),
                    };
                    lock(&k.st).failed.insert(uid, why);
                    return;
                }
            }
        }
        if behaviour == PodBehaviour::Terminating && !lock(&k.st).terminating.contains(&uid) {
            // Deleted on a node whose kubelet never confirms: Terminating until the test ends.
            lock(&k.st).terminating.insert(uid.clone());
            let _ = call(&self.client, "DELETE", &pod_path, None).await;
        }
        lock(&k.st).settled.insert(uid);
    }

    pub(super) async fn kubelet_loop(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let this: &Harness = &self;
        let run = |a: Admitted| async move {
            let uid = a.uid.clone();
            this.apply(a).await;
            uid
        };
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
            let mut admitted = Vec::with_capacity(pods.len());
            for p in pods {
                admitted.push(self.admit(p).await);
            }
            futures_util::stream::iter(admitted).for_each_concurrent(PARALLEL_PODS, |a| this.apply(a)).await;
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
            let mut pending = Pending::default();
            let mut running = futures_util::stream::FuturesUnordered::new();
            loop {
                while running.len() < PARALLEL_PODS
                    && let Some(a) = pending.next_ready()
                {
                    running.push(run(a));
                }
                let deadline = lock(&self.kubelet.st).deadline;
                let sleep = tokio::time::sleep_until(deadline.map_or_else(
                    || {
                        let now = tokio::time::Instant::now();
                        now.checked_add(Duration::from_secs(3600)).unwrap_or(now)
                    },
                    Into::into,
                ));
                tokio::select! {
                    _ = shutdown.changed() => return,
                    Some(uid) = running.next(), if !running.is_empty() => {
                        pending.busy.remove(&uid);
                        if pending.gone.remove(&uid) {
                            self.kubelet.forget(&uid);
                        }
                    }
                    () = self.kubelet.poke.notified() => break,
                    () = sleep => break,
                    ev = stream.next() => match ev {
                        Some(Ok(kube::core::WatchEvent::Added(p) | kube::core::WatchEvent::Modified(p))) => {
                            pending.queue.push_back(self.admit(p).await);
                        }
                        Some(Ok(kube::core::WatchEvent::Deleted(p))) => {
                            let uid = meta_str(&p, "uid").to_string();
                            pending.queue.retain(|a| a.uid != uid);
                            if pending.busy.contains(&uid) {
                                pending.gone.insert(uid);
                            } else {
                                self.kubelet.forget(&uid);
                            }
                        }
                        Some(Ok(kube::core::WatchEvent::Bookmark(_))) => {}
                        _ => break,
                    },
                }
            }
            // The writes under way finish before the pods are listed again (what was still
            // queued is in that list).
            while let Some(uid) = running.next().await {
                if pending.gone.remove(&uid) {
                    self.kubelet.forget(&uid);
                }
            }
        }
    }

    /// The stand-in Milvus Operator: copy `spec.components.<comp>.replicas` to the Deployments.
    pub(super) async fn reconcile_milvuses(&self) {
        // v1beta1, the storage version: the served v1alpha1's schema has no spec.mode.
        let Some(r) = self.disc().lookup_version("milvus.io", "v1beta1", "milvuses").cloned() else {
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

    pub(super) async fn reconciler_loop(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
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
    pub(super) async fn unsettled(&self) -> Result<Option<String>, String> {
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
                    let why = st.failed.get(meta_str(p, "uid")).map(|e| format!(" (last error: {e})"));
                    return Ok(Some(format!(
                        "pod {} not handled by the kubelet stand-in yet{}",
                        id(p),
                        why.unwrap_or_default()
                    )));
                }
            }
        }
        let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
        for p in &pods {
            if let Some(o) = owner_uid(p) {
                by_owner.entry(o).or_default().push(p);
            }
        }
        let owned = |owner: &Value| -> Vec<&Value> {
            by_owner.get(meta_str(owner, "uid")).cloned().unwrap_or_default()
        };
        let behind = |v: &Value| i64_at(v, "/status/observedGeneration") < i64_at(v, "/metadata/generation");
        let mut rs_ready: HashMap<String, i64> = HashMap::new();
        for rs in &rss {
            let active: Vec<&Value> = owned(rs).into_iter().filter(|p| is_active(p)).collect();
            let ready = count(active.iter().filter(|p| is_ready(p)).count());
            if behind(rs)
                || count(active.len()) != i64_at(rs, "/spec/replicas")
                || i64_at(rs, "/status/replicas") != count(active.len())
                || i64_at(rs, "/status/readyReplicas") != ready
            {
                return Ok(Some(format!("replicaset {} is converging", id(rs))));
            }
            if let Some(o) = owner_uid(rs) {
                let sum = rs_ready.entry(o.to_string()).or_default();
                *sum = sum.saturating_add(ready);
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
            let ready = count(mine.iter().filter(|p| is_ready(p)).count());
            let blocked = ready < count(mine.len());
            // updatedReplicas and availableReplicas are written after readyReplicas; the plugin's
            // UP-TO-DATE and AVAILABLE (and so Progressing) read them. A rolling update waits for
            // unready pods, so it is not waited for while one is.
            if behind(s)
                || i64_at(s, "/status/replicas") != count(mine.len())
                || i64_at(s, "/status/readyReplicas") != ready
                || (i64_at(s, "/status/updatedReplicas") != count(mine.len()) && !blocked)
                || i64_at(s, "/status/availableReplicas") != ready
                || (count(mine.len()) != want && !blocked)
            {
                return Ok(Some(format!("statefulset {} is converging", id(s))));
            }
        }
        for j in &jobs {
            let mine = owned(j);
            let phase =
                |p: &&&Value, ph: &str| p.pointer("/status/phase").and_then(Value::as_str) == Some(ph);
            let succeeded = count(mine.iter().filter(|p| phase(p, "Succeeded")).count());
            let active = count(mine.iter().filter(|p| is_active(p)).count());
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
