//! What the pods answer over HTTP, shared by both backends: the loopback answers the API server's
//! proxy subresources (`pods/NAME[:PORT]/proxy/…`, `services/NAME[:PORT]/proxy/…`) from it in
//! process; on the kube-apiserver backend a responder in the pods' network namespace
//! ([`crate::real`]'s pod network) serves it on each pod IP, and the real server proxies to it.
//!
//! Rules name a pod or a workload (`name` or `namespace/name`), a port and a path; the last
//! matching rule wins. Without a rule, a Ready pod listens on [`DEFAULT_PORT`] and answers
//! `/healthz` with `200 OK`, anything else with Go's `404 page not found`; a pod that is not Ready
//! does not listen (connections are refused).

use std::collections::BTreeSet;
use std::sync::Mutex;

/// The port Milvus serves `/healthz` and its HTTP API on.
pub const DEFAULT_PORT: u16 = 9091;

/// One HTTP answer of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// Any status, content type and body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpReply { status, content_type: content_type.to_string(), body: body.into() }
    }

    /// `text/plain; charset=utf-8`.
    pub fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    /// `application/json`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status, "application/json", body.to_string())
    }

    /// What a healthy pod answers at `/healthz`: `200`, `OK`.
    pub fn ok() -> Self {
        Self::text(200, "OK")
    }

    /// Go's `http.NotFound`: `404`, `404 page not found\n`.
    pub fn not_found() -> Self {
        Self::text(404, "404 page not found\n")
    }
}

#[derive(Debug, Clone)]
enum Answer {
    Reply(HttpReply),
    /// Nothing listens on the port: connections are refused.
    Refuse,
}

#[derive(Debug, Clone)]
struct Rule {
    /// Pod or workload, `name` or `namespace/name`.
    target: String,
    port: u16,
    /// None for [`Answer::Refuse`] (it covers the whole port).
    path: Option<String>,
    answer: Answer,
}

/// The pod an HTTP request reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodInfo {
    pub namespace: String,
    pub name: String,
    /// The owning Deployment, StatefulSet or Job (the pod's own name if none).
    pub workload: String,
    pub ready: bool,
}

/// One HTTP request to a pod, as it arrived (through the API server's proxy or directly).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodRequest<'a> {
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// The decoded query parameters, in order.
    pub query: &'a [(String, String)],
    /// The request's `Content-Type` (empty when none).
    pub content_type: &'a str,
    pub body: &'a [u8],
}

impl<'a> PodRequest<'a> {
    /// A query parameter.
    pub(crate) fn param(&self, key: &str) -> Option<&'a str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// A GET without query, type or body.
    #[cfg(test)]
    pub(crate) fn get(path: &'a str) -> Self {
        PodRequest { method: "GET", path, query: &[], content_type: "", body: &[] }
    }
}

/// A pod as a stateful handler sees it: who it is and its IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodSeen {
    pub info: PodInfo,
    pub ip: String,
}

/// Answers requests with state of its own (the fake Milvus); consulted after the rules and before
/// the defaults. `pods` are the pods that exist now, with their IPs (on the request's namespace).
pub(crate) trait Handler: Send + Sync {
    fn handle(&self, me: &PodSeen, port: u16, req: &PodRequest<'_>, pods: &[PodSeen]) -> Option<HttpReply>;
}

/// The rules, changeable at run time, and the stateful handler.
#[derive(Default)]
pub(crate) struct PodHttp {
    rules: Mutex<Vec<Rule>>,
    handler: Mutex<Option<std::sync::Arc<dyn Handler>>>,
}

impl std::fmt::Debug for PodHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodHttp").field("rules", &self.rules().len()).finish()
    }
}

fn names(target: &str, ns: &str, name: &str) -> bool {
    match target.split_once('/') {
        Some((t_ns, t)) => t_ns == ns && t == name,
        None => target == name,
    }
}

impl PodHttp {
    fn rules(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn applies(rule: &Rule, pod: &PodInfo, port: u16) -> bool {
        rule.port == port
            && (names(&rule.target, &pod.namespace, &pod.name)
                || names(&rule.target, &pod.namespace, &pod.workload))
    }

    /// Answer `reply` at `path` on `port` of the pods of `target`.
    pub(crate) fn reply(&self, target: &str, port: u16, path: &str, reply: HttpReply) {
        let path = Some(path.to_string());
        self.rules().push(Rule { target: target.to_string(), port, path, answer: Answer::Reply(reply) });
    }

    /// Refuse connections to `port` of the pods of `target`.
    pub(crate) fn refuse(&self, target: &str, port: u16) {
        self.rules().push(Rule { target: target.to_string(), port, path: None, answer: Answer::Refuse });
    }

    /// Whether `pod` accepts connections on `port`: the last rule for it decides (a reply rule
    /// opens the port, a refusal closes it); without one, Ready pods listen on [`DEFAULT_PORT`].
    pub(crate) fn listens(&self, pod: &PodInfo, port: u16) -> bool {
        match self.rules().iter().rev().find(|r| Self::applies(r, pod, port)) {
            Some(r) => matches!(r.answer, Answer::Reply(_)),
            None => pod.ready && port == DEFAULT_PORT,
        }
    }

    /// The ports `pod` listens on.
    pub(crate) fn ports(&self, pod: &PodInfo) -> BTreeSet<u16> {
        let mut candidates: BTreeSet<u16> = self.rules().iter().map(|r| r.port).collect();
        candidates.insert(DEFAULT_PORT);
        candidates.into_iter().filter(|p| self.listens(pod, *p)).collect()
    }

    /// Set the stateful handler (replacing any).
    pub(crate) fn set_handler(&self, handler: std::sync::Arc<dyn Handler>) {
        *self.handler.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handler);
    }

    /// The answer of `pod` (at `ip`) to `req` on `port`: a rule for the path, else the handler's
    /// answer, else the defaults. `pods` lists the pods a handler may need.
    pub(crate) fn answer(
        &self,
        pod: &PodInfo,
        ip: &str,
        port: u16,
        req: &PodRequest<'_>,
        pods: impl FnOnce() -> Vec<PodSeen>,
    ) -> HttpReply {
        let path = req.path;
        let found = {
            let rules = self.rules();
            rules
                .iter()
                .rev()
                .find(|r| {
                    Self::applies(r, pod, port)
                        && r.path.as_deref() == Some(path)
                        && matches!(r.answer, Answer::Reply(_))
                })
                .map(|r| r.answer.clone())
        };
        if let Some(Answer::Reply(reply)) = found {
            return reply;
        }
        let handler = self.handler.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(handler) = handler {
            let me = PodSeen { info: pod.clone(), ip: ip.to_string() };
            if let Some(reply) = handler.handle(&me, port, req, &pods()) {
                return reply;
            }
        }
        if port == DEFAULT_PORT && path == "/healthz" && pod.ready {
            HttpReply::ok()
        } else {
            HttpReply::not_found()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, workload: &str, ready: bool) -> PodInfo {
        PodInfo { namespace: "default".into(), name: name.into(), workload: workload.into(), ready }
    }

    #[test]
    fn ready_pods_answer_healthz_and_rules_override() {
        let http = PodHttp::default();
        let a = pod("qn-abc", "qn", true);
        let b = pod("qn-def", "qn", true);
        let down = pod("dn-x", "dn", false);
        let answer = |p: &PodInfo, path: &str| {
            http.answer(p, "10.0.0.1", DEFAULT_PORT, &PodRequest::get(path), Vec::new)
        };
        assert_eq!(answer(&a, "/healthz"), HttpReply::ok());
        assert_eq!(answer(&a, "/other"), HttpReply::not_found());
        assert!(http.listens(&a, DEFAULT_PORT) && !http.listens(&down, DEFAULT_PORT));
        http.reply("qn", DEFAULT_PORT, "/x", HttpReply::text(200, "workload"));
        http.reply("default/qn-def", DEFAULT_PORT, "/x", HttpReply::text(200, "pod"));
        assert_eq!(answer(&a, "/x").body, b"workload");
        assert_eq!(answer(&b, "/x").body, b"pod");
        http.refuse("qn-abc", DEFAULT_PORT);
        assert!(!http.listens(&a, DEFAULT_PORT) && http.listens(&b, DEFAULT_PORT));
        http.reply("dn", 8080, "/", HttpReply::ok());
        assert_eq!(http.ports(&down), BTreeSet::from([8080]));
    }
}
