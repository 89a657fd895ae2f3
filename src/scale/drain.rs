//! The drained scale-in: before each step that removes a query node (or streaming node) the node's
//! data is moved off with Milvus's own management calls, so that no collection loses service.
//!
//! One step, in this order: choose the node ([`serving::choose_node`]: the active node with the least
//! data), suspend it (querycoord `node/suspend`; a 2.6 streaming node: `streaming/nodes/status`
//! PUT `suspended`, which also suspends its query node), wait until its distribution is empty and
//! every collection is fully served by the other nodes, mark its pod with
//! `controller.kubernetes.io/pod-deletion-cost` so that the ReplicaSet removes that pod, lower the
//! replicas by one (the engine's write), then wait until the pod is gone and Milvus reports no
//! stopping node. When the data cannot move within the timeout, or on Ctrl-C, the node is resumed
//! and the mark removed, and the report says so (and which collections would have lost service).
//!
//! Every Milvus call goes through the API server's proxy subresource ([`MilvusHttp`]); progress is
//! polled once a second.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::client::Kube;
use crate::client::milvus_http::{self, Body, MilvusHttp, MilvusHttpError};
use crate::milvus::serving::{self, Answers, NodeKind, Serving};
use crate::milvus::{ComponentKind, Release};
use crate::scale::wait::Interrupt;

/// The annotation the ReplicaSet controller removes the lowest of first.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The cost given to the pod being removed (others have none, i.e. 0).
const MARK: &str = "-1000";
/// How often a drain is polled.
const POLL: Duration = Duration::from_secs(1);

/// The node a step removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: NodeKind,
    pub node_id: i64,
    pub pod: String,
    pub segments: usize,
    pub channels: usize,
}

/// How a drain ended when it did not.
pub enum Stop {
    /// The data did not move in time (`losing`: collections that would lose service without the node).
    TimedOut { target: Target, losing: Vec<i64>, undo: Vec<String> },
    /// Ctrl-C.
    Interrupted { target: Target, undo: Vec<String> },
    /// Milvus could not be asked or refused a call.
    Failed(String),
}

/// Talks to the release's Milvus for the drained scale-in.
pub struct Drainer<'a> {
    pub kube: &'a Kube,
    pub namespace: String,
    /// `app.kubernetes.io/instance` of the release.
    pub release: String,
    /// A ready proxy pod (release-wide endpoints, querycoord management).
    pub proxy: MilvusHttp,
    /// The ready mixcoord pod (2.6 streaming-node management), if any.
    pub coord: Option<MilvusHttp>,
    pub v26: bool,
    /// The pods of each component row (`querynode`, `querynode[rg1]`) as the plan read them: a
    /// row's scale-in removes one of its own nodes.
    component_pods: BTreeMap<String, Vec<String>>,
}

/// The node kind a component's scale-in drains, if it drains.
pub fn drains(kind: &ComponentKind) -> Option<NodeKind> {
    match kind {
        ComponentKind::QueryNode => Some(NodeKind::Querynode),
        ComponentKind::StreamingNode => Some(NodeKind::Streamingnode),
        _ => None,
    }
}

fn milvus_error(what: &str, e: MilvusHttpError) -> String {
    format!("cannot drain before scaling in: {what}: {e}")
}

impl<'a> Drainer<'a> {
    /// A drainer for `release`, or why Milvus cannot be asked.
    pub fn new(kube: &'a Kube, release: &Release, pods: &[crate::milvus::Pod]) -> Result<Self, String> {
        let proxy = milvus_http::ready_pod(release, pods, &[ComponentKind::Proxy, ComponentKind::Standalone])
            .ok_or_else(|| "cannot drain before scaling in: no ready proxy pod to ask Milvus".to_string())?;
        let coord = milvus_http::ready_pod(release, pods, &[ComponentKind::MixCoord]);
        Ok(Drainer {
            kube,
            namespace: release.namespace.clone(),
            release: release.name.clone(),
            proxy: MilvusHttp::new(kube, &release.namespace, &proxy),
            coord: coord.map(|c| MilvusHttp::new(kube, &release.namespace, &c)),
            v26: milvus_http::is_v2_6(release),
            component_pods: release
                .components
                .iter()
                .map(|c| (c.display_name.clone(), c.pods.iter().map(|p| p.name.clone()).collect()))
                .collect(),
        })
    }

    /// The pods of `component` (`querynode`, `querynode[rg1]`) when the plan was made.
    pub fn pods_of(&self, component: &str) -> &[String] {
        self.component_pods.get(component).map(Vec::as_slice).unwrap_or_default()
    }

    /// The release's pods: IP → name (and which exist).
    async fn pods(&self) -> Result<BTreeMap<String, String>, String> {
        let api: Api<Pod> = Api::namespaced(self.kube.client.clone(), &self.namespace);
        let params = ListParams::default().labels(&format!("app.kubernetes.io/instance={}", self.release));
        let list = api.list(&params).await.map_err(|e| format!("cannot list pods: {e}"))?;
        Ok(list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let ip = p.status.and_then(|s| s.pod_ip).filter(|ip| !ip.is_empty())?;
                Some((ip, p.metadata.name?))
            })
            .collect())
    }

    /// Milvus's answers as the drain reads them.
    async fn answers(&self, kind: NodeKind) -> Result<Answers, String> {
        let streaming = async {
            match (&self.coord, kind, self.v26) {
                (Some(coord), NodeKind::Streamingnode, true) => {
                    Some(coord.get("/management/streaming/nodes").await)
                }
                _ => None,
            }
        };
        let (dist, replicas, target, nodes, streaming) = futures::join!(
            self.proxy.get("/api/v1/_qc/dist"),
            self.proxy.get("/api/v1/_qc/replica"),
            self.proxy.get("/api/v1/_qc/target"),
            self.proxy.get("/management/querycoord/node/list"),
            streaming,
        );
        Ok(Answers {
            dist: Some(dist.map_err(|e| milvus_error("reading the distribution", e))?),
            replicas: Some(replicas.map_err(|e| milvus_error("reading the replicas", e))?),
            target: Some(target.map_err(|e| milvus_error("reading the target", e))?),
            query_nodes: Some(nodes.map_err(|e| milvus_error("listing the query nodes", e))?),
            streaming_nodes: streaming
                .transpose()
                .map_err(|e| milvus_error("listing the streaming nodes", e))?,
            // (Names are for status; the drain goes by collection id.)
            collection_list: None,
        })
    }

    async fn serving(&self, kind: NodeKind) -> Result<(Answers, Serving), String> {
        let (answers, pods) = futures::join!(self.answers(kind), self.pods());
        let answers = answers?;
        let serving = serving::serving(&answers, &pods?);
        Ok((answers, serving))
    }

    /// The node the next step of `kind` would remove, as Milvus sees it now.
    /// The node the next step removes, among the nodes of `pods` (the pods of the workload being
    /// scaled in; all nodes of the kind when empty).
    pub async fn choose(&self, kind: NodeKind, pods: &[String]) -> Result<Target, String> {
        self.choose_with_baseline(kind, pods).await.map(|(target, _)| target)
    }

    /// The node to remove, and the collections already not fully served (the drain does not wait
    /// for those: they were not served before it began).
    async fn choose_with_baseline(
        &self,
        kind: NodeKind,
        pods: &[String],
    ) -> Result<(Target, Vec<i64>), String> {
        let (_, serving) = self.serving(kind).await?;
        let baseline: Vec<i64> = serving.not_fully_served().iter().map(|c| c.id).collect();
        let node = serving::choose_node(&serving, kind, pods).ok_or_else(|| {
            format!(
                "cannot drain before scaling in: Milvus reports no active {} matched to a pod",
                kind.as_str()
            )
        })?;
        let target = Target {
            kind,
            node_id: node.node_id,
            pod: node.pod.clone().unwrap_or_default(),
            segments: node.segments.unwrap_or(0),
            channels: node.channels.unwrap_or(0),
        };
        Ok((target, baseline))
    }

    async fn set_suspended(&self, target: &Target, on: bool) -> Result<(), MilvusHttpError> {
        match (target.kind, &self.coord) {
            (NodeKind::Streamingnode, Some(coord)) if self.v26 => {
                let body =
                    json!({"node_id": target.node_id, "status": if on { "suspended" } else { "active" }});
                coord
                    .call(http::Method::PUT, "/management/streaming/nodes/status", Body::Json(&body))
                    .await
                    .map(drop)
            }
            _ => {
                let op = if on { "suspend" } else { "resume" };
                let path = format!("/management/querycoord/node/{op}?node_id={}", target.node_id);
                self.proxy.call(http::Method::POST, &path, Body::None).await.map(drop)
            }
        }
    }

    /// The node's distribution is empty (query node, and a streaming node's WALs).
    async fn node_empty(&self, target: &Target) -> Result<bool, String> {
        let path = format!("/management/querycoord/distribution/get?node_id={}", target.node_id);
        let query = match self.proxy.get(&path).await {
            Ok(v) => serving::distribution_empty(&v),
            // A streaming node may not be a querycoord node at all.
            Err(MilvusHttpError::Status { .. }) if target.kind == NodeKind::Streamingnode => true,
            Err(e) => return Err(milvus_error("reading the node's distribution", e)),
        };
        if !query {
            return Ok(false);
        }
        match (target.kind, &self.coord) {
            (NodeKind::Streamingnode, Some(coord)) if self.v26 => {
                let path = format!("/management/streaming/nodes/distribution?node_id={}", target.node_id);
                coord
                    .get(&path)
                    .await
                    .map(|v| serving::distribution_empty(&v))
                    .map_err(|e| milvus_error("reading the streaming node's distribution", e))
            }
            _ => Ok(true),
        }
    }

    /// Sets (or removes, `None`) the deletion cost of a pod.
    async fn mark(&self, pod: &str, cost: Option<&str>) -> Result<(), String> {
        let api: Api<Pod> = Api::namespaced(self.kube.client.clone(), &self.namespace);
        let patch = json!({"metadata": {"annotations": {DELETION_COST: cost}}});
        api.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(|e| format!("cannot mark pod {pod} with {DELETION_COST}: {e}"))
    }

    /// Puts the node back: resumed and its pod unmarked. Says what could not be undone.
    pub async fn undo(&self, target: &Target, marked: bool) -> Vec<String> {
        let mut said = Vec::new();
        match self.set_suspended(target, false).await {
            Ok(()) => said.push(format!("node {} (pod {}) resumed", target.node_id, target.pod)),
            Err(e) => said.push(format!(
                "node {} (pod {}) is STILL SUSPENDED: resuming it failed ({e}); resume it with POST \
                 /management/querycoord/node/resume?node_id={} on a proxy pod's port 9091",
                target.node_id, target.pod, target.node_id
            )),
        }
        if marked {
            match self.mark(&target.pod, None).await {
                Ok(()) => said.push(format!("pod {} unmarked", target.pod)),
                Err(e) => said.push(format!(
                    "pod {} is STILL MARKED for removal ({e}); remove its {DELETION_COST} annotation",
                    target.pod
                )),
            }
        }
        said
    }

    /// Suspends the chosen node and waits until its data has moved and every collection is fully
    /// served, then marks its pod. On a timeout or Ctrl-C, undoes both.
    pub async fn prepare(
        &self,
        kind: NodeKind,
        pods: &[String],
        deadline: Instant,
        interrupt: &Interrupt,
        say: &mut dyn FnMut(String),
    ) -> Result<Target, Stop> {
        let (target, baseline) = self.choose_with_baseline(kind, pods).await.map_err(Stop::Failed)?;
        let suspended = self.set_suspended(&target, true).await;
        if let Err(e) = suspended {
            return Err(Stop::Failed(milvus_error(&format!("suspending node {}", target.node_id), e)));
        }
        say(format!(
            "{}: node {} (pod {}) suspended: moving its {} segments and {} channels to the other nodes",
            kind.as_str(),
            target.node_id,
            target.pod,
            target.segments,
            target.channels
        ));
        loop {
            let (empty, served) = futures::join!(self.node_empty(&target), self.serving(kind));
            let (empty, served) = match (empty, served) {
                (Ok(empty), Ok((answers, serving))) => (empty, Some((answers, serving))),
                (Err(e), _) | (_, Err(e)) => {
                    let undo = self.undo(&target, false).await;
                    return Err(Stop::Failed(format!("{e}; {}", undo.join("; "))));
                }
            };
            let fully = served
                .as_ref()
                .is_some_and(|(_, s)| s.not_fully_served().iter().all(|c| baseline.contains(&c.id)));
            if empty && fully {
                break;
            }
            if interrupt.is_set() {
                let undo = self.undo(&target, false).await;
                return Err(Stop::Interrupted { target, undo });
            }
            if Instant::now() + POLL > deadline {
                let losing: Vec<i64> = served
                    .map(|(a, _)| serving::would_lose_service(&a, target.node_id))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| !baseline.contains(c))
                    .collect();
                let undo = self.undo(&target, false).await;
                return Err(Stop::TimedOut { target, losing, undo });
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = interrupt.interrupted() => {}
            }
        }
        if let Err(e) = self.mark(&target.pod, Some(MARK)).await {
            let undo = self.undo(&target, false).await;
            return Err(Stop::Failed(format!("{e}; {}", undo.join("; "))));
        }
        say(format!(
            "{}: node {} is empty and every collection is fully served by the others; pod {} marked for removal",
            kind.as_str(),
            target.node_id,
            target.pod
        ));
        Ok(target)
    }

    /// After the replicas were lowered: waits until the pod is gone and Milvus reports no stopping node.
    pub async fn finish(
        &self,
        target: &Target,
        deadline: Instant,
        interrupt: &Interrupt,
    ) -> Result<(), String> {
        loop {
            let api: Api<Pod> = Api::namespaced(self.kube.client.clone(), &self.namespace);
            let this_pod = ListParams::default().fields(&format!("metadata.name={}", target.pod));
            let (pods, nodes) =
                futures::join!(api.list(&this_pod), self.proxy.get("/management/querycoord/node/list"));
            // Gone, not merely terminating: a terminating query node may still be handing data over.
            let gone = pods.map_err(|e| format!("cannot list pods: {e}"))?.items.is_empty();
            let stopping = match nodes {
                Ok(list) => list["nodeInfos"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|n| n["state"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("stopping"))),
                Err(e) => return Err(milvus_error("listing the query nodes", e)),
            };
            if gone && !stopping {
                return Ok(());
            }
            if interrupt.is_set() || Instant::now() + POLL > deadline {
                let why = if interrupt.is_set() { "interrupted" } else { "timed out" };
                return Err(format!(
                    "{why} waiting for pod {} to go away{}",
                    target.pod,
                    if stopping { " and Milvus's stopping node to leave" } else { "" }
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = interrupt.interrupted() => {}
            }
        }
    }
}
