//! The rows of a release: one per component (or group of it) and one per dependency, each the sum
//! of its workloads and their pods, with the health of the row.

use std::collections::{BTreeMap, HashMap};

use super::Pod;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;

use super::health::{Contributor, evaluate};
use super::labels::{self, QUERYNODE_GROUP_ID};
use super::object::Milvus;
use super::problems::{PodProblem, pod_summary};
use super::workload::{ReplicaFacts, Workload, image_tag, min_time};
use super::{
    Component, ComponentKind, Dependency, DependencyKind, Health, HpaRef, Mode, PodSummary, WorkloadRef,
};

/// A dependency workload: (workload index, kind, display name, part such as `broker`).
pub(crate) type DepCandidate = (usize, DependencyKind, String, Option<String>);

/// Component workloads grouped into rows: (kind, group) → workload indices.
pub(crate) type ComponentGroups = BTreeMap<(ComponentKind, Option<String>), Vec<usize>>;

/// What the rows are computed from.
pub(crate) struct Ctx<'a, 'b> {
    pub workloads: &'b [Workload<'a>],
    pub pods: &'a [Pod],
    pub pods_of: &'b HashMap<usize, Vec<usize>>,
    pub hpas: &'b HashMap<(&'a str, &'a str, &'a str), HpaRef>,
    pub now: Timestamp,
}

/// Sums over the workloads of one row, and their pods.
#[derive(Default)]
pub(crate) struct RowFacts {
    pub replicas: ReplicaFacts,
    pub restarts: i32,
    pub pods: Vec<PodSummary>,
    pub problems: Vec<PodProblem>,
}

impl RowFacts {
    fn collect(ctx: &Ctx<'_, '_>, members: &[usize], owner: &str) -> RowFacts {
        let mut f = RowFacts::default();
        for &wi in members {
            f.replicas.add(&ctx.workloads[wi].facts);
            for &pi in ctx.pods_of.get(&wi).map_or(&[][..], Vec::as_slice) {
                let pod = &ctx.pods[pi];
                let summary = pod_summary(pod);
                f.restarts = f.restarts.saturating_add(summary.restarts);
                f.pods.push(summary);
                if let Some(p) = PodProblem::detect(pod, owner, ctx.now) {
                    f.problems.push(p);
                }
            }
        }
        f.pods.sort_by(|a, b| a.name.cmp(&b.name));
        f.problems.sort_by(|a, b| a.pod.cmp(&b.pod));
        f
    }
}

/// HPAs by the workload they scale: (namespace, kind, name).
pub(crate) fn index_hpas(hpas: &[HorizontalPodAutoscaler]) -> HashMap<(&str, &str, &str), HpaRef> {
    let mut out = HashMap::new();
    for h in hpas {
        let (Some(name), Some(spec)) = (h.metadata.name.as_deref(), h.spec.as_ref()) else {
            continue;
        };
        let ns = h.metadata.namespace.as_deref().unwrap_or("default");
        let target = &spec.scale_target_ref;
        out.insert(
            (ns, target.kind.as_str(), target.name.as_str()),
            HpaRef {
                name: name.to_string(),
                min_replicas: spec.min_replicas.unwrap_or(1),
                max_replicas: spec.max_replicas,
            },
        );
    }
    out
}

/// Component workloads grouped by (kind, resource or deployment group).
pub(crate) fn group_components(ctx: &Ctx<'_, '_>, members: &[(usize, ComponentKind)]) -> ComponentGroups {
    let mut groups = ComponentGroups::new();
    for (wi, kind) in members {
        let group = ctx.workloads[*wi].group().map(str::to_string);
        groups.entry((kind.clone(), group)).or_default().push(*wi);
    }
    groups
}

/// What the component rows of a release add up to.
#[derive(Default)]
pub(crate) struct ComponentRows {
    pub components: Vec<Component>,
    pub contributors: Vec<Contributor>,
    pub problems: Vec<PodProblem>,
    pub created: Option<Timestamp>,
    /// The Milvus image tag of the running workloads (a `latest` tag only when nothing else is known).
    pub version: Option<String>,
}

/// One row per (kind, group). Components outside the mode (the operator's standalone Deployment at 0 in
/// a cluster release) are left out while they are at zero with no pods.
pub(crate) fn components(
    ctx: &Ctx<'_, '_>,
    groups: ComponentGroups,
    mode: Mode,
    cr: Option<&Milvus>,
) -> ComponentRows {
    let mut rows = ComponentRows::default();
    let mut fallback_version: Option<String> = None;
    for ((kind, group), members) in groups {
        let display_name = match &group {
            Some(g) => format!("{}[{g}]", kind.label()),
            None => kind.label().to_string(),
        };
        let facts = RowFacts::collect(ctx, &members, &display_name);
        rows.created = min_time(rows.created, facts.replicas.created);
        let outside_mode = match mode {
            Mode::Cluster => kind == ComponentKind::Standalone,
            Mode::Standalone => kind.is_server() && kind != ComponentKind::Standalone,
        };
        if outside_mode && facts.replicas.desired == 0 && facts.pods.is_empty() {
            continue;
        }

        for &wi in &members {
            let w = &ctx.workloads[wi];
            if let Some(tag) = w.milvus_image(&kind).and_then(image_tag) {
                if w.facts.desired > 0 && rows.version.is_none() && tag != "latest" {
                    rows.version = Some(tag);
                } else if fallback_version.is_none() && w.facts.desired > 0 {
                    fallback_version = Some(tag);
                }
            }
        }

        let workloads: Vec<WorkloadRef> = members.iter().map(|w| ctx.workloads[*w].workload_ref()).collect();
        let hpa = members.iter().find_map(|wi| {
            let w = &ctx.workloads[*wi];
            ctx.hpas.get(&(w.namespace, w.kind.as_str(), w.name)).cloned()
        });
        let active_workload = active_querynode(ctx, &members, cr);
        let eval = evaluate(&facts, kind.is_essential());
        if eval.health != Health::Stopped {
            rows.contributors
                .push(Contributor { health: eval.health, text: eval.release_text(&display_name) });
        }
        rows.problems.extend(facts.problems.iter().cloned());
        rows.components.push(Component {
            kind,
            group,
            display_name,
            workloads,
            active_workload,
            desired: facts.replicas.desired,
            ready: facts.replicas.ready,
            up_to_date: facts.replicas.updated,
            available: facts.replicas.available,
            restarts: facts.restarts,
            created: facts.replicas.created,
            hpa,
            helm_applies_server_side: members.iter().any(|wi| ctx.workloads[*wi].helm_applies_server_side()),
            pods: facts.pods,
            health: eval.health,
            reason: eval.reason(),
        });
    }
    rows.version = rows.version.or(fallback_version);
    rows
}

/// What the dependency rows of a release add up to.
#[derive(Default)]
pub(crate) struct DependencyRows {
    pub dependencies: Vec<Dependency>,
    pub contributors: Vec<Contributor>,
    pub problems: Vec<PodProblem>,
    pub created: Option<Timestamp>,
    /// Essential dependency parts scaled to zero (the release cannot serve).
    pub stopped_essential: Vec<String>,
}

/// One row per dependency part (`etcd`, `pulsarv3-broker`…), in display order.
pub(crate) fn dependencies(ctx: &Ctx<'_, '_>, candidates: &[DepCandidate]) -> DependencyRows {
    type DepRows = BTreeMap<(DependencyKind, u8, String), (Option<String>, Vec<usize>)>;
    let mut grouped = DepRows::new();
    for (wi, kind, display, part) in candidates {
        let order = labels::pulsar_part_order(part.as_deref());
        grouped
            .entry((*kind, order, display.clone()))
            .or_insert_with(|| (part.clone(), Vec::new()))
            .1
            .push(*wi);
    }
    let mut rows = DependencyRows::default();
    for ((kind, _, display_name), (part, members)) in grouped {
        let facts = RowFacts::collect(ctx, &members, &display_name);
        rows.created = min_time(rows.created, facts.replicas.created);
        let essential = kind.is_essential_part(part.as_deref());
        let eval = evaluate(&facts, essential);
        if eval.health == Health::Stopped {
            if essential {
                rows.stopped_essential.push(display_name.clone());
            }
        } else {
            rows.contributors
                .push(Contributor { health: eval.health, text: eval.release_text(&display_name) });
        }
        rows.problems.extend(facts.problems.iter().cloned());
        rows.dependencies.push(Dependency {
            kind,
            display_name,
            workloads: members.iter().map(|w| ctx.workloads[*w].workload_ref()).collect(),
            desired: facts.replicas.desired,
            ready: facts.replicas.ready,
            restarts: facts.restarts,
            created: facts.replicas.created,
            pods: facts.pods,
            health: eval.health,
            reason: eval.reason(),
        });
    }
    rows
}

/// Operator querynode: the Deployment the CR annotation names as current, else the one with
/// replicas. `None` for rows without `milvus.io/querynode-group-id` workloads.
fn active_querynode(ctx: &Ctx<'_, '_>, members: &[usize], cr: Option<&Milvus>) -> Option<String> {
    let slots: Vec<&Workload<'_>> = members
        .iter()
        .map(|w| &ctx.workloads[*w])
        .filter(|w| w.label(QUERYNODE_GROUP_ID).is_some())
        .collect();
    if slots.is_empty() {
        return None;
    }
    let current = cr.and_then(|c| c.querynode_current_group());
    slots
        .iter()
        .find(|w| current.is_some() && w.label(QUERYNODE_GROUP_ID) == current)
        .or_else(|| slots.iter().find(|w| w.facts.desired > 0))
        .map(|w| w.name.to_string())
}
