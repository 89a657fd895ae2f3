//! Waiting until changed components are ready. Readiness is judged by the same discovery and health
//! model as `status`; what is seen while waiting goes to the [`Reporter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::engine::{Event, Reporter};
use super::owner::Owner;
use crate::client::Kube;
use crate::client::read::{self, Kinds, Scope};
use crate::error::Error;
use crate::milvus::{self, Component, DiscoveryOptions, ManagedBy, Milvus, PodProblem, Release};

/// How often the release is read again while waiting.
pub const POLL: Duration = Duration::from_secs(1);

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

    /// Sleeps for `duration`, or less if interrupted; true when interrupted.
    pub async fn sleep(&self, duration: Duration) -> bool {
        let notified = self.notify.notified();
        if self.is_set() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.is_set(),
            _ = notified => true,
        }
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
        }
    }

    /// Reads the release once (the same requests as `status`, without HPAs), and its `Milvus` object.
    pub async fn read(&self) -> Result<(Option<Release>, Option<Milvus>), Error> {
        let scope = Scope::Namespace(self.namespace.to_string());
        let kinds = Kinds { pods: true, hpas: false, milvuses: self.operator };
        let release = [self.release.to_string()];
        let reading = read::read_with(self.kube, &scope, kinds, read::Pods::OfReleases(&release)).await?;
        let options = DiscoveryOptions { name_label: self.name_label.to_string(), now: Timestamp::now() };
        let release =
            milvus::discover(&reading.inventory, &options).into_iter().find(|r| r.name == self.release);
        let milvus = reading.inventory.milvuses.into_iter().find(|m| m.name() == self.release);
        Ok((release, milvus))
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

    async fn poll(
        &self,
        watched: &[Watched],
        deadline: Instant,
        reporter: &mut dyn Reporter,
    ) -> Result<Outcome, Error> {
        loop {
            let (release, milvus) = self.read().await?;
            if let Some(release) = &release {
                reporter.event(Event::Waiting { release, watched });
                let changed = watched.iter().find_map(|w| {
                    let now = Self::owner_value(w, release, milvus.as_ref())?;
                    (now != w.target).then(|| Outcome::Changed { watched: w.clone(), now })
                });
                if let Some(changed) = changed {
                    return Ok(changed);
                }
                if watched
                    .iter()
                    .all(|w| component(release, &w.component).is_some_and(|c| is_ready(release, c, w.target)))
                {
                    return Ok(Outcome::Ready);
                }
            }
            if Instant::now() >= deadline {
                return Ok(Outcome::TimedOut(release));
            }
            let pause = POLL.min(deadline.saturating_duration_since(Instant::now()));
            if self.interrupt.sleep(pause).await {
                return Ok(Outcome::Interrupted(release));
            }
        }
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
