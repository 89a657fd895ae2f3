//! A new revision of a Helm release, as `helm upgrade --reuse-values --set KEY=N` would record it:
//! the user values (`config`) gain each value, the stored manifest's object carries it, the revision
//! number and `info` move on. Everything else (chart, hooks, notes, labels) is the deployed
//! revision's, unchanged. Pure: the storage is in [`super::storage`].

use serde_json::{Map, Value};

use super::codec::{CodecError, ReleaseDoc};

/// Helm's release statuses this module writes.
pub mod status {
    pub const DEPLOYED: &str = "deployed";
    pub const SUPERSEDED: &str = "superseded";
    pub const FAILED: &str = "failed";
    pub const PENDING_UPGRADE: &str = "pending-upgrade";
    /// A revision in one of these states is an operation in progress (Helm refuses to start another).
    pub const PENDING: [&str; 3] = ["pending-install", "pending-upgrade", "pending-rollback"];
}

/// One Helm value that changes, and the object of the stored manifest that renders it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueChange {
    /// Dotted key, `queryNode.replicas`.
    pub key: String,
    /// What the release records now (the user's value, else the chart default).
    pub from: Option<i64>,
    pub to: i64,
    #[serde(skip)]
    pub rendered: Option<Rendered>,
}

/// Where a value shows in the manifest: `spec.<field>` of the object `kind`/`name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub kind: &'static str,
    pub name: String,
    pub field: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("the release's values cannot take {key}: {at} is not a map")]
    NotAMap { key: String, at: String },
    #[error("the release's stored manifest has no {kind} {name}")]
    NotInManifest { kind: &'static str, name: String },
    #[error("the release's stored manifest has {count} objects {kind} {name}")]
    Ambiguous { kind: &'static str, name: String, count: usize },
    #[error(
        "spec.{field} of {kind} {name} in the release's stored manifest is not written in a form that can be changed line by line"
    )]
    Unchangeable { kind: &'static str, name: String, field: &'static str },
}

/// The revision after `deployed`: number `version`, status `pending-upgrade`, with `changes` in its
/// values and manifest, `description` in its info, deployed at `now` (RFC 3339).
pub fn next(
    deployed: &ReleaseDoc,
    version: i64,
    changes: &[ValueChange],
    now: &str,
    description: &str,
) -> Result<ReleaseDoc, RevisionError> {
    let mut doc = deployed.clone();
    let mut config = deployed.get::<Value>("config")?.unwrap_or_else(|| Value::Object(Map::new()));
    let mut manifest = deployed.get::<String>("manifest")?.unwrap_or_default();
    for change in changes {
        set_value(&mut config, &change.key, change.to)?;
        if let Some(rendered) = &change.rendered {
            manifest = set_spec_field(&manifest, rendered, change.to)?;
        }
    }
    doc.set("config", &config)?;
    doc.set("manifest", &manifest)?;
    doc.set("version", &version)?;
    set_info(&mut doc, status::PENDING_UPGRADE, Some(description), Some(now))?;
    Ok(doc)
}

/// `doc` with `info.status` (and `info.description`, `info.last_deployed` when given) changed.
pub fn set_info(
    doc: &mut ReleaseDoc,
    status: &str,
    description: Option<&str>,
    deployed_at: Option<&str>,
) -> Result<(), CodecError> {
    let mut info = match doc.get::<Value>("info")? {
        Some(Value::Object(info)) => info,
        _ => Map::new(),
    };
    info.insert("status".into(), status.into());
    if let Some(description) = description {
        info.insert("description".into(), description.into());
    }
    if let Some(at) = deployed_at {
        info.insert("last_deployed".into(), at.into());
        info.insert("deleted".into(), "".into());
    }
    doc.set("info", &info)
}

/// `key` (dotted) set to `value` in the values, creating maps on the way as `--set` does.
fn set_value(values: &mut Value, key: &str, value: i64) -> Result<(), RevisionError> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut at = values;
    for (index, part) in parts.iter().enumerate() {
        let Value::Object(map) = at else {
            return Err(RevisionError::NotAMap { key: key.into(), at: parts[..index].join(".") });
        };
        if index + 1 == parts.len() {
            map.insert((*part).to_string(), value.into());
            return Ok(());
        }
        at = map.entry((*part).to_string()).or_insert_with(|| Value::Object(Map::new()));
        if at.is_null() {
            *at = Value::Object(Map::new());
        }
    }
    Ok(())
}

/// The manifest with `spec.<field>` of one object set to `value`, changed in its line only (or a
/// line added under `spec:` when the field is absent), and checked by parsing the document again: it
/// must equal the original with that one field changed.
pub fn set_spec_field(manifest: &str, rendered: &Rendered, value: i64) -> Result<String, RevisionError> {
    let Rendered { kind, name, field } = rendered;
    let documents = split_documents(manifest);
    let matching: Vec<usize> = documents
        .iter()
        .enumerate()
        .filter(|(_, doc)| names_object(&manifest[doc.0..doc.1], kind, name))
        .map(|(index, _)| index)
        .collect();
    let &[index] = matching.as_slice() else {
        return Err(if matching.is_empty() {
            RevisionError::NotInManifest { kind, name: name.clone() }
        } else {
            RevisionError::Ambiguous { kind, name: name.clone(), count: matching.len() }
        });
    };
    let (start, end) = documents[index];
    let unchangeable = || RevisionError::Unchangeable { kind, name: name.clone(), field };
    let original = &manifest[start..end];
    let changed = set_line(original, field, value).ok_or_else(unchangeable)?;
    // The change must be exactly that one field.
    let mut expected: serde_yaml::Value = serde_yaml::from_str(original).map_err(|_| unchangeable())?;
    let spec =
        expected.get_mut("spec").and_then(serde_yaml::Value::as_mapping_mut).ok_or_else(unchangeable)?;
    spec.insert((*field).into(), value.into());
    let reparsed: serde_yaml::Value = serde_yaml::from_str(&changed).map_err(|_| unchangeable())?;
    if reparsed != expected {
        return Err(unchangeable());
    }
    Ok(format!("{}{changed}{}", &manifest[..start], &manifest[end..]))
}

/// Byte ranges of the YAML documents of a manifest (separated by `---` lines).
fn split_documents(manifest: &str) -> Vec<(usize, usize)> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in manifest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push((start, offset));
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push((start, manifest.len()));
    documents
}

/// Whether `manifest` has an object `kind`/`name`.
pub fn renders(manifest: &str, kind: &str, name: &str) -> bool {
    split_documents(manifest).iter().any(|(start, end)| names_object(&manifest[*start..*end], kind, name))
}

fn names_object(document: &str, kind: &str, name: &str) -> bool {
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(document) else { return false };
    value.get("kind").and_then(serde_yaml::Value::as_str) == Some(kind)
        && value.get("metadata").and_then(|m| m.get("name")).and_then(serde_yaml::Value::as_str) == Some(name)
}

/// The document with the line `<indent>field: …` under the top-level `spec:` replaced, or added as
/// its first line; `None` when there is no block-style `spec:`.
fn set_line(document: &str, field: &str, value: i64) -> Option<String> {
    let lines: Vec<&str> = document.split_inclusive('\n').collect();
    let spec = lines.iter().position(|l| l.trim_end() == "spec:")?;
    let block: Vec<usize> = (spec + 1..lines.len())
        .take_while(|&i| {
            let line = lines[i].trim_end();
            line.is_empty() || line.starts_with(' ') || line.starts_with('#')
        })
        .collect();
    let indent = block
        .iter()
        .map(|&i| lines[i])
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .unwrap_or("  ");
    let prefix = format!("{indent}{field}:");
    let new_line = format!("{indent}{field}: {value}\n");
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_string()).collect();
    match block.iter().find(|&&i| lines[i].starts_with(&prefix)) {
        Some(&i) => out[i] = new_line,
        None => out.insert(spec + 1, new_line),
    }
    Some(out.concat())
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;

    const MANIFEST: &str = "---\n# Source: milvus/templates/proxy.yaml\napiVersion: apps/v1\nkind: Deployment\n\
metadata:\n  name: r-milvus-proxy\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      component: proxy\n\
---\n# Source: milvus/templates/querynode.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: r-milvus-querynode\n\
spec:\n  strategy:\n    type: RollingUpdate\n  template:\n    spec:\n      replicas: 9\n";

    fn querynode(field: &'static str) -> Rendered {
        Rendered { kind: "Deployment", name: "r-milvus-querynode".into(), field }
    }

    #[test]
    fn one_line_changes_and_the_rest_stays_byte_for_byte() {
        let proxy = Rendered { kind: "Deployment", name: "r-milvus-proxy".into(), field: "replicas" };
        let out = set_spec_field(MANIFEST, &proxy, 3).expect("changed");
        assert_eq!(out, MANIFEST.replacen("  replicas: 1\n", "  replicas: 3\n", 1));
        // Absent at spec level (a nested `replicas` does not count): added as spec's first line.
        let out = set_spec_field(MANIFEST, &querynode("replicas"), 4).expect("added");
        assert_eq!(out, MANIFEST.replacen("spec:\n  strategy:", "spec:\n  replicas: 4\n  strategy:", 1));
    }

    #[test]
    fn objects_that_are_missing_twice_or_in_flow_style_are_errors() {
        let missing = Rendered { kind: "Deployment", name: "nope".into(), field: "replicas" };
        assert!(matches!(set_spec_field(MANIFEST, &missing, 1), Err(RevisionError::NotInManifest { .. })));
        let twice = format!("{MANIFEST}---\n{}", &MANIFEST[MANIFEST.rfind("apiVersion").expect("doc")..]);
        assert!(matches!(
            set_spec_field(&twice, &querynode("replicas"), 1),
            Err(RevisionError::Ambiguous { count: 2, .. })
        ));
        let flow = "kind: Deployment\nmetadata: {name: r-milvus-querynode}\nspec: {replicas: 1}\n";
        assert!(matches!(
            set_spec_field(flow, &querynode("replicas"), 2),
            Err(RevisionError::Unchangeable { .. })
        ));
    }

    #[test]
    fn values_are_set_as_helm_set_does() {
        let mut values = json!({"queryNode": {"resources": {}}, "dataNode": null, "proxy": 3});
        set_value(&mut values, "queryNode.replicas", 3).expect("set");
        set_value(&mut values, "dataNode.replicas", 2).expect("null becomes a map");
        set_value(&mut values, "streamingNode.replicas", 1).expect("created");
        assert_eq!(
            values,
            json!({"queryNode": {"resources": {}, "replicas": 3}, "dataNode": {"replicas": 2},
                   "proxy": 3, "streamingNode": {"replicas": 1}})
        );
        assert!(matches!(set_value(&mut values, "proxy.replicas", 1), Err(RevisionError::NotAMap { .. })));
    }

    #[test]
    fn the_next_revision_is_pending_with_the_values_and_the_rest_carried_over() {
        let release = json!({"name": "r", "version": 4, "config": {"image": {"tag": "v2.6.15"}},
            "manifest": MANIFEST, "chart": {"metadata": {"name": "milvus"}}, "hooks": [{"name": "h"}],
            "info": {"status": "deployed", "first_deployed": "2026-01-01T00:00:00Z", "notes": "n"}});
        let stored = base64::engine::general_purpose::STANDARD.encode(release.to_string());
        let deployed = ReleaseDoc::decode(stored.as_bytes()).expect("decodes");
        let change = ValueChange {
            key: "queryNode.replicas".into(),
            from: Some(1),
            to: 3,
            rendered: Some(querynode("replicas")),
        };
        let doc = next(&deployed, 5, &[change], "2026-12-07T10:00:00Z", "why").expect("next");
        assert_eq!(doc.get::<i64>("version").expect("v"), Some(5));
        assert_eq!(
            doc.get::<Value>("config").expect("config"),
            Some(json!({"image": {"tag": "v2.6.15"}, "queryNode": {"replicas": 3}}))
        );
        let manifest = doc.get::<String>("manifest").expect("manifest").expect("some");
        assert!(manifest.contains("name: r-milvus-querynode\nspec:\n  replicas: 3\n"), "{manifest}");
        assert_eq!(
            doc.get::<Value>("info").expect("info"),
            Some(
                json!({"status": "pending-upgrade", "description": "why", "first_deployed": "2026-01-01T00:00:00Z",
                        "last_deployed": "2026-12-07T10:00:00Z", "deleted": "", "notes": "n"})
            )
        );
        assert_eq!(doc.raw("chart"), deployed.raw("chart"));
        assert_eq!(doc.raw("hooks"), deployed.raw("hooks"));
    }
}
