//! `kubectl milvus scale RELEASE COMPONENT=N…`: change worker replicas through the object that owns them.

use std::io::Write;
use std::time::Duration;

use owo_colors::{OwoColorize, Stream};
use serde::Serialize;
use tokio::time::Instant;

use super::NameOverride;
use super::list::SCHEMA_VERSION;
use super::release::{self, Found};
use crate::client::{Kube, KubeFlags};
use crate::error::{Error, exit};
use crate::milvus::{ManagedBy, Release};
use crate::output::color::Tone;
use crate::output::{self, Cell, OutputFormat, Table, diff};
use crate::scale::apply::{self, DryRun};
use crate::scale::helm::{self, HelmRelease};
use crate::scale::plan::{self, PlanOptions, PlannedChange};
use crate::scale::target::{self, Change, Target};
use crate::scale::wait::{self, Interrupt, Outcome, Progress, Waiter, Watched};

pub const EXAMPLES: &str = "\
Examples:
  # Preview: the plan and a kubectl-diff of every object that would change, nothing sent
  kubectl milvus scale my-release querynode=3 --dry-run

  # Let the API server validate the change without storing it
  kubectl milvus scale my-release querynode=3 --dry-run=server

  # Scale query nodes to 3 and wait until they are ready
  kubectl milvus scale my-release querynode=3 --wait

  # Relative changes, several components at once
  kubectl milvus scale my-release querynode=+2 datanode=-1

  # kubectl's form
  kubectl milvus scale my-release querynode --replicas=3

  # A resource group (Helm replicaResourceGroups) or operator deployment group
  kubectl milvus scale my-release 'querynode[rg1]=4'

  # Scale in from 5 to 2 two replicas at a time instead of one
  kubectl milvus scale my-release datanode=2 --step 2";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release: the Helm release name or the Milvus object name.
    #[arg(value_name = "RELEASE")]
    pub release: String,

    /// COMPONENT=N (absolute), COMPONENT=+N / COMPONENT=-N (relative), COMPONENT[GROUP]=N for a group;
    /// or one COMPONENT with --replicas.
    #[arg(value_name = "COMPONENT=REPLICAS", required = true)]
    pub targets: Vec<String>,

    /// The new number of replicas for the one COMPONENT named (kubectl scale's form; +N/-N are relative).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub replicas: Option<String>,

    /// none (apply), client (print the plan and diff, send nothing) or server (validate with dryRun=All).
    /// A bare --dry-run means client.
    #[arg(long, value_enum, value_name = "STRATEGY", num_args = 0..=1, default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,

    /// Wait until every changed component has all its replicas ready and updated.
    #[arg(long)]
    pub wait: bool,

    /// How long to wait (with --wait, and between gentle scale-in steps) before giving up.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Scale in at most this many replicas at a time, waiting for the component to be healthy between
    /// steps, as the Milvus documentation recommends. 0 scales in one change.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub step: u32,

    /// Allow scaling a worker to 0, which makes the release unavailable.
    #[arg(long)]
    pub allow_zero: bool,

    /// Output format for the plan and result: json or yaml.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = output::parse_output_format)]
    pub output: Option<OutputFormat>,

    #[command(flatten)]
    pub name: NameOverride,
}

/// `scale -o json|yaml` (schema `kubectl-milvus/v1` `ScaleResult`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ScaleResult {
    api_version: &'static str,
    kind: &'static str,
    release: String,
    namespace: String,
    managed_by: &'static str,
    dry_run: DryRun,
    changes: Vec<ChangeResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    helm: Option<HelmNote>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeResult {
    #[serde(flatten)]
    plan: PlannedChange,
    /// The values written, in order (empty for a dry run or no change).
    applied: Vec<i32>,
    /// planned | unchanged | scaled | failed | interrupted
    status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    diff: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct HelmNote {
    /// What the release records for each changed value, when it could be read.
    recorded: Vec<(String, Option<i64>)>,
    /// The command that makes the new values permanent.
    command: String,
    readable: bool,
}

/// Everything a run needs, so that the steps below stay short.
struct Session<'a> {
    kube: &'a Kube,
    args: &'a Args,
    namespace: String,
    structured: bool,
    interrupt: Interrupt,
    deadline: Instant,
}

pub async fn run(flags: &KubeFlags, args: Args, out: &mut dyn Write) -> Result<(), Error> {
    let targets = parse_targets(&args)?;
    if let Some(format) = args.output
        && !format.is_structured()
    {
        return Err(Error::Usage("--output must be 'yaml' or 'json' for scale".into()));
    }
    if bare_dry_run() {
        eprintln!("Warning: --dry-run is deprecated and can be replaced with --dry-run=client.");
    }
    let kube = Kube::connect(flags).await?;
    let lookup = release::Lookup { name: &args.release, all_namespaces: false, name_label: &args.name.label };
    // The release and its Helm record are independent: read them concurrently.
    let (found, helm_record) = futures::join!(
        release::find(&kube, &lookup),
        helm::read_deployed(&kube, &kube.namespace, &args.release)
    );
    let found = found?;
    let release = &found.release;
    let options =
        PlanOptions { allow_zero: args.allow_zero, step: i32::try_from(args.step).unwrap_or(i32::MAX) };
    let changes = plan::plan(release, found.milvus_object(), &targets, options)
        .map_err(|refusals| refused(release, &refusals))?;

    let session = Session {
        kube: &kube,
        args: &args,
        namespace: release.namespace.clone(),
        structured: args.output.is_some(),
        interrupt: Interrupt::install(),
        deadline: Instant::now() + args.timeout,
    };
    let mut warnings: Vec<String> = found.notes.iter().map(|n| n.message.clone()).collect();
    let helm = helm_note(release, &changes, &helm_record);
    if let (ManagedBy::Helm { .. }, Err(why)) = (&release.managed_by, &helm_record) {
        warnings.push(format!("the replicas recorded in the Helm release could not be checked: {why}"));
    }
    if !session.structured {
        print_plan(release, &changes, args.dry_run, out)?;
    }

    let mut results: Vec<ChangeResult> = changes
        .iter()
        .map(|c| ChangeResult {
            plan: c.clone(),
            applied: Vec::new(),
            status: if c.is_change() { "planned" } else { "unchanged" },
            diff: String::new(),
        })
        .collect();
    let outcome = match args.dry_run {
        DryRun::None => session.apply(&found, &mut results, out).await,
        DryRun::Client | DryRun::Server => session.preview(&mut results, out).await,
    };

    let changed_any = results.iter().any(|r| r.status == "scaled");
    let result = ScaleResult {
        api_version: SCHEMA_VERSION,
        kind: "ScaleResult",
        release: release.name.clone(),
        namespace: release.namespace.clone(),
        managed_by: release.managed_by.short(),
        dry_run: args.dry_run,
        changes: results,
        helm: helm.clone(),
        warnings: warnings.clone(),
    };
    if let Some(format) = args.output {
        output::write_structured(out, format, &result)?;
    } else if let Some(helm) = &helm
        && (changed_any || args.dry_run != DryRun::None)
    {
        print_helm_note(release, helm);
    }
    for warning in &warnings {
        eprintln!("{} {warning}", "Warning:".if_supports_color(Stream::Stderr, |t| t.yellow()));
    }
    outcome
}

impl Session<'_> {
    /// `--dry-run=client|server`: the diff of every object that would change, and kubectl's result lines.
    async fn preview(&self, results: &mut [ChangeResult], out: &mut dyn Write) -> Result<(), Error> {
        let server = self.args.dry_run == DryRun::Server;
        for result in results.iter_mut().filter(|r| r.plan.is_change()) {
            let change = &result.plan;
            let live =
                apply::get(self.kube, &self.namespace, &change.owner).await.map_err(|e| self.api_error(e))?;
            let body = apply::patch_body(&change.owner, &live, change.to);
            let merged = if server {
                apply::patch(self.kube, &self.namespace, &change.owner, &body, true)
                    .await
                    .map_err(|e| self.api_error(e))?
            } else {
                let mut merged = live.clone();
                apply::merge(&mut merged, &body);
                merged
            };
            result.diff = diff::unified(&live, &merged);
            if !self.structured {
                write!(out, "{}", diff::paint(&result.diff))?;
            }
        }
        if !self.structured {
            for result in results.iter().filter(|r| r.plan.is_change()) {
                writeln!(
                    out,
                    "{}{}",
                    result_line(&result.plan, result.plan.from, result.plan.to),
                    self.args.dry_run.suffix()
                )?;
            }
        }
        Ok(())
    }

    /// Applies each change step by step, in the plan's order; stops at the first failure or at Ctrl-C and
    /// reports exactly what changed and what did not.
    async fn apply(
        &self,
        found: &Found,
        results: &mut [ChangeResult],
        out: &mut dyn Write,
    ) -> Result<(), Error> {
        let waiter = Waiter {
            kube: self.kube,
            namespace: &self.namespace,
            release: &found.release.name,
            name_label: &self.args.name.label,
            operator: matches!(found.release.managed_by, ManagedBy::Operator { .. }),
            interrupt: &self.interrupt,
        };
        let mut progress = Progress::new(self.structured);
        for index in 0..results.len() {
            if !results[index].plan.is_change() {
                continue;
            }
            if let Err(error) = self.apply_change(&waiter, &mut results[index], &mut progress, out).await {
                let report = report(results);
                return Err(match error {
                    Error::Exit(code) => {
                        if !self.structured {
                            eprintln!("{report}");
                        }
                        Error::Exit(code)
                    }
                    other => Error::Failed(format!("{other}\n{report}")),
                });
            }
        }
        if self.args.wait {
            let watched: Vec<Watched> = results
                .iter()
                .filter(|r| r.status == "scaled")
                .map(|r| Watched { component: r.plan.component.clone(), target: r.plan.to })
                .collect();
            if !watched.is_empty() {
                match waiter.until_ready(&watched, self.deadline, &mut progress).await? {
                    Outcome::Ready => {
                        if !self.structured {
                            for w in &watched {
                                writeln!(
                                    out,
                                    "{}: {} of {} replicas ready",
                                    w.component, w.target, w.target
                                )?;
                            }
                        }
                    }
                    Outcome::TimedOut(release) => {
                        return Err(self.timed_out(release.as_ref(), &watched, out));
                    }
                    Outcome::Interrupted(release) => return Err(self.interrupted(release.as_ref(), results)),
                }
            }
        }
        Ok(())
    }

    /// One component: each step re-reads the owner, patches with its resourceVersion, and (between
    /// scale-in steps) waits for the component to be healthy.
    async fn apply_change(
        &self,
        waiter: &Waiter<'_>,
        result: &mut ChangeResult,
        progress: &mut Progress,
        out: &mut dyn Write,
    ) -> Result<(), Error> {
        let mut expected = result.plan.from;
        let mut index = 0;
        while index < result.plan.steps.len() {
            if self.interrupt.is_set() {
                return Err(self.interrupted(None, std::slice::from_ref(result)));
            }
            let value = result.plan.steps[index];
            match self.write_step(result, expected, value, out).await {
                Ok(()) => {}
                Err(StepError::Replanned { current }) => {
                    // Someone else changed the replicas: continue from what is there now.
                    expected = current;
                    index = 0;
                    continue;
                }
                Err(StepError::Failed(error)) => return Err(error),
            }
            result.applied.push(value);
            result.status = "scaled";
            expected = value;
            index += 1;
            if index < result.plan.steps.len() {
                let watched = [Watched { component: result.plan.component.clone(), target: value }];
                match waiter.until_ready(&watched, self.deadline, progress).await? {
                    Outcome::Ready => {}
                    Outcome::TimedOut(release) => {
                        return Err(self.timed_out(release.as_ref(), &watched, out));
                    }
                    Outcome::Interrupted(release) => {
                        return Err(self.interrupted(release.as_ref(), std::slice::from_ref(result)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes one value. The owner is read first: if its replicas are no longer what the plan expected,
    /// the change is re-planned from the new value and the user is told. A 409 Conflict (the object
    /// changed between this read and the write) is retried from a fresh read, at most 3 times.
    async fn write_step(
        &self,
        result: &mut ChangeResult,
        expected: i32,
        value: i32,
        out: &mut dyn Write,
    ) -> Result<(), StepError> {
        const ATTEMPTS: u32 = 3;
        let owner = result.plan.owner.clone();
        for attempt in 1..=ATTEMPTS {
            let live = apply::get(self.kube, &self.namespace, &owner)
                .await
                .map_err(|e| StepError::Failed(self.api_error(e)))?;
            let current = apply::current(&owner, &live).ok_or_else(|| {
                StepError::Failed(Error::Failed(format!(
                    "{} has no readable {}",
                    owner.reference(),
                    owner.field()
                )))
            })?;
            if current != expected {
                return Err(self.replan(result, expected, current));
            }
            let body = apply::patch_body(&owner, &live, value);
            match apply::patch(self.kube, &self.namespace, &owner, &body, false).await {
                Ok(_) => {
                    if !self.structured {
                        writeln!(out, "{}", result_line(&result.plan, current, value))
                            .map_err(|e| StepError::Failed(e.into()))?;
                    }
                    return Ok(());
                }
                Err(error) if apply::is_conflict(&error) && attempt < ATTEMPTS => {
                    eprintln!(
                        "{} changed between reading and writing it (409 Conflict): reading it again",
                        owner.reference()
                    );
                }
                Err(error) => return Err(StepError::Failed(self.api_error(error))),
            }
        }
        Err(StepError::Failed(Error::Failed(format!(
            "{} kept changing; nothing more was written",
            owner.reference()
        ))))
    }

    /// Re-plans a change whose owner now holds `current` replicas instead of the expected value.
    fn replan(&self, result: &mut ChangeResult, expected: i32, current: i32) -> StepError {
        let plan = &mut result.plan;
        let to = match plan.change {
            // A relative change applies to what is there, as long as nothing was written yet.
            Change::By(delta) if result.applied.is_empty() => current.saturating_add(delta),
            _ => plan.to,
        };
        if to < 0 || (to == 0 && current > 0 && plan.kind.is_essential() && !self.args.allow_zero) {
            return StepError::Failed(Error::Failed(format!(
                "{} changed to {current} replicas since it was read; {} from there would give {to}: nothing more was written",
                plan.owner.reference(),
                plan.component
            )));
        }
        eprintln!(
            "{} changed since it was read: {} is {current}, not {expected}. Re-planned {}: {current} → {to}",
            plan.owner.reference(),
            plan.owner.field(),
            plan.component,
        );
        if result.applied.is_empty() {
            plan.from = current;
        }
        plan.to = to;
        plan.steps = plan::steps(current, to, i32::try_from(self.args.step).unwrap_or(i32::MAX));
        if plan.steps.is_empty() && result.applied.is_empty() {
            result.status = "unchanged";
        }
        StepError::Replanned { current }
    }

    fn api_error(&self, error: kube::Error) -> Error {
        Error::api(error, &self.kube.server)
    }

    fn timed_out(&self, release: Option<&Release>, watched: &[Watched], out: &mut dyn Write) -> Error {
        let mut lines =
            vec![format!("timed out after {} waiting for", humantime::format_duration(self.args.timeout))];
        if let Some(release) = release {
            for w in watched {
                lines.push(format!("  {}", wait::describe(release, &w.component, w.target)));
            }
            let problems: Vec<_> =
                watched.iter().flat_map(|w| wait::problems(release, &w.component)).collect();
            if !problems.is_empty() && !self.structured {
                let mut table = Table::new(["POD", "OWNER", "REASON"]);
                for p in problems {
                    table.push(vec![
                        Cell::new(&p.pod),
                        Cell::new(&p.owner),
                        Cell::toned(&p.reason, Tone::Bad),
                    ]);
                }
                let _ = writeln!(out, "\nProblems");
                let _ = table.write(out);
            }
        }
        Error::Failed(lines.join("\n"))
    }

    fn interrupted(&self, release: Option<&Release>, results: &[ChangeResult]) -> Error {
        let mut lines = vec!["interrupted: stopped after the current step".to_string()];
        for r in results.iter().filter(|r| r.plan.is_change()) {
            let now = release
                .and_then(|rel| wait::component(rel, &r.plan.component))
                .map(|c| format!(" (now {} desired, {} ready)", c.desired, c.ready))
                .unwrap_or_default();
            let done = r.applied.last().copied();
            lines.push(match done {
                Some(last) if last == r.plan.to => {
                    format!("  {}: scaled {} → {}{now}", r.plan.component, r.plan.from, r.plan.to)
                }
                Some(last) => format!(
                    "  {}: at {last} of the way {} → {}{now}; run the same command again to continue",
                    r.plan.component, r.plan.from, r.plan.to
                ),
                None => format!("  {}: not changed ({}){now}", r.plan.component, r.plan.from),
            });
        }
        eprintln!("{}", lines.join("\n"));
        Error::Exit(exit::INTERRUPTED)
    }
}

/// Why a step did not write its value.
enum StepError {
    /// The owner held `current` replicas, not the expected value: the steps were re-planned from there.
    Replanned {
        current: i32,
    },
    Failed(Error),
}

/// `querynode=3 datanode=-1`, or `querynode --replicas=3`.
fn parse_targets(args: &Args) -> Result<Vec<Target>, Error> {
    match &args.replicas {
        Some(replicas) => {
            let [component] = args.targets.as_slice() else {
                return Err(Error::Usage(
                    "--replicas takes exactly one COMPONENT (e.g. scale my-release querynode --replicas=3)"
                        .into(),
                ));
            };
            if component.contains('=') {
                return Err(Error::Usage(format!("give either {component} or --replicas, not both")));
            }
            let (component, group) = target::parse_component(component).map_err(Error::Usage)?;
            let change = target::parse_change(replicas)
                .map_err(|e| Error::Usage(format!("invalid --replicas: {e}")))?;
            Ok(vec![Target { component, group, change }])
        }
        None => {
            let (targets, errors): (Vec<_>, Vec<_>) =
                args.targets.iter().map(|t| target::parse_assignment(t)).partition(Result::is_ok);
            let errors: Vec<String> = errors.into_iter().filter_map(Result::err).collect();
            if !errors.is_empty() {
                return Err(Error::Usage(errors.join("\nerror: ")));
            }
            Ok(targets.into_iter().filter_map(Result::ok).collect())
        }
    }
}

fn bare_dry_run() -> bool {
    std::env::args().any(|a| a == "--dry-run")
}

fn refused(release: &Release, refusals: &[String]) -> Error {
    let mut message = format!("cannot scale {}:", release.name);
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
    Error::Failed(message)
}

fn helm_note(
    release: &Release,
    changes: &[PlannedChange],
    record: &Result<Option<HelmRelease>, String>,
) -> Option<HelmNote> {
    if !matches!(release.managed_by, ManagedBy::Helm { .. }) {
        return None;
    }
    let settings: Vec<(String, i32)> = changes
        .iter()
        .filter(|c| c.is_change())
        .filter_map(|c| c.helm_value.clone().map(|v| (v, c.to)))
        .collect();
    if settings.is_empty() {
        return None;
    }
    let (recorded, command, readable) = match record {
        Ok(Some(helm)) => (
            settings.iter().map(|(key, _)| (key.clone(), helm.recorded_replicas(key))).collect(),
            helm.upgrade_command(&release.name, &release.namespace, &settings),
            true,
        ),
        _ => {
            let sets: Vec<String> = settings.iter().map(|(k, v)| format!("--set {k}={v}")).collect();
            (
                settings.iter().map(|(key, _)| (key.clone(), None)).collect(),
                format!(
                    "helm upgrade {} milvus/milvus -n {} --reuse-values {}",
                    release.name,
                    release.namespace,
                    sets.join(" ")
                ),
                false,
            )
        }
    };
    Some(HelmNote { recorded, command, readable })
}

fn print_helm_note(release: &Release, helm: &HelmNote) {
    let warn = "Warning:".if_supports_color(Stream::Stderr, |t| t.yellow()).to_string();
    for (key, recorded) in &helm.recorded {
        match recorded {
            Some(value) => eprintln!(
                "{warn} the Helm release {} still records {key}={value}: the next `helm upgrade` of this release sets it back.",
                release.name
            ),
            None if helm.readable => eprintln!(
                "{warn} the Helm release {} records no {key}: the next `helm upgrade` of this release sets the chart default back.",
                release.name
            ),
            None => {}
        }
    }
    eprintln!("To make the change permanent, run:\n  {}", helm.command);
}

fn print_plan(
    release: &Release,
    changes: &[PlannedChange],
    dry_run: DryRun,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let heading = match dry_run {
        DryRun::None => "Plan",
        _ => "Plan (dry run)",
    };
    writeln!(
        out,
        "{heading} for {} ({}, namespace {}):",
        release.name,
        release.managed_by.short(),
        release.namespace
    )?;
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
    table.write(out)?;
    writeln!(out)?;
    Ok(())
}

/// kubectl's result line: `deployment.apps/x scaled (1 → 3)`, `milvus.milvus.io/x patched (queryNode.replicas 1 → 3)`.
fn result_line(change: &PlannedChange, from: i32, to: i32) -> String {
    match &change.owner {
        plan::Owner::Deployment { .. } => format!("{} scaled ({from} → {to})", change.owner.reference()),
        plan::Owner::Milvus { .. } => {
            format!("{} patched ({} {from} → {to})", change.owner.reference(), change.owner.field())
        }
    }
}

/// What changed and what did not, for a failure midway.
fn report(results: &[ChangeResult]) -> String {
    let mut lines = vec!["What was applied:".to_string()];
    for r in results.iter().filter(|r| r.plan.is_change()) {
        lines.push(match (r.applied.last(), r.status) {
            (Some(last), _) if *last == r.plan.to => {
                format!("  {}: scaled {} → {}", r.plan.component, r.plan.from, r.plan.to)
            }
            (Some(last), _) => {
                format!("  {}: partly, at {last} ({} → {} planned)", r.plan.component, r.plan.from, r.plan.to)
            }
            (None, _) => format!("  {}: not changed ({})", r.plan.component, r.plan.from),
        });
    }
    lines.join("\n")
}
