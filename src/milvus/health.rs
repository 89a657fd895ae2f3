//! Health of releases, components and dependencies.
//!
//! The model (the product's documented contract):
//!
//! - **Healthy**: every component and dependency has ready == desired, its rollout is complete,
//!   and no pod has a problem (crash loop, image pull error, stuck, recently restarted…).
//! - **Progressing**: a rollout or scale is converging: fewer ready or updated replicas than
//!   desired, but no pod has a problem, the Deployment's progress deadline has not been exceeded
//!   and no essential part is at zero ready.
//! - **Degraded**: some replicas ready but fewer than desired with a problem pod or an exceeded
//!   progress deadline; or all replicas ready but a pod has a problem (crash-looping, restarted
//!   in the last minutes…); or a non-essential part (indexnode, cdc, attu, pulsar recovery) at
//!   zero ready.
//! - **Unavailable**: an essential part (proxy, coordinators, querynode, datanode, streamingnode,
//!   standalone; etcd, object storage, message queue) has zero ready replicas while desired > 0
//!   — or has been scaled to zero while the rest of the release still runs.
//! - **Stopped**: every Milvus component desired at zero with no pod left. Dependencies may
//!   keep running (a usual way to stop Milvus keeps etcd and storage) and keep their own rows.
//!
//! Operator releases: the workloads decide, but the operator also checks what the plugin cannot
//! see (an external etcd, object storage or message queue). When `status.status` is
//! `Unhealthy` and the workloads look Healthy, the release is Degraded with reason
//! `operator reports Unhealthy (<first False condition>: <message>)`; `Pending`/`Deleting` with
//! healthy workloads is Progressing; otherwise the operator status is appended to the reason.
//!
//! Severity, least to most: Stopped < Healthy < Progressing < Degraded < Unavailable. A
//! release's health is the most severe of its parts, so Stopped parts do not count (a cdc
//! scaled to 0 leaves the release Healthy) — except an essential one, see Unavailable.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::object::Milvus;
use super::problems::PodProblem;
use super::rows::RowFacts;
use super::{Component, ComponentRole, PodSummary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Health {
    /// Everything desired at zero replicas.
    Stopped,
    Healthy,
    Progressing,
    Degraded,
    Unavailable,
}

impl Health {
    pub fn as_str(&self) -> &'static str {
        match self {
            Health::Stopped => "Stopped",
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Unavailable => "Unavailable",
        }
    }

    /// 0 (Stopped) to 4 (Unavailable); the same order as `Ord`.
    #[allow(dead_code)] // API for output and exit codes
    pub fn severity(&self) -> u8 {
        *self as u8
    }

    /// The most severe of `parts`; Stopped when there are none.
    pub fn worst<I: IntoIterator<Item = Health>>(parts: I) -> Health {
        parts.into_iter().max().unwrap_or(Health::Stopped)
    }

    /// Healthy or Stopped: nothing for a person to look at.
    #[allow(dead_code)] // API for output and exit codes
    pub fn is_ok(&self) -> bool {
        matches!(self, Health::Healthy | Health::Stopped)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Rows (a component or a dependency) and releases, by the rules above.

/// Health of one row with the parts of its reason: `summary` (`1/2 ready`) and `detail`
/// (`CrashLoopBackOff`).
pub(crate) struct RowEval {
    pub health: Health,
    summary: String,
    detail: String,
}

impl RowEval {
    /// The STATUS-column text: `1/2 ready, CrashLoopBackOff`; empty when Healthy.
    pub fn reason(&self) -> String {
        match (self.health, self.detail.is_empty()) {
            (Health::Healthy, _) => String::new(),
            (_, true) => self.summary.clone(),
            (_, false) => format!("{}, {}", self.summary, self.detail),
        }
    }

    /// For the release's health_reason: `querynode: 1/2 ready (CrashLoopBackOff)`.
    pub fn release_text(&self, name: &str) -> String {
        if self.detail.is_empty() {
            format!("{name}: {}", self.summary)
        } else {
            format!("{name}: {} ({})", self.summary, self.detail)
        }
    }
}

fn problem_kinds(problems: &[PodProblem]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for p in problems {
        if !kinds.contains(&p.kind.as_str()) {
            kinds.push(p.kind.as_str());
        }
    }
    kinds.join(", ")
}

/// STATUS values of the pods that are not ready (`ContainerCreating`, `Pending`…), distinct.
fn waiting_statuses(pods: &[PodSummary]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for p in pods {
        let ready = p.total_containers > 0 && p.ready_containers >= p.total_containers;
        if !ready && p.status != "Terminating" && !out.contains(&p.status.as_str()) {
            out.push(&p.status);
        }
    }
    out.join(", ")
}

/// The health rules of one component or dependency row (see [`Health`] for the contract).
pub(crate) fn evaluate(f: &RowFacts, essential: bool) -> RowEval {
    let kinds = problem_kinds(&f.problems);
    if f.replicas.desired == 0 {
        let live = f.pods.iter().filter(|p| p.status != "Terminating").count();
        let (health, detail) = if !f.problems.is_empty() {
            (Health::Degraded, kinds)
        } else if live > 0 {
            (Health::Progressing, format!("{live} pods left"))
        } else {
            (Health::Stopped, String::new())
        };
        return RowEval { health, summary: "scaled to 0".to_string(), detail };
    }
    let summary = format!("{}/{} ready", f.replicas.ready, f.replicas.desired);
    let rollout = || {
        if f.replicas.updated < f.replicas.desired {
            format!("rolling out, {}/{} updated", f.replicas.updated, f.replicas.desired)
        } else {
            "old replicas terminating".to_string()
        }
    };
    let (health, detail) = if f.replicas.ready == 0 {
        let health = if essential { Health::Unavailable } else { Health::Degraded };
        let detail = if !kinds.is_empty() {
            kinds
        } else if let Some(m) = &f.replicas.replica_failure {
            format!("ReplicaFailure: {m}")
        } else if f.replicas.deadline_exceeded {
            "ProgressDeadlineExceeded".to_string()
        } else if f.pods.is_empty() {
            "no pods".to_string()
        } else {
            waiting_statuses(&f.pods)
        };
        (health, detail)
    } else if !kinds.is_empty() {
        (Health::Degraded, kinds)
    } else if f.replicas.deadline_exceeded {
        (Health::Degraded, "ProgressDeadlineExceeded".to_string())
    } else if let Some(m) =
        f.replicas.replica_failure.as_ref().filter(|_| f.replicas.ready < f.replicas.desired)
    {
        (Health::Degraded, format!("ReplicaFailure: {m}"))
    } else if f.replicas.ready < f.replicas.desired {
        let detail = if f.replicas.rollout_pending {
            rollout()
        } else {
            let w = waiting_statuses(&f.pods);
            if w.is_empty() { "starting".to_string() } else { w }
        };
        (Health::Progressing, detail)
    } else if f.replicas.rollout_pending {
        (Health::Progressing, rollout())
    } else {
        (Health::Healthy, String::new())
    };
    RowEval { health, summary, detail }
}

/// A part of the release that counts towards its health, and how to name it in the reason.
pub(crate) struct Contributor {
    pub health: Health,
    pub text: String,
}

/// Release health: the worst part; Stopped when every component is at zero; an essential
/// component kind (or coordinators as a whole) or essential dependency scaled to zero while
/// the rest runs is Unavailable; the operator's own status is folded in (see module docs of
/// [`Health`] and the report in the README).
pub(crate) fn release_health(
    components: &[Component],
    mut contributors: Vec<Contributor>,
    dep_stopped_essential: &[String],
    cr: Option<&Milvus>,
) -> (Health, String) {
    let operator_status = cr.and_then(|c| c.status.status.as_deref());
    if components.is_empty() {
        return match operator_status {
            Some("Pending") => {
                (Health::Progressing, "operator: Pending, no Milvus workloads yet".to_string())
            }
            Some("Stopped") => (Health::Stopped, "operator: Stopped".to_string()),
            Some("Deleting") => (Health::Progressing, "operator: Deleting".to_string()),
            _ => (Health::Unavailable, "no Milvus workloads found".to_string()),
        };
    }
    if components.iter().all(|c| c.health == Health::Stopped) {
        return (Health::Stopped, "all components scaled to 0".to_string());
    }

    // Essential parts scaled to zero while the release runs.
    let mut groups: BTreeMap<&str, (bool, String)> = BTreeMap::new(); // group -> (any running, name)
    for c in components.iter().filter(|c| c.kind.is_essential()) {
        let group = if c.kind.role() == ComponentRole::Coordinator { "coordinators" } else { c.kind.label() };
        let e = groups.entry(group).or_insert_with(|| (false, c.kind.label().to_string()));
        e.0 |= c.health != Health::Stopped;
    }
    for (_, (running, name)) in groups {
        if !running {
            contributors
                .push(Contributor { health: Health::Unavailable, text: format!("{name}: scaled to 0") });
        }
    }
    for d in dep_stopped_essential {
        contributors.push(Contributor { health: Health::Unavailable, text: format!("{d}: scaled to 0") });
    }

    let mut health = Health::worst(contributors.iter().map(|c| c.health)).max(Health::Healthy);
    let worst: Vec<&str> = contributors
        .iter()
        .filter(|c| c.health == health && health != Health::Healthy)
        .map(|c| c.text.as_str())
        .collect();
    let mut reason = match worst.len() {
        0 => String::new(),
        n if n <= 3 => worst.join("; "),
        n => format!("{}; +{} more", worst[..3].join("; "), n - 3),
    };

    // The operator's view: it also checks what we cannot see (external etcd, storage, MQ).
    if let Some(status) = operator_status {
        let failing = cr
            .into_iter()
            .flat_map(|c| c.status.conditions.iter())
            .find(|c| !c.type_.is_empty() && c.status == "False" && c.type_ != "MilvusUpdated");
        let detail = match failing {
            Some(c) => match c.message.as_deref().filter(|m| !m.is_empty()) {
                Some(m) => format!(" ({}: {})", c.type_, one_line(m, 120)),
                None => format!(" ({})", c.type_),
            },
            None => String::new(),
        };
        match (status, health) {
            ("Unhealthy", Health::Healthy) => {
                health = Health::Degraded;
                reason = format!("operator reports Unhealthy{detail}");
            }
            ("Pending" | "Deleting", Health::Healthy) => {
                health = Health::Progressing;
                reason = format!("operator: {status}");
            }
            ("Unhealthy" | "Pending" | "Deleting", _) => {
                reason = format!("{reason}; operator: {status}{detail}");
            }
            _ => {}
        }
    }
    (health, reason)
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.lines().next().unwrap_or("").trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_worst() {
        assert!(Health::Unavailable > Health::Degraded);
        assert!(Health::Degraded > Health::Progressing);
        assert!(Health::Progressing > Health::Healthy);
        assert!(Health::Healthy > Health::Stopped);
        assert_eq!(Health::worst([Health::Healthy, Health::Stopped, Health::Degraded]), Health::Degraded);
        assert_eq!(Health::worst([Health::Healthy, Health::Stopped]), Health::Healthy);
        assert_eq!(Health::worst([Health::Stopped, Health::Stopped]), Health::Stopped);
        assert_eq!(Health::worst([]), Health::Stopped);
        assert_eq!(Health::Unavailable.severity(), 4);
    }

    #[test]
    fn strings() {
        assert_eq!(Health::Progressing.to_string(), "Progressing");
        assert_eq!(format!("{:<9}|", Health::Healthy), "Healthy  |");
        assert_eq!(serde_json::to_string(&Health::Unavailable).unwrap(), "\"Unavailable\"");
        assert!(Health::Stopped.is_ok());
        assert!(!Health::Progressing.is_ok());
    }
}
