//! Label and field selectors with the semantics (and error wording) of `k8s.io/apimachinery`.

use serde_json::{Map, Value};
use std::fmt;

/// A label-selector operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `key=value` or `key==value`
    Eq,
    /// `key!=value`
    NotEq,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    NotExists,
    /// `key>5`
    Gt,
    /// `key<5`
    Lt,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Values (empty for `Exists`/`NotExists`).
    pub values: Vec<String>,
}

/// A parsed label selector: every requirement must hold (comma = AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, ANDed.
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
    Open,
    Close,
    Comma,
    End,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Ident(s) => s.as_str(),
            Tok::Bang => "!",
            Tok::Eq => "=",
            Tok::DoubleEq => "==",
            Tok::NotEq => "!=",
            Tok::Gt => ">",
            Tok::Lt => "<",
            Tok::In => "in",
            Tok::NotIn => "notin",
            Tok::Open => "(",
            Tok::Close => ")",
            Tok::Comma => ",",
            Tok::End => "",
        };
        f.write_str(s)
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

fn lex(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, n) = match (c, next) {
                ('=', Some('=')) => (Tok::DoubleEq, 2),
                ('!', Some('=')) => (Tok::NotEq, 2),
                ('=', _) => (Tok::Eq, 1),
                ('!', _) => (Tok::Bang, 1),
                ('>', _) => (Tok::Gt, 1),
                ('<', _) => (Tok::Lt, 1),
                ('(', _) => (Tok::Open, 1),
                (')', _) => (Tok::Close, 1),
                _ => (Tok::Comma, 1),
            };
            out.push(tok);
            i += n;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Ident(word),
        });
    }
    out.push(Tok::End);
    out
}

fn valid_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            });
        if !ok {
            return Err(format!(
                "key: Invalid value: \"{k}\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ));
        }
    }
    if !valid_name_part(name) {
        return Err(format!(
            "key: Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        ));
    }
    Ok(())
}

fn validate_value(k: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || valid_name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "values[0][{k}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ))
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.pos).unwrap_or(&Tok::End)
    }
    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if *self.peek() == Tok::Bang {
            self.next();
            return match self.next() {
                Tok::Ident(key) => {
                    validate_key(&key)?;
                    Ok(Requirement { key, op: Op::NotExists, values: vec![] })
                }
                t => Err(format!("found '{t}', expected: identifier")),
            };
        }
        let key = match self.next() {
            Tok::Ident(k) => k,
            t => return Err(format!("found '{t}', expected: identifier")),
        };
        validate_key(&key)?;
        if matches!(self.peek(), Tok::End | Tok::Comma) {
            return Ok(Requirement { key, op: Op::Exists, values: vec![] });
        }
        let op = match self.next() {
            Tok::Eq | Tok::DoubleEq => Op::Eq,
            Tok::NotEq => Op::NotEq,
            Tok::In => Op::In,
            Tok::NotIn => Op::NotIn,
            Tok::Gt => Op::Gt,
            Tok::Lt => Op::Lt,
            t => return Err(format!("found '{t}', expected: in, notin, =, ==, !=, gt, lt")),
        };
        let values = match op {
            Op::In | Op::NotIn => {
                match self.next() {
                    Tok::Open => {}
                    t => return Err(format!("found '{t}', expected: '('")),
                }
                let mut vals = Vec::new();
                loop {
                    match self.next() {
                        Tok::Ident(v) => {
                            vals.push(v);
                            match self.next() {
                                Tok::Comma => continue,
                                Tok::Close => break,
                                t => return Err(format!("found '{t}', expected: ',' or ')'")),
                            }
                        }
                        Tok::Comma => {
                            vals.push(String::new());
                            continue;
                        }
                        Tok::Close => {
                            break;
                        }
                        t => return Err(format!("found '{t}', expected: ',', ')' or identifier")),
                    }
                }
                if vals.is_empty() {
                    return Err(format!(
                        "values: Invalid value: []string{{}}: for 'in', 'notin' operators, values set can't be empty (key {key})"
                    ));
                }
                vals
            }
            Op::Gt | Op::Lt => match self.next() {
                Tok::Ident(v) => {
                    if v.parse::<i64>().is_err() {
                        return Err(format!(
                            "values[0]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer"
                        ));
                    }
                    vec![v]
                }
                t => return Err(format!("found '{t}', expected: identifier")),
            },
            _ => match self.peek().clone() {
                Tok::Ident(v) => {
                    self.next();
                    vec![v]
                }
                Tok::End | Tok::Comma => vec![String::new()],
                t => return Err(format!("found '{t}', expected: identifier")),
            },
        };
        for v in &values {
            validate_value(&key, v)?;
        }
        Ok(Requirement { key, op, values })
    }
}

impl LabelSelector {
    /// Parse a selector string such as `app=x,tier in (a,b),!canary`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut p = Parser { toks: lex(s), pos: 0 };
        let mut reqs = Vec::new();
        loop {
            match p.peek() {
                Tok::End => break,
                Tok::Ident(_) | Tok::Bang => {
                    let r = p.requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match p.next() {
                        Tok::End => break,
                        Tok::Comma => {
                            if matches!(p.peek(), Tok::End) {
                                return Err("found '', expected: identifier after ','".into());
                            }
                        }
                        t => return Err(format!("found '{t}', expected: ',' or 'end of string'")),
                    }
                }
                t => return Err(format!("found '{t}', expected: !, identifier, or 'end of string'")),
            }
        }
        Ok(LabelSelector { requirements: reqs })
    }

    /// A selector from `matchLabels`-style pairs.
    pub fn from_map(m: &Map<String, Value>) -> Self {
        LabelSelector {
            requirements: m
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::Eq,
                    values: vec![v.as_str().unwrap_or_default().to_string()],
                })
                .collect(),
        }
    }

    /// A selector from a `metav1.LabelSelector` JSON object (`matchLabels` and `matchExpressions`).
    pub fn from_label_selector_json(v: &Value) -> Self {
        let mut sel = v.get("matchLabels").and_then(Value::as_object).map(Self::from_map).unwrap_or_default();
        if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let op = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    _ => Op::NotExists,
                };
                sel.requirements.push(Requirement { key, op, values });
            }
        }
        sel
    }

    /// True when no requirement is set (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Does the selector match this label map?
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|r| {
            let val = labels.and_then(|l| l.get(&r.key)).map(|v| v.as_str().unwrap_or_default());
            match r.op {
                Op::Exists => val.is_some(),
                Op::NotExists => val.is_none(),
                Op::Eq | Op::In => val.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotEq | Op::NotIn => val.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Op::Gt | Op::Lt => {
                    let (Some(v), Some(want)) = (val, r.values.first()) else {
                        return false;
                    };
                    match (v.parse::<i64>(), want.parse::<i64>()) {
                        (Ok(a), Ok(b)) => {
                            if r.op == Op::Gt {
                                a > b
                            } else {
                                a < b
                            }
                        }
                        _ => false,
                    }
                }
            }
        })
    }

    /// Does the selector match the labels of this object?
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(crate::util::labels_of(obj))
    }

    /// The canonical string form (`a=b,c in (d)`), e.g. for `Scale.status.selector`.
    pub fn to_selector_string(&self) -> String {
        self.requirements
            .iter()
            .map(|r| match r.op {
                Op::Eq => format!("{}={}", r.key, r.values.first().map(String::as_str).unwrap_or_default()),
                Op::NotEq => {
                    format!("{}!={}", r.key, r.values.first().map(String::as_str).unwrap_or_default())
                }
                Op::In => format!("{} in ({})", r.key, r.values.join(",")),
                Op::NotIn => format!("{} notin ({})", r.key, r.values.join(",")),
                Op::Exists => r.key.clone(),
                Op::NotExists => format!("!{}", r.key),
                Op::Gt => format!("{}>{}", r.key, r.values.first().map(String::as_str).unwrap_or_default()),
                Op::Lt => format!("{}<{}", r.key, r.values.first().map(String::as_str).unwrap_or_default()),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
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

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_all_operators() {
        let s = LabelSelector::parse("a=b, c==d,e!=f,g in (h, i),j notin (k),l,!m").expect("parse");
        let ops: Vec<Op> = s.requirements.iter().map(|r| r.op.clone()).collect();
        assert_eq!(ops, vec![Op::Eq, Op::Eq, Op::NotEq, Op::In, Op::NotIn, Op::Exists, Op::NotExists]);
        assert_eq!(s.requirements[3].values, vec!["h", "i"]);
        assert!(LabelSelector::parse("").expect("empty").is_empty());
        assert_eq!(
            LabelSelector::parse("app.kubernetes.io/instance=my-release").expect("qualified").requirements[0]
                .key,
            "app.kubernetes.io/instance"
        );
    }

    #[test]
    fn matching_semantics() {
        let l = labels(json!({"app": "milvus", "component": "proxy", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).expect("parse").matches(Some(&l));
        assert!(m("app=milvus"));
        assert!(m("app==milvus,component=proxy"));
        assert!(!m("app=milvus,component=querynode"));
        assert!(m("component in (proxy,querynode)"));
        assert!(!m("component notin (proxy)"));
        assert!(m("missing notin (x)"));
        assert!(m("missing!=x"));
        assert!(!m("component!=proxy"));
        assert!(m("app"));
        assert!(!m("!app"));
        assert!(m("!release"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(m(""));
        assert!(!LabelSelector::parse("x").expect("parse").matches(None));
    }

    #[test]
    fn errors_have_real_wording() {
        assert_eq!(
            LabelSelector::parse("env IN (a)").expect_err("bad"),
            "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            LabelSelector::parse("a=====b").expect_err("bad"),
            "unable to parse requirement: found '==', expected: identifier"
        );
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("a=b,").is_err());
        assert!(LabelSelector::parse("-bad-=x").is_err());
        assert!(LabelSelector::parse("a=(").is_err());
    }

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
    fn selector_string_roundtrip() {
        let s = LabelSelector::from_label_selector_json(&json!({"matchLabels": {"a": "b", "c": "d"}}));
        assert_eq!(s.to_selector_string(), "a=b,c=d");
        assert_eq!(LabelSelector::parse(&s.to_selector_string()).expect("p"), s);
    }
}
