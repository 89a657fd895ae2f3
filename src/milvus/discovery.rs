//! From an [`Inventory`] to [`Release`]s: workloads classified by their labels, grouped by release,
//! dependencies attached by their instance or release label, pods assigned by selector, rows summed and
//! the release's health evaluated.

use std::collections::{BTreeMap, HashMap};

use super::labels::{self, Class};
use super::object::Milvus;
use super::pods::assign_pods;
use super::rows::{self, ComponentGroups, Ctx, DepCandidate};
use super::workload::{Workload, image_tag, min_time};
use super::{ComponentKind, DependencyKind, DiscoveryOptions, Inventory, ManagedBy, Mode, Release, health};

/// Discovers every Milvus release in `inv`, sorted by (namespace, name). Pure: no I/O.
pub fn discover(inv: &Inventory, opts: &DiscoveryOptions) -> Vec<Release> {
    let workloads: Vec<Workload<'_>> = inv
        .deployments
        .iter()
        .filter_map(Workload::from_deployment)
        .chain(inv.stateful_sets.iter().filter_map(Workload::from_stateful_set))
        .collect();

    let mut releases: BTreeMap<ReleaseKey, Builder<'_>> = BTreeMap::new();

    // Operator CRs.
    for cr in &inv.milvuses {
        let Some(name) = cr.metadata.name.clone() else {
            continue;
        };
        let key = ReleaseKey { namespace: cr.namespace().to_string(), name, operator: true };
        releases.entry(key).or_default().cr = Some(cr);
    }

    // Milvus workloads, and the rest as candidate dependencies.
    let mut dependency_candidates: Vec<DepCandidate> = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        match labels::classify_workload(w, &opts.name_label) {
            Class::Component { operator, instance, kind } => {
                let key =
                    ReleaseKey { namespace: w.namespace.to_string(), name: instance.to_string(), operator };
                let b = releases.entry(key).or_default();
                if kind == ComponentKind::Woodpecker {
                    b.dependencies.push((i, DependencyKind::Woodpecker, "woodpecker".into(), None));
                } else {
                    b.components.push((i, kind));
                }
            }
            Class::Dependency { kind, display, part } => dependency_candidates.push((i, kind, display, part)),
            Class::None => {}
        }
    }

    // Attach dependencies by their instance/release label.
    let mut by_instance: HashMap<(&str, String), ReleaseKey> = HashMap::new();
    for key in releases.keys() {
        if key.operator {
            for suffix in labels::OPERATOR_DEPENDENCY_SUFFIXES {
                by_instance
                    .entry((key.namespace.as_str(), format!("{}{suffix}", key.name)))
                    .or_insert_with(|| key.clone());
            }
        } else {
            by_instance.entry((key.namespace.as_str(), key.name.clone())).or_insert_with(|| key.clone());
        }
    }
    let mut attach: Vec<(ReleaseKey, DepCandidate)> = Vec::new();
    for cand in dependency_candidates {
        let w = &workloads[cand.0];
        let found = [labels::INSTANCE, labels::RELEASE]
            .iter()
            .filter_map(|l| w.labels.get(*l))
            .find_map(|v| by_instance.get(&(w.namespace, v.clone())));
        if let Some(key) = found {
            attach.push((key.clone(), cand));
        }
    }
    for (key, cand) in attach {
        if let Some(b) = releases.get_mut(&key) {
            b.dependencies.push(cand);
        }
    }

    // Pods of every workload that is part of a release, by selector.
    let part_workloads: Vec<usize> = releases
        .values()
        .flat_map(|b| b.components.iter().map(|c| c.0).chain(b.dependencies.iter().map(|d| d.0)))
        .collect();
    let pods_of = assign_pods(&inv.pods, &workloads, &part_workloads);

    let hpas = rows::index_hpas(&inv.hpas);
    let ctx = Ctx { workloads: &workloads, pods: &inv.pods, pods_of: &pods_of, hpas: &hpas, now: opts.now };
    releases.into_iter().map(|(key, b)| build_release(&ctx, key, b)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ReleaseKey {
    namespace: String,
    name: String,
    operator: bool,
}

#[derive(Default)]
struct Builder<'a> {
    cr: Option<&'a Milvus>,
    components: Vec<(usize, ComponentKind)>,
    dependencies: Vec<DepCandidate>,
}

fn build_release(ctx: &Ctx<'_, '_>, key: ReleaseKey, b: Builder<'_>) -> Release {
    let cr = b.cr;
    let groups = rows::group_components(ctx, &b.components);
    let mode = cr.and_then(Milvus::mode).unwrap_or_else(|| infer_mode(ctx, &groups));
    let components = rows::components(ctx, groups, mode, cr);
    let dependencies = rows::dependencies(ctx, &b.dependencies);

    let mut contributors = components.contributors;
    contributors.extend(dependencies.contributors);
    let (health, health_reason) =
        health::release_health(&components.components, contributors, &dependencies.stopped_essential, cr);
    let mut problems = components.problems;
    problems.extend(dependencies.problems);
    // An operator release is as old as its `Milvus` object; a Helm release as its oldest workload.
    let created = match cr {
        Some(cr) => cr.created().or(components.created),
        None => min_time(components.created, dependencies.created),
    };

    let version = components
        .version
        .or_else(|| cr.and_then(|c| c.spec.components.image.as_deref()).and_then(image_tag));
    let managed_by = if key.operator {
        ManagedBy::Operator {
            status: cr.and_then(|c| c.status.status.clone()),
            conditions: cr.map(Milvus::conditions).unwrap_or_default(),
            resource_found: cr.is_some(),
        }
    } else {
        let chart = b
            .components
            .iter()
            .find_map(|(wi, _)| ctx.workloads[*wi].label(labels::HELM_CHART))
            .map(str::to_string);
        ManagedBy::Helm { chart }
    };
    Release {
        namespace: key.namespace,
        name: key.name,
        managed_by,
        mode,
        version,
        created,
        components: components.components,
        dependencies: dependencies.dependencies,
        external_dependencies: Vec::new(),
        problems,
        health,
        health_reason,
    }
}

/// Standalone when the only server component is standalone (counting components with replicas when
/// there are any); cluster otherwise.
fn infer_mode(ctx: &Ctx<'_, '_>, groups: &ComponentGroups) -> Mode {
    let server_kinds = |only_running: bool| -> Vec<&ComponentKind> {
        groups
            .iter()
            .filter(|((k, _), ws)| {
                k.is_server() && (!only_running || ws.iter().any(|w| ctx.workloads[*w].facts.desired > 0))
            })
            .map(|((k, _), _)| k)
            .collect()
    };
    let running = server_kinds(true);
    let kinds = if running.is_empty() { server_kinds(false) } else { running };
    if !kinds.is_empty() && kinds.iter().all(|k| **k == ComponentKind::Standalone) {
        Mode::Standalone
    } else {
        Mode::Cluster
    }
}
