//! The fault-injecting proxy every [`crate::TestApi`] puts in front of its backend.
//!
//! The kubeconfigs point here: an HTTPS listener on `127.0.0.1` with its own CA and certificate.
//! Each request is matched against the [`Fault`] rules; unless a fault answers it, it is
//! forwarded over a fresh TLS connection to the backend (trusting the backend's CA), with every
//! header but `Host` and `Connection` passed on as sent (the bearer token, `Impersonate-*`), and the
//! reply is streamed back chunk by chunk (watches included).
//!
//! The proxy keeps its own log only of what it did to requests: those it answered or dropped
//! itself (they never reached the server) and those whose reply it dropped or cut off (the server
//! saw them and logged them with its status). [`merge`] folds that log into the backend's request
//! log (the loopback's own record, or the real server's audit log) in time order.

use crate::faults::{FaultAction, Faults};
use crate::status::ApiError;
use crate::{Fault, RequestRecord, auth, tls, util};
use axum::body::Body;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy did to a request that the backend also saw.
#[derive(Debug, Clone)]
struct Tampered {
    method: String,
    path: String,
    /// When the proxy started forwarding it (the server received it afterwards).
    forwarded: SystemTime,
    /// The status the client saw (0: no reply at all).
    status: u16,
}

#[derive(Debug, Default)]
struct Log {
    /// Requests the proxy answered or dropped itself.
    answered: Vec<RequestRecord>,
    /// Forwarded requests whose reply was dropped or cut off.
    tampered: Vec<Tampered>,
}

struct Shared {
    faults: Mutex<Faults>,
    log: Mutex<Log>,
    /// `(user, token)` of the kubeconfig's users, to name the user of a faulted request.
    users: Vec<(String, String)>,
    upstream: SocketAddr,
    upstream_host: String,
    connector: tokio_rustls::TlsConnector,
    stop: tokio::sync::watch::Sender<bool>,
    /// How many of the [`LISTENERS`] have closed their socket.
    closed: AtomicUsize,
    /// The TLS connections clients opened, in order.
    connections: Mutex<Vec<ConnectionRecord>>,
}

/// A TLS connection a client opened to the test API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    /// The protocol agreed by ALPN (`h2`, `http/1.1`), empty when the client offered none.
    pub protocol: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running proxy. Dropping it stops it (open connections included).
pub(crate) struct Proxy {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The same proxy, offering HTTP/1.1 only.
    pub http1_only_url: String,
    pub port: u16,
    /// PEM of the CA that signed the proxy's certificate.
    pub ca_pem: String,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// DER certificates of a PEM bundle.
fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            current = Some(String::new());
        } else if line.starts_with("-----END") {
            if let Some(b64) = current.take()
                && let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                out.push(rustls::pki_types::CertificateDer::from(der));
            }
        } else if let Some(c) = current.as_mut() {
            c.push_str(line);
        }
    }
    out
}

impl Proxy {
    /// Listen on `port` of 127.0.0.1 (0: a free one) and forward to `upstream_port` (which serves a
    /// certificate signed by `upstream_ca_pem`).
    pub fn start(
        port: u16,
        upstream_port: u16,
        upstream_ca_pem: &str,
        users: Vec<(String, String)>,
    ) -> Result<Proxy, String> {
        let own = tls::generate().map_err(err)?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in pem_certs(upstream_ca_pem) {
            roots.add(cert).map_err(err)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let runtime = crate::util::runtime("milvus-test-proxy")?;
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", port)))
            .map_err(|e| format!("proxy: cannot listen: {e}"))?;
        let port = listener.local_addr().map_err(err)?.port();
        let h1_listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", 0)))
            .map_err(|e| format!("proxy: cannot listen: {e}"))?;
        let h1_port = h1_listener.local_addr().map_err(err)?.port();
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Log::default()),
            users,
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            upstream_host: format!("127.0.0.1:{upstream_port}"),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
            stop: tokio::sync::watch::channel(false).0,
            closed: AtomicUsize::new(0),
            connections: Mutex::new(Vec::new()),
        });
        // Clients may speak HTTP/2 here, as to a real API server; the backend is reached over HTTP/1.1.
        let mut server = (*own.server_config).clone();
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        runtime.spawn(accept_loop(shared.clone(), listener, Arc::new(server)));
        // The same proxy on a second port that offers HTTP/1.1 only, as some proxies in front of API
        // servers do.
        runtime.spawn(accept_loop(shared.clone(), h1_listener, own.server_config.clone()));
        Ok(Proxy {
            shared,
            runtime: Some(runtime),
            url: format!("https://127.0.0.1:{port}"),
            http1_only_url: format!("https://127.0.0.1:{h1_port}"),
            port,
            ca_pem: own.ca_pem,
        })
    }

    pub fn set_fault(&self, fault: Fault) {
        lock(&self.shared.faults).list.push(fault);
    }

    pub fn faults(&self) -> Vec<Fault> {
        lock(&self.shared.faults).list.clone()
    }

    pub fn clear_faults(&self) {
        let mut f = lock(&self.shared.faults);
        f.list.clear();
        f.latency = Duration::ZERO;
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.faults).latency = latency;
    }

    /// Close the listening socket (new connections are refused; open ones keep working).
    pub fn stop_listening(&self) {
        self.shared.stop.send_replace(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        // Each listener closes on its own: return once both have, not once the first has.
        while self.shared.closed.load(Ordering::SeqCst) < LISTENERS && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Fold the proxy's log into the backend's request log (see [`merge`]).
    pub fn merge(&self, backend: Vec<RequestRecord>) -> Vec<RequestRecord> {
        let log = lock(&self.shared.log);
        merge(backend, &log.answered, &log.tampered)
    }

    pub fn clear_requests(&self) {
        let mut log = lock(&self.shared.log);
        log.answered.clear();
        log.tampered.clear();
        lock(&self.shared.connections).clear();
    }

    pub fn connections(&self) -> Vec<ConnectionRecord> {
        lock(&self.shared.connections).clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The request log as the client saw it: the backend's records, each forwarded request whose
/// reply the proxy dropped (status 0) or cut off (the status sent) marked `fault` and `dropped`,
/// plus the requests the proxy answered itself, ordered by arrival and numbered from 1.
fn merge(
    mut records: Vec<RequestRecord>,
    answered: &[RequestRecord],
    tampered: &[Tampered],
) -> Vec<RequestRecord> {
    // The server's clock reading may round down (the audit log has microseconds).
    let slack = Duration::from_millis(2);
    for t in tampered {
        let since = t.forwarded.checked_sub(slack).unwrap_or(t.forwarded);
        if let Some(r) = records
            .iter_mut()
            .find(|r| !r.fault && r.method == t.method && r.path == t.path && r.received >= since)
        {
            r.fault = true;
            r.dropped = true;
            r.status = t.status;
        }
    }
    records.extend(answered.iter().cloned());
    records.sort_by_key(|r| r.received);
    for (r, seq) in records.iter_mut().zip(1u64..) {
        r.seq = seq;
    }
    records
}

/// The proxy's listening sockets: the API's port and the HTTP/1.1-only one, each with an [`accept_loop`].
const LISTENERS: usize = 2;

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut stop = shared.stop.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|v| *v) => break,
        };
        let Ok((tcp, _)) = accepted else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let stall = lock(&shared.faults).decide_connection();
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            if stall == Some(FaultAction::StallAfterAccept) {
                // Hold the socket open and silent until the proxy stops.
                std::future::pending::<()>().await;
                drop(tcp);
                return;
            }
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let protocol = tls.get_ref().1.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
            lock(&shared.connections).push(ConnectionRecord { protocol: protocol.unwrap_or_default() });
            if stall == Some(FaultAction::StallAfterTls) {
                std::future::pending::<()>().await;
                drop(tls);
                return;
            }
            // A fault that drops the connection closes it, every HTTP/2 stream on it included, as a
            // network or server failure would.
            let dropped = Arc::new(tokio::sync::Notify::new());
            let drop_it = dropped.clone();
            let svc = hyper::service::service_fn(move |req| handle(shared.clone(), req, drop_it.clone()));
            // HTTP/1.1 or HTTP/2, whichever the client speaks.
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc);
            tokio::select! {
                _ = connection => {}
                () = dropped.notified() => {}
            }
        });
    }
    drop(listener);
    shared.closed.fetch_add(1, Ordering::SeqCst);
}

fn aborted(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, what.to_string())
}

/// The Kubernetes verb of a request, as the API server names it (None for discovery).
fn verb_of(method: &str, path: &str, watch: bool) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segs.as_slice() {
        ["api", _v, rest @ ..] => rest,
        ["apis", _g, _v, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    if rest.is_empty() {
        return None;
    }
    let named = rest.len() > 1;
    let verb = match method {
        "GET" if watch => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if named => "delete",
        "DELETE" => "deletecollection",
        other => return Some(other.to_ascii_lowercase()),
    };
    Some(verb.to_string())
}

fn status_message(code: u16) -> String {
    match code {
        500 => "Internal error occurred: injected fault".to_string(),
        503 => "the server is currently unable to handle the request".to_string(),
        429 => "Too many requests, please try again later.".to_string(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".to_string(),
        _ => format!("injected fault ({code})"),
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    drop_connection: Arc<tokio::sync::Notify>,
) -> Result<Response<Body>, std::io::Error> {
    let received = SystemTime::now();
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = util::parse_query(req.uri().query());
    let decision = lock(&shared.faults).decide(&method, &path, &query);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(gate) = &decision.hold {
        gate.pass().await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), 256 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => Bytes::new(),
    };

    // Answered (or dropped) here: the server never sees it.
    if let Some(action @ (FaultAction::Status { .. } | FaultAction::Drop | FaultAction::WatchExpired)) =
        &decision.action
    {
        let hdr =
            |h: header::HeaderName| parts.headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
        let token =
            hdr(header::AUTHORIZATION).and_then(|a| a.strip_prefix("Bearer ").map(|t| t.trim().to_string()));
        let user = hdr(header::HeaderName::from_static("impersonate-user")).or_else(|| {
            let t = token.as_deref()?;
            shared.users.iter().find(|(_, tok)| tok == t).map(|(u, _)| u.clone())
        });
        let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let watch = matches!(param("watch"), Some("true" | "1"));
        let content_type = hdr(header::CONTENT_TYPE);
        let mut rec = RequestRecord {
            seq: 0,
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            user,
            credential: token.as_deref().map(auth::fingerprint),
            status: 0,
            verb: verb_of(&method, &path, watch),
            dry_run: param("dryRun") == Some("All"),
            watch,
            fault: true,
            dropped: false,
            content_type,
            body: if body.is_empty() {
                None
            } else {
                serde_json::from_slice(&body)
                    .ok()
                    .or_else(|| Some(Value::String(String::from_utf8_lossy(&body).into_owned())))
            },
            user_agent: hdr(header::USER_AGENT),
            duration: Duration::ZERO,
            received,
        };
        let reply = match action {
            FaultAction::Status { code, message } => {
                let msg = message.clone().unwrap_or_else(|| status_message(*code));
                rec.status = *code;
                let mut r = Response::new(Body::from(ApiError::new(*code, msg).to_json().to_string()));
                *r.status_mut() = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, private"));
                if let Some(secs) = decision.retry_after {
                    h.insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
                }
                Ok(r)
            }
            FaultAction::WatchExpired => {
                rec.status = 200;
                let event = json!({"type": "ERROR", "object": watch_expired_status(&query)});
                let mut r = Response::new(Body::from(format!("{event}\n")));
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
                h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache, private"));
                Ok(r)
            }
            _ => {
                rec.dropped = true;
                drop_connection.notify_one();
                Err(aborted("injected connection drop"))
            }
        };
        rec.duration = started.elapsed();
        lock(&shared.log).answered.push(rec);
        return reply;
    }

    // Forward.
    let forwarded = SystemTime::now();
    let response = match forward(&shared, parts, body).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(
                ApiError::new(502, format!("proxy: the backend did not answer: {e}")).to_json().to_string(),
            ));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            return Ok(r);
        }
    };
    let tamper = |status: u16| {
        lock(&shared.log).tampered.push(Tampered {
            method: method.clone(),
            path: path.clone(),
            forwarded,
            status,
        });
    };
    let (parts, incoming) = response.into_parts();
    match decision.action {
        Some(FaultAction::DropReply) => {
            // Let the server finish, then say nothing.
            let _ = axum::body::to_bytes(Body::new(incoming), usize::MAX).await;
            tamper(0);
            drop_connection.notify_one();
            Err(aborted("injected drop of the reply"))
        }
        Some(FaultAction::DropMidResponse) => {
            tamper(parts.status.as_u16());
            let mut stream = Body::new(incoming).into_data_stream();
            let first = stream.next().await.and_then(Result::ok).unwrap_or_default();
            let part = first.slice(..first.len() / 2);
            let chunks = futures_util::stream::iter([
                Ok::<Bytes, std::io::Error>(part),
                Err(aborted("injected drop mid-response")),
            ]);
            Ok(Response::from_parts(parts, Body::from_stream(chunks)))
        }
        _ if !decision.chunk_delay.is_zero() => {
            let pause = decision.chunk_delay;
            let chunks = Body::new(incoming).into_data_stream().then(move |chunk| async move {
                tokio::time::sleep(pause).await;
                chunk
            });
            Ok(Response::from_parts(parts, Body::from_stream(chunks)))
        }
        _ => Ok(Response::from_parts(parts, Body::new(incoming))),
    }
}

/// Send the request to the backend on a new TLS connection; the reply streams from it.
async fn forward(
    shared: &Shared,
    mut parts: http::request::Parts,
    body: Bytes,
) -> Result<Response<Incoming>, String> {
    let tcp = TcpStream::connect(shared.upstream).await.map_err(err)?;
    let _ = tcp.set_nodelay(true);
    let name =
        rustls::pki_types::ServerName::IpAddress(rustls::pki_types::IpAddr::from(shared.upstream.ip()));
    let tls = shared.connector.connect(name, tcp).await.map_err(err)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(err)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    parts.headers.remove(header::CONNECTION);
    if let Ok(host) = header::HeaderValue::from_str(&shared.upstream_host) {
        parts.headers.insert(header::HOST, host);
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    parts.uri = path_and_query.parse().map_err(err)?;
    // The client may have spoken HTTP/2 to the proxy; the backend connection is HTTP/1.1.
    parts.version = http::Version::HTTP_11;
    let req = Request::from_parts(parts, axum::body::Body::from(body));
    sender.send_request(req).await.map_err(err)
}

/// The Status of a kube-apiserver's `ERROR` event for a watch from a compacted `resourceVersion`.
pub(crate) fn watch_expired_status(query: &[(String, String)]) -> Value {
    let asked = query.iter().find(|(k, _)| k == "resourceVersion").map_or("0", |(_, v)| v.as_str());
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("too old resource version: {asked}"),
        "reason": "Expired",
        "code": 410,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(method: &str, path: &str, at_ms: u64, status: u16) -> RequestRecord {
        RequestRecord {
            seq: 0,
            method: method.into(),
            path: path.into(),
            query: vec![],
            user: Some("admin".into()),
            credential: None,
            status,
            verb: None,
            dry_run: false,
            watch: false,
            fault: false,
            dropped: false,
            content_type: None,
            body: None,
            user_agent: None,
            duration: Duration::ZERO,
            received: SystemTime::UNIX_EPOCH + Duration::from_millis(at_ms),
        }
    }

    #[test]
    fn the_proxys_log_is_merged_in_time_order() {
        let backend =
            vec![rec("GET", "/api", 10, 200), rec("PATCH", "/x", 30, 200), rec("GET", "/y", 50, 200)];
        let mut answered = rec("GET", "/y", 40, 429);
        answered.fault = true;
        let tampered = vec![Tampered {
            method: "PATCH".into(),
            path: "/x".into(),
            forwarded: SystemTime::UNIX_EPOCH + Duration::from_millis(29),
            status: 0,
        }];
        let merged = merge(backend, &[answered], &tampered);
        let seen: Vec<_> = merged.iter().map(|r| (r.seq, r.method.as_str(), r.status, r.fault)).collect();
        assert_eq!(
            seen,
            [(1, "GET", 200, false), (2, "PATCH", 0, true), (3, "GET", 429, true), (4, "GET", 200, false)]
        );
        assert!(merged[1].dropped);
    }

    #[test]
    fn verbs_are_named_as_the_server_names_them() {
        assert_eq!(verb_of("GET", "/api/v1/namespaces/default/pods", false).as_deref(), Some("list"));
        assert_eq!(verb_of("GET", "/api/v1/namespaces/default/pods/p", false).as_deref(), Some("get"));
        assert_eq!(verb_of("GET", "/apis/apps/v1/deployments", true).as_deref(), Some("watch"));
        assert_eq!(
            verb_of("PATCH", "/apis/apps/v1/namespaces/d/deployments/x/scale", false).as_deref(),
            Some("patch")
        );
        assert_eq!(verb_of("GET", "/api/v1/namespaces", false).as_deref(), Some("list"));
        assert_eq!(verb_of("GET", "/apis/apps/v1", false), None);
        assert_eq!(verb_of("GET", "/version", false), None);
    }
}
