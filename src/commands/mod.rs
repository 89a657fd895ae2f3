//! One module per subcommand: its arguments (`Args`) and `run`.

pub mod completion;
pub mod list;
pub mod release;
pub mod scale;
pub mod status;
pub mod version;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// `--name-override`: how every command that finds releases recognises Milvus workloads.
#[derive(Debug, Clone, clap::Args)]
pub struct NameOverride {
    /// The value of the label app.kubernetes.io/name on Milvus workloads, when the chart was installed with nameOverride.
    #[arg(long = "name-override", value_name = "NAME", default_value = crate::milvus::DEFAULT_NAME_LABEL)]
    pub label: String,
}

pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), Error> {
    match cli.command {
        Command::List(args) => list::run(&cli.kube, args, out).await,
        Command::Status(args) => status::run(&cli.kube, args, out).await,
        Command::Scale(args) => scale::run(&cli.kube, args, out).await,
        Command::Version(args) => version::run(&cli.kube, args, out).await,
        Command::Completion(args) => completion::run(args, out),
        Command::Options(_) => completion::run_options(out),
    }
}

/// Writes the notes collected while reading (forbidden kinds, missing CRDs) to stderr, after the output.
pub fn print_notes(notes: &[crate::client::read::Note]) {
    use owo_colors::{OwoColorize, Stream};
    for note in notes {
        eprintln!("{} {}", "Warning:".if_supports_color(Stream::Stderr, |t| t.yellow()), note.message);
    }
}
