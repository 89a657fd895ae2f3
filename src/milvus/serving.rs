//! What Milvus itself says it serves: loaded collections and their replicas, query and streaming
//! nodes matched to pods, and whether every collection is fully served. Pure: built from the JSON
//! answers of Milvus's HTTP API (read by `client::milvus_http`), no I/O.
//!
//! Fully served (per replica of a collection, per the collection's current target): every target
//! channel has a serving leader on a read-write node of the replica (2.5: a leader view whose
//! `leader_id` is read-write and whose `unserviceable_error` is empty; 2.6, which sets no leader
//! views: a `dm_channels` entry on a read-write node), every target segment is loaded on a
//! read-write node of the replica, and the replica has no read-only node left (a node being
//! drained).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

/// An int64 that Milvus sends as a string (`"451"`) or a number.
fn id(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn ids(v: &Value) -> BTreeSet<i64> {
    v.as_array().into_iter().flatten().filter_map(id).collect()
}

fn array(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The answers Milvus gave (`None`: not read or not answered).
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// `/api/v1/_qc/dist`.
    pub dist: Option<Value>,
    /// `/api/v1/_qc/replica`.
    pub replicas: Option<Value>,
    /// `/api/v1/_qc/target`.
    pub target: Option<Value>,
    /// `/management/querycoord/node/list`.
    pub query_nodes: Option<Value>,
    /// `/management/streaming/nodes` (2.6).
    pub streaming_nodes: Option<Value>,
    /// `/api/v1/_collection/list` (the default database): the collections' names.
    pub collection_list: Option<Value>,
}

/// One loaded collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionServing {
    pub id: i64,
    /// From `_collection/list` (the default database's collections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub replicas: Vec<ReplicaServing>,
    pub channels: usize,
    pub segments: usize,
    pub fully_served: bool,
    /// What is missing when not fully served, e.g. `replica 451: channel X has no serving leader`.
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaServing {
    pub id: i64,
    pub rw_nodes: Vec<i64>,
    pub ro_nodes: Vec<i64>,
}

/// `querynode` or `streamingnode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeKind {
    Querynode,
    Streamingnode,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Querynode => "querynode",
            NodeKind::Streamingnode => "streamingnode",
        }
    }
}

/// One Milvus node, matched to its pod by IP.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeServing {
    pub kind: NodeKind,
    pub node_id: i64,
    /// The pod whose IP is the node's address (None: no pod of the release has it).
    pub pod: Option<String>,
    pub address: String,
    /// `active`, `stopping`, `suspended` (2.6); `Normal`, `Stopping` (2.5).
    pub state: String,
    /// Sealed segments and channels a query node holds (from `_qc/dist`; None for streaming nodes).
    pub segments: Option<usize>,
    pub channels: Option<usize>,
}

impl NodeServing {
    /// A node that is going away or being drained.
    pub fn is_stopping(&self) -> bool {
        self.state.eq_ignore_ascii_case("stopping")
    }
}

/// Milvus's view of what it serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Serving {
    /// None when the collections could not be read (see the warnings).
    pub collections: Option<Vec<CollectionServing>>,
    /// None when the nodes could not be read.
    pub nodes: Option<Vec<NodeServing>>,
}

impl Serving {
    /// Collections that are not fully served.
    pub fn not_fully_served(&self) -> Vec<&CollectionServing> {
        self.collections.iter().flatten().filter(|c| !c.fully_served).collect()
    }
}

/// The host of an `ip:port` address.
fn host(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

fn nodes(list: &Value, kind: NodeKind, pods_by_ip: &BTreeMap<String, String>) -> Vec<NodeServing> {
    array(&list["nodeInfos"])
        .filter_map(|n| {
            let address = n["address"].as_str().unwrap_or_default().to_string();
            Some(NodeServing {
                kind,
                node_id: id(&n["ID"])?,
                pod: pods_by_ip.get(host(&address)).cloned(),
                address,
                state: n["state"].as_str().unwrap_or_default().to_string(),
                segments: None,
                channels: None,
            })
        })
        .collect()
}

/// Milvus's answers as a [`Serving`]; `pods_by_ip` maps the release's pod IPs to pod names.
pub fn serving(answers: &Answers, pods_by_ip: &BTreeMap<String, String>) -> Serving {
    let mut node_list: Option<Vec<NodeServing>> = None;
    if let Some(list) = &answers.query_nodes {
        node_list.get_or_insert_with(Vec::new).extend(nodes(list, NodeKind::Querynode, pods_by_ip));
    }
    if let Some(list) = &answers.streaming_nodes {
        node_list.get_or_insert_with(Vec::new).extend(nodes(list, NodeKind::Streamingnode, pods_by_ip));
    }
    if let (Some(list), Some(dist)) = (node_list.as_mut(), &answers.dist) {
        for node in list.iter_mut().filter(|n| n.kind == NodeKind::Querynode) {
            let on = |v: &Value| v["node_id"].as_i64() == Some(node.node_id);
            node.segments = Some(array(&dist["segments"]).filter(|s| on(s)).count());
            node.channels = Some(array(&dist["dm_channels"]).filter(|s| on(s)).count());
        }
    }
    let collections = match (&answers.dist, &answers.replicas, &answers.target) {
        (Some(dist), Some(replicas), Some(target)) => {
            let mut found = collections(dist, replicas, target);
            if let Some(list) = &answers.collection_list {
                let names: BTreeMap<i64, &str> = array(&list["collection_ids"])
                    .zip(array(&list["collection_names"]))
                    .filter_map(|(id_, name)| Some((id(id_)?, name.as_str()?)))
                    .collect();
                for c in &mut found {
                    c.name = names.get(&c.id).map(|n| (*n).to_string());
                }
            }
            Some(found)
        }
        _ => None,
    };
    Serving { collections, nodes: node_list }
}

fn collections(dist: &Value, replicas: &Value, target: &Value) -> Vec<CollectionServing> {
    // The replicas of each collection.
    let mut by_collection: BTreeMap<i64, Vec<ReplicaServing>> = BTreeMap::new();
    for r in array(replicas) {
        let (Some(rid), Some(cid)) = (id(&r["ID"]), id(&r["collectionID"])) else { continue };
        by_collection.entry(cid).or_default().push(ReplicaServing {
            id: rid,
            rw_nodes: ids(&r["rw_nodes"]).into_iter().collect(),
            ro_nodes: ids(&r["ro_nodes"]).into_iter().collect(),
        });
    }
    // Where each segment is loaded, and which nodes lead each channel.
    let mut segment_nodes: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for s in array(&dist["segments"]) {
        if let (Some(sid), Some(node)) = (id(&s["segment_id"]), s["node_id"].as_i64()) {
            segment_nodes.entry(sid).or_default().insert(node);
        }
    }
    let leader_views: Vec<&Value> = array(&dist["leader_views"]).collect();
    let mut leaders: BTreeMap<(i64, String), BTreeSet<i64>> = BTreeMap::new();
    if leader_views.is_empty() {
        for c in array(&dist["dm_channels"]) {
            if let (Some(cid), Some(ch), Some(node)) =
                (id(&c["collection_id"]), c["channel_name"].as_str(), c["node_id"].as_i64())
            {
                leaders.entry((cid, ch.to_string())).or_default().insert(node);
            }
        }
    } else {
        for v in leader_views {
            let serviceable = v["unserviceable_error"].as_str().is_none_or(str::is_empty);
            if let (Some(cid), Some(ch), Some(node), true) =
                (id(&v["collection_id"]), v["channel"].as_str(), id(&v["leader_id"]), serviceable)
            {
                leaders.entry((cid, ch.to_string())).or_default().insert(node);
            }
        }
    }
    let mut out = Vec::new();
    for t in array(target) {
        let Some(cid) = id(&t["collection_id"]) else { continue };
        let channels: Vec<String> =
            array(&t["dm_channels"]).filter_map(|c| c["channel_name"].as_str().map(str::to_string)).collect();
        let segments: Vec<i64> = array(&t["segments"]).filter_map(|s| id(&s["segment_id"])).collect();
        let replicas = by_collection.remove(&cid).unwrap_or_default();
        let mut missing = Vec::new();
        if replicas.is_empty() {
            missing.push("no replica".to_string());
        }
        for r in &replicas {
            let rw: BTreeSet<i64> = r.rw_nodes.iter().copied().collect();
            if rw.is_empty() {
                missing.push(format!("replica {}: no read-write node", r.id));
            }
            if !r.ro_nodes.is_empty() {
                let ro: Vec<String> = r.ro_nodes.iter().map(i64::to_string).collect();
                missing.push(format!(
                    "replica {}: node {} still read-only (being drained)",
                    r.id,
                    ro.join(", ")
                ));
            }
            for ch in &channels {
                let served = leaders.get(&(cid, ch.clone())).is_some_and(|n| !n.is_disjoint(&rw));
                if !served {
                    missing.push(format!("replica {}: channel {ch} has no serving leader", r.id));
                }
            }
            let unloaded: Vec<i64> = segments
                .iter()
                .copied()
                .filter(|s| segment_nodes.get(s).is_none_or(|n| n.is_disjoint(&rw)))
                .collect();
            if !unloaded.is_empty() {
                let shown: Vec<String> = unloaded.iter().take(3).map(i64::to_string).collect();
                let more = if unloaded.len() > 3 {
                    format!(" and {} more", unloaded.len() - 3)
                } else {
                    String::new()
                };
                missing.push(format!(
                    "replica {}: {} of {} segments not loaded on a read-write node ({}{more})",
                    r.id,
                    unloaded.len(),
                    segments.len(),
                    shown.join(", ")
                ));
            }
        }
        out.push(CollectionServing {
            id: cid,
            name: None,
            replicas,
            channels: channels.len(),
            segments: segments.len(),
            fully_served: missing.is_empty(),
            missing,
        });
    }
    out.sort_by_key(|c| c.id);
    out
}

/// The node a scale-in step removes (the documented rule): among the active nodes of `kind` that
/// are matched to a pod, the one holding the least data (segments + channels; streaming nodes count
/// none), ties broken by the pod name that sorts last (the newest of a ReplicaSet's names is not
/// knowable from the name, so the rule is only stable, not "newest").
pub fn choose_node<'a>(serving: &'a Serving, kind: NodeKind, pods: &[String]) -> Option<&'a NodeServing> {
    serving
        .nodes
        .iter()
        .flatten()
        .filter(|n| n.kind == kind && n.pod.as_ref().is_some_and(|p| pods.is_empty() || pods.contains(p)))
        .filter(|n| matches!(n.state.as_str(), "active" | "Normal"))
        .min_by(|a, b| {
            let load = |n: &NodeServing| n.segments.unwrap_or(0) + n.channels.unwrap_or(0);
            load(a).cmp(&load(b)).then_with(|| b.pod.cmp(&a.pod))
        })
}

/// The collections that would not be fully served if node `node` went away now: Milvus's answers
/// with the node's segments and channels taken out of the distribution and the node out of every
/// replica.
pub fn would_lose_service(answers: &Answers, node: i64) -> Vec<i64> {
    let mut without = answers.clone();
    let not_node = |v: &Value| v["node_id"].as_i64() != Some(node) && id(&v["leader_id"]) != Some(node);
    if let Some(dist) = without.dist.as_mut() {
        for key in ["segments", "dm_channels", "leader_views"] {
            if let Some(items) = dist.get_mut(key).and_then(Value::as_array_mut) {
                items.retain(|v| not_node(v));
            }
        }
    }
    if let Some(replicas) = without.replicas.as_mut().and_then(Value::as_array_mut) {
        for r in replicas {
            for key in ["rw_nodes", "ro_nodes"] {
                if let Some(nodes) = r.get_mut(key).and_then(Value::as_array_mut) {
                    nodes.retain(|n| id(n) != Some(node));
                }
            }
        }
    }
    serving(&without, &BTreeMap::new()).not_fully_served().iter().map(|c| c.id).collect()
}

/// A node's distribution (`distribution/get`, `streaming/nodes/distribution`) is empty.
pub fn distribution_empty(v: &Value) -> bool {
    let empty = |key: &str| match &v[key] {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    };
    empty("channel_names") && empty("sealed_segmentIDs")
}

/// The release's health with Milvus's view: a release whose pods are all fine (Healthy) but with a
/// collection not fully served is Degraded, with that reason.
pub fn apply_to_health(release: &mut super::Release, serving: &Serving) {
    let missing = serving.not_fully_served();
    if release.health != super::Health::Healthy || missing.is_empty() {
        return;
    }
    let ids: Vec<String> = missing.iter().map(|c| c.id.to_string()).collect();
    release.health = super::Health::Degraded;
    release.health_reason = match ids.as_slice() {
        [one] => format!("collection {one} not fully served"),
        many => format!("collections {} not fully served", many.join(", ")),
    };
}

/// Where Milvus's own health and dependency view disagree with the pods: components Milvus finds
/// unhealthy (`/healthz` JSON of the pod asked, `has_error` in `_cluster/info`) while their pods are
/// ready, and dependencies it cannot use (`_cluster/dependencies`).
pub fn disagreements(
    healthz: Option<&Value>,
    cluster_info: Option<&Value>,
    dependencies: Option<&Value>,
    asked: &str,
    pods_by_ip: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(h) = healthz {
        let bad: Vec<String> = array(&h["detail"])
            .filter(|d| !matches!(d["code"].as_i64(), Some(1 | 3)))
            .map(|d| format!("{} code {}", d["name"].as_str().unwrap_or("?"), d["code"]))
            .collect();
        if h["state"] != "OK" || !bad.is_empty() {
            out.push(format!(
                "pod {asked} is ready but Milvus's /healthz says {:?}{}",
                h["state"].as_str().unwrap_or_default(),
                if bad.is_empty() { String::new() } else { format!(" ({})", bad.join(", ")) }
            ));
        }
    }
    if let Some(info) = cluster_info {
        for n in array(&info["nodes_info"]) {
            let infos = &n["infos"];
            if infos["has_error"] != true {
                continue;
            }
            let name = infos["name"].as_str().unwrap_or("a node");
            let ip = infos["hardware_infos"]["ip"].as_str().map(host).unwrap_or_default();
            let pod = pods_by_ip.get(ip).map(|p| format!(" (pod {p})")).unwrap_or_default();
            let reason =
                infos["error_reason"].as_str().filter(|r| !r.is_empty()).unwrap_or("no reason given");
            out.push(format!("Milvus reports {name}{pod} in error: {reason}"));
        }
    }
    if let Some(deps) = dependencies {
        for (part, label, kind_key) in
            [("metastore", "metadata store", "meta_type"), ("mq", "message queue", "mq_type")]
        {
            let d = &deps[part];
            if d["health_status"] == false {
                let kind = d[kind_key].as_str().map(|k| format!(" ({k})")).unwrap_or_default();
                let reason =
                    d["unhealthy_reason"].as_str().filter(|r| !r.is_empty()).unwrap_or("no reason given");
                out.push(format!("Milvus cannot use its {label}{kind}: {reason}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answers(version_25: bool, segment_on: i64) -> Answers {
        let mut dist = json!({
            "segments": [
                {"segment_id": "45001", "collection_id": "450", "channel": "ch0", "node_id": 5},
                {"segment_id": "45002", "collection_id": "450", "channel": "ch0", "node_id": segment_on}
            ],
            "dm_channels": [{"node_id": 5, "collection_id": "450", "channel_name": "ch0"}]
        });
        if version_25 {
            dist["leader_views"] = json!([{"leader_id": "5", "collection_id": "450", "channel": "ch0",
                "sealed_segments": [], "unserviceable_error": ""}]);
        }
        Answers {
            dist: Some(dist),
            replicas: Some(json!([{"ID": "451", "collectionID": "450", "rw_nodes": [5, 6]}])),
            target: Some(json!([{"collection_id": "450", "dm_channels": [{"channel_name": "ch0"}],
                "segments": [{"segment_id": "45001"}, {"segment_id": "45002"}]}])),
            query_nodes: Some(json!({"nodeInfos": [
                {"ID": 5, "address": "10.0.0.5:21123", "state": "active"},
                {"ID": 6, "address": "10.0.0.6:21123", "state": "suspended"}]})),
            streaming_nodes: None,
            collection_list: Some(json!({"collection_names": ["books", "films"],
                "collection_ids": ["450", "460"], "query_service_available": [true, true]})),
        }
    }

    #[test]
    fn a_collection_with_every_segment_on_a_read_write_node_is_fully_served() {
        let pods = BTreeMap::from([("10.0.0.5".to_string(), "qn-a".to_string())]);
        for v25 in [true, false] {
            let s = serving(&answers(v25, 6), &pods);
            let c = &s.collections.as_ref().expect("collections")[0];
            assert!(c.fully_served, "{c:?}");
            let nodes = s.nodes.expect("nodes");
            assert_eq!(
                (nodes[0].pod.as_deref(), nodes[0].segments, nodes[0].channels),
                (Some("qn-a"), Some(1), Some(1))
            );
            assert_eq!((nodes[1].pod.as_deref(), nodes[1].state.as_str()), (None, "suspended"));
        }
    }

    #[test]
    fn the_least_loaded_active_node_is_chosen_and_losses_are_predicted() {
        let pods = BTreeMap::from([
            ("10.0.0.5".to_string(), "qn-a".to_string()),
            ("10.0.0.6".to_string(), "qn-b".to_string()),
        ]);
        let mut a = answers(false, 5);
        a.query_nodes = Some(json!({"nodeInfos": [
            {"ID": 5, "address": "10.0.0.5:21123", "state": "active"},
            {"ID": 6, "address": "10.0.0.6:21123", "state": "active"}]}));
        let s = serving(&a, &pods);
        assert_eq!(choose_node(&s, NodeKind::Querynode, &[]).map(|n| n.node_id), Some(6));
        // Only the pods of the workload being scaled in (a resource group's Deployment) are chosen.
        assert_eq!(choose_node(&s, NodeKind::Querynode, &["qn-a".to_string()]).map(|n| n.node_id), Some(5));
        assert_eq!(choose_node(&s, NodeKind::Querynode, &["other".to_string()]).map(|n| n.node_id), None);
        // Everything is on node 5: removing it takes the collection's service away, removing 6 does not.
        assert_eq!(would_lose_service(&a, 5), vec![450]);
        assert_eq!(would_lose_service(&a, 6), Vec::<i64>::new());
        assert!(distribution_empty(&json!({"channel_names": null, "sealed_segmentIDs": []})));
        assert!(!distribution_empty(&json!({"channel_names": ["c"], "sealed_segmentIDs": null})));
    }

    #[test]
    fn milvus_disagreeing_with_the_pods_is_said() {
        let pods = BTreeMap::from([("10.0.0.5".to_string(), "qn-a".to_string())]);
        let healthz = json!({"state": "OK", "detail": [{"name": "proxy", "code": 1}]});
        let info = json!({"nodes_info": [{"infos": {"name": "querynode5", "has_error": true,
            "error_reason": "boom", "hardware_infos": {"ip": "10.0.0.5:21123"}}}]});
        let deps = json!({"mq": {"health_status": false, "mq_type": "pulsar", "unhealthy_reason": "no broker"},
            "metastore": {"health_status": true, "meta_type": "etcd"}});
        let said = disagreements(Some(&healthz), Some(&info), Some(&deps), "p", &pods);
        assert_eq!(
            said,
            vec![
                "Milvus reports querynode5 (pod qn-a) in error: boom".to_string(),
                "Milvus cannot use its message queue (pulsar): no broker".to_string()
            ]
        );
        let sick =
            json!({"state": "Not all components are healthy, 0/1", "detail": [{"name": "proxy", "code": 2}]});
        assert_eq!(disagreements(Some(&sick), None, None, "p", &pods).len(), 1);
    }

    #[test]
    fn a_segment_on_no_read_write_node_or_a_read_only_node_is_missing() {
        let s = serving(&answers(false, 9), &BTreeMap::new());
        let c = &s.not_fully_served()[0];
        assert_eq!(c.missing, vec!["replica 451: 1 of 2 segments not loaded on a read-write node (45002)"]);
        let mut a = answers(true, 5);
        a.replicas = Some(json!([{"ID": "451", "collectionID": "450", "rw_nodes": [6], "ro_nodes": [5]}]));
        let s = serving(&a, &BTreeMap::new());
        let missing = &s.not_fully_served()[0].missing;
        assert_eq!(missing.len(), 3, "{missing:?}");
        assert!(missing[1].contains("channel ch0 has no serving leader"), "{missing:?}");
    }
}
