//! `scale RELEASE COMPONENT --min N --max M`: the bounds of the HorizontalPodAutoscaler that owns a
//! component's replicas, changed on the autoscaler itself (merge patch with the `resourceVersion` read)
//! and, for the chart's own autoscaler, in Helm's record (`<key>.hpa.minReplicas`/`maxReplicas`).
//! The plan is pure; the reads and writes of the autoscaler are at the end.

use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde::Serialize;
use serde_json::{Value, json};

use super::owner::FIELD_MANAGER;
use super::target::MAX_REPLICAS;
use crate::client::Kube;
use crate::helm::revision::{Rendered, ValueChange};
use crate::milvus::{ComponentKind, ComponentRole, Release};

/// An autoscaler's replica bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounds {
    pub min_replicas: i32,
    pub max_replicas: i32,
}

/// The change of one component's autoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundsPlan {
    /// `querynode`.
    pub component: String,
    /// The HorizontalPodAutoscaler's name.
    pub autoscaler: String,
    pub from: Bounds,
    pub to: Bounds,
    /// The Helm values that hold the bounds (`queryNode.hpa`), for a Helm release.
    #[serde(skip)]
    pub helm_key: Option<&'static str>,
}

impl BoundsPlan {
    pub fn is_change(&self) -> bool {
        self.from != self.to
    }

    /// `horizontalpodautoscaler.autoscaling/NAME`.
    pub fn reference(&self) -> String {
        format!("horizontalpodautoscaler.autoscaling/{}", self.autoscaler)
    }

    /// kubectl's result line: `…/NAME patched (minReplicas 1 → 2, maxReplicas 5 → 8)`.
    pub fn result_line(&self) -> String {
        let mut parts = Vec::new();
        if self.from.min_replicas != self.to.min_replicas {
            parts.push(format!("minReplicas {} → {}", self.from.min_replicas, self.to.min_replicas));
        }
        if self.from.max_replicas != self.to.max_replicas {
            parts.push(format!("maxReplicas {} → {}", self.from.max_replicas, self.to.max_replicas));
        }
        format!("{} patched ({})", self.reference(), parts.join(", "))
    }

    /// The Helm values of the change, with the manifest object that renders them, when the release's
    /// chart renders this autoscaler; `recorded` gives what the record holds now.
    pub fn helm_values(&self, recorded: impl Fn(&str) -> Option<i64>) -> Vec<ValueChange> {
        let Some(key) = self.helm_key else { return Vec::new() };
        [
            ("minReplicas", self.from.min_replicas, self.to.min_replicas),
            ("maxReplicas", self.from.max_replicas, self.to.max_replicas),
        ]
        .into_iter()
        .filter_map(|(field, _, to)| {
            let key = format!("{key}.hpa.{field}");
            let from = recorded(&key);
            let rendered = Rendered { kind: "HorizontalPodAutoscaler", name: self.autoscaler.clone(), field };
            (from != Some(i64::from(to))).then_some(ValueChange {
                key,
                from,
                to: i64::from(to),
                rendered: Some(rendered),
            })
        })
        .collect()
    }

    /// The merge patch of the autoscaler, with the `resourceVersion` of `live`.
    pub fn patch_body(&self, live: &Value) -> Value {
        json!({
            "metadata": {"resourceVersion": live["metadata"]["resourceVersion"].clone()},
            "spec": {"minReplicas": self.to.min_replicas, "maxReplicas": self.to.max_replicas},
        })
    }
}

/// Plans new bounds for `component`'s autoscaler: `min`/`max` as given, the other kept.
pub fn plan(
    release: &Release,
    component: &str,
    min: Option<u32>,
    max: Option<u32>,
) -> Result<BoundsPlan, String> {
    let kind = ComponentKind::parse(component).ok_or_else(|| format!("unknown component {component:?}"))?;
    let label = kind.label().to_string();
    if kind.role() != ComponentRole::Worker {
        return Err(format!("{label} is not a Milvus worker: only workers are autoscaled"));
    }
    let row = release
        .components
        .iter()
        .find(|c| c.kind == kind && c.group.is_none())
        .ok_or_else(|| format!("{} does not run {label}", release.name))?;
    let Some(hpa) = &row.hpa else {
        let helm =
            kind.helm_values_key().map(|k| format!(" (Helm value {k}.hpa.enabled=true)")).unwrap_or_default();
        return Err(format!(
            "{label} has no HorizontalPodAutoscaler: scale it with {label}=N, or give it one{helm}"
        ));
    };
    let from = Bounds { min_replicas: hpa.min_replicas, max_replicas: hpa.max_replicas };
    let to = targets(from, min, max)?;
    let helm_key = match release.managed_by {
        crate::milvus::ManagedBy::Helm { .. } => kind.helm_values_key(),
        crate::milvus::ManagedBy::Operator { .. } => None,
    };
    Ok(BoundsPlan { component: row.display_name.clone(), autoscaler: hpa.name.clone(), from, to, helm_key })
}

impl BoundsPlan {
    /// The plan again from the bounds the autoscaler holds `now` (read just before the write).
    pub fn rebase(&mut self, now: Bounds, min: Option<u32>, max: Option<u32>) -> Result<(), String> {
        if now != self.from {
            self.to = targets(now, min, max)?;
            self.from = now;
        }
        Ok(())
    }
}

/// The bounds asked for: `min`/`max` as given, the other kept from `from`.
fn targets(from: Bounds, min: Option<u32>, max: Option<u32>) -> Result<Bounds, String> {
    let count = |flag: &str, value: Option<u32>, current: i32| -> Result<i32, String> {
        let Some(value) = value else { return Ok(current) };
        let value = i32::try_from(value).unwrap_or(i32::MAX);
        if value < 1 {
            return Err(format!("{flag} must be at least 1 (an autoscaler keeps one replica or more)"));
        }
        if value > MAX_REPLICAS {
            return Err(format!(
                "{flag}={value} is more than the {MAX_REPLICAS} replicas this command allows"
            ));
        }
        Ok(value)
    };
    let to = Bounds {
        min_replicas: count("--min", min, from.min_replicas)?,
        max_replicas: count("--max", max, from.max_replicas)?,
    };
    if to.min_replicas > to.max_replicas {
        return Err(format!(
            "--min {} is above --max {} (the autoscaler's maximum is {} now)",
            to.min_replicas, to.max_replicas, from.max_replicas
        ));
    }
    Ok(to)
}

/// Reads the autoscaler (autoscaling/v1, served on every Kubernetes version).
pub async fn get(kube: &Kube, namespace: &str, name: &str) -> Result<Value, kube::Error> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(kube.client.clone(), namespace);
    serde_json::to_value(api.get(name).await?).map_err(kube::Error::SerdeError)
}

/// The bounds `live` holds (`minReplicas` defaults to 1).
pub fn current(live: &Value) -> Bounds {
    let number = |key: &str, default: i64| live["spec"][key].as_i64().unwrap_or(default);
    let clamp = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    Bounds { min_replicas: clamp(number("minReplicas", 1)), max_replicas: clamp(number("maxReplicas", 0)) }
}

/// Sends the merge patch (`dry_run`: with `dryRun=All`); the object the server answered.
pub async fn patch(
    kube: &Kube,
    namespace: &str,
    name: &str,
    body: &Value,
    dry_run: bool,
) -> Result<Value, kube::Error> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(kube.client.clone(), namespace);
    let params =
        PatchParams { dry_run, field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
    serde_json::to_value(api.patch(name, &params, &Patch::Merge(body)).await?)
        .map_err(kube::Error::SerdeError)
}
