//! Who else owns a release: Argo CD or Flux applying it from Git, a Milvus Operator told to keep its
//! hands off, or `helm template` with no Helm record. Pure: from the release's workloads and `Milvus`
//! object (their labels and annotations) to an [`OwnerChain`], and from the chain to what `scale` must
//! refuse or warn about. Reading an Application or HelmRelease is [`crate::gitops`]'s; what it says is
//! parsed here ([`Details::from_value`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use super::labels::{self, Class};
use super::workload::Workload;
use super::{ComponentKind, Inventory, Milvus, Release};

/// Argo CD's annotation tracking: `<app>:<group>/<kind>:<namespace>/<name>`, the app part
/// `<appnamespace>_<app>` with apps in any namespace.
pub const ARGOCD_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
/// Argo CD's label tracking with the label Argo CD's docs suggest (the default,
/// `app.kubernetes.io/instance`, is the Helm chart's own and proves nothing).
pub const ARGOCD_INSTANCE: &str = "argocd.argoproj.io/instance";
/// The namespace Argo CD's Applications live in unless the tracking id names another.
pub const ARGOCD_DEFAULT_NAMESPACE: &str = "argocd";
/// Flux helm-controller's labels on what it installs.
pub const FLUX_NAME: &str = "helm.toolkit.fluxcd.io/name";
pub const FLUX_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
/// The Milvus Operator skips every reconcile of an object annotated `"true"`.
pub const PAUSE_RECONCILE: &str = "milvus.io/pause-reconcile";
/// The chart's value of `app.kubernetes.io/managed-by`.
pub const HELM_MANAGER: &str = "Helm";

/// The GitOps tool that applies a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Tool {
    #[serde(rename = "argocd")]
    ArgoCd,
    #[serde(rename = "flux")]
    Flux,
}

/// An Argo CD Application or Flux HelmRelease named by the release's labels or annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracker {
    pub tool: Tool,
    /// The namespace the object is read in (Argo CD: from the tracking id, else `argocd`).
    pub namespace: String,
    pub name: String,
    /// The label or annotation that says so.
    pub tracked_by: &'static str,
    /// Argo CD: the namespace was named by the tracking id (apps in any namespace), not assumed.
    #[serde(skip)]
    pub namespace_given: bool,
}

impl Tracker {
    /// `argocd:milvus`, `argocd:team/milvus`, `flux:flux-system/milvus`.
    pub fn short(&self) -> String {
        match self.tool {
            Tool::ArgoCd if !self.namespace_given => format!("argocd:{}", self.name),
            Tool::ArgoCd => format!("argocd:{}/{}", self.namespace, self.name),
            Tool::Flux => format!("flux:{}/{}", self.namespace, self.name),
        }
    }

    /// `Argo CD application milvus`, `Flux HelmRelease flux-system/milvus`.
    pub fn describe(&self) -> String {
        match self.tool {
            Tool::ArgoCd if !self.namespace_given => format!("Argo CD application {}", self.name),
            Tool::ArgoCd => format!("Argo CD application {}/{}", self.namespace, self.name),
            Tool::Flux => format!("Flux HelmRelease {}/{}", self.namespace, self.name),
        }
    }

    /// `applications.argoproj.io` or `helmreleases.helm.toolkit.fluxcd.io`.
    pub fn resource(&self) -> &'static str {
        match self.tool {
            Tool::ArgoCd => "applications.argoproj.io",
            Tool::Flux => "helmreleases.helm.toolkit.fluxcd.io",
        }
    }
}

/// The tracker one object's labels and annotations name, if any: Flux's labels, else Argo CD's
/// tracking annotation, else its instance label.
pub fn tracker_of(meta: &ObjectMeta) -> Option<Tracker> {
    let label = |key: &str| meta.labels.as_ref()?.get(key).map(String::as_str).filter(|v| !v.is_empty());
    if let (Some(name), Some(namespace)) = (label(FLUX_NAME), label(FLUX_NAMESPACE)) {
        return Some(Tracker {
            tool: Tool::Flux,
            namespace: namespace.to_string(),
            name: name.to_string(),
            tracked_by: FLUX_NAME,
            namespace_given: true,
        });
    }
    let annotation = meta.annotations.as_ref().and_then(|a| a.get(ARGOCD_TRACKING_ID));
    if let Some((app, _)) = annotation.and_then(|id| id.split_once(':')) {
        let (namespace, name) = match app.split_once('_') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, app),
        };
        if !name.is_empty() {
            return Some(argo(namespace.filter(|n| !n.is_empty()), name, ARGOCD_TRACKING_ID));
        }
    }
    label(ARGOCD_INSTANCE).map(|name| argo(None, name, ARGOCD_INSTANCE))
}

fn argo(namespace: Option<&str>, name: &str, tracked_by: &'static str) -> Tracker {
    Tracker {
        tool: Tool::ArgoCd,
        namespace: namespace.unwrap_or(ARGOCD_DEFAULT_NAMESPACE).to_string(),
        name: name.to_string(),
        tracked_by,
        namespace_given: namespace.is_some(),
    }
}

/// The metadata of release `name`'s Milvus workloads and of its `Milvus` object, in `namespace` (any
/// with `None`), straight from the lists: what says who applies the release.
pub fn release_metas<'a>(
    inventory: &'a Inventory,
    namespace: Option<&str>,
    name: &str,
    name_label: &str,
) -> Vec<&'a ObjectMeta> {
    metas_where(inventory, name_label, |ns, instance| instance == name && namespace.is_none_or(|n| n == ns))
        .into_values()
        .flatten()
        .collect()
}

/// [`release_metas`] of every release at once, by (namespace, name), in one pass over the lists.
pub fn metas_by_release<'a>(
    inventory: &'a Inventory,
    name_label: &str,
) -> BTreeMap<(String, String), Vec<&'a ObjectMeta>> {
    metas_where(inventory, name_label, |_, _| true)
}

fn metas_where<'a>(
    inventory: &'a Inventory,
    name_label: &str,
    wanted: impl Fn(&str, &str) -> bool,
) -> BTreeMap<(String, String), Vec<&'a ObjectMeta>> {
    let mut metas: BTreeMap<(String, String), Vec<&ObjectMeta>> = BTreeMap::new();
    let workloads = inventory
        .deployments
        .iter()
        .filter_map(Workload::from_deployment)
        .chain(inventory.stateful_sets.iter().filter_map(Workload::from_stateful_set));
    for w in workloads {
        if let Class::Component { instance, .. } = labels::classify_workload(&w, name_label)
            && wanted(w.namespace, instance)
        {
            metas.entry((w.namespace.to_string(), instance.to_string())).or_default().push(w.meta);
        }
    }
    for m in &inventory.milvuses {
        if wanted(m.namespace(), m.name()) {
            metas.entry((m.namespace().to_string(), m.name().to_string())).or_default().push(&m.metadata);
        }
    }
    metas
}

/// The tracker of a release: the first object that names one (its `Milvus` object counts: Argo CD
/// may apply the object and leave the operator's Deployments alone).
pub fn tracker(metas: &[&ObjectMeta]) -> Option<Tracker> {
    metas.iter().find_map(|m| tracker_of(m))
}

/// A release whose workloads the chart labelled (`app.kubernetes.io/managed-by: Helm`).
pub fn chart_labelled(metas: &[&ObjectMeta]) -> bool {
    metas.iter().any(|m| {
        m.labels.as_ref().and_then(|l| l.get(labels::MANAGED_BY)).map(String::as_str) == Some(HELM_MANAGER)
    })
}

/// What Helm's record of the release says, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "record")]
pub enum HelmRecord {
    /// The deployed revision.
    Recorded { revision: i64 },
    /// No release Secret at all.
    None,
    /// The Secrets could not be read.
    Unreadable,
}

/// What the Milvus Operator is told about a `Milvus` object (operator source: `milvus_controller.go`,
/// `deploy_ctrl.go`, `deployment_updater.go`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorState {
    /// `milvus.io/pause-reconcile: "true"`: every reconcile of the object returns at once.
    pub reconcile_paused: bool,
    /// `spec.components.paused`: rollouts paused; components run as two Deployments are not scaled.
    pub components_paused: bool,
    /// Component keys with `spec.components.<key>.paused` (the same, for one component).
    pub paused_components: Vec<String>,
    /// `spec.components.enableManualMode`: replicas are not copied from the object to Deployments.
    pub manual_mode: bool,
}

impl OperatorState {
    pub fn of(milvus: &Milvus) -> OperatorState {
        let annotation = milvus.metadata.annotations.as_ref().and_then(|a| a.get(PAUSE_RECONCILE));
        let flag = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
        let entries = &milvus.spec.components.entries;
        OperatorState {
            reconcile_paused: annotation.map(String::as_str) == Some("true"),
            components_paused: flag(entries.get("paused")),
            paused_components: entries
                .iter()
                .filter(|(_, v)| v.is_object() && flag(v.get("paused")))
                .map(|(k, _)| k.clone())
                .collect(),
            manual_mode: flag(entries.get("enableManualMode")),
        }
    }

    /// `reconcile paused`, `components paused`, `querynode paused`, `manual mode`, joined.
    pub fn words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if self.reconcile_paused {
            words.push("reconcile paused".to_string());
        }
        if self.components_paused {
            words.push("components paused".to_string());
        }
        for key in &self.paused_components {
            words.push(format!("{key} paused"));
        }
        if self.manual_mode {
            words.push("manual mode".to_string());
        }
        words
    }
}

/// Who applies a release, innermost first: Helm or the operator, then GitOps.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerChain {
    /// The line `status` prints after `Owner:`.
    pub summary: String,
    /// The OWNER column of `list -o wide`.
    pub short: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmOwner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorOwner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitOps>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmOwner {
    pub release: String,
    /// `None` for `list`, which reads no Secrets.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub record: Option<HelmRecord>,
    /// No Helm record for a chart-labelled release: `helm template` rendered it.
    pub rendered_by_template: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorOwner {
    pub name: String,
    #[serde(flatten)]
    pub state: OperatorState,
}

/// The GitOps object that applies the release, and what it says when it could be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitOps {
    #[serde(flatten)]
    pub tracker: Tracker,
    /// `None` when not read (`list`); `readable: false` with `reason` when the read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

/// What an Application or HelmRelease says that matters to a replica count.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Details {
    ArgoCd(AppDetails),
    Flux(FluxDetails),
}

/// An Argo CD Application's (first) source and sync policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDetails {
    /// `spec.source`, or `spec.sources[0]`: where the source's fields are.
    pub source_field: String,
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
    pub chart: Option<String>,
    pub path: Option<String>,
    pub target_revision: Option<String>,
    pub auto_sync: bool,
    pub self_heal: bool,
    #[serde(skip)]
    helm: Option<Value>,
}

/// A Flux HelmRelease's state and values.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxDetails {
    pub suspend: bool,
    /// `spec.driftDetection.mode` (`enabled`, `warn`, `disabled`).
    pub drift_detection: Option<String>,
    #[serde(skip)]
    values: Value,
}

impl Details {
    /// What the object read for `tracker` says (any shape: missing fields are absent, never an error).
    pub fn from_value(tool: Tool, object: &Value) -> Details {
        let string = |v: &Value| v.as_str().map(str::to_string);
        match tool {
            Tool::ArgoCd => {
                let spec = &object["spec"];
                let (source_field, source) = match spec.get("source").filter(|s| s.is_object()) {
                    Some(source) => ("spec.source".to_string(), source),
                    None => ("spec.sources[0]".to_string(), &spec["sources"][0]),
                };
                let automated = spec["syncPolicy"].get("automated").filter(|a| a.is_object());
                Details::ArgoCd(AppDetails {
                    source_field,
                    repo_url: string(&source["repoURL"]),
                    chart: string(&source["chart"]),
                    path: string(&source["path"]),
                    target_revision: string(&source["targetRevision"]),
                    auto_sync: automated.is_some(),
                    self_heal: automated.and_then(|a| a["selfHeal"].as_bool()).unwrap_or(false),
                    helm: source.get("helm").filter(|h| h.is_object()).cloned(),
                })
            }
            Tool::Flux => Details::Flux(FluxDetails {
                suspend: object["spec"]["suspend"].as_bool().unwrap_or(false),
                drift_detection: string(&object["spec"]["driftDetection"]["mode"]),
                values: object["spec"]["values"].clone(),
            }),
        }
    }
}

fn lookup<'a>(values: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(values, |v, part| v.get(part)).filter(|v| !v.is_null())
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl AppDetails {
    /// `(auto-sync, self-heal)`, `(auto-sync)`, `(manual sync)`.
    pub fn policy(&self) -> &'static str {
        match (self.auto_sync, self.self_heal) {
            (true, true) => "auto-sync, self-heal",
            (true, false) => "auto-sync",
            _ => "manual sync",
        }
    }

    /// Where the Application keeps Helm value `key` and what it holds: `spec.source.helm.valuesObject`,
    /// `.parameters` or `.values`; `None` when none of them sets it.
    pub fn helm_value(&self, key: &str) -> Option<(String, String)> {
        let helm = self.helm.as_ref()?;
        let field = |name: &str| format!("{}.helm.{name}", self.source_field);
        if let Some(v) = lookup(&helm["valuesObject"], key) {
            return Some((field("valuesObject"), shown(v)));
        }
        let parameter = helm["parameters"].as_array().and_then(|ps| {
            ps.iter().find(|p| p["name"].as_str() == Some(key)).and_then(|p| p["value"].as_str())
        });
        if let Some(v) = parameter {
            return Some((field("parameters"), v.to_string()));
        }
        let values: Option<Value> =
            helm["values"].as_str().and_then(|text| serde_yaml::from_str::<Value>(text).ok());
        values.as_ref().and_then(|v| lookup(v, key)).map(|v| (field("values"), shown(v)))
    }

    /// The source, as `repo, chart milvus 5.0.19` or `repo, path deploy/milvus at main`.
    pub fn source(&self) -> String {
        let repo = self.repo_url.as_deref().unwrap_or("<no repoURL>");
        let revision = self.target_revision.as_deref().unwrap_or("HEAD");
        match (&self.chart, &self.path) {
            (Some(chart), _) => format!("{repo}, chart {chart} {revision}"),
            (None, Some(path)) => format!("{repo}, path {path} at {revision}"),
            (None, None) => format!("{repo} at {revision}"),
        }
    }
}

impl FluxDetails {
    pub fn value(&self, key: &str) -> Option<String> {
        lookup(&self.values, key).map(shown)
    }
}

impl OwnerChain {
    /// The chain of `release`: `metas` are its workloads' and `Milvus` object's metadata
    /// ([`release_metas`]), `helm` what its Helm record said (`None`: not read), `gitops` the tracker's
    /// read (`None`: not read; `Some(Err(reason))`: refused or failed).
    pub fn new(
        release: &Release,
        metas: &[&ObjectMeta],
        milvus: Option<&Milvus>,
        helm: Option<HelmRecord>,
        gitops: Option<Result<Details, String>>,
    ) -> OwnerChain {
        let tracker = tracker(metas);
        let gitops = tracker.map(|tracker| {
            let (readable, reason, details) = match gitops {
                None => (None, None, None),
                Some(Ok(details)) => (Some(true), None, Some(details)),
                Some(Err(reason)) => (Some(false), Some(reason), None),
            };
            GitOps { tracker, readable, reason, details }
        });
        let (helm_owner, operator) = match release.managed_by {
            super::ManagedBy::Helm { .. } => {
                let rendered_by_template = helm == Some(HelmRecord::None) && chart_labelled(metas);
                (Some(HelmOwner { release: release.name.clone(), record: helm, rendered_by_template }), None)
            }
            super::ManagedBy::Operator { .. } => (
                None,
                Some(OperatorOwner {
                    name: release.name.clone(),
                    state: milvus.map(OperatorState::of).unwrap_or_default(),
                }),
            ),
        };
        let mut chain =
            OwnerChain { summary: String::new(), short: String::new(), helm: helm_owner, operator, gitops };
        chain.summary = chain.summarize();
        chain.short = chain.shorten();
        chain
    }

    fn summarize(&self) -> String {
        let mut text = match (&self.helm, &self.operator) {
            (Some(helm), _) => match &helm.record {
                Some(HelmRecord::Recorded { revision }) => {
                    format!("Helm release {} rev {revision}", helm.release)
                }
                Some(HelmRecord::None) if helm.rendered_by_template => {
                    let who = if self.gitops.is_some() { "" } else { " (Argo CD or a pipeline?)" };
                    format!("no Helm record: rendered by helm template{who}")
                }
                Some(HelmRecord::None) => format!("Helm release {} (no Helm record)", helm.release),
                Some(HelmRecord::Unreadable) | None => format!("Helm release {}", helm.release),
            },
            (None, Some(operator)) => {
                let words = operator.state.words();
                if words.is_empty() {
                    format!("Milvus object {}", operator.name)
                } else {
                    format!("Milvus object {} ({})", operator.name, words.join(", "))
                }
            }
            (None, None) => String::new(),
        };
        if let Some(gitops) = &self.gitops {
            let verb = match gitops.tracker.tool {
                Tool::ArgoCd => "tracked by",
                Tool::Flux => "managed by",
            };
            let detail = match (&gitops.details, &gitops.reason) {
                (Some(Details::ArgoCd(app)), _) => format!(" ({})", app.policy()),
                (Some(Details::Flux(flux)), _) if flux.suspend => " (suspended)".to_string(),
                (Some(Details::Flux(_)), _) => String::new(),
                (None, Some(reason)) => format!(" (details not readable: {reason})"),
                (None, None) => String::new(),
            };
            text.push_str(&format!(", {verb} {}{detail}", gitops.tracker.describe()));
        }
        text
    }

    fn shorten(&self) -> String {
        if let Some(gitops) = &self.gitops {
            return gitops.tracker.short();
        }
        match &self.operator {
            Some(operator) if operator.state.reconcile_paused || operator.state.components_paused => {
                "operator(paused)".into()
            }
            Some(operator) if operator.state.manual_mode => "operator(manual)".into(),
            Some(operator) if !operator.state.paused_components.is_empty() => "operator(paused)".into(),
            Some(_) => "operator".into(),
            None => "helm".into(),
        }
    }
}

/// A change `scale` is about to write, as the owner checks need it.
#[derive(Debug, Clone)]
pub struct ScaleTarget<'a> {
    pub kind: &'a ComponentKind,
    /// `querynode`, `querynode[rg1]`.
    pub component: &'a str,
    /// The Helm value (`queryNode.replicas`) of a Helm release's component.
    pub helm_value: Option<&'a str>,
    pub to: i32,
}

/// What lets `scale` write despite an owner that would undo or ignore the change.
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// `--ignore-gitops`: write although Argo CD or Flux will set it back.
    pub ignore_gitops: bool,
    /// `--allow-paused`: write the `Milvus` object although the operator will not act on it yet.
    pub allow_paused: bool,
    /// `--wait`: it can never finish while the operator does not act.
    pub wait: bool,
}

/// Refusals (each a sentence, for [`crate::scale::plan::refusal_message`]) or the warnings to print
/// when scaling `targets` of `release`. `inventory` tells which operator components run as two
/// Deployments (the operator's pause stops scaling those only).
pub fn check_scale(
    release: &Release,
    inventory: &Inventory,
    chain: &OwnerChain,
    targets: &[ScaleTarget<'_>],
    overrides: Overrides,
) -> Result<Vec<String>, Vec<String>> {
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    if targets.is_empty() {
        return Ok(warnings);
    }
    if let Some(gitops) = &chain.gitops {
        let text = gitops_text(release, chain, gitops, targets);
        if overrides.ignore_gitops {
            warnings.push(format!("--ignore-gitops: {}", text.temporary));
        } else {
            refusals.push(format!("{} {}", text.refusal, text.instead));
        }
    } else if chain.helm.as_ref().is_some_and(|h| h.rendered_by_template) {
        warnings.push(format!(
            "no Helm record: {} was rendered by helm template (Argo CD or a pipeline?); whatever applies it \
             again sets the replicas back",
            release.name
        ));
    }
    if let Some(operator) = &chain.operator {
        let holds = operator_holds(release, inventory, operator, targets);
        if !holds.is_empty() {
            let holds = holds.join("; ");
            if overrides.wait {
                refusals.push(format!(
                    "--wait could never finish: {holds}. Resume the operator first, then scale with --wait"
                ));
            } else if overrides.allow_paused {
                warnings.push(format!(
                    "--allow-paused: {holds}. The Milvus object records the new replicas; nothing changes until \
                     that ends, and then the change applies at once"
                ));
            } else {
                refusals.push(format!(
                    "{holds}. Or pass --allow-paused to record the replicas in the Milvus object anyway: they \
                     apply, at once, whenever that ends"
                ));
            }
        }
    }
    if refusals.is_empty() { Ok(warnings) } else { Err(refusals) }
}

struct GitOpsText {
    refusal: String,
    instead: String,
    temporary: String,
}

fn gitops_text(
    release: &Release,
    chain: &OwnerChain,
    gitops: &GitOps,
    targets: &[ScaleTarget<'_>],
) -> GitOpsText {
    let who = gitops.tracker.describe();
    let operator = chain.operator.is_some();
    // The value to change, per target: the Helm value, or the Milvus object's field.
    let key = |t: &ScaleTarget<'_>| -> String {
        match (operator, t.helm_value, t.kind.operator_key()) {
            (true, _, Some(key)) => format!("spec.components.{key}.replicas"),
            (false, Some(value), _) => value.to_string(),
            _ => format!("the replicas of {}", t.component),
        }
    };
    let keys: Vec<String> = targets.iter().map(|t| format!("{}={}", key(t), t.to)).collect();
    let keys = keys.join(", ");
    match (&gitops.tracker.tool, &gitops.details) {
        (Tool::ArgoCd, details) => {
            let app = match details {
                Some(Details::ArgoCd(app)) => Some(app),
                _ => None,
            };
            let when = match app {
                Some(app) if app.self_heal => "at once (self-heal is on)",
                Some(app) if app.auto_sync => "at its next sync (auto-sync is on, self-heal off)",
                Some(_) => "at its next sync (manual sync)",
                None => "at its next sync",
            };
            let policy = app.map(|a| format!(" ({})", a.policy())).unwrap_or_default();
            let instead = match (app, gitops.reason.as_deref()) {
                (Some(app), _) => {
                    let places: Vec<String> = targets
                        .iter()
                        .map(|t| {
                            let k = key(t);
                            match (operator, app.helm_value(&k)) {
                                (false, Some((field, now))) => format!("{k} in {field} (now {now})"),
                                (false, None) if app.helm.is_some() || app.chart.is_some() => {
                                    format!(
                                        "{k} in {}.helm.valuesObject or the chart's values files",
                                        app.source_field
                                    )
                                }
                                _ => format!("{k} in the manifests"),
                            }
                        })
                        .collect();
                    format!(
                        "Change {} of the Application (source: {}), then let Argo CD sync; or pass --ignore-gitops \
                         to scale until Argo CD's next sync",
                        places.join(", "),
                        app.source()
                    )
                }
                (None, reason) => format!(
                    "Change {keys} wherever the Application's source keeps it (the Application could not be read: {}); \
                     or pass --ignore-gitops to scale until Argo CD's next sync",
                    reason.unwrap_or("not read")
                ),
            };
            GitOpsText {
                refusal: format!(
                    "{} is tracked by {who}{policy}: Argo CD sets the replicas back {when}.",
                    release.name
                ),
                instead,
                temporary: format!(
                    "{} is tracked by {who}{policy}: the change is temporary, Argo CD sets it back {when}",
                    release.name
                ),
            }
        }
        (Tool::Flux, details) => {
            let flux = match details {
                Some(Details::Flux(flux)) => Some(flux),
                _ => None,
            };
            let when = match flux {
                Some(f) if f.suspend => {
                    "when it is resumed (it is suspended now) and upgrades the release".to_string()
                }
                Some(f) if f.drift_detection.as_deref() == Some("enabled") => {
                    "at its next reconcile (drift detection is enabled)".to_string()
                }
                _ => "at its next upgrade of the release".to_string(),
            };
            let places: Vec<String> = targets
                .iter()
                .map(|t| {
                    let k = key(t);
                    let field = if operator { k.clone() } else { format!("spec.values.{k}") };
                    match flux.and_then(|f| (!operator).then(|| f.value(&k)).flatten()) {
                        Some(now) => format!("{field} (now {now})"),
                        None => field,
                    }
                })
                .collect();
            let unread = match gitops.reason.as_deref() {
                Some(reason) => format!(" (the HelmRelease could not be read: {reason})"),
                None => String::new(),
            };
            GitOpsText {
                refusal: format!("{} is managed by {who}: Flux sets the replicas back {when}.", release.name),
                instead: format!(
                    "Change {} of the HelmRelease{unread}, where Flux applies it from; or pass --ignore-gitops to \
                     scale until Flux sets it back",
                    places.join(", ")
                ),
                temporary: format!(
                    "{} is managed by {who}: the change is temporary, Flux sets it back {when}",
                    release.name
                ),
            }
        }
    }
}

/// Why the operator will not act on a change of `targets`, each with what to do.
fn operator_holds(
    release: &Release,
    inventory: &Inventory,
    operator: &OperatorOwner,
    targets: &[ScaleTarget<'_>],
) -> Vec<String> {
    let state = &operator.state;
    let (name, ns) = (&release.name, &release.namespace);
    let mut holds = Vec::new();
    if state.reconcile_paused {
        holds.push(format!(
            "the Milvus object {name} is annotated {PAUSE_RECONCILE}: \"true\": the operator does not reconcile \
             it, so no Deployment follows a new replicas value until it resumes \
             (kubectl annotate milvus {name} -n {ns} {PAUSE_RECONCILE}-)"
        ));
        return holds;
    }
    if state.manual_mode {
        let deployments: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let component = release.components.iter().find(|c| c.display_name == t.component)?;
                let deployment = component
                    .active_workload
                    .clone()
                    .or_else(|| component.workloads.first().map(|w| w.name.clone()))?;
                Some(format!("kubectl scale deployment/{deployment} -n {ns} --replicas={}", t.to))
            })
            .collect();
        holds.push(format!(
            "the Milvus object {name} is in manual mode (spec.components.enableManualMode: true): the operator no \
             longer copies replicas from it to the Deployments, and leaves their replicas alone. Scale the \
             Deployment itself ({}), or leave manual mode \
             (kubectl patch milvus {name} -n {ns} --type merge -p '{{\"spec\":{{\"components\":{{\"enableManualMode\":false}}}}}}')",
            deployments.join("; ")
        ));
        return holds;
    }
    for t in targets {
        let Some(key) = t.kind.operator_key() else { continue };
        let paused_here = state.paused_components.iter().any(|k| k == key);
        if !(state.components_paused || paused_here) || !two_deployments(release, inventory, t) {
            continue;
        }
        let field = if paused_here {
            format!("spec.components.{key}.paused")
        } else {
            "spec.components.paused".into()
        };
        let patch = if paused_here {
            format!("{{\"spec\":{{\"components\":{{\"{key}\":{{\"paused\":false}}}}}}}}")
        } else {
            "{\"spec\":{\"components\":{\"paused\":false}}}".to_string()
        };
        holds.push(format!(
            "{field} is true: the operator does not scale {} (it runs as two Deployments) until it is false \
             (kubectl patch milvus {name} -n {ns} --type merge -p '{patch}')",
            t.component
        ));
    }
    holds
}

/// The operator runs the component as two Deployments (`…-0`/`…-1`, labelled
/// `milvus.io/<component>-group-id`): there a paused component is not scaled. With one Deployment the
/// operator still writes its replicas (only rollouts pause), and Kubernetes scales a paused Deployment.
fn two_deployments(release: &Release, inventory: &Inventory, target: &ScaleTarget<'_>) -> bool {
    let label = format!("milvus.io/{}-group-id", target.kind.label());
    let Some(component) = release.components.iter().find(|c| c.display_name == target.component) else {
        return false;
    };
    inventory.deployments.iter().any(|d| {
        d.metadata.namespace.as_deref() == Some(release.namespace.as_str())
            && component.workloads.iter().any(|w| Some(w.name.as_str()) == d.metadata.name.as_deref())
            && d.metadata.labels.as_ref().is_some_and(|l: &BTreeMap<String, String>| l.contains_key(&label))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(value: Value) -> ObjectMeta {
        serde_json::from_value(value).expect("metadata")
    }

    #[test]
    fn trackers_from_labels_and_annotations() {
        let m = meta(json!({"annotations": {ARGOCD_TRACKING_ID: "milvus:apps/Deployment:default/qn"}}));
        let t = tracker_of(&m).expect("tracked");
        assert_eq!((t.tool, t.namespace.as_str(), t.name.as_str()), (Tool::ArgoCd, "argocd", "milvus"));
        assert_eq!(t.short(), "argocd:milvus");
        let m = meta(json!({"annotations": {ARGOCD_TRACKING_ID: "team_milvus:apps/Deployment:default/qn"}}));
        let t = tracker_of(&m).expect("tracked");
        assert_eq!((t.namespace.as_str(), t.short()), ("team", "argocd:team/milvus".to_string()));
        let m = meta(json!({"labels": {ARGOCD_INSTANCE: "vdb"}}));
        assert_eq!(tracker_of(&m).expect("tracked").tracked_by, ARGOCD_INSTANCE);
        let m = meta(json!({"labels": {FLUX_NAME: "milvus", FLUX_NAMESPACE: "flux-system"}}));
        assert_eq!(tracker_of(&m).expect("tracked").short(), "flux:flux-system/milvus");
        // The chart's own instance label, and broken values, track nothing.
        let m = meta(json!({"labels": {"app.kubernetes.io/instance": "my-release", FLUX_NAME: "x"},
            "annotations": {ARGOCD_TRACKING_ID: "no-colon"}}));
        assert_eq!(tracker_of(&m), None);
    }

    #[test]
    fn application_details_find_the_helm_value_wherever_it_is() {
        let app = json!({"spec": {"source": {"repoURL": "https://charts", "chart": "milvus", "targetRevision": "5.0.19",
            "helm": {"valuesObject": {"queryNode": {"replicas": 2}},
                     "parameters": [{"name": "dataNode.replicas", "value": "3"}],
                     "values": "proxy:\n  replicas: 4\n"}},
            "syncPolicy": {"automated": {"selfHeal": true}}}});
        let Details::ArgoCd(details) = Details::from_value(Tool::ArgoCd, &app) else { panic!("argo") };
        assert_eq!(details.policy(), "auto-sync, self-heal");
        assert_eq!(
            details.helm_value("queryNode.replicas"),
            Some(("spec.source.helm.valuesObject".into(), "2".into()))
        );
        assert_eq!(
            details.helm_value("dataNode.replicas"),
            Some(("spec.source.helm.parameters".into(), "3".into()))
        );
        assert_eq!(
            details.helm_value("proxy.replicas"),
            Some(("spec.source.helm.values".into(), "4".into()))
        );
        assert_eq!(details.helm_value("streamingNode.replicas"), None);
        let multi = json!({"spec": {"sources": [{"repoURL": "git", "path": "deploy"}], "syncPolicy": {"automated": {}}}});
        let Details::ArgoCd(details) = Details::from_value(Tool::ArgoCd, &multi) else { panic!("argo") };
        assert_eq!(
            (details.policy(), details.source()),
            ("auto-sync", "git, path deploy at HEAD".to_string())
        );
        // Nonsense is absent fields, not a panic.
        let Details::ArgoCd(details) = Details::from_value(Tool::ArgoCd, &json!({"spec": 3})) else {
            panic!()
        };
        assert_eq!(details.policy(), "manual sync");
    }

    #[test]
    fn operator_state_from_the_object() {
        let m = Milvus::from_value(json!({"metadata": {"name": "m", "annotations": {PAUSE_RECONCILE: "true"}},
            "spec": {"components": {"paused": true, "enableManualMode": true, "queryNode": {"paused": true}}}}))
        .expect("milvus");
        let state = OperatorState::of(&m);
        assert_eq!(
            state.words(),
            ["reconcile paused", "components paused", "queryNode paused", "manual mode"]
        );
        let m =
            Milvus::from_value(json!({"metadata": {"name": "m", "annotations": {PAUSE_RECONCILE: "false"}}}))
                .expect("milvus");
        assert_eq!(OperatorState::of(&m), OperatorState::default());
    }
}
