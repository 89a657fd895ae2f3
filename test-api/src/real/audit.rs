//! The API server's audit log as the request log: events of the kubeconfig's users become
//! [`RequestRecord`]s; a marker request makes each read complete up to the moment it was asked for.
//!
//! Numbers read from the log (status codes, offsets) are converted and added without overflow (the
//! lints below keep it so).
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_wrap, clippy::cast_possible_truncation)]

use super::client::call;
use super::{Real, lock};
use crate::RequestRecord;
use crate::auth;
use crate::util;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct AuditReader {
    pub(super) offset: u64,
    pub(super) partial: String,
    pub(super) records: Vec<RequestRecord>,
    pub(super) by_id: HashMap<String, usize>,
    pub(super) last_marker: u64,
    pub(super) next_marker: u64,
    pub(super) cleared: usize,
}

pub(super) const MARKER: &str = "milvus-test-api-marker";

fn ts_of(v: &Value, key: &str) -> Option<jiff::Timestamp> {
    v.get(key)?.as_str()?.parse().ok()
}

impl AuditReader {
    pub(super) fn read(&mut self, path: &Path, users: &HashMap<String, String>) -> Result<(), String> {
        let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.seek(SeekFrom::Start(self.offset)).map_err(|e| e.to_string())?;
        let mut buf = String::new();
        let n = f.read_to_string(&mut buf).map_err(|e| e.to_string())?;
        self.offset = self.offset.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        self.partial.push_str(&buf);
        let Some(end) = self.partial.rfind('\n') else {
            return Ok(());
        };
        let complete: String = self.partial.drain(..=end).collect();
        for line in complete.lines() {
            let Ok(ev) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            self.event(&ev, users);
        }
        Ok(())
    }

    pub(super) fn event(&mut self, ev: &Value, users: &HashMap<String, String>) {
        let uri = ev["requestURI"].as_str().unwrap_or_default();
        let (path, query) = match uri.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (uri, None),
        };
        let query = util::parse_query(query);
        let authn = ev.pointer("/user/username").and_then(Value::as_str).unwrap_or_default();
        if authn == "audit-marker" {
            if let Some((_, n)) = query.iter().find(|(k, _)| k == MARKER) {
                self.last_marker = self.last_marker.max(n.parse().unwrap_or(0));
            }
            return;
        }
        let anonymous = authn.is_empty() || authn == "system:anonymous";
        if !anonymous && !users.contains_key(authn) {
            return;
        }
        let code = ev
            .pointer("/responseStatus/code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0);
        let id = ev["auditID"].as_str().unwrap_or_default().to_string();
        if let Some(&i) = self.by_id.get(&id) {
            if let Some(r) = self.records.get_mut(i)
                && r.status == 0
            {
                r.status = code;
            }
            return;
        }
        let verb = ev["verb"].as_str().unwrap_or_default().to_string();
        let resource = ev.get("objectRef").is_some_and(|o| !o.is_null());
        let method = match verb.as_str() {
            "get" | "list" | "watch" => "GET".to_string(),
            "create" => "POST".into(),
            "update" => "PUT".into(),
            "patch" => "PATCH".into(),
            "delete" | "deletecollection" => "DELETE".into(),
            other => other.to_ascii_uppercase(),
        };
        let user = ev
            .pointer("/impersonatedUser/username")
            .and_then(Value::as_str)
            .or(Some(authn).filter(|u| !u.is_empty()))
            .map(String::from);
        let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
        let duration = match (ts_of(ev, "requestReceivedTimestamp"), ts_of(ev, "stageTimestamp")) {
            (Some(a), Some(b)) => Duration::try_from(b.duration_since(a)).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let rec = RequestRecord {
            seq: 0,
            method,
            path: path.to_string(),
            query: query.clone(),
            user,
            credential: users.get(authn).map(|t| auth::fingerprint(t)),
            status: code,
            verb: resource.then(|| verb.clone()),
            dry_run: param("dryRun") == Some("All"),
            watch: verb == "watch" || matches!(param("watch"), Some("true" | "1")),
            fault: false,
            dropped: false,
            content_type: None,
            body: ev.get("requestObject").cloned(),
            user_agent: ev["userAgent"].as_str().map(String::from),
            duration,
            received: ts_of(ev, "requestReceivedTimestamp")
                .map_or(std::time::UNIX_EPOCH, std::time::SystemTime::from),
        };
        self.by_id.insert(id, self.records.len());
        self.records.push(rec);
    }
}

impl Real {
    pub(super) fn sync_log(&self) -> MutexGuard<'_, AuditReader> {
        let mut log = lock(&self.log);
        log.next_marker = log.next_marker.saturating_add(1);
        let n = log.next_marker;
        let path = format!("/version?{MARKER}={n}");
        let _ = self.block(call(&self.h.marker, "GET", &path, None));
        let deadline = Instant::now().checked_add(Duration::from_secs(10)).unwrap_or_else(Instant::now);
        loop {
            if let Err(e) = log.read(&self.audit_log, &self.users) {
                panic!("audit log: {e}");
            }
            if log.last_marker >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        let log = self.sync_log();
        log.records[log.cleared..]
            .iter()
            .zip(1u64..)
            .map(|(r, seq)| RequestRecord { seq, ..r.clone() })
            .collect()
    }

    pub(crate) fn clear_requests(&self) {
        let mut log = self.sync_log();
        log.cleared = log.records.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_events_become_request_records() {
        let users: HashMap<String, String> = [("admin".to_string(), "t0k3n".to_string())].into();
        let mut r = AuditReader::default();
        let ev = |id: &str, user: &str, stage: &str, verb: &str, uri: &str, code: u16| {
            json!({"auditID": id, "stage": stage, "verb": verb, "requestURI": uri,
                "user": {"username": user}, "objectRef": {"resource": "pods"},
                "responseStatus": {"code": code}, "userAgent": "kubectl-milvus/0.1.0",
                "requestReceivedTimestamp": "2025-01-01T00:00:00.000000Z",
                "stageTimestamp": "2025-01-01T00:00:00.250000Z"})
        };
        r.event(&ev("1", "admin", "ResponseComplete", "list", "/api/v1/pods?limit=500", 200), &users);
        r.event(&ev("2", "kube-controller-manager", "ResponseComplete", "list", "/api/v1/pods", 200), &users);
        r.event(&ev("3", "admin", "ResponseStarted", "watch", "/api/v1/pods?watch=true", 200), &users);
        r.event(&ev("3", "admin", "ResponseComplete", "watch", "/api/v1/pods?watch=true", 200), &users);
        let mut patch = ev(
            "4",
            "admin",
            "ResponseComplete",
            "patch",
            "/apis/apps/v1/namespaces/d/deployments/x?dryRun=All",
            409,
        );
        patch["impersonatedUser"] = json!({"username": "viewer"});
        r.event(&patch, &users);
        r.event(&json!({"auditID": "5", "verb": "get", "requestURI": "/version?milvus-test-api-marker=7", "user": {"username": "audit-marker"}}), &users);
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.records[0].method, "GET");
        assert_eq!(r.records[0].query_param("limit"), Some("500"));
        assert_eq!(r.records[0].verb.as_deref(), Some("list"));
        assert_eq!(r.records[0].duration, Duration::from_millis(250));
        assert_eq!(r.records[0].credential, Some(auth::fingerprint("t0k3n")));
        assert!(r.records[1].watch);
        assert_eq!(r.records[2].method, "PATCH");
        assert_eq!(r.records[2].user.as_deref(), Some("viewer"));
        assert_eq!(r.records[2].status, 409);
        assert!(r.records[2].dry_run);
        assert_eq!(r.last_marker, 7);
    }
}
