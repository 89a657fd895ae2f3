//! Output: tables in `kubectl get`'s look, json/yaml, colour, ages.

pub mod color;
pub mod diff;
pub mod progress;
pub mod safe;
pub mod table;

use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use crate::error::Error;
pub use crate::milvus::human_duration;

pub use table::{Cell, Table};

/// The `apiVersion` of every structured output.
pub const SCHEMA_VERSION: &str = "kubectl-milvus/v1";

/// The value type of one command's `-o/--output`: each command lists the printers it has, and
/// [`parse_format`] refuses the others in kubectl's words.
pub trait FormatChoice: Sized + Copy + 'static {
    /// Every value with its name, sorted by name (kubectl lists the allowed formats so).
    const NAMES: &'static [(&'static str, Self)];

    /// The names, for completion.
    fn names() -> Vec<&'static str> {
        Self::NAMES.iter().map(|(name, _)| *name).collect()
    }
}

/// clap value parser of a [`FormatChoice`], with kubectl's error wording for an unknown format.
pub fn parse_format<F: FormatChoice>(value: &str) -> Result<F, String> {
    F::NAMES.iter().find(|(name, _)| *name == value).map(|(_, format)| *format).ok_or_else(|| {
        format!(
            "unable to match a printer suitable for the output format \"{value}\", allowed formats are: {}",
            F::names().join(",")
        )
    })
}

/// JSON or YAML: the structured printers every command has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structured {
    Json,
    Yaml,
}

impl FormatChoice for Structured {
    const NAMES: &'static [(&'static str, Self)] = &[("json", Structured::Json), ("yaml", Structured::Yaml)];
}

/// Writes `value` as pretty JSON (with a trailing newline) or YAML.
pub fn write_structured<T: Serialize>(
    out: &mut dyn Write,
    format: Structured,
    value: &T,
) -> Result<(), Error> {
    match format {
        Structured::Yaml => {
            let text = serde_yaml::to_string(value).map_err(|e| Error::Serialize(e.to_string()))?;
            out.write_all(text.as_bytes())?;
        }
        Structured::Json => {
            let text = serde_json::to_string_pretty(value).map_err(|e| Error::Serialize(e.to_string()))?;
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

/// The AGE column for an optional creation time (`<unknown>` as kubectl prints it).
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    match created {
        Some(created) => human_duration(now.as_second() - created.as_second()),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_output_format_lists_the_allowed_ones() {
        let error = parse_format::<Structured>("wide").err().unwrap_or_default();
        assert!(error.contains("the output format \"wide\", allowed formats are: json,yaml"), "{error}");
        assert_eq!(parse_format::<Structured>("yaml"), Ok(Structured::Yaml));
    }
}
