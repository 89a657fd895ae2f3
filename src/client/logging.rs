//! `-v=6` and above: one line per HTTP request on stderr, as kubectl's round-tripper logs them.
//!
//! Only the method, URL, status and latency are printed: never headers (bearer tokens, impersonation)
//! and never bodies (Secret data), at any level.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::{Layer, Service};

/// Verbosity at which requests are logged (kubectl logs URLs and statuses from 6 on).
pub const REQUEST_LOG_LEVEL: u8 = 6;

#[derive(Clone)]
pub struct RequestLogLayer {
    enabled: bool,
    base: String,
}

impl RequestLogLayer {
    pub fn new(verbosity: u8, server: &str) -> Self {
        Self { enabled: verbosity >= REQUEST_LOG_LEVEL, base: server.to_string() }
    }
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner, enabled: self.enabled, base: self.base.clone() }
    }
}

#[derive(Clone)]
pub struct RequestLog<S> {
    inner: S,
    enabled: bool,
    base: String,
}

impl<S, B, RB> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !self.enabled {
            return Box::pin(self.inner.call(request));
        }
        let line = format!("{} {}{}", request.method(), self.base, path_and_query(request.uri()));
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let millis = started.elapsed().as_millis();
            match &result {
                Ok(response) => {
                    let status = response.status();
                    eprintln!(
                        "{line} {} {} in {millis} milliseconds",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    );
                }
                Err(error) => eprintln!("{line}  in {millis} milliseconds: {error}"),
            }
            result
        })
    }
}

fn path_and_query(uri: &http::Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str().trim_end_matches('?')).unwrap_or("/")
}
