//! Distribution: the krew manifest passes krew's and krew-index's rules, the release archive installs and
//! runs as krew links it, the release workflow builds every platform of the manifest, shell completion
//! works through the real kubectl (`kubectl __complete milvus …`), and help reads like kubectl's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::support::*;

const MANIFEST: &str = "plugin-manifest/milvus.yaml";
const WORKFLOW: &str = ".github/workflows/release.yml";
const PLATFORMS: [(&str, &str); 5] =
    [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

fn is_sha256(value: &str) -> bool {
    value.len() == 64 && value.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The archive file name of a platform, as scripts/package.sh and the release workflow name it.
fn archive_name(os: &str, arch: &str) -> String {
    let ext = if os == "windows" { "zip" } else { "tar.gz" };
    format!("kubectl-milvus_{}_{os}_{arch}.{ext}", version())
}

/// Checks every rule krew (`krew install`) and the krew-index review apply to a manifest, and returns
/// each platform's (os, arch, sha256).
fn check_manifest(path: &Path) -> Vec<(String, String, String)> {
    let manifest = yaml_file(path);
    assert_eq!(manifest["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "milvus");
    let spec = &manifest["spec"];

    let version = text(&spec["version"], "spec.version");
    assert_eq!(version, self::version(), "spec.version must be the crate's version with a leading v");
    let semver: Vec<&str> = version.trim_start_matches('v').split(['.', '-', '+']).collect();
    assert!(version.starts_with('v') && semver.len() >= 3, "{version} is not v-prefixed semver");
    assert!(semver[..3].iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())), "{version}");

    let homepage = text(&spec["homepage"], "spec.homepage");
    assert!(homepage.starts_with("https://"), "{homepage}");

    let short = text(&spec["shortDescription"], "spec.shortDescription");
    assert!(!short.is_empty() && short.chars().count() <= 50 && !short.contains('\n'), "{short:?}");

    let description = text(&spec["description"], "spec.description");
    for line in description.lines() {
        assert!(line.chars().count() <= 80, "description line over 80 columns: {line:?}");
        let usage = line.trim_start().starts_with('$') || line.contains("kubectl milvus ");
        assert!(!usage, "the description must not hold usage examples: {line:?}");
    }
    let caveats = text(&spec["caveats"], "spec.caveats");
    assert!(caveats.contains("kubectl_complete-milvus"), "the caveats explain completion:\n{caveats}");

    let platforms = spec["platforms"].as_sequence().expect("spec.platforms");
    let mut seen = BTreeSet::new();
    let mut result = Vec::new();
    for platform in platforms {
        let selector = platform["selector"].as_mapping().expect("selector");
        assert_eq!(selector.len(), 1, "a selector uses matchLabels only: {selector:?}");
        let labels = platform["selector"]["matchLabels"].as_mapping().expect("matchLabels");
        let keys: BTreeSet<&str> = labels.keys().map(|k| text(k, "label")).collect();
        assert_eq!(keys, BTreeSet::from(["arch", "os"]), "selectors use only os and arch");
        let os = text(&labels[&Value::from("os")], "os").to_string();
        let arch = text(&labels[&Value::from("arch")], "arch").to_string();
        // Two platforms overlap when one selector matches the labels of the other: with both labels
        // always given, that is a repeated os/arch pair.
        assert!(seen.insert((os.clone(), arch.clone())), "platforms {os}/{arch} overlap");

        let uri = text(&platform["uri"], "uri");
        let expected = archive_name(&os, &arch);
        assert_eq!(
            uri,
            format!(
                "https://github.com/kubectl-milvus/kubectl-milvus/releases/download/{version}/{expected}"
            ),
            "{os}/{arch}: the URI names the release's archive"
        );
        let sha = text(&platform["sha256"], "sha256");
        assert!(is_sha256(sha), "{os}/{arch}: sha256 must be 64 lowercase hex digits: {sha}");
        let bin = text(&platform["bin"], "bin");
        assert_eq!(bin, if os == "windows" { "kubectl-milvus.exe" } else { "kubectl-milvus" });
        result.push((os, arch, sha.to_string()));
    }
    let expected: BTreeSet<(String, String)> =
        PLATFORMS.iter().map(|(os, arch)| (os.to_string(), arch.to_string())).collect();
    assert_eq!(seen, expected, "one platform for each of linux, darwin (amd64, arm64) and windows/amd64");
    result
}

#[test]
fn krew_manifest_passes_krew_index_rules() {
    let platforms = check_manifest(&repo(MANIFEST));
    // The committed manifest is the template the release renders: its checksums are placeholders, never
    // hand-written values that would be wrong for the archives a release builds.
    for (os, arch, sha) in platforms {
        assert_eq!(sha, "0".repeat(64), "{os}/{arch}: the committed manifest keeps the placeholder");
    }
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("a checksum").to_string()
}

fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

/// `scripts/package.sh --binary` with the test binary (so nothing is built twice) into `out`.
fn package(out: &Path) -> PathBuf {
    let run = Command::new("bash")
        .arg(repo("scripts/package.sh"))
        .args(["--binary".as_ref(), plugin_binary().as_os_str(), "--out".as_ref(), out.as_os_str()])
        .output()
        .expect("run scripts/package.sh");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "package.sh failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let (os, arch) = host_platform();
    let archive = out.join(archive_name(os, arch));
    assert!(archive.is_file(), "no {}:\n{stdout}", archive.display());
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{}  {}", sha256_of(&archive), archive.display()), "prints the sha256 last");
    archive
}

/// A kubectl reachable on a PATH that holds nothing else: a directory with a link to the real one.
fn kubectl_only_dir(root: &Path) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kubectl = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl on the PATH (.ci/run installs it)");
    let dir = root.join("tools");
    std::fs::create_dir_all(&dir).expect("tools dir");
    std::os::unix::fs::symlink(kubectl, dir.join("kubectl")).expect("link kubectl");
    dir
}

#[test]
fn release_archive_installs_and_runs_as_krew_links_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dist = tmp.path().join("dist");
    let archive = package(&dist);

    // The rendered manifest passes the same rules and carries this archive's checksum.
    let (os, arch) = host_platform();
    let rendered = check_manifest(&dist.join("milvus.yaml"));
    let (_, _, sha) = rendered.iter().find(|(o, a, _)| o == os && a == arch).expect("host platform");
    assert_eq!(sha, &sha256_of(&archive));
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("SHA256SUMS");
    assert_eq!(sums, format!("{sha}  {}\n", archive.file_name().unwrap().to_string_lossy()));

    // krew unpacks the archive into its store and links the `bin` into a directory on the PATH; the
    // README has users link the completion helper next to it.
    let store = tmp.path().join("store/milvus").join(version());
    std::fs::create_dir_all(&store).expect("store");
    let untar = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&store).status().expect("tar");
    assert!(untar.success());
    let mut files: Vec<String> = std::fs::read_dir(&store)
        .expect("store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["LICENSE", "README.md", "kubectl-milvus", "kubectl_complete-milvus"]);
    let license = std::fs::read_to_string(store.join("LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));

    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for file in ["kubectl-milvus", "kubectl_complete-milvus"] {
        std::os::unix::fs::symlink(store.join(file), bin.join(file)).expect("link");
    }
    let path = std::env::join_paths([bin, kubectl_only_dir(tmp.path())]).expect("PATH");
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("HOME", tmp.path())
            .env_remove("KUBECONFIG")
            .output()
            .expect("run kubectl");
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    };
    let out = kubectl(&["milvus", "version", "--client"]).success();
    assert_eq!(out.stdout, format!("Client Version: {}\n", version()));
    let completion = kubectl(&["__complete", "milvus", "st"]).success();
    assert!(completion.stdout.lines().any(|l| l.starts_with("status\t")), "{}", completion.stdout);
}

#[test]
fn release_workflow_builds_every_platform_of_the_manifest() {
    let workflow = yaml_file(&repo(WORKFLOW));
    let tags = workflow["on"]["push"]["tags"].as_sequence().expect("runs on pushed tags");
    assert_eq!(tags, &[Value::from("v*.*.*")]);
    let matrix = workflow["jobs"]["archive"]["strategy"]["matrix"]["include"].as_sequence().expect("matrix");
    let manifest = yaml_file(&repo(MANIFEST));
    let uris: BTreeSet<String> = manifest["spec"]["platforms"]
        .as_sequence()
        .expect("platforms")
        .iter()
        .map(|p| text(&p["uri"], "uri").rsplit('/').next().expect("file name").to_string())
        .collect();
    let mut produced = BTreeSet::new();
    for entry in matrix {
        let target = text(&entry["target"], "target");
        let platform = text(&entry["platform"], "platform");
        let ext = text(&entry["ext"], "ext");
        // The artifact path the workflow uploads, with the tag (= the version) substituted.
        let name = format!("kubectl-milvus_{}_{platform}.{ext}", version());
        // …is the file scripts/package.sh makes for that target…
        let script = Command::new("bash")
            .arg(repo("scripts/package.sh"))
            .args(["--target", target, "--name"])
            .output()
            .expect("run scripts/package.sh --name");
        assert_eq!(String::from_utf8_lossy(&script.stdout).trim(), name, "{target}");
        produced.insert(name);
    }
    // …and the manifest points at exactly those files.
    assert_eq!(produced, uris);

    let steps = |job: &str| -> String {
        workflow["jobs"][job]["steps"]
            .as_sequence()
            .expect("steps")
            .iter()
            .filter_map(|s| s["run"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(steps("archive").contains("scripts/package.sh --target ${{ matrix.target }}"));
    let upload = workflow["jobs"]["archive"]["steps"]
        .as_sequence()
        .expect("steps")
        .iter()
        .find_map(|s| s["with"]["path"].as_str())
        .expect("upload-artifact path");
    assert_eq!(
        upload,
        "target/dist/kubectl-milvus_${{ github.ref_name }}_${{ matrix.platform }}.${{ matrix.ext }}"
    );
    let release = steps("release");
    assert!(release.contains("scripts/package.sh --manifest-only --all-platforms"), "{release}");
    for file in ["kubectl-milvus_*.tar.gz", "kubectl-milvus_*.zip", "SHA256SUMS", "milvus.yaml"] {
        assert!(release.contains(&format!("target/dist/{file}")), "the release attaches {file}");
    }
}

/// `kubectl __complete milvus ARGS…` with the plugin and its completion helper on the PATH.
fn complete(kubeconfig: &Path, args: &[&str]) -> (Vec<String>, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("completion-path");
    std::fs::create_dir_all(&dir).expect("completion dir");
    for (link, target) in [
        ("kubectl-milvus", plugin_binary().to_path_buf()),
        ("kubectl_complete-milvus", repo("scripts/kubectl_complete-milvus")),
    ] {
        let link = dir.join(link);
        if std::fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink(target, &link);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir];
    paths.extend(std::env::split_paths(&path));
    let out = Command::new("kubectl")
        .arg("__complete")
        .arg("milvus")
        .args(args)
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("run kubectl __complete");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let mut lines: Vec<String> = stdout.lines().map(String::from).collect();
    let directive = lines.pop().unwrap_or_default();
    assert!(directive.starts_with(':'), "the last line is the directive:\n{stdout}");
    let values = lines.iter().map(|l| l.split('\t').next().unwrap_or_default().to_string()).collect();
    (values, directive)
}

#[test]
fn kubectl_completes_commands_releases_and_scalable_components() {
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").start();
    let kubeconfig = api.kubeconfig_path();

    let (values, directive) = complete(kubeconfig, &["st"]);
    assert_eq!(values, ["status"]);
    assert_eq!(directive, ":4");
    let (values, _) = complete(kubeconfig, &[""]);
    for command in ["list", "status", "scale", "version", "completion", "options"] {
        assert!(values.iter().any(|v| v == command), "{command} missing: {values:?}");
    }

    let (values, directive) = complete(kubeconfig, &["status", ""]);
    assert_eq!(values, ["my-release"]);
    assert_eq!(directive, ":4");
    let (values, _) = complete(kubeconfig, &["status", "my"]);
    assert_eq!(values, ["my-release"]);
    let (values, _) = complete(kubeconfig, &["status", "-n", "elsewhere", ""]);
    assert!(values.is_empty(), "-n selects the namespace: {values:?}");

    // Workers only, in COMPONENT= form, with no space after the `=`; never the coordinators.
    let (values, directive) = complete(kubeconfig, &["scale", "my-release", ""]);
    let values: BTreeSet<&str> = values.iter().map(String::as_str).collect();
    assert_eq!(values, BTreeSet::from(["datanode=", "proxy=", "querynode=", "streamingnode="]));
    assert_eq!(directive, ":6");
    let (values, _) = complete(kubeconfig, &["scale", "my-release", "querynode=2", "q"]);
    assert!(values.is_empty(), "a component already named is not offered again: {values:?}");
    let (values, directive) = complete(kubeconfig, &["scale", "my-release", "--replicas", "3", "q"]);
    assert_eq!((values, directive.as_str()), (vec!["querynode".to_string()], ":4"));

    let (values, _) = complete(kubeconfig, &["list", "-n", ""]);
    assert!(values.iter().any(|v| v == "default"), "namespaces after -n: {values:?}");
    let (values, _) = complete(kubeconfig, &["status", "--context", ""]);
    assert!(values.iter().any(|v| v == "admin"), "contexts after --context: {values:?}");
    let (values, _) = complete(kubeconfig, &["status", "my-release", "--exit"]);
    assert_eq!(values, ["--exit-code"]);
}

#[test]
fn completion_without_a_cluster_offers_nothing_quickly() {
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").start();
    let url = TestApi::unused_url();
    let started = Instant::now();
    let (values, directive) = complete(api.kubeconfig_path(), &["status", "--server", &url, ""]);
    assert!(values.is_empty(), "{values:?}");
    assert_eq!(directive, ":4");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn completion_scripts_for_the_standalone_binary() {
    for (shell, marker) in [
        ("bash", "-o bashdefault -o default kubectl-milvus"),
        ("zsh", "#compdef kubectl-milvus"),
        ("fish", "complete -c kubectl-milvus"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = run_via(Via::Kubectl, None, &["completion", shell]).success();
        assert!(out.stdout.contains(marker), "{shell}: no {marker:?} in\n{}", out.stdout);
        assert!(out.stdout.contains("kubeconfig"), "{shell}: global flags are completed too");
    }
    let bad = run_via(Via::Binary, None, &["completion", "tcsh"]).failure(1);
    assert!(bad.stderr.contains("invalid value 'tcsh'"), "{}", bad.stderr);
}

const POINTER: &str =
    "Use \"kubectl milvus options\" for a list of global command-line options (applies to all commands).\n";

#[test]
fn help_reads_like_kubectl_and_global_flags_are_listed_once() {
    let root = run_via(Via::Kubectl, None, &["--help"]).success().stdout;
    assert!(root.ends_with(POINTER), "{root}");
    assert!(!root.contains("--kubeconfig"), "{root}");
    for command in ["list", "status", "scale", "version", "completion", "options"] {
        let help = run_via(Via::Kubectl, None, &[command, "--help"]).success().stdout;
        let summary = help.lines().next().unwrap_or_default();
        assert!(!summary.is_empty() && summary.ends_with('.'), "{command}: a one-line summary:\n{help}");
        assert!(help.lines().nth(1) == Some(""), "{command}: a description after the summary:\n{help}");
        let examples =
            help.find("\nExamples:\n  # ").unwrap_or_else(|| panic!("{command}: examples\n{help}"));
        let options = help.find("\nOptions:\n").unwrap_or_else(|| panic!("{command}: options\n{help}"));
        let usage =
            help.find("\nUsage: kubectl milvus ").unwrap_or_else(|| panic!("{command}: usage\n{help}"));
        assert!(examples < options && options < usage, "{command}: examples, options, usage:\n{help}");
        assert!(help.contains(&format!("  kubectl milvus {command}")), "{command}: real commands\n{help}");
        assert!(!help.contains("--kubeconfig") && !help.contains("--as-group"), "{command}:\n{help}");
        assert!(help.ends_with(POINTER), "{command}:\n{help}");
    }
    let options = run_via(Via::Kubectl, None, &["options"]).success().stdout;
    assert!(options.starts_with("The following options can be passed to any command:\n"), "{options}");
    for flag in [
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "-n, --namespace",
        "-s, --server",
        "--token",
        "--certificate-authority",
        "--client-certificate",
        "--client-key",
        "--insecure-skip-tls-verify",
        "--tls-server-name",
        "--as ",
        "--as-group",
        "--request-timeout",
        "-v, --v",
        "--color",
    ] {
        assert_eq!(options.matches(flag).count(), 1, "{flag} once in:\n{options}");
    }
}

#[test]
fn version_json_carries_the_git_commit() {
    let json = run_via(Via::Binary, None, &["version", "--client", "-o", "json"]).success().json();
    assert_eq!(json["clientVersion"]["version"], version());
    // Built from a git work tree, the binary names its commit; a build without git simply has none.
    if let Some(commit) = json["clientVersion"]["gitCommit"].as_str() {
        assert!(commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
    }
}
