//! `kubectl diff`'s form: a unified diff of the live object against the merged one, as YAML with sorted
//! keys and without `managedFields`, under headers naming `<group.>version.Kind.namespace.name`.

use owo_colors::Stream;
use serde_json::Value;

use super::color::Tone;

/// `apps.v1.Deployment.default.my-release-milvus-querynode`, as kubectl diff names its files.
pub fn object_file_name(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let group_version = match api_version.split_once('/') {
        Some((group, version)) => format!("{group}.{version}"),
        None => api_version.to_string(),
    };
    format!(
        "{group_version}.{}.{}.{}",
        object["kind"].as_str().unwrap_or("Object"),
        object["metadata"]["namespace"].as_str().unwrap_or(""),
        object["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// YAML as kubectl diff prints it: keys sorted, `managedFields` left out.
pub fn diff_yaml(object: &Value) -> String {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    // serde_json's map is ordered by key, so the YAML keys come out sorted like kubectl's.
    serde_yaml::to_string(&object).unwrap_or_default()
}

/// The unified diff of `live` against `merged`, or an empty string when they are equal.
pub fn unified(live: &Value, merged: &Value) -> String {
    let name = object_file_name(live);
    let (before, after) = (diff_yaml(live), diff_yaml(merged));
    if before == after {
        return String::new();
    }
    let diff = similar::TextDiff::from_lines(&before, &after);
    let live_path = format!("LIVE/{name}");
    let merged_path = format!("MERGED/{name}");
    let body = diff.unified_diff().context_radius(3).header(&live_path, &merged_path).to_string();
    format!("diff -u -N {live_path} {merged_path}\n{body}")
}

/// Colours a unified diff for a terminal: removals red, additions green, hunk headers cyan.
pub fn paint(diff: &str) -> String {
    let mut out = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let text = line.trim_end_matches('\n');
        let tone = if text.starts_with("+++") || text.starts_with("---") || text.starts_with("diff ") {
            Tone::Bold
        } else if text.starts_with('+') {
            Tone::Good
        } else if text.starts_with('-') {
            Tone::Bad
        } else if text.starts_with("@@") {
            Tone::Dim
        } else {
            Tone::Plain
        };
        out.push_str(&tone.paint(text, Stream::Stdout));
        out.push_str(&line[text.len()..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_replica_change_is_one_hunk_with_kubectl_headers() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "q", "namespace": "default", "managedFields": [{"manager": "helm"}]},
            "spec": {"replicas": 1, "template": {}},
        });
        let mut merged = live.clone();
        merged["spec"]["replicas"] = json!(3);
        let diff = unified(&live, &merged);
        assert!(diff.starts_with("diff -u -N LIVE/apps.v1.Deployment.default.q MERGED/apps.v1.Deployment.default.q\n--- LIVE/apps.v1.Deployment.default.q\n+++ MERGED/apps.v1.Deployment.default.q\n"), "{diff}");
        assert!(diff.contains("\n-  replicas: 1\n+  replicas: 3\n"), "{diff}");
        assert!(!diff.contains("managedFields"), "{diff}");
        assert_eq!(unified(&live, &live), "");
        assert_eq!(
            object_file_name(
                &json!({"apiVersion": "milvus.io/v1beta1", "kind": "Milvus", "metadata": {"name": "m", "namespace": "ns"}})
            ),
            "milvus.io.v1beta1.Milvus.ns.m"
        );
    }
}
