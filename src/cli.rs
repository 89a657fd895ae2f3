//! The command line: kubectl's global flags, shared by every subcommand, and the subcommands.

use clap::{Parser, Subcommand};

use crate::client::KubeFlags;
use crate::client::flags::HEADING;
use crate::commands::{completion, list, scale, status, version};
use crate::output::color::ColorChoice;

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
    /// List Milvus releases (Helm and Milvus Operator) with their health
    #[command(visible_alias = "ls", after_help = list::EXAMPLES)]
    List(list::Args),

    /// Show the health of a release: components, dependencies and failing pods
    #[command(after_help = status::EXAMPLES)]
    Status(status::Args),

    /// Change worker replicas through the object that owns them (Deployment or Milvus object)
    #[command(after_help = scale::EXAMPLES)]
    Scale(scale::Args),

    /// Print the plugin version and the API server version
    #[command(after_help = version::EXAMPLES)]
    Version(version::Args),

    /// Print a shell completion script (bash, zsh, fish or powershell)
    #[command(after_help = completion::EXAMPLES)]
    Completion(completion::Args),

    /// Print the list of flags inherited by all commands
    #[command(after_help = completion::OPTIONS_EXAMPLES)]
    Options(completion::OptionsArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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
