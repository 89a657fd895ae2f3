//! `COMPONENT[GROUP]=N`, `=+N`, `=-N`: what the user asked to scale, before it is checked against a release.

use std::fmt;

/// Replicas above this are refused as a likely typo.
pub const MAX_REPLICAS: i32 = 1000;

/// The requested change of one component (or one group of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The component as typed (`querynode`, `queryNode`…), resolved against the release later.
    pub component: String,
    /// `querynode[rg1]` addresses resource group / deployment group `rg1`.
    pub group: Option<String>,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// `=3`
    To(i32),
    /// `=+2` or `=-1`
    By(i32),
}

impl Change {
    /// The replicas after the change, from `current`.
    pub fn apply(self, current: i32) -> i32 {
        match self {
            Change::To(n) => n,
            Change::By(delta) => current.saturating_add(delta),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.component)?;
        if let Some(group) = &self.group {
            write!(f, "[{group}]")?;
        }
        match self.change {
            Change::To(n) => write!(f, "={n}"),
            Change::By(d) => write!(f, "={d:+}"),
        }
    }
}

/// The targets of a command line: `querynode=3 datanode=-1`, or one `querynode` with `--replicas=3`.
/// Every malformed target is named, one per line.
pub fn parse_targets(targets: &[String], replicas: Option<&str>) -> Result<Vec<Target>, String> {
    let Some(replicas) = replicas else {
        let (targets, errors): (Vec<_>, Vec<_>) =
            targets.iter().map(|t| parse_assignment(t)).partition(Result::is_ok);
        let errors: Vec<String> = errors.into_iter().filter_map(Result::err).collect();
        if !errors.is_empty() {
            return Err(errors.join("\nerror: "));
        }
        return Ok(targets.into_iter().filter_map(Result::ok).collect());
    };
    let [component] = targets else {
        return Err(
            "--replicas takes exactly one COMPONENT (e.g. scale my-release querynode --replicas=3)".into()
        );
    };
    if component.contains('=') {
        return Err(format!("give either {component} or --replicas, not both"));
    }
    let (component, group) = parse_component(component)?;
    // kubectl scale's --replicas is a count: a sign is refused, as kubectl refuses a negative count.
    if replicas.trim_start().starts_with(['+', '-']) {
        return Err(format!(
            "invalid --replicas={replicas}: the count must be a whole number, 0 or more; for a relative change write {component}=+N or {component}=-N"
        ));
    }
    let change = parse_change(replicas).map_err(|e| format!("invalid --replicas: {e}"))?;
    Ok(vec![Target { component, group, change }])
}

/// Parses `querynode=3`, `querynode[rg1]=+2`, `datanode=-1`.
pub fn parse_assignment(text: &str) -> Result<Target, String> {
    let (left, value) = text.split_once('=').ok_or_else(|| {
        format!("invalid argument {text:?}: expected COMPONENT=REPLICAS (e.g. querynode=3, querynode=+1) or COMPONENT --replicas=N")
    })?;
    let (component, group) = parse_component(left)?;
    Ok(Target {
        component,
        group,
        change: parse_change(value).map_err(|e| format!("invalid replicas in {text:?}: {e}"))?,
    })
}

/// Parses `querynode` or `querynode[rg1]`.
pub fn parse_component(text: &str) -> Result<(String, Option<String>), String> {
    let text = text.trim();
    let (name, group) = match text.split_once('[') {
        Some((name, rest)) => {
            let group = rest
                .strip_suffix(']')
                .filter(|g| !g.is_empty() && !g.contains(['[', ']']))
                .ok_or_else(|| {
                    format!(
                        "invalid component {text:?}: a group is written COMPONENT[GROUP], e.g. querynode[rg1]"
                    )
                })?;
            (name, Some(group.to_string()))
        }
        None => (text, None),
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("invalid component name {name:?}"));
    }
    Ok((name.to_string(), group))
}

/// Parses `3`, `+2`, `-1`: whole numbers only, within [`MAX_REPLICAS`].
pub fn parse_change(value: &str) -> Result<Change, String> {
    let value = value.trim();
    let (relative, digits) = match value.chars().next() {
        Some('+') | Some('-') => (true, &value[1..]),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{value:?} is not a whole number of replicas"));
    }
    let n: i64 = digits.parse().map_err(|_| format!("{value:?} is too large"))?;
    if n > i64::from(MAX_REPLICAS) {
        return Err(format!("{n} replicas is more than the {MAX_REPLICAS} this command accepts"));
    }
    let n = n as i32;
    Ok(match (relative, value.starts_with('-')) {
        (false, _) => Change::To(n),
        (true, true) => Change::By(-n),
        (true, false) => Change::By(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_relative_and_grouped_targets() {
        assert_eq!(
            parse_assignment("querynode=3"),
            Ok(Target { component: "querynode".into(), group: None, change: Change::To(3) })
        );
        assert_eq!(
            parse_assignment("queryNode[rg1]=+2"),
            Ok(Target { component: "queryNode".into(), group: Some("rg1".into()), change: Change::By(2) })
        );
        assert_eq!(parse_assignment("datanode=-1").map(|t| t.change), Ok(Change::By(-1)));
        assert_eq!(parse_assignment("proxy=0").map(|t| t.change), Ok(Change::To(0)));
        assert_eq!(
            parse_assignment("querynode[rg1]=+2").map(|t| t.to_string()),
            Ok("querynode[rg1]=+2".into())
        );
    }

    #[test]
    fn malformed_targets_are_refused_with_a_reason() {
        for (text, expected) in [
            ("querynode", "expected COMPONENT=REPLICAS"),
            ("querynode=", "not a whole number"),
            ("querynode=1.5", "not a whole number"),
            ("querynode=three", "not a whole number"),
            ("querynode=-", "not a whole number"),
            ("querynode=1001", "more than the 1000"),
            ("querynode=99999999999999999999", "too large"),
            ("querynode[=2", "COMPONENT[GROUP]"),
            ("querynode[]=2", "COMPONENT[GROUP]"),
            ("=2", "invalid component name"),
            ("query node=2", "invalid component name"),
        ] {
            let error = parse_assignment(text).err().unwrap_or_default();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn relative_changes_apply_to_the_current_value() {
        assert_eq!(Change::By(2).apply(1), 3);
        assert_eq!(Change::By(-1).apply(5), 4);
        assert_eq!(Change::By(-3).apply(1), -2);
        assert_eq!(Change::To(4).apply(1), 4);
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text is a target or a clear refusal, never a panic; an accepted target prints back to text
        /// that parses to the same target.
        #[test]
        fn any_assignment_parses_or_is_refused(text in "\\PC{0,40}") {
            match parse_assignment(&text) {
                Ok(target) => prop_assert_eq!(parse_assignment(&target.to_string()), Ok(target)),
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }

        #[test]
        fn well_formed_assignments_round_trip(
            component in "[a-z][a-z_-]{0,15}",
            group in proptest::option::of("[a-z0-9][a-z0-9-]{0,10}"),
            sign in prop::sample::select(vec!["", "+", "-"]),
            n in 0i32..=MAX_REPLICAS,
        ) {
            let group_text = group.as_ref().map(|g| format!("[{g}]")).unwrap_or_default();
            let target = parse_assignment(&format!("{component}{group_text}={sign}{n}")).expect("well formed");
            prop_assert_eq!(&target.component, &component);
            prop_assert_eq!(&target.group, &group);
            let expected = match sign { "+" => Change::By(n), "-" => Change::By(-n), _ => Change::To(n) };
            prop_assert_eq!(target.change, expected);
        }

        #[test]
        fn any_replicas_value_is_a_count_or_refused(value in "\\PC{0,24}") {
            let targets = [String::from("querynode")];
            match parse_targets(&targets, Some(&value)) {
                Ok(parsed) => prop_assert!(matches!(parsed[0].change, Change::To(n) if (0..=MAX_REPLICAS).contains(&n))),
                Err(message) => prop_assert!(message.contains("--replicas")),
            }
        }
    }
}
