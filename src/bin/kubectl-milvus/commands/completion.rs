//! `kubectl milvus completion SHELL`: a completion script for the standalone `kubectl-milvus`.
//!
//! Completion of `kubectl milvus …` itself goes through kubectl (1.26+), which runs the
//! `kubectl_complete-milvus` helper: see [`crate::complete`].

use std::io::Write;

use kubectl_milvus::error::Error;

pub const ABOUT: &str = "Print a shell completion script (bash, zsh, fish or powershell)";

pub const LONG_ABOUT: &str = "\
Print a shell completion script for the kubectl-milvus command.

Load it in your shell's start-up file (see the examples). For completion of `kubectl milvus ...`
itself (kubectl 1.26 or later), put the kubectl_complete-milvus helper shipped in the release
archive on your PATH: kubectl runs it to complete the plugin's commands, flags, and the release,
component, namespace and context names of your cluster.";

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

/// Writes the script for `root`, the whole command line (global flags included: they are hidden from
/// help, not from completion).
pub fn run(args: Args, root: clap::Command, out: &mut dyn Write) -> Result<(), Error> {
    use clap_complete::Shell as Target;
    let shell = match args.shell {
        Shell::Bash => Target::Bash,
        Shell::Zsh => Target::Zsh,
        Shell::Fish => Target::Fish,
        Shell::Powershell => Target::PowerShell,
    };
    let mut command = root.name("kubectl-milvus").bin_name("kubectl-milvus");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "kubectl-milvus", &mut script);
    out.write_all(&script)?;
    Ok(())
}
