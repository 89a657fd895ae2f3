//! A deterministic, in-process stand-in for the Deployment, ReplicaSet, StatefulSet and Job
//! controllers (and, optionally, the Milvus Operator's replica handling).

use crate::resources::ResKey;
use crate::store::Store;
use crate::util::{self, meta_str};
use label_selector::Selector as LabelSelector;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// How the pods of a workload behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodBehaviour {
    /// Running, every container ready.
    Ready,
    /// Running but not ready until this long after the pod was created, then ready.
    ReadyAfter(Duration),
    /// The first container keeps crashing: waiting reason `CrashLoopBackOff`, `lastState.terminated`
    /// filled with `reason` and `exit_code`.
    CrashLoopBackOff {
        /// `restartCount`.
        restarts: u32,
        /// Last termination reason, e.g. `OOMKilled` or `Error`.
        reason: String,
        /// Last exit code, e.g. 137.
        exit_code: i32,
    },
    /// Pending, first container waiting with `ImagePullBackOff`.
    ImagePullBackOff,
    /// Pending, first container waiting with `ErrImagePull`.
    ErrImagePull,
    /// Pending, first container waiting with `CreateContainerConfigError` and this message
    /// (e.g. `secret "x" not found`).
    CreateContainerConfigError {
        /// Waiting message.
        message: String,
    },
    /// Pending, not scheduled (`0/3 nodes are available: 3 Insufficient memory.`), no node.
    PendingUnschedulable,
    /// Running, readiness probe failing.
    RunningNotReady,
    /// Running with a deletionTimestamp 10 minutes in the past. For Deployments the ReplicaSet
    /// also runs a (default-behaving) replacement, as the real controller does.
    Terminating,
    /// Phase Failed, reason Evicted. For Deployments a replacement pod also runs.
    Evicted,
    /// Phase Succeeded, containers terminated with reason Completed.
    Completed,
}

impl PodBehaviour {
    /// `CrashLoopBackOff` after an OOM kill (`OOMKilled`, exit code 137).
    pub fn oom_killed(restarts: u32) -> Self {
        PodBehaviour::CrashLoopBackOff { restarts, reason: "OOMKilled".into(), exit_code: 137 }
    }

    /// `CrashLoopBackOff` after a plain error exit (`Error`, exit code 1).
    pub fn crash_loop(restarts: u32) -> Self {
        PodBehaviour::CrashLoopBackOff { restarts, reason: "Error".into(), exit_code: 1 }
    }

    pub(crate) fn is_extra(&self) -> bool {
        matches!(self, PodBehaviour::Terminating | PodBehaviour::Evicted)
    }
}

/// Which pods a behaviour rule applies to.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Workload `name` or `namespace/name`, optionally one pod index.
    Workload { name: String, index: Option<u32> },
    /// Pods whose template labels match.
    Selector(LabelSelector),
}

/// Controller configuration and bookkeeping.
#[derive(Debug)]
pub(crate) struct Controller {
    pub default: PodBehaviour,
    pub rules: Vec<(Target, PodBehaviour)>,
    pub scale_up_delay: Duration,
    pub progress_deadline_exceeded: BTreeSet<String>,
    pub reconciler: bool,
    pub age: Duration,
    pub start: Instant,
    pub start_wall: jiff::Timestamp,
    /// true while loading the initial objects: pods get `creationTimestamp = start - age`.
    pub initial: bool,
    births: HashMap<(String, String), (Instant, jiff::Timestamp)>,
    /// ReplicaSet pod `(ns, name)` → `(replicaset, index)`, to replace a deleted pod under a new name.
    pod_index: HashMap<(String, String), (String, u32)>,
    /// How many times pod `index` of ReplicaSet `(ns, rs)` was deleted through the API.
    salts: HashMap<(String, String, u32), u32>,
    /// Earliest pending readiness change per workload `(kind, ns, name)`.
    pub deadlines: HashMap<(String, String, String), Instant>,
}

impl Controller {
    pub fn new(age: Duration) -> Self {
        Controller {
            default: PodBehaviour::Ready,
            rules: Vec::new(),
            scale_up_delay: Duration::ZERO,
            progress_deadline_exceeded: BTreeSet::new(),
            reconciler: false,
            age,
            start: Instant::now(),
            start_wall: util::now_ts(),
            initial: true,
            births: HashMap::new(),
            pod_index: HashMap::new(),
            salts: HashMap::new(),
            deadlines: HashMap::new(),
        }
    }

    fn name_matches(pattern: &str, ns: &str, name: &str) -> bool {
        match pattern.split_once('/') {
            Some((pns, pname)) => pns == ns && pname == name,
            None => pattern == name,
        }
    }

    /// The behaviour of pod `index` of workload `ns/name`.
    pub(crate) fn behaviour(
        &self,
        ns: &str,
        name: &str,
        index: u32,
        labels: &Map<String, Value>,
        scale_up: bool,
        fallback: &PodBehaviour,
    ) -> PodBehaviour {
        let mut by_index = None;
        let mut by_workload = None;
        let mut by_selector = None;
        for (t, b) in &self.rules {
            match t {
                Target::Workload { name: p, index: Some(i) }
                    if *i == index && Self::name_matches(p, ns, name) =>
                {
                    by_index = Some(b)
                }
                Target::Workload { name: p, index: None } if Self::name_matches(p, ns, name) => {
                    by_workload = Some(b)
                }
                Target::Selector(s) if s.matches(labels) => by_selector = Some(b),
                _ => {}
            }
        }
        if let Some(b) = by_index.or(by_workload).or(by_selector) {
            return b.clone();
        }
        if scale_up && !self.scale_up_delay.is_zero() && *fallback == PodBehaviour::Ready {
            return PodBehaviour::ReadyAfter(self.scale_up_delay);
        }
        fallback.clone()
    }

    fn note_deadline(&mut self, wl: (String, String, String), at: Instant) {
        let e = self.deadlines.entry(wl).or_insert(at);
        if at < *e {
            *e = at;
        }
    }
}

const DEPLOY: &str = "deployments";
const STS: &str = "statefulsets";
const JOB: &str = "jobs";

fn key(group: &str, plural: &str) -> ResKey {
    ResKey::new(group, plural)
}

/// API-server defaulting applied when an object is created.
pub(crate) fn apply_defaults(k: &ResKey, obj: &mut Value) {
    let uid = meta_str(obj, "uid").to_string();
    let name = meta_str(obj, "name").to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if matches!(
        (k.group.as_str(), k.plural.as_str()),
        ("apps", "deployments" | "statefulsets" | "replicasets")
    ) && !spec.get("replicas").is_some_and(Value::is_i64)
    {
        spec.insert("replicas".into(), json!(1));
    }
    // The pod template's pod-level defaults, as kube-apiserver applies them to every workload.
    if matches!(
        (k.group.as_str(), k.plural.as_str()),
        ("apps", "deployments" | "statefulsets" | "replicasets" | "daemonsets")
    ) && let Some(pod) =
        spec.get_mut("template").and_then(|t| t.get_mut("spec")).and_then(Value::as_object_mut)
    {
        pod.entry("restartPolicy").or_insert(json!("Always"));
        pod.entry("terminationGracePeriodSeconds").or_insert(json!(30));
        pod.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
        pod.entry("schedulerName").or_insert(json!("default-scheduler"));
        pod.entry("securityContext").or_insert(json!({}));
    }
    match (k.group.as_str(), k.plural.as_str()) {
        // apps/v1 defaulting, as kube-apiserver applies it (and shows it in every read).
        ("apps", "deployments") => {
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            let strategy = util::obj_mut(spec, "strategy");
            strategy.entry("type").or_insert(json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                let ru = util::obj_mut(strategy, "rollingUpdate");
                ru.entry("maxUnavailable").or_insert(json!("25%"));
                ru.entry("maxSurge").or_insert(json!("25%"));
            }
        }
        ("apps", "statefulsets") => {
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("podManagementPolicy").or_insert(json!("OrderedReady"));
            let strategy = util::obj_mut(spec, "updateStrategy");
            strategy.entry("type").or_insert(json!("RollingUpdate"));
            if strategy.get("type") == Some(&json!("RollingUpdate")) {
                util::obj_mut(strategy, "rollingUpdate").entry("partition").or_insert(json!(0));
            }
        }
        ("batch", "jobs") => {
            let labels = json!({
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            });
            if spec.get("selector").is_none() {
                spec.insert(
                    "selector".into(),
                    json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                );
            }
            let tmpl = util::obj_mut(spec, "template");
            let tmeta = util::obj_mut(tmpl, "metadata");
            let tl = util::obj_mut(tmeta, "labels");
            if let Value::Object(l) = labels {
                for (k, v) in l {
                    tl.entry(k).or_insert(v);
                }
            }
        }
        _ => {}
    }
}

fn i64_at(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64()
}

fn owner_ref(api_version: &str, kind: &str, owner: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta_str(owner, "name"),
        "uid": meta_str(owner, "uid"),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

pub(crate) fn controller_owner(v: &Value) -> Option<(&str, &str)> {
    let refs = v.get("metadata")?.get("ownerReferences")?.as_array()?;
    let r = refs
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .or_else(|| refs.first())?;
    Some((r.get("kind")?.as_str()?, r.get("name")?.as_str()?))
}

/// Everything needed to render one pod.
pub(crate) struct PodPlan {
    pub name: String,
    pub labels: Map<String, Value>,
    pub annotations: Option<Value>,
    pub owner: Value,
    pub spec: Value,
    pub behaviour: PodBehaviour,
    pub index: u32,
    /// Counts toward the workload (false for the stuck Terminating/Evicted extras).
    pub counts: bool,
}

fn template_parts(w: &Value) -> (Map<String, Value>, Option<Value>, Value) {
    let t = w.get("spec").and_then(|s| s.get("template"));
    let labels = t
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let ann = t.and_then(|t| t.get("metadata")).and_then(|m| m.get("annotations")).cloned();
    let spec = t.and_then(|t| t.get("spec")).cloned().unwrap_or_else(|| json!({}));
    (labels, ann, spec)
}

fn template_hash(w: &Value, len: usize) -> String {
    let t = w.get("spec").and_then(|s| s.get("template")).map(|t| t.to_string()).unwrap_or_default();
    util::suffix(&[meta_str(w, "namespace"), meta_str(w, "name"), &t], len)
}

fn node_for(index: u32, name: &str) -> String {
    let h = util::fnv64(&[name]) as u32;
    format!("node-{}", (h.wrapping_add(index)) % 3 + 1)
}

pub(crate) struct Rendered {
    pub pod: Value,
    pub ready: bool,
    pub deadline: Option<Instant>,
}

fn container_list(spec: &Value, field: &str) -> Vec<(String, String)> {
    spec.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c.get("name").and_then(Value::as_str).unwrap_or("main").to_string(),
                        c.get("image").and_then(Value::as_str).unwrap_or("busybox").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn image_ref(image: &str) -> String {
    let full = if image.contains('/') { image.to_string() } else { format!("library/{image}") };
    let first = full.split('/').next().unwrap_or_default();
    if first.contains('.') || first.contains(':') { full } else { format!("docker.io/{full}") }
}

fn cond(t: &str, status: bool, at: &str) -> Value {
    json!({"type": t, "status": if status { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": at})
}

fn cond_reason(t: &str, reason: &str, message: &str, at: &str) -> Value {
    json!({"type": t, "status": "False", "lastProbeTime": null, "lastTransitionTime": at, "reason": reason, "message": message})
}

#[allow(clippy::too_many_lines)]
/// The QoS class the API server gives a pod when it is created (and never changes): `BestEffort`
/// without any cpu/memory request or limit, `Guaranteed` when every container limits both and
/// requests what it limits (a missing request defaults to the limit), `Burstable` otherwise.
pub(crate) fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let (mut any, mut guaranteed) = (false, !containers.is_empty());
    for c in containers {
        for r in ["cpu", "memory"] {
            let limit = c.pointer(&format!("/resources/limits/{r}"));
            let request = c.pointer(&format!("/resources/requests/{r}")).or(limit);
            any |= limit.is_some() || request.is_some();
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

pub(crate) fn render_pod(
    ctl: &Controller,
    ns: &str,
    plan: &PodPlan,
    created: jiff::Timestamp,
    born: (Instant, jiff::Timestamp),
    uid: &str,
    now: Instant,
) -> Rendered {
    let created_s = util::ts(created);
    let h = util::fnv64(&[ns, &plan.name]);
    let pod_ip = format!("10.244.{}.{}", (h % 250) + 1, ((h >> 8) % 250) + 2);
    let node = node_for(plan.index, &plan.name);
    let node_n: u32 = node.trim_start_matches("node-").parse().unwrap_or(1);
    let host_ip = format!("10.0.0.{}", 10 + node_n);
    let containers = container_list(&plan.spec, "containers");
    let inits = container_list(&plan.spec, "initContainers");
    let mut deadline = None;

    // Resolve ReadyAfter into Ready / RunningNotReady.
    let mut ready_at = created_s.clone();
    let behaviour = match &plan.behaviour {
        PodBehaviour::ReadyAfter(d) => {
            let due = born.0 + *d;
            if now >= due {
                ready_at = util::ts(util::plus(born.1, *d));
                PodBehaviour::Ready
            } else {
                deadline = Some(due);
                PodBehaviour::RunningNotReady
            }
        }
        b => b.clone(),
    };

    let cid = |name: &str, n: u32| {
        format!(
            "containerd://{:016x}{:016x}",
            util::fnv64(&[&plan.name, name, &n.to_string()]),
            util::fnv64(&[name, &plan.name])
        )
    };
    let image_id = |image: &str| {
        format!(
            "{}@sha256:{:016x}{:016x}{:016x}{:016x}",
            image_ref(image),
            util::fnv64(&[image, "1"]),
            util::fnv64(&[image, "2"]),
            util::fnv64(&[image, "3"]),
            util::fnv64(&[image, "4"])
        )
    };
    // A container that ran to completion (exit code 0): init containers, Job pods.
    let completed = |name: &str, image: &str, ready: bool| {
        json!({
            "name": name, "image": image, "imageID": image_id(image), "containerID": cid(name, 0),
            "ready": ready, "started": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": created_s, "finishedAt": created_s, "containerID": cid(name, 0)}},
        })
    };
    let running = |name: &str, image: &str, ready: bool| {
        json!({
            "name": name, "image": image, "imageID": image_id(image), "containerID": cid(name, 0),
            "ready": ready, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": created_s}},
        })
    };
    let waiting = |name: &str, image: &str, reason: &str, message: &str| {
        json!({
            "name": name, "image": image, "imageID": "",
            "ready": false, "started": false, "restartCount": 0,
            "state": {"waiting": {"reason": reason, "message": message}},
        })
    };
    let init_statuses: Vec<Value> = inits.iter().map(|(n, i)| completed(n, i, true)).collect();
    let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    let first = containers.first().map(|(n, _)| n.clone()).unwrap_or_default();
    let not_ready_msg = |which: &[&str]| format!("containers with unready status: [{}]", which.join(" "));

    let mut phase = "Running";
    let mut scheduled = true;
    let mut ready = false;
    let mut conditions: Vec<Value>;
    let mut cstatuses: Vec<Value>;
    let mut extra_status = Map::new();
    let mut deletion = None;
    match &behaviour {
        PodBehaviour::Ready | PodBehaviour::Terminating | PodBehaviour::ReadyAfter(_) => {
            ready = true;
            cstatuses = containers.iter().map(|(n, i)| running(n, i, true)).collect();
            conditions = vec![
                cond("PodReadyToStartContainers", true, &created_s),
                cond("Initialized", true, &created_s),
                cond("Ready", true, &ready_at),
                cond("ContainersReady", true, &ready_at),
                cond("PodScheduled", true, &created_s),
            ];
            if behaviour == PodBehaviour::Terminating {
                deletion = Some(util::ts(util::minus(born.1, Duration::from_secs(600))));
            }
        }
        PodBehaviour::RunningNotReady => {
            cstatuses = containers.iter().map(|(n, i)| running(n, i, false)).collect();
            conditions = vec![
                cond("PodReadyToStartContainers", true, &created_s),
                cond("Initialized", true, &created_s),
                cond_reason("Ready", "ContainersNotReady", &not_ready_msg(&names), &created_s),
                cond_reason("ContainersReady", "ContainersNotReady", &not_ready_msg(&names), &created_s),
                cond("PodScheduled", true, &created_s),
            ];
        }
        PodBehaviour::CrashLoopBackOff { restarts, reason, exit_code } => {
            cstatuses = containers
                .iter()
                .enumerate()
                .map(|(i, (n, img))| {
                    if i > 0 {
                        return running(n, img, true);
                    }
                    let finished = util::ts(util::minus(born.1, Duration::from_secs(30)));
                    let started = util::ts(util::minus(born.1, Duration::from_secs(95)));
                    json!({
                        "name": n, "image": img, "imageID": image_id(img), "containerID": cid(n, *restarts),
                        "ready": false, "started": false, "restartCount": restarts,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 5m0s restarting failed container={n} pod={}_{ns}({uid})", plan.name)}},
                        "lastState": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": finished, "containerID": cid(n, *restarts)}},
                    })
                })
                .collect();
            conditions = vec![
                cond("PodReadyToStartContainers", true, &created_s),
                cond("Initialized", true, &created_s),
                cond_reason("Ready", "ContainersNotReady", &not_ready_msg(&[&first]), &created_s),
                cond_reason("ContainersReady", "ContainersNotReady", &not_ready_msg(&[&first]), &created_s),
                cond("PodScheduled", true, &created_s),
            ];
        }
        PodBehaviour::ImagePullBackOff
        | PodBehaviour::ErrImagePull
        | PodBehaviour::CreateContainerConfigError { .. } => {
            phase = "Pending";
            cstatuses = containers
                .iter()
                .enumerate()
                .map(|(i, (n, img))| {
                    if i > 0 {
                        return waiting(n, img, "PodInitializing", "");
                    }
                    let (r, m) = match &behaviour {
                        PodBehaviour::ImagePullBackOff => ("ImagePullBackOff".to_string(), format!("Back-off pulling image \"{img}\"")),
                        PodBehaviour::ErrImagePull => (
                            "ErrImagePull".to_string(),
                            format!("rpc error: code = NotFound desc = failed to pull and unpack image \"{r}\": failed to resolve reference \"{r}\": {r}: not found", r = image_ref(img)),
                        ),
                        PodBehaviour::CreateContainerConfigError { message } => ("CreateContainerConfigError".to_string(), message.clone()),
                        _ => (String::new(), String::new()),
                    };
                    waiting(n, img, &r, &m)
                })
                .collect();
            for c in &mut cstatuses {
                if c["state"]["waiting"]["message"] == json!("")
                    && let Some(w) = c["state"]["waiting"].as_object_mut()
                {
                    w.remove("message");
                }
            }
            conditions = vec![
                cond("PodReadyToStartContainers", true, &created_s),
                cond("Initialized", true, &created_s),
                cond_reason("Ready", "ContainersNotReady", &not_ready_msg(&names), &created_s),
                cond_reason("ContainersReady", "ContainersNotReady", &not_ready_msg(&names), &created_s),
                cond("PodScheduled", true, &created_s),
            ];
        }
        PodBehaviour::PendingUnschedulable => {
            phase = "Pending";
            scheduled = false;
            cstatuses = vec![];
            conditions = vec![json!({
                "type": "PodScheduled", "status": "False", "lastProbeTime": null, "lastTransitionTime": created_s,
                "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory.",
            })];
        }
        PodBehaviour::Evicted => {
            phase = "Failed";
            cstatuses = containers
                .iter()
                .map(|(n, img)| {
                    json!({
                        "name": n, "image": img, "imageID": image_id(img), "containerID": cid(n, 0),
                        "ready": false, "started": false, "restartCount": 0,
                        "state": {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "message": "The container could not be located when the pod was terminated", "startedAt": created_s, "finishedAt": created_s}},
                    })
                })
                .collect();
            conditions = vec![
                json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null, "lastTransitionTime": created_s, "reason": "TerminationByKubelet", "message": "The node was low on resource: memory. "}),
                cond("PodReadyToStartContainers", false, &created_s),
                cond("Initialized", true, &created_s),
                cond_reason("Ready", "PodFailed", "", &created_s),
                cond_reason("ContainersReady", "PodFailed", "", &created_s),
                cond("PodScheduled", true, &created_s),
            ];
            extra_status.insert("reason".into(), json!("Evicted"));
            extra_status.insert("message".into(), json!("The node was low on resource: memory. "));
        }
        PodBehaviour::Completed => {
            phase = "Succeeded";
            cstatuses = containers.iter().map(|(n, img)| completed(n, img, false)).collect();
            conditions = vec![
                cond("PodReadyToStartContainers", false, &created_s),
                cond("Initialized", true, &created_s),
                cond_reason("Ready", "PodCompleted", "", &created_s),
                cond_reason("ContainersReady", "PodCompleted", "", &created_s),
                cond("PodScheduled", true, &created_s),
            ];
        }
    }
    for c in &mut conditions {
        if c.get("message") == Some(&json!(""))
            && let Some(m) = c.as_object_mut()
        {
            m.remove("message");
        }
    }

    let mut spec = plan.spec.clone();
    if let Some(s) = spec.as_object_mut() {
        if scheduled {
            s.insert("nodeName".into(), json!(node));
        }
        s.entry("restartPolicy").or_insert(json!(if plan.owner["kind"] == "Job" {
            "Never"
        } else {
            "Always"
        }));
        s.entry("schedulerName").or_insert(json!("default-scheduler"));
        s.entry("serviceAccountName").or_insert(json!("default"));
        s.entry("terminationGracePeriodSeconds").or_insert(json!(30));
        s.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    }
    let mut status = Map::new();
    status.insert("phase".into(), json!(phase));
    status.insert("conditions".into(), Value::Array(conditions));
    if scheduled {
        status.insert("hostIP".into(), json!(host_ip));
        status.insert("hostIPs".into(), json!([{"ip": host_ip}]));
        if phase == "Running"
            || phase == "Pending" && !matches!(behaviour, PodBehaviour::PendingUnschedulable)
        {
            status.insert("podIP".into(), json!(pod_ip));
            status.insert("podIPs".into(), json!([{"ip": pod_ip}]));
        }
        status.insert("startTime".into(), json!(created_s));
        if !init_statuses.is_empty() {
            status.insert("initContainerStatuses".into(), Value::Array(init_statuses));
        }
        status.insert("containerStatuses".into(), Value::Array(cstatuses));
    }
    status.insert("qosClass".into(), json!(qos_class(&plan.spec)));
    status.extend(extra_status);

    let mut meta = Map::new();
    meta.insert("name".into(), json!(plan.name));
    if plan.owner["kind"] != "StatefulSet" {
        let gen_name = plan.name.rsplit_once('-').map(|(p, _)| format!("{p}-")).unwrap_or_default();
        meta.insert("generateName".into(), json!(gen_name));
    }
    meta.insert("namespace".into(), json!(ns));
    meta.insert("uid".into(), json!(uid));
    meta.insert("creationTimestamp".into(), json!(created_s));
    if let Some(d) = deletion {
        meta.insert("deletionTimestamp".into(), json!(d));
        meta.insert("deletionGracePeriodSeconds".into(), json!(30));
    }
    meta.insert("labels".into(), Value::Object(plan.labels.clone()));
    if let Some(a) = &plan.annotations {
        meta.insert("annotations".into(), a.clone());
    }
    meta.insert("ownerReferences".into(), json!([plan.owner]));
    let _ = ctl;
    Rendered {
        pod: json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}),
        ready,
        deadline,
    }
}

/// The Warning event a kubelet or the scheduler would emit for a misbehaving pod.
fn pod_event(ns: &str, plan: &PodPlan, uid: &str, created: jiff::Timestamp, ready: bool) -> Option<Value> {
    let containers = container_list(&plan.spec, "containers");
    let (c, img) = containers.first().cloned().unwrap_or_default();
    let node = node_for(plan.index, &plan.name);
    let pod = &plan.name;
    let (reason, message, count, from_scheduler) = match &plan.behaviour {
        PodBehaviour::CrashLoopBackOff { restarts, .. } => (
            "BackOff",
            format!("Back-off restarting failed container {c} in pod {pod}_{ns}({uid})"),
            i64::from(*restarts),
            false,
        ),
        PodBehaviour::ImagePullBackOff => ("BackOff", format!("Back-off pulling image \"{img}\""), 10, false),
        PodBehaviour::ErrImagePull => (
            "Failed",
            format!("Failed to pull image \"{img}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{}\": not found", image_ref(&img)),
            5,
            false,
        ),
        PodBehaviour::CreateContainerConfigError { message } => ("Failed", format!("Error: {message}"), 10, false),
        PodBehaviour::PendingUnschedulable => (
            "FailedScheduling",
            "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.".to_string(),
            1,
            true,
        ),
        PodBehaviour::RunningNotReady | PodBehaviour::ReadyAfter(_) if !ready => {
            ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503".to_string(), 20, false)
        }
        PodBehaviour::Evicted => ("Evicted", "The node was low on resource: memory. ".to_string(), 1, false),
        _ => return None,
    };
    let at = util::ts(created);
    let name = format!("{pod}.{:016x}", util::fnv64(&[ns, pod, reason]));
    let mut involved = json!({"kind": "Pod", "namespace": ns, "name": pod, "uid": uid, "apiVersion": "v1"});
    let source = if from_scheduler {
        json!({"component": "default-scheduler"})
    } else {
        involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
        json!({"component": "kubelet", "host": node})
    };
    Some(json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": ns, "uid": util::uid(&["Event", ns, &name]), "creationTimestamp": at},
        "involvedObject": involved,
        "reason": reason, "message": message, "source": source,
        "firstTimestamp": at, "lastTimestamp": at, "count": count, "type": "Warning",
        "eventTime": null, "reportingComponent": source["component"], "reportingInstance": if from_scheduler { "" } else { node.as_str() },
    }))
}

/// Create/update the planned pods; delete stale ones among `existing_names`. Returns
/// (counted pods, ready counted pods).
fn sync_pods(
    store: &mut Store,
    ctl: &mut Controller,
    ns: &str,
    wl: (String, String, String),
    plans: Vec<PodPlan>,
    stale: Vec<String>,
    now: Instant,
) -> (i64, i64) {
    let pods = key("", "pods");
    let (mut total, mut ready) = (0i64, 0i64);
    let wall = util::now_ts();
    for plan in plans {
        let existing = store.get(&pods, ns, &plan.name);
        let (uid, created, born) = match existing {
            Some(e) => {
                let born = ctl
                    .births
                    .get(&(ns.to_string(), plan.name.clone()))
                    .copied()
                    .unwrap_or((ctl.start, ctl.start_wall));
                let created = meta_str(e, "creationTimestamp").parse::<jiff::Timestamp>().unwrap_or(wall);
                (meta_str(e, "uid").to_string(), created, born)
            }
            None => {
                let born = if ctl.initial { (ctl.start, ctl.start_wall) } else { (now, wall) };
                let created = if ctl.initial { util::minus(ctl.start_wall, ctl.age) } else { wall };
                ctl.births.insert((ns.to_string(), plan.name.clone()), born);
                (util::uid(&["Pod", ns, &plan.name]), created, born)
            }
        };
        let r = render_pod(ctl, ns, &plan, created, born, &uid, now);
        if let Some(ev) = pod_event(ns, &plan, &uid, created, r.ready) {
            put_if_changed(store, &key("", "events"), ev);
        }
        if plan.counts {
            total += 1;
            if r.ready {
                ready += 1;
            }
        }
        if let Some(d) = r.deadline {
            ctl.note_deadline(wl.clone(), d);
        }
        let changed = match store.get(&pods, ns, &plan.name) {
            Some(e) => {
                let mut cmp = r.pod.clone();
                util::meta_mut(&mut cmp)
                    .insert("resourceVersion".into(), e["metadata"]["resourceVersion"].clone());
                cmp != *e
            }
            None => true,
        };
        if changed {
            store.put(&pods, r.pod);
        }
    }
    for name in stale {
        store.delete(&pods, ns, &name);
        ctl.births.remove(&(ns.to_string(), name));
    }
    (total, ready)
}

/// Names of pods in `ns` whose name starts with `prefix` and whose controller is `owner_kind/owner`.
fn owned_pods(store: &Store, ns: &str, prefix: &str, owner_kind: &str, owner: &str) -> Vec<String> {
    let pods = key("", "pods");
    store
        .list(&pods, Some(ns), Some((ns.to_string(), prefix.to_string())))
        .take_while(|p| meta_str(p, "name").starts_with(prefix))
        .filter(|p| controller_owner(p) == Some((owner_kind, owner)))
        .map(|p| meta_str(p, "name").to_string())
        .collect()
}

fn put_if_changed(store: &mut Store, k: &ResKey, obj: Value) {
    let ns = meta_str(&obj, "namespace").to_string();
    let name = meta_str(&obj, "name").to_string();
    let changed = match store.get(k, &ns, &name) {
        Some(e) => {
            let mut cmp = obj.clone();
            util::meta_mut(&mut cmp)
                .insert("resourceVersion".into(), e["metadata"]["resourceVersion"].clone());
            cmp != *e
        }
        None => true,
    };
    if changed {
        store.put(k, obj);
    }
}

fn keep_transition(old: Option<&Value>, ctype: &str, status: &str, now: &str) -> String {
    old.and_then(|c| c.as_array())
        .and_then(|a| a.iter().find(|c| c["type"] == ctype && c["status"] == status))
        .and_then(|c| c.get("lastTransitionTime").and_then(Value::as_str))
        .unwrap_or(now)
        .to_string()
}

fn max_unavailable(d: &Value, replicas: i64) -> i64 {
    if d.pointer("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate") || replicas == 0 {
        return 0;
    }
    let mu = d.pointer("/spec/strategy/rollingUpdate/maxUnavailable");
    match mu {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) if s.ends_with('%') => {
            let p: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            replicas.saturating_mul(p) / 100
        }
        _ => replicas.saturating_mul(25) / 100,
    }
}

/// The name of pod `index` of ReplicaSet `ns/rs` (a new name each time that pod was deleted).
fn replica_set_pod_name(ctl: &Controller, ns: &str, rs: &str, index: u32) -> String {
    match ctl.salts.get(&(ns.to_string(), rs.to_string(), index)) {
        None | Some(0) => format!("{rs}-{}", util::suffix(&[rs, &index.to_string()], 5)),
        Some(salt) => format!("{rs}-{}", util::suffix(&[rs, &index.to_string(), &salt.to_string()], 5)),
    }
}

/// The pod indices ReplicaSet `ns/rs` keeps at `replicas`, as the ReplicaSet controller chooses them:
/// a scale-up adds the lowest free indices; a scale-down deletes first the pods its `ActivePodsWithRanks`
/// ranks first (unscheduled, then Pending, Unknown, Running; not ready before ready; lower
/// `controller.kubernetes.io/pod-deletion-cost` first; more container restarts first; newer first).
/// Pods equal on all of these go highest index first.
fn replica_set_indices(store: &Store, ctl: &Controller, ns: &str, rs: &str, replicas: u32) -> Vec<u32> {
    let pods = key("", "pods");
    let mut live: Vec<(u32, &Value)> = ctl
        .pod_index
        .iter()
        .filter(|((pns, _), (prs, _))| pns == ns && prs == rs)
        .filter_map(|((_, name), (_, i))| {
            (replica_set_pod_name(ctl, ns, rs, *i) == *name)
                .then(|| store.get(&pods, ns, name).map(|p| (*i, p)))
                .flatten()
        })
        .collect();
    let wanted = usize::try_from(replicas).unwrap_or(usize::MAX);
    if live.len() > wanted {
        live.sort_by(|(ia, a), (ib, b)| deletion_rank(a).cmp(&deletion_rank(b)).then(ib.cmp(ia)));
        let surplus = live.len().saturating_sub(wanted);
        live.drain(..surplus);
    }
    let mut indices: BTreeSet<u32> = live.iter().map(|(i, _)| *i).collect();
    let mut next = 0u32;
    while indices.len() < wanted {
        if indices.insert(next) {
            continue;
        }
        next = next.saturating_add(1);
    }
    indices.into_iter().collect()
}

/// A pod's place in the ReplicaSet controller's deletion order: smaller goes first.
fn deletion_rank(pod: &Value) -> (bool, u8, bool, i64, std::cmp::Reverse<i64>, std::cmp::Reverse<String>) {
    let assigned = pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let phase = match pod.pointer("/status/phase").and_then(Value::as_str) {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    let cost = pod
        .pointer("/metadata/annotations/controller.kubernetes.io~1pod-deletion-cost")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<i32>().ok())
        .map_or(0, i64::from);
    let restarts = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map_or(0, |cs| cs.iter().filter_map(|c| c["restartCount"].as_i64()).fold(0i64, i64::saturating_add));
    let created = meta_str(pod, "creationTimestamp").to_string();
    (assigned, phase, ready, cost, std::cmp::Reverse(restarts), std::cmp::Reverse(created))
}

/// Reconcile one Deployment: its ReplicaSet(s), pods and status.
#[allow(clippy::too_many_lines)]
pub(crate) fn reconcile_deployment(
    store: &mut Store,
    ctl: &mut Controller,
    ns: &str,
    name: &str,
    now: Instant,
) {
    let dk = key("apps", DEPLOY);
    let rsk = key("apps", "replicasets");
    let Some(d) = store.get(&dk, ns, name).cloned() else {
        return;
    };
    let replicas = i64_at(&d, &["spec", "replicas"]).unwrap_or(1).max(0);
    let generation = i64_at(&d, &["metadata", "generation"]).unwrap_or(1);
    let hash = template_hash(&d, 10);
    let rs_name = format!("{name}-{hash}");
    let (mut labels, ann, spec) = template_parts(&d);
    labels.insert("pod-template-hash".into(), json!(hash));
    let created = meta_str(&d, "creationTimestamp").to_string();

    // Old ReplicaSets of this deployment: scale to 0 and remove their pods.
    let old_rs: Vec<Value> = store
        .list(&rsk, Some(ns), None)
        .filter(|r| controller_owner(r) == Some(("Deployment", name)) && meta_str(r, "name") != rs_name)
        .cloned()
        .collect();
    let revision = old_rs.len() + 1;
    for mut r in old_rs {
        let rname = meta_str(&r, "name").to_string();
        let stale = owned_pods(store, ns, &format!("{rname}-"), "ReplicaSet", &rname);
        sync_pods(store, ctl, ns, ("ReplicaSet".into(), ns.into(), rname.clone()), vec![], stale, now);
        r["spec"]["replicas"] = json!(0);
        r["status"] = json!({"replicas": 0, "observedGeneration": i64_at(&r, &["metadata", "generation"]).unwrap_or(1)});
        put_if_changed(store, &rsk, r);
    }

    // The current ReplicaSet.
    let existing_rs = store.get(&rsk, ns, &rs_name).cloned();
    let rs_uid = existing_rs
        .as_ref()
        .map(|r| meta_str(r, "uid").to_string())
        .unwrap_or_else(|| util::uid(&["ReplicaSet", ns, &rs_name]));
    let rs_created = existing_rs
        .as_ref()
        .map(|r| meta_str(r, "creationTimestamp").to_string())
        .unwrap_or_else(|| if ctl.initial { created.clone() } else { util::ts(util::now_ts()) });
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = selector.get_mut("matchLabels").and_then(Value::as_object_mut) {
        m.insert("pod-template-hash".into(), json!(hash));
    } else {
        selector["matchLabels"] = json!({"pod-template-hash": hash});
    }
    let owner = owner_ref("apps/v1", "ReplicaSet", &json!({"metadata": {"name": rs_name, "uid": rs_uid}}));
    let wl = ("Deployment".to_string(), ns.to_string(), name.to_string());

    let mut plans = Vec::new();
    let mut desired: BTreeSet<String> = BTreeSet::new();
    for i in replica_set_indices(store, ctl, ns, &rs_name, u32::try_from(replicas).unwrap_or(0)) {
        let pod_name = replica_set_pod_name(ctl, ns, &rs_name, i);
        ctl.pod_index.insert((ns.to_string(), pod_name.clone()), (rs_name.clone(), i));
        let scale_up = !ctl.initial && store.get(&key("", "pods"), ns, &pod_name).is_none();
        let b = ctl.behaviour(ns, name, i, &labels, scale_up, &ctl.default.clone());
        if b.is_extra() {
            let extra = format!("{rs_name}-{}", util::suffix(&[&rs_name, &i.to_string(), "extra"], 5));
            desired.insert(extra.clone());
            plans.push(PodPlan {
                name: extra,
                labels: labels.clone(),
                annotations: ann.clone(),
                owner: owner.clone(),
                spec: spec.clone(),
                behaviour: b,
                index: i,
                counts: false,
            });
            let fallback = if ctl.default.is_extra() { PodBehaviour::Ready } else { ctl.default.clone() };
            desired.insert(pod_name.clone());
            plans.push(PodPlan {
                name: pod_name,
                labels: labels.clone(),
                annotations: ann.clone(),
                owner: owner.clone(),
                spec: spec.clone(),
                behaviour: fallback,
                index: i,
                counts: true,
            });
        } else {
            desired.insert(pod_name.clone());
            plans.push(PodPlan {
                name: pod_name,
                labels: labels.clone(),
                annotations: ann.clone(),
                owner: owner.clone(),
                spec: spec.clone(),
                behaviour: b,
                index: i,
                counts: true,
            });
        }
    }
    let stale: Vec<String> = owned_pods(store, ns, &format!("{rs_name}-"), "ReplicaSet", &rs_name)
        .into_iter()
        .filter(|n| !desired.contains(n))
        .collect();
    ctl.deadlines.remove(&wl);
    let (total, ready) = sync_pods(store, ctl, ns, wl, plans, stale, now);

    let surge = replicas.saturating_add(replicas.saturating_mul(25).saturating_add(99) / 100);
    let mut rs_labels = d.pointer("/spec/template/metadata/labels").cloned().unwrap_or_else(|| json!({}));
    rs_labels["pod-template-hash"] = json!(hash);
    let mut tmpl = d.pointer("/spec/template").cloned().unwrap_or_else(|| json!({}));
    tmpl["metadata"]["labels"] = rs_labels.clone();
    let mut rs_status = Map::new();
    rs_status.insert("replicas".into(), json!(total));
    if total > 0 {
        rs_status.insert("fullyLabeledReplicas".into(), json!(total));
    }
    if ready > 0 {
        rs_status.insert("readyReplicas".into(), json!(ready));
        rs_status.insert("availableReplicas".into(), json!(ready));
    }
    rs_status.insert("observedGeneration".into(), json!(1));
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rs_name, "namespace": ns, "uid": rs_uid, "generation": 1, "creationTimestamp": rs_created,
            "labels": rs_labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": replicas.to_string(),
                "deployment.kubernetes.io/max-replicas": surge.to_string(),
                "deployment.kubernetes.io/revision": revision.to_string(),
            },
            "ownerReferences": [owner_ref("apps/v1", "Deployment", &d)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": tmpl},
        "status": rs_status,
    });
    put_if_changed(store, &rsk, rs);

    // Deployment status.
    let now_s = util::ts(util::now_ts());
    let old_conds = d.pointer("/status/conditions").cloned();
    let available_ok = ready >= replicas.saturating_sub(max_unavailable(&d, replicas));
    let (av_status, av_reason, av_msg) = if available_ok {
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.".to_string())
    } else {
        ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".to_string())
    };
    let stuck = ctl.progress_deadline_exceeded.contains(name)
        || ctl.progress_deadline_exceeded.contains(&format!("{ns}/{name}"));
    let (pr_status, pr_reason, pr_msg) = if stuck {
        ("False", "ProgressDeadlineExceeded", format!("ReplicaSet \"{rs_name}\" has timed out progressing."))
    } else if ready >= replicas {
        ("True", "NewReplicaSetAvailable", format!("ReplicaSet \"{rs_name}\" has successfully progressed."))
    } else {
        ("True", "ReplicaSetUpdated", format!("ReplicaSet \"{rs_name}\" is progressing."))
    };
    let base_time = if ctl.initial { created.clone() } else { now_s.clone() };
    let av_t = keep_transition(old_conds.as_ref(), "Available", av_status, &base_time);
    let pr_t = keep_transition(old_conds.as_ref(), "Progressing", pr_status, &base_time);
    let mut st = Map::new();
    st.insert("observedGeneration".into(), json!(generation));
    if total > 0 {
        st.insert("replicas".into(), json!(total));
        st.insert("updatedReplicas".into(), json!(total));
    }
    if ready > 0 {
        st.insert("readyReplicas".into(), json!(ready));
        st.insert("availableReplicas".into(), json!(ready));
    }
    if total > ready {
        st.insert("unavailableReplicas".into(), json!(total - ready));
    }
    st.insert(
        "conditions".into(),
        json!([
            {"type": "Available", "status": av_status, "lastUpdateTime": av_t, "lastTransitionTime": av_t, "reason": av_reason, "message": av_msg},
            {"type": "Progressing", "status": pr_status, "lastUpdateTime": pr_t, "lastTransitionTime": pr_t, "reason": pr_reason, "message": pr_msg},
        ]),
    );
    let mut nd = d.clone();
    nd["status"] = Value::Object(st);
    // The Deployment controller records the revision on the Deployment too.
    util::obj_mut(util::meta_mut(&mut nd), "annotations")
        .insert("deployment.kubernetes.io/revision".into(), json!(revision.to_string()));
    put_if_changed(store, &dk, nd);
    update_hpas(store, ns, name, total);
}

fn update_hpas(store: &mut Store, ns: &str, deploy: &str, replicas: i64) {
    let hk = key("autoscaling", "horizontalpodautoscalers");
    let hpas: Vec<Value> = store
        .list(&hk, Some(ns), None)
        .filter(|h| {
            h.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str) == Some(deploy)
                && h.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str) == Some("Deployment")
        })
        .cloned()
        .collect();
    for mut h in hpas {
        h["status"] = json!({
            "currentReplicas": replicas,
            "desiredReplicas": replicas,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12, "averageValue": "60m"}}}],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": meta_str(&h, "creationTimestamp"), "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
                {"type": "ScalingActive", "status": "True", "lastTransitionTime": meta_str(&h, "creationTimestamp"), "reason": "ValidMetricFound", "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
            ],
        });
        put_if_changed(store, &hk, h);
    }
}

/// Reconcile one StatefulSet: pods `<name>-0..N` and status.
pub(crate) fn reconcile_statefulset(
    store: &mut Store,
    ctl: &mut Controller,
    ns: &str,
    name: &str,
    now: Instant,
) {
    let sk = key("apps", STS);
    let Some(s) = store.get(&sk, ns, name).cloned() else {
        return;
    };
    let replicas = i64_at(&s, &["spec", "replicas"]).unwrap_or(1).max(0);
    let generation = i64_at(&s, &["metadata", "generation"]).unwrap_or(1);
    let revision = format!("{name}-{}", template_hash(&s, 10));
    let (labels, ann, spec) = template_parts(&s);
    let owner = owner_ref("apps/v1", "StatefulSet", &s);
    let wl = ("StatefulSet".to_string(), ns.to_string(), name.to_string());
    let mut plans = Vec::new();
    let mut desired = BTreeSet::new();
    for i in 0..u32::try_from(replicas).unwrap_or(0) {
        let pod_name = format!("{name}-{i}");
        let mut l = labels.clone();
        l.insert("apps.kubernetes.io/pod-index".into(), json!(i.to_string()));
        l.insert("controller-revision-hash".into(), json!(revision));
        l.insert("statefulset.kubernetes.io/pod-name".into(), json!(pod_name));
        let scale_up = !ctl.initial && store.get(&key("", "pods"), ns, &pod_name).is_none();
        let b = ctl.behaviour(ns, name, i, &labels, scale_up, &ctl.default.clone());
        desired.insert(pod_name.clone());
        let mut pspec = spec.clone();
        if let Some(o) = pspec.as_object_mut() {
            o.insert("hostname".into(), json!(pod_name));
            if let Some(svc) = s.pointer("/spec/serviceName") {
                o.insert("subdomain".into(), svc.clone());
            }
        }
        plans.push(PodPlan {
            name: pod_name,
            labels: l,
            annotations: ann.clone(),
            owner: owner.clone(),
            spec: pspec,
            behaviour: b,
            index: i,
            counts: true,
        });
    }
    let stale: Vec<String> = owned_pods(store, ns, &format!("{name}-"), "StatefulSet", name)
        .into_iter()
        .filter(|n| !desired.contains(n))
        .collect();
    ctl.deadlines.remove(&wl);
    let (total, ready) = sync_pods(store, ctl, ns, wl, plans, stale, now);
    let mut st = Map::new();
    st.insert("observedGeneration".into(), json!(generation));
    st.insert("replicas".into(), json!(total));
    if ready > 0 {
        st.insert("readyReplicas".into(), json!(ready));
    }
    if total > 0 {
        st.insert("currentReplicas".into(), json!(total));
        st.insert("updatedReplicas".into(), json!(total));
    }
    st.insert("availableReplicas".into(), json!(ready));
    st.insert("currentRevision".into(), json!(revision));
    st.insert("updateRevision".into(), json!(revision));
    st.insert("collisionCount".into(), json!(0));
    let mut ns_obj = s.clone();
    ns_obj["status"] = Value::Object(st);
    put_if_changed(store, &sk, ns_obj);
}

/// Reconcile one Job: a single pod, Completed by default.
pub(crate) fn reconcile_job(store: &mut Store, ctl: &mut Controller, ns: &str, name: &str, now: Instant) {
    let jk = key("batch", JOB);
    let Some(j) = store.get(&jk, ns, name).cloned() else {
        return;
    };
    let (labels, ann, spec) = template_parts(&j);
    let pod_name = format!("{name}-{}", util::suffix(&[ns, name, "job"], 5));
    let b = ctl.behaviour(ns, name, 0, &labels, false, &PodBehaviour::Completed);
    let owner = owner_ref("batch/v1", "Job", &j);
    let wl = ("Job".to_string(), ns.to_string(), name.to_string());
    let plans = vec![PodPlan {
        name: pod_name,
        labels,
        annotations: ann,
        owner,
        spec,
        behaviour: b.clone(),
        index: 0,
        counts: true,
    }];
    ctl.deadlines.remove(&wl);
    let (_, ready) = sync_pods(store, ctl, ns, wl, plans, vec![], now);
    let created = meta_str(&j, "creationTimestamp").to_string();
    let status = if b == PodBehaviour::Completed {
        json!({
            "startTime": created, "completionTime": created, "succeeded": 1, "ready": 0, "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": created, "lastTransitionTime": created, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
                {"type": "Complete", "status": "True", "lastProbeTime": created, "lastTransitionTime": created, "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"},
            ],
        })
    } else {
        json!({"startTime": created, "active": 1, "ready": ready, "terminating": 0, "uncountedTerminatedPods": {}})
    };
    let mut nj = j.clone();
    nj["status"] = status;
    put_if_changed(store, &jk, nj);
}

/// Reconcile every workload.
pub(crate) fn reconcile_all(store: &mut Store, ctl: &mut Controller, now: Instant) {
    for (plural, f) in [
        (DEPLOY, reconcile_deployment as fn(&mut Store, &mut Controller, &str, &str, Instant)),
        (STS, reconcile_statefulset),
        (JOB, reconcile_job),
    ] {
        let group = if plural == JOB { "batch" } else { "apps" };
        let names: Vec<(String, String)> = store
            .list(&key(group, plural), None, None)
            .map(|o| (meta_str(o, "namespace").to_string(), meta_str(o, "name").to_string()))
            .collect();
        for (ns, n) in names {
            f(store, ctl, &ns, &n, now);
        }
    }
}

/// Run the pending readiness transitions that are due.
pub(crate) fn tick(store: &mut Store, ctl: &mut Controller, now: Instant) {
    let due: Vec<(String, String, String)> =
        ctl.deadlines.iter().filter(|(_, t)| **t <= now).map(|(k, _)| k.clone()).collect();
    for (kind, ns, name) in due {
        ctl.deadlines.remove(&(kind.clone(), ns.clone(), name.clone()));
        match kind.as_str() {
            "Deployment" => reconcile_deployment(store, ctl, &ns, &name, now),
            "StatefulSet" => reconcile_statefulset(store, ctl, &ns, &name, now),
            "Job" => reconcile_job(store, ctl, &ns, &name, now),
            _ => {}
        }
    }
}

/// React to a write made through the API (or by a test helper).
pub(crate) fn on_write(
    store: &mut Store,
    ctl: &mut Controller,
    k: &ResKey,
    ns: &str,
    name: &str,
    now: Instant,
) {
    match (k.group.as_str(), k.plural.as_str()) {
        ("apps", DEPLOY) => reconcile_deployment(store, ctl, ns, name, now),
        ("apps", STS) => reconcile_statefulset(store, ctl, ns, name, now),
        ("batch", JOB) => reconcile_job(store, ctl, ns, name, now),
        ("milvus.io", "milvuses") => reconcile_milvus(store, ctl, ns, name, now),
        _ => {}
    }
}

/// React to a deletion made through the API: garbage-collect dependants, or let the owner
/// recreate a deleted pod.
pub(crate) fn on_delete(store: &mut Store, ctl: &mut Controller, k: &ResKey, obj: &Value, now: Instant) {
    let ns = meta_str(obj, "namespace").to_string();
    let name = meta_str(obj, "name").to_string();
    match (k.group.as_str(), k.plural.as_str()) {
        ("", "pods") => {
            ctl.births.remove(&(ns.clone(), name.clone()));
            if let Some((rs, i)) = ctl.pod_index.remove(&(ns.clone(), name.clone())) {
                *ctl.salts.entry((ns.clone(), rs, i)).or_insert(0) += 1;
            }
            match controller_owner(obj) {
                Some(("ReplicaSet", rs)) => {
                    let owner = store
                        .get(&key("apps", "replicasets"), &ns, rs)
                        .and_then(controller_owner)
                        .map(|(_, d)| d.to_string());
                    if let Some(d) = owner {
                        reconcile_deployment(store, ctl, &ns, &d, now);
                    }
                }
                Some(("StatefulSet", s)) => {
                    let s = s.to_string();
                    reconcile_statefulset(store, ctl, &ns, &s, now);
                }
                _ => {}
            }
        }
        _ => {
            // Garbage collection of direct dependants (one level, then recursively).
            let uid = meta_str(obj, "uid").to_string();
            if uid.is_empty() {
                return;
            }
            for dep in [key("apps", "replicasets"), key("", "pods"), key("apps", DEPLOY)] {
                let victims: Vec<Value> = store
                    .list(&dep, Some(&ns), None)
                    .filter(|o| {
                        o.pointer("/metadata/ownerReferences").and_then(Value::as_array).is_some_and(|refs| {
                            refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(uid.as_str()))
                        })
                    })
                    .cloned()
                    .collect();
                for v in victims {
                    if let Some(gone) = store.delete(&dep, &ns, meta_str(&v, "name")) {
                        on_delete(store, ctl, &dep, &gone, now);
                    }
                }
            }
        }
    }
}

/// Component key in `spec.components` → component label value.
fn component_label(key: &str) -> String {
    key.to_ascii_lowercase()
}

/// What the Milvus Operator would do to the replicas of `deployments` (those of the CR's namespace)
/// for Milvus object `cr`: `(deployment name, replicas)` for each Deployment that differs.
pub(crate) fn milvus_replicas(cr: &Value, deployments: &[&Value]) -> Vec<(String, i64)> {
    if cr.pointer("/metadata/annotations/milvus.io~1pause-reconcile").and_then(Value::as_str) == Some("true")
    {
        return Vec::new();
    }
    let name = meta_str(cr, "name");
    let current_group = cr
        .pointer("/metadata/annotations/milvus.io~1querynode-current-group-id")
        .and_then(Value::as_str)
        .unwrap_or("0")
        .to_string();
    let Some(comps) = cr.pointer("/spec/components").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (ckey, cval) in comps {
        let Some(want) = cval.get("replicas").and_then(Value::as_i64) else {
            continue;
        };
        if want < 0 || cval.get("groups").is_some() {
            continue;
        }
        let comp = component_label(ckey);
        for d in deployments {
            let l = util::labels_of(d);
            let get = |k: &str| l.and_then(|l| l.get(k)).and_then(Value::as_str);
            let mine = get("app.kubernetes.io/instance") == Some(name)
                && get("app.kubernetes.io/component") == Some(comp.as_str())
                && get("app.kubernetes.io/managed-by") == Some("milvus-operator")
                && (comp != "querynode"
                    || get("milvus.io/querynode-group-id").is_none_or(|g| g == current_group));
            if mine && i64_at(d, &["spec", "replicas"]) != Some(want) {
                out.push((meta_str(d, "name").to_string(), want));
            }
        }
    }
    out
}

/// The stand-in Milvus Operator: copy `spec.components.<comp>.replicas` to the Deployments.
pub(crate) fn reconcile_milvus(store: &mut Store, ctl: &mut Controller, ns: &str, name: &str, now: Instant) {
    if !ctl.reconciler {
        return;
    }
    let Some(cr) = store.get(&key("milvus.io", "milvuses"), ns, name).cloned() else {
        return;
    };
    if cr.pointer("/metadata/annotations/milvus.io~1pause-reconcile").and_then(Value::as_str) == Some("true")
    {
        return;
    }
    let dk = key("apps", DEPLOY);
    let deployments: Vec<&Value> = store.list(&dk, Some(ns), None).collect();
    let wanted = milvus_replicas(&cr, &deployments);
    let mut changed = Vec::new();
    for (dname, want) in wanted {
        let Some(mut d) = store.get(&dk, ns, &dname).cloned() else {
            continue;
        };
        util::set_replicas(&mut d, want);
        let g = i64_at(&d, &["metadata", "generation"]).unwrap_or(1).saturating_add(1);
        util::meta_mut(&mut d).insert("generation".into(), json!(g));
        changed.push(dname);
        store.put(&dk, d);
    }
    for d in changed {
        reconcile_deployment(store, ctl, ns, &d, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, replicas: i64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "uid": util::uid(&[name]), "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "milvusdb/milvus:v2.6.15"}]}}},
        })
    }

    fn pods_of(store: &Store, prefix: &str) -> Vec<Value> {
        store
            .list(&key("", "pods"), Some("default"), None)
            .filter(|p| meta_str(p, "name").starts_with(prefix))
            .cloned()
            .collect()
    }

    fn setup(name: &str, replicas: i64, rules: Vec<(Target, PodBehaviour)>) -> (Store, Controller) {
        let mut store = Store::default();
        let mut ctl = Controller::new(Duration::from_secs(300));
        ctl.rules = rules;
        store.put(&key("apps", DEPLOY), deployment(name, replicas));
        reconcile_all(&mut store, &mut ctl, Instant::now());
        ctl.initial = false;
        (store, ctl)
    }

    #[test]
    fn deployment_pods_and_status() {
        let (store, _) = setup("web", 3, vec![]);
        let pods = pods_of(&store, "web-");
        assert_eq!(pods.len(), 3);
        let rs = store.list(&key("apps", "replicasets"), Some("default"), None).next().cloned().expect("rs");
        let rs_name = meta_str(&rs, "name");
        assert!(rs_name.starts_with("web-") && rs_name.len() == "web-".len() + 10);
        assert!(pods.iter().all(|p| p["metadata"]["ownerReferences"][0]["name"] == rs_name));
        assert!(pods.iter().all(|p| p["status"]["phase"] == "Running"
            && p["spec"]["nodeName"].as_str().is_some_and(|n| n.starts_with("node-"))));
        let d = store.get(&key("apps", DEPLOY), "default", "web").expect("d");
        assert_eq!(d["status"]["readyReplicas"], 3);
        assert_eq!(d["status"]["availableReplicas"], 3);
        assert_eq!(d["status"]["updatedReplicas"], 3);
        assert_eq!(d["status"]["observedGeneration"], 1);
        assert_eq!(d["status"]["conditions"][0]["type"], "Available");
        assert_eq!(d["status"]["conditions"][1]["reason"], "NewReplicaSetAvailable");
        // deterministic names
        let (store2, _) = setup("web", 3, vec![]);
        let n1: Vec<&str> = pods.iter().map(|p| meta_str(p, "name")).collect();
        let p2 = pods_of(&store2, "web-");
        let n2: Vec<&str> = p2.iter().map(|p| meta_str(p, "name")).collect();
        assert_eq!(n1, n2);
    }

    #[test]
    fn scaling_creates_and_deletes_pods() {
        let (mut store, mut ctl) = setup("web", 2, vec![]);
        let dk = key("apps", DEPLOY);
        let mut d = store.get(&dk, "default", "web").cloned().expect("d");
        d["spec"]["replicas"] = json!(5);
        store.put(&dk, d);
        on_write(&mut store, &mut ctl, &dk, "default", "web", Instant::now());
        assert_eq!(pods_of(&store, "web-").len(), 5);
        let mut d = store.get(&dk, "default", "web").cloned().expect("d");
        d["spec"]["replicas"] = json!(1);
        store.put(&dk, d);
        on_write(&mut store, &mut ctl, &dk, "default", "web", Instant::now());
        assert_eq!(pods_of(&store, "web-").len(), 1);
        assert_eq!(store.get(&dk, "default", "web").expect("d")["status"]["replicas"], 1);
    }

    #[test]
    fn deleted_pods_are_replaced_under_a_new_name() {
        let (mut store, mut ctl) = setup("web", 2, vec![]);
        let pk = key("", "pods");
        let before: Vec<String> =
            pods_of(&store, "web-").iter().map(|p| meta_str(p, "name").to_string()).collect();
        let gone = store.delete(&pk, "default", &before[0]).expect("pod");
        on_delete(&mut store, &mut ctl, &pk, &gone, Instant::now());
        let after: Vec<String> =
            pods_of(&store, "web-").iter().map(|p| meta_str(p, "name").to_string()).collect();
        assert_eq!(after.len(), 2);
        assert!(after.contains(&before[1]));
        assert!(!after.contains(&before[0]));
    }

    #[test]
    fn scale_up_delay_and_ready_after() {
        let (mut store, mut ctl) = setup("web", 1, vec![]);
        ctl.scale_up_delay = Duration::from_secs(60);
        let dk = key("apps", DEPLOY);
        let mut d = store.get(&dk, "default", "web").cloned().expect("d");
        d["spec"]["replicas"] = json!(3);
        store.put(&dk, d);
        let t0 = Instant::now();
        on_write(&mut store, &mut ctl, &dk, "default", "web", t0);
        let d = store.get(&dk, "default", "web").expect("d");
        assert_eq!(d["status"]["readyReplicas"], 1);
        assert_eq!(d["status"]["conditions"][1]["reason"], "ReplicaSetUpdated");
        assert!(ctl.deadlines.values().all(|t| *t > t0));
        tick(&mut store, &mut ctl, t0 + Duration::from_secs(61));
        let d = store.get(&dk, "default", "web").expect("d");
        assert_eq!(d["status"]["readyReplicas"], 3);
        assert!(ctl.deadlines.is_empty());
    }

    #[test]
    fn pod_states() {
        let w = |i: u32, b: PodBehaviour| (Target::Workload { name: "web".into(), index: Some(i) }, b);
        let (store, _) = setup(
            "web",
            8,
            vec![
                w(0, PodBehaviour::oom_killed(7)),
                w(1, PodBehaviour::ImagePullBackOff),
                w(2, PodBehaviour::PendingUnschedulable),
                w(3, PodBehaviour::RunningNotReady),
                w(4, PodBehaviour::Terminating),
                w(5, PodBehaviour::Evicted),
                w(6, PodBehaviour::CreateContainerConfigError { message: "secret \"x\" not found".into() }),
            ],
        );
        let pods = pods_of(&store, "web-");
        assert_eq!(pods.len(), 10, "terminating and evicted pods get replacements");
        let find = |pred: &dyn Fn(&Value) -> bool| pods.iter().find(|p| pred(p)).cloned().expect("pod");
        let crash = find(&|p| {
            p.pointer("/status/containerStatuses/0/state/waiting/reason") == Some(&json!("CrashLoopBackOff"))
        });
        assert_eq!(crash["status"]["containerStatuses"][0]["restartCount"], 7);
        assert_eq!(crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"], "OOMKilled");
        assert_eq!(crash["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 137);
        assert!(
            crash["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("back-off 5m0s restarting failed container=main pod=web-"))
        );
        let pull = find(&|p| {
            p.pointer("/status/containerStatuses/0/state/waiting/reason") == Some(&json!("ImagePullBackOff"))
        });
        assert_eq!(
            pull["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
            "Back-off pulling image \"milvusdb/milvus:v2.6.15\""
        );
        let pending = find(&|p| p["status"]["conditions"][0]["reason"] == "Unschedulable");
        assert_eq!(pending["status"]["phase"], "Pending");
        assert!(pending["spec"].get("nodeName").is_none());
        assert_eq!(
            pending["status"]["conditions"][0]["message"],
            "0/3 nodes are available: 3 Insufficient memory."
        );
        let term = find(&|p| p["metadata"].get("deletionTimestamp").is_some());
        assert_eq!(term["status"]["phase"], "Running");
        let ev = find(&|p| p["status"]["reason"] == "Evicted");
        assert_eq!(ev["status"]["phase"], "Failed");
        assert_eq!(ev["status"]["message"], "The node was low on resource: memory. ");
        let cfg = find(&|p| {
            p.pointer("/status/containerStatuses/0/state/waiting/reason")
                == Some(&json!("CreateContainerConfigError"))
        });
        assert_eq!(
            cfg["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
            "secret \"x\" not found"
        );
        let events: Vec<Value> = store.list(&key("", "events"), Some("default"), None).cloned().collect();
        let reasons: BTreeSet<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
        assert_eq!(
            reasons,
            BTreeSet::from(["BackOff", "Evicted", "Failed", "FailedScheduling", "Unhealthy"])
        );
        assert!(events.iter().any(|e| e["message"] == "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."));
        let d = store.get(&key("apps", DEPLOY), "default", "web").expect("d");
        // ready: index 4, 5 replacements and index 7 => 3 of 8
        assert_eq!(d["status"]["replicas"], 8);
        assert_eq!(d["status"]["readyReplicas"], 3);
        assert_eq!(d["status"]["conditions"][0]["status"], "False");
    }

    #[test]
    fn statefulset_and_job() {
        let mut store = Store::default();
        let mut ctl = Controller::new(Duration::from_secs(300));
        let mut s = deployment("etcd", 3);
        s["kind"] = json!("StatefulSet");
        store.put(&key("apps", STS), s);
        let mut j = deployment("init", 1);
        j["kind"] = json!("Job");
        store.put(&key("batch", JOB), j);
        ctl.rules
            .push((Target::Workload { name: "etcd".into(), index: Some(2) }, PodBehaviour::RunningNotReady));
        reconcile_all(&mut store, &mut ctl, Instant::now());
        let names: Vec<String> =
            pods_of(&store, "etcd-").iter().map(|p| meta_str(p, "name").to_string()).collect();
        assert_eq!(names, vec!["etcd-0", "etcd-1", "etcd-2"]);
        let s = store.get(&key("apps", STS), "default", "etcd").expect("s");
        assert_eq!(s["status"]["readyReplicas"], 2);
        assert_eq!(s["status"]["currentReplicas"], 3);
        let jp = pods_of(&store, "init-");
        assert_eq!(jp.len(), 1);
        assert_eq!(jp[0]["status"]["phase"], "Succeeded");
        assert_eq!(store.get(&key("batch", JOB), "default", "init").expect("j")["status"]["succeeded"], 1);
    }
}
