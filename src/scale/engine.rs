//! The scale engine: runs a plan against the owners of the replicas and says what happened.
//!
//! Each step of each change reads the owner, checks that it still holds the value the plan expects
//! (re-planning from the new value when someone else changed it), and patches it with the
//! `resourceVersion` that was read (a 409 Conflict is read again, at most three times). Between
//! scale-in steps, and at the end with `--wait`, it waits until the component is ready again. Ctrl-C
//! stops it at the next safe point. Whatever happens, every change ends with a [`ChangeStatus`] that
//! says what is true, and the [`Reporter`] hears each event as it happens.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::drain::{self, Drainer, Stop};
use super::helm_record::HelmRecord;
use super::owner::{DryRun, Owner, is_conflict};
use super::plan::{self, PlanOptions, PlannedChange};
use super::wait::{self, Outcome, Waiter, Watched};
use crate::client::Kube;
use crate::error::{Error, exit};
use crate::milvus::{Inventory, Release};
use crate::output::diff;

/// Where a change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// Not applied: a dry run, or a run that stopped before it reached this change.
    Planned,
    /// The owner already holds the target.
    Unchanged,
    /// Every step was written.
    Scaled,
    /// A step could not be written, or the component did not become ready between steps; `applied`
    /// says which values were written before that.
    Failed,
    /// Ctrl-C stopped it between steps; `applied` says which values were written.
    Interrupted,
    /// A write was sent but its reply was lost, and the owner could not be read again: whether the
    /// last value was written is not known.
    Unknown,
}

/// One change and what became of it (an item of `scale -o json`'s `changes`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeResult {
    #[serde(flatten)]
    pub plan: PlannedChange,
    /// The values written, in order (empty for a dry run or no change).
    pub applied: Vec<i32>,
    pub status: ChangeStatus,
    /// The kubectl-diff of a dry run.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
}

impl ChangeResult {
    pub fn new(plan: PlannedChange) -> Self {
        let status = if plan.is_change() { ChangeStatus::Planned } else { ChangeStatus::Unchanged };
        ChangeResult { plan, applied: Vec::new(), status, diff: String::new() }
    }

    /// The change as it stands: to the last value written, or (`planned`: a dry run) to its target;
    /// `None` when nothing of it was written.
    pub fn settled(&self, planned: bool) -> Option<PlannedChange> {
        let to = if planned { Some(self.plan.to) } else { self.applied.last().copied() }?;
        Some(PlannedChange { to, ..self.plan.clone() })
    }
}

/// What the engine tells as it goes.
pub enum Event<'a> {
    /// A dry run's diff of one owner.
    Diff { change: &'a PlannedChange, diff: &'a str },
    /// A value was written (in a dry run: would be written).
    Written { change: &'a PlannedChange, from: i32, to: i32 },
    /// The owner changed between reading and writing it (409 Conflict): it is read again.
    Conflict { owner: &'a Owner },
    /// The owner held `current`, not the `expected` value: the change was re-planned from there.
    Replanned { change: &'a PlannedChange, expected: i32, current: i32 },
    /// The release as last read, while waiting for `watched`.
    Waiting { release: &'a Release, watched: &'a [Watched] },
    /// Waiting ended, for whatever reason.
    WaitEnded,
    /// Helm's record of the release took the change: its result line.
    Recorded { line: &'a str },
    /// `--wait`: every watched component is ready.
    Ready { watched: &'a [Watched] },
    /// Waiting ran out of time; the pods that keep the components from being ready.
    TimedOut { release: Option<&'a Release>, watched: &'a [Watched] },
    /// Ctrl-C: where each change stands, in words (for stderr, whatever the output format).
    Interrupted { report: &'a str },
    /// The run stopped midway (`interrupted` by Ctrl-C, else failed): what was applied, in words. After a
    /// failure the error the run ends with carries the same words.
    Failed { applied: &'a str, interrupted: bool },
    /// A drained scale-in's progress (or, in a dry run, its plan), in words.
    Drain { line: &'a str },
}

/// Renders the engine's events: text, progress bars, or nothing (structured output).
pub trait Reporter {
    fn event(&mut self, event: Event<'_>);
}

/// Everything a run needs.
pub struct Engine<'a> {
    /// The release, how to read it while waiting, and Ctrl-C.
    pub waiter: Waiter<'a>,
    pub options: PlanOptions,
    /// `--wait`: wait at the end until every changed component is ready.
    pub wait: bool,
    /// How long waiting may take, between steps and at the end together.
    pub timeout: Duration,
    /// The owners as the plan's reading has them: a dry run diffs those instead of reading them again.
    pub listed: Listed,
    /// Drains each query/streaming node through Milvus before the step that removes it (None: no
    /// draining, `--no-drain` or no such scale-in). See [`drain`].
    pub drain: Option<Drainer<'a>>,
}

/// Owner objects as a reading listed them (Deployments decoded whole, `Milvus` objects kept whole), by
/// owner.
#[derive(Debug, Default)]
pub struct Listed {
    objects: Vec<(Owner, Value)>,
}

impl Listed {
    /// The Deployments that own a change of `changes`, from `inventory` (read with
    /// [`crate::release::SCALE_KINDS`]: whole, with every field a GET would give).
    pub fn owners(inventory: &Inventory, changes: &[PlannedChange]) -> Listed {
        let objects = changes
            .iter()
            .filter_map(|change| match &change.owner {
                Owner::Deployment { name } => {
                    let deployment =
                        inventory.deployments.iter().find(|d| d.metadata.name.as_deref() == Some(name))?;
                    Some((change.owner.clone(), serde_json::to_value(deployment).ok()?))
                }
                Owner::Milvus { name, .. } => {
                    let milvus = inventory.milvuses.iter().find(|m| m.name() == name)?;
                    Some((change.owner.clone(), milvus.whole.as_deref()?.clone()))
                }
            })
            .collect();
        Listed { objects }
    }

    fn get(&self, owner: &Owner) -> Option<&Value> {
        self.objects.iter().find(|(o, _)| o == owner).map(|(_, v)| v)
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

impl Engine<'_> {
    fn kube(&self) -> &Kube {
        self.waiter.kube
    }

    fn namespace(&self) -> &str {
        self.waiter.namespace
    }

    fn api_error(&self, error: kube::Error) -> Error {
        Error::api(error, &self.waiter.kube.server)
    }

    /// Applies the changes, or (a dry run) previews them. `record`, for a Helm release, is the new
    /// revision of Helm's record: begun (created pending) before the first write, settled after the
    /// last one, before any final wait.
    pub async fn run(
        &self,
        dry_run: DryRun,
        results: &mut [ChangeResult],
        mut record: Option<&mut HelmRecord>,
        reporter: &mut dyn Reporter,
    ) -> Result<(), Error> {
        if let Some(record) = record.as_deref_mut() {
            record.begin(self.kube(), self.namespace(), dry_run).await?;
        }
        if dry_run == DryRun::None {
            return self.apply(results, record, reporter).await;
        }
        // --dry-run=client|server: the diff of every object that would change, and the result lines.
        for result in results.iter_mut().filter(|r| r.plan.is_change()) {
            let owner = &result.plan.owner;
            let live = match self.listed.get(owner) {
                Some(listed) => listed.clone(),
                None => owner.get(self.kube(), self.namespace()).await.map_err(|e| self.api_error(e))?,
            };
            let body = owner.patch_body(&live, result.plan.to).map_err(Error::Failed)?;
            let merged = if dry_run == DryRun::Server {
                owner
                    .patch(self.kube(), self.namespace(), &body, true)
                    .await
                    .map_err(|e| self.api_error(e))?
            } else {
                let mut merged = live.clone();
                json_patch::merge(&mut merged, &body);
                merged
            };
            result.diff = diff::unified(&live, &merged);
            reporter.event(Event::Diff { change: &result.plan, diff: &result.diff });
        }
        self.drain_plan(results, reporter).await?;
        for result in results.iter().filter(|r| r.plan.is_change()) {
            reporter.event(Event::Written {
                change: &result.plan,
                from: result.plan.from,
                to: result.plan.to,
            });
        }
        if let Some(line) = record.and_then(|r| r.result_line(dry_run)) {
            reporter.event(Event::Recorded { line: &line });
        }
        Ok(())
    }

    /// Settles Helm's record after the writes: deployed when every value was written, else failed.
    async fn settle(
        &self,
        record: Option<&mut HelmRecord>,
        results: &[ChangeResult],
        reporter: &mut dyn Reporter,
    ) {
        let Some(record) = record else { return };
        record.end(self.kube(), self.namespace(), results).await;
        if let Some(line) = record.result_line(DryRun::None) {
            reporter.event(Event::Recorded { line: &line });
        }
    }

    /// Applies each change step by step, in the plan's order; stops at the first failure or at Ctrl-C,
    /// leaving every change's status true, and reports exactly what changed and what did not.
    pub async fn apply(
        &self,
        results: &mut [ChangeResult],
        record: Option<&mut HelmRecord>,
        reporter: &mut dyn Reporter,
    ) -> Result<(), Error> {
        // A timeout too large to add to the clock is as good as none.
        let now = Instant::now();
        let deadline =
            now.checked_add(self.timeout).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86400));
        for index in 0..results.len() {
            if !results[index].plan.is_change() {
                continue;
            }
            if let Err(error) = self.apply_change(&mut results[index], deadline, reporter).await {
                self.settle(record, results, reporter).await;
                let applied = applied_report(results);
                let interrupted = matches!(error, Error::Exit(_));
                reporter.event(Event::Failed { applied: &applied, interrupted });
                return Err(match error {
                    Error::Exit(code) => Error::Exit(code),
                    other => Error::Stopped { cause: Box::new(other), applied },
                });
            }
        }
        self.settle(record, results, reporter).await;
        if !self.wait {
            return Ok(());
        }
        let watched: Vec<Watched> = results
            .iter()
            .filter(|r| r.status == ChangeStatus::Scaled)
            .map(|r| Watched {
                component: r.plan.component.clone(),
                target: r.plan.to,
                owner: r.plan.owner.clone(),
            })
            .collect();
        if watched.is_empty() {
            return Ok(());
        }
        match self.waiter.until_ready(&watched, deadline, reporter).await? {
            Outcome::Ready => {
                reporter.event(Event::Ready { watched: &watched });
                Ok(())
            }
            Outcome::TimedOut(release) => Err(self.timed_out(release.as_ref(), &watched, reporter)),
            Outcome::Interrupted(release) => Err(self.interrupted(release.as_ref(), results, reporter)),
            Outcome::Changed { watched, now } => Err(self.changed_under(&watched, now).await),
        }
    }

    /// One component: each step re-reads the owner, patches with its resourceVersion, and (between
    /// scale-in steps) waits for the component to be healthy. The status says where it ended.
    async fn apply_change(
        &self,
        result: &mut ChangeResult,
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<(), Error> {
        let outcome = self.run_steps(result, deadline, reporter).await;
        match &outcome {
            Ok(()) => {}
            Err(Error::Exit(exit::INTERRUPTED)) => result.status = ChangeStatus::Interrupted,
            Err(_) if result.status == ChangeStatus::Unknown => {}
            Err(_) => result.status = ChangeStatus::Failed,
        }
        outcome
    }

    async fn run_steps(
        &self,
        result: &mut ChangeResult,
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<(), Error> {
        let mut expected = result.plan.from;
        let mut index = 0;
        while index < result.plan.steps.len() {
            if self.waiter.interrupt.is_set() {
                return Err(self.interrupted(None, std::slice::from_ref(result), reporter));
            }
            let value = result.plan.steps[index];
            // Drain hook: a scale-in step of a query/streaming node first moves the node's data off.
            let drained = self.drain_before(result, expected, value, deadline, reporter).await?;
            let written = self.write_step(result, expected, value, reporter).await;
            if let (Err(_), Some(drainer), Some(target)) = (&written, &self.drain, &drained) {
                for line in drainer.undo(target, true).await {
                    reporter.event(Event::Drain { line: &line });
                }
            }
            match written {
                Ok(()) => {}
                Err(StepError::Replanned { current }) => {
                    // Someone else changed the replicas: continue from what is there now.
                    if result.plan.steps.is_empty() && result.applied.is_empty() {
                        result.status = ChangeStatus::Unchanged;
                    }
                    expected = current;
                    index = 0;
                    continue;
                }
                Err(StepError::Failed(error)) => return Err(error),
            }
            result.applied.push(value);
            result.status = ChangeStatus::Scaled;
            expected = value;
            index += 1;
            if let (Some(drainer), Some(target)) = (&self.drain, &drained) {
                if let Err(why) = drainer.finish(target, deadline, &self.waiter.interrupt).await {
                    if !self.waiter.interrupt.is_set() {
                        return Err(Error::Failed(why));
                    }
                    let line = format!(
                        "{}: pod {} was marked and the replicas lowered: Kubernetes is removing it (node {} stays suspended until it stops)",
                        result.plan.component, target.pod, target.node_id
                    );
                    reporter.event(Event::Drain { line: &line });
                    return Err(self.interrupted(None, std::slice::from_ref(result), reporter));
                }
                let line =
                    format!("{}: pod {} is gone and no node is stopping", result.plan.component, target.pod);
                reporter.event(Event::Drain { line: &line });
            }
            if index < result.plan.steps.len() {
                let watched = [Watched {
                    component: result.plan.component.clone(),
                    target: value,
                    owner: result.plan.owner.clone(),
                }];
                match self.waiter.until_ready(&watched, deadline, reporter).await? {
                    Outcome::Ready => {}
                    Outcome::TimedOut(release) => {
                        return Err(self.timed_out(release.as_ref(), &watched, reporter));
                    }
                    Outcome::Interrupted(release) => {
                        return Err(self.interrupted(
                            release.as_ref(),
                            std::slice::from_ref(result),
                            reporter,
                        ));
                    }
                    Outcome::Changed { watched, now } => return Err(self.changed_under(&watched, now).await),
                }
            }
        }
        Ok(())
    }

    /// The drain hook before a step ([`drain`]): for a scale-in step of a component that drains, the
    /// chosen node is suspended, emptied and its pod marked; `None` when there is nothing to drain.
    async fn drain_before(
        &self,
        result: &mut ChangeResult,
        expected: i32,
        value: i32,
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<Option<drain::Target>, Error> {
        let (Some(drainer), Some(kind)) = (&self.drain, drain::drains(&result.plan.kind)) else {
            return Ok(None);
        };
        if value >= expected {
            return Ok(None);
        }
        let mut lines = Vec::new();
        let pods = drainer.pods_of(&result.plan.component);
        let prepared =
            drainer.prepare(kind, pods, deadline, &self.waiter.interrupt, &mut |line| lines.push(line)).await;
        for line in &lines {
            reporter.event(Event::Drain { line });
        }
        let component = result.plan.component.clone();
        match prepared {
            Ok(target) => Ok(Some(target)),
            Err(Stop::Failed(why)) => Err(Error::Failed(format!(
                "{component}: {why}. --no-drain scales in without asking Milvus to move the data first"
            ))),
            Err(Stop::TimedOut { target, losing, undo }) => {
                let losing = if losing.is_empty() {
                    "no collection would have lost service, but Milvus did not report the move complete"
                        .to_string()
                } else {
                    let ids: Vec<String> = losing.iter().map(i64::to_string).collect();
                    format!("removing it would have taken service from collection {}", ids.join(", "))
                };
                Err(Error::Failed(format!(
                    "{component}: node {} (pod {}) could not be emptied within {} (not enough room on the other nodes?): {losing}. Stopped before lowering the replicas: {}",
                    target.node_id,
                    target.pod,
                    humantime::format_duration(self.timeout),
                    undo.join(", ")
                )))
            }
            Err(Stop::Interrupted { undo, .. }) => {
                for line in &undo {
                    reporter.event(Event::Drain { line });
                }
                Err(self.interrupted(None, std::slice::from_ref(result), reporter))
            }
        }
    }

    /// A dry run's drain plan: which node the first step of each drained scale-in removes, and how
    /// much data moves.
    async fn drain_plan(&self, results: &[ChangeResult], reporter: &mut dyn Reporter) -> Result<(), Error> {
        let Some(drainer) = &self.drain else { return Ok(()) };
        for r in results.iter().filter(|r| r.plan.to < r.plan.from) {
            let Some(kind) = drain::drains(&r.plan.kind) else { continue };
            let target = drainer.choose(kind, drainer.pods_of(&r.plan.component)).await.map_err(|why| {
                Error::Failed(format!(
                    "{}: {why}. --no-drain scales in without asking Milvus to move the data first",
                    r.plan.component
                ))
            })?;
            let line = format!(
                "{}: drained, one node per step ({} steps): first node {} (pod {}): {} segments and {} channels move to the other nodes before its pod is marked and removed",
                r.plan.component,
                r.plan.steps.len(),
                target.node_id,
                target.pod,
                target.segments,
                target.channels
            );
            reporter.event(Event::Drain { line: &line });
        }
        Ok(())
    }

    /// Writes one value: read, check, patch. If the owner no longer holds what the plan expected, the
    /// change is re-planned from the new value. A 409 Conflict (the object changed between this read and
    /// the write) is retried from a fresh read, at most 3 times; it is reported only when the replicas
    /// were what changed.
    async fn write_step(
        &self,
        result: &mut ChangeResult,
        expected: i32,
        value: i32,
        reporter: &mut dyn Reporter,
    ) -> Result<(), StepError> {
        const ATTEMPTS: u32 = 3;
        let owner = result.plan.owner.clone();
        let mut conflicted = false;
        for attempt in 1..=ATTEMPTS {
            let live = owner
                .get(self.kube(), self.namespace())
                .await
                .map_err(|e| StepError::Failed(self.api_error(e)))?;
            let current = owner.current(&live).map_err(|e| StepError::Failed(Error::Failed(e)))?;
            if current != expected {
                if conflicted {
                    reporter.event(Event::Conflict { owner: &owner });
                }
                plan::replan(&mut result.plan, self.waiter.release, current, &result.applied, self.options)
                    .map_err(|e| StepError::Failed(Error::Failed(e)))?;
                reporter.event(Event::Replanned { change: &result.plan, expected, current });
                return Err(StepError::Replanned { current });
            }
            let body = owner.patch_body(&live, value).map_err(|e| StepError::Failed(Error::Failed(e)))?;
            match owner.patch(self.kube(), self.namespace(), &body, false).await {
                Ok(_) => {
                    reporter.event(Event::Written { change: &result.plan, from: current, to: value });
                    return Ok(());
                }
                // The object changed between this read and the write. If only other fields did (a
                // controller writing its status), the write is tried again from a fresh read without a
                // word; if the replicas did, the re-read above says so and re-plans.
                Err(error) if is_conflict(&error) && attempt < ATTEMPTS => conflicted = true,
                // The server answered: it refused the write, which did not happen.
                Err(error @ kube::Error::Api(_)) => return Err(StepError::Failed(self.api_error(error))),
                // No answer: the write may or may not have happened. Read again and say what is true.
                Err(error) => return self.confirm_write(result, current, value, error, reporter).await,
            }
        }
        Err(StepError::Failed(Error::Failed(format!(
            "{} kept changing; nothing more was written",
            owner.reference()
        ))))
    }

    /// Someone else changed a watched owner while this command waited: stop, and say who and to what
    /// (the most recent manager of the replicas field in the owner's `managedFields`).
    async fn changed_under(&self, watched: &Watched, now: i32) -> Error {
        let owner = &watched.owner;
        let by = match owner.get(self.kube(), self.namespace()).await {
            Ok(live) => owner.last_replicas_manager(&live).map(|m| format!(" by {m}")).unwrap_or_default(),
            Err(_) => String::new(),
        };
        Error::Failed(format!(
            "{} was changed to {now}{by} while waiting for {} to reach {}: stopped; nothing more was written",
            owner.reference(),
            watched.component,
            watched.target
        ))
    }

    /// After a write whose reply was lost: the owner read again tells whether `value` was written.
    async fn confirm_write(
        &self,
        result: &mut ChangeResult,
        before: i32,
        value: i32,
        error: kube::Error,
        reporter: &mut dyn Reporter,
    ) -> Result<(), StepError> {
        let owner = result.plan.owner.clone();
        let lost = self.api_error(error);
        let now = match owner.get(self.kube(), self.namespace()).await {
            Ok(live) => owner.current(&live),
            Err(read) => Err(self.api_error(read).to_string()),
        };
        match now {
            Ok(now) if now == value => {
                reporter.event(Event::Written { change: &result.plan, from: before, to: value });
                Ok(())
            }
            Ok(now) if now == before => Err(StepError::Failed(Error::Failed(format!(
                "writing {value} to {} got no reply ({lost}); read again, it still holds {now}: the write did not happen",
                owner.reference()
            )))),
            Ok(now) => Err(StepError::Failed(Error::Failed(format!(
                "writing {value} to {} got no reply ({lost}); read again, it holds {now}: someone else changed it",
                owner.reference()
            )))),
            Err(read) => {
                result.status = ChangeStatus::Unknown;
                Err(StepError::Failed(Error::Failed(format!(
                    "writing {value} to {} got no reply ({lost}) and it could not be read again ({read}): \
                     whether {} is {value} or still {before} is unknown; check with kubectl milvus status",
                    owner.reference(),
                    owner.field()
                ))))
            }
        }
    }

    fn timed_out(
        &self,
        release: Option<&Release>,
        watched: &[Watched],
        reporter: &mut dyn Reporter,
    ) -> Error {
        let mut lines =
            vec![format!("timed out after {} waiting for", humantime::format_duration(self.timeout))];
        if let Some(release) = release {
            for w in watched {
                lines.push(format!("  {}", wait::describe(release, &w.component, w.target)));
            }
        }
        reporter.event(Event::TimedOut { release, watched });
        Error::Failed(lines.join("\n"))
    }

    fn interrupted(
        &self,
        release: Option<&Release>,
        results: &[ChangeResult],
        reporter: &mut dyn Reporter,
    ) -> Error {
        let mut lines = vec!["interrupted: stopped after the current step".to_string()];
        for r in results.iter().filter(|r| r.plan.is_change()) {
            let now = release
                .and_then(|rel| wait::component(rel, &r.plan.component))
                .map(|c| format!(" (now {} desired, {} ready)", c.desired, c.ready))
                .unwrap_or_default();
            let (component, from, to) = (&r.plan.component, r.plan.from, r.plan.to);
            lines.push(match r.applied.last().copied() {
                Some(last) if last == to => format!("  {component}: scaled {from} → {to}{now}"),
                Some(last) => format!(
                    "  {component}: at {last} of the way {from} → {to}{now}; run the same command again to continue"
                ),
                None => format!("  {component}: not changed ({from}){now}"),
            });
        }
        reporter.event(Event::Interrupted { report: &lines.join("\n") });
        Error::Exit(exit::INTERRUPTED)
    }
}

/// What changed and what did not, for a run that stopped midway.
pub fn applied_report(results: &[ChangeResult]) -> String {
    let mut lines = vec!["What was applied:".to_string()];
    for r in results.iter().filter(|r| r.plan.is_change()) {
        let (component, from, to) = (&r.plan.component, r.plan.from, r.plan.to);
        if r.status == ChangeStatus::Unknown {
            let was = r.applied.last().copied().unwrap_or(from);
            lines.push(format!("  {component}: unknown whether the last write happened (was {was})"));
            continue;
        }
        lines.push(match r.applied.last() {
            Some(last) if *last == to => format!("  {component}: scaled {from} → {to}"),
            Some(last) => format!("  {component}: partly, at {last} ({from} → {to} planned)"),
            None => format!("  {component}: not changed ({from})"),
        });
    }
    lines.join("\n")
}
