//! What a scale run shows: the plan table, kubectl's result lines, Helm's copy of the values, and the
//! `ScaleResult` of `-o json|yaml` (schema `kubectl-milvus/v1`).

use std::io::Write;

use serde::Serialize;

use super::engine::ChangeResult;
use super::helm_record::RecordNote;
use super::owner::{DryRun, Owner};
use super::plan::PlannedChange;
use crate::helm::{self, HelmRelease};
use crate::milvus::{ManagedBy, Release};
use crate::output::color::Tone;
use crate::output::{Cell, SCHEMA_VERSION, Table};

/// `scale -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleResult<'a> {
    api_version: &'static str,
    kind: &'static str,
    release: &'a str,
    namespace: &'a str,
    managed_by: &'static str,
    dry_run: DryRun,
    changes: &'a [ChangeResult],
    #[serde(skip_serializing_if = "Option::is_none")]
    helm: Option<&'a HelmNote>,
    warnings: &'a [String],
}

impl<'a> ScaleResult<'a> {
    pub fn new(
        release: &'a Release,
        dry_run: DryRun,
        changes: &'a [ChangeResult],
        helm: Option<&'a HelmNote>,
        warnings: &'a [String],
    ) -> Self {
        ScaleResult {
            api_version: SCHEMA_VERSION,
            kind: "ScaleResult",
            release: &release.name,
            namespace: &release.namespace,
            managed_by: release.managed_by.short(),
            dry_run,
            changes,
            helm,
            warnings,
        }
    }
}

/// What the Helm release records for the changed values, and the command that makes the change
/// permanent.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmNote {
    /// What the release records for each changed value, when it could be read.
    pub recorded: Vec<(String, Option<i64>)>,
    /// The command that makes the new values permanent.
    pub command: String,
    pub readable: bool,
    /// Helm applies the changed workloads server-side (Helm 4's default): the next `helm upgrade`
    /// fails with a field conflict on `spec.replicas` instead of setting the recorded value back.
    pub server_side_apply: bool,
    /// The new revision of Helm's record that carries the change, when one is planned or written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordNote>,
}

impl HelmNote {
    /// The note for a Helm release's changes; `None` for an operator release, or when every changed value
    /// is what the release already records.
    pub fn new(
        release: &Release,
        changes: &[PlannedChange],
        record: &Result<Option<HelmRelease>, String>,
    ) -> Option<HelmNote> {
        if !matches!(release.managed_by, ManagedBy::Helm { .. }) {
            return None;
        }
        let recorded = |key: &str| match record {
            Ok(Some(helm)) => helm.recorded_replicas(key),
            _ => None,
        };
        let settings: Vec<(String, i32)> = changes
            .iter()
            .filter(|c| c.is_change())
            .filter_map(|c| c.helm_value.clone().map(|v| (v, c.to)))
            .filter(|(key, to)| recorded(key) != Some(i64::from(*to)))
            .collect();
        if settings.is_empty() {
            return None;
        }
        let keys = settings.iter().map(|(key, _)| key.clone());
        let server_side_apply = changes.iter().any(|c| c.is_change() && c.helm_applies_server_side);
        Some(match record {
            Ok(Some(helm)) => HelmNote {
                recorded: keys.map(|key| (key.clone(), helm.recorded_replicas(&key))).collect(),
                command: helm.upgrade_command(&release.name, &release.namespace, &settings),
                readable: true,
                server_side_apply,
                record: None,
            },
            _ => {
                let sets: Vec<String> = settings.iter().map(|(k, v)| format!("--set {k}={v}")).collect();
                HelmNote {
                    recorded: keys.map(|key| (key, None)).collect(),
                    command: format!(
                        "helm upgrade {} milvus/milvus -n {} --reuse-values {}",
                        release.name,
                        release.namespace,
                        sets.join(" ")
                    ),
                    readable: false,
                    server_side_apply,
                    record: None,
                }
            }
        })
    }

    /// Whether the user has a command to run: the record does not take the change.
    pub fn needs_upgrade(&self) -> bool {
        !self.record.as_ref().is_some_and(RecordNote::takes_the_change)
    }

    /// What Helm will set back at the next `helm upgrade`, one warning per value (none when the
    /// record takes the change).
    pub fn warnings(&self, release: &str) -> Vec<String> {
        if !self.needs_upgrade() {
            return Vec::new();
        }
        let next = helm::next_upgrade(self.server_side_apply);
        self
            .recorded
            .iter()
            .filter_map(|(key, recorded)| match recorded {
                Some(value) => Some(format!(
                    "the Helm release {release} still records {key}={value}: the next `helm upgrade` of this release {next}."
                )),
                None if self.readable => Some(format!(
                    "the Helm release {release} records no {key}: the next `helm upgrade` of this release sets the chart default back."
                )),
                None => None,
            })
            .collect()
    }
}

/// The plan: a heading naming the release, and the table.
pub fn write_plan(
    out: &mut dyn Write,
    release: &Release,
    changes: &[PlannedChange],
    dry_run: DryRun,
) -> std::io::Result<()> {
    write_heading(out, release, dry_run)?;
    plan_table(changes).write(out)?;
    writeln!(out)
}

/// `Plan for my-release (helm, namespace default):` (`Plan (dry run) …` for a dry run).
pub fn write_heading(out: &mut dyn Write, release: &Release, dry_run: DryRun) -> std::io::Result<()> {
    let heading = if dry_run == DryRun::None { "Plan" } else { "Plan (dry run)" };
    let (name, managed_by, namespace) = (&release.name, release.managed_by.short(), &release.namespace);
    writeln!(out, "{heading} for {name} ({managed_by}, namespace {namespace}):")
}

/// The plan as a table: component, current and target replicas, the steps, and the owner's field.
pub fn plan_table(changes: &[PlannedChange]) -> Table {
    let mut table = Table::new(["COMPONENT", "CURRENT", "TARGET", "STEPS", "OBJECT"]);
    for change in changes {
        let steps = if change.is_change() {
            std::iter::once(change.from)
                .chain(change.steps.iter().copied())
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" → ")
        } else {
            "unchanged".into()
        };
        table.push(vec![
            Cell::new(&change.component),
            Cell::new(change.from.to_string()),
            Cell::toned(change.to.to_string(), if change.is_change() { Tone::Bold } else { Tone::Plain }),
            Cell::new(steps),
            Cell::new(format!("{} ({})", change.owner.reference(), change.owner.field())),
        ]);
    }
    table
}

/// kubectl's result line: `deployment.apps/x scaled (1 → 3)`, `milvus.milvus.io/x patched (queryNode.replicas 1 → 3)`.
pub fn result_line(owner: &Owner, from: i32, to: i32) -> String {
    match owner {
        Owner::Deployment { .. } => format!("{} scaled ({from} → {to})", owner.reference()),
        Owner::Milvus { .. } => format!("{} patched ({} {from} → {to})", owner.reference(), owner.field()),
    }
}
