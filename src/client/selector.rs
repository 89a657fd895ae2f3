//! `-l/--selector`: Kubernetes label-selector syntax, parsed into kube's [`Selector`] so it can be
//! matched in memory (a release spans objects with different labels, so one server-side selector
//! cannot express "releases whose workloads match").

use std::collections::BTreeSet;

pub use kube::core::{Expression, Selector, SelectorExt};

/// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k` as the API server does.
pub fn parse(text: &str) -> Result<Selector, String> {
    let mut expressions = Vec::new();
    for requirement in split_requirements(text)? {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            continue;
        }
        expressions.push(parse_requirement(requirement)?);
    }
    Ok(Selector::from_iter(expressions))
}

/// Splits on commas that are not inside parentheses.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unable to parse requirement: unbalanced parentheses in {text:?}"));
        }
    }
    if depth != 0 {
        return Err(format!("unable to parse requirement: unbalanced parentheses in {text:?}"));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(requirement: &str) -> Result<Expression, String> {
    let invalid = |why: &str| format!("unable to parse requirement {requirement:?}: {why}");
    if let Some(key) = requirement.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(valid_key(key.trim()).map_err(|e| invalid(&e))?));
    }
    for (operator, negated) in [(" notin ", true), (" in ", false)] {
        if let Some((key, values)) = requirement.split_once(operator) {
            let key = valid_key(key.trim()).map_err(|e| invalid(&e))?;
            let values = values.trim();
            let inner = values
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| invalid("expected a parenthesised list of values"))?;
            let set: BTreeSet<String> = inner
                .split(',')
                .map(|v| valid_value(v.trim()).map_err(|e| invalid(&e)))
                .collect::<Result<_, _>>()?;
            return Ok(if negated { Expression::NotIn(key, set) } else { Expression::In(key, set) });
        }
    }
    for (operator, negated) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = requirement.split_once(operator) {
            let key = valid_key(key.trim()).map_err(|e| invalid(&e))?;
            let value = valid_value(value.trim()).map_err(|e| invalid(&e))?;
            return Ok(if negated {
                Expression::NotEqual(key, value)
            } else {
                Expression::Equal(key, value)
            });
        }
    }
    Ok(Expression::Exists(valid_key(requirement).map_err(|e| invalid(&e))?))
}

fn valid_key(key: &str) -> Result<String, String> {
    let name = key.rsplit_once('/').map_or(key, |(_, name)| name);
    if name.is_empty()
        || name.len() > 63
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Err(format!("invalid label key {key:?}"));
    }
    Ok(key.to_string())
}

fn valid_value(value: &str) -> Result<String, String> {
    if value.len() > 63 || !value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(format!("invalid label value {value:?}"));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_operator_matches_like_the_api_server() {
        let l = labels(&[("app", "milvus"), ("tier", "db"), ("team", "search")]);
        let cases = [
            ("app=milvus", true),
            ("app==milvus", true),
            ("app!=milvus", false),
            ("app!=other", true),
            ("missing!=x", true),
            ("tier in (db,cache)", true),
            ("tier notin (db)", false),
            ("missing notin (db)", true),
            ("team", true),
            ("!team", false),
            ("!missing", true),
            ("app=milvus,tier in (db), team", true),
            ("app=milvus,tier=web", false),
            ("", true),
        ];
        for (text, expected) in cases {
            let selector = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(selector.matches(&l), expected, "{text}");
        }
    }

    #[test]
    fn malformed_selectors_are_rejected() {
        for text in ["app in db", "app in (db", "a b=c", "app=(x)", "=x"] {
            assert!(parse(text).is_err(), "{text} should be rejected");
        }
    }
}
