//! How long a request may take, and which are tried again.
//!
//! - Deadlines: connecting (TCP and TLS) gives up after [`CONNECT_TIMEOUT`], a connection that sends
//!   nothing for [`READ_TIMEOUT`] is dead, and a request without its response after
//!   [`REQUEST_DEADLINE`] has failed. `--request-timeout` replaces the last two (and shortens the
//!   first); `--request-timeout=0` lifts the request deadline, as in kubectl.
//! - Retries: only reads (GET, which is every get, list and watch), at most [`READ_ATTEMPTS`] times in
//!   all, when the server answers 429, 503 or 504 (after its `Retry-After`, capped at
//!   [`MAX_RETRY_AFTER`], else after a growing backoff), or when the connection closed before any reply.
//!   Reads through a proxy subresource (`pods/…/proxy/…`) are never retried: a 503 there is a pod
//!   that does not answer, not a busy API server.
//!   A write is never sent twice: whether a write whose reply was lost happened is found out by reading
//!   the object again (the scale engine does).

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tower::BoxError;
use tower::retry::Policy;

/// TCP connect and TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Silence on an open connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// From sending a request to its response, retries included.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// Tries of one read, the first included.
pub const READ_ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured; a server that asks for more is answered with its error.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The first backoff; it doubles with each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// The deadlines of one command, from `--request-timeout` (`None`: the defaults; `Some(None)`: `0`, no
/// request deadline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub connect: Duration,
    pub read: Duration,
    pub request: Option<Duration>,
}

impl Deadlines {
    /// `--request-timeout`: `None` when not given, `Some(None)` for `0`.
    pub fn from_flag(request_timeout: Option<Option<Duration>>) -> Self {
        match request_timeout {
            None => {
                Deadlines { connect: CONNECT_TIMEOUT, read: READ_TIMEOUT, request: Some(REQUEST_DEADLINE) }
            }
            Some(None) => Deadlines { connect: CONNECT_TIMEOUT, read: READ_TIMEOUT, request: None },
            Some(Some(timeout)) => {
                Deadlines { connect: CONNECT_TIMEOUT.min(timeout), read: timeout, request: Some(timeout) }
            }
        }
    }
}

/// The retry policy of reads (see the module documentation). One instance serves one request.
#[derive(Debug, Clone)]
pub struct ReadRetry {
    attempts: u32,
}

impl ReadRetry {
    pub fn new() -> Self {
        ReadRetry { attempts: 1 }
    }

    fn backoff(&self) -> Duration {
        FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(self.attempts.saturating_sub(1)))
    }
}

impl Default for ReadRetry {
    fn default() -> Self {
        Self::new()
    }
}

/// 429, 503 and 504: the server did not do the request and says it may later.
fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `Retry-After` in seconds (the form the API server sends), when present.
fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The connection ended before a reply: reset, closed, or an incomplete message; over HTTP/2, the
/// server reset the request's stream or closed the connection. Not a timeout (the server may still
/// be working on it) and not a refused connection (retrying will not help).
pub fn is_closed_before_reply(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return (h2.is_remote() && (h2.is_reset() || h2.is_go_away())) || h2.is_io();
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_incomplete_message() || hyper.is_canceled();
        }
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        })
    })
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for ReadRetry {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        if request.method() != Method::GET || self.attempts >= READ_ATTEMPTS {
            return None;
        }
        // Through a proxy subresource a 503 is a pod that does not answer: asking again would only
        // add load (Milvus reads have their own deadline and say what is not shown).
        if super::milvus_http::is_proxy_path(request.uri().path()) {
            return None;
        }
        let delay = match result {
            Ok(response) if is_retryable_status(response.status()) => match retry_after(response) {
                Some(asked) if asked > MAX_RETRY_AFTER => return None,
                Some(asked) => asked,
                None => self.backoff(),
            },
            Ok(_) => return None,
            Err(error) if is_closed_before_reply(error.as_ref()) => self.backoff(),
            Err(_) => return None,
        };
        self.attempts += 1;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Request<Body>) -> Option<Request<Body>> {
        if request.method() != Method::GET {
            return None;
        }
        let mut clone =
            Request::builder().method(Method::GET).uri(request.uri().clone()).version(request.version());
        if let Some(headers) = clone.headers_mut() {
            headers.extend(request.headers().clone());
        }
        let mut clone = clone.body(request.body().try_clone()?).ok()?;
        *clone.extensions_mut() = request.extensions().clone();
        Some(clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> Request<Body> {
        Request::get("/api/v1/pods").body(Body::empty()).expect("a request")
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Response<()>, BoxError> {
        let mut response = Response::builder().status(status);
        if let Some(value) = retry_after {
            response = response.header("Retry-After", value);
        }
        Ok(response.body(()).expect("a response"))
    }

    #[tokio::test]
    async fn reads_are_retried_on_429_503_504_with_retry_after_and_a_bound() {
        let mut policy = ReadRetry::new();
        let mut request = get();
        for status in [429, 503, 504] {
            assert!(policy.clone().retry(&mut request, &mut answer(status, None)).is_some(), "{status}");
        }
        assert!(policy.clone().retry(&mut request, &mut answer(500, None)).is_none());
        assert!(policy.clone().retry(&mut request, &mut answer(404, None)).is_none());
        assert!(
            policy.clone().retry(&mut request, &mut answer(429, Some("3600"))).is_none(),
            "too long to wait"
        );
        let started = tokio::time::Instant::now();
        policy.clone().retry(&mut request, &mut answer(429, Some("0"))).expect("retried").await;
        assert!(started.elapsed() < Duration::from_secs(1));
        for _ in 1..READ_ATTEMPTS {
            assert!(policy.retry(&mut request, &mut answer(503, Some("0"))).is_some());
        }
        assert!(policy.retry(&mut request, &mut answer(503, Some("0"))).is_none(), "attempts are bounded");
    }

    #[test]
    fn proxy_reads_are_not_retried_on_503() {
        let mut policy = ReadRetry::new();
        let mut request = Request::get("/api/v1/namespaces/ns/pods/p:9091/proxy/healthz")
            .body(Body::empty())
            .expect("a request");
        assert!(policy.retry(&mut request, &mut answer(503, None)).is_none());
    }

    #[test]
    fn writes_are_never_retried() {
        let mut policy = ReadRetry::new();
        let mut patch = Request::patch("/apis/apps/v1/x").body(Body::empty()).expect("a request");
        assert!(policy.retry(&mut patch, &mut answer(503, None)).is_none());
        assert!(Policy::<_, Response<()>, BoxError>::clone_request(&mut policy, &patch).is_none());
        let reset: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(policy.retry(&mut patch, &mut Err::<Response<()>, _>(reset)).is_none());
    }

    #[tokio::test]
    async fn a_read_on_a_connection_closed_before_any_reply_is_retried() {
        let mut policy = ReadRetry::new();
        let reset: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(policy.retry(&mut get(), &mut Err::<Response<()>, _>(reset)).is_some());
        let refused: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(policy.retry(&mut get(), &mut Err::<Response<()>, _>(refused)).is_none());
    }
}
