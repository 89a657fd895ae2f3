//! Milvus's HTTP API (port 9091) through the API server's proxy subresource
//! (`/api/v1/namespaces/NS/pods/POD:9091/proxy/…`), with the user's own credentials and the kube
//! client (its logging and deadlines). No port-forward, no direct connection.
//!
//! Release-wide endpoints are asked of one ready proxy pod (2.6's streaming endpoints of the
//! mixcoord pod), so a command makes a fixed number of requests whatever the release's size. Proxy
//! reads are not retried on 503 (the policy in `policy.rs` skips them): through the proxy a 503 is
//! a pod that does not answer, and asking again would only add load. Each request has a short
//! deadline of its own.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::client::Kube;
use crate::milvus::serving::{self, Answers, Serving};
use crate::milvus::{ComponentKind, Release};

/// The port Milvus serves `/healthz`, its HTTP API and the management calls on.
pub const PORT: u16 = 9091;
/// How long one request to Milvus may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Milvus request gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MilvusHttpError {
    /// The user may not use `pods/proxy` (get, or create for the management calls).
    #[error("not allowed to {verb} pods/proxy in namespace {namespace}")]
    Forbidden { verb: &'static str, namespace: String },
    /// The pod does not answer on 9091 (through the proxy: a 503 from the API server).
    #[error("Milvus does not answer on pod {pod}: {reason}")]
    NotAnswering { pod: String, reason: String },
    /// The route does not exist in this Milvus version (or on this pod).
    #[error("this Milvus version has no {path}")]
    Missing { path: String },
    /// `common.security.authorizationEnabled` is on: `/api/v1/*` needs credentials the API server's
    /// proxy does not pass on.
    #[error(
        "Milvus has authorization on: its /api/v1 routes refuse requests through the Kubernetes API proxy"
    )]
    Unauthorized,
    /// Milvus answered with an error.
    #[error("Milvus answered {status} to {path}: {message}")]
    Status { path: String, status: u16, message: String },
    /// Not JSON where JSON was expected.
    #[error("Milvus answered {path} with something that is not JSON")]
    NotJson { path: String },
    /// No ready pod to ask.
    #[error("no ready {component} pod to ask")]
    NoPod { component: &'static str },
    /// The request failed before an answer (connection, deadline).
    #[error("request to Milvus failed: {0}")]
    Transport(String),
}

/// A Milvus process reachable through the proxy subresource.
#[derive(Clone)]
pub struct MilvusHttp {
    kube: Kube,
    namespace: String,
    pod: String,
}

/// A request body of a management call.
pub enum Body<'a> {
    None,
    Json(&'a Value),
}

/// A metav1.Status from the API server (not an answer of the pod).
fn api_status(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    (v["kind"] == "Status" && v["apiVersion"] == "v1").then(|| {
        (
            v["reason"].as_str().unwrap_or_default().to_string(),
            v["message"].as_str().unwrap_or_default().to_string(),
        )
    })
}

impl MilvusHttp {
    pub fn new(kube: &Kube, namespace: &str, pod: &str) -> Self {
        MilvusHttp { kube: kube.clone(), namespace: namespace.to_string(), pod: pod.to_string() }
    }

    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// A GET of `path_and_query`, asking for JSON (`/healthz` answers JSON only then).
    pub async fn get(&self, path_and_query: &str) -> Result<Value, MilvusHttpError> {
        self.call(http::Method::GET, path_and_query, Body::None).await
    }

    /// A management call (POST or PUT): `create`/`update` on `pods/proxy`.
    pub async fn call(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Body<'_>,
    ) -> Result<Value, MilvusHttpError> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query).to_string();
        let uri =
            format!("/api/v1/namespaces/{}/pods/{}:{PORT}/proxy{path_and_query}", self.namespace, self.pod);
        let bytes = match body {
            Body::None => Vec::new(),
            Body::Json(v) => serde_json::to_vec(v).map_err(|e| MilvusHttpError::Transport(e.to_string()))?,
        };
        let verb = match method {
            http::Method::GET => "get",
            http::Method::PUT => "update",
            _ => "create",
        };
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(kube::client::Body::from(bytes))
            .map_err(|e| MilvusHttpError::Transport(e.to_string()))?;
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self
                .kube
                .client
                .send(request)
                .await
                .map_err(|e| MilvusHttpError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| MilvusHttpError::Transport(e.to_string()))?;
            Ok::<_, MilvusHttpError>((status, body))
        })
        .await;
        let (status, body) = match sent {
            Ok(result) => result?,
            Err(_) => {
                return Err(MilvusHttpError::NotAnswering {
                    pod: self.pod.clone(),
                    reason: format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
                });
            }
        };
        classify(status, &body, &path, verb, &self.namespace, &self.pod)
    }
}

/// What an answer through the proxy means.
fn classify(
    status: u16,
    body: &[u8],
    path: &str,
    verb: &'static str,
    namespace: &str,
    pod: &str,
) -> Result<Value, MilvusHttpError> {
    if let Some((reason, message)) = api_status(body) {
        return Err(match (status, reason.as_str()) {
            (403, _) | (_, "Forbidden") => {
                MilvusHttpError::Forbidden { verb, namespace: namespace.to_string() }
            }
            _ => MilvusHttpError::NotAnswering { pod: pod.to_string(), reason: message },
        });
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    match status {
        200..=299 => json.ok_or_else(|| MilvusHttpError::NotJson { path: path.to_string() }),
        401 => Err(MilvusHttpError::Unauthorized),
        404 => Err(MilvusHttpError::Missing { path: path.to_string() }),
        503 => Err(MilvusHttpError::NotAnswering {
            pod: pod.to_string(),
            reason: String::from_utf8_lossy(body).trim().to_string(),
        }),
        _ => {
            let message = json
                .as_ref()
                .and_then(|v| v["msg"].as_str().or(v["message"].as_str()).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
            Err(MilvusHttpError::Status { path: path.to_string(), status, message })
        }
    }
}

/// Whether an API path is a proxy subresource (`…/pods/X/proxy…`, `…/services/X/proxy…`).
pub fn is_proxy_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(3).any(|w| matches!(w[0], "pods" | "services") && w[2] == "proxy")
}

/// The first ready pod (with an IP) of a component of the release, by name.
pub fn ready_pod(release: &Release, pods: &[crate::milvus::Pod], kinds: &[ComponentKind]) -> Option<String> {
    let mut names: Vec<&str> = release
        .components
        .iter()
        .filter(|c| kinds.contains(&c.kind))
        .flat_map(|c| c.pods.iter())
        .filter(|p| {
            p.status == "Running" && p.ready_containers == p.total_containers && p.total_containers > 0
        })
        .map(|p| p.name.as_str())
        .filter(|name| pods.iter().any(|p| p.metadata.name.as_deref() == Some(*name) && pod_ip(p).is_some()))
        .collect();
    names.sort_unstable();
    names.first().map(|n| n.to_string())
}

fn pod_ip(pod: &crate::milvus::Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).filter(|ip| !ip.is_empty())
}

/// The release's pod IPs → pod names.
pub fn pods_by_ip(release: &Release, pods: &[crate::milvus::Pod]) -> BTreeMap<String, String> {
    pods.iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(release.namespace.as_str()))
        .filter_map(|p| Some((pod_ip(p)?.to_string(), p.metadata.name.clone()?)))
        .collect()
}

/// Whether the release runs Milvus 2.6 or later (from its image tag; unknown: assume it does).
pub fn is_v2_6(release: &Release) -> bool {
    let Some(version) = release.version.as_deref() else { return true };
    let mut parts = version.trim_start_matches('v').split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(2);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(6);
    (major, minor) >= (2, 6)
}

/// What `status` asks Milvus, and what it could not learn.
#[derive(Debug, Clone, Default)]
pub struct MilvusRead {
    pub serving: Option<Serving>,
    /// `/healthz` JSON of the proxy pod.
    pub healthz: Option<Value>,
    /// `/api/v1/_cluster/info`.
    pub cluster_info: Option<Value>,
    /// `/api/v1/_cluster/dependencies`.
    pub dependencies: Option<Value>,
    /// What is not shown, and why.
    pub warnings: Vec<String>,
    /// The pod asked.
    pub pod: Option<String>,
}

/// Reads what `status` shows of Milvus: a fixed number of concurrent requests (eight to one proxy pod,
/// and on a 2.6 release with streaming nodes one to the mixcoord pod).
pub async fn read_status(kube: &Kube, release: &Release, pods: &[crate::milvus::Pod]) -> MilvusRead {
    let mut read = MilvusRead::default();
    let Some(proxy) = ready_pod(release, pods, &[ComponentKind::Proxy, ComponentKind::Standalone]) else {
        if release.components.iter().any(|c| c.desired > 0) {
            read.warnings
                .push("Milvus's own view (serving, nodes) not shown: no ready proxy pod to ask".to_string());
        }
        return read;
    };
    read.pod = Some(proxy.clone());
    let ns = release.namespace.as_str();
    let p = MilvusHttp::new(kube, ns, &proxy);
    let v26 = is_v2_6(release);
    let coord = if v26 {
        ready_pod(release, pods, &[ComponentKind::MixCoord, ComponentKind::Standalone])
    } else {
        None
    };
    let streaming_wanted = v26 && release.components.iter().any(|c| c.kind == ComponentKind::StreamingNode);
    let streaming = async {
        match (&coord, streaming_wanted) {
            (Some(pod), true) => {
                Some(MilvusHttp::new(kube, ns, pod).get("/management/streaming/nodes").await)
            }
            _ => None,
        }
    };
    let (healthz, info, deps, dist, replicas, target, nodes, list, streaming) = futures::join!(
        p.get("/healthz"),
        p.get("/api/v1/_cluster/info"),
        p.get("/api/v1/_cluster/dependencies"),
        p.get("/api/v1/_qc/dist"),
        p.get("/api/v1/_qc/replica"),
        p.get("/api/v1/_qc/target"),
        p.get("/management/querycoord/node/list"),
        p.get("/api/v1/_collection/list"),
        streaming,
    );
    let mut errors: Vec<(&str, MilvusHttpError)> = Vec::new();
    let mut keep = |what: &'static str, r: Result<Value, MilvusHttpError>| match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push((what, e));
            None
        }
    };
    read.healthz = keep("component health", healthz);
    read.cluster_info = keep("component health", info);
    read.dependencies = keep("dependency view", deps);
    let answers = Answers {
        dist: keep("serving", dist),
        replicas: keep("serving", replicas),
        target: keep("serving", target),
        query_nodes: keep("query nodes", nodes),
        streaming_nodes: streaming.and_then(|r| keep("streaming nodes", r)),
        collection_list: keep("collection names", list),
    };
    let nothing = read.healthz.is_none()
        && read.cluster_info.is_none()
        && read.dependencies.is_none()
        && answers.dist.is_none()
        && answers.replicas.is_none()
        && answers.target.is_none()
        && answers.query_nodes.is_none();
    read.warnings = if nothing { vec![nothing_shown(&proxy, &errors)] } else { warnings(&errors) };
    let by_ip = pods_by_ip(release, pods);
    read.serving = Some(serving::serving(&answers, &by_ip));
    read
}

/// The one warning when Milvus answered nothing usable: the most telling cause.
fn nothing_shown(pod: &str, errors: &[(&str, MilvusHttpError)]) -> String {
    let rank = |e: &MilvusHttpError| match e {
        MilvusHttpError::Forbidden { .. } => 0,
        MilvusHttpError::NotAnswering { .. } => 1,
        MilvusHttpError::Transport(_) => 2,
        MilvusHttpError::Unauthorized => 3,
        MilvusHttpError::Status { .. } => 4,
        _ => 5,
    };
    let cause = match errors.iter().map(|(_, e)| e).min_by_key(|e| rank(e)) {
        Some(e @ MilvusHttpError::Forbidden { .. }) => {
            format!("{e} (kubectl milvus needs get on pods/proxy for this; see the README's RBAC table)")
        }
        Some(MilvusHttpError::Missing { .. } | MilvusHttpError::NotJson { .. }) | None => {
            format!("pod {pod} answers none of Milvus's HTTP routes on port {PORT}")
        }
        Some(e) => e.to_string(),
    };
    format!("Milvus's own view (serving, nodes, component health) not shown: {cause}")
}

/// One warning per kind of failure, naming what is not shown.
fn warnings(errors: &[(&str, MilvusHttpError)]) -> Vec<String> {
    /// A kind of failure, one of its errors, what it hides, and the paths it concerns.
    type Group<'a> =
        (std::mem::Discriminant<MilvusHttpError>, &'a MilvusHttpError, Vec<&'a str>, Vec<&'a str>);
    let mut by_kind: Vec<Group<'_>> = Vec::new();
    for (what, e) in errors {
        let kind = std::mem::discriminant(e);
        let path = match e {
            MilvusHttpError::Missing { path } | MilvusHttpError::NotJson { path } => Some(path.as_str()),
            _ => None,
        };
        match by_kind.iter_mut().find(|(k, ..)| *k == kind) {
            Some((_, _, whats, paths)) => {
                if !whats.contains(what) {
                    whats.push(what);
                }
                paths.extend(path);
            }
            None => by_kind.push((kind, e, vec![what], path.into_iter().collect())),
        }
    }
    by_kind
        .into_iter()
        .map(|(_, e, whats, paths)| {
            let cause = match e {
                MilvusHttpError::Missing { .. } => format!("this Milvus version has no {}", paths.join(", ")),
                MilvusHttpError::NotJson { .. } => {
                    format!("Milvus did not answer JSON at {}", paths.join(", "))
                }
                MilvusHttpError::Forbidden { .. } => {
                    format!(
                        "{e} (kubectl milvus needs get on pods/proxy for this; see the README's RBAC table)"
                    )
                }
                _ => e.to_string(),
            };
            format!("Milvus's {} not shown: {cause}", whats.join(", "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_through_the_proxy_are_told_apart() {
        let status = |code: u16, reason: &str| {
            format!(
                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"{reason}","message":"m","code":{code}}}"#
            )
        };
        let c = |s: u16, body: &str| classify(s, body.as_bytes(), "/x", "get", "ns", "p");
        assert_eq!(
            c(403, &status(403, "Forbidden")),
            Err(MilvusHttpError::Forbidden { verb: "get", namespace: "ns".into() })
        );
        assert!(matches!(
            c(503, &status(503, "ServiceUnavailable")),
            Err(MilvusHttpError::NotAnswering { .. })
        ));
        assert_eq!(c(401, r#"{"code":1800,"message":"x"}"#), Err(MilvusHttpError::Unauthorized));
        assert_eq!(c(404, "404 page not found\n"), Err(MilvusHttpError::Missing { path: "/x".into() }));
        assert_eq!(c(200, r#"{"a":1}"#), Ok(serde_json::json!({"a": 1})));
        assert_eq!(
            c(500, r#"{"msg":"failed to suspend node, node not found[node=9]"}"#),
            Err(MilvusHttpError::Status {
                path: "/x".into(),
                status: 500,
                message: "failed to suspend node, node not found[node=9]".into()
            })
        );
        assert_eq!(c(200, "OK"), Err(MilvusHttpError::NotJson { path: "/x".into() }));
    }

    #[test]
    fn proxy_paths_are_recognised() {
        assert!(is_proxy_path("/api/v1/namespaces/ns/pods/p:9091/proxy/healthz"));
        assert!(is_proxy_path("/api/v1/namespaces/ns/services/s/proxy"));
        assert!(!is_proxy_path("/api/v1/namespaces/ns/pods/proxy"));
        assert!(!is_proxy_path("/api/v1/namespaces/ns/pods"));
    }
}
