//! Injectable faults: error statuses, added latency, dropped connections, lost replies, cut-off
//! bodies and stalled connections. [`crate::proxy`] applies them, in front of either backend.

use crate::util;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A gate that holds matching requests until the test opens it ([`Fault::hold`]): a test waits
/// until the client's request is held, acts (another client's change, say), then lets it through.
#[derive(Debug, Clone, Default)]
pub struct Gate(Arc<GateInner>);

#[derive(Debug, Default)]
struct GateInner {
    held: Mutex<u64>,
    arrived: Condvar,
    open: AtomicBool,
    opened: tokio::sync::Notify,
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Blocks until `n` requests have reached the gate, at most `timeout`; whether they have.
    pub fn wait_held(&self, n: u64, timeout: Duration) -> bool {
        let held = self.0.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (held, _) = self
            .0
            .arrived
            .wait_timeout_while(held, timeout, |held| *held < n)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held >= n
    }

    /// Lets every held request through, and every later one.
    pub fn open(&self) {
        self.0.open.store(true, Ordering::SeqCst);
        self.0.opened.notify_waiters();
    }

    /// A request arrives: counted, then held until the gate opens.
    pub(crate) async fn pass(&self) {
        {
            let mut held = self.0.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *held += 1;
            self.0.arrived.notify_all();
        }
        loop {
            let opened = self.0.opened.notified();
            if self.0.open.load(Ordering::SeqCst) {
                return;
            }
            opened.await;
        }
    }
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Answer with this status code and a `Status` body (reason derived from the code).
    Status {
        /// HTTP code.
        code: u16,
        /// Status message; a generic one when `None`.
        message: Option<String>,
    },
    /// Close the connection without sending a response.
    Drop,
    /// Wait, then serve the request normally (delays of several matching faults add up).
    Delay(Duration),
    /// Hold the request at a [`Gate`] until the test opens it, then serve it normally.
    Hold(Gate),
    /// Forward the request, then close the connection without passing the reply on: the server
    /// did the work, the client never hears of it.
    DropReply,
    /// Forward the request, send the reply's headers and part of its body, then close.
    DropMidResponse,
    /// Forward the request and wait this long before each chunk of the reply's body (adds up
    /// like [`FaultAction::Delay`]).
    ChunkDelay(Duration),
    /// Answer a watch as a kube-apiserver answers one from a compacted `resourceVersion`: `200 OK`,
    /// one `ERROR` event carrying a `410 Expired` Status, then the end of the stream.
    WatchExpired,
    /// Connection-level: accept the TCP connection and never start TLS.
    StallAfterAccept,
    /// Connection-level: complete the TLS handshake, then never read or answer.
    StallAfterTls,
}

impl FaultAction {
    /// Whether the action applies to a connection (as it is accepted) rather than to a request.
    pub fn is_connection_level(&self) -> bool {
        matches!(self, FaultAction::StallAfterAccept | FaultAction::StallAfterTls)
    }
}

/// A fault rule. Build with [`Fault::status`], [`Fault::drop_connection`], [`Fault::delay`],
/// [`Fault::drop_reply`], [`Fault::drop_mid_response`], [`Fault::chunk_delay`], [`Fault::watch_expired`],
/// [`Fault::stall_after_accept`] or [`Fault::stall_after_tls`], then narrow it with [`Fault::on`]
/// and friends. Connection-level faults (the stalls) ignore [`Fault::on`] and
/// [`Fault::with_query`]: they count accepted connections for [`Fault::nth`] and [`Fault::times`].
///
/// ```
/// use milvus_test_api::Fault;
/// // every list of HPAs in any namespace fails with 500
/// let f = Fault::status(500).on("GET", "/apis/autoscaling/*/horizontalpodautoscalers");
/// // the 2nd GET of any pod list is dropped
/// let g = Fault::drop_connection().on("GET", "*/pods").nth(2);
/// # let _ = (f, g);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub(crate) method: Option<String>,
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) action: FaultAction,
    pub(crate) retry_after: Option<u64>,
    pub(crate) nth: Option<u64>,
    pub(crate) times: Option<u64>,
    pub(crate) seen: u64,
    pub(crate) fired: u64,
}

impl Fault {
    fn with(action: FaultAction) -> Self {
        Fault {
            method: None,
            path: "*".into(),
            query: vec![],
            action,
            retry_after: None,
            nth: None,
            times: None,
            seen: 0,
            fired: 0,
        }
    }

    /// Respond with `code` and a Status body.
    pub fn status(code: u16) -> Self {
        Fault::with(FaultAction::Status { code, message: None })
    }

    /// Close the connection without a response.
    pub fn drop_connection() -> Self {
        Fault::with(FaultAction::Drop)
    }

    /// Add latency before serving.
    pub fn delay(d: Duration) -> Self {
        Fault::with(FaultAction::Delay(d))
    }

    /// Hold matching requests at `gate` until the test opens it (then serve them normally).
    pub fn hold(gate: &Gate) -> Self {
        Fault::with(FaultAction::Hold(gate.clone()))
    }

    /// Forward the request, then drop the connection instead of passing the reply on (a write
    /// that reached the server, whose client never hears the answer).
    pub fn drop_reply() -> Self {
        Fault::with(FaultAction::DropReply)
    }

    /// Forward the request, send the reply's headers and the first part of its body, then close.
    pub fn drop_mid_response() -> Self {
        Fault::with(FaultAction::DropMidResponse)
    }

    /// Forward the request and wait `d` before each chunk of the reply's body.
    pub fn chunk_delay(d: Duration) -> Self {
        Fault::with(FaultAction::ChunkDelay(d))
    }

    /// Answer a watch with an `ERROR` event `410 Expired` (its `resourceVersion` is too old), as a
    /// kube-apiserver does: the client has to list again. Narrow it with
    /// `.with_query("watch", "true")`.
    pub fn watch_expired() -> Self {
        Fault::with(FaultAction::WatchExpired)
    }

    /// Accept TCP connections and never start the TLS handshake.
    pub fn stall_after_accept() -> Self {
        Fault::with(FaultAction::StallAfterAccept)
    }

    /// Complete the TLS handshake, then never read a request or answer.
    pub fn stall_after_tls() -> Self {
        Fault::with(FaultAction::StallAfterTls)
    }

    /// For [`Fault::status`]: send `Retry-After: secs` with the answer.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Only requests with this method (`"*"` for any) whose path matches the glob `path`
    /// (`*` matches any characters, including `/`). The query string is not part of the path.
    pub fn on(mut self, method: &str, path: &str) -> Self {
        self.method = if method == "*" { None } else { Some(method.to_ascii_uppercase()) };
        self.path = path.to_string();
        self
    }

    /// Only requests whose query has `key=value` (e.g. `("watch", "true")`).
    pub fn with_query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.to_string(), value.to_string()));
        self
    }

    /// Only the `n`-th matching request (1-based).
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n);
        self
    }

    /// Only the first `n` matching requests.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Status message for [`Fault::status`].
    pub fn message(mut self, m: &str) -> Self {
        if let FaultAction::Status { message, .. } = &mut self.action {
            *message = Some(m.to_string());
        }
        self
    }

    /// How many requests this fault has affected so far.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    /// Count one more matching request (or connection); whether the fault applies to it.
    fn counts(&mut self) -> bool {
        self.seen += 1;
        match (self.nth, self.times) {
            (Some(n), _) => self.seen == n,
            (None, Some(t)) => self.seen <= t,
            (None, None) => true,
        }
    }

    fn matches(&self, method: &str, path: &str, query: &[(String, String)]) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && util::glob(&self.path, path)
            && self.query.iter().all(|(k, v)| query.iter().any(|(qk, qv)| qk == k && qv == v))
    }
}

/// Outcome of fault evaluation for one request.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub delay: Duration,
    pub chunk_delay: Duration,
    pub hold: Option<Gate>,
    pub action: Option<FaultAction>,
    pub retry_after: Option<u64>,
}

/// The active faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub list: Vec<Fault>,
    pub latency: Duration,
}

impl Faults {
    pub fn decide(&mut self, method: &str, path: &str, query: &[(String, String)]) -> Decision {
        let mut d = Decision { delay: self.latency, ..Decision::default() };
        for f in &mut self.list {
            if f.action.is_connection_level() || !f.matches(method, path, query) || !f.counts() {
                continue;
            }
            match &f.action {
                FaultAction::Delay(x) => {
                    f.fired += 1;
                    d.delay += *x;
                }
                FaultAction::ChunkDelay(x) => {
                    f.fired += 1;
                    d.chunk_delay += *x;
                }
                FaultAction::Hold(gate) => {
                    f.fired += 1;
                    d.hold = Some(gate.clone());
                }
                other => {
                    if d.action.is_none() {
                        f.fired += 1;
                        d.action = Some(other.clone());
                        d.retry_after = f.retry_after;
                    }
                }
            }
        }
        d
    }

    /// The connection-level fault (a stall) for a newly accepted connection, if any.
    pub fn decide_connection(&mut self) -> Option<FaultAction> {
        let mut action = None;
        for f in &mut self.list {
            if !f.action.is_connection_level() || !f.counts() {
                continue;
            }
            if action.is_none() {
                f.fired += 1;
                action = Some(f.action.clone());
            }
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_and_times() {
        let mut fs = Faults::default();
        fs.list.push(Fault::status(500).on("GET", "/api/v1/*").nth(2));
        fs.list.push(Fault::drop_connection().on("PATCH", "*").times(1));
        fs.list.push(Fault::delay(Duration::from_millis(5)).on("*", "*").with_query("watch", "true"));
        let q = vec![];
        assert!(fs.decide("GET", "/api/v1/pods", &q).action.is_none());
        assert_eq!(
            fs.decide("GET", "/api/v1/pods", &q).action,
            Some(FaultAction::Status { code: 500, message: None })
        );
        assert!(fs.decide("GET", "/api/v1/pods", &q).action.is_none());
        assert_eq!(fs.decide("PATCH", "/x", &q).action, Some(FaultAction::Drop));
        assert!(fs.decide("PATCH", "/x", &q).action.is_none());
        let w = vec![("watch".to_string(), "true".to_string())];
        assert_eq!(fs.decide("GET", "/x", &w).delay, Duration::from_millis(5));
    }

    #[test]
    fn connection_faults_count_connections_not_requests() {
        let mut fs = Faults::default();
        fs.list.push(Fault::stall_after_tls().nth(2));
        fs.list.push(Fault::status(429).retry_after(1).on("GET", "*").times(1));
        let d = fs.decide("GET", "/api", &[]);
        assert_eq!(d.action, Some(FaultAction::Status { code: 429, message: None }));
        assert_eq!(d.retry_after, Some(1));
        assert_eq!(fs.decide_connection(), None);
        assert_eq!(fs.decide_connection(), Some(FaultAction::StallAfterTls));
        assert_eq!(fs.decide_connection(), None);
    }
}
