//! Help laid out as kubectl lays it out: a summary, a longer description, examples, the command's own
//! options, usage, and a pointer to `kubectl milvus options`, which lists the global (kubectl) flags
//! once instead of in every command's help.

use clap::{Arg, Command, CommandFactory};

use crate::cli::Cli;

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

/// The command line as parsed and as its help is shown: global flags hidden from every command's help
/// (still accepted everywhere), kubectl's layout, a longer description for each subcommand.
pub fn command() -> Command {
    Cli::command()
        .mut_args(|arg| if arg.is_global_set() { arg.hide(true) } else { arg })
        // Every global flag is hidden, which would drop `[OPTIONS]` from the usage line; they are accepted.
        .override_usage("kubectl milvus [OPTIONS] <COMMAND>")
        .help_template(ROOT_TEMPLATE)
        .mut_subcommands(|sub| {
            let sub = sub.help_template(COMMAND_TEMPLATE);
            match long_about(sub.get_name()) {
                Some(text) => sub.long_about(text),
                None => sub,
            }
        })
}

/// The global flags (kubectl's, plus `--color`), in the order they are declared.
pub fn global_args() -> Vec<Arg> {
    Cli::command().get_arguments().filter(|a| a.is_global_set()).cloned().collect()
}

/// `kubectl milvus options`: the global flags, as `kubectl options` prints its own.
pub fn render_options() -> String {
    let mut command = Command::new("options")
        .disable_help_flag(true)
        .max_term_width(100)
        .help_template("The following options can be passed to any command:\n\n{options}");
    for arg in global_args() {
        command = command.arg(arg.hide(false).global(false));
    }
    let mut text = command.render_help().to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

fn long_about(command: &str) -> Option<&'static str> {
    Some(match command {
        "list" => {
            "\
List the Milvus releases in the current namespace, or in every namespace with -A.

Releases installed with the Milvus Helm chart are found by their labels, and releases managed by the
Milvus Operator by their Milvus objects (milvuses.milvus.io). Each row shows how the release is managed,
its mode and Milvus version, how many components have all their replicas ready, and its health: the
worst health of its components and dependencies."
        }
        "status" => {
            "\
Show the health of a release: components, dependencies and failing pods.

Prints a summary (how the release is managed, its mode, Milvus version and health), one row per
component and per dependency (etcd, MinIO, Pulsar, Kafka, Woodpecker), and every pod that is not
healthy with what is wrong with it: a crash loop with its last exit code, an image that cannot be
pulled, a pod that cannot be scheduled. With --exit-code the command fails unless the release is
Healthy, for scripts and CI."
        }
        "scale" => {
            "\
Change worker replicas through the object that owns them.

Scales the worker components (proxy, querynode, datanode, indexnode, streamingnode) through the
object that owns their replicas: the workload of a Helm release, or the Milvus object of a Milvus
Operator release. Coordinators are never scaled out.

The plan is checked against Milvus's rules before anything changes; --dry-run prints it with a
kubectl-diff of every object that would change, and --wait follows the rollout until the new
replicas are ready."
        }
        "version" => {
            "\
Print the plugin version and the API server version.

With --client only the plugin's version is printed and the cluster is not contacted. -o json and
-o yaml also show the git commit the plugin was built from."
        }
        "completion" => {
            "\
Print a shell completion script for the kubectl-milvus command.

Load it in your shell's start-up file (see the examples). For completion of `kubectl milvus ...`
itself (kubectl 1.26 or later), put the kubectl_complete-milvus helper shipped in the release
archive on your PATH: kubectl runs it to complete the plugin's commands, flags, and the release,
component, namespace and context names of your cluster."
        }
        "options" => "Print the list of flags inherited by all commands.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let options = render_options();
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
            assert!(long_about(name).is_some(), "{name} has no long description");
            let text = help(&["kubectl-milvus", name, "--help"]);
            assert!(text.contains("Examples:\n  # "), "{name} has no examples:\n{text}");
        }
    }
}
