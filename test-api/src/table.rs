//! Server-side printing (`meta.k8s.io/v1` `Table`) for the columns `kubectl get` shows.

use crate::resources::ResourceType;
use crate::util::meta_str;
use serde_json::{Value, json};

/// `duration.HumanDuration` from k8s.io/apimachinery.
pub(crate) fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let m = secs / 60;
    if m < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{m}m") } else { format!("{m}m{s}s") };
    }
    if m < 180 {
        return format!("{m}m");
    }
    let h = m / 60;
    if h < 8 {
        let mm = m % 60;
        return if mm == 0 { format!("{h}h") } else { format!("{h}h{mm}m") };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let d = h / 24;
        let hh = h % 24;
        return if hh == 0 { format!("{d}d") } else { format!("{d}d{hh}h") };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    if h < 24 * 365 * 8 {
        let y = h / 24 / 365;
        let d = (h / 24) % 365;
        return if d == 0 { format!("{y}y") } else { format!("{y}y{d}d") };
    }
    format!("{}y", h / 24 / 365)
}

fn age_of(ts: &str) -> String {
    match ts.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority})
}

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// A tiny JSONPath subset: `.a.b`, `.a[0].b`, `.a[?(@.type=="X")].b`.
pub(crate) fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    let mut rest = path.trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = r[end + 1..].trim_start_matches('.');
            if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = f.split_once("==")?;
                let want = want.trim_matches(|c| c == '"' || c == '\'');
                cur = cur.as_array()?.iter().find(|e| e.get(field).and_then(Value::as_str) == Some(want))?;
            } else {
                cur = cur.get(inner.parse::<usize>().ok()?)?;
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        cur = cur.get(&rest[..end])?;
        rest = rest[end..].trim_start_matches('.');
    }
    Some(cur)
}

fn pod_status(p: &Value) -> String {
    let mut reason = p
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .or_else(|| p.pointer("/status/phase").and_then(Value::as_str))
        .unwrap_or("Unknown")
        .to_string();
    if let Some(cs) = p.pointer("/status/containerStatuses").and_then(Value::as_array) {
        for c in cs.iter().rev() {
            if let Some(w) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                reason = w.to_string();
            } else if let Some(t) = c.pointer("/state/terminated/reason").and_then(Value::as_str) {
                reason = t.to_string();
            }
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    reason
}

fn pod_restarts(p: &Value) -> String {
    let cs = p.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
    let n: i64 = cs.iter().map(|c| int(c, "/restartCount")).sum();
    let last =
        cs.iter().filter_map(|c| c.pointer("/lastState/terminated/finishedAt").and_then(Value::as_str)).max();
    match (n, last) {
        (n, Some(t)) if n > 0 => format!("{n} ({} ago)", age_of(t)),
        (n, _) => n.to_string(),
    }
}

type CellFn = Box<dyn Fn(&Value) -> Vec<Value>>;

/// Build a Table for these objects (already in the requested version).
pub(crate) fn table(
    rt: &ResourceType,
    crd: Option<&Value>,
    objs: &[Value],
    rv: &str,
    cont: Option<&Value>,
) -> Value {
    let age = |o: &Value| json!(age_of(meta_str(o, "creationTimestamp")));
    let name = |o: &Value| json!(meta_str(o, "name"));
    let (cols, cells): (Vec<Value>, CellFn) = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
                col("Age", "string", 0),
                col("IP", "string", 1),
                col("Node", "string", 1),
            ],
            Box::new(move |o| {
                let cs = o
                    .pointer("/status/containerStatuses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let total =
                    o.pointer("/spec/containers").and_then(Value::as_array).map(Vec::len).unwrap_or(0);
                let ready = cs.iter().filter(|c| c.get("ready") == Some(&json!(true))).count();
                vec![
                    name(o),
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(o)),
                    json!(pod_restarts(o)),
                    age(o),
                    json!(o.pointer("/status/podIP").and_then(Value::as_str).unwrap_or("<none>")),
                    json!(o.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("<none>")),
                ]
            }),
        ),
        ("", "events") => (
            vec![
                col("Last Seen", "string", 0),
                col("Type", "string", 0),
                col("Reason", "string", 0),
                col("Object", "string", 0),
                col("Message", "string", 0),
                col("Name", "string", 1),
            ],
            Box::new(move |o| {
                let last = o
                    .get("lastTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or(meta_str(o, "creationTimestamp"));
                let kind = o
                    .pointer("/involvedObject/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let obj = format!(
                    "{kind}/{}",
                    o.pointer("/involvedObject/name").and_then(Value::as_str).unwrap_or("")
                );
                vec![
                    json!(age_of(last)),
                    o.get("type").cloned().unwrap_or(Value::Null),
                    o.get("reason").cloned().unwrap_or(Value::Null),
                    json!(obj),
                    o.get("message").cloned().unwrap_or(Value::Null),
                    name(o),
                ]
            }),
        ),
        ("apps", "deployments") => (
            vec![
                col("Name", "string", 0),
                col("Ready", "string", 0),
                col("Up-to-date", "integer", 0),
                col("Available", "integer", 0),
                col("Age", "string", 0),
            ],
            Box::new(move |o| {
                vec![
                    name(o),
                    json!(format!("{}/{}", int(o, "/status/readyReplicas"), int(o, "/spec/replicas"))),
                    json!(int(o, "/status/updatedReplicas")),
                    json!(int(o, "/status/availableReplicas")),
                    age(o),
                ]
            }),
        ),
        ("apps", "statefulsets") => (
            vec![col("Name", "string", 0), col("Ready", "string", 0), col("Age", "string", 0)],
            Box::new(move |o| {
                vec![
                    name(o),
                    json!(format!("{}/{}", int(o, "/status/readyReplicas"), int(o, "/spec/replicas"))),
                    age(o),
                ]
            }),
        ),
        ("apps", "replicasets") => (
            vec![
                col("Name", "string", 0),
                col("Desired", "integer", 0),
                col("Current", "integer", 0),
                col("Ready", "integer", 0),
                col("Age", "string", 0),
            ],
            Box::new(move |o| {
                vec![
                    name(o),
                    json!(int(o, "/spec/replicas")),
                    json!(int(o, "/status/replicas")),
                    json!(int(o, "/status/readyReplicas")),
                    age(o),
                ]
            }),
        ),
        ("batch", "jobs") => (
            vec![
                col("Name", "string", 0),
                col("Status", "string", 0),
                col("Completions", "string", 0),
                col("Age", "string", 0),
            ],
            Box::new(move |o| {
                let done = int(o, "/status/succeeded");
                let status = if done > 0 { "Complete" } else { "Running" };
                vec![
                    name(o),
                    json!(status),
                    json!(format!(
                        "{done}/{}",
                        o.pointer("/spec/completions").and_then(Value::as_i64).unwrap_or(1)
                    )),
                    age(o),
                ]
            }),
        ),
        ("autoscaling", "horizontalpodautoscalers") => (
            vec![
                col("Name", "string", 0),
                col("Reference", "string", 0),
                col("MinPods", "integer", 0),
                col("MaxPods", "integer", 0),
                col("Replicas", "integer", 0),
                col("Age", "string", 0),
            ],
            Box::new(move |o| {
                let r = format!(
                    "{}/{}",
                    o.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str).unwrap_or(""),
                    o.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str).unwrap_or("")
                );
                vec![
                    name(o),
                    json!(r),
                    json!(int(o, "/spec/minReplicas")),
                    json!(int(o, "/spec/maxReplicas")),
                    json!(int(o, "/status/currentReplicas")),
                    age(o),
                ]
            }),
        ),
        _ => {
            let printer: Vec<(String, String, String)> = crd
                .and_then(|c| c.pointer("/spec/versions").and_then(Value::as_array))
                .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&json!(true))))
                .and_then(|v| v.get("additionalPrinterColumns").and_then(Value::as_array))
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            (
                                c.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                                c.get("jsonPath").and_then(Value::as_str).unwrap_or("").to_string(),
                                c.get("type").and_then(Value::as_str).unwrap_or("string").to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut cols = vec![col("Name", "string", 0)];
            if printer.is_empty() {
                cols.push(col("Age", "string", 0));
                (cols, Box::new(move |o| vec![name(o), age(o)]))
            } else {
                cols.extend(printer.iter().map(|(n, _, t)| col(n, if t == "date" { "date" } else { t }, 0)));
                (
                    cols,
                    Box::new(move |o| {
                        let mut cells = vec![name(o)];
                        for (_, path, ty) in &printer {
                            let v = json_path(o, path);
                            cells.push(match (ty.as_str(), v) {
                                ("date", Some(Value::String(s))) => json!(age_of(s)),
                                (_, Some(v)) => v.clone(),
                                (_, None) => Value::Null,
                            });
                        }
                        cells
                    }),
                )
            }
        }
    };
    let rows: Vec<Value> = objs.iter().map(|o| json!({"cells": cells(o), "object": o})).collect();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = c.clone();
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": cols, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(304), "5m4s");
        assert_eq!(human_duration(3600 * 3), "3h");
        assert_eq!(human_duration(86400 * 3), "3d");
    }

    #[test]
    fn paths() {
        let v = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "MilvusUpdated", "status": "True"}]}, "spec": {"mode": "cluster"}});
        assert_eq!(json_path(&v, ".spec.mode"), Some(&json!("cluster")));
        assert_eq!(
            json_path(&v, ".status.conditions[?(@.type==\"MilvusUpdated\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&v, ".status.conditions[0].type"), Some(&json!("A")));
    }
}
