//! The Helm side of a scale: the new revision of the release's record that carries the new replica
//! values ([`crate::helm::record`]), planned with the scale, begun before the first workload write
//! and ended after the last one. When the record cannot be written (no permission to update the
//! release's Secrets, no deployed revision, `HELM_DRIVER=sql`), the scale goes on with the workloads
//! only, and the note says so and how to make the change permanent.

use serde::Serialize;

use super::engine::{ChangeResult, ChangeStatus};
use super::owner::{DryRun, Owner};
use super::plan::PlannedChange;
use crate::client::Kube;
use crate::error::Error;
use crate::helm::record::{self, RecordPlan};
use crate::helm::revision::{Rendered, ValueChange};
use crate::helm::storage::{Driver, Storage, Stored};
use crate::helm::{self, History};

/// Where the record stands (`helm.record.state` of `scale -o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Not written yet: a dry run, or a run that ended before the record's turn.
    Planned,
    /// The new revision is deployed.
    Written,
    /// Not every value was written: the new revision is marked failed; the previous one stays deployed.
    Failed,
    /// Not written, for the `reason` given: the workloads alone changed.
    Skipped,
}

/// The record's part of the result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordNote {
    pub state: RecordState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    /// The deployed revision the change builds on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_revision: Option<i64>,
    /// `secret/sh.helm.release.v1.<release>.v<N>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    pub values: Vec<ValueChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Old revisions deleted to keep Helm's history limit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<i64>,
}

impl RecordNote {
    fn skipped(values: Vec<ValueChange>, reason: String) -> RecordNote {
        RecordNote {
            state: RecordState::Skipped,
            driver: None,
            revision: None,
            new_revision: None,
            object: None,
            values,
            reason: Some(reason),
            pruned: Vec::new(),
        }
    }

    /// The record will be, or was, written: nothing for the user to run.
    pub fn takes_the_change(&self) -> bool {
        matches!(self.state, RecordState::Planned | RecordState::Written)
    }
}

/// The Helm side of one scale run.
pub struct HelmRecord {
    plan: Option<RecordPlan>,
    history: Vec<Stored>,
    pub note: RecordNote,
    /// What could not be done when the record was settled.
    pub warnings: Vec<String>,
}

/// The values of `changes` that the record does not hold yet, with the Deployment that renders each.
fn value_changes(changes: &[PlannedChange], recorded: impl Fn(&str) -> Option<i64>) -> Vec<ValueChange> {
    changes
        .iter()
        .filter_map(|change| {
            let key = change.helm_value.clone()?;
            let from = recorded(&key);
            let to = i64::from(change.to);
            let Owner::Deployment { name } = &change.owner else { return None };
            let rendered = Rendered { kind: "Deployment", name: name.clone(), field: "replicas" };
            (from != Some(to)).then_some(ValueChange { key, from, to, rendered: Some(rendered) })
        })
        .collect()
}

impl HelmRecord {
    /// Plans the record's new revision for `changes` of a Helm release, from its `history`. `Ok(None)`
    /// when the record already holds every value. `skip` (why the record is left alone: e.g.
    /// `--helm-record=false`), an unreadable history or no deployed revision: a skipped note. A pending Helm operation or a
    /// record that cannot take the change refuse the whole command.
    pub fn plan(
        release: &str,
        namespace: &str,
        changes: &[PlannedChange],
        history: &Result<History, String>,
        skip: Option<String>,
    ) -> Result<Option<HelmRecord>, Error> {
        let recorded = |key: &str| match history {
            Ok(History { deployed: Some(helm), .. }) => helm.recorded_replicas(key),
            _ => None,
        };
        let values = value_changes(changes, recorded);
        if values.is_empty() {
            return Ok(None);
        }
        let skipped = |values, reason: String| {
            Ok(Some(HelmRecord {
                plan: None,
                history: Vec::new(),
                note: RecordNote::skipped(values, reason),
                warnings: Vec::new(),
            }))
        };
        if let Some(reason) = skip {
            return skipped(values, reason);
        }
        let history = match history {
            Ok(history) => history,
            Err(why) => return skipped(values, format!("Helm's record could not be read: {why}")),
        };
        let plan = RecordPlan::new(
            release,
            namespace,
            history.driver,
            &history.revisions,
            values.clone(),
            record::history_max_from_env(),
        )
        .map_err(|refusal| Error::Failed(refusal.to_string()))?;
        let Some(plan) = plan else {
            return skipped(values, format!("Helm has no deployed revision of {release}"));
        };
        let note = RecordNote {
            state: RecordState::Planned,
            driver: Some(plan.driver),
            revision: Some(plan.revision),
            new_revision: Some(plan.new_revision),
            object: Some(plan.object()),
            values,
            reason: None,
            pruned: Vec::new(),
        };
        Ok(Some(HelmRecord {
            plan: Some(plan),
            history: history.revisions.clone(),
            note,
            warnings: Vec::new(),
        }))
    }

    /// Before the first workload write: checks the deployed revision, creates the new one pending (a
    /// server dry run: both with `dryRun=All`; a client dry run: nothing). Forbidden: the record is
    /// skipped and the scale goes on. The release changed since it was read: the command stops,
    /// nothing changed.
    pub async fn begin(&mut self, kube: &Kube, namespace: &str, dry_run: DryRun) -> Result<(), Error> {
        let Some(plan) = self.plan.as_mut() else { return Ok(()) };
        if dry_run == DryRun::Client {
            return Ok(());
        }
        let storage = Storage { kube, namespace, driver: plan.driver };
        match plan.begin(&storage, dry_run == DryRun::Server).await {
            Ok(()) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 403 => {
                self.note.state = RecordState::Skipped;
                self.note.reason = Some(format!("Helm's record may not be written: {}", status.message));
                self.plan = None;
                Ok(())
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Err(Error::Failed(format!(
                "the Helm release {} changed since it was read (another helm upgrade or rollback?): {}. Nothing \
                 was changed; run the command again",
                plan.release, status.message
            ))),
            Err(error) => Err(Error::api(error, &kube.server)),
        }
    }

    /// After the workload writes (not for dry runs): the new revision deployed when every value of it
    /// was written, else marked failed. What could not be done goes to [`HelmRecord::warnings`].
    pub async fn end(&mut self, kube: &Kube, namespace: &str, results: &[ChangeResult]) {
        let warnings = self.settle(kube, namespace, results).await;
        self.warnings.extend(warnings);
    }

    async fn settle(&mut self, kube: &Kube, namespace: &str, results: &[ChangeResult]) -> Vec<String> {
        let Some(plan) = self.plan.take() else { return Vec::new() };
        let storage = Storage { kube, namespace, driver: plan.driver };
        let unwritten: Vec<String> = results
            .iter()
            .filter(|r| {
                r.plan.helm_value.as_ref().is_some_and(|key| plan.values.iter().any(|v| &v.key == key))
                    && !(r.status == ChangeStatus::Unchanged
                        || (r.status == ChangeStatus::Scaled && r.applied.last() == Some(&r.plan.to)))
            })
            .map(|r| match r.applied.last() {
                Some(at) => {
                    format!("{} stopped at {at} of {} → {}", r.plan.component, r.plan.from, r.plan.to)
                }
                None => format!("{} not changed", r.plan.component),
            })
            .collect();
        if unwritten.is_empty() {
            // Where Helm applies server-side, the replicas become Helm's field, as its own upgrade leaves
            // them: its next upgrade or rollback then changes them without a conflict.
            let mut handed = Vec::new();
            for change in results.iter().filter(|r| r.plan.helm_applies_server_side) {
                let Owner::Deployment { name } = &change.plan.owner else { continue };
                if let Err(error) = hand_replicas_to_helm(kube, namespace, name).await {
                    handed.push(format!(
                        "spec.replicas of deployment.apps/{name} stays this tool's field ({}): Helm's next upgrade \
                         or rollback that changes it fails with a conflict unless given --force-conflicts",
                        helm::message(&error)
                    ));
                }
            }
            match plan.finish(&storage, &self.history).await {
                Ok(finished) => {
                    self.note.state = RecordState::Written;
                    self.note.pruned = finished.pruned;
                    handed.into_iter().chain(finished.warnings).collect()
                }
                Err(error) => {
                    self.note.state = RecordState::Failed;
                    self.note.reason = Some(error.to_string());
                    vec![error.to_string()]
                }
            }
        } else {
            let why = unwritten.join("; ");
            self.note.state = RecordState::Failed;
            let mut warnings = vec![format!(
                "Helm revision {} of {} is marked failed ({why}); revision {} stays deployed",
                plan.new_revision, plan.release, plan.revision
            )];
            self.note.reason = Some(why.clone());
            if let Err(error) = plan.fail(&storage, &why).await {
                warnings.push(error.to_string());
            }
            warnings
        }
    }

    /// The result line of the record (kubectl's `<object> created`), once written or in a dry run.
    pub fn result_line(&self, dry_run: DryRun) -> Option<String> {
        let note = &self.note;
        let (object, revision, new) = (note.object.as_ref()?, note.revision?, note.new_revision?);
        match (note.state, dry_run) {
            (RecordState::Written, _) | (RecordState::Planned, DryRun::Client | DryRun::Server) => {
                Some(format!(
                    "{object} created{}: Helm revision {new} deployed, {revision} superseded; {}",
                    dry_run.suffix(),
                    record::describe(&note.values)
                ))
            }
            _ => None,
        }
    }

    /// The plan's lines for the record.
    pub fn plan_lines(&self, release: &str) -> Vec<String> {
        let note = &self.note;
        let mut lines = Vec::new();
        match (&note.object, note.revision, note.new_revision) {
            (Some(object), Some(revision), Some(new)) => {
                lines.push(format!("Helm release {release}: revision {revision} → {new} ({object})"))
            }
            _ => lines.push(format!(
                "Helm release {release}: record not updated ({})",
                note.reason.as_deref().unwrap_or("skipped")
            )),
        }
        for value in &note.values {
            let from = value.from.map_or_else(|| "chart default".to_string(), |v| v.to_string());
            lines.push(format!("  {}: {from} → {}", value.key, value.to));
        }
        lines
    }
}

/// The field manager and operation of Helm's server-side apply.
const HELM_MANAGER: &str = "helm";

/// Moves the ownership of `spec.replicas` of Deployment `name` from this tool's entry of
/// `managedFields` to Helm's `Apply` entry (one read, one merge patch of `metadata.managedFields`
/// with the `resourceVersion` read). Nothing happens when Helm has no `Apply` entry.
async fn hand_replicas_to_helm(kube: &Kube, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(kube.client.clone(), namespace);
    let live = serde_json::to_value(api.get(name).await?).map_err(kube::Error::SerdeError)?;
    let Some(fields) = replicas_handed_to_helm(&live) else { return Ok(()) };
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": live["metadata"]["resourceVersion"].clone(),
        "managedFields": fields,
    }});
    let params = kube::api::PatchParams::default();
    api.patch(name, &params, &kube::api::Patch::Merge(&patch)).await.map(|_| ())
}

/// `managedFields` of `object` with `f:spec.f:replicas` taken from this tool's entries and given
/// to Helm's `Apply` entry; `None` when there is no such Helm entry or nothing to move.
fn replicas_handed_to_helm(object: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::{Value, json};
    let is_helm = |e: &Value| e["manager"] == HELM_MANAGER && e["operation"] == "Apply";
    let mut entries = object["metadata"]["managedFields"].as_array()?.clone();
    if !entries.iter().any(is_helm) {
        return None;
    }
    let mut moved = false;
    for entry in entries.iter_mut().filter(|e| e["manager"] == super::owner::FIELD_MANAGER) {
        let Some(fields) = entry.get_mut("fieldsV1").and_then(Value::as_object_mut) else { continue };
        if let Some(spec) = fields.get_mut("f:spec").and_then(Value::as_object_mut) {
            moved |= spec.remove("f:replicas").is_some();
            if spec.is_empty() {
                fields.remove("f:spec");
            }
        }
    }
    if !moved {
        return None;
    }
    // An entry that owns nothing any more is dropped, as the server drops it.
    entries.retain(|e| e["fieldsV1"].as_object().is_none_or(|f| !f.is_empty()));
    let helm = entries.iter_mut().find(|e| is_helm(e))?;
    let spec = helm.get_mut("fieldsV1")?.as_object_mut()?.entry("f:spec").or_insert_with(|| json!({}));
    spec.as_object_mut()?.insert("f:replicas".into(), json!({}));
    Some(Value::Array(entries))
}

/// Reads the history for a Helm release (with the deployed revision decoded).
pub async fn read_history(kube: &Kube, namespace: &str, release: &str) -> Result<History, String> {
    helm::read_history(kube, namespace, release).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_replicas_field_moves_to_helms_apply_entry() {
        let deployment = json!({"metadata": {"managedFields": [
            {"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            {"manager": "kubectl-milvus", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        ]}});
        assert_eq!(
            replicas_handed_to_helm(&deployment),
            Some(json!([
                {"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}, "f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            ]))
        );
        // A tool entry that owns more keeps the rest.
        let mut more = deployment.clone();
        more["metadata"]["managedFields"][2]["fieldsV1"]["f:metadata"] = json!({"f:annotations": {}});
        let handed = replicas_handed_to_helm(&more).expect("moved");
        assert_eq!(handed[2]["fieldsV1"], json!({"f:metadata": {"f:annotations": {}}}));
        // Helm updating client-side (no Apply entry), or nothing of ours to move: unchanged.
        let mut client_side = deployment.clone();
        client_side["metadata"]["managedFields"][0]["operation"] = json!("Update");
        assert_eq!(replicas_handed_to_helm(&client_side), None);
        let mut ours_gone = deployment;
        ours_gone["metadata"]["managedFields"].as_array_mut().expect("array").pop();
        assert_eq!(replicas_handed_to_helm(&ours_gone), None);
    }
}
