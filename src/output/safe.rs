//! Text from the cluster (names, reasons, messages, images) and from the user is printed for a person
//! with every control character escaped, so that no escape sequence in an object can move the cursor,
//! retitle the terminal or clear the screen. JSON and YAML output stay exact (serde escapes on its own).

use std::borrow::Cow;
use std::fmt::Write;

fn is_unsafe(c: char, keep_newlines: bool) -> bool {
    c.is_control() && !(keep_newlines && c == '\n')
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c, keep_newlines)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !is_unsafe(c, keep_newlines) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// One line for a table cell or a summary: every control character escaped, newlines too.
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// A message of several lines: control characters escaped, newlines kept.
pub fn lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_obeyed() {
        let hostile = "\u{1b}[31mred\u{1b}]0;title\u{7}\u{1b}[2J";
        assert_eq!(one_line(hostile), "\\x1b[31mred\\x1b]0;title\\x07\\x1b[2J");
        assert_eq!(one_line("a\r\nb\tc\u{9b}d"), "a\\r\\nb\\tc\\x9bd");
        assert_eq!(lines("a\nb\u{1b}"), "a\nb\\x1b");
        assert!(matches!(one_line("plain text, ünïcode"), Cow::Borrowed(_)));
    }
}
