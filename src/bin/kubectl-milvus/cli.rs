//! The command line: kubectl's global flags, shared by every subcommand, the subcommands, and the
//! dispatch from one to its `run`. Each subcommand's texts (summary, description, examples) live next
//! to its `Args` in `commands/`.

use std::io::Write;

use clap::{Arg, CommandFactory, Parser, Subcommand};

use crate::commands::{completion, list, options, scale, status, version};
use crate::help;
use kubectl_milvus::client::KubeFlags;
use kubectl_milvus::client::flags::HEADING;
use kubectl_milvus::error::Error;
use kubectl_milvus::output::color::ColorChoice;

const ABOUT: &str = "Discover, inspect and scale Milvus releases on Kubernetes";

const LONG_ABOUT: &str = "\
Discover, inspect and scale Milvus releases on Kubernetes.

Works with releases installed by the Milvus Helm chart and with Milvus Operator
releases (milvuses.milvus.io). Releases are found by their labels, never by object
names, so renamed charts and overrides are handled.";

const EXAMPLES: &str = "\
Examples:
  # List the Milvus releases in every namespace
  kubectl milvus list -A

  # Show the health of every component, dependency and failing pod of a release
  kubectl milvus status my-release -n milvus

  # Preview, then scale query nodes to 3 and wait until they are ready
  kubectl milvus scale my-release querynode=3 --dry-run
  kubectl milvus scale my-release querynode=3 --wait

  # Print the plugin and server versions
  kubectl milvus version";

#[derive(Debug, Parser)]
#[command(
    name = "kubectl milvus",
    bin_name = "kubectl milvus",
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    disable_version_flag = true,
    propagate_version = false,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub kube: KubeFlags,

    /// When to colour the output: auto (only on a terminal; NO_COLOR turns it off), always or never.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, help_heading = HEADING)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(visible_alias = "ls", about = list::ABOUT, long_about = list::LONG_ABOUT, after_help = list::EXAMPLES)]
    List(list::Args),

    #[command(about = status::ABOUT, long_about = status::LONG_ABOUT, after_help = status::EXAMPLES)]
    Status(status::Args),

    #[command(about = scale::ABOUT, long_about = scale::LONG_ABOUT, after_help = scale::EXAMPLES)]
    Scale(scale::Args),

    #[command(about = version::ABOUT, long_about = version::LONG_ABOUT, after_help = version::EXAMPLES)]
    Version(version::Args),

    #[command(about = completion::ABOUT, long_about = completion::LONG_ABOUT, after_help = completion::EXAMPLES)]
    Completion(completion::Args),

    #[command(about = options::ABOUT, long_about = options::LONG_ABOUT, after_help = options::EXAMPLES)]
    Options(options::Args),
}

/// The command line as parsed and as its help is shown (kubectl's layout: see [`help`]).
pub fn command() -> clap::Command {
    help::kubectl_layout(Cli::command())
}

/// The global flags (kubectl's, plus `--color`), in the order they are declared.
pub fn global_args() -> Vec<Arg> {
    Cli::command().get_arguments().filter(|a| a.is_global_set()).cloned().collect()
}

impl Cli {
    pub async fn run(self, out: &mut dyn Write) -> Result<(), Error> {
        match self.command {
            Command::List(args) => list::run(&self.kube, args, out).await,
            Command::Status(args) => status::run(&self.kube, args, out).await,
            Command::Scale(args) => scale::run(&self.kube, args, out).await,
            Command::Version(args) => version::run(&self.kube, args, out).await,
            Command::Completion(args) => completion::run(args, Cli::command(), out),
            Command::Options(_) => options::run(global_args(), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "kubectl-milvus",
            "status",
            "my-release",
            "-n",
            "prod",
            "--context",
            "dev",
            "--as",
            "jane",
            "--as-group",
            "a",
            "--as-group",
            "b",
            "--request-timeout",
            "5s",
            "-v=6",
            "--insecure-skip-tls-verify",
        ])
        .expect("parses");
        assert_eq!(cli.kube.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.kube.context.as_deref(), Some("dev"));
        assert_eq!(cli.kube.as_group, vec!["a", "b"]);
        assert_eq!(cli.kube.verbosity, 6);
        assert!(cli.kube.insecure_skip_tls_verify);
    }
}
