//! `kubectl-milvus`: parse, run, and map the outcome to kubectl's messages and exit codes.

mod cli;
mod client;
mod commands;
mod error;
mod milvus;
mod output;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use owo_colors::{OwoColorize, Stream};

use crate::error::{Error, exit};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    output::color::init(cli.color);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return report(&Error::Io(error)),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(commands::run(cli, &mut out)).and_then(|()| out.flush().map_err(Error::from));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) if error.is_broken_pipe() => ExitCode::from(exit::OK),
        Err(error) => report(&error),
    }
}

/// Prints an error as kubectl does (`error: …` on stderr) and returns its exit code.
fn report(error: &Error) -> ExitCode {
    let message = error.to_string();
    if !message.is_empty() {
        if error.has_own_prefix() {
            eprintln!("{message}");
        } else {
            eprintln!("{} {message}", "error:".if_supports_color(Stream::Stderr, |t| t.red()));
        }
    }
    ExitCode::from(error.exit_code())
}

/// clap's errors in kubectl's form: help and version go to stdout with exit 0; mistakes are `error: …`
/// plus a pointer to `--help`, exit 1.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::from(exit::OK)
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            ExitCode::from(exit::ERROR)
        }
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let message = first.strip_prefix("error: ").unwrap_or(first);
            let tip = rendered
                .lines()
                .find(|l| l.trim_start().starts_with("tip:"))
                .map(|l| format!("\n{}", l.trim()))
                .unwrap_or_default();
            eprintln!("error: {message}{tip}\nSee 'kubectl milvus --help' for usage.");
            ExitCode::from(exit::ERROR)
        }
    }
}
