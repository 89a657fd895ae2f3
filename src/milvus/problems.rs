//! Pod status as `kubectl get pods` shows it, and the problems a person needs to see.

use std::fmt;

use super::{ContainerStatus, Pod};
use jiff::Timestamp;
use serde::Serialize;

use super::PodSummary;
use super::duration::human_duration;

/// A pod Terminating for longer than this is stuck (node gone, finalizer blocking).
pub const STUCK_TERMINATING_SECS: i64 = 5 * 60;
/// A pod Pending (not unschedulable: pulling, creating, initializing) or Running but not Ready
/// for longer than this is a problem; before that it is just starting.
pub const SLOW_START_SECS: i64 = 5 * 60;
/// A container that restarted less than this ago makes its pod a problem even though it is
/// Running again (OOM kills and crashes that have not turned into CrashLoopBackOff yet).
pub const RECENT_RESTART_SECS: i64 = 10 * 60;

/// Why a pod is not healthy. Serialized as the variant name (`"CrashLoopBackOff"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ProblemKind {
    CrashLoopBackOff,
    ImagePullBackOff,
    ErrImagePull,
    InvalidImageName,
    CreateContainerConfigError,
    CreateContainerError,
    /// Another container error: `RunContainerError`, an init container that failed…
    ContainerError,
    /// The scheduler cannot place the pod (PodScheduled=False, reason Unschedulable).
    Unschedulable,
    /// Pending (pulling, creating, initializing) for more than [`SLOW_START_SECS`].
    Pending,
    /// Running, but some container has not been Ready for more than [`SLOW_START_SECS`].
    NotReady,
    /// Running again, but a container restarted within [`RECENT_RESTART_SECS`].
    Restarted,
    /// Deletion requested more than [`STUCK_TERMINATING_SECS`] ago.
    Terminating,
    /// The node went away (status reason `NodeLost`).
    Unknown,
    Evicted,
    Failed,
}

impl ProblemKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::CrashLoopBackOff => "CrashLoopBackOff",
            ProblemKind::ImagePullBackOff => "ImagePullBackOff",
            ProblemKind::ErrImagePull => "ErrImagePull",
            ProblemKind::InvalidImageName => "InvalidImageName",
            ProblemKind::CreateContainerConfigError => "CreateContainerConfigError",
            ProblemKind::CreateContainerError => "CreateContainerError",
            ProblemKind::ContainerError => "ContainerError",
            ProblemKind::Unschedulable => "Unschedulable",
            ProblemKind::Pending => "Pending",
            ProblemKind::NotReady => "NotReady",
            ProblemKind::Restarted => "Restarted",
            ProblemKind::Terminating => "Terminating",
            ProblemKind::Unknown => "Unknown",
            ProblemKind::Evicted => "Evicted",
            ProblemKind::Failed => "Failed",
        }
    }

    fn from_waiting_reason(reason: &str) -> Option<ProblemKind> {
        Some(match reason {
            "CrashLoopBackOff" => ProblemKind::CrashLoopBackOff,
            "ImagePullBackOff" => ProblemKind::ImagePullBackOff,
            "ErrImagePull" => ProblemKind::ErrImagePull,
            "InvalidImageName" | "ErrImageNeverPull" => ProblemKind::InvalidImageName,
            "CreateContainerConfigError" => ProblemKind::CreateContainerConfigError,
            "CreateContainerError" => ProblemKind::CreateContainerError,
            "RunContainerError" | "PreStartHookError" | "PostStartHookError" | "ContainerCannotRun" => {
                ProblemKind::ContainerError
            }
            _ => return None,
        })
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One pod that is not healthy, with the reason in the words a person needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodProblem {
    pub namespace: Option<String>,
    pub pod: String,
    /// Display name of the component or dependency the pod belongs to (`querynode`, `etcd`).
    pub owner: String,
    pub kind: ProblemKind,
    /// e.g. `CrashLoopBackOff: container querynode last terminated OOMKilled (exit code 137), 5 restarts`.
    pub reason: String,
}

impl PodProblem {
    /// The problem of `pod` at `now`, if it has one, attributed to `owner`.
    pub fn detect(pod: &Pod, owner: &str, now: Timestamp) -> Option<PodProblem> {
        let (kind, reason) = detect_problem(pod, now)?;
        Some(PodProblem {
            namespace: pod.metadata.namespace.clone(),
            pod: pod.metadata.name.clone().unwrap_or_default(),
            owner: owner.to_string(),
            kind,
            reason,
        })
    }
}

/// The pod's STATUS, READY, RESTARTS, AGE and NODE as `kubectl get pods -o wide` computes them.
pub fn pod_summary(pod: &Pod) -> PodSummary {
    let s = kubectl_status(pod);
    PodSummary {
        name: pod.metadata.name.clone().unwrap_or_default(),
        ready_containers: s.ready,
        total_containers: s.total,
        status: s.reason,
        restarts: s.restarts,
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
    }
}

/// kubectl's STATUS column for a pod (`Running`, `CrashLoopBackOff`, `Init:0/2`, `Terminating`…).
pub fn pod_status(pod: &Pod) -> String {
    kubectl_status(pod).reason
}

struct KubectlStatus {
    reason: String,
    ready: i32,
    total: i32,
    restarts: i32,
}

/// A port of kubectl's `printPod` (k8s.io/kubernetes/pkg/printers/internalversion).
fn kubectl_status(pod: &Pod) -> KubectlStatus {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let init_specs = spec.and_then(|s| s.init_containers.as_deref()).unwrap_or(&[]);
    let is_sidecar = |name: &str| {
        init_specs.iter().any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };

    let mut total = spec.map_or(0, |s| s.containers.len()) as i32;
    total += init_specs.iter().filter(|c| c.restart_policy.as_deref() == Some("Always")).count() as i32;
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;

    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let mut reason =
        status.and_then(|s| s.reason.clone()).filter(|r| !r.is_empty()).unwrap_or_else(|| phase.to_string());
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    if conditions.iter().any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".to_string();
    }

    let mut initializing = false;
    let init_statuses = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or(&[]);
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += c.restart_count;
        let sidecar = is_sidecar(&c.name);
        if sidecar {
            sidecar_restarts += c.restart_count;
        }
        let state = c.state.as_ref();
        let terminated = state.and_then(|s| s.terminated.as_ref());
        let waiting = state.and_then(|s| s.waiting.as_ref());
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar && c.started == Some(true) {
            if c.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None => match t.signal.filter(|s| *s != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!("Init:ExitCode:{}", t.exit_code),
                },
            };
        } else if let Some(r) =
            waiting.and_then(|w| w.reason.as_deref()).filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions.iter().any(|c| c.type_ == "Initialized" && c.status == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        let mut has_running = false;
        let statuses = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or(&[]);
        for c in statuses.iter().rev() {
            restarts += c.restart_count;
            let state = c.state.as_ref();
            let waiting = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref())
                .filter(|r| !r.is_empty());
            let terminated = state.and_then(|s| s.terminated.as_ref());
            if let Some(w) = waiting {
                reason = w.to_string();
            } else if let Some(t) = terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => match t.signal.filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!("ExitCode:{}", t.exit_code),
                    },
                };
            } else if c.ready && state.is_some_and(|s| s.running.is_some()) {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        let node_lost = status.and_then(|s| s.reason.as_deref()) == Some("NodeLost");
        if node_lost {
            reason = "Unknown".to_string();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".to_string();
        }
    }
    if reason.is_empty() {
        reason = "Unknown".to_string();
    }
    KubectlStatus { reason, ready, total, restarts }
}

fn secs_since(t: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    t.map(|t| now.as_second() - t.as_second())
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn restarts_suffix(n: i32) -> String {
    match n {
        1 => ", 1 restart".to_string(),
        n => format!(", {n} restarts"),
    }
}

fn last_termination(c: &ContainerStatus) -> Option<String> {
    let t = c.last_state.as_ref()?.terminated.as_ref()?;
    let reason = t.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("");
    Some(match (reason, t.signal.filter(|s| *s != 0)) {
        ("", Some(sig)) => format!("signal {sig} (exit code {})", t.exit_code),
        ("", None) => format!("exit code {}", t.exit_code),
        (r, _) => format!("{r} (exit code {})", t.exit_code),
    })
}

/// The problem of a pod, if any: kind and the reason text.
pub fn detect_problem(pod: &Pod, now: Timestamp) -> Option<(ProblemKind, String)> {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase == "Succeeded" {
        return None;
    }
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let on_node = node.map(|n| format!(" on node {n}")).unwrap_or_default();

    // Terminating: only a problem when stuck; a pod shutting down is not crash-looping.
    if let Some(deleted) = pod.metadata.deletion_timestamp.as_ref() {
        if status.and_then(|s| s.reason.as_deref()) == Some("NodeLost") {
            return Some((
                ProblemKind::Unknown,
                format!("Unknown: node{on_node} is unreachable (NodeLost), pod is being deleted"),
            ));
        }
        let since = now.as_second() - deleted.0.as_second();
        if since > STUCK_TERMINATING_SECS && phase != "Failed" {
            return Some((
                ProblemKind::Terminating,
                format!("Terminating for {}{on_node}", human_duration(since)),
            ));
        }
        return None;
    }

    if phase == "Failed" {
        let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or("");
        let message =
            status.and_then(|s| s.message.as_deref()).map(|m| truncate(m, 200)).filter(|m| !m.is_empty());
        if reason == "Evicted" {
            return Some((
                ProblemKind::Evicted,
                match message {
                    Some(m) => format!("Evicted: {m}"),
                    None => "Evicted".to_string(),
                },
            ));
        }
        let mut text = String::from("Failed");
        if !reason.is_empty() {
            text.push_str(": ");
            text.push_str(reason);
        }
        if let Some(m) = message {
            text.push_str(": ");
            text.push_str(&m);
        } else if let Some(t) =
            status.and_then(|s| s.container_statuses.as_deref()).unwrap_or(&[]).iter().find_map(|c| {
                let t = c.state.as_ref()?.terminated.as_ref()?;
                (t.exit_code != 0).then_some((c.name.as_str(), t))
            })
        {
            text.push_str(&format!(
                ": container {} terminated {} (exit code {})",
                t.0,
                t.1.reason.as_deref().unwrap_or("Error"),
                t.1.exit_code
            ));
        }
        return Some((ProblemKind::Failed, text));
    }

    let image_of = |name: &str, status_image: &str| -> String {
        let spec = pod.spec.as_ref();
        spec.into_iter()
            .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
            .unwrap_or_else(|| status_image.to_string())
    };

    // Container errors: init containers first (they block the others), then containers.
    let init = status.and_then(|s| s.init_container_statuses.as_deref()).unwrap_or(&[]);
    let main = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or(&[]);
    let labelled = init.iter().map(|c| (c, "init container")).chain(main.iter().map(|c| (c, "container")));
    for (c, what) in labelled {
        let state = c.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            let reason = w.reason.as_deref().unwrap_or("");
            let Some(kind) = ProblemKind::from_waiting_reason(reason) else {
                continue;
            };
            let message = w.message.as_deref().map(|m| truncate(m, 200));
            let text = match kind {
                ProblemKind::CrashLoopBackOff => {
                    let last =
                        last_termination(c).map(|l| format!(" last terminated {l}")).unwrap_or_default();
                    format!("CrashLoopBackOff: {what} {}{last}{}", c.name, restarts_suffix(c.restart_count))
                }
                ProblemKind::ImagePullBackOff => {
                    format!("ImagePullBackOff: {what} {} image {}", c.name, image_of(&c.name, &c.image))
                }
                ProblemKind::ErrImagePull | ProblemKind::InvalidImageName => {
                    let mut t = format!("{reason}: {what} {} image {}", c.name, image_of(&c.name, &c.image));
                    if let Some(m) = message.filter(|m| !m.is_empty()) {
                        t.push_str(": ");
                        t.push_str(&m);
                    }
                    t
                }
                _ => match message.filter(|m| !m.is_empty()) {
                    Some(m) => format!("{reason}: {what} {}: {m}", c.name),
                    None => format!("{reason}: {what} {}", c.name),
                },
            };
            return Some((kind, text));
        }
        if what == "init container"
            && let Some(t) = state.and_then(|s| s.terminated.as_ref())
            && t.exit_code != 0
        {
            let r = t.reason.as_deref().unwrap_or("Error");
            return Some((
                ProblemKind::ContainerError,
                format!(
                    "Init:{r}: init container {} failed (exit code {}){}",
                    c.name,
                    t.exit_code,
                    restarts_suffix(c.restart_count)
                ),
            ));
        }
    }

    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    if let Some(c) = conditions.iter().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    }) {
        let msg = c.message.as_deref().map(|m| truncate(m, 300));
        return Some((
            ProblemKind::Unschedulable,
            match msg.filter(|m| !m.is_empty()) {
                Some(m) => format!("Unschedulable: {m}"),
                None => "Unschedulable".to_string(),
            },
        ));
    }

    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if phase == "Pending" || phase.is_empty() {
        let age = secs_since(created, now).unwrap_or(0);
        if age > SLOW_START_SECS {
            return Some((
                ProblemKind::Pending,
                format!("Pending for {}: {}", human_duration(age), pod_status(pod)),
            ));
        }
        return None;
    }

    if phase == "Running" {
        let not_ready: Vec<&ContainerStatus> = main.iter().filter(|c| !c.ready).collect();
        if !not_ready.is_empty() {
            let ready_cond = conditions.iter().find(|c| c.type_ == "Ready");
            let since = ready_cond
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
                .or_else(|| status.and_then(|s| s.start_time.as_ref()).map(|t| t.0))
                .or(created);
            let age = secs_since(since, now).unwrap_or(0);
            if age > SLOW_START_SECS {
                let names: Vec<&str> = not_ready.iter().map(|c| c.name.as_str()).collect();
                let noun = if names.len() == 1 { "container" } else { "containers" };
                let restarts: i32 = not_ready.iter().map(|c| c.restart_count).sum();
                let extra = if restarts > 0 { restarts_suffix(restarts) } else { String::new() };
                return Some((
                    ProblemKind::NotReady,
                    format!(
                        "NotReady: {noun} {} not ready for {}{extra}",
                        names.join(", "),
                        human_duration(age)
                    ),
                ));
            }
        }
        for c in main {
            let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                continue;
            };
            let Some(ago) = secs_since(t.finished_at.as_ref().map(|f| f.0), now) else {
                continue;
            };
            if ago <= RECENT_RESTART_SECS {
                let last = last_termination(c).unwrap_or_default();
                return Some((
                    ProblemKind::Restarted,
                    format!(
                        "Restarted: container {} restarted {} ago after {last}{}",
                        c.name,
                        human_duration(ago),
                        restarts_suffix(c.restart_count)
                    ),
                ));
            }
        }
    }
    None
}
