//! A fake Milvus behind the pods' port 9091: what the plugin reads and calls over Milvus's HTTP
//! API, with the JSON shapes of Milvus 2.5 and 2.6 (`shared/reference/milvus-http.md`).
//!
//! Nodes are the Ready pods of the release's querynode workloads (query nodes) and streamingnode
//! workloads (streaming nodes), matched by pod IP: a node's `address` is `POD_IP:21123`. Node IDs
//! are given in the order pods are first seen, from 5. Collections have replicas (`rw_nodes`,
//! `ro_nodes`), channels and sealed segments; the target is every channel and segment of each loaded
//! collection. At the first request each replica's channels and segments are spread over its nodes.
//!
//! The balancer: an item (a channel or a segment of a replica) that is not on a read-write node of
//! its replica (its node was suspended or went away) moves to the read-write node of that replica
//! with the least load once it has been misplaced for the balance delay, if a node has room (a node
//! holds at most `node_capacity` items, unlimited by default). A suspended node leaves its
//! replicas once it holds nothing of them. State advances lazily, at each request.
//!
//! Routes (any pod of the role, as Milvus serves them): every pod `/healthz` (JSON with
//! `Content-Type: application/json`, else `OK`); proxy pods `/api/v1/_cluster/info`,
//! `/api/v1/_cluster/dependencies`, `/api/v1/_qc/dist`, `/api/v1/_qc/replica`, `/api/v1/_qc/target`,
//! `/api/v1/_collection/list`
//! (401 with authorization on, 2.6) and `/management/querycoord/node/list|node/suspend|node/resume|
//! distribution/get`; 2.6 mixcoord pods `/management/streaming/nodes`, `…/nodes/status` (GET, PUT),
//! `…/nodes/distribution`. Every request the fake answers is recorded ([`FakeMilvus::requests`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::pod_http::{Handler, HttpReply, PodRequest, PodSeen};

/// The port Milvus nodes register with querycoord (the address `node/list` shows).
const NODE_PORT: u16 = 21123;
const FIRST_NODE_ID: i64 = 5;

/// Milvus components, as the chart and the operator name their workloads.
const ROLES: &[&str] = &[
    "querynode",
    "streamingnode",
    "datanode",
    "indexnode",
    "proxy",
    "mixcoord",
    "rootcoord",
    "querycoord",
    "datacoord",
    "indexcoord",
    "standalone",
];

/// The Milvus role of a workload (`my-release-milvus-querynode`, `vectors-milvus-querynode-0`).
fn role_of(workload: &str) -> Option<&'static str> {
    ROLES.iter().copied().find(|role| {
        workload.ends_with(&format!("-{role}"))
            || workload
                .split_once(&format!("-{role}-"))
                .is_some_and(|(_, rest)| !rest.is_empty() && !rest.contains("-milvus"))
    })
}

/// Milvus's major.minor line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MilvusVersion {
    /// 2.5: querycoord states `Normal`/`Stopping`, leader views in `_qc/dist`, no streaming nodes.
    V2_5,
    /// 2.6: states `active`/`stopping`/`suspended`, mixcoord, streaming nodes, authorization on `/api/v1`.
    V2_6,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusRequest {
    /// The pod it reached.
    pub pod: String,
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// The status answered.
    pub status: u16,
    /// The body answered (JSON as text).
    pub answer: String,
    /// When the fake answered it (wall clock, comparable with [`crate::RequestRecord::received`]).
    pub received: std::time::SystemTime,
}

impl MilvusRequest {
    /// The answer as JSON (Null when it is not).
    pub fn answer_json(&self) -> Value {
        serde_json::from_str(&self.answer).unwrap_or(Value::Null)
    }

    /// A query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Query,
    Streaming,
}

#[derive(Debug, Clone)]
struct Node {
    id: i64,
    kind: Kind,
    pod: String,
    ip: String,
    suspended: bool,
}

#[derive(Debug, Clone)]
struct Replica {
    id: i64,
    rw: BTreeSet<i64>,
    ro: BTreeSet<i64>,
}

#[derive(Debug, Clone)]
struct Collection {
    id: i64,
    name: String,
    channels: Vec<String>,
    /// `(segment id, channel index)`.
    segments: Vec<(i64, usize)>,
    replicas: Vec<Replica>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Channel(String),
    Segment(i64),
}

/// A replica's item: `(replica id, item)`.
type Key = (i64, Item);

struct State {
    version: MilvusVersion,
    authorization: bool,
    delay: Duration,
    capacity: Option<usize>,
    collections: Vec<Collection>,
    /// Segments that can never be loaded (not fully served).
    unloadable: BTreeSet<i64>,
    /// Nodes by pod name (`namespace/name`).
    nodes: BTreeMap<String, Node>,
    /// Every node ID given, by pod name (kept after the node leaves).
    given: BTreeMap<String, i64>,
    next_id: i64,
    placed: BTreeMap<Key, i64>,
    misplaced_since: BTreeMap<Key, Instant>,
    /// Streaming nodes' WAL channels: channel → node.
    wals: BTreeMap<String, i64>,
    wal_misplaced_since: BTreeMap<String, Instant>,
    loaded: bool,
    dependencies: Value,
    /// Health codes by pod or workload name.
    codes: BTreeMap<String, i64>,
    log: Vec<MilvusRequest>,
}

/// The fake Milvus. Cheap to clone (a handle); give it to [`crate::TestApiBuilder::milvus`] and keep
/// a clone to inspect or change it during a test.
#[derive(Clone)]
pub struct FakeMilvus {
    st: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FakeMilvus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeMilvus").finish_non_exhaustive()
    }
}

fn s(id: i64) -> String {
    id.to_string()
}

impl FakeMilvus {
    /// A Milvus of `version` with no collections, authorization off, balance delay 0.
    pub fn new(version: MilvusVersion) -> Self {
        let state = State {
            version,
            authorization: false,
            delay: Duration::ZERO,
            capacity: None,
            collections: Vec::new(),
            unloadable: BTreeSet::new(),
            nodes: BTreeMap::new(),
            given: BTreeMap::new(),
            next_id: FIRST_NODE_ID,
            placed: BTreeMap::new(),
            misplaced_since: BTreeMap::new(),
            wals: BTreeMap::new(),
            wal_misplaced_since: BTreeMap::new(),
            loaded: false,
            dependencies: json!({
                "mq": {"health_status": true, "mq_type": "pulsar"},
                "metastore": {"health_status": true, "meta_type": "etcd"}
            }),
            codes: BTreeMap::new(),
            log: Vec::new(),
        };
        FakeMilvus { st: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `common.security.authorizationEnabled`: the proxy's `/api/v1` routes answer 401 (2.6).
    pub fn authorization(self, on: bool) -> Self {
        self.lock().authorization = on;
        self
    }

    /// How long an item stays misplaced before the balancer moves it.
    pub fn balance_delay(self, delay: Duration) -> Self {
        self.lock().delay = delay;
        self
    }

    /// The most items (channels and segments) a query node holds.
    pub fn node_capacity(self, items: usize) -> Self {
        self.lock().capacity = Some(items);
        self
    }

    /// A loaded collection: `replicas` replicas, channels `NAME-dml_0..channels`, `segments`
    /// sealed segments (ids `id*100+1..`) spread over the channels.
    pub fn collection(self, id: i64, name: &str, replicas: usize, channels: usize, segments: usize) -> Self {
        {
            let mut st = self.lock();
            let channels: Vec<String> =
                (0..channels.max(1)).map(|i| format!("by-dev-rootcoord-dml_{i}_{id}v{i}")).collect();
            let segments = (0..segments).map(|i| (id * 100 + 1 + i as i64, i % channels.len())).collect();
            let replicas = (0..replicas.max(1))
                .map(|r| Replica { id: id * 10 + 1 + r as i64, rw: BTreeSet::new(), ro: BTreeSet::new() })
                .collect();
            st.collections.push(Collection { id, name: name.to_string(), channels, segments, replicas });
        }
        self
    }

    /// Segment `id` can no longer be loaded anywhere (its copies are dropped): its collection is
    /// not fully served.
    pub fn lose_segment(&self, id: i64) {
        let mut st = self.lock();
        st.unloadable.insert(id);
        st.placed.retain(|(_, item), _| *item != Item::Segment(id));
    }

    /// `_cluster/dependencies` says `part` (`mq` or `metastore`) is unhealthy for `reason`.
    pub fn unhealthy_dependency(self, part: &str, reason: &str) -> Self {
        {
            let mut st = self.lock();
            st.dependencies[part]["health_status"] = json!(false);
            st.dependencies[part]["unhealthy_reason"] = json!(reason);
        }
        self
    }

    /// The `/healthz` code pods of `target` (pod or workload name) report for their role.
    pub fn health_code(self, target: &str, code: i64) -> Self {
        self.lock().codes.insert(target.to_string(), code);
        self
    }

    /// `(id, name)` of each collection.
    pub fn collection_names(&self) -> Vec<(i64, String)> {
        self.lock().collections.iter().map(|c| (c.id, c.name.clone())).collect()
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<MilvusRequest> {
        self.lock().log.clone()
    }

    /// `(pod name, node id, state)` of each node querycoord knows.
    pub fn query_nodes(&self) -> Vec<(String, i64, String)> {
        let st = self.lock();
        st.nodes
            .values()
            .filter(|n| n.kind == Kind::Query)
            .map(|n| (pod_name(&n.pod).to_string(), n.id, st.state_name(n).to_string()))
            .collect()
    }

    /// The node ID a pod (by name) has or had, if it was a node.
    pub fn node_id(&self, pod: &str) -> Option<i64> {
        self.lock().given.get(pod).copied()
    }

    /// How many items (channels and segments, over all replicas) node `id` holds.
    pub fn items_on(&self, id: i64) -> usize {
        self.lock().placed.values().filter(|n| **n == id).count()
    }

    /// Names of the collections not fully served now.
    pub fn not_fully_served(&self) -> Vec<String> {
        let st = self.lock();
        st.collections.iter().filter(|c| !st.fully_served(c)).map(|c| c.name.clone()).collect()
    }
}

fn pod_name(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, n)| n)
}

impl State {
    fn state_name(&self, node: &Node) -> &'static str {
        match (self.version, node.suspended) {
            (MilvusVersion::V2_6, true) => "suspended",
            (MilvusVersion::V2_6, false) => "active",
            (MilvusVersion::V2_5, _) => "Normal",
        }
    }

    fn load(&self, node: i64) -> usize {
        self.placed.values().filter(|n| **n == node).count()
    }

    fn is_rw(&self, rid: i64, node: i64) -> bool {
        self.collections.iter().flat_map(|c| &c.replicas).any(|r| r.id == rid && r.rw.contains(&node))
    }

    /// Bring nodes, replicas and placements up to `now` given the pods that exist.
    fn advance(&mut self, pods: &[PodSeen], now: Instant) {
        // Nodes: the Ready pods of querynode and streamingnode workloads.
        let mut seen = BTreeSet::new();
        for pod in pods.iter().filter(|p| p.info.ready) {
            let kind = match role_of(&pod.info.workload) {
                Some("querynode") => Kind::Query,
                Some("streamingnode") if self.version == MilvusVersion::V2_6 => Kind::Streaming,
                _ => continue,
            };
            let key = format!("{}/{}", pod.info.namespace, pod.info.name);
            seen.insert(key.clone());
            if let Some(node) = self.nodes.get_mut(&key) {
                node.ip = pod.ip.clone();
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.given.insert(pod.info.name.clone(), id);
            self.nodes.insert(key.clone(), Node { id, kind, pod: key, ip: pod.ip.clone(), suspended: false });
        }
        let gone: Vec<i64> = self.nodes.values().filter(|n| !seen.contains(&n.pod)).map(|n| n.id).collect();
        self.nodes.retain(|k, _| seen.contains(k));
        for id in &gone {
            self.placed.retain(|_, n| n != id);
            self.wals.retain(|_, n| n != id);
            for r in self.collections.iter_mut().flat_map(|c| c.replicas.iter_mut()) {
                r.rw.remove(id);
                r.ro.remove(id);
            }
        }
        // Replicas: active query nodes join the replica with the fewest; suspended ones are read-only.
        let query: Vec<(i64, bool)> =
            self.nodes.values().filter(|n| n.kind == Kind::Query).map(|n| (n.id, n.suspended)).collect();
        for c in &mut self.collections {
            for &(id, suspended) in &query {
                let member = c.replicas.iter().position(|r| r.rw.contains(&id) || r.ro.contains(&id));
                match (member, suspended) {
                    (Some(i), true) => {
                        c.replicas[i].rw.remove(&id);
                        c.replicas[i].ro.insert(id);
                    }
                    (Some(i), false) => {
                        c.replicas[i].ro.remove(&id);
                        c.replicas[i].rw.insert(id);
                    }
                    (None, false) => {
                        if let Some(r) = c.replicas.iter_mut().min_by_key(|r| r.rw.len()) {
                            r.rw.insert(id);
                        }
                    }
                    (None, true) => {}
                }
            }
        }
        // Placements: misplaced items move after the delay (at once on the first load).
        let first = !self.loaded;
        self.loaded = true;
        let mut keys: Vec<Key> = Vec::new();
        for c in &self.collections {
            for r in &c.replicas {
                keys.extend(c.channels.iter().map(|ch| (r.id, Item::Channel(ch.clone()))));
                keys.extend(
                    c.segments
                        .iter()
                        .filter(|(id, _)| !self.unloadable.contains(id))
                        .map(|(id, _)| (r.id, Item::Segment(*id))),
                );
            }
        }
        for key in keys {
            let ok = self.placed.get(&key).is_some_and(|n| self.is_rw(key.0, *n));
            if ok {
                self.misplaced_since.remove(&key);
                continue;
            }
            let since = *self.misplaced_since.entry(key.clone()).or_insert(now);
            if !first && now.duration_since(since) < self.delay {
                continue;
            }
            let rw: Vec<i64> = self
                .collections
                .iter()
                .flat_map(|c| &c.replicas)
                .find(|r| r.id == key.0)
                .map(|r| r.rw.iter().copied().collect())
                .unwrap_or_default();
            let target = rw
                .into_iter()
                .filter(|n| self.capacity.is_none_or(|cap| self.load(*n) < cap))
                .min_by_key(|n| (self.load(*n), *n));
            if let Some(target) = target {
                self.placed.insert(key.clone(), target);
                self.misplaced_since.remove(&key);
            }
        }
        // A read-only node that holds nothing of a replica leaves it.
        let placed = &self.placed;
        for c in &mut self.collections {
            for r in &mut c.replicas {
                let rid = r.id;
                r.ro.retain(|n| placed.iter().any(|((k, _), v)| *k == rid && v == n));
            }
        }
        // Streaming nodes: one WAL per channel index, on active streaming nodes.
        let active_sn: Vec<i64> =
            self.nodes.values().filter(|n| n.kind == Kind::Streaming && !n.suspended).map(|n| n.id).collect();
        let wal_count = self.collections.iter().map(|c| c.channels.len()).max().unwrap_or(0);
        for i in 0..wal_count {
            let wal = format!("by-dev-rootcoord-dml_{i}");
            if self.wals.get(&wal).is_some_and(|n| active_sn.contains(n)) {
                self.wal_misplaced_since.remove(&wal);
                continue;
            }
            let since = *self.wal_misplaced_since.entry(wal.clone()).or_insert(now);
            if !first && now.duration_since(since) < self.delay {
                continue;
            }
            let target = active_sn
                .iter()
                .copied()
                .min_by_key(|n| (self.wals.values().filter(|w| *w == n).count(), *n));
            if let Some(t) = target {
                self.wals.insert(wal.clone(), t);
                self.wal_misplaced_since.remove(&wal);
            }
        }
    }

    fn fully_served(&self, c: &Collection) -> bool {
        c.replicas.iter().all(|r| {
            r.ro.is_empty()
                && !r.rw.is_empty()
                && c.channels.iter().all(|ch| {
                    self.placed.get(&(r.id, Item::Channel(ch.clone()))).is_some_and(|n| r.rw.contains(n))
                })
                && c.segments.iter().all(|(id, _)| {
                    self.placed.get(&(r.id, Item::Segment(*id))).is_some_and(|n| r.rw.contains(n))
                })
        })
    }

    fn collection_of(&self, rid: i64) -> Option<&Collection> {
        self.collections.iter().find(|c| c.replicas.iter().any(|r| r.id == rid))
    }

    fn dist(&self) -> Value {
        let mut segments = Vec::new();
        let mut channels = Vec::new();
        let mut leaders = Vec::new();
        for ((rid, item), node) in &self.placed {
            let Some(c) = self.collection_of(*rid) else { continue };
            match item {
                Item::Segment(id) => {
                    let ch = c.segments.iter().find(|(s, _)| s == id).map(|(_, i)| c.channels[*i].clone());
                    segments.push(json!({"segment_id": s(*id), "collection_id": s(c.id), "partition_id": s(c.id + 1),
                        "channel": ch, "num_of_rows": 1000, "state": "Flushed", "node_id": node, "level": "L1"}));
                }
                Item::Channel(ch) => {
                    channels.push(
                        json!({"node_id": node, "collection_id": s(c.id), "channel_name": ch, "version": 1}),
                    );
                    if self.version == MilvusVersion::V2_5 {
                        let idx = c.channels.iter().position(|x| x == ch);
                        let sealed: Vec<Value> = c
                            .segments
                            .iter()
                            .filter(|(_, i)| Some(*i) == idx)
                            .filter_map(|(sid, _)| {
                                self.placed
                                    .get(&(*rid, Item::Segment(*sid)))
                                    .map(|n| json!({"segment_id": s(*sid), "node_id": n}))
                            })
                            .collect();
                        leaders.push(json!({"leader_id": s(*node), "collection_id": s(c.id), "channel": ch,
                            "sealed_segments": sealed}));
                    }
                }
            }
        }
        let mut out = json!({"segments": segments, "dm_channels": channels});
        if self.version == MilvusVersion::V2_5 {
            out["leader_views"] = json!(leaders);
        }
        out
    }

    fn replicas(&self) -> Value {
        let out: Vec<Value> = self
            .collections
            .iter()
            .flat_map(|c| {
                c.replicas.iter().map(|r| {
                    let mut v = json!({"ID": s(r.id), "collectionID": s(c.id), "rw_nodes": r.rw,
                        "resource_group": "__default_resource_group"});
                    if !r.ro.is_empty() {
                        v["ro_nodes"] = json!(r.ro);
                    }
                    v
                })
            })
            .collect();
        json!(out)
    }

    /// `_collection/list` (default database): `metricsinfo.Collections`, ids as strings.
    fn collection_list(&self) -> Value {
        let names: Vec<&str> = self.collections.iter().map(|c| c.name.as_str()).collect();
        let ids: Vec<String> = self.collections.iter().map(|c| s(c.id)).collect();
        let full: Vec<bool> = self.collections.iter().map(|c| self.fully_served(c)).collect();
        json!({
            "collection_names": names,
            "collection_ids": ids,
            "created_utc_timestamps": self.collections.iter().map(|_| "2026-12-01 10:00:00.000 +0000 UTC").collect::<Vec<_>>(),
            "inMemory_percentages": self.collections.iter().map(|_| "100").collect::<Vec<_>>(),
            "query_service_available": full,
        })
    }

    fn target(&self, collection: Option<i64>) -> Value {
        let out: Vec<Value> = self
            .collections
            .iter()
            .filter(|c| collection.is_none_or(|id| id == c.id))
            .map(|c| {
                let segments: Vec<Value> = c
                    .segments
                    .iter()
                    .map(|(id, ch)| json!({"segment_id": s(*id), "collection_id": s(c.id), "channel": c.channels[*ch]}))
                    .collect();
                let channels: Vec<Value> =
                    c.channels.iter().map(|ch| json!({"collection_id": s(c.id), "channel_name": ch})).collect();
                json!({"collection_id": s(c.id), "segments": segments, "dm_channels": channels})
            })
            .collect();
        json!(out)
    }

    fn cluster_info(&self, pods: &[PodSeen]) -> Value {
        let mut nodes = Vec::new();
        for pod in pods.iter().filter(|p| p.info.ready) {
            let Some(role) = role_of(&pod.info.workload) else { continue };
            let role = match (self.version, role) {
                (_, "streamingnode") => continue,
                (MilvusVersion::V2_5, "mixcoord") => "querycoord",
                (_, r) => r,
            };
            let key = format!("{}/{}", pod.info.namespace, pod.info.name);
            let id = self.nodes.get(&key).map_or(1000 + nodes.len() as i64, |n| n.id);
            let mut infos = json!({"name": format!("{role}{id}"), "type": role, "id": id,
                "hardware_infos": {"ip": format!("{}:{NODE_PORT}", pod.ip)}});
            if self.code(pod) != 1 {
                infos["has_error"] = json!(true);
                infos["error_reason"] = json!("component not healthy");
            }
            nodes.push(json!({"identifier": id, "connected": [], "infos": infos}));
        }
        json!({"nodes_info": nodes})
    }

    fn code(&self, pod: &PodSeen) -> i64 {
        self.codes.get(&pod.info.name).or_else(|| self.codes.get(&pod.info.workload)).copied().unwrap_or(1)
    }

    fn node_by_id(&self, id: i64, kind: Kind) -> Option<&Node> {
        self.nodes.values().find(|n| n.id == id && n.kind == kind)
    }

    fn set_suspended(&mut self, id: i64, kind: Kind, on: bool) -> bool {
        let found = self.nodes.values_mut().find(|n| n.id == id && n.kind == kind);
        match found {
            Some(n) => {
                n.suspended = on;
                true
            }
            None => false,
        }
    }

    fn node_list(&self, kind: Kind) -> Vec<Value> {
        self.nodes
            .values()
            .filter(|n| n.kind == kind)
            .map(|n| json!({"ID": n.id, "address": format!("{}:{NODE_PORT}", n.ip), "state": self.state_name(n)}))
            .collect()
    }

    fn route(&mut self, me: &PodSeen, req: &PodRequest<'_>, pods: &[PodSeen]) -> Option<HttpReply> {
        let role = role_of(&me.info.workload)?;
        let path = req.path;
        let v26 = self.version == MilvusVersion::V2_6;
        if path == "/healthz" {
            let mut roles = vec![match (self.version, role) {
                (MilvusVersion::V2_5, "mixcoord") => "querycoord",
                (_, r) => r,
            }];
            if role == "streamingnode" {
                roles.push("querynode");
            }
            let code = self.code(me);
            let healthy = code == 1 || code == 3;
            if !req.content_type.starts_with("application/json") {
                return Some(if healthy {
                    HttpReply::ok()
                } else {
                    HttpReply::text(500, &format!("Not all components are healthy, 0/{}", roles.len()))
                });
            }
            let detail: Vec<Value> = roles.iter().map(|r| json!({"name": r, "code": code})).collect();
            let state = if healthy {
                "OK".to_string()
            } else {
                format!("Not all components are healthy, 0/{}", roles.len())
            };
            return Some(HttpReply::json(
                if healthy { 200 } else { 500 },
                &json!({"state": state, "detail": detail}),
            ));
        }
        let proxy = matches!(role, "proxy" | "standalone");
        let coord = matches!(role, "mixcoord" | "standalone");
        let param_id = |k: &str| req.param(k).and_then(|v| v.parse::<i64>().ok());
        if proxy && let Some(api) = path.strip_prefix("/api/v1/") {
            if v26 && self.authorization {
                return Some(HttpReply::json(
                    401,
                    &json!({"code": 1800, "message": "user hasn't authenticated"}),
                ));
            }
            return Some(match api {
                "_cluster/info" => HttpReply::json(200, &self.cluster_info(pods)),
                "_cluster/dependencies" => HttpReply::json(200, &self.dependencies),
                "_qc/dist" => HttpReply::json(200, &self.dist()),
                "_qc/replica" => HttpReply::json(200, &self.replicas()),
                "_qc/target" => HttpReply::json(200, &self.target(param_id("collection_id"))),
                "_collection/list" => HttpReply::json(200, &self.collection_list()),
                _ => HttpReply::not_found(),
            });
        }
        if proxy && let Some(op) = path.strip_prefix("/management/querycoord/") {
            let ok = || HttpReply::json(200, &json!({"msg": "OK"}));
            let no_node = |what: &str, id: Option<i64>| {
                HttpReply::json(
                    500,
                    &json!({"msg": format!("failed to {what}, node not found[node={}]", id.unwrap_or(0))}),
                )
            };
            return Some(match op {
                "node/list" => HttpReply::json(200, &json!({"nodeInfos": self.node_list(Kind::Query)})),
                "node/suspend" | "node/resume" => {
                    let id = param_id("node_id");
                    let on = op == "node/suspend";
                    match id {
                        Some(id) if self.set_suspended(id, Kind::Query, on) => ok(),
                        _ => no_node(if on { "suspend node" } else { "resume node" }, id),
                    }
                }
                "distribution/get" => {
                    let id = param_id("node_id");
                    match id.and_then(|id| self.node_by_id(id, Kind::Query)).map(|n| n.id) {
                        Some(id) => {
                            let mut channels = BTreeSet::new();
                            let mut segments = BTreeSet::new();
                            for ((_, item), n) in &self.placed {
                                match item {
                                    _ if *n != id => {}
                                    Item::Channel(c) => {
                                        channels.insert(c.clone());
                                    }
                                    Item::Segment(sid) => {
                                        segments.insert(s(*sid));
                                    }
                                }
                            }
                            let channels = if channels.is_empty() { Value::Null } else { json!(channels) };
                            HttpReply::json(
                                200,
                                &json!({"channel_names": channels, "sealed_segmentIDs": segments}),
                            )
                        }
                        None => no_node("get distribution", id),
                    }
                }
                _ => HttpReply::not_found(),
            });
        }
        if coord
            && v26
            && let Some(op) = path.strip_prefix("/management/streaming/")
        {
            return Some(match (op, req.method) {
                ("nodes", _) => {
                    HttpReply::json(200, &json!({"msg": "OK", "nodeInfos": self.node_list(Kind::Streaming)}))
                }
                ("nodes/status", "PUT") => {
                    let body: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
                    let id = body["node_id"].as_i64();
                    let on = body["status"] == "suspended";
                    match id {
                        Some(id) if self.set_suspended(id, Kind::Streaming, on) => {
                            HttpReply::json(200, &json!({"msg": "OK"}))
                        }
                        _ => HttpReply::json(400, &json!({"msg": "node not found"})),
                    }
                }
                ("nodes/status", _) => match param_id("node_id")
                    .and_then(|id| self.node_by_id(id, Kind::Streaming))
                {
                    Some(n) => HttpReply::json(200, &json!({"node_id": n.id, "status": self.state_name(n)})),
                    None => HttpReply::json(400, &json!({"msg": "node not found"})),
                },
                ("nodes/distribution", _) => {
                    let id = param_id("node_id");
                    let wals: Vec<&String> =
                        self.wals.iter().filter(|(_, n)| Some(**n) == id).map(|(w, _)| w).collect();
                    HttpReply::json(200, &json!({"channel_names": wals, "sealed_segmentIDs": null}))
                }
                _ => HttpReply::not_found(),
            });
        }
        None
    }
}

impl Handler for FakeMilvus {
    fn handle(&self, me: &PodSeen, port: u16, req: &PodRequest<'_>, pods: &[PodSeen]) -> Option<HttpReply> {
        if port != crate::pod_http::DEFAULT_PORT || !me.info.ready {
            return None;
        }
        let received = std::time::SystemTime::now();
        let mut st = self.lock();
        st.advance(pods, Instant::now());
        let reply = st.route(me, req, pods)?;
        // A suspension may free a node at once when the delay is zero: advance again after it.
        st.advance(pods, Instant::now());
        st.log.push(MilvusRequest {
            pod: me.info.name.clone(),
            method: req.method.to_string(),
            path: req.path.to_string(),
            query: req.query.to_vec(),
            body: String::from_utf8_lossy(req.body).into_owned(),
            status: reply.status,
            answer: String::from_utf8_lossy(&reply.body).into_owned(),
            received,
        });
        Some(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_http::PodInfo;

    fn pod(name: &str, workload: &str, ip: &str) -> PodSeen {
        PodSeen {
            info: PodInfo {
                namespace: "default".into(),
                name: name.into(),
                workload: workload.into(),
                ready: true,
            },
            ip: ip.into(),
        }
    }

    fn get(m: &FakeMilvus, me: &PodSeen, path: &str, query: &[(&str, &str)], pods: &[PodSeen]) -> Value {
        let query: Vec<(String, String)> =
            query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let req = PodRequest { method: "GET", path, query: &query, content_type: "", body: &[] };
        let reply = m.handle(me, 9091, &req, pods).expect("answered");
        serde_json::from_slice(&reply.body).expect("json")
    }

    #[test]
    fn roles_come_from_workload_names() {
        assert_eq!(role_of("my-release-milvus-querynode"), Some("querynode"));
        assert_eq!(role_of("vectors-milvus-querynode-0"), Some("querynode"));
        assert_eq!(role_of("my-release-milvus-proxy"), Some("proxy"));
        assert_eq!(role_of("my-release-etcd"), None);
    }

    #[test]
    fn a_suspended_node_is_drained_when_the_others_have_room_and_not_otherwise() {
        let m = FakeMilvus::new(MilvusVersion::V2_6).collection(450, "books", 1, 2, 4).node_capacity(4);
        let proxy = pod("p", "r-milvus-proxy", "10.0.0.2");
        let mut pods = vec![
            proxy.clone(),
            pod("q1", "r-milvus-querynode", "10.0.0.5"),
            pod("q2", "r-milvus-querynode", "10.0.0.6"),
        ];
        let list = get(&m, &proxy, "/management/querycoord/node/list", &[], &pods);
        assert_eq!(list["nodeInfos"][0]["address"], "10.0.0.5:21123");
        assert_eq!(m.items_on(5) + m.items_on(6), 6);
        // Three items on each node, capacity four: node 5 cannot be emptied.
        get(&m, &proxy, "/management/querycoord/node/suspend", &[("node_id", "5")], &pods);
        assert!(m.items_on(5) > 0);
        assert_eq!(m.not_fully_served(), vec!["books".to_string()]);
        get(&m, &proxy, "/management/querycoord/node/resume", &[("node_id", "5")], &pods);
        assert!(m.not_fully_served().is_empty());
        // With a third node there is room.
        pods.push(pod("q3", "r-milvus-querynode", "10.0.0.7"));
        get(&m, &proxy, "/management/querycoord/node/suspend", &[("node_id", "5")], &pods);
        let d = get(&m, &proxy, "/management/querycoord/distribution/get", &[("node_id", "5")], &pods);
        assert_eq!((d["channel_names"].clone(), d["sealed_segmentIDs"].clone()), (Value::Null, json!([])));
        assert!(m.not_fully_served().is_empty());
        let r = get(&m, &proxy, "/api/v1/_qc/replica", &[], &pods);
        assert_eq!(r[0]["rw_nodes"], json!([6, 7]));
        assert_eq!(m.requests().len(), 6);
    }
}
