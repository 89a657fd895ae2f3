//! Loading objects from fixture files, YAML strings and JSON values; Helm install emulation.

use crate::controller;
use crate::resources::{self, ResKey, ResourceType};
use crate::store::Store;
use crate::util::{self, meta_str};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The release name every fixture was rendered with.
pub const FIXTURE_RELEASE: &str = "my-release";

/// Status given to loaded `Milvus` custom resources.
#[derive(Debug, Clone, PartialEq)]
pub enum MilvusStatus {
    /// `status.status: Healthy`, every condition True (the default).
    Healthy,
    /// `status.status: Unhealthy`, `MilvusReady` False with this message.
    Unhealthy {
        /// Message of the MilvusReady condition, e.g. `"[querynode] not ready"`.
        message: String,
    },
    /// No status at all (as right after creation, before the operator ran).
    Absent,
    /// This exact `status` object.
    Custom(Value),
}

/// Where a source's objects come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    File(String),
    Yaml(String),
    Json(Vec<Value>),
}

/// One batch of objects to load, with its options.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub origin: Origin,
    pub release: Option<String>,
    pub namespace: Option<String>,
    pub helm_install: bool,
    pub helm_values: Value,
    pub milvus_status: MilvusStatus,
}

impl Source {
    pub fn new(origin: Origin) -> Self {
        Source {
            origin,
            release: None,
            namespace: None,
            helm_install: false,
            helm_values: json!({}),
            milvus_status: MilvusStatus::Healthy,
        }
    }
}

/// The fixtures directory: `$MILVUS_FIXTURES`, else `shared/fixtures` next to the workspace
/// (found from `CARGO_MANIFEST_DIR` at run time, at build time, or the current directory).
pub fn fixtures_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("MILVUS_FIXTURES") {
        return Some(PathBuf::from(p));
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(m) = std::env::var("CARGO_MANIFEST_DIR") {
        let m = PathBuf::from(m);
        candidates.push(m.join("../shared/fixtures"));
        candidates.push(m.join("../../shared/fixtures"));
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            candidates.push(a.join("shared/fixtures"));
            candidates.push(a.join("../shared/fixtures"));
        }
    }
    candidates.into_iter().find(|c| c.is_dir()).map(|c| c.canonicalize().unwrap_or(c))
}

fn resolve(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if p.is_absolute() || p.exists() {
        return Ok(p.to_path_buf());
    }
    let dir = fixtures_dir()
        .ok_or_else(|| format!("fixture {path}: no fixtures directory found (set MILVUS_FIXTURES)"))?;
    let full = dir.join(path);
    if full.exists() { Ok(full) } else { Err(format!("fixture {} does not exist", full.display())) }
}

/// Parse a multi-document YAML text into JSON objects, skipping empty documents.
pub fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize;
    let text = yaml11_octals(text);
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let y = serde_yaml::Value::deserialize(doc).map_err(|e| format!("document {}: {e}", i + 1))?;
        if y.is_null() {
            continue;
        }
        let j: Value = serde_json::to_value(&y).map_err(|e| format!("document {}: {e}", i + 1))?;
        if j.is_object() {
            out.push(j);
        }
    }
    Ok(out)
}

/// kubectl reads manifests as YAML 1.1, where a plain scalar such as `0755` (a file mode) is an octal
/// integer; serde_yaml follows YAML 1.2 and would read it as a string. Rewrite such values as decimals.
fn yaml11_octals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let converted = body.rsplit_once(": ").and_then(|(key, value)| {
            let value = value.trim();
            let octal = value.len() > 1
                && value.starts_with('0')
                && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
            let decimal = i64::from_str_radix(value, 8).ok().filter(|_| octal)?;
            Some(format!("{key}: {decimal}"))
        });
        match converted {
            Some(new) => {
                out.push_str(&new);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Resource type for an `apiVersion` + `kind` among built-ins and CRDs.
pub(crate) fn type_for_kind(types: &[ResourceType], api_version: &str, kind: &str) -> Option<ResourceType> {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    types.iter().find(|t| t.group == group && t.kind == kind).cloned()
}

/// The namespace object Kubernetes creates.
pub(crate) fn namespace_object(name: &str, created: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "uid": util::uid(&["Namespace", name]), "creationTimestamp": created, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

pub(crate) fn ensure_namespace(store: &mut Store, ns: &str, created: &str) {
    let k = ResKey::new("", "namespaces");
    if !ns.is_empty() && store.get(&k, "", ns).is_none() {
        store.put(&k, namespace_object(ns, created));
    }
}

/// autoscaling/v1 HPA → v2 (storage) form.
pub(crate) fn hpa_v1_to_v2(v1: &Value) -> Value {
    let mut v2 = v1.clone();
    v2["apiVersion"] = json!("autoscaling/v2");
    if let Some(spec) = v2.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(t) = spec.remove("targetCPUUtilizationPercentage")
    {
        spec.insert("metrics".into(), json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]));
    }
    if let Some(st) = v2.get_mut("status").and_then(Value::as_object_mut)
        && let Some(c) = st.remove("currentCPUUtilizationPercentage")
    {
        st.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
        );
    }
    v2
}

/// autoscaling/v2 HPA (storage) → v1 view.
pub(crate) fn hpa_v2_to_v1(v2: &Value) -> Value {
    let mut v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": v2.get("metadata").cloned().unwrap_or_else(|| json!({}))});
    let mut spec = Map::new();
    if let Some(s) = v2.get("spec") {
        for k in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
            if let Some(x) = s.get(k) {
                spec.insert(k.into(), x.clone());
            }
        }
        let cpu = s.get("metrics").and_then(Value::as_array).and_then(|ms| {
            ms.iter().find_map(|m| {
                (m.pointer("/resource/name") == Some(&json!("cpu")))
                    .then(|| m.pointer("/resource/target/averageUtilization").cloned())
                    .flatten()
            })
        });
        if let Some(c) = cpu {
            spec.insert("targetCPUUtilizationPercentage".into(), c);
        }
    }
    v1["spec"] = Value::Object(spec);
    let mut status = Map::new();
    if let Some(s) = v2.get("status") {
        for k in ["observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas"] {
            if let Some(x) = s.get(k) {
                status.insert(k.into(), x.clone());
            }
        }
        let cpu = s.get("currentMetrics").and_then(Value::as_array).and_then(|ms| {
            ms.iter().find_map(|m| {
                (m.pointer("/resource/name") == Some(&json!("cpu")))
                    .then(|| m.pointer("/resource/current/averageUtilization").cloned())
                    .flatten()
            })
        });
        if let Some(c) = cpu {
            status.insert("currentCPUUtilizationPercentage".into(), c);
        }
    }
    if !status.contains_key("desiredReplicas") {
        status.insert("desiredReplicas".into(), json!(0));
    }
    if !status.contains_key("currentReplicas") {
        status.insert("currentReplicas".into(), json!(0));
    }
    v1["status"] = Value::Object(status);
    v1
}

fn milvus_status(cr: &Value, s: &MilvusStatus, created: &str) -> Option<Value> {
    let name = meta_str(cr, "name");
    let ns = meta_str(cr, "namespace");
    let c = |t: &str, ok: bool, reason: &str, msg: &str| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": created, "reason": reason, "message": msg});
    let (state, ready) = match s {
        MilvusStatus::Absent => return None,
        MilvusStatus::Custom(v) => return Some(v.clone()),
        MilvusStatus::Healthy => {
            ("Healthy", c("MilvusReady", true, "ReasonMilvusHealthy", "All Milvus components are healthy"))
        }
        MilvusStatus::Unhealthy { message } => {
            ("Unhealthy", c("MilvusReady", false, "ReasonMilvusComponentNotHealthy", message))
        }
    };
    let mut replicas = Map::new();
    if let Some(comps) = cr.pointer("/spec/components").and_then(Value::as_object) {
        for (k, v) in comps {
            if let Some(r) = v.get("replicas").and_then(Value::as_i64) {
                replicas.insert(k.clone(), json!(r));
            }
        }
    }
    Some(json!({
        "status": state,
        "observedGeneration": 1,
        "endpoint": format!("{name}-milvus.{ns}:19530"),
        "ingress": {"loadBalancer": {}},
        "replicas": replicas,
        "conditions": [
            c("EtcdReady", true, "EtcdReady", "All etcd endpoints are healthy"),
            c("StorageReady", true, "StorageReady", "Storage Check Passed"),
            c("MsgStreamReady", true, "MsgStreamReady", "MsgStream is ready"),
            ready,
            c("MilvusUpdated", true, "MilvusComponentsUpdated", "Milvus components are all updated"),
        ],
    }))
}

fn chart_values() -> Value {
    json!({
        "cluster": {"enabled": true},
        "image": {"all": {"repository": "milvusdb/milvus", "tag": "v2.6.15", "pullPolicy": "IfNotPresent"}},
        "proxy": {"enabled": true, "replicas": 1, "hpa": {"enabled": false, "minReplicas": 1, "maxReplicas": 5, "cpuUtilization": 40}},
        "queryNode": {"enabled": true, "replicas": 1, "hpa": {"enabled": false, "minReplicas": 1, "maxReplicas": 5, "cpuUtilization": 40}},
        "dataNode": {"enabled": true, "replicas": 1, "hpa": {"enabled": false, "minReplicas": 1, "maxReplicas": 5, "cpuUtilization": 40}},
        "streamingNode": {"replicas": 1},
        "indexNode": {"enabled": false, "replicas": 1},
        "mixCoordinator": {"enabled": true, "replicas": 1, "activeStandby": {"enabled": false}},
        "rootCoordinator": {"enabled": false, "replicas": 1, "activeStandby": {"enabled": false}},
        "queryCoordinator": {"enabled": false, "replicas": 1, "activeStandby": {"enabled": false}},
        "dataCoordinator": {"enabled": false, "replicas": 1, "activeStandby": {"enabled": false}},
        "indexCoordinator": {"enabled": false, "replicas": 1, "activeStandby": {"enabled": false}},
        "streaming": {"enabled": true},
        "etcd": {"enabled": true, "replicaCount": 3},
        "minio": {"enabled": true, "mode": "distributed"},
        "pulsarv3": {"enabled": true},
        "kafka": {"enabled": false},
        "woodpecker": {"enabled": false},
    })
}

/// The user values that produced a render, as far as replicas go: `<valuesKey>.replicas` of every Milvus
/// component Deployment (`-1` where the chart left `spec.replicas` out for an HPA). A render's replicas
/// are what `helm install` recorded, so the release Secret agrees with the objects.
fn values_of_render(docs: &[Value]) -> Value {
    const KEYS: &[(&str, &str)] = &[
        ("proxy", "proxy"),
        ("querynode", "queryNode"),
        ("datanode", "dataNode"),
        ("indexnode", "indexNode"),
        ("streamingnode", "streamingNode"),
        ("mixcoord", "mixCoordinator"),
        ("rootcoord", "rootCoordinator"),
        ("querycoord", "queryCoordinator"),
        ("datacoord", "dataCoordinator"),
        ("indexcoord", "indexCoordinator"),
        ("cdc", "cdc"),
    ];
    let mut values = serde_json::Map::new();
    for doc in docs.iter().filter(|d| {
        d["kind"] == "Deployment" && d["metadata"]["labels"]["app.kubernetes.io/name"] == "milvus"
    }) {
        let Some(component) = doc["metadata"]["labels"]["component"].as_str() else { continue };
        if doc["metadata"]["labels"].get("milvus.io/resource-group").is_some() {
            continue;
        }
        let Some((_, key)) = KEYS.iter().find(|(label, _)| *label == component) else { continue };
        let replicas = doc["spec"]["replicas"].as_i64().unwrap_or(-1);
        values.insert((*key).to_string(), json!({"replicas": replicas}));
    }
    Value::Object(values)
}

/// The Helm release Secret `sh.helm.release.v1.<release>.v1`, as `helm install` stores it.
/// `data.release` holds base64(gzip(release JSON)) (and is base64-encoded once more, as every
/// Secret `data` value is on the wire).
pub(crate) fn helm_release_secret(
    release: &str,
    ns: &str,
    values: &Value,
    manifest: &str,
    created: &str,
) -> Result<Value, String> {
    let rel = json!({
        "name": release,
        "namespace": ns,
        "version": 1,
        "info": {
            "first_deployed": created, "last_deployed": created, "deleted": "",
            "description": "Install complete", "status": "deployed",
        },
        "chart": {
            "metadata": {"name": "milvus", "version": "5.0.19", "appVersion": "2.6.15", "apiVersion": "v2", "description": "Milvus is an open-source vector database built to power AI applications and vector similarity search.", "type": "application"},
            "values": chart_values(),
        },
        "config": values,
        "manifest": manifest,
        "hooks": [],
    });
    let raw = serde_json::to_vec(&rel).map_err(|e| e.to_string())?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).map_err(|e| e.to_string())?;
    let zipped = gz.finish().map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let inner = b64.encode(zipped);
    let wire = b64.encode(inner.as_bytes());
    let name = format!("sh.helm.release.v1.{release}.v1");
    Ok(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {
            "name": name, "namespace": ns, "uid": util::uid(&["Secret", ns, &name]), "creationTimestamp": created,
            "labels": {"name": release, "owner": "helm", "status": "deployed", "version": "1"},
        },
        "data": {"release": wire},
    }))
}

/// Decode a Helm release Secret's `data.release` (as served) into the release JSON.
pub fn decode_helm_release(secret: &Value) -> Result<Value, String> {
    use std::io::Read;
    let b64 = base64::engine::general_purpose::STANDARD;
    let wire = secret.pointer("/data/release").and_then(Value::as_str).ok_or("no data.release")?;
    let inner = b64.decode(wire).map_err(|e| e.to_string())?;
    let zipped = b64.decode(inner).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(zipped.as_slice()).read_to_end(&mut out).map_err(|e| e.to_string())?;
    serde_json::from_slice(&out).map_err(|e| e.to_string())
}

/// Load the sources into the store (objects only; the caller runs the controller afterwards).
pub(crate) fn load(
    store: &mut Store,
    sources: &[Source],
    age: Duration,
    start: jiff::Timestamp,
) -> Result<usize, String> {
    load_with(store, sources, age, start, true)
}

/// [`load`], with or without the API server's defaulting (a real server does its own).
pub(crate) fn load_with(
    store: &mut Store,
    sources: &[Source],
    age: Duration,
    start: jiff::Timestamp,
    defaults: bool,
) -> Result<usize, String> {
    let created = util::ts(util::minus(start, age));
    let mut skipped = 0;
    // (kind, namespace, name, uid) of the custom resources loaded so far, from any source: an
    // ownerReference names its owner by kind and name; the uid is the server's.
    let mut owner_uids: Vec<(String, String, String, String)> = Vec::new();
    for src in sources {
        let (text, mut objs) = match &src.origin {
            Origin::File(p) => {
                let path = resolve(p)?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let objs = parse_yaml_docs(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                (text, objs)
            }
            Origin::Yaml(t) => (t.clone(), parse_yaml_docs(t)?),
            Origin::Json(v) => (String::new(), v.clone()),
        };
        let release = src.release.clone().unwrap_or_else(|| FIXTURE_RELEASE.to_string());
        let text = if release != FIXTURE_RELEASE { text.replace(FIXTURE_RELEASE, &release) } else { text };
        let target_ns = src.namespace.clone();
        // CRDs first so that custom resources in the same batch resolve.
        objs.sort_by_key(|o| if o.get("kind") == Some(&json!("CustomResourceDefinition")) { 0 } else { 1 });
        let mut pending: Vec<(ResourceType, Value)> = Vec::new();
        for mut obj in objs {
            let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
            let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
            if api_version.is_empty() || kind.is_empty() {
                skipped += 1;
                continue;
            }
            if release != FIXTURE_RELEASE {
                util::replace_strings(&mut obj, FIXTURE_RELEASE, &release);
            }
            let types = all_types(store);
            let Some(rt) = type_for_kind(&types, &api_version, &kind) else {
                skipped += 1;
                continue;
            };
            if rt.key() == ResKey::new("autoscaling", "horizontalpodautoscalers")
                && api_version == "autoscaling/v1"
            {
                obj = hpa_v1_to_v2(&obj);
            }
            let ns = if rt.namespaced {
                target_ns.clone().unwrap_or_else(|| {
                    let n = meta_str(&obj, "namespace");
                    if n.is_empty() { "default".to_string() } else { n.to_string() }
                })
            } else {
                String::new()
            };
            let name = meta_str(&obj, "name").to_string();
            if name.is_empty() {
                skipped += 1;
                continue;
            }
            {
                let m = util::meta_mut(&mut obj);
                if rt.namespaced {
                    m.insert("namespace".into(), json!(ns));
                } else {
                    m.remove("namespace");
                }
                m.entry("uid").or_insert_with(|| json!(util::uid(&[&rt.kind, &ns, &name])));
                m.insert("creationTimestamp".into(), json!(created));
                m.entry("generation").or_insert(json!(1));
                if src.helm_install {
                    let a = util::obj_mut(m, "annotations");
                    a.insert("meta.helm.sh/release-name".into(), json!(release));
                    a.insert(
                        "meta.helm.sh/release-namespace".into(),
                        json!(target_ns.clone().unwrap_or_else(|| if ns.is_empty() {
                            "default".into()
                        } else {
                            ns.clone()
                        })),
                    );
                }
            }
            if rt.group == "milvus.io" && rt.kind == "Milvus" {
                if let Some(st) = milvus_status(&obj, &src.milvus_status, &created) {
                    obj["status"] = st;
                }
                owner_uids.push((
                    rt.kind.clone(),
                    ns.clone(),
                    name.clone(),
                    meta_str(&obj, "uid").to_string(),
                ));
            }
            if defaults {
                controller::apply_defaults(&rt.key(), &mut obj);
            }
            if rt.kind == "CustomResourceDefinition" {
                // store at once so later objects of this batch can use it
                store.put(&rt.key(), obj);
                continue;
            }
            pending.push((rt, obj));
        }
        for (rt, mut obj) in pending {
            let ns = meta_str(&obj, "namespace").to_string();
            if let Some(refs) = obj.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                for r in refs.iter_mut() {
                    let (k, n) = (
                        r.get("kind").and_then(Value::as_str).unwrap_or_default().to_string(),
                        r.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    );
                    if let Some((.., uid)) =
                        owner_uids.iter().find(|(ok, ons, on, _)| *ok == k && *ons == ns && *on == n)
                    {
                        r["uid"] = json!(uid);
                    }
                }
            }
            ensure_namespace(store, meta_str(&obj, "namespace"), &created);
            store.put(&rt.key(), obj);
        }
        if src.helm_install {
            let ns = target_ns.clone().unwrap_or_else(|| "default".into());
            ensure_namespace(store, &ns, &created);
            let values = if src.helm_values.as_object().is_some_and(|m| m.is_empty()) {
                values_of_render(&parse_yaml_docs(&text)?)
            } else {
                src.helm_values.clone()
            };
            let secret = helm_release_secret(&release, &ns, &values, &text, &created)?;
            store.put(&ResKey::new("", "secrets"), secret);
        }
    }
    Ok(skipped)
}

/// Built-in types plus the CRD-defined ones currently stored.
pub(crate) fn all_types(store: &Store) -> Vec<ResourceType> {
    let mut t = resources::builtins();
    let crd = ResKey::new("apiextensions.k8s.io", "customresourcedefinitions");
    t.extend(store.list(&crd, None, None).filter_map(resources::from_crd));
    t
}

/// Override `spec.replicas` of loaded Deployments and StatefulSets (`name` or `ns/name`).
pub(crate) fn apply_replicas(store: &mut Store, replicas: &[(String, i64)]) -> Result<(), String> {
    for (w, r) in replicas {
        let (ns, name) = match w.split_once('/') {
            Some((a, b)) => (Some(a), b),
            None => (None, w.as_str()),
        };
        let mut found = false;
        for plural in ["deployments", "statefulsets"] {
            let k = ResKey::new("apps", plural);
            let hits: Vec<Value> =
                store.list(&k, ns, None).filter(|o| util::meta_str(o, "name") == name).cloned().collect();
            for mut o in hits {
                util::set_replicas(&mut o, *r);
                store.put(&k, o);
                found = true;
            }
        }
        if !found {
            return Err(format!("replicas({w}): no such Deployment or StatefulSet"));
        }
    }
    Ok(())
}

/// `node-{i}`, one of the three Ready nodes pods are scheduled on.
pub(crate) fn node_object(i: u32, created: &str, version: &str) -> Value {
    let name = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": util::uid(&["Node", &name]), "creationTimestamp": created,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {"podCIDR": format!("10.244.{i}.0/24")},
        "status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "31Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": created, "lastTransitionTime": created}],
            "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", 10 + i)}, {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": version, "containerRuntimeVersion": "containerd://2.0.5", "osImage": "Ubuntu 24.04 LTS", "kernelVersion": "6.8.0", "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_helm_fixture_with_install_metadata() {
        let mut store = Store::default();
        let mut src = Source::new(Origin::File("helm/default.yaml".into()));
        src.helm_install = true;
        src.release = Some("other".into());
        src.namespace = Some("prod".into());
        src.helm_values = json!({"queryNode": {"replicas": 2}});
        let skipped = load(&mut store, &[src], Duration::from_secs(300), util::now_ts()).expect("load");
        assert_eq!(skipped, 0);
        let d = store
            .get(&ResKey::new("apps", "deployments"), "prod", "other-milvus-querynode")
            .expect("renamed deployment");
        assert_eq!(d["metadata"]["annotations"]["meta.helm.sh/release-name"], "other");
        assert_eq!(d["metadata"]["annotations"]["meta.helm.sh/release-namespace"], "prod");
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/instance"], "other");
        assert!(store.get(&ResKey::new("", "namespaces"), "", "prod").is_some());
        let s = store
            .get(&ResKey::new("", "secrets"), "prod", "sh.helm.release.v1.other.v1")
            .expect("release secret");
        assert_eq!(s["type"], "helm.sh/release.v1");
        assert_eq!(s["metadata"]["labels"]["owner"], "helm");
        let rel = decode_helm_release(s).expect("decode");
        assert_eq!(rel["info"]["status"], "deployed");
        assert_eq!(rel["chart"]["metadata"]["version"], "5.0.19");
        assert_eq!(rel["config"]["queryNode"]["replicas"], 2);
        assert_eq!(rel["namespace"], "prod");
    }

    #[test]
    fn operator_fixture_links_owner_uid() {
        let mut store = Store::default();
        let crd = Source::new(Origin::File("operator/milvus-crd.yaml".into()));
        let mut cr = Source::new(Origin::File("operator/cluster.yaml".into()));
        cr.release = Some("vectors".into());
        cr.namespace = Some("operator".into());
        load(&mut store, &[crd, cr], Duration::from_secs(300), util::now_ts()).expect("load");
        let m = store.get(&ResKey::new("milvus.io", "milvuses"), "operator", "vectors").expect("cr");
        assert_eq!(m["status"]["status"], "Healthy");
        let d = store
            .get(&ResKey::new("apps", "deployments"), "operator", "vectors-milvus-proxy")
            .expect("deployment");
        assert_eq!(d["metadata"]["ownerReferences"][0]["uid"], m["metadata"]["uid"]);
        assert_ne!(m["metadata"]["uid"], "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn hpa_conversion() {
        let v2 = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 60}}}, {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 40}}}]}});
        let v1 = hpa_v2_to_v1(&v2);
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 40);
        assert_eq!(v1["spec"]["maxReplicas"], 5);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(hpa_v1_to_v2(&v1)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 40);
    }
}
