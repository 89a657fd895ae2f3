//! `kubectl milvus list`: every Milvus release in scope, Helm-installed or operator-managed.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use super::NameOverride;
use kubectl_milvus::client::read::{self, Kinds, Scope};
use kubectl_milvus::client::selector::{self, Selector};
use kubectl_milvus::client::{Kube, KubeFlags};
use kubectl_milvus::error::Error;
use kubectl_milvus::milvus::labels;
use kubectl_milvus::milvus::owners::{self, OwnerChain, Tracker};
use kubectl_milvus::milvus::{self, DiscoveryOptions, Health, ManagedBy, Release};
use kubectl_milvus::output::color::Tone;
use kubectl_milvus::output::{self, Cell, FormatChoice, SCHEMA_VERSION, Structured, Table};

pub const ABOUT: &str = "List Milvus releases (Helm and Milvus Operator) with their health";

pub const LONG_ABOUT: &str = "\
List the Milvus releases in the current namespace, or in every namespace with -A.

Releases installed with the Milvus Helm chart are found by their labels, and releases managed by the
Milvus Operator by their Milvus objects (milvuses.milvus.io). Each row shows how the release is managed,
its mode and Milvus version, how many components have all their replicas ready, and its health: the
worst health of its components and dependencies.";

pub const EXAMPLES: &str = "\
Examples:
  # Releases in the current namespace
  kubectl milvus list

  # Releases in every namespace, with chart versions and dependencies
  kubectl milvus list -A -o wide

  # Only releases whose workloads carry a label
  kubectl milvus list -A -l team=search

  # A chart installed with --set nameOverride=vectordb
  kubectl milvus list --name-override vectordb

  # Names only, for scripts
  kubectl milvus list -o name";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List releases in all namespaces.
    #[arg(short = 'A', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub all_namespaces: bool,

    /// Only releases whose Milvus workloads (or Milvus object) match this label selector (e.g. -l team=search).
    #[arg(short = 'l', long, value_name = "SELECTOR", value_parser = selector::parse)]
    pub selector: Option<Selector>,

    /// Output format: wide, json, yaml or name.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = output::parse_format::<Format>)]
    pub output: Option<Format>,

    #[command(flatten)]
    pub name: NameOverride,
}

/// `list -o`: a wider table, names only, or the structured printers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Wide,
    Name,
    Structured(Structured),
}

impl FormatChoice for Format {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("json", Format::Structured(Structured::Json)),
        ("name", Format::Name),
        ("wide", Format::Wide),
        ("yaml", Format::Structured(Structured::Yaml)),
    ];
}

/// One item of `list -o json|yaml` (the documented schema, `kubectl-milvus/v1` `ReleaseList`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSummary {
    pub namespace: String,
    pub name: String,
    pub managed_by: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_status: Option<String>,
    pub mode: &'static str,
    pub version: Option<String>,
    pub components: ReadyCount,
    pub status: Health,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub dependencies: Vec<DependencySummary>,
    pub created: Option<Timestamp>,
    /// Who applies the release, from its objects' labels and annotations: `helm`, `operator`,
    /// `operator(paused)`, `operator(manual)`, `argocd:APP`, `flux:NAMESPACE/NAME`.
    pub owner: String,
    /// The Argo CD Application or Flux HelmRelease named, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitops: Option<Tracker>,
}

#[derive(Debug, Serialize)]
pub struct ReadyCount {
    pub ready: usize,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct DependencySummary {
    pub name: String,
    pub ready: i32,
    pub desired: i32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseList {
    api_version: &'static str,
    kind: &'static str,
    items: Vec<ReleaseSummary>,
}

pub async fn run(flags: &KubeFlags, args: Args, out: &mut dyn Write) -> Result<(), Error> {
    let kube = Kube::connect(flags).await?;
    let scope =
        if args.all_namespaces { Scope::AllNamespaces } else { Scope::Namespace(kube.namespace.clone()) };
    // First the workloads and Milvus objects (few), to find the releases; then only their pods, so
    // that the pods of other applications are never read.
    let mut reading =
        read::read(&kube, &scope, Kinds { pods: false, hpas: false, milvuses: true, whole_owners: false })
            .await?;
    let options = DiscoveryOptions { name_label: args.name.label.clone(), now: Timestamp::now() };
    // Each release name, with the pods its workloads ask for (how the pod lists are split).
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for release in milvus::discover(&reading.inventory, &options) {
        let desired = release
            .components
            .iter()
            .map(|c| c.desired)
            .chain(release.dependencies.iter().map(|d| d.desired));
        let pods = desired.map(|n| u64::try_from(n).unwrap_or(0)).sum::<u64>();
        *expected.entry(release.name).or_default() += pods;
    }
    if !expected.is_empty() {
        let releases: Vec<(String, u64)> = expected.into_iter().collect();
        reading.inventory.pods = read::read_pods(&kube, &scope, &releases, &mut reading.notes).await?;
    }
    let mut releases = milvus::discover(&reading.inventory, &options);
    if let Some(selector) = &args.selector {
        releases.retain(|r| release_matches(r, &reading.inventory, selector, &args.name.label));
    }
    // Who applies each release, from the objects already read: no request per release.
    let metas = owners::metas_by_release(&reading.inventory, &args.name.label);
    let owners: Vec<OwnerChain> = releases
        .iter()
        .map(|r| {
            let key = (r.namespace.clone(), r.name.clone());
            let metas = metas.get(&key).map(Vec::as_slice).unwrap_or_default();
            let milvus = reading
                .inventory
                .milvuses
                .iter()
                .find(|m| m.namespace() == r.namespace && m.name() == r.name);
            OwnerChain::new(r, metas, milvus, None, None)
        })
        .collect();
    match args.output {
        Some(Format::Structured(format)) => {
            let list = ReleaseList {
                api_version: SCHEMA_VERSION,
                kind: "ReleaseList",
                items: releases.iter().zip(&owners).map(|(r, o)| summarize(r, o)).collect(),
            };
            output::write_structured(out, format, &list)?;
        }
        Some(Format::Name) => {
            for release in &releases {
                writeln!(out, "milvus/{}", release.name)?;
            }
        }
        None | Some(Format::Wide) => {
            if releases.is_empty() {
                match &scope {
                    Scope::Namespace(ns) => eprintln!("No Milvus releases found in {ns} namespace."),
                    Scope::AllNamespaces => eprintln!("No Milvus releases found."),
                }
            } else {
                table(
                    &releases,
                    &owners,
                    args.all_namespaces,
                    args.output == Some(Format::Wide),
                    options.now,
                )
                .write(out)?;
            }
        }
    }
    super::print_notes(&reading.notes);
    Ok(())
}

/// A release matches `-l` when its Milvus object or any of its Milvus workloads carries matching labels.
fn release_matches(
    release: &Release,
    inventory: &milvus::Inventory,
    selector: &Selector,
    name_label: &str,
) -> bool {
    let labels_match = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        let empty = BTreeMap::new();
        let labels = meta.labels.as_ref().unwrap_or(&empty);
        meta.namespace.as_deref() == Some(release.namespace.as_str())
            && labels.get(labels::INSTANCE).map(String::as_str) == Some(release.name.as_str())
            && labels.get(labels::NAME).map(String::as_str) == Some(name_label)
            && selector.matches(labels)
    };
    let workload_matches = inventory.deployments.iter().any(|d| labels_match(&d.metadata))
        || inventory.stateful_sets.iter().any(|s| labels_match(&s.metadata));
    let cr_matches = inventory.milvuses.iter().any(|cr| {
        cr.namespace() == release.namespace && cr.name() == release.name && selector.matches(cr.labels())
    });
    workload_matches || cr_matches
}

pub fn summarize(release: &Release, owner: &OwnerChain) -> ReleaseSummary {
    let (ready, total) = release.components_ready();
    let (chart, operator_status) = match &release.managed_by {
        ManagedBy::Helm { chart } => (chart.clone(), None),
        ManagedBy::Operator { status, .. } => (None, status.clone()),
    };
    ReleaseSummary {
        namespace: release.namespace.clone(),
        name: release.name.clone(),
        managed_by: release.managed_by.short(),
        chart,
        operator_status,
        mode: release.mode.as_str(),
        version: release.version.clone(),
        components: ReadyCount { ready, total },
        status: release.health,
        reason: release.health_reason.clone(),
        dependencies: dependency_summary(release),
        created: release.created,
        owner: owner.short.clone(),
        gitops: owner.gitops.as_ref().map(|g| g.tracker.clone()),
    }
}

/// Dependencies folded by kind (`pulsarv3` sums its five parts).
fn dependency_summary(release: &Release) -> Vec<DependencySummary> {
    let mut folded: Vec<DependencySummary> = Vec::new();
    for dependency in &release.dependencies {
        let name = dependency.kind.to_string();
        match folded.iter_mut().find(|d| d.name == name) {
            Some(entry) => {
                entry.ready += dependency.ready;
                entry.desired += dependency.desired;
            }
            None => {
                folded.push(DependencySummary { name, ready: dependency.ready, desired: dependency.desired })
            }
        }
    }
    folded
}

pub fn health_tone(health: Health) -> Tone {
    match health {
        Health::Healthy => Tone::Good,
        Health::Progressing => Tone::Warn,
        Health::Degraded => Tone::Warn,
        Health::Unavailable => Tone::Bad,
        Health::Stopped => Tone::Dim,
    }
}

fn table(
    releases: &[Release],
    owners: &[OwnerChain],
    all_namespaces: bool,
    wide: bool,
    now: Timestamp,
) -> Table {
    let mut headers = Vec::new();
    if all_namespaces {
        headers.push("NAMESPACE");
    }
    headers.extend(["NAME", "MANAGED-BY", "MODE", "VERSION", "COMPONENTS", "STATUS", "AGE"]);
    if wide {
        headers.extend(["OWNER", "CHART", "DEPENDENCIES"]);
    }
    let mut table = Table::new(headers);
    for (release, owner) in releases.iter().zip(owners) {
        let summary = summarize(release, owner);
        let mut row = Vec::new();
        if all_namespaces {
            row.push(Cell::new(&release.namespace));
        }
        let components_tone =
            if summary.components.ready < summary.components.total { Tone::Bad } else { Tone::Plain };
        row.extend([
            Cell::new(&release.name),
            Cell::new(summary.managed_by),
            Cell::new(summary.mode),
            Cell::new(summary.version.as_deref().unwrap_or("<unknown>")),
            Cell::toned(
                format!("{}/{}", summary.components.ready, summary.components.total),
                components_tone,
            ),
            Cell::toned(release.health.to_string(), health_tone(release.health)),
            Cell::new(output::age(release.created, now)),
        ]);
        if wide {
            row.push(Cell::new(&summary.owner));
            let chart = summary
                .chart
                .clone()
                .or_else(|| summary.operator_status.as_ref().map(|s| format!("operator ({s})")));
            row.push(Cell::new(chart.unwrap_or_else(|| "<none>".into())));
            let dependencies: Vec<String> = summary
                .dependencies
                .iter()
                .map(|d| format!("{} {}/{}", d.name, d.ready, d.desired))
                .collect();
            row.push(Cell::new(if dependencies.is_empty() {
                "<none>".to_string()
            } else {
                dependencies.join(", ")
            }));
        }
        table.push(row);
    }
    table
}
