//! Which pods belong to which workload: each workload's `spec.selector` as a [`Selector`], matched
//! against the pods' labels, the most specific workload winning.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use label_selector::{Operator, Requirement, Selector};

use super::Pod;
use super::workload::{Workload, WorkloadKind};

/// Pods of Jobs (pulsar's init jobs) are never a workload's pods.
fn is_job_pod(pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    labels.is_some_and(|l| l.contains_key("job-name") || l.contains_key("batch.kubernetes.io/job-name"))
        || pod
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|o| o.kind == "Job" || o.kind == "CronJob")
}

/// The workload's selector, or `None` when it selects nothing: absent, empty (apps/v1 forbids it, and
/// matching everything would pull every pod of the namespace into one row) or not a valid selector.
fn selector_of(workload: &Workload<'_>) -> Option<Selector> {
    pod_selector(workload.selector?)
}

/// A `LabelSelector` as apimachinery's `LabelSelectorAsSelector` reads it: `matchLabels` as equalities,
/// `matchExpressions` with `In`/`NotIn` (values required) or `Exists`/`DoesNotExist` (no values);
/// `None` for any other operator or an empty selector.
fn pod_selector(selector: &LabelSelector) -> Option<Selector> {
    let equal =
        selector.match_labels.iter().flatten().map(|(k, v)| Requirement::new(k, Operator::Equals, [v]));
    let mut requirements: Vec<Requirement> = equal.collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let operator = match (e.operator.as_str(), values.is_empty()) {
            ("In", false) => Operator::In,
            ("NotIn", false) => Operator::NotIn,
            ("Exists", true) => Operator::Exists,
            ("DoesNotExist", true) => Operator::DoesNotExist,
            _ => return None,
        };
        requirements.push(Requirement::new(&e.key, operator, values));
    }
    let selector: Selector = requirements.into_iter().collect();
    (!selector.is_empty()).then_some(selector)
}

/// For each workload index in `parts`, the indices of the pods it owns. A pod is assigned to
/// one workload: the one whose selector matches and is the most specific (a StatefulSet that
/// is the pod's controller first, then the selector with the most terms) — so the pods of a
/// resource-group querynode are not also counted by the plain querynode Deployment whose
/// selector is a subset. Pods of Jobs are never assigned.
pub fn assign_pods(pods: &[Pod], workloads: &[Workload<'_>], parts: &[usize]) -> HashMap<usize, Vec<usize>> {
    // (namespace, label key, label value) -> pods; namespace -> pods.
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    let mut by_ns: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, pod) in pods.iter().enumerate() {
        if is_job_pod(pod) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        by_ns.entry(ns).or_default().push(i);
        for (k, v) in pod.metadata.labels.iter().flat_map(|l| l.iter()) {
            by_label.entry((ns, k, v)).or_default().push(i);
        }
    }

    let mut best: HashMap<usize, (usize, usize)> = HashMap::new(); // pod -> (score, workload)
    for &wi in parts {
        let w = &workloads[wi];
        let (Some(spec), Some(selector)) = (w.selector, selector_of(w)) else { continue };
        let match_labels = spec.match_labels.as_ref().filter(|m| !m.is_empty());
        // Candidates: the smallest posting list among the selector's matchLabels.
        let candidates: &[usize] = match match_labels {
            Some(ml) => ml
                .iter()
                .map(|(k, v)| {
                    by_label.get(&(w.namespace, k.as_str(), v.as_str())).map_or(&[][..], Vec::as_slice)
                })
                .min_by_key(|c| c.len())
                .unwrap_or(&[]),
            None => by_ns.get(w.namespace).map_or(&[][..], Vec::as_slice),
        };
        let terms = match_labels.map_or(0, |m| m.len()) + spec.match_expressions.as_ref().map_or(0, Vec::len);
        for &pi in candidates {
            let pod = &pods[pi];
            if !selector.matches(&pod.metadata.labels) {
                continue;
            }
            let controlled = w.kind == WorkloadKind::StatefulSet
                && pod
                    .metadata
                    .owner_references
                    .as_deref()
                    .unwrap_or(&[])
                    .iter()
                    .any(|o| o.kind == "StatefulSet" && o.name == w.name);
            let score = terms + if controlled { 1000 } else { 0 };
            match best.get(&pi) {
                Some(&(s, _)) if s >= score => {}
                _ => {
                    best.insert(pi, (score, wi));
                }
            }
        }
    }
    let mut out: HashMap<usize, Vec<usize>> = HashMap::new();
    for (pi, (_, wi)) in best {
        out.entry(wi).or_default().push(pi);
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::milvus::PodLabels;

    fn matches(selector: serde_json::Value, labels: &[(&str, &str)]) -> bool {
        let selector: LabelSelector = serde_json::from_value(selector).expect("a LabelSelector");
        let labels: PodLabels = labels.iter().copied().collect();
        pod_selector(&selector).is_some_and(|s| s.matches(&labels))
    }

    #[test]
    fn workload_selectors_match_as_the_api_server_does_and_empty_ones_match_nothing() {
        let l = [("app", "milvus"), ("tier", "db")];
        assert!(matches(json!({"matchLabels": {"app": "milvus"}}), &l));
        assert!(!matches(json!({"matchLabels": {"app": "etcd"}}), &l));
        assert!(!matches(json!({}), &l), "empty selects nothing");
        let expr = |op: &str, values: serde_json::Value| json!({"matchExpressions": [{"key": "tier", "operator": op, "values": values}]});
        assert!(matches(expr("In", json!(["db", "x"])), &l));
        assert!(!matches(expr("NotIn", json!(["db"])), &l));
        assert!(matches(expr("Exists", json!(null)), &l));
        assert!(!matches(expr("DoesNotExist", json!(null)), &l));
        assert!(!matches(expr("Bogus", json!(["db"])), &l), "an invalid selector selects nothing");
        assert!(!matches(expr("In", json!([])), &l), "In without values is invalid");
        assert!(!matches(expr("Exists", json!(["db"])), &l), "Exists with values is invalid");
        let both = json!({"matchLabels": {"app": "milvus"}, "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]});
        assert!(matches(both.clone(), &l));
        assert!(!matches(both, &[("app", "milvus"), ("canary", "1")]));
    }
}
