//! `kubectl-milvus`: parse, run, and map the outcome to kubectl's messages and exit codes.

mod cli;
mod commands;
mod complete;
mod help;

use std::io::Write;
use std::process::ExitCode;

use clap::FromArgMatches;
use owo_colors::{OwoColorize, Stream};

use kubectl_milvus::error::{Error, exit};
use kubectl_milvus::output::safe;

fn main() -> ExitCode {
    if let Some(code) = complete::intercept() {
        return code;
    }
    let cli = match cli::command().try_get_matches().and_then(|mut m| cli::Cli::from_arg_matches_mut(&mut m))
    {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    kubectl_milvus::output::color::init(cli.color);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return report(&Error::Io(error)),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = runtime.block_on(cli.run(&mut out)).and_then(|()| out.flush().map_err(Error::from));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) if error.is_broken_pipe() => ExitCode::from(exit::OK),
        Err(error) => report(&error),
    }
}

/// Prints an error as kubectl does (`error: …` on stderr) and returns its exit code.
fn report(error: &Error) -> ExitCode {
    let message = error.to_string();
    let message = safe::lines(&message);
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
            let lines: Vec<&str> = rendered
                .lines()
                .filter(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .collect();
            let message = lines.join("\n");
            let message = safe::lines(message.trim_end());
            let command = subcommand_in_args().map(|c| format!(" {c}")).unwrap_or_default();
            eprintln!("{message}\nSee 'kubectl milvus{command} --help' for usage.");
            ExitCode::from(exit::ERROR)
        }
    }
}

/// The subcommand named on the command line, for the `--help` pointer of a usage error.
fn subcommand_in_args() -> Option<String> {
    use clap::CommandFactory;
    let command = cli::Cli::command();
    let names: Vec<String> = command
        .get_subcommands()
        .flat_map(|c| std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(String::from)))
        .collect();
    std::env::args().skip(1).find(|a| names.contains(a))
}
