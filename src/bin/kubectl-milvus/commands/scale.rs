//! `kubectl milvus scale RELEASE COMPONENT=N…`: the arguments, and the printing of what the scale engine
//! ([`kubectl_milvus::scale::engine`]) plans and does.

use std::io::Write;
use std::time::Duration;

use kubectl_milvus::client::{Kube, KubeFlags, milvus_config, names};
use kubectl_milvus::error::Error;
use kubectl_milvus::milvus::{ManagedBy, owners};
use kubectl_milvus::output::progress::Progress;
use kubectl_milvus::output::{self, Cell, Structured, Table, color::Tone, diff};
use kubectl_milvus::release;
use kubectl_milvus::scale::drain::{self, Drainer};
use kubectl_milvus::scale::engine::{ChangeResult, Engine, Event, Listed, Reporter};
use kubectl_milvus::scale::helm_record::HelmRecord;
use kubectl_milvus::scale::owner::DryRun;
use kubectl_milvus::scale::plan::{self, PlanOptions};
use kubectl_milvus::scale::preflight;
use kubectl_milvus::scale::report::{self, HelmNote, ScaleResult};
use kubectl_milvus::scale::target;
use kubectl_milvus::scale::wait::{self, Interrupt, Waiter};

use super::{NameOverride, warn};

pub const ABOUT: &str =
    "Change worker replicas through the object that owns them (Deployment or Milvus object)";

pub const LONG_ABOUT: &str = "\
Change worker replicas through the object that owns them.

Scales the worker components (proxy, querynode, datanode, indexnode, streamingnode) through the
object that owns their replicas: the workload of a Helm release (and Helm's record of the release, as a
new revision, so that the next helm upgrade keeps the count), or the Milvus object of a Milvus Operator
release. Coordinators are never scaled out.

The plan is checked against Milvus's rules before anything changes; --dry-run prints it with a
kubectl-diff of every object that would change, and --wait follows the rollout until the new
replicas are ready.";

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
  kubectl milvus scale my-release datanode=2 --step 2

  # An autoscaled component: change its HorizontalPodAutoscaler's bounds instead
  kubectl milvus scale my-release querynode --min 2 --max 8

  # Change the Deployment only, leaving Helm's record of the release as it is
  kubectl milvus scale my-release querynode=3 --helm-record=false";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release: the Helm release name or the Milvus object name.
    #[arg(value_name = "RELEASE", value_parser = names::parse_release_name)]
    pub release: String,

    /// COMPONENT=N (absolute), COMPONENT=+N / COMPONENT=-N (relative), COMPONENT[GROUP]=N for a group;
    /// or one COMPONENT with --replicas.
    #[arg(value_name = "COMPONENT=REPLICAS", required = true)]
    pub targets: Vec<String>,

    /// The new number of replicas for the one COMPONENT named (kubectl scale's form: a count, 0 or more).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub replicas: Option<String>,

    /// For an autoscaled COMPONENT: the new minimum of its HorizontalPodAutoscaler (changed through its
    /// owner: the autoscaler, and Helm's record for the chart's own autoscaler).
    #[arg(long, value_name = "N")]
    pub min: Option<u32>,

    /// For an autoscaled COMPONENT: the new maximum of its HorizontalPodAutoscaler.
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,

    /// none (apply), client (print the plan and diff, send nothing) or server (validate with dryRun=All).
    /// A bare --dry-run means client.
    #[arg(long, value_enum, value_name = "STRATEGY", num_args = 0..=1, require_equals = true, default_missing_value = "client", default_value = "none")]
    pub dry_run: DryRun,

    /// Wait until every changed component has all its replicas ready and updated.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub wait: bool,

    /// How long to wait (with --wait, and between gentle scale-in steps) before giving up.
    #[arg(long, value_name = "DURATION", default_value = "10m", allow_hyphen_values = true, value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Scale in at most this many replicas at a time, waiting for the component to be healthy between
    /// steps, as the Milvus documentation recommends. 0 scales in one change.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub step: u32,

    /// Allow scaling a worker to 0, which makes the release unavailable.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_zero: bool,

    /// Output format for the plan and result: json or yaml.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = output::parse_format::<Structured>)]
    pub output: Option<Structured>,

    /// Helm releases: record the new replicas in Helm's own history (a new revision of the release, as
    /// `helm upgrade --reuse-values --set` would write it), so that the next `helm upgrade` keeps them.
    /// --helm-record=false changes the workloads only.
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "true", default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub helm_record: bool,

    #[command(flatten)]
    pub name: NameOverride,

    /// Scale although Argo CD or Flux applies the release: the change is temporary, the GitOps tool
    /// sets the replicas back at its next sync (Argo CD with self-heal: at once).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub ignore_gitops: bool,

    /// Write the Milvus object although its operator will not act on it (reconcile paused, components
    /// paused, manual mode): nothing changes until that ends, and then the change applies at once.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_paused: bool,

    /// Scale in querynode or streamingnode although their pods' terminationGracePeriodSeconds is shorter
    /// than Milvus's graceful-stop timeout: Kubernetes may kill a node before its data has moved.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_kill_before_drain: bool,

    /// Scale in querynode or streamingnode without asking Milvus to move each node's data off first
    /// (for a Milvus that cannot be reached through the API server's proxy).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_drain: bool,
}

/// `--timeout`: a duration, never negative (a negative one is refused, not taken for a flag).
fn parse_timeout(value: &str) -> Result<Duration, String> {
    if value.trim_start().starts_with('-') {
        return Err("a timeout cannot be negative".into());
    }
    humantime::parse_duration(value).map_err(|e| e.to_string())
}

pub async fn run(flags: &KubeFlags, args: Args, out: &mut dyn Write) -> Result<(), Error> {
    if args.min.is_some() || args.max.is_some() {
        return super::autoscaler::run(flags, &args, out).await;
    }
    let targets = target::parse_targets(&args.targets, args.replicas.as_deref()).map_err(Error::Usage)?;
    for (given, instead) in
        [("--dry-run", "client"), ("--dry-run=true", "client"), ("--dry-run=false", "none")]
    {
        if std::env::args().any(|a| a == given) {
            let what = if given == "--dry-run" { "" } else { " (boolean value)" };
            warn(&format!("{given} is deprecated{what} and can be replaced with --dry-run={instead}."));
        }
    }
    if args.wait && args.timeout.is_zero() {
        return Err(Error::Usage(
            "--wait with --timeout 0 would stop waiting at once: give a duration (e.g. --timeout 10m)".into(),
        ));
    }
    let kube = Kube::connect(flags).await?;
    let lookup = release::Lookup { name: &args.release, all_namespaces: false, name_label: &args.name.label };
    // The release and its Helm record are independent: read them concurrently.
    let (found, history) = futures::join!(
        release::find_with(&kube, &lookup, release::SCALE_KINDS),
        kubectl_milvus::helm::read_history(&kube, &kube.namespace, &args.release)
    );
    let helm_record = history.as_ref().map(|h| h.deployed.clone()).map_err(Clone::clone);
    let mut found = found?;
    let options =
        PlanOptions { allow_zero: args.allow_zero, step: i32::try_from(args.step).unwrap_or(i32::MAX) };
    let changes = plan::plan(&found.release, found.milvus_object(), &targets, options)
        .map_err(|refusals| Error::Failed(plan::refusal_message(&found.release.name, &refusals)))?;
    // Scale-ins whose pods would be killed before their data moves (refused unless overridden).
    let mut verdicts = Vec::new();
    let grace_warnings =
        grace_check(&kube, &found, &changes, args.allow_kill_before_drain, &mut verdicts).await?;
    // Owners that would undo or ignore the change: GitOps, a paused operator (refused unless overridden).
    let (mut owner_warnings, gitops) = owner_check(&found, &args, &changes, &helm_record)?;
    owner_warnings.extend(grace_warnings);
    // A dry run's diff is of each owner as this reading has it (the plan was made from the same read).
    let listed = Listed::owners(&found.inventory, &changes);
    // Scale-ins of query and streaming nodes drain each node through Milvus before removing it.
    let drainer = drainer(&kube, &found, &changes, args.no_drain, &mut owner_warnings).await?;
    // The waits follow the release from the reading it was found in: it was made before any write.
    let seed = found.seed();
    let release = &found.release;

    let mut warnings: Vec<String> = found.notes.iter().map(|n| n.message.clone()).collect();
    warnings.extend(owner_warnings);
    if let (ManagedBy::Helm { .. }, Err(why)) = (&release.managed_by, &helm_record) {
        warnings.push(format!("the replicas recorded in the Helm release could not be checked: {why}"));
    }
    let mut record = match release.managed_by {
        ManagedBy::Helm { .. } => {
            // A release a GitOps tool applies keeps the record that tool writes (or none): the change
            // made with --ignore-gitops is temporary, and says so.
            let skip = match (&gitops, args.helm_record) {
                (_, false) => Some("--helm-record=false".to_string()),
                (Some(tracker), true) => Some(format!("{tracker} applies the release")),
                (None, true) => None,
            };
            HelmRecord::plan(&release.name, &release.namespace, &changes, &history, skip)?
        }
        ManagedBy::Operator { .. } => None,
    };
    if args.output.is_none() {
        report::write_plan(out, release, &changes, args.dry_run)?;
        if args.dry_run != DryRun::None {
            for verdict in &verdicts {
                writeln!(out, "{verdict}")?;
            }
        }
        if let Some(record) = &record {
            for line in record.plan_lines(&release.name) {
                writeln!(out, "{line}")?;
            }
            writeln!(out)?;
        }
    }

    let waiter = Waiter::new(&kube, release, &args.name.label, Interrupt::install()).seeded(seed);
    let engine = Engine { waiter, options, wait: args.wait, timeout: args.timeout, listed, drain: drainer };
    let mut results: Vec<ChangeResult> = changes.into_iter().map(ChangeResult::new).collect();
    let quiet = args.output.is_some();
    let mut reporter = Text { out: &mut *out, dry_run: args.dry_run, quiet, progress: Progress::new(quiet) };
    let outcome = engine.run(args.dry_run, &mut results, record.as_mut(), &mut reporter).await;
    if let Some(record) = &record {
        warnings.extend(record.warnings.iter().cloned());
    }

    // Helm's record matters for what was written (a dry run: for what would be).
    let written: Vec<_> = results.iter().filter_map(|r| r.settled(args.dry_run != DryRun::None)).collect();
    let mut helm = HelmNote::new(release, &written, &helm_record);
    if let (Some(helm), Some(record)) = (helm.as_mut(), record) {
        helm.record = Some(record.note);
    }
    if let Some(format) = args.output {
        output::write_structured(
            out,
            format,
            &ScaleResult::new(release, args.dry_run, &results, helm.as_ref(), &warnings),
        )?;
    } else if let Some(helm) = helm.as_ref().filter(|h| h.needs_upgrade() && gitops.is_none()) {
        // (A GitOps-applied release: the owner warning says where the value must change instead.)
        helm.warnings(&release.name).iter().for_each(|w| warn(w));
        eprintln!("To make the change permanent, run:\n  {}", helm.command);
    }
    warnings.iter().for_each(|w| warn(w));
    outcome
}

/// The drainer of the scale-ins that drain (querynode, streamingnode), unless `--no-drain` (then a
/// warning); an error, before anything is written, when Milvus cannot be asked.
async fn drainer<'a>(
    kube: &'a Kube,
    found: &release::Found,
    changes: &[plan::PlannedChange],
    no_drain: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Drainer<'a>>, Error> {
    let draining: Vec<&plan::PlannedChange> =
        changes.iter().filter(|c| c.to < c.from && drain::drains(&c.kind).is_some()).collect();
    if draining.is_empty() {
        return Ok(None);
    }
    if no_drain {
        for c in draining {
            warnings.push(format!(
                "{}: scaling in without draining (--no-drain): Milvus is not asked to move a node's data before its pod stops; its collections may lose service until Milvus loads them again",
                c.component
            ));
        }
        return Ok(None);
    }
    let refuse = |why: String| {
        Error::Failed(format!(
            "cannot scale {}: {why}. --no-drain scales in without asking Milvus to move the data first\nNothing was changed.",
            found.release.name
        ))
    };
    let drainer = Drainer::new(kube, &found.release, &found.inventory.pods).map_err(refuse)?;
    // Milvus must answer, and know a node to remove, before anything is written (Helm's record included).
    for c in draining {
        if let Some(kind) = drain::drains(&c.kind) {
            drainer
                .choose(kind, drainer.pods_of(&c.component))
                .await
                .map_err(|why| refuse(format!("{}: {why}", c.component)))?;
        }
    }
    Ok(Some(drainer))
}

/// The grace-period preflight of scale-ins ([`preflight`]): the refusal, or (overridden, or when the
/// configuration could not be read and the default was assumed) warnings.
async fn grace_check(
    kube: &Kube,
    found: &release::Found,
    changes: &[plan::PlannedChange],
    allow: bool,
    verdicts: &mut Vec<String>,
) -> Result<Vec<String>, Error> {
    let release = &found.release;
    if !changes.iter().any(|c| c.to < c.from) {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let config = match milvus_config::read(kube, release, found.milvus_object()).await {
        Ok(config) => config,
        Err(why) => {
            warnings.push(format!("{why}: Milvus's default graceful-stop timeout is assumed"));
            None
        }
    };
    let checks = preflight::grace_checks(release, &found.inventory.deployments, changes, config.as_ref());
    verdicts.extend(checks.iter().filter(|c| !c.is_short()).map(preflight::GraceShortfall::verdict));
    let shortfalls: Vec<_> = checks.into_iter().filter(preflight::GraceShortfall::is_short).collect();
    let refusals: Vec<String> = shortfalls.iter().map(|s| preflight::refusal(release, s)).collect();
    if refusals.is_empty() {
        return Ok(warnings);
    }
    if !allow {
        return Err(Error::Failed(plan::refusal_message(&release.name, &refusals)));
    }
    warnings.extend(shortfalls.iter().map(|s| {
        format!(
            "{}: scaling in with {}: Kubernetes kills a removed node after {}s though it may need {}s to hand its data over",
            s.component,
            preflight::OVERRIDE_FLAG,
            s.grace_period_seconds,
            s.graceful_stop.seconds
        )
    }));
    Ok(warnings)
}

/// What the owners of the release say to `changes` (see [`owners::check_scale`]): warnings and the
/// GitOps tool that applies the release (in words), or the refusal that ends the command before
/// anything is written.
fn owner_check(
    found: &release::Found,
    args: &Args,
    changes: &[plan::PlannedChange],
    helm_record: &Result<Option<kubectl_milvus::helm::HelmRelease>, String>,
) -> Result<(Vec<String>, Option<String>), Error> {
    let chain = found.owner_chain(&args.name.label, Some(release::helm_record(helm_record)), None);
    let targets: Vec<owners::ScaleTarget<'_>> = changes
        .iter()
        .filter(|c| c.is_change())
        .map(|c| owners::ScaleTarget {
            kind: &c.kind,
            component: &c.component,
            helm_value: c.helm_value.as_deref(),
            to: c.to,
        })
        .collect();
    let overrides = owners::Overrides {
        ignore_gitops: args.ignore_gitops,
        allow_paused: args.allow_paused,
        wait: args.wait,
    };
    let warnings = owners::check_scale(&found.release, &found.inventory, &chain, &targets, overrides)
        .map_err(|refusals| Error::Failed(plan::refusal_message(&found.release.name, &refusals)))?;
    Ok((warnings, chain.gitops.map(|g| g.tracker.describe())))
}

/// The engine's events as kubectl-style text: result lines and diffs on stdout, notes on stderr,
/// progress as bars or timestamped lines. With `-o json|yaml` only the interruption notice remains.
struct Text<'a> {
    out: &'a mut dyn Write,
    dry_run: DryRun,
    quiet: bool,
    progress: Progress,
}

impl Reporter for Text<'_> {
    fn event(&mut self, event: Event<'_>) {
        if let Event::Interrupted { report } = &event {
            eprintln!("{report}");
        } else if !self.quiet {
            // A closed stdout fails again, and is reported, when the final output is written.
            let _ = self.render(event);
        }
    }
}

impl Text<'_> {
    fn render(&mut self, event: Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Diff { diff, .. } => write!(self.out, "{}", diff::paint(diff))?,
            Event::Written { change, from, to } => writeln!(
                self.out,
                "{}{}",
                report::result_line(&change.owner, from, to),
                self.dry_run.suffix()
            )?,
            Event::Conflict { owner } => eprintln!(
                "{} changed between reading and writing it (409 Conflict): reading it again",
                owner.reference()
            ),
            Event::Replanned { change, expected, current } => eprintln!(
                "{} changed since it was read: {} is {current}, not {expected}. Re-planned {}: {current} → {}",
                change.owner.reference(),
                change.owner.field(),
                change.component,
                change.to,
            ),
            Event::Waiting { release, watched } => self.progress.show(release, watched),
            Event::WaitEnded => self.progress.finish(),
            Event::Recorded { line } | Event::Drain { line } => writeln!(self.out, "{line}")?,
            Event::Ready { watched } => {
                for w in watched {
                    writeln!(self.out, "{}: {} of {} replicas ready", w.component, w.target, w.target)?;
                }
            }
            Event::TimedOut { release: Some(release), watched } => {
                let problems: Vec<_> =
                    watched.iter().flat_map(|w| wait::problems(release, &w.component)).collect();
                if !problems.is_empty() {
                    let mut table = Table::new(["POD", "OWNER", "REASON"]);
                    for p in problems {
                        table.push(vec![
                            Cell::new(&p.pod),
                            Cell::new(&p.owner),
                            Cell::toned(&p.reason, Tone::Bad),
                        ]);
                    }
                    writeln!(self.out, "\nProblems")?;
                    table.write(self.out)?;
                }
            }
            // The error the run ends with says what was applied after a failure; an interruption ends
            // with its exit code alone.
            Event::Failed { applied, interrupted: true } => eprintln!("{applied}"),
            Event::TimedOut { release: None, .. } | Event::Failed { .. } | Event::Interrupted { .. } => {}
        }
        Ok(())
    }
}
