//! From an [`Inventory`] to [`Release`]s: grouping by labels, pods by selectors, health.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value;

use super::problems::{PodProblem, pod_summary};
use super::{
    Component, ComponentKind, Dependency, DependencyKind, DiscoveryOptions, Health, HpaRef, Inventory,
    ManagedBy, Mode, OperatorCondition, PodSummary, Release, WorkloadRef,
};

// Labels and annotations (reference §1, §2, §4).
const L_NAME: &str = "app.kubernetes.io/name";
const L_INSTANCE: &str = "app.kubernetes.io/instance";
const L_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const L_APP_COMPONENT: &str = "app.kubernetes.io/component";
const L_COMPONENT: &str = "component";
const L_RELEASE: &str = "release";
const L_APP: &str = "app";
const L_HELM_CHART: &str = "helm.sh/chart";
const L_RESOURCE_GROUP: &str = "milvus.io/resource-group";
const L_DEPLOYMENT_GROUP: &str = "milvus.io/deployment-group";
const L_QUERYNODE_GROUP_ID: &str = "milvus.io/querynode-group-id";
const A_QUERYNODE_CURRENT: &str = "milvus.io/querynode-current-group-id";
const OPERATOR_MANAGER: &str = "milvus-operator";
/// Helm releases the operator installs for a CR's in-cluster dependencies: `<cr>-etcd`…
const OPERATOR_DEPENDENCY_SUFFIXES: [&str; 4] = ["-etcd", "-minio", "-pulsar", "-kafka"];

/// A dependency workload: (workload index, kind, display name, part such as `broker`).
type DepCandidate = (usize, DependencyKind, String, Option<String>);

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// Discovers every Milvus release in `inv`, sorted by (namespace, name). Pure: no I/O.
pub fn discover(inv: &Inventory, opts: &DiscoveryOptions) -> Vec<Release> {
    let workloads: Vec<Wl<'_>> = inv
        .deployments
        .iter()
        .filter_map(Wl::from_deployment)
        .chain(inv.stateful_sets.iter().filter_map(Wl::from_stateful_set))
        .collect();

    let mut releases: BTreeMap<ReleaseKey, Builder> = BTreeMap::new();

    // Operator CRs.
    for cr in &inv.milvuses {
        let Some(info) = CrInfo::parse(cr) else {
            continue;
        };
        let key = ReleaseKey { namespace: info.namespace.clone(), name: info.name.clone(), operator: true };
        releases.entry(key).or_default().cr = Some(info);
    }

    // Milvus workloads, and the rest as candidate dependencies.
    let mut dependency_candidates: Vec<DepCandidate> = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        match classify_workload(w, &opts.name_label) {
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
            for suffix in OPERATOR_DEPENDENCY_SUFFIXES {
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
        let found = [L_INSTANCE, L_RELEASE]
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

    let hpas = index_hpas(&inv.hpas);
    let ctx = Ctx { workloads: &workloads, pods: &inv.pods, pods_of: &pods_of, hpas: &hpas, now: opts.now };
    releases.into_iter().map(|(key, b)| build_release(&ctx, key, b)).collect()
}

// ---------------------------------------------------------------------------------------------
// Workloads

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WlKind {
    Deployment,
    StatefulSet,
}

impl WlKind {
    fn as_str(self) -> &'static str {
        match self {
            WlKind::Deployment => "Deployment",
            WlKind::StatefulSet => "StatefulSet",
        }
    }
}

/// A Deployment or StatefulSet, reduced to what discovery needs.
struct Wl<'a> {
    kind: WlKind,
    namespace: &'a str,
    name: &'a str,
    meta: &'a ObjectMeta,
    labels: &'a BTreeMap<String, String>,
    selector: Option<&'a LabelSelector>,
    template: Option<&'a PodTemplateSpec>,
    desired: i32,
    ready: i32,
    updated: i32,
    available: i32,
    /// A new revision is not fully rolled out yet.
    rollout_pending: bool,
    /// Deployment condition Progressing=False, reason ProgressDeadlineExceeded.
    deadline_exceeded: bool,
    /// Deployment condition ReplicaFailure=True: its message (quota, admission…).
    replica_failure: Option<String>,
    created: Option<Timestamp>,
}

impl<'a> Wl<'a> {
    fn from_deployment(d: &'a Deployment) -> Option<Wl<'a>> {
        let meta = &d.metadata;
        let spec = d.spec.as_ref();
        let status = d.status.as_ref();
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
        let updated = status.and_then(|s| s.updated_replicas).unwrap_or(0);
        let current = status.and_then(|s| s.replicas).unwrap_or(0);
        let gen_pending = match (meta.generation, status.and_then(|s| s.observed_generation)) {
            (Some(g), Some(o)) => o < g,
            _ => false,
        };
        let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
        let deadline_exceeded = conditions.iter().any(|c| {
            c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        });
        let replica_failure = conditions
            .iter()
            .find(|c| c.type_ == "ReplicaFailure" && c.status == "True")
            .map(|c| c.message.clone().or_else(|| c.reason.clone()).unwrap_or_default());
        Some(Wl {
            kind: WlKind::Deployment,
            namespace: meta.namespace.as_deref().unwrap_or("default"),
            name: meta.name.as_deref()?,
            meta,
            labels: meta.labels.as_ref().unwrap_or(&NO_LABELS),
            selector: spec.map(|s| &s.selector),
            template: spec.map(|s| &s.template),
            desired,
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated,
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            rollout_pending: gen_pending || updated < desired || current > updated,
            deadline_exceeded,
            replica_failure,
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
        })
    }

    fn from_stateful_set(s: &'a StatefulSet) -> Option<Wl<'a>> {
        let meta = &s.metadata;
        let spec = s.spec.as_ref();
        let status = s.status.as_ref();
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1).max(0);
        let gen_pending = match (meta.generation, status.and_then(|s| s.observed_generation)) {
            (Some(g), Some(o)) => o < g,
            _ => false,
        };
        let revision_pending = match (
            status.and_then(|s| s.current_revision.as_deref()),
            status.and_then(|s| s.update_revision.as_deref()),
        ) {
            (Some(c), Some(u)) => c != u,
            _ => false,
        };
        Some(Wl {
            kind: WlKind::StatefulSet,
            namespace: meta.namespace.as_deref().unwrap_or("default"),
            name: meta.name.as_deref()?,
            meta,
            labels: meta.labels.as_ref().unwrap_or(&NO_LABELS),
            selector: spec.map(|s| &s.selector),
            template: spec.map(|s| &s.template),
            desired,
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            rollout_pending: gen_pending || revision_pending,
            deadline_exceeded: false,
            replica_failure: None,
            created: meta.creation_timestamp.as_ref().map(|t| t.0),
        })
    }

    fn label(&self, key: &str) -> Option<&'a str> {
        self.labels.get(key).map(String::as_str)
    }

    fn workload_ref(&self) -> WorkloadRef {
        WorkloadRef { kind: self.kind.as_str().to_string(), name: self.name.to_string() }
    }

    fn is_operator_managed(&self) -> bool {
        self.label(L_MANAGED_BY) == Some(OPERATOR_MANAGER) || self.milvus_owner().is_some()
    }

    /// The name of the `Milvus` object that owns this workload, if any.
    fn milvus_owner(&self) -> Option<&'a str> {
        self.meta
            .owner_references
            .as_deref()?
            .iter()
            .find(|o| o.kind == "Milvus" && o.api_version.starts_with("milvus.io/"))
            .map(|o| o.name.as_str())
    }

    /// Resource group (Helm) or deployment group (operator).
    fn group(&self) -> Option<&'a str> {
        self.label(L_RESOURCE_GROUP).or_else(|| self.label(L_DEPLOYMENT_GROUP)).filter(|g| !g.is_empty())
    }
}

enum Class<'a> {
    Component { operator: bool, instance: &'a str, kind: ComponentKind },
    Dependency { kind: DependencyKind, display: String, part: Option<String> },
    None,
}

fn classify_workload<'a>(w: &Wl<'a>, name_label: &str) -> Class<'a> {
    if w.is_operator_managed() {
        let instance = w.label(L_INSTANCE).or_else(|| w.milvus_owner());
        let component = w.label(L_APP_COMPONENT).or_else(|| w.label(L_COMPONENT));
        return match (instance, component) {
            (Some(instance), Some(c)) if !c.is_empty() => {
                Class::Component { operator: true, instance, kind: ComponentKind::from_label(c) }
            }
            _ => Class::None,
        };
    }
    if w.label(L_NAME) == Some(name_label) {
        let component = w.label(L_COMPONENT).or_else(|| w.label(L_APP_COMPONENT));
        return match (w.label(L_INSTANCE), component) {
            (Some(instance), Some(c)) if !c.is_empty() => {
                Class::Component { operator: false, instance, kind: ComponentKind::from_label(c) }
            }
            _ => Class::None,
        };
    }
    match classify_dependency(w.labels) {
        Some((kind, display, part)) => Class::Dependency { kind, display, part },
        None => Class::None,
    }
}

/// Which dependency a workload is, from its labels (reference §4).
fn classify_dependency(
    labels: &BTreeMap<String, String>,
) -> Option<(DependencyKind, String, Option<String>)> {
    let get = |k: &str| labels.get(k).map(String::as_str);
    let single = |kind: DependencyKind| Some((kind, kind.as_str().to_string(), None));
    match (get(L_NAME), get(L_APP)) {
        (Some("etcd"), _) => single(DependencyKind::Etcd),
        (Some("minio"), _) | (_, Some("minio")) => single(DependencyKind::Minio),
        (Some("kafka"), _) => single(DependencyKind::Kafka),
        (Some("zookeeper"), _) => single(DependencyKind::Zookeeper),
        (Some("woodpecker"), _) => single(DependencyKind::Woodpecker),
        (_, Some(app @ ("pulsar" | "pulsarv3"))) => {
            let kind = if app == "pulsar" { DependencyKind::Pulsar } else { DependencyKind::PulsarV3 };
            let part = get(L_COMPONENT).filter(|p| !p.is_empty());
            let display = match part {
                Some(p) => format!("{app}-{p}"),
                None => app.to_string(),
            };
            Some((kind, display, part.map(str::to_string)))
        }
        _ if get(L_COMPONENT) == Some("woodpecker") || get(L_APP_COMPONENT) == Some("woodpecker") => {
            single(DependencyKind::Woodpecker)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Pods

fn is_job_pod(pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    labels.is_some_and(|l| l.contains_key("job-name") || l.contains_key("batch.kubernetes.io/job-name"))
        || pod
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|o| o.kind == "Job" || o.kind == "CronJob")
}

/// Whether `labels` satisfy `sel`. An empty selector matches nothing (apps/v1 forbids it, and
/// matching everything would pull every pod of the namespace into one row).
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let ml = sel.match_labels.as_ref();
    let me = sel.match_expressions.as_deref().unwrap_or(&[]);
    if ml.is_none_or(|m| m.is_empty()) && me.is_empty() {
        return false;
    }
    if let Some(ml) = ml
        && !ml.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    me.iter().all(|req| {
        let value = labels.get(&req.key);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// For each workload index in `parts`, the indices of the pods it owns. A pod is assigned to
/// one workload: the one whose selector matches and is the most specific (a StatefulSet that
/// is the pod's controller first, then the selector with the most terms) — so the pods of a
/// resource-group querynode are not also counted by the plain querynode Deployment whose
/// selector is a subset. Pods of Jobs are never assigned.
fn assign_pods(pods: &[Pod], workloads: &[Wl<'_>], parts: &[usize]) -> HashMap<usize, Vec<usize>> {
    // (namespace, label key, label value) -> pods; namespace -> pods.
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    let mut by_ns: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, pod) in pods.iter().enumerate() {
        if is_job_pod(pod) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        by_ns.entry(ns).or_default().push(i);
        for (k, v) in pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS) {
            by_label.entry((ns, k, v)).or_default().push(i);
        }
    }

    let mut best: HashMap<usize, (usize, usize)> = HashMap::new(); // pod -> (score, workload)
    for &wi in parts {
        let w = &workloads[wi];
        let Some(sel) = w.selector else { continue };
        let ml = sel.match_labels.as_ref();
        // Candidates: the smallest posting list among the selector's matchLabels.
        let candidates: &[usize] = match ml.filter(|m| !m.is_empty()) {
            Some(ml) => ml
                .iter()
                .map(|(k, v)| {
                    by_label.get(&(w.namespace, k.as_str(), v.as_str())).map_or(&[][..], Vec::as_slice)
                })
                .min_by_key(|c| c.len())
                .unwrap_or(&[]),
            None => by_ns.get(w.namespace).map_or(&[][..], Vec::as_slice),
        };
        let terms = ml.map_or(0, |m| m.len()) + sel.match_expressions.as_ref().map_or(0, Vec::len);
        for &pi in candidates {
            let pod = &pods[pi];
            let labels = pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
            if !selector_matches(sel, labels) {
                continue;
            }
            let controlled = w.kind == WlKind::StatefulSet
                && pod
                    .metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .any(|o| o.kind == "StatefulSet" && o.name == w.name);
            let score = terms + if controlled { 1000 } else { 0 };
            match best.get(&pi) {
                Some(&(s, _)) if s >= score => {}
                _ => {
                    best.insert(pi, (score, wi));
                }
            }
        }
    }
    let mut out: HashMap<usize, Vec<usize>> = HashMap::new();
    for (pi, (_, wi)) in best {
        out.entry(wi).or_default().push(pi);
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HPAs and the operator CR

fn index_hpas(hpas: &[HorizontalPodAutoscaler]) -> HashMap<(&str, &str, &str), HpaRef> {
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

/// The few fields of a `Milvus` object that discovery reads.
#[derive(Debug, Clone)]
struct CrInfo {
    namespace: String,
    name: String,
    mode: Option<Mode>,
    image: Option<String>,
    status: Option<String>,
    conditions: Vec<OperatorCondition>,
    created: Option<Timestamp>,
    querynode_current_group: Option<String>,
}

impl CrInfo {
    fn parse(v: &Value) -> Option<CrInfo> {
        let meta = v.get("metadata")?;
        let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let conditions = v
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        Some(OperatorCondition {
                            type_: s(c, "/type")?,
                            status: s(c, "/status").unwrap_or_default(),
                            reason: s(c, "/reason"),
                            message: s(c, "/message"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let current_group =
            meta.get("annotations").and_then(|a| a.get(A_QUERYNODE_CURRENT)).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        Some(CrInfo {
            namespace: s(meta, "/namespace").unwrap_or_else(|| "default".to_string()),
            name: s(meta, "/name")?,
            mode: s(v, "/spec/mode")
                .map(|m| if m.eq_ignore_ascii_case("standalone") { Mode::Standalone } else { Mode::Cluster }),
            image: s(v, "/spec/components/image"),
            status: s(v, "/status/status"),
            conditions,
            created: s(meta, "/creationTimestamp").and_then(|t| t.parse::<Timestamp>().ok()),
            querynode_current_group: current_group,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Building releases

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct ReleaseKey {
    namespace: String,
    name: String,
    operator: bool,
}

#[derive(Default)]
struct Builder {
    cr: Option<CrInfo>,
    components: Vec<(usize, ComponentKind)>,
    /// (workload, kind, display name, part)
    dependencies: Vec<DepCandidate>,
}

struct Ctx<'a, 'b> {
    workloads: &'b [Wl<'a>],
    pods: &'a [Pod],
    pods_of: &'b HashMap<usize, Vec<usize>>,
    hpas: &'b HashMap<(&'a str, &'a str, &'a str), HpaRef>,
    now: Timestamp,
}

/// Sums over the workloads of one row.
#[derive(Default)]
struct RowFacts {
    desired: i32,
    ready: i32,
    updated: i32,
    available: i32,
    rollout_pending: bool,
    deadline_exceeded: bool,
    replica_failure: Option<String>,
    created: Option<Timestamp>,
    restarts: i32,
    pods: Vec<PodSummary>,
    problems: Vec<PodProblem>,
}

impl RowFacts {
    fn collect(ctx: &Ctx<'_, '_>, members: &[usize], owner: &str) -> RowFacts {
        let mut f = RowFacts::default();
        for &wi in members {
            let w = &ctx.workloads[wi];
            f.desired += w.desired;
            f.ready += w.ready;
            f.updated += w.updated;
            f.available += w.available;
            f.rollout_pending |= w.desired > 0 && w.rollout_pending;
            f.deadline_exceeded |= w.deadline_exceeded;
            if f.replica_failure.is_none() {
                f.replica_failure.clone_from(&w.replica_failure);
            }
            f.created = min_time(f.created, w.created);
            for &pi in ctx.pods_of.get(&wi).map_or(&[][..], Vec::as_slice) {
                let pod = &ctx.pods[pi];
                let summary = pod_summary(pod);
                f.restarts += summary.restarts;
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

fn min_time(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Health of one row with the parts of its reason: `summary` (`1/2 ready`) and `detail`
/// (`CrashLoopBackOff`).
struct RowEval {
    health: Health,
    summary: String,
    detail: String,
}

impl RowEval {
    /// The STATUS-column text: `1/2 ready, CrashLoopBackOff`; empty when Healthy.
    fn reason(&self) -> String {
        match (self.health, self.detail.is_empty()) {
            (Health::Healthy, _) => String::new(),
            (_, true) => self.summary.clone(),
            (_, false) => format!("{}, {}", self.summary, self.detail),
        }
    }

    /// For the release's health_reason: `querynode: 1/2 ready (CrashLoopBackOff)`.
    fn release_text(&self, name: &str) -> String {
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
fn evaluate(f: &RowFacts, essential: bool) -> RowEval {
    let kinds = problem_kinds(&f.problems);
    if f.desired == 0 {
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
    let summary = format!("{}/{} ready", f.ready, f.desired);
    let rollout = || {
        if f.updated < f.desired {
            format!("rolling out, {}/{} updated", f.updated, f.desired)
        } else {
            "old replicas terminating".to_string()
        }
    };
    let (health, detail) = if f.ready == 0 {
        let health = if essential { Health::Unavailable } else { Health::Degraded };
        let detail = if !kinds.is_empty() {
            kinds
        } else if let Some(m) = &f.replica_failure {
            format!("ReplicaFailure: {m}")
        } else if f.deadline_exceeded {
            "ProgressDeadlineExceeded".to_string()
        } else if f.pods.is_empty() {
            "no pods".to_string()
        } else {
            waiting_statuses(&f.pods)
        };
        (health, detail)
    } else if !kinds.is_empty() {
        (Health::Degraded, kinds)
    } else if f.deadline_exceeded {
        (Health::Degraded, "ProgressDeadlineExceeded".to_string())
    } else if let Some(m) = f.replica_failure.as_ref().filter(|_| f.ready < f.desired) {
        (Health::Degraded, format!("ReplicaFailure: {m}"))
    } else if f.ready < f.desired {
        let detail = if f.rollout_pending {
            rollout()
        } else {
            let w = waiting_statuses(&f.pods);
            if w.is_empty() { "starting".to_string() } else { w }
        };
        (Health::Progressing, detail)
    } else if f.rollout_pending {
        (Health::Progressing, rollout())
    } else {
        (Health::Healthy, String::new())
    };
    RowEval { health, summary, detail }
}

/// The tag of an image reference: `milvusdb/milvus:v2.6.15` → `v2.6.15`. Handles registries
/// with ports (`reg:5000/milvus:v2.6.15`) and digests (`…:v2.6.15@sha256:…` → `v2.6.15`;
/// digest only → `sha256:` and the first 12 hex digits). No tag and no digest → `latest`.
pub(crate) fn image_tag(image: &str) -> Option<String> {
    let image = image.trim();
    if image.is_empty() {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_segment = name.rsplit('/').next().unwrap_or(name);
    if let Some((_, tag)) = last_segment.rsplit_once(':')
        && !tag.is_empty()
    {
        return Some(tag.to_string());
    }
    match digest {
        Some(d) => {
            let (algo, hex) = d.split_once(':').unwrap_or(("sha256", d));
            Some(format!("{algo}:{}", hex.chars().take(12).collect::<String>()))
        }
        None => Some("latest".to_string()),
    }
}

/// The Milvus image of a workload: the container named like the component, else the one
/// whose repository is `…/milvus`, else the first.
fn milvus_image<'a>(w: &Wl<'a>, kind: &ComponentKind) -> Option<&'a str> {
    let containers = &w.template?.spec.as_ref()?.containers;
    let image = |c: &'a k8s_openapi::api::core::v1::Container| c.image.as_deref();
    containers
        .iter()
        .find(|c| c.name == kind.label())
        .and_then(image)
        .or_else(|| {
            containers.iter().filter_map(image).find(|i| {
                let repo = i.split('@').next().unwrap_or(i);
                let last = repo.rsplit('/').next().unwrap_or(repo);
                last.split(':').next() == Some("milvus")
            })
        })
        .or_else(|| containers.first().and_then(image))
}

fn pulsar_part_order(part: Option<&str>) -> u8 {
    match part {
        Some("zookeeper") => 0,
        Some("bookie") => 1,
        Some("broker") => 2,
        Some("proxy") => 3,
        Some("recovery") => 4,
        _ => 5,
    }
}

struct Contributor {
    health: Health,
    text: String,
}

fn build_release(ctx: &Ctx<'_, '_>, key: ReleaseKey, b: Builder) -> Release {
    let cr = b.cr;

    // Component rows, keyed by (kind, group).
    let mut comp_rows: BTreeMap<(ComponentKind, Option<String>), Vec<usize>> = BTreeMap::new();
    for (wi, kind) in &b.components {
        let group = ctx.workloads[*wi].group().map(str::to_string);
        comp_rows.entry((kind.clone(), group)).or_default().push(*wi);
    }

    // Mode: the CR's, else standalone when the only server component is standalone (counting
    // components with replicas when there are any).
    let server_kinds = |only_running: bool| -> Vec<&ComponentKind> {
        comp_rows
            .iter()
            .filter(|((k, _), ws)| {
                k.is_server() && (!only_running || ws.iter().any(|w| ctx.workloads[*w].desired > 0))
            })
            .map(|((k, _), _)| k)
            .collect()
    };
    let inferred = {
        let running = server_kinds(true);
        let kinds = if running.is_empty() { server_kinds(false) } else { running };
        if !kinds.is_empty() && kinds.iter().all(|k| **k == ComponentKind::Standalone) {
            Mode::Standalone
        } else {
            Mode::Cluster
        }
    };
    let mode = cr.as_ref().and_then(|c| c.mode).unwrap_or(inferred);

    let mut components: Vec<Component> = Vec::new();
    let mut contributors: Vec<Contributor> = Vec::new();
    let mut problems: Vec<PodProblem> = Vec::new();
    let mut created: Option<Timestamp> = None;
    let mut version: Option<String> = None;
    let mut fallback_version: Option<String> = None;

    for ((kind, group), members) in comp_rows {
        let display_name = match &group {
            Some(g) => format!("{}[{g}]", kind.label()),
            None => kind.label().to_string(),
        };
        let facts = RowFacts::collect(ctx, &members, &display_name);
        created = min_time(created, facts.created);
        // Components outside the mode (the operator's standalone Deployment at 0 in a cluster
        // release) are left out while they are at zero with no pods.
        let outside_mode = match mode {
            Mode::Cluster => kind == ComponentKind::Standalone,
            Mode::Standalone => kind.is_server() && kind != ComponentKind::Standalone,
        };
        if outside_mode && facts.desired == 0 && facts.pods.is_empty() {
            continue;
        }

        for &wi in &members {
            let w = &ctx.workloads[wi];
            if let Some(tag) = milvus_image(w, &kind).and_then(image_tag) {
                if w.desired > 0 && version.is_none() && tag != "latest" {
                    version = Some(tag);
                } else if fallback_version.is_none() && w.desired > 0 {
                    fallback_version = Some(tag);
                }
            }
        }

        let workloads: Vec<WorkloadRef> = members.iter().map(|w| ctx.workloads[*w].workload_ref()).collect();
        let hpa = members.iter().find_map(|wi| {
            let w = &ctx.workloads[*wi];
            ctx.hpas.get(&(w.namespace, w.kind.as_str(), w.name)).cloned()
        });
        let active_workload = active_querynode(ctx, &members, cr.as_ref());
        let eval = evaluate(&facts, kind.is_essential());
        if eval.health != Health::Stopped {
            contributors.push(Contributor { health: eval.health, text: eval.release_text(&display_name) });
        }
        problems.extend(facts.problems.iter().cloned());
        components.push(Component {
            kind,
            group,
            display_name,
            workloads,
            active_workload,
            desired: facts.desired,
            ready: facts.ready,
            up_to_date: facts.updated,
            available: facts.available,
            restarts: facts.restarts,
            created: facts.created,
            hpa,
            pods: facts.pods,
            health: eval.health,
            reason: eval.reason(),
        });
    }

    // Dependency rows, keyed by display name.
    type DepRows = BTreeMap<(DependencyKind, u8, String), (Option<String>, Vec<usize>)>;
    let mut dep_rows = DepRows::new();
    for (wi, kind, display, part) in &b.dependencies {
        let order = pulsar_part_order(part.as_deref());
        dep_rows
            .entry((*kind, order, display.clone()))
            .or_insert_with(|| (part.clone(), Vec::new()))
            .1
            .push(*wi);
    }
    let mut dependencies: Vec<Dependency> = Vec::new();
    let mut dep_stopped_essential: Vec<String> = Vec::new();
    for ((kind, _, display_name), (part, members)) in dep_rows {
        let facts = RowFacts::collect(ctx, &members, &display_name);
        if cr.is_none() {
            created = min_time(created, facts.created);
        }
        let essential = kind.is_essential_part(part.as_deref());
        let eval = evaluate(&facts, essential);
        if eval.health == Health::Stopped {
            if essential {
                dep_stopped_essential.push(display_name.clone());
            }
        } else {
            contributors.push(Contributor { health: eval.health, text: eval.release_text(&display_name) });
        }
        problems.extend(facts.problems.iter().cloned());
        dependencies.push(Dependency {
            kind,
            display_name,
            workloads: members.iter().map(|w| ctx.workloads[*w].workload_ref()).collect(),
            desired: facts.desired,
            ready: facts.ready,
            restarts: facts.restarts,
            created: facts.created,
            pods: facts.pods,
            health: eval.health,
            reason: eval.reason(),
        });
    }

    let (health, health_reason) =
        release_health(&components, contributors, &dep_stopped_essential, cr.as_ref());

    let version = version
        .or(fallback_version)
        .or_else(|| cr.as_ref().and_then(|c| c.image.as_deref()).and_then(image_tag));
    let managed_by = if key.operator {
        ManagedBy::Operator {
            status: cr.as_ref().and_then(|c| c.status.clone()),
            conditions: cr.as_ref().map(|c| c.conditions.clone()).unwrap_or_default(),
            resource_found: cr.is_some(),
        }
    } else {
        let chart = b
            .components
            .iter()
            .find_map(|(wi, _)| ctx.workloads[*wi].label(L_HELM_CHART))
            .map(str::to_string);
        ManagedBy::Helm { chart }
    };
    Release {
        namespace: key.namespace,
        name: key.name,
        managed_by,
        mode,
        version,
        created: cr.as_ref().and_then(|c| c.created).or(created),
        components,
        dependencies,
        problems,
        health,
        health_reason,
    }
}

/// Operator querynode: the Deployment the CR annotation names as current, else the one with
/// replicas. `None` for rows without `milvus.io/querynode-group-id` workloads.
fn active_querynode(ctx: &Ctx<'_, '_>, members: &[usize], cr: Option<&CrInfo>) -> Option<String> {
    let slots: Vec<&Wl<'_>> = members
        .iter()
        .map(|w| &ctx.workloads[*w])
        .filter(|w| w.label(L_QUERYNODE_GROUP_ID).is_some())
        .collect();
    if slots.is_empty() {
        return None;
    }
    let current = cr.and_then(|c| c.querynode_current_group.as_deref());
    slots
        .iter()
        .find(|w| current.is_some() && w.label(L_QUERYNODE_GROUP_ID) == current)
        .or_else(|| slots.iter().find(|w| w.desired > 0))
        .map(|w| w.name.to_string())
}

/// Release health: the worst part; Stopped when every component is at zero; an essential
/// component kind (or coordinators as a whole) or essential dependency scaled to zero while
/// the rest runs is Unavailable; the operator's own status is folded in (see module docs of
/// [`Health`] and the report in the README).
fn release_health(
    components: &[Component],
    mut contributors: Vec<Contributor>,
    dep_stopped_essential: &[String],
    cr: Option<&CrInfo>,
) -> (Health, String) {
    let operator_status = cr.and_then(|c| c.status.as_deref());
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
        let group =
            if c.kind.role() == super::ComponentRole::Coordinator { "coordinators" } else { c.kind.label() };
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
            .flat_map(|c| c.conditions.iter())
            .find(|c| c.status == "False" && c.type_ != "MilvusUpdated");
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
