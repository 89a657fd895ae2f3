//! Turning the requested targets into a plan for one release, or refusing: Milvus's own rules.
//! Pure: the release comes from discovery, the `Milvus` object (operator releases) from the same read.
//! Every refusal is a rule here, once; the engine asks [`replan`] when the owner changed under it.

use serde::Serialize;

use super::owner::Owner;
use super::target::{Change, Target};
use crate::milvus::{Component, ComponentKind, ComponentRole, ManagedBy, Milvus, Mode, Release};

/// One component's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    /// `querynode` or `querynode[rg1]`.
    pub component: String,
    #[serde(skip)]
    pub kind: ComponentKind,
    #[serde(skip)]
    pub change: Change,
    pub from: i32,
    pub to: i32,
    /// The values written one after the other (gentle scale-in); the last is `to`. Empty when unchanged.
    pub steps: Vec<i32>,
    pub owner: Owner,
    /// The Helm value that records this component's replicas (`queryNode.replicas`), for Helm releases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm_value: Option<String>,
    /// Helm applies the component server-side: its next upgrade conflicts instead of reverting.
    #[serde(skip)]
    pub helm_applies_server_side: bool,
}

impl PlannedChange {
    pub fn is_change(&self) -> bool {
        self.from != self.to
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Scaling an essential worker to zero is refused without it.
    pub allow_zero: bool,
    /// Largest scale-in step (`0`: all at once).
    pub step: i32,
}

/// Checks every target against the release; any refusal refuses the whole command.
pub fn plan(
    release: &Release,
    milvus: Option<&Milvus>,
    targets: &[Target],
    options: PlanOptions,
) -> Result<Vec<PlannedChange>, Vec<String>> {
    let mut refusals = Vec::new();
    if release.mode == Mode::Standalone {
        return Err(vec![format!(
            "{} is a standalone release: Milvus standalone runs as a single pod by design and cannot be scaled. \
             To scale workers, run Milvus in cluster mode (Helm: cluster.enabled=true; Milvus Operator: spec.mode: cluster) \
             as a new release and migrate the data to it",
            release.name
        )]);
    }
    let mut changes: Vec<PlannedChange> = Vec::new();
    for target in targets {
        match plan_one(release, milvus, target, options) {
            Ok(change) => {
                if changes.iter().any(|c| c.component == change.component) {
                    refusals.push(format!("{} is named more than once", change.component));
                } else {
                    changes.push(change);
                }
            }
            Err(refusal) => refusals.push(refusal),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    changes
        .sort_by(|a, b| (a.kind.display_order(), &a.component).cmp(&(b.kind.display_order(), &b.component)));
    Ok(changes)
}

/// The error of a refused plan: every refusal, and that nothing was changed.
pub fn refusal_message(release: &str, refusals: &[String]) -> String {
    let mut message = format!("cannot scale {release}:");
    if let [one] = refusals {
        message.push(' ');
        message.push_str(one);
    } else {
        for refusal in refusals {
            message.push_str("\n  - ");
            message.push_str(refusal);
        }
    }
    message.push_str("\nNothing was changed.");
    message
}

fn scalable_names(release: &Release) -> String {
    let mut names: Vec<&str> =
        release.components.iter().filter(|c| c.kind.is_scalable()).map(|c| c.display_name.as_str()).collect();
    names.dedup();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn plan_one(
    release: &Release,
    milvus: Option<&Milvus>,
    target: &Target,
    options: PlanOptions,
) -> Result<PlannedChange, String> {
    let Some(kind) = ComponentKind::parse(&target.component) else {
        return Err(format!(
            "unknown component {:?}: this release can scale {}",
            target.component,
            scalable_names(release)
        ));
    };
    let label = kind.label().to_string();
    match kind.role() {
        ComponentRole::Coordinator => {
            return Err(format!(
                "{label} is a coordinator: Milvus supports scaling worker nodes only (proxy, querynode, datanode, \
                 indexnode, streamingnode), not coordinators. To run a second {label}, enable active-standby mode \
                 (Helm value {}.activeStandby.enabled=true), where a standby takes over when the active one fails",
                kind.helm_values_key().unwrap_or(&label)
            ));
        }
        ComponentRole::Standalone => {
            return Err(format!("{label} runs as a single pod by design and cannot be scaled"));
        }
        ComponentRole::Auxiliary if !kind.is_scalable() => {
            return Err(format!(
                "{label} is not a Milvus worker and cannot be scaled with this command; this release can scale {}",
                scalable_names(release)
            ));
        }
        _ => {}
    }
    let rows: Vec<&Component> = release.components.iter().filter(|c| c.kind == kind).collect();
    if rows.is_empty() {
        let removed = if kind == ComponentKind::IndexNode { " (Milvus 2.6 removed it)" } else { "" };
        return Err(format!(
            "{} does not run {label}{removed}: it can scale {}",
            release.name,
            scalable_names(release)
        ));
    }
    let row = match &target.group {
        Some(group) => {
            rows.iter().find(|c| c.group.as_deref() == Some(group.as_str())).copied().ok_or_else(|| {
                let groups: Vec<&str> = rows.iter().filter_map(|c| c.group.as_deref()).collect();
                if groups.is_empty() {
                    format!("{label} has no group {group:?} (it runs without groups): use {label}=N")
                } else {
                    format!("{label} has no group {group:?}; its groups are {}", groups.join(", "))
                }
            })?
        }
        None => rows.iter().find(|c| c.group.is_none()).copied().ok_or_else(|| {
            let groups: Vec<String> = rows.iter().filter_map(|c| c.group.clone()).collect();
            format!(
                "{label} runs in groups {}: name one, e.g. {label}[{}]=N",
                groups.join(", "),
                groups.first().map(String::as_str).unwrap_or("GROUP")
            )
        })?,
    };
    if let Some(hpa) = &row.hpa {
        return Err(format!(
            "{} is managed by the HorizontalPodAutoscaler {} (min {}, max {}): a manual replica count would be \
             overwritten by the autoscaler. Change the HPA's minReplicas/maxReplicas instead",
            row.display_name, hpa.name, hpa.min_replicas, hpa.max_replicas
        ));
    }
    let (owner, from) = owner_and_current(release, milvus, &kind, row)?;
    let to = target.change.apply(from);
    if to < 0 {
        return Err(format!("{target} would leave {to} replicas ({} has {from})", row.display_name));
    }
    if let Some((max, why)) = kind.max_replicas()
        && to > max
    {
        let count = if max == 1 { "one replica only".to_string() } else { format!("at most {max} replicas") };
        return Err(format!("{label} runs {count}: {why}"));
    }
    if let Some(refusal) = zero_refusal(&kind, &row.display_name, &release.name, from, to, options) {
        return Err(refusal);
    }
    let helm_value = match (&release.managed_by, &row.group) {
        (ManagedBy::Helm { .. }, None) => kind.helm_values_key().map(|key| format!("{key}.replicas")),
        _ => None,
    };
    Ok(PlannedChange {
        component: row.display_name.clone(),
        kind: kind.clone(),
        change: target.change,
        from,
        to,
        steps: steps(from, to, options.step),
        owner,
        helm_value,
        helm_applies_server_side: row.helm_applies_server_side,
    })
}

/// The owner of the row's replicas and the value it holds now.
fn owner_and_current(
    release: &Release,
    milvus: Option<&Milvus>,
    kind: &ComponentKind,
    row: &Component,
) -> Result<(Owner, i32), String> {
    match &release.managed_by {
        ManagedBy::Helm { .. } => {
            let [workload] = row.workloads.as_slice() else {
                return Err(format!(
                    "{} has {} workloads; expected one Deployment",
                    row.display_name,
                    row.workloads.len()
                ));
            };
            if workload.kind != "Deployment" {
                return Err(format!(
                    "{} runs as a {}, which this command does not scale",
                    row.display_name, workload.kind
                ));
            }
            Ok((Owner::Deployment { name: workload.name.clone() }, row.desired))
        }
        ManagedBy::Operator { .. } => {
            let milvus = milvus.ok_or_else(|| {
                format!(
                    "the Milvus object {} could not be read: scaling an operator release goes through it \
                     (changing the Deployments directly would be reverted by the operator)",
                    release.name
                )
            })?;
            let key =
                kind.operator_key().ok_or_else(|| format!("{} has no Milvus spec key", kind.label()))?;
            let current = milvus.replicas(kind, row.group.as_deref()).map_err(|e| e.to_string())?;
            if current < 0 {
                return Err(format!(
                    "{} has replicas: {current} in the Milvus object, which hands it to a HorizontalPodAutoscaler: \
                     a manual replica count would be overwritten. Change the HPA instead",
                    row.display_name
                ));
            }
            let owner = Owner::Milvus {
                name: release.name.clone(),
                key: key.to_string(),
                group: row.group.clone(),
                component: kind.clone(),
            };
            Ok((owner, current))
        }
    }
}

/// The scale-to-zero rule: an essential component scaled to 0 makes the release unavailable, so it needs
/// `--allow-zero`. `Some(refusal)` when the rule refuses.
pub fn zero_refusal(
    kind: &ComponentKind,
    component: &str,
    release: &str,
    from: i32,
    to: i32,
    options: PlanOptions,
) -> Option<String> {
    (to == 0 && from > 0 && kind.is_essential() && !options.allow_zero).then(|| {
        format!(
            "scaling {component} to 0 makes {release} unavailable ({} is required to serve requests): pass --allow-zero if that is intended",
            kind.label()
        )
    })
}

/// Re-plans a change whose owner now holds `current` replicas instead of what was expected, after
/// `applied` values were written by this command. A relative change applies to what is there, as long as
/// nothing was written yet; an absolute one keeps its target. `Err` with the reason when the new plan
/// breaks a rule (nothing more may be written).
pub fn replan(
    change: &mut PlannedChange,
    release: &str,
    current: i32,
    applied: &[i32],
    options: PlanOptions,
) -> Result<(), String> {
    let to = match change.change {
        Change::By(delta) if applied.is_empty() => current.saturating_add(delta),
        _ => change.to,
    };
    if to < 0 || zero_refusal(&change.kind, &change.component, release, current, to, options).is_some() {
        return Err(format!(
            "{} changed to {current} replicas since it was read; {} from there would give {to}: nothing more was written",
            change.owner.reference(),
            change.component
        ));
    }
    if applied.is_empty() {
        change.from = current;
    }
    change.to = to;
    change.steps = steps(current, to, options.step);
    Ok(())
}

/// Scale-out in one step; scale-in at most `step` replicas at a time (`0`: one step).
pub fn steps(from: i32, to: i32, step: i32) -> Vec<i32> {
    if from == to {
        return Vec::new();
    }
    if to > from || step <= 0 {
        return vec![to];
    }
    let mut values = Vec::new();
    let mut current = from;
    while current > to {
        current = (current - step).max(to);
        values.push(current);
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_in_goes_one_step_at_a_time() {
        assert_eq!(steps(5, 2, 1), vec![4, 3, 2]);
        assert_eq!(steps(5, 2, 2), vec![3, 2]);
        assert_eq!(steps(5, 2, 0), vec![2]);
        assert_eq!(steps(1, 3, 1), vec![3]);
        assert_eq!(steps(3, 3, 1), Vec::<i32>::new());
    }
}
