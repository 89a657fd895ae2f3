//! `kubectl milvus scale RELEASE COMPONENT --min N --max M`: the bounds of the autoscaler that owns a
//! component's replicas, changed through its owner ([`kubectl_milvus::scale::bounds`]): the
//! HorizontalPodAutoscaler itself, and for the Helm chart's own autoscaler Helm's record of the release
//! too (`<key>.hpa.minReplicas`/`maxReplicas`).

use std::io::Write;

use serde::Serialize;

use kubectl_milvus::client::{Kube, KubeFlags};
use kubectl_milvus::error::Error;
use kubectl_milvus::milvus::{ManagedBy, Release};
use kubectl_milvus::output::{self, Cell, SCHEMA_VERSION, Table, diff};
use kubectl_milvus::release;
use kubectl_milvus::scale::bounds::{self, BoundsPlan};
use kubectl_milvus::scale::helm_record::{Handover, HelmRecord, RecordNote, RecordState};
use kubectl_milvus::scale::owner::DryRun;
use kubectl_milvus::scale::report;

use super::scale::Args;
use super::warn;

/// `scale --min/--max -o json|yaml`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BoundsResult<'a> {
    api_version: &'static str,
    kind: &'static str,
    release: &'a str,
    namespace: &'a str,
    managed_by: &'static str,
    dry_run: DryRun,
    autoscaler: &'a BoundsPlan,
    /// `planned`, `unchanged`, `patched`, `failed`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    helm: Option<&'a RecordNote>,
    #[serde(skip_serializing_if = "String::is_empty")]
    diff: String,
    warnings: &'a [String],
}

fn refused(release: &str, why: &str) -> Error {
    Error::Failed(format!("cannot change the autoscaler of {release}: {why}\nNothing was changed."))
}

/// The one COMPONENT the bounds are for.
fn component(args: &Args) -> Result<&str, Error> {
    let [component] = args.targets.as_slice() else {
        return Err(Error::Usage(
            "--min and --max take exactly one COMPONENT (e.g. scale my-release querynode --min 2 --max 8)"
                .into(),
        ));
    };
    if component.contains('=') || args.replicas.is_some() {
        return Err(Error::Usage(format!(
            "give either a replica count or --min/--max, not both: {component} is autoscaled, its bounds are what \
             --min and --max change"
        )));
    }
    if args.wait {
        return Err(Error::Usage(
            "--wait does not apply to --min/--max: the autoscaler moves the replicas".into(),
        ));
    }
    Ok(component)
}

pub async fn run(flags: &KubeFlags, args: &Args, out: &mut dyn Write) -> Result<(), Error> {
    let component = component(args)?;
    let kube = Kube::connect(flags).await?;
    let lookup = release::Lookup { name: &args.release, all_namespaces: false, name_label: &args.name.label };
    let (found, history) = futures::join!(
        release::find_with(&kube, &lookup, release::SCALE_KINDS),
        kubectl_milvus::helm::read_history(&kube, &kube.namespace, &args.release)
    );
    let found = found?;
    let release = &found.release;
    let mut plan =
        bounds::plan(release, component, args.min, args.max).map_err(|e| refused(&release.name, &e))?;

    // Argo CD or Flux apply the autoscaler too: refused unless overridden, as a replica count is.
    let deployed = history.as_ref().map(|h| h.deployed.clone()).map_err(Clone::clone);
    let chain = found.owner_chain(&args.name.label, Some(release::helm_record(&deployed)), None);
    let mut warnings: Vec<String> = found.notes.iter().map(|n| n.message.clone()).collect();
    if let Some(gitops) = &chain.gitops {
        let tracker = gitops.tracker.describe();
        if !args.ignore_gitops {
            return Err(refused(
                &release.name,
                &format!(
                    "{} is applied by {tracker}, which sets the autoscaler back at its next sync: change the \
                     bounds where it takes them from, or scale anyway with --ignore-gitops (the change is temporary)",
                    release.name
                ),
            ));
        }
        warnings.push(format!(
            "--ignore-gitops: the change is temporary, {tracker} sets it back at its next sync"
        ));
    }

    // The autoscaler as it is now: the plan starts from it.
    let live = bounds::get(&kube, &release.namespace, &plan.autoscaler)
        .await
        .map_err(|e| Error::api(e, &kube.server))?;
    plan.rebase(bounds::current(&live), args.min, args.max).map_err(|e| refused(&release.name, &e))?;

    // The chart's own autoscaler: its bounds are Helm values too.
    let chart_owned = matches!(release.managed_by, ManagedBy::Helm { .. })
        && history.as_ref().is_ok_and(|h| h.deployed_renders("HorizontalPodAutoscaler", &plan.autoscaler));
    let recorded =
        |key: &str| deployed.as_ref().ok().and_then(|d| d.as_ref()).and_then(|d| d.recorded_replicas(key));
    let values = if chart_owned && plan.is_change() { plan.helm_values(recorded) } else { Vec::new() };
    let skip = match (&chain.gitops, args.helm_record) {
        (_, false) => Some("--helm-record=false".to_string()),
        (Some(g), true) => Some(format!("{} applies the release", g.tracker.describe())),
        (None, true) => None,
    };
    let mut record = HelmRecord::plan_values(&release.name, &release.namespace, values, &history, skip)?;

    let quiet = args.output.is_some();
    if !quiet {
        write_plan(out, release, &plan, args.dry_run)?;
        if let Some(record) = &record {
            for line in record.plan_lines(&release.name) {
                writeln!(out, "{line}")?;
            }
            writeln!(out)?;
        }
    }

    let mut status = if plan.is_change() { "planned" } else { "unchanged" };
    let mut shown_diff = String::new();
    let mut outcome = Ok(());
    if plan.is_change() {
        if let Some(record) = record.as_mut() {
            record.begin(&kube, &release.namespace, args.dry_run).await?;
        }
        let body = plan.patch_body(&live);
        match args.dry_run {
            DryRun::Client | DryRun::Server => {
                let merged = if args.dry_run == DryRun::Server {
                    bounds::patch(&kube, &release.namespace, &plan.autoscaler, &body, true)
                        .await
                        .map_err(|e| Error::api(e, &kube.server))?
                } else {
                    let mut merged = live.clone();
                    json_patch::merge(&mut merged, &body);
                    merged
                };
                shown_diff = diff::unified(&live, &merged);
                if !quiet {
                    write!(out, "{}", diff::paint(&shown_diff))?;
                    writeln!(out, "{}{}", plan.result_line(), args.dry_run.suffix())?;
                }
            }
            DryRun::None => {
                match bounds::patch(&kube, &release.namespace, &plan.autoscaler, &body, false).await {
                    Ok(_) => {
                        status = "patched";
                        if !quiet {
                            writeln!(out, "{}", plan.result_line())?;
                        }
                    }
                    Err(error) => {
                        status = "failed";
                        outcome = Err(Error::api(error, &kube.server));
                    }
                }
                if let Some(record) = record.as_mut() {
                    let unwritten = if status == "patched" {
                        Vec::new()
                    } else {
                        vec![format!("{} not changed", plan.reference())]
                    };
                    record
                        .end_with(
                            &kube,
                            &release.namespace,
                            unwritten,
                            &[Handover::autoscaler_bounds(&plan.autoscaler)],
                        )
                        .await;
                    warnings.extend(record.warnings.iter().cloned());
                }
            }
        }
        if let (Some(line), false) = (record.as_ref().and_then(|r| r.result_line(args.dry_run)), quiet) {
            writeln!(out, "{line}")?;
        }
    } else if !quiet {
        writeln!(out, "{} unchanged", plan.reference())?;
    }

    // What the user still has to do when the record does not take the chart autoscaler's change.
    let needs_upgrade =
        record.as_ref().is_some_and(|r| r.note.state == RecordState::Skipped) && chain.gitops.is_none();
    if let (true, Ok(Some(helm))) = (needs_upgrade, &deployed) {
        let settings: Vec<(String, i32)> = record
            .iter()
            .flat_map(|r| r.note.values.iter())
            .map(|v| (v.key.clone(), i32::try_from(v.to).unwrap_or(i32::MAX)))
            .collect();
        warnings.push(format!(
            "the Helm release {} still records the old bounds: the next `helm upgrade` of this release sets them \
             back. To make the change permanent, run: {}",
            release.name,
            helm.upgrade_command(&release.name, &release.namespace, &settings)
        ));
    }

    if let Some(format) = args.output {
        output::write_structured(
            out,
            format,
            &BoundsResult {
                api_version: SCHEMA_VERSION,
                kind: "BoundsResult",
                release: &release.name,
                namespace: &release.namespace,
                managed_by: release.managed_by.short(),
                dry_run: args.dry_run,
                autoscaler: &plan,
                status,
                helm: record.as_ref().map(|r| &r.note),
                diff: shown_diff,
                warnings: &warnings,
            },
        )?;
    }
    warnings.iter().for_each(|w| warn(w));
    outcome
}

fn write_plan(
    out: &mut dyn Write,
    release: &Release,
    plan: &BoundsPlan,
    dry_run: DryRun,
) -> std::io::Result<()> {
    report::write_heading(out, release, dry_run)?;
    let mut table = Table::new(["COMPONENT", "AUTOSCALER", "MIN", "MAX"]);
    let arrow = |from: i32, to: i32| if from == to { from.to_string() } else { format!("{from} → {to}") };
    table.push(vec![
        Cell::new(&plan.component),
        Cell::new(plan.reference()),
        Cell::new(arrow(plan.from.min_replicas, plan.to.min_replicas)),
        Cell::new(arrow(plan.from.max_replicas, plan.to.max_replicas)),
    ]);
    table.write(out)?;
    writeln!(out)
}
