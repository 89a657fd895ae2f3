//! Tables as `kubectl get` prints them: upper-case headers, columns separated by three spaces, no borders.

use std::io::Write;

use owo_colors::Stream;

use super::color::Tone;

/// One cell: its text (control characters escaped, see [`super::safe`]) and the tone it is painted in on a
/// terminal.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Self {
        Self::toned(text, Tone::Plain)
    }

    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        let text = text.into();
        let text = match super::safe::one_line(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        Self { text, tone }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::new(text)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

const SEPARATOR: &str = "   ";

impl Table {
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        Self { headers: headers.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.text.chars().count());
            }
        }
        let header: Vec<Cell> = self.headers.iter().map(|h| Cell::new(h.to_uppercase())).collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).cloned().unwrap_or_default();
                let last = i + 1 == columns;
                line.push_str(&cell.tone.paint(&cell.text, Stream::Stdout));
                if !last {
                    let fill = width - cell.text.chars().count();
                    line.push_str(&" ".repeat(fill));
                    line.push_str(SEPARATOR);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_with_three_spaces() {
        owo_colors::set_override(false);
        let mut table = Table::new(["name", "status"]);
        table.push(vec!["my-release".into(), Cell::toned("Healthy", Tone::Good)]);
        table.push(vec!["a".into(), "Degraded".into()]);
        let mut out = Vec::new();
        table.write(&mut out).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "NAME         STATUS\nmy-release   Healthy\na            Degraded\n"
        );
    }
}
