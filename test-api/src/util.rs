//! Small helpers: deterministic hashing, timestamps, JSON patching (the `json-patch` crate), globbing.

use json_patch::PatchOperation;
use serde_json::{Map, Value};
use std::time::Duration;

/// FNV-1a 64-bit hash (deterministic across runs and platforms).
pub(crate) fn fnv64(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in p.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Deterministic UUID-shaped identifier derived from `parts`.
pub(crate) fn uid(parts: &[&str]) -> String {
    let a = fnv64(parts);
    let mut salted: Vec<&str> = parts.to_vec();
    salted.push("uid-salt");
    let b = fnv64(&salted);
    let hex = format!("{a:016x}{b:016x}");
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A deterministic suffix of `len` characters from the Kubernetes "safe" alphabet.
pub(crate) fn suffix(parts: &[&str], len: usize) -> String {
    let mut h = fnv64(parts);
    let mut out = String::with_capacity(len);
    for i in 0..len {
        if i > 0 && i % 12 == 0 {
            h = fnv64(&[&h.to_string()]);
        }
        let idx = (h % ALPHANUMS.len() as u64) as usize;
        out.push(char::from(ALPHANUMS[idx]));
        h /= ALPHANUMS.len() as u64;
    }
    out
}

/// RFC 3339 timestamp with second precision, as Kubernetes writes them.
pub(crate) fn ts(t: jiff::Timestamp) -> String {
    let secs = t.as_second();
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.to_string(),
        Err(_) => t.to_string(),
    }
}

pub(crate) fn now_ts() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

pub(crate) fn minus(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    jiff::Timestamp::from_second(t.as_second().saturating_sub(secs)).unwrap_or(t)
}

pub(crate) fn plus(t: jiff::Timestamp, d: Duration) -> jiff::Timestamp {
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    jiff::Timestamp::from_second(t.as_second().saturating_add(secs)).unwrap_or(t)
}

/// Replace `from` by `to` in every string value (not keys) of `v`.
pub(crate) fn replace_strings(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::String(s) if s.contains(from) => {
            *s = s.replace(from, to);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_strings(x, from, to)),
        Value::Object(m) => m.values_mut().for_each(|x| replace_strings(x, from, to)),
        _ => {}
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 JSON patch, all operations or none. Errors are worded as the API server's JSON-patch
/// library words them where it tells the cases apart.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let list = ops.as_array().ok_or_else(|| "a JSON patch must be an array of operations".to_string())?;
    for op in list {
        if op.get("path").and_then(Value::as_str).is_none() {
            return Err("operation is missing \"path\"".to_string());
        }
        match op.get("op").and_then(Value::as_str).unwrap_or_default() {
            "add" | "remove" | "replace" | "move" | "copy" | "test" => {}
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    let patch: json_patch::Patch =
        serde_json::from_value(ops.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    json_patch::patch(target, &patch).map_err(|e| {
        let op = patch.0.get(e.operation);
        let path = &e.path;
        match (&e.kind, op) {
            (json_patch::PatchErrorKind::TestFailed, _) => format!("testing value {path} failed"),
            (json_patch::PatchErrorKind::InvalidFromPointer, Some(PatchOperation::Move(o))) => {
                format!("doc is missing from path: {}", o.from)
            }
            (json_patch::PatchErrorKind::InvalidFromPointer, Some(PatchOperation::Copy(o))) => {
                format!("doc is missing from path: {}", o.from)
            }
            (json_patch::PatchErrorKind::InvalidPointer, Some(PatchOperation::Replace(_))) => {
                format!("replace operation does not apply: doc is missing key: {path}")
            }
            (json_patch::PatchErrorKind::InvalidPointer, Some(o)) => {
                let kind = match o {
                    PatchOperation::Add(_) => "add",
                    PatchOperation::Remove(_) => "remove",
                    PatchOperation::Move(_) => "move",
                    PatchOperation::Copy(_) => "copy",
                    PatchOperation::Replace(_) => "replace",
                    PatchOperation::Test(_) => "test",
                };
                format!("{kind} operation does not apply: doc is missing path: {path}")
            }
            _ => e.to_string(),
        }
    })
}

/// Glob match where `*` matches any run of characters (including `/`).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Percent-decoding for query strings (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(kv), String::new()),
        })
        .collect()
}

pub(crate) fn meta_str<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or_default()
}

/// Mutable access to `metadata`, created if missing.
pub(crate) fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(root) = v else { unreachable!("just made an object") };
    let m = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Mutable access to an object map at `key` inside `m`, created if missing.
pub(crate) fn obj_mut<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let e = m.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    match e {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// Set `v.spec.replicas` (making `spec`, or `v` itself, an object if it is not one), as a merge
/// patch of `{"spec": {"replicas": n}}` would.
pub(crate) fn set_replicas(v: &mut Value, replicas: i64) {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    if let Value::Object(root) = v {
        obj_mut(root, "spec").insert("replicas".into(), Value::from(replicas));
    }
}

pub(crate) fn labels_of(v: &Value) -> Option<&Map<String, Value>> {
    v.get("metadata").and_then(|m| m.get("labels")).and_then(Value::as_object)
}

/// A two-worker runtime of the test API's own (servers, proxy, stand-ins), named after its threads.
pub(crate) fn runtime(thread_name: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn glob_matches() {
        assert!(glob("/apis/*/horizontalpodautoscalers", "/apis/autoscaling/v1/horizontalpodautoscalers"));
        assert!(glob("*", "/x"));
        assert!(!glob("/api/v1/pods", "/api/v1/podsx"));
        assert!(glob("/api/v1/namespaces/*/pods", "/api/v1/namespaces/default/pods"));
    }

    #[test]
    fn suffixes_are_stable() {
        assert_eq!(suffix(&["a"], 5), suffix(&["a"], 5));
        assert_ne!(suffix(&["a"], 5), suffix(&["b"], 5));
        assert_eq!(suffix(&["a"], 10).len(), 10);
        assert_eq!(uid(&["x"]).len(), 36);
    }

    #[test]
    fn patches() {
        let mut v = json!({"spec": {"replicas": 1, "x": 2}});
        merge_patch(&mut v, &json!({"spec": {"replicas": 3, "x": null}}));
        assert_eq!(v, json!({"spec": {"replicas": 3}}));
        json_patch(&mut v, &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "add", "path": "/spec/y", "value": [1]}, {"op": "add", "path": "/spec/y/-", "value": 2}])).expect("patch");
        assert_eq!(v, json!({"spec": {"replicas": 5, "y": [1, 2]}}));
        assert_eq!(
            json_patch(&mut v, &json!([{"op": "test", "path": "/spec/replicas", "value": 4}])),
            Err("testing value /spec/replicas failed".to_string())
        );
        let before = v.clone();
        assert_eq!(
            json_patch(
                &mut v,
                &json!([{"op": "add", "path": "/spec/z", "value": 1}, {"op": "replace", "path": "/nope", "value": 1}])
            ),
            Err("replace operation does not apply: doc is missing key: /nope".to_string())
        );
        assert_eq!(v, before, "nothing applied");
        assert_eq!(
            json_patch(&mut v, &json!([{"op": "add", "path": "/a/b", "value": 1}])),
            Err("add operation does not apply: doc is missing path: /a/b".to_string())
        );
        assert_eq!(
            json_patch(&mut v, &json!([{"op": "move", "from": "/x", "path": "/y"}])),
            Err("doc is missing from path: /x".to_string())
        );
        assert_eq!(
            json_patch(&mut v, &json!([{"op": "frob", "path": "/x"}])),
            Err("Unexpected kind: frob".into())
        );
        assert_eq!(
            json_patch(&mut v, &json!({"op": "add"})),
            Err("a JSON patch must be an array of operations".into())
        );
    }

    #[test]
    fn replicas_are_set_whatever_spec_was() {
        for mut v in
            [json!({"spec": {"replicas": 1, "x": 2}}), json!({"spec": "odd"}), json!({}), json!(null)]
        {
            set_replicas(&mut v, 3);
            assert_eq!(v["spec"]["replicas"], 3, "{v}");
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%3Db%2Cc+d"), "a=b,c d");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(
            parse_query(Some("labelSelector=app%3Dx&watch")),
            vec![("labelSelector".into(), "app=x".into()), ("watch".into(), String::new())]
        );
    }
}
