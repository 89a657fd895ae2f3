//! The connection under the kube client: one TLS connection per command, carrying every request as
//! an HTTP/2 stream when the server offers `h2` by ALPN (as client-go does), else HTTP/1.1.
//!
//! kube-rs's default stack speaks HTTP/1.1 only, so the concurrent lists of a command each opened a
//! TLS connection of their own. This builds the same stack (kube's TLS configuration, base URI, auth
//! and extra-header layers; the kubeconfig's timeouts on the connector) over a hyper client that
//! negotiates HTTP/2. Until the first reply has arrived, later requests wait for it: the connection
//! it opened is then in the pool and, if it speaks HTTP/2, shared by all; otherwise they connect
//! one by one as before. Without that wait, requests issued together would each open a connection
//! before any of them knew it could be shared.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::Config;
use kube::client::{Body, ClientBuilder, ConfigExt as _, DynBody};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt as _};

/// The service kube's client runs on.
pub type Stack = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;

/// How often an idle HTTP/2 connection is pinged (client-go's `ReadIdleTimeout` is 30 s): the
/// answers keep a quiet watch's connection within the kubeconfig's read timeout, and a dead peer is
/// noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A client builder over the HTTP/2-capable stack, or `None` when the kubeconfig asks for a proxy
/// (kube's own builder then decides, as before).
pub fn client_builder(config: &Config) -> Result<Option<ClientBuilder<Stack>>, kube::Error> {
    if config.proxy_url.is_some() {
        return Ok(None);
    }
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    let https = match &config.tls_server_name {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.clone())
                .map_err(|e| kube::Error::RustlsTls(kube::client::RustlsTlsError::InvalidServerName(e)))?;
            https.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => https,
    };
    let mut connector =
        hyper_timeout::TimeoutConnector::new(https.enable_all_versions().wrap_connector(http));
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(KEEP_ALIVE)
        .http2_keep_alive_while_idle(true)
        .build(connector);
    let gated = config.cluster_url.scheme() == Some(&http::uri::Scheme::HTTPS);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .option_layer(gated.then(FirstReplyLayer::default))
        .map_err(BoxError::from)
        .service(hyper)
        .map_response(|response| response.map(|body| Box::new(body.map_err(BoxError::from)) as Box<DynBody>));
    let service = WholeReads { inner: service };
    Ok(Some(ClientBuilder::new(BoxService::new(service), config.default_namespace.clone())))
}

/// A read (GET, not a watch) is answered only once its whole body has arrived: a connection or stream
/// that breaks mid-body fails the request itself, which the read retries can then send again, instead
/// of failing the caller's decoding after the retries are behind it. (Every list is read whole before
/// it is decoded anyway; a watch streams and is passed on as it comes.)
#[derive(Clone)]
struct WholeReads<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for WholeReads<S>
where
    S: Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let whole = request.method() == http::Method::GET && !is_watch(request.uri());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if !whole {
                return Ok(response);
            }
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            let body = http_body_util::Full::new(bytes).map_err(|never| -> BoxError { match never {} });
            Ok(Response::from_parts(parts, Box::new(body) as Box<DynBody>))
        })
    }
}

fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|pair| pair == "watch=true" || pair == "watch=1"))
}

/// Holds every request but the first until the first has its reply (or failed, or was dropped).
#[derive(Clone, Default)]
pub struct FirstReplyLayer {
    gate: Arc<Gate>,
}

struct Gate {
    taken: AtomicBool,
    open: tokio::sync::watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { taken: AtomicBool::new(false), open: tokio::sync::watch::Sender::new(false) }
    }
}

/// Opens the gate when dropped: after the first reply, an error, or cancellation.
struct Opener(Arc<Gate>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open.send_replace(true);
    }
}

impl<S> Layer<S> for FirstReplyLayer {
    type Service = FirstReply<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FirstReply { inner, gate: self.gate.clone() }
    }
}

#[derive(Clone)]
pub struct FirstReply<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> Service<Request<B>> for FirstReply<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service made ready by `poll_ready` serves this call; a clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let gate = self.gate.clone();
        Box::pin(async move {
            if gate.taken.swap(true, Ordering::SeqCst) {
                let mut open = gate.open.subscribe();
                // The sender lives in `gate`, which this future holds: waiting cannot fail.
                let _ = open.wait_for(|open| *open).await;
                inner.call(request).await
            } else {
                let _opener = Opener(gate.clone());
                inner.call(request).await
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the order in which calls started and finished.
    #[derive(Clone)]
    struct Recorder {
        log: Arc<Mutex<Vec<String>>>,
        delay: Duration,
    }

    impl Service<Request<&'static str>> for Recorder {
        type Response = &'static str;
        type Error = BoxError;
        type Future = Pin<Box<dyn Future<Output = Result<&'static str, BoxError>> + Send>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: Request<&'static str>) -> Self::Future {
            let log = self.log.clone();
            let delay = self.delay;
            Box::pin(async move {
                let name = *request.body();
                log.lock().map_err(|_| "poisoned")?.push(format!("start {name}"));
                tokio::time::sleep(delay).await;
                log.lock().map_err(|_| "poisoned")?.push(format!("end {name}"));
                Ok(name)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_after_the_first_wait_for_its_reply_then_go_together() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let service =
            FirstReplyLayer::default().layer(Recorder { log: log.clone(), delay: Duration::from_millis(10) });
        let send = |name: &'static str| service.clone().oneshot(Request::new(name));
        let (a, b, c) = tokio::join!(send("a"), send("b"), send("c"));
        assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), ("a", "b", "c"));
        let log = log.lock().unwrap().clone();
        assert_eq!(log[..2], ["start a", "end a"]);
        let mut together = log[2..4].to_vec();
        together.sort();
        assert_eq!(together, ["start b", "start c"], "the others went together: {log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_request_that_is_dropped_opens_the_gate() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let service =
            FirstReplyLayer::default().layer(Recorder { log: log.clone(), delay: Duration::from_secs(60) });
        let first = service.clone().oneshot(Request::new("a"));
        let abandoned = tokio::time::timeout(Duration::from_millis(1), first).await;
        assert!(abandoned.is_err(), "the first is still waiting when dropped");
        let second =
            tokio::time::timeout(Duration::from_secs(120), service.clone().oneshot(Request::new("b"))).await;
        assert_eq!(second.expect("not held").unwrap(), "b");
    }
}
