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
        Self::plan_values(release, namespace, values, history, skip)
    }

    /// [`HelmRecord::plan`] for any values (e.g. an autoscaler's bounds).
    pub fn plan_values(
        release: &str,
        namespace: &str,
        values: Vec<ValueChange>,
        history: &Result<History, String>,
        skip: Option<String>,
    ) -> Result<Option<HelmRecord>, Error> {
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
        let keys: Vec<String> = self.note.values.iter().map(|v| v.key.clone()).collect();
        let unwritten: Vec<String> = results
            .iter()
            .filter(|r| {
                r.plan.helm_value.as_ref().is_some_and(|key| keys.contains(key))
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
        // Where Helm applies server-side, the replicas become Helm's field, as its own upgrade leaves
        // them: its next upgrade or rollback then changes them without a conflict.
        let handovers: Vec<Handover> = results
            .iter()
            .filter(|r| r.plan.helm_applies_server_side)
            .filter_map(|r| match &r.plan.owner {
                Owner::Deployment { name } => Some(Handover::deployment_replicas(name)),
                Owner::Milvus { .. } => None,
            })
            .collect();
        self.end_with(kube, namespace, unwritten, &handovers).await;
    }

    /// [`HelmRecord::end`] given what was not written (empty: everything was) and the fields to hand
    /// to Helm's field manager once everything was.
    pub async fn end_with(
        &mut self,
        kube: &Kube,
        namespace: &str,
        unwritten: Vec<String>,
        handovers: &[Handover],
    ) {
        let warnings = self.settle(kube, namespace, unwritten, handovers).await;
        self.warnings.extend(warnings);
    }

    async fn settle(
        &mut self,
        kube: &Kube,
        namespace: &str,
        unwritten: Vec<String>,
        handovers: &[Handover],
    ) -> Vec<String> {
        let Some(plan) = self.plan.take() else { return Vec::new() };
        let storage = Storage { kube, namespace, driver: plan.driver };
        if unwritten.is_empty() {
            let mut handed = Vec::new();
            for handover in handovers {
                if let Err(error) = handover.run(kube, namespace).await {
                    handed.push(format!(
                        "{} of {} stays this tool's ({}): Helm's next upgrade or rollback that changes it fails \
                         with a conflict unless given --force-conflicts",
                        handover.fields_text(),
                        handover.reference(),
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

/// Fields of an object that become Helm's (its server-side apply entry's) once the record took the
/// change: `spec.replicas` of a Deployment, `spec.minReplicas`/`spec.maxReplicas` of an autoscaler.
#[derive(Debug, Clone)]
pub struct Handover {
    resource: kube::api::ApiResource,
    name: String,
    /// Fields under `spec`.
    fields: Vec<&'static str>,
}

impl Handover {
    pub fn deployment_replicas(name: &str) -> Handover {
        Handover {
            resource: kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            name: name.to_string(),
            fields: vec!["replicas"],
        }
    }

    pub fn autoscaler_bounds(name: &str) -> Handover {
        Handover {
            resource: kube::api::ApiResource::erase::<
                k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
            >(&()),
            name: name.to_string(),
            fields: vec!["minReplicas", "maxReplicas"],
        }
    }

    fn reference(&self) -> String {
        let group =
            if self.resource.group.is_empty() { String::new() } else { format!(".{}", self.resource.group) };
        format!("{}{group}/{}", self.resource.kind.to_lowercase(), self.name)
    }

    fn fields_text(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|f| format!("spec.{f}")).collect();
        fields.join(", ")
    }

    /// Moves the ownership of the fields from this tool's `managedFields` entries to Helm's `Apply`
    /// entry (a read, then a merge patch of `metadata.managedFields` with the `resourceVersion` read;
    /// read again when the object changed in between, as a Deployment's status does right after a
    /// scale). Nothing happens when Helm has no `Apply` entry.
    async fn run(&self, kube: &Kube, namespace: &str) -> Result<(), kube::Error> {
        const ATTEMPTS: u32 = 5;
        let api: kube::Api<kube::api::DynamicObject> =
            kube::Api::namespaced_with(kube.client.clone(), namespace, &self.resource);
        let mut attempt = 1;
        loop {
            let live = serde_json::to_value(api.get(&self.name).await?).map_err(kube::Error::SerdeError)?;
            let Some(fields) = fields_handed_to_helm(&live, &self.fields) else { return Ok(()) };
            let patch = serde_json::json!({"metadata": {
                "resourceVersion": live["metadata"]["resourceVersion"].clone(),
                "managedFields": fields,
            }});
            let params = kube::api::PatchParams::default();
            match api.patch(&self.name, &params, &kube::api::Patch::Merge(&patch)).await {
                Err(error) if super::owner::is_conflict(&error) && attempt < ATTEMPTS => attempt += 1,
                other => return other.map(|_| ()),
            }
        }
    }
}

/// `managedFields` of `object` with `f:spec.f:<field>` of each field taken from this tool's entries
/// and given to Helm's `Apply` entry; `None` when there is no such Helm entry or nothing to move.
fn fields_handed_to_helm(object: &serde_json::Value, names: &[&str]) -> Option<serde_json::Value> {
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
            for name in names {
                moved |= spec.remove(&format!("f:{name}")).is_some();
            }
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
    let spec = spec.as_object_mut()?;
    for name in names {
        spec.insert(format!("f:{name}"), json!({}));
    }
    Some(Value::Array(entries))
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
            fields_handed_to_helm(&deployment, &["replicas"]),
            Some(json!([
                {"manager": "helm", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}, "f:replicas": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {}}},
            ]))
        );
        // A tool entry that owns more keeps the rest.
        let mut more = deployment.clone();
        more["metadata"]["managedFields"][2]["fieldsV1"]["f:metadata"] = json!({"f:annotations": {}});
        let handed = fields_handed_to_helm(&more, &["replicas"]).expect("moved");
        assert_eq!(handed[2]["fieldsV1"], json!({"f:metadata": {"f:annotations": {}}}));
        // Helm updating client-side (no Apply entry), or nothing of ours to move: unchanged.
        let mut client_side = deployment.clone();
        client_side["metadata"]["managedFields"][0]["operation"] = json!("Update");
        assert_eq!(fields_handed_to_helm(&client_side, &["replicas"]), None);
        let mut ours_gone = deployment;
        ours_gone["metadata"]["managedFields"].as_array_mut().expect("array").pop();
        assert_eq!(fields_handed_to_helm(&ours_gone, &["replicas"]), None);
    }
}
