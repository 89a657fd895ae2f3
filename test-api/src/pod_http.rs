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

/// The rules, changeable at run time.
#[derive(Debug, Default)]
pub(crate) struct PodHttp {
    rules: Mutex<Vec<Rule>>,
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

    /// The answer of `pod` to a GET of `path` (without the query) on `port`.
    pub(crate) fn answer(&self, pod: &PodInfo, port: u16, path: &str) -> HttpReply {
        let rules = self.rules();
        let found = rules.iter().rev().find(|r| {
            Self::applies(r, pod, port)
                && r.path.as_deref() == Some(path)
                && matches!(r.answer, Answer::Reply(_))
        });
        match found.map(|r| &r.answer) {
            Some(Answer::Reply(reply)) => reply.clone(),
            _ if port == DEFAULT_PORT && path == "/healthz" && pod.ready => HttpReply::ok(),
            _ => HttpReply::not_found(),
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
        assert_eq!(http.answer(&a, DEFAULT_PORT, "/healthz"), HttpReply::ok());
        assert_eq!(http.answer(&a, DEFAULT_PORT, "/other"), HttpReply::not_found());
        assert!(http.listens(&a, DEFAULT_PORT) && !http.listens(&down, DEFAULT_PORT));
        http.reply("qn", DEFAULT_PORT, "/x", HttpReply::text(200, "workload"));
        http.reply("default/qn-def", DEFAULT_PORT, "/x", HttpReply::text(200, "pod"));
        assert_eq!(http.answer(&a, DEFAULT_PORT, "/x").body, b"workload");
        assert_eq!(http.answer(&b, DEFAULT_PORT, "/x").body, b"pod");
        http.refuse("qn-abc", DEFAULT_PORT);
        assert!(!http.listens(&a, DEFAULT_PORT) && http.listens(&b, DEFAULT_PORT));
        http.reply("dn", 8080, "/", HttpReply::ok());
        assert_eq!(http.ports(&down), BTreeSet::from([8080]));
    }
}
