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
//! // Sorted by key, as the API server keeps them.
//! assert_eq!(selector.requirements()[2].key(), "component");
//! assert_eq!(selector.requirements()[2].operator(), Operator::In);
//! assert_eq!(selector.to_string(), "app=milvus,!canary,component in (proxy,querynode)");
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
//! string selects everything. Spaces, tabs and line breaks between tokens are ignored; `in` and
//! `notin` are operators only after a key, elsewhere (`in=x`, `a in (in)`) they are names.
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
//! `key=`, `key!=` and `key>` compare with the empty value; in a value set an empty slot is the
//! empty value (`()`, `(a,)`, `(a,,b)`), and the values are a set (sorted, no duplicates). Keys are
//! validated as qualified names (`prefix/name`, the prefix a DNS subdomain), values as label values
//! (at most 63 characters of `[A-Za-z0-9-_.]`, alphanumeric at both ends, or empty); the values of
//! `>`/`<` must be integers. The requirements are kept sorted by key, as apimachinery keeps them.
//!
//! # Errors
//!
//! [`Selector::parse`] fails with a [`ParseError`] whose text is the API server's answer to the same
//! `labelSelector`, e.g. `unable to parse requirement: found '', expected: identifier` or
//! `found ',', expected: !, identifier, or 'end of string'`; key and value validation errors read
//! `unable to parse requirement: key: Invalid value: "…": …` and
//! `unable to parse requirement: values[0][key]: Invalid value: "…": …` (several at once:
//! `[…, …]`).
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// `values` are in ascending order (always when parsed), so a value is found by binary search:
    /// a selector of a thousand release names matches each label in ten comparisons.
    sorted: bool,
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
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        Requirement { key: key.into(), operator, sorted: values.is_sorted(), values }
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values: as given to [`new`](Self::new); parsed, sorted and without duplicates
    /// (empty for `Exists` and `DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `value` is one of the values.
    fn has_value(&self, value: &str) -> bool {
        if self.sorted {
            self.values.binary_search_by(|x| x.as_str().cmp(value)).is_ok()
        } else {
            self.values.iter().any(|x| x == value)
        }
    }

    /// Whether the label value (`None`: the label is absent) satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.operator {
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Equals | Operator::In => value.is_some_and(|v| self.has_value(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.has_value(v)),
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
}

impl fmt::Display for Requirement {
    /// `key=value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`, `key>5`,
    /// `key<5`, as apimachinery's `Requirement.String()` (several values: sorted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let op = match self.operator {
            Operator::Exists => return write!(f, "{key}"),
            Operator::DoesNotExist => return write!(f, "!{key}"),
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let close = if matches!(self.operator, Operator::In | Operator::NotIn) { ")" } else { "" };
        write!(f, "{key}{op}{}{close}", values.join(","))
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

    /// The requirements, sorted by key (requirements with the same key in the order given).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when there is no requirement (the selector matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Adds a requirement (ANDed with the others), after those with a key sorting before or
    /// equal to its own.
    pub fn push(&mut self, requirement: Requirement) {
        let at = self.requirements.partition_point(|r| r.key <= requirement.key);
        self.requirements.insert(at, requirement);
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
        let mut requirements: Vec<Requirement> = iter.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { requirements }
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Selector, ParseError> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    /// The canonical form, apimachinery's `Selector.String()`: the requirements (sorted by key)
    /// joined by `,`; empty for the empty selector.
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
// The parser: apimachinery's lexer and recursive-descent parser (pkg/labels/selector.go), step
// by step, so inputs are accepted, rejected and reported as the API server does.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
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

/// Where a token is read: `in` and `notin` are operators only where an operator is expected;
/// anywhere else (keys, values) they are identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Operator,
    Values,
}

/// apimachinery's whitespace (not Unicode's).
fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

/// Tokens with their literal text, ending with `End`.
fn lex(s: &str) -> Vec<(Tok, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if is_whitespace(c) {
            continue;
        }
        if is_special(c) {
            // The longest run of special characters that is a token: `!=` and `==`, else one.
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
            let mut lit = String::from(c);
            if matches!(tok, Tok::DoubleEq | Tok::NotEq) {
                lit.push('=');
                chars.next();
            }
            out.push((tok, lit));
            continue;
        }
        let mut word = String::from(c);
        while let Some(&n) = chars.peek() {
            if is_whitespace(n) || is_special(n) {
                break;
            }
            word.push(n);
            chars.next();
        }
        let tok = match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Ident,
        };
        out.push((tok, word));
    }
    out.push((Tok::End, String::new()));
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

fn validate_value(k: &str, i: usize, v: &str) -> Result<(), String> {
    if v.is_empty() || valid_name_part(v) {
        Ok(())
    } else {
        Err(format!(
            "values[{i}][{k}]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        ))
    }
}

/// apimachinery's `NewRequirement` checks of the values, as one error (several: `[a, b]`).
fn new_requirement(key: String, operator: Operator, values: Vec<String>) -> Result<Requirement, String> {
    let mut errors: Vec<String> = Vec::new();
    if matches!(operator, Operator::GreaterThan | Operator::LessThan) {
        for (i, v) in values.iter().enumerate() {
            if v.parse::<i64>().is_err() {
                errors.push(format!(
                    "values[{i}]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer"
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        if let Err(e) = validate_value(&key, i, v) {
            errors.push(e);
        }
    }
    errors.dedup();
    match errors.len() {
        0 => Ok(Requirement { key, operator, sorted: values.is_sorted(), values }),
        1 => Err(errors.swap_remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

struct Parser {
    toks: Vec<(Tok, String)>,
    pos: usize,
}

impl Parser {
    fn token(&self, context: Context) -> (Tok, &str) {
        let (tok, lit) = self.toks.get(self.pos).map_or((Tok::End, ""), |(t, l)| (*t, l.as_str()));
        match tok {
            Tok::In | Tok::NotIn if context == Context::Values => (Tok::Ident, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, context: Context) -> (Tok, String) {
        let (tok, lit) = self.token(context);
        (tok, lit.to_string())
    }

    fn consume(&mut self, context: Context) -> (Tok, String) {
        let next = self.lookahead(context);
        self.pos = self.pos.saturating_add(1).min(self.toks.len());
        next
    }

    fn selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead(Context::Values) {
                (Tok::Ident | Tok::Bang, _) => {
                    let r = self.requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    match self.consume(Context::Values) {
                        (Tok::End, _) => return Ok(requirements),
                        (Tok::Comma, _) => match self.lookahead(Context::Values) {
                            (Tok::Ident | Tok::Bang, _) => {}
                            (_, lit) => return Err(format!("found '{lit}', expected: identifier after ','")),
                        },
                        (_, lit) => return Err(format!("found '{lit}', expected: ',' or 'end of string'")),
                    }
                }
                (Tok::End, _) => return Ok(requirements),
                (_, lit) => {
                    return Err(format!("found '{lit}', expected: !, identifier, or 'end of string'"));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut negated = false;
        let (mut tok, mut key) = self.consume(Context::Values);
        if tok == Tok::Bang {
            negated = true;
            (tok, key) = self.consume(Context::Values);
        }
        if tok != Tok::Ident {
            return Err(format!("found '{key}', expected: identifier"));
        }
        validate_key(&key)?;
        if negated {
            return Ok(Requirement { key, operator: Operator::DoesNotExist, values: vec![], sorted: true });
        }
        if matches!(self.lookahead(Context::Values).0, Tok::End | Tok::Comma) {
            return Ok(Requirement { key, operator: Operator::Exists, values: vec![], sorted: true });
        }
        let operator = match self.consume(Context::Operator) {
            (Tok::In, _) => Operator::In,
            (Tok::Eq | Tok::DoubleEq, _) => Operator::Equals,
            (Tok::Gt, _) => Operator::GreaterThan,
            (Tok::Lt, _) => Operator::LessThan,
            (Tok::NotIn, _) => Operator::NotIn,
            (Tok::NotEq, _) => Operator::NotEquals,
            (_, lit) => return Err(format!("found '{lit}', expected: in, notin, =, ==, !=, gt, lt")),
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => self.exact_value()?,
        };
        new_requirement(key, operator, values.into_iter().collect())
    }

    /// `(a,b)` after `in`/`notin`: a set (sorted, without duplicates) where an empty slot
    /// (`()`, `(a,)`, `(a,,b)`) is the empty value.
    fn value_set(&mut self) -> Result<BTreeSet<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Tok::Open {
            return Err(format!("found '{lit}' expected: '('"));
        }
        match self.lookahead(Context::Values) {
            (Tok::Ident | Tok::Comma, lit) => {
                let set = self.identifiers()?;
                if self.consume(Context::Values).0 != Tok::Close {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            (Tok::Close, _) => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            (_, lit) => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// The comma-separated (possibly empty) identifiers of a value set, up to its `)`.
    fn identifiers(&mut self) -> Result<BTreeSet<String>, String> {
        let mut set = BTreeSet::new();
        loop {
            match self.consume(Context::Values) {
                (Tok::Ident, lit) => {
                    set.insert(lit);
                    match self.lookahead(Context::Values) {
                        (Tok::Comma, _) => continue,
                        (Tok::Close, _) => return Ok(set),
                        (_, lit) => return Err(format!("found '{lit}', expected: ',' or ')'")),
                    }
                }
                (Tok::Comma, _) => {
                    if set.is_empty() {
                        set.insert(String::new()); // `(,`
                    }
                    match self.lookahead(Context::Values).0 {
                        Tok::Close => {
                            set.insert(String::new()); // `,)`
                            return Ok(set);
                        }
                        Tok::Comma => {
                            self.consume(Context::Values);
                            set.insert(String::new()); // `,,`
                        }
                        _ => {}
                    }
                }
                (_, lit) => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// The one value after `=`, `==`, `!=`, `>` or `<` (nothing before `,` or the end: empty).
    fn exact_value(&mut self) -> Result<BTreeSet<String>, String> {
        if matches!(self.lookahead(Context::Values).0, Tok::End | Tok::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        match self.consume(Context::Values) {
            (Tok::Ident, lit) => Ok(BTreeSet::from([lit])),
            (_, lit) => Err(format!("found '{lit}', expected: identifier")),
        }
    }
}

fn parse(text: &str) -> Result<Selector, String> {
    let requirements = Parser { toks: lex(text), pos: 0 }.selector()?;
    Ok(requirements.into_iter().collect())
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

    fn canonical(text: &str) -> String {
        Selector::parse(text).expect(text).to_string()
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
        assert!(Selector::parse(" \t\r\n").expect("blank").is_empty());
        assert_eq!(
            Selector::parse("app.kubernetes.io/instance=my-release").expect("qualified").requirements()[0]
                .key(),
            "app.kubernetes.io/instance"
        );
    }

    /// apimachinery's TestToString and TestLexerParser cases.
    #[test]
    fn canonical_form_is_apimachinerys() {
        assert_eq!(canonical("x in (foo,,baz),y,z notin ()"), "x in (,baz,foo),y,z notin ()");
        assert_eq!(canonical("x notin (gaga), y=foo ,z!=bar"), "x notin (gaga),y=foo,z!=bar");
        assert_eq!(
            canonical("w in (), x notin (), y in (a,), z notin (,b)"),
            "w in (),x notin (),y in (,a),z notin (,b)"
        );
        assert_eq!(canonical("z=1,a!=2,m"), "a!=2,m,z=1");
        assert_eq!(canonical("x in (b,a,b)"), "x in (a,b)");
        assert_eq!(canonical("x in (,)"), "x in ()");
        assert_eq!(canonical("x>1,x<5"), "x>1,x<5");
    }

    #[test]
    fn in_and_notin_are_names_outside_the_operator() {
        let s = Selector::parse("in=notin,x in (in,notin),notin").expect("parse");
        assert_eq!(s.to_string(), "in=notin,notin,x in (in,notin)");
        assert!(s.matches(&labels(&[("in", "notin"), ("notin", ""), ("x", "in")])));
        assert_eq!(err("x notin in"), "unable to parse requirement: found 'in' expected: '('");
    }

    #[test]
    fn empty_values() {
        let s = Selector::parse("a=,b!=,c in (x,,y),d in (,),e in (),f in (x,)").expect("parse");
        let values: Vec<&[String]> = s.requirements().iter().map(Requirement::values).collect();
        assert_eq!(values, [&[""][..], &[""], &["", "x", "y"], &[""], &[""], &["", "x"]]);
        assert!(s.matches(&labels(&[("a", ""), ("c", ""), ("d", ""), ("e", ""), ("f", "")])));
        assert!(!s.matches(&labels(&[("a", ""), ("c", ""), ("d", ""), ("e", "x"), ("f", "")])));
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
        assert_eq!(err("a in ("), "unable to parse requirement: found '', expected: ',', ')' or identifier");
        assert_eq!(err("a in (b"), "unable to parse requirement: found '', expected: ',' or ')'");
        assert_eq!(err("a in (b,="), "unable to parse requirement: found '=', expected: ',', or identifier");
        assert_eq!(err("a in b"), "unable to parse requirement: found 'b' expected: '('");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err("a,,b"), "found ',', expected: identifier after ','");
        assert_eq!(err("=x"), "found '=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a in (b)(c)"), "found '(', expected: ',' or 'end of string'");
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(err("a=("), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(err("!=x"), "found '!=', expected: !, identifier, or 'end of string'");
        assert_eq!(err("!"), "unable to parse requirement: found '', expected: identifier");
        assert_eq!(
            err("n>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            err("n<"),
            "unable to parse requirement: values[0]: Invalid value: \"\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert!(
            err("-bad-=x")
                .starts_with("unable to parse requirement: key: Invalid value: \"-bad-\": name part")
        );
        assert!(err("Bad.Prefix/x").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(err("a=-x").starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-x\""));
        assert!(
            err("a in (x,-y)")
                .starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-y\"")
        );
        assert!(err(&format!("a={}", "x".repeat(64))).contains("a valid label must be"));
        let both = err("n>-x");
        assert!(
            both.starts_with("unable to parse requirement: [values[0]: Invalid value: \"-x\": for 'Gt'"),
            "{both}"
        );
        assert!(both.contains(", values[0][n]: Invalid value: \"-x\": a valid label"), "{both}");
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
            Requirement::new("c", Operator::Exists, Vec::<String>::new()),
            Requirement::new("a", Operator::Equals, ["b"]),
        ]
        .into_iter()
        .collect();
        assert_eq!(built.to_string(), "a=b,c");
        assert_eq!(Selector::parse(&built.to_string()).expect("p"), built);
        let mut pushed = Selector::default();
        pushed.push(Requirement::new("x", Operator::NotIn, ["2", "1"]));
        pushed.push(Requirement::new("b", Operator::Exists, Vec::<String>::new()));
        pushed.push(Requirement::new("x", Operator::DoesNotExist, Vec::<String>::new()));
        assert_eq!(pushed.to_string(), "b,x notin (1,2),!x");
        assert_eq!(pushed.requirements()[1].values(), ["2", "1"], "as given");
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text is a selector or a clear error, never a panic; a parsed selector prints back to text
        /// that parses to the same selector and selects the same labels.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,60}") {
            match Selector::parse(&text) {
                Ok(selector) => {
                    let again = Selector::parse(&selector.to_string());
                    prop_assert_eq!(again.as_ref().ok(), Some(&selector), "{}", selector);
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }

        #[test]
        fn selector_grammar_round_trips_and_matches_consistently(
            pairs in proptest::collection::vec(("[a-z][a-z0-9]{0,5}", "[a-z0-9]{0,5}"), 0..4),
            negate in any::<bool>(),
            labels in proptest::collection::btree_map("[a-z][a-z0-9]{0,5}", "[a-z0-9]{0,5}", 0..4),
        ) {
            let op = if negate { "!=" } else { "=" };
            let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}{op}{v}")).collect();
            let selector = Selector::parse(&text.join(",")).expect("well formed");
            let printed = Selector::parse(&selector.to_string()).expect("printed form parses");
            let labels: BTreeMap<String, String> = labels;
            prop_assert_eq!(selector.matches(&labels), printed.matches(&labels));
            let expected = pairs.iter().all(|(k, v)| (labels.get(k).map(String::as_str) == Some(v.as_str())) != negate);
            prop_assert_eq!(selector.matches(&labels), expected);
        }
    }
}
