//! Loading the builder's sources into the control plane: the loopback's loader renders them
//! (renames, Helm metadata, release Secrets, CR status), then they are created in dependency order
//! (namespaces, CRDs, custom resources, then the rest with the custom resources' uids in their
//! ownerReferences), with nodes for the kubelet stand-in.

use super::client::Discovery;
use super::client::{JSON, MERGE, for_create, message, res_path};
use super::{Real, lock};
use crate::auth::Rules;
use crate::fixtures::{self, Source};
use crate::store::Store;
use crate::util::{self, meta_str};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

impl Real {
    pub(super) fn create(&self, obj: &Value) -> Result<Value, String> {
        let av = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let r =
            self.h.disc().for_kind(av, kind).cloned().ok_or_else(|| format!("{av} {kind} is not served"))?;
        let gv = if r.group.is_empty() { r.version.clone() } else { format!("{}/{}", r.group, r.version) };
        let body = for_create(obj.clone(), &gv);
        let ns = meta_str(&body, "namespace");
        let path = res_path(&r, Some(ns).filter(|n| !n.is_empty()), None);
        self.call_ok("POST", &path, Some((&body, JSON)))
    }

    /// Waits until discovery lists every one of `versions` of `group`/`plural`. One version is not
    /// enough: a new CRD's versions can appear one after the other, and an object created through a
    /// version other than its own is pruned by that version's schema (the Milvus CRD's v1alpha1 has
    /// no `spec.mode`).
    pub(super) fn wait_served(&self, group: &str, plural: &str, versions: &[&str]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let d = self.block(Discovery::load(&self.h.client))?;
            let found = d.lookup(group, plural).is_some()
                && versions
                    .iter()
                    .all(|v| d.lookup_version(group, v, plural).is_some_and(|r| r.version == *v));
            *lock(&self.h.disc) = d;
            if found {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{plural}.{group} not served 30s after its CRD was created"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(super) fn load(
        &self,
        sources: &[Source],
        replicas: &[(String, i64)],
        age: Duration,
        users: &[(String, Rules)],
    ) -> Result<(), String> {
        // The loopback's loader does renames, Helm metadata, release Secrets and CR status.
        let mut store = Store::default();
        fixtures::load_with(&mut store, sources, age, util::now_ts(), false)?;
        fixtures::apply_replicas(&mut store, replicas)?;
        let types = fixtures::all_types(&store);
        let mut objects: Vec<(String, Value)> = Vec::new(); // (kind, object)
        for t in &types {
            for o in store.list(&t.key(), None, None) {
                objects.push((t.kind.clone(), o.clone()));
            }
        }
        // Nodes for the kubelet stand-in to "run" pods on.
        let created = util::ts(util::now_ts());
        for i in 1..=3 {
            let node = fixtures::node_object(i, &created, &self.git_version);
            self.create(&node)?;
            let status = json!({"status": node["status"].clone()});
            self.call_ok("PATCH", &format!("/api/v1/nodes/node-{i}/status"), Some((&status, MERGE)))?;
        }
        let mut namespaces: Vec<String> = vec!["default".into()];
        for (kind, o) in objects.iter().filter(|(k, _)| k == "Namespace") {
            let _ = kind;
            let name = meta_str(o, "name").to_string();
            let (code, v) =
                self.call("POST", "/api/v1/namespaces", Some((&for_create(o.clone(), "v1"), JSON)))?;
            if code != 201 && code != 409 {
                return Err(format!("namespace {name}: {code} {}", message(&v)));
            }
            if !namespaces.contains(&name) {
                namespaces.push(name);
            }
        }
        for (_, o) in objects.iter().filter(|(k, _)| k == "CustomResourceDefinition") {
            self.create(o)?;
            let group = o.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
            let plural = o.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or_default();
            let versions: Vec<&str> = o
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter().filter(|v| v["served"] == true).filter_map(|v| v["name"].as_str()).collect()
                })
                .unwrap_or_default();
            self.wait_served(group, plural, &versions)?;
        }
        // Custom resources next (their uids go into the ownerReferences of the rest).
        let builtin: HashSet<String> = crate::resources::builtins().into_iter().map(|t| t.kind).collect();
        let mut uids: HashMap<String, String> = HashMap::new();
        let is_custom = |kind: &str| !builtin.contains(kind);
        for (_, o) in objects.iter().filter(|(k, _)| is_custom(k)) {
            let created = self.create(o)?;
            uids.insert(meta_str(o, "uid").to_string(), meta_str(&created, "uid").to_string());
            if let Some(status) = o.get("status").filter(|s| !s.is_null()) {
                let r = self
                    .h
                    .disc()
                    .for_kind(
                        o["apiVersion"].as_str().unwrap_or_default(),
                        o["kind"].as_str().unwrap_or_default(),
                    )
                    .cloned()
                    .ok_or("custom resource not served")?;
                let mut sr = r.clone();
                sr.plural = format!("{}/status", r.plural);
                let path = res_path(&sr, Some(meta_str(o, "namespace")), Some(meta_str(o, "name")));
                self.call_ok("PATCH", &path, Some((&json!({"status": status}), MERGE)))?;
            }
        }
        for (kind, o) in &objects {
            if matches!(kind.as_str(), "Namespace" | "CustomResourceDefinition") || is_custom(kind) {
                continue;
            }
            let mut o = o.clone();
            if let Some(refs) = o.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
                for r in refs.iter_mut() {
                    if let Some(new) = r.get("uid").and_then(Value::as_str).and_then(|u| uids.get(u)) {
                        r["uid"] = json!(new);
                    }
                }
            }
            if let Some(m) = o.get_mut("status").filter(|_| kind != "Secret") {
                *m = Value::Null;
            }
            if let Some(obj) = o.as_object_mut() {
                obj.retain(|_, v| !v.is_null());
            }
            match self.create(&o) {
                Ok(_) => {}
                Err(e) if e.contains("is not served") => {} // as the loopback skips unknown kinds
                Err(e) => return Err(format!("{kind} {}: {e}", meta_str(&o, "name"))),
            }
        }
        self.grant(users, &namespaces)
    }
}
