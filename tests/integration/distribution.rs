//! Distribution, checked with the tools users and krew-index use: the krew manifest passes krew-index's
//! validator (`validate-krew-manifest`) and our stricter reading of its review rules; the real krew
//! installs the release archive, upgrades the previous release to this one and uninstalls it without
//! a trace; the README's completion step works after a krew install; the Windows zip carries a
//! completion helper; the release workflow builds every platform of the manifest and passes
//! actionlint; shell completion works through the real kubectl (`kubectl __complete milvus …`); help
//! reads like kubectl's.
//!
//! krew, validate-krew-manifest and actionlint are built once by `scripts/tools.sh build` (`.ci/run`
//! does) and cached by version; a test that needs one fails, saying so, when it is missing. krew runs
//! with every path it writes under the test's temporary directory and no network but loopback (see
//! [`Krew`]).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::support::*;

const MANIFEST: &str = "plugin-manifest/milvus.yaml";
const WORKFLOW: &str = ".github/workflows/release.yml";
const PLATFORMS: [(&str, &str); 5] =
    [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")];
/// The Rust target the release workflow builds for each platform.
const TARGETS: [(&str, &str, &str); 5] = [
    ("linux", "amd64", "x86_64-unknown-linux-gnu"),
    ("linux", "arm64", "aarch64-unknown-linux-gnu"),
    ("darwin", "amd64", "x86_64-apple-darwin"),
    ("darwin", "arm64", "aarch64-apple-darwin"),
    ("windows", "amd64", "x86_64-pc-windows-msvc"),
];
/// Where the manifest's URIs point: the release downloads, `<RELEASES><tag>/<archive>`.
const RELEASES: &str = "https://github.com/kubectl-milvus/kubectl-milvus/releases/download/";
/// The version the upgrade test installs first, then upgrades from.
const PREVIOUS: &str = "v0.0.9";

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

fn run_output(output: Output) -> Run {
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        code: output.status.code().unwrap_or(-1),
    }
}

/// The archive file name of a platform, as scripts/package.sh and the release workflow name it.
fn archive_name(version: &str, os: &str, arch: &str) -> String {
    let ext = if os == "windows" { "zip" } else { "tar.gz" };
    format!("kubectl-milvus_{version}_{os}_{arch}.{ext}")
}

/// What every archive holds, at its root, and what krew copies into its store (`files:`).
fn archive_files(os: &str) -> [&'static str; 4] {
    if os == "windows" {
        ["kubectl-milvus.exe", "LICENSE", "README.md", "kubectl_complete-milvus.cmd"]
    } else {
        ["kubectl-milvus", "LICENSE", "README.md", "kubectl_complete-milvus"]
    }
}

/// The command of the README line that ends with `# comment`: the README's completion steps, which the
/// tests run as they are written.
fn readme_command(comment: &str) -> String {
    let readme = std::fs::read_to_string(repo("README.md")).expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.trim_end().ends_with(&format!("# {comment}")))
        .unwrap_or_else(|| panic!("no README line ends with `# {comment}`"));
    line.rsplit_once('#').expect("a comment").0.trim().to_string()
}

/// The README's step that puts the completion helper of a krew install next to the plugin.
fn readme_krew_completion_step() -> String {
    readme_command("krew install")
}

/// The README's step that removes it again after `kubectl krew uninstall milvus`.
fn readme_krew_completion_removal() -> String {
    readme_command("after kubectl krew uninstall milvus")
}

/// Checks every rule krew (`krew install`) and the krew-index review apply to a manifest, more than
/// validate-krew-manifest checks (line widths, usage examples in the description, URIs and file names,
/// the files each platform installs), and returns each platform's (os, arch, sha256).
fn check_manifest(path: &Path, version: &str) -> Vec<(String, String, String)> {
    let manifest = yaml_file(path);
    assert_eq!(manifest["apiVersion"], "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "milvus");
    let spec = &manifest["spec"];

    assert_eq!(text(&spec["version"], "spec.version"), version, "spec.version");
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
    // The caveats give the README's completion steps, for POSIX shells and for Windows.
    let caveats = text(&spec["caveats"], "spec.caveats");
    for line in caveats.lines() {
        assert!(line.chars().count() <= 80, "caveats line over 80 columns: {line:?}");
    }
    assert!(caveats.contains(&readme_krew_completion_step()), "the README's completion step:\n{caveats}");
    assert!(
        caveats.contains(r"Copy-Item ~\.krew\store\milvus\*\kubectl_complete-milvus.cmd ~\.krew\bin"),
        "the Windows completion step:\n{caveats}"
    );
    assert!(caveats.contains("kubectl krew uninstall milvus"), "what to do on uninstall:\n{caveats}");

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
        let expected = archive_name(version, &os, &arch);
        assert_eq!(uri, format!("{RELEASES}{version}/{expected}"), "{os}/{arch}: the URI names the archive");
        let sha = text(&platform["sha256"], "sha256");
        assert!(is_sha256(sha), "{os}/{arch}: sha256 must be 64 lowercase hex digits: {sha}");
        let files = archive_files(&os);
        assert_eq!(text(&platform["bin"], "bin"), files[0], "{os}/{arch}: bin");
        // krew copies exactly the archive's files into its store, the completion helper included.
        let copies: Vec<(&str, &str)> = platform["files"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{os}/{arch}: files"))
            .iter()
            .map(|f| (text(&f["from"], "files[].from"), text(&f["to"], "files[].to")))
            .collect();
        let expected: Vec<(&str, &str)> = files.iter().map(|f| (*f, ".")).collect();
        assert_eq!(copies, expected, "{os}/{arch}: files");
        result.push((os, arch, sha.to_string()));
    }
    let expected: BTreeSet<(String, String)> =
        PLATFORMS.iter().map(|(os, arch)| (os.to_string(), arch.to_string())).collect();
    assert_eq!(seen, expected, "one platform for each of linux, darwin (amd64, arm64) and windows/amd64");
    result
}

/// The executable of a distribution tool built by scripts/tools.sh (krew, validate-krew-manifest,
/// actionlint). Panics with tools.sh's message, which says how to build it, when it is not built.
fn tool(name: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(repo("scripts/tools.sh"))
        .args(["path", name])
        .output()
        .expect("run scripts/tools.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} is needed: {}", stderr.trim());
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The first executable `name` on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// `validate-krew-manifest -manifest PATH ARGS…`, the check krew-index runs on every plugin submission,
/// with its files in `dir`. Without `-skip-install` it runs `kubectl krew install --manifest` for every
/// platform (KREW_OS/KREW_ARCH), downloading the manifest's URIs, and looks for the LICENSE.
fn validate_krew_manifest(manifest: &Path, args: &[&str], dir: &Path) -> Run {
    // It runs that kubectl with an environment of its own (KREW_ROOT in its temporary directory,
    // KREW_OS, KREW_ARCH and PATH, nothing else): this kubectl sets HOME and TMPDIR (krew's download
    // staging) back to the test's directory before it runs the real one.
    let bin = dir.join("validator-bin");
    if !bin.exists() {
        std::fs::create_dir_all(&bin).expect("validator bin dir");
        let kubectl = on_path("kubectl").expect("kubectl on the PATH (.ci/run installs it)");
        let wrapper = bin.join("kubectl");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nHOME='{dir}' TMPDIR='{dir}' exec '{kubectl}' \"$@\"\n",
                dir = dir.display(),
                kubectl = kubectl.display()
            ),
        )
        .expect("write kubectl wrapper");
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod kubectl wrapper");
        std::os::unix::fs::symlink(tool("krew"), bin.join("kubectl-krew")).expect("link krew");
    }
    let out = Command::new(tool("validate-krew-manifest"))
        .arg("-manifest")
        .arg(manifest)
        .args(args)
        .env_clear()
        .env("PATH", std::env::join_paths([bin]).expect("PATH"))
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .current_dir(dir)
        .output()
        .expect("run validate-krew-manifest");
    run_output(out)
}

#[test]
fn krew_manifest_passes_krew_index_rules() {
    let platforms = check_manifest(&repo(MANIFEST), &version());
    // The committed manifest is the template the release renders: its checksums are placeholders, never
    // hand-written values that would be wrong for the archives a release builds.
    for (os, arch, sha) in platforms {
        assert_eq!(sha, "0".repeat(64), "{os}/{arch}: the committed manifest keeps the placeholder");
    }
    // krew-index's own validator agrees on its structure (installing needs the archives: see
    // `validate_krew_manifest_installs_every_platform_of_the_rendered_manifest`).
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = validate_krew_manifest(&repo(MANIFEST), &["-skip-install"], tmp.path()).success();
    assert!(out.stderr.contains("structural validation OK"), "{}", out.stderr);
    assert!(out.stderr.contains("no overlapping spec.platform[].selector"), "{}", out.stderr);
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

fn host_target() -> &'static str {
    let (os, arch) = host_platform();
    TARGETS.iter().find(|(o, a, _)| (*o, *a) == (os, arch)).map(|t| t.2).expect("a krew platform")
}

/// The plugin as the release archives carry it: the test binary, stripped as the release profile
/// strips (a tenth of the debug binary's size, so packaging it takes a second, not fifteen). The
/// debug binary itself when `strip` fails.
fn release_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let stripped = dir.join("kubectl-milvus.stripped");
        let partial = dir.join(format!("kubectl-milvus.stripped.{}", std::process::id()));
        let status = Command::new("strip").arg("-o").arg(&partial).arg(plugin_binary()).status();
        if status.is_ok_and(|s| s.success()) && std::fs::rename(&partial, &stripped).is_ok() {
            stripped
        } else {
            let _ = std::fs::remove_file(&partial);
            plugin_binary().to_path_buf()
        }
    })
}

/// A stand-in for the plugin of another platform: the archive layout and the manifest are what the
/// tests check there, never the program.
fn stand_in_binary(dir: &Path) -> PathBuf {
    let path = dir.join("stand-in");
    std::fs::write(&path, "#!/bin/sh\necho 'a stand-in for kubectl-milvus of another platform'\n")
        .expect("write stand-in");
    path
}

/// `scripts/package.sh --binary BINARY --target TARGET --out OUT [--version VERSION]`; returns the
/// archive, after checking that the last line printed is its checksum.
fn package(binary: &Path, target: &str, out: &Path, version: Option<&str>) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo("scripts/package.sh"))
        .arg("--binary")
        .arg(binary)
        .args(["--target", target])
        .arg("--out")
        .arg(out);
    if let Some(version) = version {
        cmd.args(["--version", version]);
    }
    let run = run_output(cmd.output().expect("run scripts/package.sh"));
    assert_eq!(run.code, 0, "package.sh failed:\n{}\n{}", run.stdout, run.stderr);
    let last = run.stdout.lines().last().unwrap_or_default();
    let (sha, archive) = last.split_once("  ").unwrap_or_else(|| panic!("no checksum line:\n{}", run.stdout));
    let archive = PathBuf::from(archive);
    assert!(archive.is_file(), "no {}:\n{}", archive.display(), run.stdout);
    assert_eq!(sha, sha256_of(&archive), "prints the archive's sha256 last");
    archive
}

/// The names in an archive, in order.
fn archive_listing(archive: &Path) -> Vec<String> {
    let out = if archive.extension().is_some_and(|e| e == "zip") {
        Command::new("unzip").arg("-Z1").arg(archive).output().expect("run unzip -Z1 (package unzip)")
    } else {
        Command::new("tar").arg("-tzf").arg(archive).output().expect("run tar")
    };
    assert!(out.status.success(), "list {}: {}", archive.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// GitHub's release downloads, on loopback: `GET /<tag>/<file>` answers with `<dir>/<tag>/<file>`, which
/// `scripts/package.sh --out <dir>/<tag>` wrote. Records the path of every request.
struct Downloads {
    url: String,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Downloads {
    fn serve(dir: &Path) -> Downloads {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (dir, log, stopped) = (dir.to_path_buf(), requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = Self::answer(&dir, stream, &log);
                }
            }
        });
        Downloads { url: format!("http://{addr}/"), addr, requests, stop, thread: Some(thread) }
    }

    fn answer(dir: &Path, mut stream: TcpStream, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request = String::new();
        reader.read_line(&mut request)?;
        let mut header = String::new();
        while reader.read_line(&mut header)? > 2 {
            header.clear();
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
        log.lock().expect("request log").push(path.clone());
        let file = dir.join(path.trim_start_matches('/'));
        match std::fs::read(&file) {
            Ok(body) if !path.contains("..") => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                );
                stream.write_all(head.as_bytes())?;
                stream.write_all(&body)
            }
            _ => {
                stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
        }
    }

    /// A manifest whose release URIs point here instead.
    fn localize(&self, manifest: &str) -> String {
        assert!(manifest.contains(RELEASES), "{manifest}");
        manifest.replace(RELEASES, &self.url)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("request log").clone()
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The real krew (`kubectl krew`, built by scripts/tools.sh) with every path it writes under one
/// temporary directory: HOME (so `~/.krew` is KREW_ROOT, as the README's steps assume), TMPDIR (krew's
/// download staging), KREW_ROOT, and the plugin index: a local git repository that `kubectl krew
/// update` clones and fetches (KREW_DEFAULT_INDEX_URI) in place of github.com/kubernetes-sigs/krew-index.
/// `kubectl krew install --manifest=FILE --archive=FILE` reads local files only; an index install or
/// upgrade downloads the manifest's URIs, which the tests point at a [`Downloads`] server on loopback.
/// The environment is otherwise empty, KREW_NO_UPGRADE_CHECK=1 (and a krew without a version stamp
/// skips that check anyway), and the PATH holds krew's bin directory and one directory with kubectl,
/// kubectl-krew and git only, so `kubectl plugin list` shows exactly what krew installed.
struct Krew {
    dir: tempfile::TempDir,
}

impl Krew {
    fn new() -> Krew {
        let krew = Krew { dir: tempfile::tempdir().expect("temp dir") };
        for dir in [krew.home(), krew.tmp(), krew.tools(), krew.index()] {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        let kubectl = on_path("kubectl").expect("kubectl on the PATH (.ci/run installs it)");
        let git = on_path("git").expect("git on the PATH: krew keeps its plugin index as a git clone");
        for (name, target) in [("kubectl", kubectl), ("kubectl-krew", tool("krew")), ("git", git)] {
            std::os::unix::fs::symlink(target, krew.tools().join(name)).expect("link a tool");
        }
        krew.git(&["init", "--quiet", "--initial-branch=main"]);
        krew
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn root(&self) -> PathBuf {
        self.home().join(".krew")
    }

    fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    fn store(&self) -> PathBuf {
        self.root().join("store/milvus")
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }

    fn tools(&self) -> PathBuf {
        self.dir.path().join("tools")
    }

    /// The work tree of the plugin index krew clones (`plugins/<name>.yaml`, as in krew-index).
    fn index(&self) -> PathBuf {
        self.dir.path().join("krew-index")
    }

    /// A directory of the test for inputs (archives, manifests).
    fn input(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("input").join(name);
        std::fs::create_dir_all(&dir).expect("input dir");
        dir
    }

    fn path(&self) -> OsString {
        std::env::join_paths([self.bin(), self.tools()]).expect("PATH")
    }

    fn command(&self, program: &str, args: &[&str], path: OsString) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp())
            .env("KREW_ROOT", self.root())
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("KREW_DEFAULT_INDEX_URI", self.index())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// `kubectl ARGS…` (`kubectl krew …` runs krew), with `env` added to the environment.
    fn kubectl_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.command("kubectl", args, self.path());
        cmd.envs(env.iter().copied());
        run_output(cmd.output().expect("run kubectl"))
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_env(&[], args)
    }

    /// A command line of the README, as a user's shell runs it (the system's tools on the PATH too).
    fn shell(&self, line: &str) -> Run {
        let mut path = std::env::split_paths(&self.path()).collect::<Vec<_>>();
        path.extend(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from));
        let mut cmd = self.command("sh", &["-c", line], std::env::join_paths(path).expect("PATH"));
        run_output(cmd.output().expect("run sh"))
    }

    fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=kubectl-milvus tests", "-c", "user.email=tests@kubectl-milvus.invalid"])
            .args(args)
            .current_dir(self.index())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.home())
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Commits `manifest` to the index as plugins/milvus.yaml: what a merged krew-index pull request
    /// does. `kubectl krew update` (and `upgrade`) then fetch it.
    fn publish(&self, manifest: &str) {
        std::fs::create_dir_all(self.index().join("plugins")).expect("plugins dir");
        std::fs::write(self.index().join("plugins/milvus.yaml"), manifest).expect("write manifest");
        self.git(&["add", "plugins/milvus.yaml"]);
        let version = serde_yaml::from_str::<Value>(manifest).expect("manifest")["spec"]["version"].clone();
        self.git(&["commit", "--quiet", "-m", &format!("milvus {}", text(&version, "spec.version"))]);
    }

    /// The receipt krew keeps for the installed plugin.
    fn receipt(&self) -> Value {
        yaml_file(&self.root().join("receipts/milvus.yaml"))
    }

    /// Everything under HOME and TMPDIR (krew's clone of the index aside: it follows the index), with
    /// the target of every link: what an install adds and an uninstall must take away again.
    fn tree(&self) -> BTreeSet<String> {
        fn walk(dir: &Path, base: &Path, skip: &Path, out: &mut BTreeSet<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries {
                let path = entry.expect("dir entry").path();
                if path == skip {
                    continue;
                }
                let name = path.strip_prefix(base).expect("under the base").display().to_string();
                let meta = std::fs::symlink_metadata(&path).expect("metadata");
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&path).expect("link");
                    out.insert(format!("{name} -> {}", target.display()));
                } else if meta.is_dir() {
                    out.insert(format!("{name}/"));
                    walk(&path, base, skip, out);
                } else {
                    out.insert(name);
                }
            }
        }
        let mut out = BTreeSet::new();
        let skip = self.root().join("index");
        walk(&self.home(), self.dir.path(), &skip, &mut out);
        walk(&self.tmp(), self.dir.path(), &skip, &mut out);
        out
    }

    /// The files of one installed version in krew's store.
    fn store_files(&self, version: &str) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(self.store().join(version))
            .unwrap_or_else(|e| panic!("store/milvus/{version}: {e}"))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    /// `kubectl __complete milvus st` offers `status`: kubectl found the completion helper on the PATH.
    fn assert_completes(&self) {
        let completion = self.kubectl(&["__complete", "milvus", "st"]).success();
        let values: Vec<&str> =
            completion.stdout.lines().map(|l| l.split('\t').next().unwrap_or("")).collect();
        assert_eq!(values, ["status", ":4"], "{}\n{}", completion.stdout, completion.stderr);
    }
}

fn sorted(files: [&str; 4]) -> Vec<String> {
    let mut files: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    files.sort();
    files
}

/// The README's install from local files: `kubectl krew install --manifest=FILE --archive=FILE` with
/// the manifest and archive scripts/package.sh made of the test binary, then the plugin through the
/// real kubectl, the README's completion step, and `kubectl krew uninstall milvus` (plus the README's
/// removal of the helper), after which HOME and TMPDIR are exactly as before the install.
#[test]
fn krew_installs_the_release_archive_and_uninstalls_it() {
    let krew = Krew::new();
    let dist = krew.input("dist");
    let archive = package(release_binary(), host_target(), &dist, None);
    let manifest = dist.join("milvus.yaml");

    // The rendered manifest passes our rules, carries this archive's checksum, and SHA256SUMS lists it.
    let (os, arch) = host_platform();
    let rendered = check_manifest(&manifest, &version());
    let (_, _, sha) = rendered.iter().find(|(o, a, _)| o == os && a == arch).expect("host platform");
    assert_eq!(sha, &sha256_of(&archive));
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("SHA256SUMS");
    assert_eq!(sums, format!("{sha}  {}\n", archive.file_name().unwrap().to_string_lossy()));
    assert_eq!(archive_listing(&archive), archive_files(os), "the archive's layout");

    // A user's krew has its default index (listing and uninstalling need one); ours is local.
    krew.publish(&std::fs::read_to_string(&manifest).expect("manifest"));
    let update = krew.kubectl(&["krew", "update"]).success();
    assert!(update.stderr.contains("Updated the local copy of plugin index."), "{}", update.stderr);
    let before = krew.tree();

    let install = krew
        .kubectl(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ])
        .success();
    assert!(install.stderr.contains("Installed plugin: milvus"), "{}", install.stderr);
    assert!(install.stderr.contains(&readme_krew_completion_step()), "caveats:\n{}", install.stderr);
    let receipt = krew.receipt();
    assert_eq!(receipt["spec"]["version"], Value::from(version()));
    assert_eq!(receipt["status"]["source"]["name"], "detached", "installed from a manifest file");
    assert_eq!(krew.store_files(&version()), sorted(archive_files(os)));
    let link = std::fs::read_link(krew.bin().join("kubectl-milvus")).expect("krew links the plugin");
    assert_eq!(link, krew.store().join(version()).join("kubectl-milvus"));
    assert_eq!(krew.kubectl(&["krew", "list"]).success().stdout, "detached/milvus\n");

    // The plugin, through the real kubectl, from krew's bin directory.
    let out = krew.kubectl(&["milvus", "version", "--client"]).success();
    assert_eq!(out.stdout, format!("Client Version: {}\n", version()));
    let plugins = krew.kubectl(&["plugin", "list"]).success();
    assert_eq!(
        plugins.stdout,
        format!(
            "The following compatible plugins are available:\n\n{}\n{}\n",
            krew.bin().join("kubectl-milvus").display(),
            krew.tools().join("kubectl-krew").display()
        ),
        "{}",
        plugins.stderr
    );

    // Completion: nothing until the README's step puts the helper next to the plugin.
    let none = krew.kubectl(&["__complete", "milvus", "st"]).success();
    assert_eq!(none.stdout, ":0\n", "no helper yet: kubectl's default completion");
    krew.shell(&readme_krew_completion_step()).success();
    krew.assert_completes();

    let uninstall = krew.kubectl(&["krew", "uninstall", "milvus"]).success();
    assert!(uninstall.stderr.contains("Uninstalled plugin: milvus"), "{}", uninstall.stderr);
    krew.shell(&readme_krew_completion_removal()).success();
    assert_eq!(krew.tree(), before, "krew uninstall and the README's removal leave nothing behind");
    let plugins = krew.kubectl(&["plugin", "list"]).success();
    assert!(!plugins.stdout.contains("kubectl-milvus"), "{}", plugins.stdout);
    krew.kubectl(&["milvus", "version", "--client"]).failure(1);
}

/// `kubectl krew upgrade` from the previous release to this one, the way users get new versions: the
/// plugin comes from the (local) index, the index gets the new manifest, `kubectl krew update` shows
/// the upgrade and `kubectl krew upgrade` installs it. (A `--manifest` install is "detached": krew
/// never upgrades it.)
///
/// The previous release is this same binary packaged as v0.0.9 (`scripts/package.sh --version
/// v0.0.9`): krew decides on the manifests' spec.version (semver, v0.0.9 < v0.1.0), installs each
/// version into store/milvus/<version>, and downloads each version's own archive (its own file name,
/// with its checksum in its manifest) from its URI; what it runs is never asked for its version. The archives are served on
/// loopback, at the paths of the release downloads.
#[test]
fn krew_upgrades_the_previous_release_to_this_one() {
    let krew = Krew::new();
    let releases = krew.input("releases");
    let previous = package(release_binary(), host_target(), &releases.join(PREVIOUS), Some(PREVIOUS));
    let current = package(release_binary(), host_target(), &releases.join(version()), None);
    check_manifest(&releases.join(PREVIOUS).join("milvus.yaml"), PREVIOUS);
    check_manifest(&releases.join(version()).join("milvus.yaml"), &version());
    assert_ne!(previous.file_name(), current.file_name(), "each version has its own archive");
    let downloads = Downloads::serve(&releases);
    let manifest = |tag: &str| {
        downloads
            .localize(&std::fs::read_to_string(releases.join(tag).join("milvus.yaml")).expect("manifest"))
    };
    let (os, arch) = host_platform();

    krew.publish(&manifest(PREVIOUS));
    krew.kubectl(&["krew", "update"]).success();
    let before = krew.tree();
    let install = krew.kubectl(&["krew", "install", "milvus"]).success();
    assert!(install.stderr.contains("Installed plugin: milvus"), "{}", install.stderr);
    assert_eq!(downloads.requests(), [format!("/{PREVIOUS}/{}", archive_name(PREVIOUS, os, arch))]);
    assert_eq!(krew.receipt()["spec"]["version"], PREVIOUS);
    assert_eq!(krew.receipt()["status"]["source"]["name"], "default");
    assert_eq!(krew.kubectl(&["krew", "list"]).success().stdout, "milvus\n");
    krew.kubectl(&["milvus", "version", "--client"]).success();
    krew.shell(&readme_krew_completion_step()).success();
    krew.assert_completes();

    // The new release reaches the index; krew sees it and upgrades.
    krew.publish(&manifest(&version()));
    let update = krew.kubectl(&["krew", "update"]).success();
    assert!(
        update.stderr.contains(&format!(
            "Upgrades available for installed plugins:\n    * milvus {PREVIOUS} -> {}",
            version()
        )),
        "{}",
        update.stderr
    );
    let upgrade = krew.kubectl(&["krew", "upgrade", "milvus"]).success();
    assert!(upgrade.stderr.contains("Upgraded plugin: milvus"), "{}", upgrade.stderr);
    assert_eq!(
        downloads.requests().last(),
        Some(&format!("/{}/{}", version(), archive_name(&version(), os, arch)))
    );
    assert_eq!(krew.receipt()["spec"]["version"], Value::from(version()));
    let versions: Vec<String> = std::fs::read_dir(krew.store())
        .expect("store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(versions, [version()], "the previous version is removed from the store");
    assert_eq!(krew.store_files(&version()), sorted(archive_files(os)));
    let link = std::fs::read_link(krew.bin().join("kubectl-milvus")).expect("link");
    assert_eq!(link, krew.store().join(version()).join("kubectl-milvus"));
    let out = krew.kubectl(&["milvus", "version", "--client"]).success();
    assert_eq!(out.stdout, format!("Client Version: {}\n", version()));
    // The helper the README put in krew's bin directory is a copy that runs the kubectl-milvus next to
    // it (a link into store/milvus/v0.0.9 would now point nowhere): completion still works.
    krew.assert_completes();
    let again = krew.kubectl(&["krew", "upgrade"]).success();
    assert!(
        again.stderr.contains("Skipping plugin milvus, it is already on the newest version"),
        "{}",
        again.stderr
    );
    assert_eq!(downloads.requests().len(), 2, "nothing downloaded again");

    krew.kubectl(&["krew", "uninstall", "milvus"]).success();
    krew.shell(&readme_krew_completion_removal()).success();
    assert_eq!(krew.tree(), before, "nothing left behind");
}

/// krew-index's validator on the manifest a release renders: package.sh archives every platform (the
/// test binary for this machine, a stand-in elsewhere: the validator installs but never runs them),
/// renders the manifest with their checksums, and validate-krew-manifest installs each platform with
/// the real krew (KREW_OS/KREW_ARCH), downloading from loopback, and finds the LICENSE.
#[test]
fn validate_krew_manifest_installs_every_platform_of_the_rendered_manifest() {
    let krew = Krew::new();
    let releases = krew.input("releases");
    let dist = releases.join(version());
    let stand_in = stand_in_binary(&krew.input("stand-in"));
    let host = host_target();
    for (os, arch, target) in TARGETS {
        let binary = if target == host { release_binary() } else { stand_in.as_path() };
        let archive = package(binary, target, &dist, None);
        assert_eq!(
            archive.file_name().unwrap().to_string_lossy(),
            archive_name(&version(), os, arch),
            "{target}"
        );
        assert_eq!(archive_listing(&archive), archive_files(os), "{os}/{arch}: the archive's layout");
    }
    let rendered = dist.join("milvus.yaml");
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("SHA256SUMS");
    for (os, arch, sha) in check_manifest(&rendered, &version()) {
        let line = format!("{sha}  {}", archive_name(&version(), &os, &arch));
        assert!(sums.lines().any(|l| l == line), "{os}/{arch}: {line} in SHA256SUMS:\n{sums}");
        assert_eq!(sha, sha256_of(&dist.join(archive_name(&version(), &os, &arch))));
    }

    let tmp = krew.tmp();
    let out = validate_krew_manifest(&rendered, &["-skip-install"], &tmp).success();
    assert!(out.stderr.contains("structural validation OK"), "{}", out.stderr);

    let downloads = Downloads::serve(&releases);
    let served = krew.input("served").join("milvus.yaml");
    std::fs::write(&served, downloads.localize(&std::fs::read_to_string(&rendered).expect("manifest")))
        .expect("write manifest");
    let out = validate_krew_manifest(&served, &[], &tmp).success();
    assert!(out.stderr.contains("all 5 spec.platforms installed fine"), "{}", out.stderr);
    let requested: BTreeSet<String> = downloads.requests().into_iter().collect();
    let expected: BTreeSet<String> = PLATFORMS
        .iter()
        .map(|(os, arch)| format!("/{}/{}", version(), archive_name(&version(), os, arch)))
        .collect();
    assert_eq!(requested, expected, "every platform's archive was installed");

    // It does check the archives: a checksum that is not the archive's fails.
    let (os, arch) = host_platform();
    let wrong = std::fs::read_to_string(&served).expect("manifest").replacen(
        &sha256_of(&dist.join(archive_name(&version(), os, arch))),
        &"0".repeat(64),
        1,
    );
    std::fs::write(&served, wrong).expect("write manifest");
    let out = validate_krew_manifest(&served, &[], &tmp);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("checksum does not match"), "{}", out.stderr);
    // Its temporary KREW_ROOTs and krew's download staging were in the test's directory, and are gone.
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .expect("tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["validator-bin"]);
}

/// The Windows zip carries `kubectl_complete-milvus.cmd`, which kubectl on Windows runs for
/// `kubectl_complete-milvus` (it looks the name up with the PATHEXT extensions), forwarding to the
/// `kubectl-milvus.exe` beside it. Packaged around a stand-in kubectl-milvus.exe (no cross build), and
/// installed by the real krew as on Windows (KREW_OS=windows), whose files: copy the helper too.
#[test]
fn windows_zip_carries_a_completion_helper() {
    let krew = Krew::new();
    let dist = krew.input("dist");
    let stand_in = stand_in_binary(&krew.input("stand-in"));
    let zip = package(&stand_in, "x86_64-pc-windows-msvc", &dist, None);
    assert_eq!(zip.file_name().unwrap().to_string_lossy(), archive_name(&version(), "windows", "amd64"));
    assert_eq!(archive_listing(&zip), archive_files("windows"), "everything at the zip's root");

    let unzip = Command::new("unzip").arg("-p").arg(&zip).arg("kubectl_complete-milvus.cmd").output();
    let helper = String::from_utf8(unzip.expect("run unzip -p").stdout).expect("UTF-8");
    assert!(!helper.is_empty() && helper.ends_with("\r\n"), "{helper:?}");
    assert!(
        helper.split_inclusive('\n').all(|l| l.ends_with("\r\n")),
        "CRLF line ends for cmd.exe:\n{helper:?}"
    );
    let lines: Vec<&str> = helper.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(lines[0], "@echo off", "prints nothing but the plugin's completions");
    for line in [
        r#"set "plugin=%~dp0kubectl-milvus.exe""#,
        r#"if not exist "%plugin%" set "plugin=kubectl-milvus.exe""#,
        r#""%plugin%" __complete %*"#,
        "exit /b %ERRORLEVEL%",
    ] {
        assert!(lines.contains(&line), "{line:?} in\n{helper}");
    }
    let script = std::fs::read_to_string(repo("scripts/kubectl_complete-milvus.cmd")).expect("helper");
    assert_eq!(script.replace("\r\n", "\n"), helper.replace("\r\n", "\n"), "the zip carries scripts/…cmd");

    krew.publish(&std::fs::read_to_string(dist.join("milvus.yaml")).expect("manifest"));
    krew.kubectl(&["krew", "update"]).success();
    let windows = [("KREW_OS", "windows"), ("KREW_ARCH", "amd64")];
    let install = krew.kubectl_env(
        &windows,
        &[
            "krew",
            "install",
            &format!("--manifest={}", dist.join("milvus.yaml").display()),
            &format!("--archive={}", zip.display()),
        ],
    );
    let install = install.success();
    assert!(
        install.stderr.contains(r"kubectl_complete-milvus.cmd ~\.krew\bin"),
        "caveats:\n{}",
        install.stderr
    );
    assert_eq!(krew.store_files(&version()), sorted(archive_files("windows")));
    let link = std::fs::read_link(krew.bin().join("kubectl-milvus.exe")).expect("krew links the .exe");
    assert_eq!(link, krew.store().join(version()).join("kubectl-milvus.exe"));
    krew.kubectl_env(&windows, &["krew", "uninstall", "milvus"]).success();
    assert!(!krew.store().exists() && !krew.bin().join("kubectl-milvus.exe").exists());
}

#[test]
fn release_workflow_passes_actionlint() {
    let actionlint = tool("actionlint");
    let shellcheck = on_path("shellcheck").unwrap_or_else(|| {
        panic!(
            "shellcheck is needed: actionlint checks the workflow's run: scripts with it; install it \
             (apt-get install shellcheck; bash .ci/run does)"
        )
    });
    let lint = |dir: &Path, file: &str| {
        let out = Command::new(&actionlint)
            .args(["-no-color", "-pyflakes="])
            .arg(format!("-shellcheck={}", shellcheck.display()))
            .arg(file)
            .current_dir(dir)
            .output()
            .expect("run actionlint");
        run_output(out)
    };
    let out = lint(&repo("."), WORKFLOW);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, ""),
        "actionlint {WORKFLOW}:\n{}{}",
        out.stdout,
        out.stderr
    );

    // It does check, shellcheck included: an unknown matrix property and an unquoted variable fail.
    let tmp = tempfile::tempdir().expect("temp dir");
    let workflows = tmp.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("workflows dir");
    std::fs::write(
        workflows.join("broken.yml"),
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-22.04\n    strategy:\n      matrix:\n        target: [a]\n    \
         steps:\n      - run: echo ${{ matrix.nope }}\n      - run: ls $HOME/*\n",
    )
    .expect("write workflow");
    let out = lint(tmp.path(), ".github/workflows/broken.yml");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(r#"property "nope" is not defined"#), "{}", out.stdout);
    assert!(
        out.stdout.contains("shellcheck reported issue") && out.stdout.contains("SC2086"),
        "{}",
        out.stdout
    );
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
