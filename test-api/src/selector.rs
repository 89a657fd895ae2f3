//! Selectors over stored JSON objects: label selectors (the workspace's `label-selector` crate,
//! matched against `metadata.labels`, built from `metav1.LabelSelector` JSON) and field selectors
//! (`metadata.name=x`), with the semantics and error wording of `k8s.io/apimachinery`.

use label_selector::{Operator, Requirement, Selector};
use serde_json::Value;

/// Label-selector matching on stored objects.
pub(crate) trait MatchesObject {
    /// Does the selector match the labels of this object (`metadata.labels`)?
    fn matches_object(&self, obj: &Value) -> bool;
}

impl MatchesObject for Selector {
    fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&crate::util::labels_of(obj))
    }
}

/// A selector from a `metav1.LabelSelector` JSON object (`matchLabels` and `matchExpressions`);
/// an unknown operator counts as `DoesNotExist`.
pub(crate) fn from_label_selector_json(v: &Value) -> Selector {
    let labels = v.get("matchLabels").and_then(Value::as_object).into_iter().flatten();
    let mut sel: Selector = labels
        .map(|(k, v)| Requirement::new(k.clone(), Operator::Equals, [v.as_str().unwrap_or_default()]))
        .collect();
    for e in v.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let op = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            _ => Operator::DoesNotExist,
        };
        sel.push(Requirement::new(key, op, values));
    }
    sel
}

/// A parsed field selector (`metadata.name=x,status.phase!=Running`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(field, value, negated)` triples, ANDed.
    pub terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    /// Parse a field selector; `supported` lists the fields the resource supports.
    pub fn parse(s: &str, supported: &[&str]) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, neg) = if let Some((f, v)) = split_op(part, "!=") {
                (f, v, true)
            } else if let Some((f, v)) = split_op(part, "==") {
                (f, v, false)
            } else if let Some((f, v)) = split_op(part, "=") {
                (f, v, false)
            } else {
                return Err(format!("invalid selector: '{s}'; can't understand '{part}'"));
            };
            let field = field.trim().to_string();
            if !supported.contains(&field.as_str()) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field, unescape(value.trim()), neg));
        }
        Ok(FieldSelector { terms })
    }

    /// Does the object satisfy every term?
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, want, neg)| {
            let mut cur = Some(obj);
            for p in field.split('.') {
                cur = cur.and_then(|c| c.get(p));
            }
            let actual = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            };
            (actual == *want) != *neg
        })
    }

    /// True when no term is set.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            cur.push('\\');
            cur.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn split_op<'a>(s: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let idx = s.find(op)?;
    Some((&s[..idx], &s[idx + op.len()..]))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        if esc {
            out.push(c);
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "x", "namespace": "default"}, "status": {"phase": "Running"}});
        let sup = ["metadata.name", "metadata.namespace", "status.phase"];
        assert!(FieldSelector::parse("metadata.name=x", &sup).expect("p").matches(&obj));
        assert!(
            FieldSelector::parse("metadata.name==x,status.phase!=Pending", &sup).expect("p").matches(&obj)
        );
        assert!(!FieldSelector::parse("metadata.namespace!=default", &sup).expect("p").matches(&obj));
        assert_eq!(
            FieldSelector::parse("spec.foo=x", &sup).expect_err("bad"),
            "field label not supported: spec.foo"
        );
        assert!(FieldSelector::parse("garbage", &sup).is_err());
    }

    #[test]
    fn selectors_from_json() {
        let s = from_label_selector_json(&json!({"matchLabels": {"a": "b", "c": "d"}}));
        assert_eq!(s.to_string(), "a=b,c=d");
        assert_eq!(Selector::parse(&s.to_string()).expect("p"), s);
        let s = from_label_selector_json(&json!({"matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "canary", "operator": "DoesNotExist"}]}));
        assert_eq!(
            s.to_string(),
            "app=x,!canary,tier in (a,b)",
            "sorted by key, as Scale.status.selector is"
        );
        let obj = json!({"metadata": {"labels": {"app": "x", "tier": "b"}}});
        assert!(s.matches_object(&obj));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(Selector::default().matches_object(&json!({})));
    }
}
