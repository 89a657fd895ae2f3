//! Writing a scale into Helm's record of the release, the way `helm upgrade --reuse-values --set` would
//! record it, around the workload writes:
//!
//! 1. before anything changes: the deployed revision N is replaced with `dryRun=All` (the user may
//!    update it, and it is still what was read), then revision N+1 is created `pending-upgrade`. Its
//!    creation fails when N+1 exists (another `helm upgrade` got there first), and while it is pending
//!    Helm itself refuses to start another operation on the release;
//! 2. the workloads are scaled;
//! 3. all written: N+1 becomes `deployed`, then N `superseded`, and the oldest revisions beyond
//!    Helm's history limit (`HELM_MAX_HISTORY`, default 10) are deleted, never the deployed one.
//!    Not all written: N+1 becomes `failed` (as a failed `helm upgrade` leaves it) and N stays deployed.

use jiff::Timestamp;

use super::codec::{CodecError, ReleaseDoc};
use super::revision::{self, RevisionError, ValueChange, status};
use super::storage::{Driver, Storage, Stored, object_name};

/// The tool named in the revisions' descriptions.
const TOOL: &str = "kubectl-milvus";

/// Helm's default `--history-max` (`HELM_MAX_HISTORY`).
pub const DEFAULT_HISTORY_MAX: usize = 10;

/// `HELM_MAX_HISTORY` as Helm reads it (0: no limit); Helm's default when unset or not a number.
pub fn history_max_from_env() -> usize {
    std::env::var("HELM_MAX_HISTORY").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(DEFAULT_HISTORY_MAX)
}

/// Why the record cannot take the change: the command is refused before anything changes.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error(
        "another Helm operation is in progress on {release}: revision {revision} is {status}. \
         Wait for it to finish (helm history {release} -n {namespace}), or scale without updating Helm's record \
         (--helm-record=false)"
    )]
    InProgress { release: String, namespace: String, revision: i64, status: String },
    #[error(
        "Helm's record of {release} (revision {revision}) cannot take the change: {source}. Nothing was changed; \
         --helm-record=false scales the workloads only"
    )]
    Unreadable {
        release: String,
        revision: i64,
        #[source]
        source: RevisionError,
    },
}

/// The new revision, ready to be written.
#[derive(Debug)]
pub struct RecordPlan {
    pub release: String,
    pub driver: Driver,
    /// The deployed revision the change is based on.
    pub revision: i64,
    pub new_revision: i64,
    pub values: Vec<ValueChange>,
    history_max: usize,
    /// The deployed revision as it becomes once the new one is deployed (replaced as it was read).
    superseded: Stored,
    pending: Stored,
    pending_doc: ReleaseDoc,
}

/// What became of the record after the workloads were written.
#[derive(Debug, Default)]
pub struct Finished {
    /// Old revisions deleted to keep Helm's history limit.
    pub pruned: Vec<i64>,
    /// What could not be done, none of it affecting what the release records (e.g. pruning refused).
    pub warnings: Vec<String>,
}

/// What went wrong writing the record; the message says what the record holds now.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

fn labels_for(stored: &Stored, status: &str, version: i64, stamp: (&str, i64)) -> Stored {
    let mut labels = stored.labels.clone();
    labels.remove("createdAt");
    labels.remove("modifiedAt");
    labels.insert(stamp.0.to_string(), stamp.1.to_string());
    labels.insert("status".into(), status.into());
    labels.insert("version".into(), version.to_string());
    Stored { labels, ..stored.clone() }
}

fn with_doc(stored: &Stored, doc: &ReleaseDoc) -> Result<Stored, CodecError> {
    Ok(Stored { data: doc.encode()?.into_bytes(), ..stored.clone() })
}

/// The values as words for descriptions and messages: `queryNode.replicas=3 (was 1)`.
pub fn describe(values: &[ValueChange]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v.from {
            Some(from) => format!("{}={} (was {from})", v.key, v.to),
            None => format!("{}={}", v.key, v.to),
        })
        .collect();
    parts.join(", ")
}

impl RecordPlan {
    /// The revision after the deployed one of `history` (all revisions of `release`, as
    /// [`Storage::history`] reads them) with `values`. `Ok(None)` when no revision is deployed
    /// (nothing to build on).
    pub fn new(
        release: &str,
        namespace: &str,
        driver: Driver,
        history: &[Stored],
        values: Vec<ValueChange>,
        history_max: usize,
    ) -> Result<Option<RecordPlan>, Refusal> {
        if let Some(last) = history.iter().max_by_key(|s| s.version())
            && status::PENDING.contains(&last.status())
        {
            return Err(Refusal::InProgress {
                release: release.into(),
                namespace: namespace.into(),
                revision: last.version(),
                status: last.status().into(),
            });
        }
        let Some(deployed) =
            history.iter().filter(|s| s.status() == status::DEPLOYED).max_by_key(|s| s.version())
        else {
            return Ok(None);
        };
        let revision = deployed.version();
        let unreadable =
            |source: RevisionError| Refusal::Unreadable { release: release.into(), revision, source };
        let deployed_doc = ReleaseDoc::decode(&deployed.data).map_err(|e| unreadable(e.into()))?;
        let new_revision = history.iter().map(Stored::version).max().unwrap_or(revision) + 1;
        let now = Timestamp::now();
        let description = format!("Scaled by {TOOL}: {}", describe(&values));
        let pending_doc =
            revision::next(&deployed_doc, new_revision, &values, &now.to_string(), &description)
                .map_err(unreadable)?;
        let pending = labels_for(
            &Stored { name: object_name(release, new_revision), resource_version: None, ..deployed.clone() },
            status::PENDING_UPGRADE,
            new_revision,
            ("createdAt", now.as_second()),
        );
        let pending = with_doc(&pending, &pending_doc).map_err(|e| unreadable(e.into()))?;
        let mut superseded_doc = deployed_doc;
        revision::set_info(&mut superseded_doc, status::SUPERSEDED, None, None)
            .map_err(|e| unreadable(e.into()))?;
        let stamp = ("modifiedAt", now.as_second());
        let superseded = labels_for(deployed, status::SUPERSEDED, revision, stamp);
        let superseded = with_doc(&superseded, &superseded_doc).map_err(|e| unreadable(e.into()))?;
        Ok(Some(RecordPlan {
            release: release.into(),
            driver,
            revision,
            new_revision,
            values,
            history_max,
            superseded,
            pending,
            pending_doc,
        }))
    }

    /// The new revision's object name.
    pub fn object(&self) -> String {
        format!("{}/{}", self.driver.resource(), self.pending.name)
    }

    /// Step 1: checks that the deployed revision may be updated and is as read (a dry-run replace),
    /// then creates the new revision `pending-upgrade` (with `dry_run`, only the check and a dry-run
    /// create). Nothing is left behind when this fails.
    pub async fn begin(&mut self, storage: &Storage<'_>, dry_run: bool) -> Result<(), kube::Error> {
        storage.replace(&self.superseded, true).await?;
        self.pending = storage.create(&self.pending, dry_run).await?;
        Ok(())
    }

    fn with_status(&self, status: &str, description: &str) -> Result<Stored, CodecError> {
        let mut doc = self.pending_doc.clone();
        revision::set_info(&mut doc, status, Some(description), None)?;
        let stamp = ("modifiedAt", Timestamp::now().as_second());
        with_doc(&labels_for(&self.pending, status, self.new_revision, stamp), &doc)
    }

    /// Step 3 after every value was written: the new revision deployed, the old one superseded, the
    /// history pruned.
    pub async fn finish(&self, storage: &Storage<'_>, history: &[Stored]) -> Result<Finished, RecordError> {
        let (release, new) = (&self.release, self.new_revision);
        let description = format!("Scaled by {TOOL}: {}", describe(&self.values));
        let deployed =
            self.with_status(status::DEPLOYED, &description).map_err(|e| RecordError(e.to_string()))?;
        if let Err(error) = storage.replace(&deployed, false).await {
            return Err(RecordError(format!(
                "the workloads were scaled, but revision {new} of the Helm release {release} could not be marked \
                 deployed ({}): it is left pending-upgrade and Helm refuses to upgrade {release} until it is removed \
                 (kubectl delete {} -n {})",
                super::message(&error),
                self.object(),
                storage.namespace
            )));
        }
        let mut finished = Finished::default();
        if let Err(error) = storage.replace(&self.superseded, false).await {
            finished.warnings.push(format!(
                "revision {} of the Helm release {release} could not be marked superseded ({}): Helm reads the \
                 newest deployed revision, {new}",
                self.revision,
                super::message(&error)
            ));
        }
        // Helm's limit: the oldest revisions go, never the deployed one.
        if self.history_max > 0 {
            let kept: Vec<&Stored> = history.iter().filter(|s| s.version() != new).collect();
            let total = kept.len() + 1;
            let removable = kept.iter().filter(|s| s.version() != self.revision);
            for old in removable.take(total.saturating_sub(self.history_max)) {
                match storage.delete(old).await {
                    Ok(()) => finished.pruned.push(old.version()),
                    Err(error) => {
                        finished.warnings.push(format!(
                            "revision {} of the Helm release {release} could not be deleted to keep Helm's history \
                             limit of {} ({})",
                            old.version(),
                            self.history_max,
                            super::message(&error)
                        ));
                        break;
                    }
                }
            }
        }
        Ok(finished)
    }

    /// Step 3 when not every value was written: the new revision marked `failed`, `why` in its
    /// description; the deployed revision stays what Helm reads.
    pub async fn fail(&self, storage: &Storage<'_>, why: &str) -> Result<(), RecordError> {
        let description = format!("{TOOL} scale failed: {why}");
        let failed =
            self.with_status(status::FAILED, &description).map_err(|e| RecordError(e.to_string()))?;
        storage.replace(&failed, false).await.map(|_| ()).map_err(|error| {
            RecordError(format!(
                "revision {} of the Helm release {} could not be marked failed ({}): it is left pending-upgrade and \
                 Helm refuses to upgrade {} until it is removed (kubectl delete {} -n {})",
                self.new_revision,
                self.release,
                super::message(&error),
                self.release,
                self.object(),
                storage.namespace
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine;
    use serde_json::json;

    use super::*;

    fn stored(version: i64, status: &str) -> Stored {
        let release = json!({"name": "r", "version": version, "info": {"status": status}, "config": {},
                             "manifest": "kind: Deployment\nmetadata:\n  name: q\nspec:\n  replicas: 1\n"});
        Stored {
            name: object_name("r", version),
            labels: BTreeMap::from([
                ("name".into(), "r".into()),
                ("owner".into(), "helm".into()),
                ("status".into(), status.into()),
                ("version".into(), version.to_string()),
                ("createdAt".into(), "1".into()),
                ("team".into(), "search".into()),
            ]),
            resource_version: Some(format!("{version}00")),
            data: base64::engine::general_purpose::STANDARD.encode(release.to_string()).into_bytes(),
        }
    }

    fn change() -> Vec<ValueChange> {
        vec![ValueChange { key: "queryNode.replicas".into(), from: Some(1), to: 3, rendered: None }]
    }

    #[test]
    fn the_new_revision_follows_the_newest_and_builds_on_the_deployed_one() {
        let history = [stored(1, "superseded"), stored(2, "deployed"), stored(3, "failed")];
        let plan =
            RecordPlan::new("r", "ns", Driver::Secret, &history, change(), 10).expect("plan").expect("some");
        assert_eq!((plan.revision, plan.new_revision), (2, 4));
        assert_eq!(plan.object(), "secret/sh.helm.release.v1.r.v4");
        assert_eq!(plan.pending.labels["status"], "pending-upgrade");
        assert_eq!(plan.pending.labels["version"], "4");
        assert_eq!(plan.pending.labels["team"], "search", "the release's own labels are kept");
        assert_eq!(plan.pending.resource_version, None);
        let doc = ReleaseDoc::decode(&plan.pending.data).expect("decodes");
        assert_eq!(
            doc.get::<serde_json::Value>("config").expect("config"),
            Some(json!({"queryNode": {"replicas": 3}}))
        );
        let superseded = &plan.superseded;
        assert_eq!(superseded.labels["status"], "superseded");
        assert_eq!(superseded.resource_version.as_deref(), Some("200"), "replaced as read");
        assert!(!superseded.labels.contains_key("createdAt") && superseded.labels.contains_key("modifiedAt"));
    }

    #[test]
    fn a_pending_operation_refuses_and_no_deployed_revision_means_no_record() {
        let busy = [stored(1, "deployed"), stored(2, "pending-upgrade")];
        let refusal = RecordPlan::new("r", "ns", Driver::Secret, &busy, change(), 10).expect_err("refused");
        assert!(
            refusal
                .to_string()
                .starts_with("another Helm operation is in progress on r: revision 2 is pending-upgrade")
        );
        let failed = [stored(1, "failed")];
        assert!(RecordPlan::new("r", "ns", Driver::Secret, &failed, change(), 10).expect("plan").is_none());
    }

    #[test]
    fn descriptions_say_what_changed() {
        let mut values = change();
        values.push(ValueChange { key: "dataNode.replicas".into(), from: None, to: 2, rendered: None });
        assert_eq!(describe(&values), "queryNode.replicas=3 (was 1), dataNode.replicas=2");
    }
}
