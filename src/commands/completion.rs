//! `kubectl milvus completion SHELL`: a completion script for the standalone `kubectl-milvus`, and
//! `kubectl milvus options`: the global flags.
//!
//! Completion of `kubectl milvus …` itself goes through kubectl (1.26+), which runs the
//! `kubectl_complete-milvus` helper: see [`crate::complete`].

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::Error;

pub const EXAMPLES: &str = "\
Examples:
  # Bash: load completion in the current shell, then for every new shell
  source <(kubectl milvus completion bash)
  kubectl milvus completion bash > ~/.local/share/bash-completion/completions/kubectl-milvus

  # Zsh (with compinit): a file in a directory of $fpath
  kubectl milvus completion zsh > \"${fpath[1]}/_kubectl-milvus\"

  # Fish
  kubectl milvus completion fish > ~/.config/fish/completions/kubectl-milvus.fish

  # PowerShell: add to your profile
  kubectl milvus completion powershell | Out-String | Invoke-Expression

  # kubectl milvus <TAB> (kubectl 1.26+): the helper from the release archive, next to the plugin
  ln -s ~/.krew/store/milvus/*/kubectl_complete-milvus ~/.krew/bin/";

pub const OPTIONS_EXAMPLES: &str = "\
Examples:
  # Print the flags inherited by all commands
  kubectl milvus options";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete in: bash, zsh, fish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct OptionsArgs {}

pub fn run(args: Args, out: &mut dyn Write) -> Result<(), Error> {
    use clap_complete::Shell as Target;
    let shell = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
        Shell::Powershell => Target::PowerShell,
    };
    // The full command line, global flags included (they are hidden from help, not from completion).
    let mut command = Cli::command().name("kubectl-milvus").bin_name("kubectl-milvus");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kubectl-milvus", &mut script);
    out.write_all(&script)?;
    Ok(())
}

pub fn run_options(out: &mut dyn Write) -> Result<(), Error> {
    out.write_all(crate::help::render_options().as_bytes())?;
    Ok(())
}
