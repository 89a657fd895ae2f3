//! `kubectl milvus status RELEASE`: health of every component and dependency, down to the failing pod.

use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::NameOverride;
use super::list::health_tone;
use kubectl_milvus::client::follow::Follow;
use kubectl_milvus::client::read::{Note, NoteKind};
use kubectl_milvus::client::{Kube, KubeFlags, milvus_config, milvus_http, names};
use kubectl_milvus::error::{Error, exit};
use kubectl_milvus::gitops;
use kubectl_milvus::helm::{self, HelmRelease};
use kubectl_milvus::milvus::config::{ExternalDependency, external_dependencies};
use kubectl_milvus::milvus::owners::OwnerChain;
use kubectl_milvus::milvus::serving::{self, Serving};
use kubectl_milvus::milvus::{Component, Dependency, Health, ManagedBy, PodSummary, Release};
use kubectl_milvus::output::color::Tone;
use kubectl_milvus::output::{self, Cell, FormatChoice, SCHEMA_VERSION, Structured, Table, safe};
use kubectl_milvus::release;

pub const ABOUT: &str = "Show the health of a release: components, dependencies and failing pods";

pub const LONG_ABOUT: &str = "\
Show the health of a release: components, dependencies and failing pods.

Prints a summary (how the release is managed, its mode, Milvus version and health), one row per
component and per dependency (etcd, MinIO, Pulsar, Kafka, Woodpecker), and every pod that is not
healthy with what is wrong with it: a crash loop with its last exit code, an image that cannot be
pulled, a pod that cannot be scheduled. With --exit-code the command fails unless the release is
Healthy, for scripts and CI.";

pub const EXAMPLES: &str = "\
Examples:
  # Health of a release in the current namespace
  kubectl milvus status my-release

  # Include every pod, as kubectl get pods shows them
  kubectl milvus status my-release -n milvus --pods

  # Find the release in whichever namespace it lives
  kubectl milvus status my-release -A

  # Fail a CI step unless the release is Healthy (exit code 3 otherwise)
  kubectl milvus status my-release --exit-code

  # Keep refreshing until interrupted
  kubectl milvus status my-release -w";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The release: the Helm release name or the Milvus object name.
    #[arg(value_name = "RELEASE", value_parser = names::parse_release_name)]
    pub release: String,

    /// Look for the release in every namespace (an error if the name exists in more than one).
    #[arg(short = 'A', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub all_namespaces: bool,

    /// Output format: wide (adds pods), json or yaml.
    #[arg(short = 'o', long, value_name = "FORMAT", value_parser = output::parse_format::<Format>)]
    pub output: Option<Format>,

    /// List the pods of every component and dependency, as kubectl get pods does.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub pods: bool,

    /// Refresh the status until interrupted.
    #[arg(short = 'w', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub watch: bool,

    /// How often --watch refreshes (at least 1s).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval, requires = "watch")]
    pub interval: Duration,

    /// Exit with code 3 when the release is not Healthy (for scripts and CI gates).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub exit_code: bool,

    #[command(flatten)]
    pub name: NameOverride,
}

/// `--interval`: a duration of at least a second, so that a watch cannot flood the API server.
fn parse_interval(value: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if interval < Duration::from_secs(1) {
        return Err(format!("{value} is shorter than the 1s --watch allows"));
    }
    Ok(interval)
}

/// `status -o`: the pods added to the tables, or the structured printers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Wide,
    Structured(Structured),
}

impl FormatChoice for Format {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("json", Format::Structured(Structured::Json)),
        ("wide", Format::Wide),
        ("yaml", Format::Structured(Structured::Yaml)),
    ];
}

/// `status -o json|yaml` (the documented schema, `kubectl-milvus/v1` `ReleaseStatus`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReleaseStatus<'a> {
    api_version: &'static str,
    kind: &'static str,
    #[serde(flatten)]
    release: &'a Release,
    /// Who applies the release: Helm or the operator, and GitOps.
    owner: &'a OwnerChain,
    /// What Milvus itself says it serves (None when it could not be asked).
    milvus: &'a MilvusView,
    warnings: Vec<String>,
}

/// Milvus's own view, asked over its HTTP API through the API server's proxy.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct MilvusView {
    /// The pod asked for the release-wide endpoints.
    asked_pod: Option<String>,
    /// Loaded collections (None: not read) and query/streaming nodes.
    #[serde(flatten)]
    serving: Serving,
    /// Where Milvus's component health or dependency view disagrees with the pods.
    disagreements: Vec<String>,
}

/// Asks Milvus (a fixed number of requests), folds a not fully served collection into the
/// release's health, and says what could not be shown.
async fn milvus_view(kube: &Kube, found: &mut release::Found) -> (MilvusView, Vec<Note>) {
    let object = found.milvus_object().cloned();
    let (read, config) = futures::join!(
        milvus_http::read_status(kube, &found.release, &found.inventory.pods),
        milvus_config::read(kube, &found.release, object.as_ref())
    );
    let mut notes = Vec::new();
    match config {
        Ok(Some(config)) => {
            found.release.external_dependencies = external_dependencies(&config, &found.release);
        }
        Ok(None) => {}
        Err(message) => notes.push(Note { kind: NoteKind::Unreadable, message }),
    }
    let release = &mut found.release;
    let pods = &found.inventory.pods;
    let by_ip = milvus_http::pods_by_ip(release, pods);
    let disagreements = serving::disagreements(
        read.healthz.as_ref(),
        read.cluster_info.as_ref(),
        read.dependencies.as_ref(),
        read.pod.as_deref().unwrap_or_default(),
        &by_ip,
    );
    let serving = read.serving.unwrap_or_default();
    serving::apply_to_health(release, &serving);
    notes.extend(read.warnings.into_iter().map(|message| Note { kind: NoteKind::Unreadable, message }));
    (MilvusView { asked_pod: read.pod, serving, disagreements }, notes)
}

pub async fn run(flags: &KubeFlags, args: Args, out: &mut dyn Write) -> Result<(), Error> {
    let kube = Kube::connect(flags).await?;
    if !args.watch {
        let (release, notes, owner, milvus) = gather(&kube, &args).await?;
        render(&release, &notes, &owner, &milvus, &args, out)?;
        return exit_for(&release, &args);
    }
    // One Ctrl-C listener for the whole watch, so an interrupt during a refresh is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    // The objects come from watches: the scope is listed once per kind, then only changes arrive.
    // Each refresh draws their current view, every --interval (ages advance even when nothing changes).
    let lookup = lookup(&args);
    let scope = release::scope(&kube, &lookup);
    let mut follow = Follow::release(&kube, &scope, release::KINDS, &args.release);
    let mut helm = HelmRecord::default();
    let mut last = None;
    loop {
        let refresh = async {
            let reading = follow.latest().await?;
            let found = release::pick(&kube, &lookup, &scope, reading).await?;
            let (release, notes, owner, milvus) = helm.notes(&kube, &args, found).await;
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                // Clear the screen and home the cursor, as `watch` does.
                write!(out, "\x1b[2J\x1b[H")?;
            }
            render(&release, &notes, &owner, &milvus, &args, out)?;
            writeln!(out)?;
            out.flush()?;
            tokio::time::sleep(args.interval).await;
            Ok::<_, Error>(release)
        };
        tokio::select! {
            result = refresh => last = Some(result?),
            _ = &mut interrupted => break,
        }
    }
    match last {
        Some(release) => exit_for(&release, &args),
        None => Ok(()),
    }
}

/// The Helm record of the release for `status -w`: read again only when a Deployment of the release's
/// namespace changed its spec (an upgrade or a rollback does), not at every refresh, which would list
/// the release's Secrets every --interval.
#[derive(Default)]
struct HelmRecord {
    /// The Deployments' `(name, generation)` when the record was read, and the record.
    read: Option<(Generations, Result<Option<HelmRelease>, String>)>,
    /// The release's Application or HelmRelease, read again only when another one is named.
    gitops: Option<release::GitOpsRead>,
}

/// `(name, metadata.generation)` of each Deployment: changes with their specs only.
type Generations = Vec<(String, i64)>;

impl HelmRecord {
    /// The release and its notes (what could not be read, and Helm drift), as [`gather`] gives them.
    async fn notes(
        &mut self,
        kube: &Kube,
        args: &Args,
        mut found: release::Found,
    ) -> (Release, Vec<Note>, OwnerChain, MilvusView) {
        let (milvus, milvus_notes) = milvus_view(kube, &mut found).await;
        let namespace = found.release.namespace.clone();
        let generations: Generations = found
            .inventory
            .deployments
            .iter()
            .filter(|d| d.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .map(|d| (d.metadata.name.clone().unwrap_or_default(), d.metadata.generation.unwrap_or_default()))
            .collect();
        let current = self.read.as_ref().is_some_and(|(seen, _)| *seen == generations);
        if !current {
            let record = helm::read_deployed(kube, &namespace, &args.release).await;
            self.read = Some((generations, record));
        }
        let tracker = found.tracker(&args.name.label);
        if tracker.as_ref() != self.gitops.as_ref().map(|(t, _)| t) {
            self.gitops = match tracker {
                Some(tracker) => Some((tracker.clone(), gitops::read(kube, &tracker).await)),
                None => None,
            };
        }
        let record = self.read.as_ref().map(|(_, read)| release::helm_record(read));
        let owner = found.owner_chain(&args.name.label, record, self.gitops.as_ref());
        let mut notes = found.notes;
        if let (ManagedBy::Helm { .. }, Some((_, Ok(Some(helm))))) = (&found.release.managed_by, &self.read) {
            notes.extend(helm_drift(&found.release, helm));
        }
        notes.extend(milvus_notes);
        (found.release, notes, owner, milvus)
    }
}

/// The release and the notes for it: what could not be read, and Helm drift. The Helm record is read
/// concurrently with the release (one label-selected list of Secrets); without permission to read
/// Secrets the drift check is silently left out.
async fn gather(kube: &Kube, args: &Args) -> Result<(Release, Vec<Note>, OwnerChain, MilvusView), Error> {
    let lookup = lookup(args);
    // Milvus is asked once the release's pods are known, while the Helm record is still being read.
    let find = async {
        let mut found = release::find(kube, &lookup).await?;
        let milvus = milvus_view(kube, &mut found).await;
        Ok::<_, Error>((found, milvus))
    };
    let ((found, (milvus, milvus_notes)), helm) = if args.all_namespaces {
        let (found, milvus) = find.await?;
        let helm = helm::read_deployed(kube, &found.release.namespace, &args.release).await;
        ((found, milvus), helm)
    } else {
        let (found, helm) = futures::join!(find, helm::read_deployed(kube, &kube.namespace, &args.release));
        (found?, helm)
    };
    let owner = found.owner_chain(&args.name.label, Some(release::helm_record(&helm)), None);
    let mut notes = found.notes;
    if let (ManagedBy::Helm { .. }, Ok(Some(helm))) = (&found.release.managed_by, &helm) {
        notes.extend(helm_drift(&found.release, helm));
    }
    notes.extend(milvus_notes);
    Ok((found.release, notes, owner, milvus))
}

/// Components whose live replicas differ from the value the Helm release records.
fn helm_drift(release: &Release, helm: &HelmRelease) -> Vec<Note> {
    release
        .components
        .iter()
        .filter(|c| c.group.is_none() && c.hpa.is_none())
        .filter_map(|c| {
            let key = format!("{}.replicas", c.kind.helm_values_key()?);
            let recorded = helm.recorded_replicas(&key).filter(|r| *r >= 0)?;
            (recorded != i64::from(c.desired)).then(|| Note {
                kind: NoteKind::HelmDrift,
                message: format!(
                    "{}: {} live, Helm release says {recorded} ({key}); the next helm upgrade of {} {}",
                    c.display_name,
                    c.desired,
                    release.name,
                    helm::next_upgrade(c.helm_applies_server_side)
                ),
            })
        })
        .collect()
}

fn lookup(args: &Args) -> release::Lookup<'_> {
    release::Lookup { name: &args.release, all_namespaces: args.all_namespaces, name_label: &args.name.label }
}

fn exit_for(release: &Release, args: &Args) -> Result<(), Error> {
    if args.exit_code && release.health != Health::Healthy {
        return Err(Error::Exit(exit::UNHEALTHY));
    }
    Ok(())
}

fn render(
    release: &Release,
    notes: &[Note],
    owner: &OwnerChain,
    milvus: &MilvusView,
    args: &Args,
    out: &mut dyn Write,
) -> Result<(), Error> {
    if let Some(Format::Structured(format)) = args.output {
        let status = ReleaseStatus {
            api_version: SCHEMA_VERSION,
            kind: "ReleaseStatus",
            release,
            owner,
            milvus,
            warnings: notes.iter().map(|n| n.message.clone()).collect(),
        };
        return output::write_structured(out, format, &status);
    }
    let now = Timestamp::now();
    write_summary(release, owner, out)?;
    writeln!(out)?;
    writeln!(out, "{}", Tone::Bold.paint("Components", owo_colors::Stream::Stdout))?;
    components_table(&release.components, now).write(out)?;
    if !release.dependencies.is_empty() || !release.external_dependencies.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", Tone::Bold.paint("Dependencies", owo_colors::Stream::Stdout))?;
        dependencies_table(&release.dependencies, &release.external_dependencies, now).write(out)?;
    }
    write_serving(milvus, out)?;
    if args.pods || args.output == Some(Format::Wide) {
        writeln!(out)?;
        writeln!(out, "{}", Tone::Bold.paint("Pods", owo_colors::Stream::Stdout))?;
        pods_table(release, now).write(out)?;
    }
    if !release.problems.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", Tone::Bold.paint("Problems", owo_colors::Stream::Stdout))?;
        let mut table = Table::new(["POD", "OWNER", "REASON"]);
        for problem in &release.problems {
            table.push(vec![
                Cell::new(&problem.pod),
                Cell::new(&problem.owner),
                Cell::toned(&problem.reason, Tone::Bad),
            ]);
        }
        table.write(out)?;
    }
    if !notes.is_empty() {
        writeln!(out)?;
        writeln!(out, "{}", Tone::Bold.paint("Warnings", owo_colors::Stream::Stdout))?;
        for note in notes {
            writeln!(
                out,
                "  {}",
                Tone::Warn.paint(&safe::one_line(&note.message), owo_colors::Stream::Stdout)
            )?;
        }
    }
    Ok(())
}

fn write_summary(release: &Release, owner: &OwnerChain, out: &mut dyn Write) -> Result<(), Error> {
    let managed_by = match &release.managed_by {
        ManagedBy::Helm { chart } => format!("Helm (chart {})", chart.as_deref().unwrap_or("unknown")),
        ManagedBy::Operator { status, resource_found, .. } => match (status, resource_found) {
            (Some(status), _) => format!("Milvus Operator (status {status})"),
            (None, true) => "Milvus Operator (no status reported yet)".into(),
            (None, false) => "Milvus Operator (the Milvus object could not be read)".into(),
        },
    };
    let health =
        Tone::paint(health_tone(release.health), release.health.as_str(), owo_colors::Stream::Stdout);
    let reason = if release.health_reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", safe::one_line(&release.health_reason))
    };
    let lines = [
        ("Release", release.name.clone()),
        ("Namespace", release.namespace.clone()),
        ("Managed by", safe::one_line(&managed_by).into_owned()),
        ("Owner", safe::one_line(&owner.summary).into_owned()),
        ("Mode", release.mode.as_str().to_string()),
        ("Version", safe::one_line(release.version.as_deref().unwrap_or("<unknown>")).into_owned()),
        ("Health", format!("{health}{reason}")),
    ];
    for (label, value) in lines {
        writeln!(out, "{:<12}{value}", format!("{label}:"))?;
    }
    if let ManagedBy::Operator { conditions, .. } = &release.managed_by
        && !conditions.is_empty()
    {
        writeln!(out, "Conditions:")?;
        for condition in conditions {
            let tone = if condition.status == "True" { Tone::Good } else { Tone::Bad };
            let detail = condition.message.as_deref().or(condition.reason.as_deref()).unwrap_or("");
            let detail =
                if detail.is_empty() { String::new() } else { format!(" ({})", safe::one_line(detail)) };
            writeln!(
                out,
                "  {}={}{detail}",
                safe::one_line(&condition.type_),
                tone.paint(&safe::one_line(&condition.status), owo_colors::Stream::Stdout)
            )?;
        }
    }
    Ok(())
}

/// The Serving section: Milvus's collections and nodes, and where Milvus disagrees with the pods.
fn write_serving(milvus: &MilvusView, out: &mut dyn Write) -> Result<(), Error> {
    let serving = &milvus.serving;
    if serving.collections.is_none() && serving.nodes.is_none() && milvus.disagreements.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{}", Tone::Bold.paint("Serving", owo_colors::Stream::Stdout))?;
    if let Some(collections) = &serving.collections {
        if collections.is_empty() {
            writeln!(out, "  no collection loaded")?;
        } else {
            let mut table = Table::new(["COLLECTION", "NAME", "REPLICAS", "CHANNELS", "SEGMENTS", "STATUS"]);
            for c in collections {
                let replicas: Vec<String> = c
                    .replicas
                    .iter()
                    .map(|r| {
                        let rw: Vec<String> = r.rw_nodes.iter().map(i64::to_string).collect();
                        let mut text =
                            format!("{}: {}", r.id, if rw.is_empty() { "-".into() } else { rw.join(",") });
                        if !r.ro_nodes.is_empty() {
                            let ro: Vec<String> = r.ro_nodes.iter().map(i64::to_string).collect();
                            text.push_str(&format!(" (ro {})", ro.join(",")));
                        }
                        text
                    })
                    .collect();
                let status = if c.fully_served {
                    Cell::toned("fully served", Tone::Good)
                } else {
                    Cell::toned(format!("not fully served: {}", c.missing.join("; ")), Tone::Bad)
                };
                table.push(vec![
                    Cell::new(c.id.to_string()),
                    Cell::new(c.name.as_deref().unwrap_or("-")),
                    Cell::new(replicas.join(" ")),
                    Cell::new(c.channels.to_string()),
                    Cell::new(c.segments.to_string()),
                    status,
                ]);
            }
            table.write(out)?;
        }
    }
    if let Some(nodes) = serving.nodes.as_ref().filter(|n| !n.is_empty()) {
        writeln!(out)?;
        let mut table = Table::new(["NODE", "KIND", "POD", "STATE", "SEGMENTS", "CHANNELS"]);
        for n in nodes {
            let tone = match n.state.as_str() {
                "active" | "Normal" => Tone::Plain,
                _ => Tone::Warn,
            };
            table.push(vec![
                Cell::new(n.node_id.to_string()),
                Cell::new(n.kind.as_str()),
                Cell::new(n.pod.clone().unwrap_or_else(|| format!("<no pod at {}>", n.address))),
                Cell::toned(&n.state, tone),
                Cell::new(n.segments.map_or_else(|| "-".to_string(), |c| c.to_string())),
                Cell::new(n.channels.map_or_else(|| "-".to_string(), |c| c.to_string())),
            ]);
        }
        table.write(out)?;
    }
    for said in &milvus.disagreements {
        writeln!(out, "  {}", Tone::Warn.paint(&safe::one_line(said), owo_colors::Stream::Stdout))?;
    }
    Ok(())
}

fn status_cell(health: Health, reason: &str) -> Cell {
    let text = if reason.is_empty() { health.to_string() } else { format!("{health}: {reason}") };
    Cell::toned(text, health_tone(health))
}

fn count_tone(ready: i32, desired: i32) -> Tone {
    if ready < desired { Tone::Bad } else { Tone::Plain }
}

fn components_table(components: &[Component], now: Timestamp) -> Table {
    let with_hpa = components.iter().any(|c| c.hpa.is_some());
    let mut headers = vec!["COMPONENT", "DESIRED", "READY", "UP-TO-DATE", "AVAILABLE", "RESTARTS", "AGE"];
    if with_hpa {
        headers.push("HPA");
    }
    headers.push("STATUS");
    let mut table = Table::new(headers);
    for component in components {
        let mut row = vec![
            Cell::new(&component.display_name),
            Cell::new(component.desired.to_string()),
            Cell::toned(component.ready.to_string(), count_tone(component.ready, component.desired)),
            Cell::toned(
                component.up_to_date.to_string(),
                count_tone(component.up_to_date, component.desired),
            ),
            Cell::toned(component.available.to_string(), count_tone(component.available, component.desired)),
            Cell::toned(
                component.restarts.to_string(),
                if component.restarts > 0 { Tone::Warn } else { Tone::Plain },
            ),
            Cell::new(output::age(component.created, now)),
        ];
        if with_hpa {
            row.push(Cell::new(
                component
                    .hpa
                    .as_ref()
                    .map(|h| format!("{} ({}-{})", h.name, h.min_replicas, h.max_replicas))
                    .unwrap_or_else(|| "-".into()),
            ));
        }
        let mut status = status_cell(component.health, &component.reason);
        if let Some(active) = &component.active_workload {
            status.text = format!("{} (active {active})", status.text);
        }
        row.push(status);
        table.push(row);
    }
    table
}

fn dependencies_table(dependencies: &[Dependency], external: &[ExternalDependency], now: Timestamp) -> Table {
    let mut table = Table::new(["DEPENDENCY", "DESIRED", "READY", "RESTARTS", "AGE", "STATUS"]);
    for dependency in external {
        let endpoints = if dependency.endpoints.is_empty() {
            "no endpoint configured".into()
        } else {
            dependency.endpoints.join(",")
        };
        table.push(vec![
            Cell::new(format!("{} (external)", dependency.display_name)),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new("-"),
            Cell::new(format!("External: {endpoints}")),
        ]);
    }
    for dependency in dependencies {
        table.push(vec![
            Cell::new(&dependency.display_name),
            Cell::new(dependency.desired.to_string()),
            Cell::toned(dependency.ready.to_string(), count_tone(dependency.ready, dependency.desired)),
            Cell::toned(
                dependency.restarts.to_string(),
                if dependency.restarts > 0 { Tone::Warn } else { Tone::Plain },
            ),
            Cell::new(output::age(dependency.created, now)),
            status_cell(dependency.health, &dependency.reason),
        ]);
    }
    table
}

fn pods_table(release: &Release, now: Timestamp) -> Table {
    let mut table = Table::new(["OWNER", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "NODE"]);
    let owners = release
        .components
        .iter()
        .map(|c| (c.display_name.as_str(), c.pods.as_slice()))
        .chain(release.dependencies.iter().map(|d| (d.display_name.as_str(), d.pods.as_slice())));
    for (owner, pods) in owners {
        for pod in pods {
            table.push(pod_row(owner, pod, now));
        }
    }
    table
}

fn pod_row(owner: &str, pod: &PodSummary, now: Timestamp) -> Vec<Cell> {
    let healthy = matches!(pod.status.as_str(), "Running" | "Completed")
        && pod.ready_containers == pod.total_containers;
    vec![
        Cell::new(owner),
        Cell::new(&pod.name),
        Cell::toned(
            format!("{}/{}", pod.ready_containers, pod.total_containers),
            count_tone(pod.ready_containers, pod.total_containers),
        ),
        Cell::toned(&pod.status, if healthy { Tone::Plain } else { Tone::Bad }),
        Cell::new(pod.restarts.to_string()),
        Cell::new(output::age(pod.created, now)),
        Cell::new(pod.node.clone().unwrap_or_else(|| "<none>".into())),
    ]
}
