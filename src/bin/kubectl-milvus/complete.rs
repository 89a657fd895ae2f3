//! `kubectl-milvus __complete WORDS… CURRENT`: shell completion in cobra's protocol, which kubectl 1.26+
//! speaks with plugins through an executable `kubectl_complete-milvus` on the PATH (shipped in the
//! release archive; it execs this).
//!
//! The arguments are the words typed after `milvus` plus the word being completed (possibly empty).
//! The answer is one candidate per line (`candidate<TAB>description`), then `:<directive>`.
//! Candidates come from the command line's own definition (subcommands, flags, enumerated values) and
//! from the cluster: release names, the named release's scalable components, namespaces; contexts,
//! clusters and users from the kubeconfig. Cluster look-ups are bounded by [`LOOKUP_TIMEOUT`]; when the
//! cluster cannot be reached, or anything else fails, there are simply no candidates: completion never
//! prints an error.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, Command, CommandFactory, Parser};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use crate::cli::Cli;
use kubectl_milvus::client::flags::RequestTimeout;
use kubectl_milvus::client::read::{self, Kinds, Scope};
use kubectl_milvus::client::{Kube, KubeFlags};
use kubectl_milvus::milvus::{self, DiscoveryOptions, Release};

/// The longest a completion waits for the cluster.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// cobra's `ShellCompDirective` bits.
pub mod directive {
    /// Let the shell complete file names.
    pub const DEFAULT: u32 = 0;
    /// Do not add a space after the candidate (`querynode=` is followed by a number).
    pub const NO_SPACE: u32 = 2;
    /// Do not fall back to file names.
    pub const NO_FILE_COMP: u32 = 4;
}

/// One completion candidate and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub value: String,
    pub description: String,
}

impl Candidate {
    fn new(value: impl Into<String>, description: impl Into<String>) -> Self {
        Candidate { value: value.into(), description: description.into() }
    }
}

/// The answer to one completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub candidates: Vec<Candidate>,
    pub directive: u32,
}

impl Completion {
    fn none() -> Self {
        Completion { candidates: Vec::new(), directive: directive::NO_FILE_COMP }
    }

    fn files() -> Self {
        Completion { candidates: Vec::new(), directive: directive::DEFAULT }
    }

    fn of(candidates: Vec<Candidate>) -> Self {
        Completion { candidates, directive: directive::NO_FILE_COMP }
    }

    /// The protocol's text: candidates (with descriptions unless `plain`), then the directive line.
    pub fn render(&self, plain: bool) -> String {
        let mut text = String::new();
        for candidate in &self.candidates {
            text.push_str(&candidate.value);
            if !plain && !candidate.description.is_empty() {
                text.push('\t');
                // A description is one line; cobra's shells show the first one only anyway.
                text.push_str(candidate.description.lines().next().unwrap_or_default());
            }
            text.push('\n');
        }
        text.push_str(&format!(":{}\n", self.directive));
        text
    }
}

/// Handles `kubectl-milvus __complete …` (and cobra's `__completeNoDesc`) before the normal command line
/// is parsed: the words to complete are not a valid command line. `None` for any other invocation.
pub fn intercept() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let first = args.next()?;
    let plain = match first.to_str() {
        Some("__complete") => false,
        Some("__completeNoDesc") => true,
        _ => return None,
    };
    let words: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let completion = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(complete(&words)),
        Err(_) => Completion::none(),
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(completion.render(plain).as_bytes());
    let _ = stdout.flush();
    Some(ExitCode::SUCCESS)
}

/// What the words typed so far say: which subcommand, its positional arguments, the flags given.
#[derive(Debug, Default)]
struct Line {
    /// The subcommand, by its canonical name (`ls` → `list`).
    subcommand: Option<String>,
    positionals: Vec<String>,
    /// Flags given, by arg id, with their values (empty for switches).
    flags: BTreeMap<String, Vec<String>>,
    /// The global flags exactly as typed, to rebuild the connection settings with the real parser.
    global_words: Vec<String>,
    /// The last word is a flag that still waits for its value: the current word is that value.
    pending: Option<Arg>,
}

impl Line {
    fn flag(&self, id: &str) -> Option<&str> {
        self.flags.get(id).and_then(|v| v.last()).map(String::as_str)
    }

    fn has(&self, id: &str) -> bool {
        self.flags.contains_key(id)
    }
}

/// The completion for `words` (the last one is the word being completed).
pub async fn complete(words: &[String]) -> Completion {
    let (current, typed) = match words.split_last() {
        Some((current, typed)) => (current.as_str(), typed),
        None => ("", &[][..]),
    };
    let root = Cli::command();
    let line = parse(&root, typed);
    let sub = line.subcommand.as_deref().and_then(|name| root.find_subcommand(name));

    if let Some(arg) = &line.pending {
        return complete_value(&line, arg, current, "").await;
    }
    if let Some(rest) = current.strip_prefix("--")
        && let Some((name, value)) = rest.split_once('=')
    {
        return match find_long(&root, sub, name) {
            Some(arg) => complete_value(&line, &arg, value, &format!("--{name}=")).await,
            None => Completion::none(),
        };
    }
    if current.starts_with('-') {
        return Completion::of(flag_candidates(&root, sub, current));
    }
    let Some(sub) = sub else {
        if line.subcommand.is_some() {
            // An unknown command: nothing sensible follows it.
            return Completion::none();
        }
        return Completion::of(filter(subcommand_candidates(&root), current));
    };
    match (sub.get_name(), line.positionals.len()) {
        ("status" | "scale", 0) => Completion::of(filter(releases(&line).await, current)),
        ("scale", _) => complete_components(&line, current).await,
        ("completion", 0) => {
            let shell = sub.get_arguments().find(|a| a.is_positional());
            Completion::of(filter(shell.map(possible_values).unwrap_or_default(), current))
        }
        ("help", 0) => Completion::of(filter(subcommand_candidates(&root), current)),
        _ => Completion::none(),
    }
}

/// Walks the typed words the way clap will parse them: flags (with `--flag=value`, `--flag value`,
/// `-nvalue`, `-n value`, `-Ao json`), the subcommand, then positional arguments.
fn parse(root: &Command, words: &[String]) -> Line {
    let mut line = Line::default();
    let mut words = words.iter();
    let mut only_positionals = false;
    while let Some(word) = words.next() {
        let sub = line.subcommand.as_deref().and_then(|name| root.find_subcommand(name));
        if only_positionals || word == "-" || !word.starts_with('-') {
            match sub {
                None if !only_positionals => {
                    line.subcommand = root.find_subcommand(word).map(|s| s.get_name().to_string());
                    if line.subcommand.is_none() {
                        // An unknown command: nothing sensible to complete after it.
                        line.subcommand = Some(String::new());
                    }
                }
                _ => line.positionals.push(word.clone()),
            }
            continue;
        }
        if word == "--" {
            only_positionals = true;
            continue;
        }
        if let Some(rest) = word.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (rest, None),
            };
            let Some(arg) = find_long(root, sub, name) else { continue };
            let value = if takes_value(&arg) && inline.is_none() {
                match words.next() {
                    Some(value) => Some(value.clone()),
                    None => {
                        line.pending = Some(arg);
                        break;
                    }
                }
            } else {
                inline
            };
            record(&mut line, &arg, word, value);
            continue;
        }
        // Short flags, possibly combined (`-Ao` json) or with an attached value (`-nprod`, `-v=6`).
        let shorts: Vec<char> = word[1..].chars().collect();
        for (i, short) in shorts.iter().enumerate() {
            let Some(arg) = find_short(root, sub, *short) else { break };
            if !takes_value(&arg) {
                record(&mut line, &arg, &format!("-{short}"), None);
                continue;
            }
            let attached: String = shorts[i + 1..].iter().collect();
            let attached = attached.strip_prefix('=').unwrap_or(&attached).to_string();
            let value = if !attached.is_empty() {
                Some(attached)
            } else {
                match words.next() {
                    Some(value) => Some(value.clone()),
                    None => {
                        line.pending = Some(arg);
                        return line;
                    }
                }
            };
            record(&mut line, &arg, &format!("-{short}"), value);
            break;
        }
    }
    line
}

fn record(line: &mut Line, arg: &Arg, word: &str, value: Option<String>) {
    if arg.is_global_set() {
        match (&value, word.contains('=')) {
            (_, true) => line.global_words.push(word.to_string()),
            (Some(value), false) => {
                line.global_words.push(word.to_string());
                line.global_words.push(value.clone());
            }
            (None, false) => line.global_words.push(word.to_string()),
        }
    }
    line.flags.entry(arg.get_id().to_string()).or_default().extend(value);
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The flags a word can be: the subcommand's own, then the global ones.
fn args_in_scope<'a>(root: &'a Command, sub: Option<&'a Command>) -> impl Iterator<Item = &'a Arg> {
    sub.into_iter().flat_map(|s| s.get_arguments()).chain(root.get_arguments()).filter(|a| !a.is_positional())
}

fn find_long(root: &Command, sub: Option<&Command>, name: &str) -> Option<Arg> {
    args_in_scope(root, sub).find(|a| a.get_long() == Some(name)).cloned()
}

fn find_short(root: &Command, sub: Option<&Command>, short: char) -> Option<Arg> {
    args_in_scope(root, sub).find(|a| a.get_short() == Some(short)).cloned()
}

fn help_text(arg: &Arg) -> String {
    arg.get_help().map(|h| h.to_string()).unwrap_or_default()
}

/// `--long` names of the flags in scope (the command's own first), and `-h/--help`.
fn flag_candidates(root: &Command, sub: Option<&Command>, current: &str) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = args_in_scope(root, sub)
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| Some(Candidate::new(format!("--{}", a.get_long()?), help_text(a))))
        .collect();
    candidates.push(Candidate::new("--help", "Help for this command"));
    let mut seen = std::collections::BTreeSet::new();
    candidates.retain(|c| seen.insert(c.value.clone()));
    filter(candidates, current)
}

fn subcommand_candidates(root: &Command) -> Vec<Candidate> {
    root.get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| Candidate::new(s.get_name(), s.get_about().map(|a| a.to_string()).unwrap_or_default()))
        .collect()
}

fn possible_values(arg: &Arg) -> Vec<Candidate> {
    arg.get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate::new(v.get_name(), v.get_help().map(|h| h.to_string()).unwrap_or_default()))
        .collect()
}

/// Candidates that start with what is typed.
fn filter(candidates: Vec<Candidate>, current: &str) -> Vec<Candidate> {
    candidates.into_iter().filter(|c| c.value.starts_with(current)).collect()
}

/// The value of a flag: from the cluster, the kubeconfig, the flag's own values, or file names.
async fn complete_value(line: &Line, arg: &Arg, current: &str, prefix: &str) -> Completion {
    let candidates = match arg.get_id().as_str() {
        "namespace" => namespaces(line).await,
        "context" => kubeconfig_names(line, |k| k.contexts.iter().map(|c| c.name.clone()).collect()),
        "cluster" => kubeconfig_names(line, |k| k.clusters.iter().map(|c| c.name.clone()).collect()),
        "user" => kubeconfig_names(line, |k| k.auth_infos.iter().map(|u| u.name.clone()).collect()),
        "kubeconfig" | "certificate_authority" | "client_certificate" | "client_key" => {
            return Completion::files();
        }
        "output" => output_formats(line),
        _ => possible_values(arg),
    };
    let mut completion = Completion::of(filter(candidates, current));
    for candidate in &mut completion.candidates {
        candidate.value.insert_str(0, prefix);
    }
    completion
}

/// `-o` values: what the command in question accepts.
fn output_formats(line: &Line) -> Vec<Candidate> {
    let formats = line.subcommand.as_deref().map(crate::commands::output_formats).unwrap_or_default();
    formats.into_iter().map(|f| Candidate::new(f, "")).collect()
}

/// The connection settings of the typed global flags, parsed by the real command line, with a short
/// request timeout unless one was given.
fn kube_flags(line: &Line) -> KubeFlags {
    let argv = std::iter::once("kubectl-milvus".to_string())
        .chain(line.global_words.iter().cloned())
        .chain(["version".to_string(), "--client".to_string()]);
    let mut flags = Cli::try_parse_from(argv).map(|cli| cli.kube).unwrap_or_default();
    if flags.request_timeout.and_then(|t| t.0).is_none_or(|t| t > LOOKUP_TIMEOUT) {
        flags.request_timeout = Some(RequestTimeout(Some(LOOKUP_TIMEOUT)));
    }
    // Requests are never logged into the middle of a completion.
    flags.verbosity = 0;
    flags
}

/// Runs a cluster look-up with the typed connection flags, bounded in time; nothing on any failure.
async fn with_cluster<F, Fut>(line: &Line, lookup: F) -> Vec<Candidate>
where
    F: FnOnce(Kube) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Candidate>>>,
{
    let flags = kube_flags(line);
    let work = async {
        let kube = Kube::connect(&flags).await.ok()?;
        lookup(kube).await
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, work).await.ok().flatten().unwrap_or_default()
}

fn name_label(line: &Line) -> String {
    line.flag("name_override").unwrap_or(milvus::DEFAULT_NAME_LABEL).to_string()
}

/// The releases in the namespace (every namespace with `status -A`), from one concurrent read.
async fn discover(kube: &Kube, scope: Scope, name_label: String) -> Option<Vec<Release>> {
    let reading = read::read(kube, &scope, Kinds { milvuses: true, ..Kinds::default() }).await.ok()?;
    let options = DiscoveryOptions { name_label, now: Timestamp::now() };
    Some(milvus::discover(&reading.inventory, &options))
}

async fn releases(line: &Line) -> Vec<Candidate> {
    let all = line.subcommand.as_deref() == Some("status") && line.has("all_namespaces");
    let name_label = name_label(line);
    with_cluster(line, |kube| async move {
        let scope = if all { Scope::AllNamespaces } else { Scope::Namespace(kube.namespace.clone()) };
        let releases = discover(&kube, scope, name_label).await?;
        let mut candidates: Vec<Candidate> = releases
            .iter()
            .map(|r| {
                Candidate::new(
                    &r.name,
                    format!("{} {} release in {}", r.managed_by.short(), r.mode.as_str(), r.namespace),
                )
            })
            .collect();
        // With -A a name can exist in several namespaces: offer it once.
        let mut seen = std::collections::BTreeSet::new();
        candidates.retain(|c| seen.insert(c.value.clone()));
        Some(candidates)
    })
    .await
}

/// `scale RELEASE <TAB>`: the release's workers (never coordinators) as `COMPONENT=`, or bare names
/// with `--replicas`; components already named are left out.
async fn complete_components(line: &Line, current: &str) -> Completion {
    if current.contains('=') {
        return Completion::none();
    }
    let bare = line.has("replicas");
    let release = line.positionals[0].clone();
    let named: Vec<String> =
        line.positionals[1..].iter().map(|t| t.split('=').next().unwrap_or_default().to_string()).collect();
    let name_label = name_label(line);
    let candidates = with_cluster(line, |kube| async move {
        let scope = Scope::Namespace(kube.namespace.clone());
        let releases = discover(&kube, scope, name_label).await?;
        let release = releases.into_iter().find(|r| r.name == release)?;
        Some(
            release
                .components
                .iter()
                .filter(|c| c.kind.is_scalable() && !named.contains(&c.display_name))
                .map(|c| {
                    let value = if bare { c.display_name.clone() } else { format!("{}=", c.display_name) };
                    Candidate::new(value, format!("{} replicas", c.desired))
                })
                .collect(),
        )
    })
    .await;
    let mut completion = Completion::of(filter(candidates, current));
    if !bare {
        completion.directive |= directive::NO_SPACE;
    }
    completion
}

async fn namespaces(line: &Line) -> Vec<Candidate> {
    with_cluster(line, |kube| async move {
        let list = Api::<Namespace>::all(kube.client.clone()).list(&ListParams::default()).await.ok()?;
        Some(list.items.into_iter().filter_map(|n| n.metadata.name).map(|n| Candidate::new(n, "")).collect())
    })
    .await
}

fn kubeconfig_names(
    line: &Line,
    names: impl FnOnce(&kube::config::Kubeconfig) -> Vec<String>,
) -> Vec<Candidate> {
    let flags = kube_flags(line);
    match kubectl_milvus::client::load_kubeconfig(&flags) {
        Ok(Some(kubeconfig)) => names(&kubeconfig).into_iter().map(|n| Candidate::new(n, "")).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut words: Vec<String> = line.split_whitespace().map(String::from).collect();
        if line.ends_with(' ') {
            words.push(String::new());
        }
        words
    }

    fn values(completion: &Completion) -> Vec<&str> {
        completion.candidates.iter().map(|c| c.value.as_str()).collect()
    }

    #[tokio::test]
    async fn subcommands_by_prefix() {
        let completion = complete(&words("st")).await;
        assert_eq!(values(&completion), ["status"]);
        assert_eq!(completion.directive, directive::NO_FILE_COMP);
        let all = complete(&words(" ")).await;
        for name in ["list", "status", "scale", "version", "completion", "options"] {
            assert!(values(&all).contains(&name), "{name}: {all:?}");
        }
    }

    #[tokio::test]
    async fn nothing_after_an_unknown_command() {
        assert_eq!(complete(&words("bogus ")).await, Completion::none());
    }

    #[tokio::test]
    async fn flags_of_the_command_and_global_ones() {
        let completion = complete(&words("status my-release --ex")).await;
        assert_eq!(values(&completion), ["--exit-code"]);
        let completion = complete(&words("list --name")).await;
        assert_eq!(values(&completion), ["--name-override", "--namespace"]);
    }

    #[tokio::test]
    async fn enumerated_values() {
        assert_eq!(values(&complete(&words("completion ")).await), ["bash", "zsh", "fish", "powershell"]);
        assert_eq!(values(&complete(&words("list --color ")).await), ["auto", "always", "never"]);
        assert_eq!(values(&complete(&words("list --color=n")).await), ["--color=never"]);
        assert_eq!(values(&complete(&words("version -o ")).await), ["json", "yaml"]);
        assert_eq!(values(&complete(&words("list -Ao w")).await), ["wide"]);
        assert_eq!(complete(&words("list --kubeconfig ")).await.directive, directive::DEFAULT);
    }

    #[test]
    fn the_line_is_parsed_as_clap_parses_it() {
        let root = Cli::command();
        let line =
            parse(&root, &words("-n prod scale --context=dev my-release querynode=2 -v=6 --replicas 3"));
        assert_eq!(line.subcommand.as_deref(), Some("scale"));
        assert_eq!(line.positionals, ["my-release", "querynode=2"]);
        assert_eq!(line.flag("namespace"), Some("prod"));
        assert_eq!(line.flag("context"), Some("dev"));
        assert_eq!(line.flag("replicas"), Some("3"));
        assert_eq!(line.global_words, ["-n", "prod", "--context=dev", "-v", "6"]);
        let flags = kube_flags(&line);
        assert_eq!(flags.namespace.as_deref(), Some("prod"));
        assert_eq!(flags.context.as_deref(), Some("dev"));
        assert_eq!(flags.request_timeout, Some(RequestTimeout(Some(LOOKUP_TIMEOUT))));
        assert_eq!(
            parse(&root, &words("ls -n")).pending.map(|a| a.get_id().to_string()).as_deref(),
            Some("namespace")
        );
    }

    #[tokio::test]
    async fn an_unreachable_cluster_gives_no_candidates_quickly() {
        let started = std::time::Instant::now();
        let completion = complete(&words("status --server https://127.0.0.1:9 --token x ")).await;
        assert!(completion.candidates.is_empty());
        assert_eq!(completion.directive, directive::NO_FILE_COMP);
        assert!(started.elapsed() < LOOKUP_TIMEOUT + Duration::from_secs(1));
    }

    #[test]
    fn rendering_follows_the_protocol() {
        let completion = Completion {
            candidates: vec![Candidate::new("querynode=", "2 replicas"), Candidate::new("proxy=", "")],
            directive: directive::NO_SPACE | directive::NO_FILE_COMP,
        };
        assert_eq!(completion.render(false), "querynode=\t2 replicas\nproxy=\n:6\n");
        assert_eq!(completion.render(true), "querynode=\nproxy=\n:6\n");
    }
}
