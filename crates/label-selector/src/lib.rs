//! Kubernetes label selectors, parsed and matched as `k8s.io/apimachinery` (`labels.Parse`) does,
//! with the API server's error wording.
//!
//! ```
//! use label_selector::{Operator, Selector};
//! use std::collections::BTreeMap;
//!
//! let selector: Selector = "app=milvus,component in (proxy,querynode),!canary".parse()?;
//! let labels = BTreeMap::from([
//!     ("app".to_string(), "milvus".to_string()),
//!     ("component".to_string(), "proxy".to_string()),
//! ]);
//! assert!(selector.matches(&labels));
//! assert_eq!(selector.requirements()[1].operator(), Operator::In);
//! assert_eq!(selector.to_string(), "app=milvus,component in (proxy,querynode),!canary");
//!
//! let err = Selector::parse("env IN (a)").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"
//! );
//! # Ok::<(), label_selector::ParseError>(())
//! ```
//!
//! # Syntax
//!
//! A selector is a comma-separated list of requirements, all of which must hold (AND); the empty
//! string selects everything. Whitespace between tokens is ignored.
//!
//! | requirement | [`Operator`] | holds when |
//! |---|---|---|
//! | `key=value`, `key==value` | [`Equals`](Operator::Equals) | the label is present with that value |
//! | `key!=value` | [`NotEquals`](Operator::NotEquals) | the label is absent or has another value |
//! | `key in (a,b)` | [`In`](Operator::In) | the label is present with one of the values |
//! | `key notin (a,b)` | [`NotIn`](Operator::NotIn) | the label is absent or has none of the values |
//! | `key` | [`Exists`](Operator::Exists) | the label is present (any value) |
//! | `!key` | [`DoesNotExist`](Operator::DoesNotExist) | the label is absent |
//! | `key>5`, `key<5` | [`GreaterThan`](Operator::GreaterThan), [`LessThan`](Operator::LessThan) | the label is present and, as an integer, greater / less |
//!
//! `key=` and `key!=` compare with the empty value; `in (a,,b)` holds an empty value. Keys are
//! validated as qualified names (`prefix/name`, the prefix a DNS subdomain), values as label values
//! (at most 63 characters of `[A-Za-z0-9-_.]`, alphanumeric at both ends, or empty); the values of
//! `>`/`<` must be integers. Requirements keep the order they were written in.
//!
//! # Errors
//!
//! [`Selector::parse`] fails with a [`ParseError`] whose text is the API server's answer to the same
//! `labelSelector`, e.g. `unable to parse requirement: found '', expected: identifier` or
//! `found ',', expected: !, identifier, or 'end of string'`; key and value validation errors read
//! `unable to parse requirement: key: Invalid value: "…": …` and
//! `unable to parse requirement: values[0][key]: Invalid value: "…": …`.
//!
//! # Matching
//!
//! [`Selector::matches`] takes any [`Labels`]: `BTreeMap<String, String>`, `HashMap<String, String>`,
//! `serde_json::Map<String, Value>` (feature `serde_json`; a non-string value counts as the empty
//! value), references to them, or `Option` of them (`None`: no labels at all).
//! [`Selector::matches_with`] takes a lookup closure instead.
//!
//! # Building selectors
//!
//! [`Requirement::new`] builds a requirement without validation (e.g. from a `matchLabels` map or
//! `matchExpressions`), and a [`Selector`] collects requirements
//! ([`FromIterator`], [`Selector::push`]). [`Display`](std::fmt::Display) gives the canonical string
//! form, which parses back to an equal selector when the parts are valid.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

/// The operator of a [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value` or `key==value`.
    Equals,
    /// `key!=value`.
    NotEquals,
    /// `key in (a,b)`.
    In,
    /// `key notin (a,b)`.
    NotIn,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>5`.
    GreaterThan,
    /// `key<5`.
    LessThan,
}

/// One requirement of a [`Selector`]: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A requirement as given, without validating the key or values (parsing validates;
    /// this is for selectors built from structured data such as `matchLabels`).
    ///
    /// [`Equals`](Operator::Equals), [`NotEquals`](Operator::NotEquals),
    /// [`GreaterThan`](Operator::GreaterThan) and [`LessThan`](Operator::LessThan) use the first
    /// value; [`Exists`](Operator::Exists) and [`DoesNotExist`](Operator::DoesNotExist) use none.
    pub fn new<V: Into<String>>(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = V>,
    ) -> Requirement {
        Requirement { key: key.into(), operator, values: values.into_iter().map(Into::into).collect() }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, in the order written (empty for `Exists` and `DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the label value (`None`: the label is absent) satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| self.values.iter().all(|x| x != v)),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(want)) = (value, self.values.first()) else {
                    return false;
                };
                match (v.parse::<i64>(), want.parse::<i64>()) {
                    (Ok(a), Ok(b)) if self.operator == Operator::GreaterThan => a > b,
                    (Ok(a), Ok(b)) => a < b,
                    _ => false,
                }
            }
        }
    }

    fn first_value(&self) -> &str {
        self.values.first().map(String::as_str).unwrap_or_default()
    }
}

impl fmt::Display for Requirement {
    /// `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`, `key>5`, `key<5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        match self.operator {
            Operator::Equals => write!(f, "{key}={}", self.first_value()),
            Operator::NotEquals => write!(f, "{key}!={}", self.first_value()),
            Operator::In => write!(f, "{key} in ({})", self.values.join(",")),
            Operator::NotIn => write!(f, "{key} notin ({})", self.values.join(",")),
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::GreaterThan => write!(f, "{key}>{}", self.first_value()),
            Operator::LessThan => write!(f, "{key}<{}", self.first_value()),
        }
    }
}

/// A parsed label selector: every requirement must hold. The default (empty) selector matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a selector such as `app=x,tier in (a,b),!canary` as the API server does.
    ///
    /// # Errors
    /// A [`ParseError`] with the API server's wording.
    pub fn parse(text: &str) -> Result<Selector, ParseError> {
        parse(text).map_err(|message| ParseError { message })
    }

    /// The requirements, in the order written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when there is no requirement (the selector matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Adds a requirement (ANDed with the others).
    pub fn push(&mut self, requirement: Requirement) {
        self.requirements.push(requirement);
    }

    /// Whether every requirement holds for these labels.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.matches_with(|key| labels.label(key))
    }

    /// Whether every requirement holds, looking each label up with `lookup` (`None`: absent).
    pub fn matches_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| r.matches_value(lookup(&r.key)))
    }
}

impl FromIterator<Requirement> for Selector {
    fn from_iter<I: IntoIterator<Item = Requirement>>(iter: I) -> Selector {
        Selector { requirements: iter.into_iter().collect() }
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Selector, ParseError> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    /// The canonical form: the requirements joined by `,` (empty for the empty selector).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Why a selector did not parse; the text is the API server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    message: String,
}

impl ParseError {
    /// The message (as [`Display`](fmt::Display) prints it).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A set of labels a [`Selector`] can be matched against.
pub trait Labels {
    /// The value of label `key`, or `None` when the label is absent.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A label whose JSON value is not a string counts as present with the empty value.
#[cfg(feature = "serde_json")]
impl Labels for serde_json::Map<String, serde_json::Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(|v| v.as_str().unwrap_or_default())
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// `None` is an object without labels.
impl<L: Labels> Labels for Option<L> {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|l| l.label(key))
    }
}

// ---------------------------------------------------------------------------------------------
// The parser: apimachinery's lexer and recursive-descent parser (pkg/labels/selector.go).
// ---------------------------------------------------------------------------------------------

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
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if is_special(c) {
            let tok = match (c, chars.peek()) {
                ('=', Some('=')) => Tok::DoubleEq,
                ('!', Some('=')) => Tok::NotEq,
                ('=', _) => Tok::Eq,
                ('!', _) => Tok::Bang,
                ('>', _) => Tok::Gt,
                ('<', _) => Tok::Lt,
                ('(', _) => Tok::Open,
                (')', _) => Tok::Close,
                _ => Tok::Comma,
            };
            if matches!(tok, Tok::DoubleEq | Tok::NotEq) {
                chars.next();
            }
            out.push(tok);
            continue;
        }
        let mut word = String::from(c);
        while let Some(&n) = chars.peek() {
            if n.is_whitespace() || is_special(n) {
                break;
            }
            word.push(n);
            chars.next();
        }
        out.push(match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Ident(word),
        });
    }
    out.push(Tok::End);
    out
}

/// A label value or the name part of a key: `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, ≤ 63.
fn valid_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A lowercase RFC 1123 subdomain (the prefix of a key), ≤ 253.
fn valid_prefix(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 253
        && p.split('.').all(|l| {
            let b = l.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                }
                _ => false,
            }
        })
}

fn validate_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && !valid_prefix(p)
    {
        return Err(format!(
            "key: Invalid value: \"{k}\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
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
    toks: std::vec::IntoIter<Tok>,
    peeked: Tok,
}

impl Parser {
    fn new(text: &str) -> Parser {
        let mut toks = lex(text).into_iter();
        let peeked = toks.next().unwrap_or(Tok::End);
        Parser { toks, peeked }
    }

    fn peek(&self) -> &Tok {
        &self.peeked
    }

    fn next(&mut self) -> Tok {
        let following = self.toks.next().unwrap_or(Tok::End);
        std::mem::replace(&mut self.peeked, following)
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if *self.peek() == Tok::Bang {
            self.next();
            return match self.next() {
                Tok::Ident(key) => {
                    validate_key(&key)?;
                    Ok(Requirement { key, operator: Operator::DoesNotExist, values: vec![] })
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
            return Ok(Requirement { key, operator: Operator::Exists, values: vec![] });
        }
        let operator = match self.next() {
            Tok::Eq | Tok::DoubleEq => Operator::Equals,
            Tok::NotEq => Operator::NotEquals,
            Tok::In => Operator::In,
            Tok::NotIn => Operator::NotIn,
            Tok::Gt => Operator::GreaterThan,
            Tok::Lt => Operator::LessThan,
            t => return Err(format!("found '{t}', expected: in, notin, =, ==, !=, gt, lt")),
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set(&key)?,
            Operator::GreaterThan | Operator::LessThan => match self.next() {
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
            _ => match self.peek() {
                Tok::End | Tok::Comma => vec![String::new()],
                Tok::Ident(_) => match self.next() {
                    Tok::Ident(v) => vec![v],
                    _ => Vec::new(),
                },
                t => return Err(format!("found '{t}', expected: identifier")),
            },
        };
        for v in &values {
            validate_value(&key, v)?;
        }
        Ok(Requirement { key, operator, values })
    }

    /// `(a,b)` after `in`/`notin`; an empty slot (`(a,,b)`, `(,)`) is the empty value.
    fn value_set(&mut self, key: &str) -> Result<Vec<String>, String> {
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
                Tok::Comma => vals.push(String::new()),
                Tok::Close => break,
                t => return Err(format!("found '{t}', expected: ',', ')' or identifier")),
            }
        }
        if vals.is_empty() {
            return Err(format!(
                "values: Invalid value: []string{{}}: for 'in', 'notin' operators, values set can't be empty (key {key})"
            ));
        }
        Ok(vals)
    }
}

fn parse(text: &str) -> Result<Selector, String> {
    let mut p = Parser::new(text);
    let mut requirements = Vec::new();
    loop {
        match p.peek() {
            Tok::End => break,
            Tok::Ident(_) | Tok::Bang => {
                let r = p.requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                requirements.push(r);
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
    Ok(Selector { requirements })
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(text: &str) -> String {
        Selector::parse(text).expect_err(text).to_string()
    }

    #[test]
    fn parses_every_operator() {
        let s = Selector::parse("a=b, c==d,e!=f,g in (h, i),j notin (k),l,!m,n>1,o<2").expect("parse");
        let ops: Vec<Operator> = s.requirements().iter().map(Requirement::operator).collect();
        use Operator::*;
        assert_eq!(ops, [Equals, Equals, NotEquals, In, NotIn, Exists, DoesNotExist, GreaterThan, LessThan]);
        assert_eq!(s.requirements()[3].key(), "g");
        assert_eq!(s.requirements()[3].values(), ["h", "i"]);
        assert!(s.requirements()[5].values().is_empty());
        assert!(Selector::parse("").expect("empty").is_empty());
        assert!(Selector::parse("  ").expect("blank").is_empty());
        assert_eq!(
            Selector::parse("app.kubernetes.io/instance=my-release").expect("qualified").requirements()[0]
                .key(),
            "app.kubernetes.io/instance"
        );
    }

    #[test]
    fn empty_values() {
        let s = Selector::parse("a=,b!=,c in (x,,y),d in (,)").expect("parse");
        assert_eq!(s.requirements()[0].values(), [""]);
        assert_eq!(s.requirements()[1].values(), [""]);
        assert_eq!(s.requirements()[2].values(), ["x", "", "y"]);
        assert_eq!(s.requirements()[3].values(), [""]);
        assert!(s.matches(&labels(&[("a", ""), ("c", ""), ("d", "")])));
    }

    #[test]
    fn matching_semantics() {
        let l = labels(&[("app", "milvus"), ("component", "proxy"), ("n", "5")]);
        let m = |s: &str| Selector::parse(s).expect(s).matches(&l);
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
        assert!(!m("app>4"), "not an integer");
        assert!(!m("missing<4"));
        assert!(m(""));
        let none: Option<&BTreeMap<String, String>> = None;
        assert!(!Selector::parse("x").expect("parse").matches(&none));
        assert!(Selector::parse("!x").expect("parse").matches(&none));
    }

    #[test]
    fn matches_any_label_lookup() {
        let s = Selector::parse("app=milvus,!canary").expect("parse");
        let hash: HashMap<String, String> = [("app".to_string(), "milvus".to_string())].into();
        assert!(s.matches(&hash));
        assert!(s.matches(&Some(&hash)));
        assert!(s.matches_with(|k| (k == "app").then_some("milvus")));
        assert!(!s.matches_with(|_| Some("milvus")));
    }

    #[cfg(feature = "serde_json")]
    #[test]
    fn matches_json_maps() {
        let v = serde_json::json!({"app": "milvus", "n": 3});
        let map = v.as_object().expect("object");
        assert!(Selector::parse("app=milvus,n=").expect("parse").matches(map));
        assert!(Selector::parse("n").expect("parse").matches(&Some(map)));
    }

    #[test]
    fn errors_have_the_api_servers_wording() {
        assert_eq!(
            err("env IN (a)"),
            "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("a=====b"), "unable to parse requirement: found '==', expected: identifier");
        assert_eq!(err("a in (b"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(err("a in b"), "unable to parse requirement: found 'b', expected: '('");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err("=x"), "found '=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=("), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(err("!=x"), "found '!=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(
            err("a in ()"),
            "unable to parse requirement: values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty (key a)"
        );
        assert_eq!(
            err("n>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert!(
            err("-bad-=x")
                .starts_with("unable to parse requirement: key: Invalid value: \"-bad-\": name part")
        );
        assert!(err("Bad.Prefix/x").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(err("a=-x").starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-x\""));
        assert!(err(&format!("a={}", "x".repeat(64))).contains("a valid label must be"));
        for text in ["app in db", "app in (db", "a b=c", "app=(x)", "=x", "a in (b)(c)", "a,,b"] {
            assert!(Selector::parse(text).is_err(), "{text} should be rejected");
        }
        let e = Selector::parse("a=b,").expect_err("trailing comma");
        assert_eq!(e.message(), e.to_string());
    }

    #[test]
    fn canonical_string_round_trips() {
        let text = "a=b,c!=d,e in (f,g),h notin (i),j,!k,l>1,m<2";
        let s: Selector = text.parse().expect("parse");
        assert_eq!(s.to_string(), text);
        assert_eq!(Selector::parse("a == b , c in ( d , e )").expect("p").to_string(), "a=b,c in (d,e)");
        let built: Selector = [
            Requirement::new("a", Operator::Equals, ["b"]),
            Requirement::new("c", Operator::Exists, Vec::<String>::new()),
        ]
        .into_iter()
        .collect();
        assert_eq!(built.to_string(), "a=b,c");
        assert_eq!(Selector::parse(&built.to_string()).expect("p"), built);
        let mut pushed = Selector::default();
        pushed.push(Requirement::new("x", Operator::NotIn, ["1", "2"]));
        assert_eq!(pushed.to_string(), "x notin (1,2)");
    }
}
