//! One module per subcommand: its texts, its arguments (`Args`) and `run`. The registry that ties
//! them to the command line is `cli.rs`.

pub mod autoscaler;
pub mod completion;
pub mod list;
pub mod options;
pub mod scale;
pub mod status;
pub mod version;

use owo_colors::{OwoColorize, Stream};

use kubectl_milvus::client::read::Note;
use kubectl_milvus::output::FormatChoice;

/// `--name-override`: how every command that finds releases recognises Milvus workloads.
#[derive(Debug, Clone, clap::Args)]
pub struct NameOverride {
    /// The value of the label app.kubernetes.io/name on Milvus workloads, when the chart was installed with nameOverride.
    #[arg(long = "name-override", value_name = "NAME", default_value = kubectl_milvus::milvus::DEFAULT_NAME_LABEL)]
    pub label: String,
}

/// `Warning: …` on stderr, as kubectl prints warnings.
pub fn warn(message: &str) {
    let message = kubectl_milvus::output::safe::lines(message);
    eprintln!("{} {message}", "Warning:".if_supports_color(Stream::Stderr, |t| t.yellow()));
}

/// Writes the notes collected while reading (forbidden kinds, missing CRDs) to stderr, after the output.
pub fn print_notes(notes: &[Note]) {
    notes.iter().for_each(|note| warn(&note.message));
}

/// The `-o` values a command accepts, for completion.
pub fn output_formats(command: &str) -> Vec<&'static str> {
    match command {
        "list" => list::Format::names(),
        "status" => status::Format::names(),
        "scale" | "version" => kubectl_milvus::output::Structured::names(),
        _ => Vec::new(),
    }
}
