//! `--color=auto|always|never`: auto colours only a terminal and respects `NO_COLOR`.

use clap::ValueEnum;
use owo_colors::{OwoColorize, Stream, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// Applies the choice process-wide. `auto` leaves the decision to owo-colors' terminal detection,
/// which honours `NO_COLOR`, `FORCE_COLOR` and whether stdout/stderr is a terminal.
pub fn init(choice: ColorChoice) {
    match choice {
        ColorChoice::Always => owo_colors::set_override(true),
        ColorChoice::Never => owo_colors::set_override(false),
        // NO_COLOR (https://no-color.org) wins over any FORCE_COLOR in auto mode.
        ColorChoice::Auto if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) => {
            owo_colors::set_override(false)
        }
        ColorChoice::Auto => {}
    }
}

/// The colours the tables use, by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
    Bold,
}

impl Tone {
    fn style(self) -> Option<Style> {
        match self {
            Tone::Plain => None,
            Tone::Good => Some(Style::new().green()),
            Tone::Warn => Some(Style::new().yellow()),
            Tone::Bad => Some(Style::new().red().bold()),
            Tone::Dim => Some(Style::new().dimmed()),
            Tone::Bold => Some(Style::new().bold()),
        }
    }

    /// `text` in this tone when colour is enabled for `stream`.
    pub fn paint(self, text: &str, stream: Stream) -> String {
        match self.style() {
            Some(style) => text.if_supports_color(stream, |t| t.style(style)).to_string(),
            None => text.to_string(),
        }
    }
}
