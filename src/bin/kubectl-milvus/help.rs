//! Help laid out as kubectl lays it out: a summary, a longer description, examples, the command's own
//! options, usage, and a pointer to `kubectl milvus options`, which lists the global (kubectl) flags
//! once instead of in every command's help. The texts themselves live with each command's `Args`.

use clap::{Arg, Command};

/// The last line of every help, as kubectl ends its own.
macro_rules! options_pointer {
    () => {
        "Use \"kubectl milvus options\" for a list of global command-line options (applies to all commands)."
    };
}
#[cfg(test)]
const OPTIONS_POINTER: &str = options_pointer!();

const ROOT_TEMPLATE: &str = concat!(
    "\
{about}{after-help}

{all-args}

{usage-heading} {usage}

Use \"kubectl milvus <command> --help\" for more information about a given command.
",
    options_pointer!()
);

const COMMAND_TEMPLATE: &str = concat!(
    "\
{about}{after-help}

{all-args}

{usage-heading} {usage}

",
    options_pointer!()
);

/// `root` in kubectl's layout: global flags hidden from every command's help (still accepted
/// everywhere), kubectl's templates.
pub fn kubectl_layout(root: Command) -> Command {
    root.mut_args(|arg| if arg.is_global_set() { arg.hide(true) } else { arg })
        // Every global flag is hidden, which would drop `[OPTIONS]` from the usage line; they are accepted.
        .override_usage("kubectl milvus [OPTIONS] <COMMAND>")
        .help_template(ROOT_TEMPLATE)
        .mut_subcommands(|sub| sub.help_template(COMMAND_TEMPLATE))
}

/// `kubectl milvus options`: the global flags, as `kubectl options` prints its own.
pub fn render_options(globals: Vec<Arg>) -> String {
    let mut command = Command::new("options")
        .disable_help_flag(true)
        .max_term_width(100)
        .help_template("The following options can be passed to any command:\n\n{options}");
    for arg in globals {
        command = command.arg(arg.hide(false).global(false));
    }
    let mut text = command.render_help().to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, command, global_args};

    fn help(args: &[&str]) -> String {
        let error = command().try_get_matches_from(args).expect_err("help is an early exit");
        error.render().to_string()
    }

    #[test]
    fn global_flags_are_left_out_of_command_help_and_listed_by_options() {
        let status = help(&["kubectl-milvus", "status", "--help"]);
        assert!(!status.contains("--kubeconfig"), "{status}");
        assert!(status.contains("--exit-code"), "{status}");
        assert!(status.trim_end().ends_with(OPTIONS_POINTER), "{status}");
        let options = render_options(global_args());
        for flag in
            ["--kubeconfig", "--context", "-n, --namespace", "--as-group", "--request-timeout", "--color"]
        {
            assert!(options.contains(flag), "{flag} missing:\n{options}");
        }
    }

    #[test]
    fn global_flags_are_still_accepted_everywhere() {
        use clap::FromArgMatches;
        let mut matches = command()
            .try_get_matches_from(["kubectl-milvus", "list", "-n", "prod", "--context", "dev"])
            .expect("parses");
        let cli = Cli::from_arg_matches_mut(&mut matches).expect("parses");
        assert_eq!(cli.kube.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.kube.context.as_deref(), Some("dev"));
    }

    #[test]
    fn every_command_has_a_description_and_examples() {
        let root = command();
        for sub in root.get_subcommands() {
            let name = sub.get_name();
            assert!(sub.get_long_about().is_some(), "{name} has no long description");
            let text = help(&["kubectl-milvus", name, "--help"]);
            assert!(text.contains("Examples:\n  # "), "{name} has no examples:\n{text}");
        }
    }
}
