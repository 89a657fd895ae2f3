//! The loopback's proxy subresources (`/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH`
//! and `…/services/[SCHEME:]NAME[:PORT]/proxy/PATH`), answered from [`PodHttp`] in process with
//! what kube-apiserver 1.34 answers (measured against it): the pod's own reply when it listens,
//! else `503 ServiceUnavailable` `error trying to reach service: dial tcp IP:PORT: connect:
//! connection refused`; `400 address not allowed` for a pod without an IP; `503 no endpoints
//! available for service …` for a service without a ready endpoint on the port. Endpoints are
//! derived from the Service's selector and the pods (the first ready address is used; the real
//! server picks one at random).

use crate::pod_http::{HttpReply, PodHttp, PodInfo, PodRequest, PodSeen};
use crate::resources::{ResKey, ResourceType};
use crate::status::ApiError;
use crate::store::Store;
use crate::util::meta_str;
use serde_json::Value;

/// A proxied request's answer: the pod's reply, or the server's error.
pub(crate) type ProxyResult = Result<HttpReply, ApiError>;

/// apimachinery's `SplitSchemeNamePort`.
fn split_id(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [n] => ("", *n, ""),
        [n, p] => ("", *n, *p),
        [s, n, p] => (*s, *n, *p),
        _ => return None,
    };
    (!name.is_empty() && matches!(scheme, "" | "http" | "https")).then_some((scheme, name, port))
}

/// `(namespace, "pods" | "services", id, path)` of a proxy request path.
pub(crate) fn parse(path: &str) -> Option<(&str, &str, &str, String)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    let (kind, rest) = rest.split_once('/')?;
    if !matches!(kind, "pods" | "services") || ns.is_empty() {
        return None;
    }
    let (id, rest) = rest.split_once('/')?;
    let tail = rest.strip_prefix("proxy")?;
    if !(tail.is_empty() || tail.starts_with('/')) {
        return None;
    }
    Some((ns, kind, id, if tail.is_empty() { "/".to_string() } else { tail.to_string() }))
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(503, message)
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn pod_ip(pod: &Value) -> Option<&str> {
    pod.pointer("/status/podIP").and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn info(store: &Store, pod: &Value) -> PodInfo {
    let ns = meta_str(pod, "namespace");
    let workload = match crate::controller::controller_owner(pod) {
        Some(("ReplicaSet", rs)) => store
            .get(&ResKey::new("apps", "replicasets"), ns, rs)
            .and_then(|rs| crate::controller::controller_owner(rs).map(|(_, d)| d.to_string()))
            .unwrap_or_else(|| rs.to_string()),
        Some((_, name)) => name.to_string(),
        None => meta_str(pod, "name").to_string(),
    };
    PodInfo {
        namespace: ns.to_string(),
        name: meta_str(pod, "name").to_string(),
        workload,
        ready: is_ready(pod),
    }
}

/// The pods of `ns` that have an IP, for a stateful handler.
fn pods_seen(store: &Store, ns: &str) -> Vec<PodSeen> {
    store
        .list(&ResKey::new("", "pods"), Some(ns), None)
        .filter_map(|p| Some(PodSeen { info: info(store, p), ip: pod_ip(p)?.to_string() }))
        .collect()
}

/// What a connection to `ip:port` of `pod` gets, as the real server reports it.
#[allow(clippy::too_many_arguments)]
fn reach(
    http: &PodHttp,
    store: &Store,
    pod: &Value,
    ip: &str,
    scheme: &str,
    port: &str,
    path: &str,
    req: &PodRequest<'_>,
) -> ProxyResult {
    let port_n: u16 = match port {
        "" if scheme == "https" => 443,
        "" => 80,
        p => p.parse().map_err(|_| {
            unavailable(format!("error trying to reach service: dial tcp: lookup port {p}: unknown port"))
        })?,
    };
    let info = info(store, pod);
    if !http.listens(&info, port_n) {
        return Err(unavailable(format!(
            "error trying to reach service: dial tcp {ip}:{port_n}: connect: connection refused"
        )));
    }
    if scheme == "https" {
        return Err(unavailable(
            "error trying to reach service: tls: first record does not look like a TLS handshake".into(),
        ));
    }
    let req = PodRequest { path, ..*req };
    Ok(http.answer(&info, ip, port_n, &req, || pods_seen(store, &info.namespace)))
}

/// Answer a parsed proxy request.
pub(crate) fn answer(
    http: &PodHttp,
    store: &Store,
    types: &[ResourceType],
    (ns, kind, id, path): (&str, &str, &str, String),
    req: &PodRequest<'_>,
) -> ProxyResult {
    let rt = |plural: &str| types.iter().find(|t| t.group.is_empty() && t.plural == plural).cloned();
    if kind == "pods" {
        let Some((scheme, name, port)) = split_id(id) else {
            return Err(ApiError::bad_request(format!("invalid pod request {id:?}")));
        };
        let Some(pod) = store.get(&ResKey::new("", "pods"), ns, name) else {
            return Err(rt("pods").map_or_else(ApiError::path_not_found, |rt| ApiError::not_found(&rt, name)));
        };
        let first_port = || {
            pod.pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_i64))
                .map(|p| p.to_string())
                .unwrap_or_default()
        };
        let port = if port.is_empty() { first_port() } else { port.to_string() };
        let Some(ip) = pod_ip(pod) else {
            return Err(ApiError::bad_request("address not allowed"));
        };
        return reach(http, store, pod, ip, scheme, &port, &path, req);
    }
    let Some((scheme, name, port)) = split_id(id) else {
        return Err(ApiError::bad_request(format!("invalid service request {id:?}")));
    };
    let Some(svc) = store.get(&ResKey::new("", "services"), ns, name) else {
        return Err(rt("services").map_or_else(ApiError::path_not_found, |rt| ApiError::not_found(&rt, name)));
    };
    let svc_ports: Vec<&Value> =
        svc.pointer("/spec/ports").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let port_name = match port.parse::<i64>() {
        Ok(n) => match svc_ports.iter().find(|p| p["port"].as_i64() == Some(n)) {
            Some(p) => p["name"].as_str().unwrap_or_default().to_string(),
            None => return Err(unavailable(format!("no service port {n} found for service {name:?}"))),
        },
        Err(_) => port.to_string(),
    };
    // The Endpoints the endpoints controller would write: the selected pods with an IP.
    let selector = svc.pointer("/spec/selector").and_then(Value::as_object);
    let publish_not_ready =
        svc.pointer("/spec/publishNotReadyAddresses").and_then(Value::as_bool) == Some(true);
    let pods: Vec<&Value> = match selector.filter(|s| !s.is_empty()) {
        None => Vec::new(),
        Some(sel) => store
            .list(&ResKey::new("", "pods"), Some(ns), None)
            .filter(|p| {
                sel.iter().all(|(k, v)| p.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
                    && pod_ip(p).is_some()
                    && p.pointer("/metadata/deletionTimestamp").is_none_or(Value::is_null)
                    && !matches!(
                        p.pointer("/status/phase").and_then(Value::as_str),
                        Some("Succeeded" | "Failed")
                    )
            })
            .collect(),
    };
    if pods.is_empty() {
        return Err(unavailable(format!("no endpoints available for service {name:?}")));
    }
    let target_port = |svc_port: &Value, pod: &Value| -> Option<i64> {
        match &svc_port["targetPort"] {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| p["name"].as_str() == Some(s.as_str()))
                .and_then(|p| p["containerPort"].as_i64()),
            _ => svc_port["port"].as_i64(),
        }
    };
    let svc_port = svc_ports.iter().find(|p| p["name"].as_str().unwrap_or_default() == port_name);
    if let Some(sp) = svc_port {
        let ready = pods.iter().filter(|p| publish_not_ready || is_ready(p));
        for pod in ready {
            if let (Some(tp), Some(ip)) = (target_port(sp, pod), pod_ip(pod)) {
                return reach(http, store, pod, ip, scheme, &tp.to_string(), &path, req);
            }
        }
    }
    Err(unavailable(format!("no endpoints available for service {id:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_parse() {
        assert_eq!(
            parse("/api/v1/namespaces/default/pods/p:9091/proxy/healthz"),
            Some(("default", "pods", "p:9091", "/healthz".to_string()))
        );
        assert_eq!(
            parse("/api/v1/namespaces/ns/services/s/proxy"),
            Some(("ns", "services", "s", "/".into()))
        );
        assert_eq!(parse("/api/v1/namespaces/ns/pods/p/proxyx"), None);
        assert_eq!(parse("/api/v1/namespaces/ns/pods/p"), None);
        assert_eq!(split_id("https:p:1"), Some(("https", "p", "1")));
        assert_eq!(split_id("ftp:p:1"), None);
        assert_eq!(split_id("a:b:c:d"), None);
    }
}
