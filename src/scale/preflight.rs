//! The scale-in preflight that needs Milvus's configuration: a query node (or the query node a 2.6
//! streaming node embeds) that gets SIGTERM waits up to its graceful-stop timeout while its segments
//! and channels move to other nodes, but Kubernetes kills the pod after its
//! `terminationGracePeriodSeconds` (30 s by default; the chart sets none, the operator a month). When
//! the grace period is the shorter, the node can die before its data has moved: the scale-in is
//! refused unless `--allow-kill-before-drain` is given. Pure: from the release, its Deployments and
//! its Milvus configuration.
//!
//! Data nodes are not checked: they do not drain (they have nothing to hand over on stop).

use k8s_openapi::api::apps::v1::Deployment;
use serde::Serialize;

use crate::milvus::config::{DEFAULT_TERMINATION_GRACE_SECS, GracefulStop, MilvusConfig};
use crate::milvus::{ComponentKind, ManagedBy, Release};
use crate::scale::plan::PlannedChange;

/// The flag that overrides the refusal (it names the risk).
pub const OVERRIDE_FLAG: &str = "--allow-kill-before-drain";

/// The grace-period check of one component's scale-in (short: its pods would be killed before their
/// data moves).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraceShortfall {
    pub component: String,
    /// The shortest `terminationGracePeriodSeconds` of the component's pod templates.
    pub grace_period_seconds: i64,
    /// Whether the pod template sets it (false: Kubernetes' default).
    pub grace_period_set: bool,
    pub graceful_stop: GracefulStop,
}

/// Whether a component drains on stop (and so needs the time to).
fn drains(kind: &ComponentKind) -> bool {
    matches!(kind, ComponentKind::QueryNode | ComponentKind::StreamingNode)
}

/// The scale-ins in `changes` whose pods' grace period is shorter than the node's graceful-stop
/// timeout. `config` None: the version's default timeout is assumed.
pub fn grace_shortfalls(
    release: &Release,
    deployments: &[Deployment],
    changes: &[PlannedChange],
    config: Option<&MilvusConfig>,
) -> Vec<GraceShortfall> {
    grace_checks(release, deployments, changes, config).into_iter().filter(GraceShortfall::is_short).collect()
}

impl GraceShortfall {
    /// Kubernetes would kill the node before its graceful stop ends.
    pub fn is_short(&self) -> bool {
        self.grace_period_seconds < self.graceful_stop.seconds
    }

    /// The preflight's verdict in words, for a dry run.
    pub fn verdict(&self) -> String {
        let key =
            if self.graceful_stop.key == "default" { "Milvus's default" } else { &self.graceful_stop.key };
        let outcome = if self.is_short() {
            format!("refused without {OVERRIDE_FLAG}")
        } else {
            "a node has the time to hand its data over".to_string()
        };
        format!(
            "{}: preflight: pods get {}s to stop, a node's graceful stop takes up to {}s ({key}): {outcome}",
            self.component, self.grace_period_seconds, self.graceful_stop.seconds
        )
    }
}

/// The grace-period check of every scale-in of a component that drains.
pub fn grace_checks(
    release: &Release,
    deployments: &[Deployment],
    changes: &[PlannedChange],
    config: Option<&MilvusConfig>,
) -> Vec<GraceShortfall> {
    let mut out = Vec::new();
    for change in changes.iter().filter(|c| c.to < c.from && drains(&c.kind)) {
        let Some(component) = release.components.iter().find(|c| c.display_name == change.component) else {
            continue;
        };
        let graces: Vec<Option<i64>> = component
            .workloads
            .iter()
            .filter(|w| w.kind == "Deployment")
            .filter_map(|w| {
                deployments.iter().find(|d| {
                    d.metadata.name.as_deref() == Some(w.name.as_str())
                        && d.metadata.namespace.as_deref() == Some(release.namespace.as_str())
                })
            })
            .map(|d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .collect();
        let Some(grace) = graces.iter().map(|g| g.unwrap_or(DEFAULT_TERMINATION_GRACE_SECS)).min() else {
            continue;
        };
        let set = graces.iter().all(Option::is_some);
        let stop = config.and_then(|c| c.graceful_stop(&change.kind)).unwrap_or(GracefulStop {
            seconds: crate::milvus::config::DEFAULT_GRACEFUL_STOP_SECS,
            key: "default".into(),
        });
        out.push(GraceShortfall {
            component: change.component.clone(),
            grace_period_seconds: grace,
            grace_period_set: set,
            graceful_stop: stop,
        });
    }
    out
}

/// The refusal: what happens, and how to fix it for this kind of release.
pub fn refusal(release: &Release, s: &GraceShortfall) -> String {
    let grace = if s.grace_period_set {
        format!("{}s", s.grace_period_seconds)
    } else {
        format!("{}s (Kubernetes' default: the pod template sets none)", s.grace_period_seconds)
    };
    let key = if s.graceful_stop.key == "default" {
        "queryNode.gracefulStopTimeout, Milvus's default".to_string()
    } else {
        s.graceful_stop.key.clone()
    };
    let wanted = s.graceful_stop.seconds + 30;
    let fix = match release.managed_by {
        ManagedBy::Helm { .. } => format!(
            "give the pods time to drain: set terminationGracePeriodSeconds to at least {wanted} on the {} \
             Deployment's pod template (kubectl patch deployment with \
             '{{\"spec\":{{\"template\":{{\"spec\":{{\"terminationGracePeriodSeconds\":{wanted}}}}}}}}}', \
             which restarts its pods), or lower queryNode.gracefulStopTimeout below {} in the release's \
             extraConfigFiles user.yaml (helm upgrade)",
            s.component, s.grace_period_seconds
        ),
        ManagedBy::Operator { .. } => format!(
            "the operator sets a one-month grace period unless told otherwise: check what lowered it, or \
             lower queryNode.gracefulStopTimeout below {} in the Milvus object's spec.config",
            s.grace_period_seconds
        ),
    };
    format!(
        "{}: a node being removed waits up to {}s ({key}) for its segments and channels to move to other \
         nodes, but Kubernetes kills its pod after {grace}: it can die before its data has moved, and the \
         collections it serves lose service until Milvus loads them again. To fix it, {fix}. {OVERRIDE_FLAG} \
         scales in anyway",
        s.component, s.graceful_stop.seconds
    )
}
