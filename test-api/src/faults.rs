//! Injectable faults: error statuses, added latency and dropped connections.

use crate::util;
use std::time::Duration;

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
}

/// A fault rule. Build with [`Fault::status`], [`Fault::drop_connection`] or [`Fault::delay`],
/// then narrow it with [`Fault::on`] and friends.
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
    pub action: Option<FaultAction>,
}

/// The active faults.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub list: Vec<Fault>,
    pub latency: Duration,
}

impl Faults {
    pub fn decide(&mut self, method: &str, path: &str, query: &[(String, String)]) -> Decision {
        let mut d = Decision { delay: self.latency, action: None };
        for f in &mut self.list {
            if !f.matches(method, path, query) {
                continue;
            }
            f.seen += 1;
            let active = match (f.nth, f.times) {
                (Some(n), _) => f.seen == n,
                (None, Some(t)) => f.seen <= t,
                (None, None) => true,
            };
            if !active {
                continue;
            }
            match &f.action {
                FaultAction::Delay(x) => {
                    f.fired += 1;
                    d.delay += *x;
                }
                other => {
                    if d.action.is_none() {
                        f.fired += 1;
                        d.action = Some(other.clone());
                    }
                }
            }
        }
        d
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
}
