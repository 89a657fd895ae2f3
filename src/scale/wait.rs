//! Waiting until changed components are ready. Readiness is judged by the same discovery and health
//! model as `status`; what is seen while waiting goes to the [`Reporter`].
//!
//! The release is followed with watches ([`Follow`]), started at the first wait and kept for the
//! command's later waits: only changes arrive, and the release is judged again after each (bursts
//! coalesced). Given the reading the release was found in ([`Waiter::seeded`]), the watches start from
//! that reading: nothing is listed again, and they deliver every change made since, this command's
//! writes included (the first view may be from before a write: the owner read from the server then
//! tells that apart from someone else's change).
//! Without one, each kind is listed once when the watches start.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::engine::{Event, Reporter};
use super::owner::Owner;
use crate::client::Kube;
use crate::client::follow::{Follow, Seed};
use crate::client::read::{Kinds, Reading, Scope};
use crate::error::Error;
use crate::milvus::{self, Component, DiscoveryOptions, ManagedBy, Milvus, PodProblem, Release};

/// Ctrl-C, observed once for the whole command: steps stop at the next safe point.
#[derive(Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Starts listening for Ctrl-C (SIGINT).
    pub fn install() -> Self {
        let interrupt = Interrupt::default();
        let (flag, notify) = (interrupt.flag.clone(), interrupt.notify.clone());
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                notify.notify_waiters();
            }
        });
        interrupt
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once interrupted (at once if already).
    pub async fn interrupted(&self) {
        let notified = self.notify.notified();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

/// A component being waited for.
#[derive(Debug, Clone)]
pub struct Watched {
    pub component: String,
    pub target: i32,
    /// Where the target was written: if it holds another value while waiting, someone else changed it.
    pub owner: Owner,
}

#[derive(Debug)]
pub enum Outcome {
    Ready,
    TimedOut(Option<Release>),
    Interrupted(Option<Release>),
    /// The owner of a watched component no longer holds its target: `now` is what it holds.
    Changed {
        watched: Watched,
        now: i32,
    },
}

/// What the release looks like while waiting.
pub struct Waiter<'a> {
    pub kube: &'a Kube,
    pub namespace: &'a str,
    pub release: &'a str,
    pub name_label: &'a str,
    pub operator: bool,
    pub interrupt: Interrupt,
    /// The watches of the namespace, from the first wait on.
    follow: tokio::sync::Mutex<Option<Follow>>,
    /// What the watches start from, until they do.
    seed: Option<Seed>,
}

impl<'a> Waiter<'a> {
    /// Reads `release` as discovery found it (its Milvus workloads labelled `name_label`).
    pub fn new(kube: &'a Kube, release: &'a Release, name_label: &'a str, interrupt: Interrupt) -> Self {
        Waiter {
            kube,
            namespace: &release.namespace,
            release: &release.name,
            name_label,
            operator: matches!(release.managed_by, ManagedBy::Operator { .. }),
            interrupt,
            follow: tokio::sync::Mutex::new(None),
            seed: None,
        }
    }

    /// Starts the watches from `seed` (the reading `release` was found in, made before any write of
    /// this command) rather than from lists of their own.
    pub fn seeded(self, seed: Seed) -> Self {
        Waiter { seed: Some(seed), ..self }
    }

    fn scope(&self) -> Scope {
        Scope::Namespace(self.namespace.to_string())
    }

    /// What is read while waiting: what `status` reads, without HPAs.
    fn kinds(&self) -> Kinds {
        Kinds { pods: true, hpas: false, milvuses: self.operator, whole_owners: false }
    }

    /// The release and its `Milvus` object in `reading`.
    fn find(&self, reading: Reading) -> (Option<Release>, Option<Milvus>) {
        let options = DiscoveryOptions { name_label: self.name_label.to_string(), now: Timestamp::now() };
        let release =
            milvus::discover(&reading.inventory, &options).into_iter().find(|r| r.name == self.release);
        let milvus = reading.inventory.milvuses.into_iter().find(|m| m.name() == self.release);
        (release, milvus)
    }

    /// What the owner of `watched` holds in this read: the Deployment's replicas as discovery saw them,
    /// or the `Milvus` object's (the operator copies them to the Deployments later).
    fn owner_value(watched: &Watched, release: &Release, milvus: Option<&Milvus>) -> Option<i32> {
        match &watched.owner {
            Owner::Deployment { .. } => component(release, &watched.component).map(|c| c.desired),
            Owner::Milvus { component, group, .. } => milvus?.replicas(component, group.as_deref()).ok(),
        }
    }

    /// Waits until every watched component has `target` replicas desired, ready, updated and available,
    /// no extra pods, and no problem pods; or the deadline passes; or Ctrl-C.
    pub async fn until_ready(
        &self,
        watched: &[Watched],
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<Outcome, Error> {
        let outcome = self.poll(watched, deadline, reporter).await;
        reporter.event(Event::WaitEnded);
        outcome
    }

    /// Judges the release at once (from the watches' current view), then again after each change,
    /// until an outcome. A watch that fails is retried with backoff; if one is still failing when the
    /// deadline passes, the wait ends with its error rather than with a view that may be out of date.
    async fn poll(
        &self,
        watched: &[Watched],
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<Outcome, Error> {
        let mut follow = self.follow.lock().await;
        let follow = match &mut *follow {
            Some(follow) => follow,
            none => none.insert(match &self.seed {
                Some(seed) => {
                    Follow::release_seeded(self.kube, &self.scope(), self.kinds(), self.release, seed)
                }
                None => Follow::release(self.kube, &self.scope(), self.kinds(), self.release),
            }),
        };
        let mut release: Option<Release> = None;
        let mut first = true;
        loop {
            let reading = {
                let view = async { if first { follow.latest().await } else { follow.next().await } };
                tokio::select! {
                    biased;
                    _ = self.interrupt.interrupted() => return Ok(Outcome::Interrupted(release)),
                    reading = view => reading?,
                    _ = tokio::time::sleep_until(deadline) => {
                        return match follow.trouble() {
                            Some(error) => Err(error),
                            None => Ok(Outcome::TimedOut(release)),
                        };
                    }
                }
            };
            first = false;
            let (found, milvus) = self.find(reading);
            if let Some(found) = &found {
                reporter.event(Event::Waiting { release: found, watched });
                for w in watched {
                    let Some(now) = Self::owner_value(w, found, milvus.as_ref()) else { continue };
                    if now != w.target
                        && let Some(now) = self.confirm_changed(w).await?
                    {
                        return Ok(Outcome::Changed { watched: w.clone(), now });
                    }
                }
                if watched
                    .iter()
                    .all(|w| component(found, &w.component).is_some_and(|c| is_ready(found, c, w.target)))
                {
                    return Ok(Outcome::Ready);
                }
            }
            release = found;
            if self.interrupt.is_set() {
                return Ok(Outcome::Interrupted(release));
            }
            if Instant::now() >= deadline {
                return match follow.trouble() {
                    Some(error) => Err(error),
                    None => Ok(Outcome::TimedOut(release)),
                };
            }
        }
    }

    /// A view from the watches showed the owner of `w` holding another value than its target: it may
    /// only be behind this command's own write. The owner read from the server says: `Some(value)` when
    /// someone else changed it, `None` when it holds the target.
    async fn confirm_changed(&self, w: &Watched) -> Result<Option<i32>, Error> {
        let live =
            w.owner.get(self.kube, self.namespace).await.map_err(|e| Error::api(e, &self.kube.server))?;
        let now = w.owner.current(&live).map_err(Error::Failed)?;
        Ok((now != w.target).then_some(now))
    }
}

pub fn component<'r>(release: &'r Release, name: &str) -> Option<&'r Component> {
    release.components.iter().find(|c| c.display_name == name)
}

/// Pods that count towards the component's size: everything but finished ones.
fn live_pods(component: &Component) -> usize {
    component.pods.iter().filter(|p| !matches!(p.status.as_str(), "Completed" | "Evicted")).count()
}

pub fn problems<'r>(release: &'r Release, component: &str) -> Vec<&'r PodProblem> {
    release.problems.iter().filter(|p| p.owner == component).collect()
}

fn is_ready(release: &Release, c: &Component, target: i32) -> bool {
    let t = target;
    c.desired == t
        && c.ready == t
        && c.up_to_date == t
        && c.available == t
        && live_pods(c) == t as usize
        && problems(release, &c.display_name).is_empty()
}

/// One line of progress: `querynode: 2/3 ready, 1 starting`.
pub fn describe(release: &Release, name: &str, target: i32) -> String {
    let Some(c) = component(release, name) else {
        return format!("{name}: not found");
    };
    let mut parts = vec![format!("{}/{target} ready", c.ready)];
    let terminating = c.pods.iter().filter(|p| p.status == "Terminating").count();
    let starting = c
        .pods
        .iter()
        .filter(|p| p.status != "Terminating" && p.ready_containers < p.total_containers)
        .count();
    if starting > 0 {
        parts.push(format!("{starting} starting"));
    }
    if terminating > 0 {
        parts.push(format!("{terminating} terminating"));
    }
    let problems: Vec<&str> = problems(release, name).iter().map(|p| p.kind.as_str()).collect();
    if !problems.is_empty() {
        parts.push(format!("problems: {}", problems.join(", ")));
    }
    format!("{name}: {}", parts.join(", "))
}
