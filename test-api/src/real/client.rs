//! Requests to the control plane: raw HTTP calls through kube's client, API discovery (which
//! version serves a type) and resource paths.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

pub(super) async fn call(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<(&Value, &str)>,
) -> Result<(u16, Value), String> {
    let mut b = http::Request::builder().method(method).uri(path).header("Accept", "application/json");
    let bytes = match body {
        Some((v, ct)) => {
            b = b.header("Content-Type", ct);
            serde_json::to_vec(v).map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    let req = b.body(kube::client::Body::from(bytes)).map_err(|e| e.to_string())?;
    let resp = client.send(req).await.map_err(|e| format!("{method} {path}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.map_err(|e| format!("{method} {path}: {e}"))?;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, v))
}

/// `call` that wants a 2xx.
pub(super) async fn call_ok(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<(&Value, &str)>,
) -> Result<Value, String> {
    let (code, v) = call(client, method, path, body).await?;
    if (200..300).contains(&code) { Ok(v) } else { Err(format!("{method} {path}: {code} {}", message(&v))) }
}

pub(super) fn message(v: &Value) -> String {
    v.get("message").and_then(Value::as_str).map(String::from).unwrap_or_else(|| v.to_string())
}

pub(super) const JSON: &str = "application/json";
pub(super) const MERGE: &str = "application/merge-patch+json";

pub(super) fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[derive(Debug, Clone)]
pub(super) struct ApiRes {
    pub(super) group: String,
    pub(super) version: String,
    /// `plural` or `plural/subresource`.
    pub(super) plural: String,
    pub(super) kind: String,
    pub(super) namespaced: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Discovery {
    pub(super) res: Vec<ApiRes>,
    pub(super) preferred: HashMap<String, String>,
}

impl Discovery {
    pub(super) async fn load(client: &kube::Client) -> Result<Discovery, String> {
        let mut d = Discovery::default();
        let mut gvs = vec![(String::new(), "v1".to_string())];
        d.preferred.insert(String::new(), "v1".into());
        let groups = call_ok(client, "GET", "/apis", None).await?;
        for g in groups["groups"].as_array().into_iter().flatten() {
            let name = g["name"].as_str().unwrap_or_default().to_string();
            if let Some(p) = g.pointer("/preferredVersion/version").and_then(Value::as_str) {
                d.preferred.insert(name.clone(), p.to_string());
            }
            for v in g["versions"].as_array().into_iter().flatten() {
                gvs.push((name.clone(), v["version"].as_str().unwrap_or_default().to_string()));
            }
        }
        for (group, version) in gvs {
            let path =
                if group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{group}/{version}") };
            // A group version announced before it is served (a new CRD) counts as absent.
            let list = match call(client, "GET", &path, None).await? {
                (200, v) => v,
                (404 | 503, _) => continue,
                (code, v) => return Err(format!("GET {path}: {code} {}", message(&v))),
            };
            for r in list["resources"].as_array().into_iter().flatten() {
                d.res.push(ApiRes {
                    group: group.clone(),
                    version: version.clone(),
                    plural: r["name"].as_str().unwrap_or_default().to_string(),
                    kind: r["kind"].as_str().unwrap_or_default().to_string(),
                    namespaced: r["namespaced"].as_bool().unwrap_or(false),
                });
            }
        }
        Ok(d)
    }

    /// The version to read `group/plural` through: the server's preferred one (HPAs:
    /// `autoscaling/v2`, as on the loopback).
    pub(super) fn lookup(&self, group: &str, plural: &str) -> Option<&ApiRes> {
        let cands: Vec<&ApiRes> =
            self.res.iter().filter(|r| r.group == group && r.plural == plural).collect();
        let pick = |v: &str| cands.iter().copied().find(|r| r.version == v);
        self.preferred.get(group).and_then(|p| pick(p)).or_else(|| cands.first().copied())
    }

    pub(super) fn lookup_version(&self, group: &str, version: &str, plural: &str) -> Option<&ApiRes> {
        self.res
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .or_else(|| self.lookup(group, plural))
    }

    /// The served resource for an object's `apiVersion` and `kind` (a version this server does not
    /// serve is mapped to the one it prefers).
    pub(super) fn for_kind(&self, api_version: &str, kind: &str) -> Option<&ApiRes> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let main = |r: &&ApiRes| r.group == group && r.kind == kind && !r.plural.contains('/');
        if let Some(r) = self.res.iter().filter(main).find(|r| r.version == version) {
            return Some(r);
        }
        let plural = self.res.iter().find(main)?.plural.clone();
        self.lookup(group, &plural)
    }
}

pub(super) fn res_path(r: &ApiRes, namespace: Option<&str>, name: Option<&str>) -> String {
    let mut p = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    if r.namespaced
        && let Some(ns) = namespace.filter(|n| !n.is_empty())
    {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    let (plural, sub) = match r.plural.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (r.plural.as_str(), None),
    };
    p.push('/');
    p.push_str(plural);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
        if let Some(s) = sub {
            p.push('/');
            p.push_str(s);
        }
    }
    p
}

pub(super) async fn client_for(kubeconfig: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| e.to_string())?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(cfg).map_err(|e| e.to_string())
}

/// Strip what the server assigns, so the object can be created.
pub(super) fn for_create(mut obj: Value, api_version: &str) -> Value {
    obj["apiVersion"] = json!(api_version);
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink"] {
            m.remove(k);
        }
    }
    obj
}

pub(super) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
