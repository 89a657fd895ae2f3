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

use std::fmt;

use serde::Serialize;

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
