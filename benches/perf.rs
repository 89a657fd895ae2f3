//! The plugin against its peers on the same server: `kubectl-milvus status` / `list -A`, `kubectl get
//! pods` with the release's (or Milvus's) label selector, and a raw `curl` of that pods list, run in
//! interleaved rounds (plugin, kubectl, curl, plugin, kubectl, curl, …) so that the machine's load
//! falls on all three alike. Per case it prints each command's median wall time and peak RSS, the
//! plugin's time as a multiple of each peer's (the median of the per-round ratios), and each
//! command's requests per run and the server's time answering them.
//!
//! ```text
//! cargo bench --bench perf [-- --runs 7 --case NAME --backend kube-apiserver --json
//!                              --pods 1000,10000 --foreign-pods 20000 --releases 200
//!                              --release-pods 20000 --plugin PATH]
//! ```
//!
//! Cases: `status-fixture` (the Helm fixture as installed), `status-<N>` for each size of `--pods`
//! (the release grown to N pods by its querynode Deployment), `list-foreign` (`list -A` beside a
//! Deployment of another application with `--foreign-pods` pods) and `list-releases` (`list -A`
//! over `--releases` copies of the release with `--release-pods` Milvus pods in all).

// A measurement harness, not the plugin: a failed set-up ends the run with its reason.
#![allow(clippy::expect_used)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use milvus_test_api::{Backend, TestApi};
use serde_json::{Value, json};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-milvus");
const RELEASE: &str = "my-release";
const QUERYNODE: &str = "my-release-milvus-querynode";

struct Options {
    runs: usize,
    cases: Vec<String>,
    backend: Backend,
    json: bool,
    pods: Vec<i64>,
    foreign_pods: i64,
    releases: usize,
    release_pods: i64,
    /// The plugin binary measured: this build's unless `--plugin PATH` names another (an older build
    /// to compare with, or a wrapper that runs it under a profiler).
    plugin: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo bench --bench perf -- [--runs N] [--case NAME]... [--backend loopback|kube-apiserver]\n\
         \x20      [--pods N[,N...]] [--foreign-pods N] [--releases N] [--release-pods N] [--plugin PATH] [--json]"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        runs: 7,
        cases: Vec::new(),
        backend: Backend::Loopback,
        json: false,
        pods: vec![1000, 10_000],
        foreign_pods: 20_000,
        releases: 200,
        release_pods: 20_000,
        plugin: PLUGIN.into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match arg.as_str() {
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| usage()),
            "--case" => o.cases.push(value()),
            "--backend" => {
                o.backend = match value().as_str() {
                    "loopback" => Backend::Loopback,
                    "kube-apiserver" => Backend::KubeApiserver,
                    _ => usage(),
                }
            }
            "--pods" => {
                o.pods = value().split(',').map(|n| n.trim().parse().unwrap_or_else(|_| usage())).collect()
            }
            "--foreign-pods" => o.foreign_pods = value().parse().unwrap_or_else(|_| usage()),
            "--releases" => o.releases = value().parse().unwrap_or_else(|_| usage()),
            "--release-pods" => o.release_pods = value().parse().unwrap_or_else(|_| usage()),
            "--plugin" => o.plugin = value(),
            "--json" => o.json = true,
            "--bench" => {} // cargo bench passes it
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if o.runs == 0 || o.releases == 0 {
        usage()
    }
    o
}

/// One benchmark case: what is loaded, and the selector kubectl and curl list pods with.
#[derive(Clone)]
enum Setup {
    /// The Helm fixture in `default`, its querynode Deployment grown so that the namespace holds
    /// this many pods (`None`: as installed).
    Status(Option<i64>),
    /// The Helm fixture beside Deployment `shop/web` with this many pods.
    Foreign(i64),
    /// This many copies of the Helm fixture (`rel-NNN` in `ns-NNN`), with this many Milvus pods in all.
    Releases(usize, i64),
}

struct Case {
    name: String,
    setup: Setup,
}

fn cases(o: &Options) -> Vec<Case> {
    let mut all = vec![Case { name: "status-fixture".into(), setup: Setup::Status(None) }];
    for &n in &o.pods {
        all.push(Case { name: format!("status-{n}"), setup: Setup::Status(Some(n)) });
    }
    all.push(Case { name: "list-foreign".into(), setup: Setup::Foreign(o.foreign_pods) });
    all.push(Case { name: "list-releases".into(), setup: Setup::Releases(o.releases, o.release_pods) });
    all
}

fn pods_in(api: &TestApi, namespace: Option<&str>, selector: Option<&str>) -> i64 {
    api.list_json("", "pods", namespace, selector).map(|p| p.len() as i64).expect("list pods")
}

/// Set a workload's replicas and wait for the server to converge (a real control plane creates
/// thousands of pods at its controllers' request rate, longer than one settle timeout).
fn grow(api: &TestApi, namespace: &str, name: &str, replicas: i64) {
    let started = Instant::now();
    let mut result = api.set_replicas(("apps", "deployments"), namespace, name, replicas);
    while let Err(e) = result {
        assert!(
            e.contains("not settled") && started.elapsed() < Duration::from_secs(1800),
            "scale {namespace}/{name} to {replicas}: {e}"
        );
        result = api.settle();
    }
}

fn foreign_objects() -> Vec<Value> {
    let labels = json!({"app": "web", "tier": "frontend"});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": labels},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        }),
    ]
}

/// Start the server of a case and grow it to its size. Returns the server and a description.
fn start(setup: &Setup, backend: Backend) -> (TestApi, String) {
    // Pods keep made-up IPs on the real backend: its pod network holds 2,045, the cases tens of thousands.
    let builder = TestApi::builder().backend(backend).pod_network(false);
    match *setup {
        Setup::Status(size) => {
            let api = builder.fixture("helm/default.yaml").helm_install(true).start();
            if let Some(n) = size {
                let others = pods_in(&api, Some("default"), None) - 1;
                grow(&api, "default", QUERYNODE, (n - others).max(0));
            }
            let all = pods_in(&api, Some("default"), None);
            let selected =
                pods_in(&api, Some("default"), Some(&format!("app.kubernetes.io/instance={RELEASE}")));
            let about = format!(
                "release {RELEASE}: {all} pods in its namespace (Milvus, etcd, MinIO, Pulsar), \
                 {selected} of them labelled app.kubernetes.io/instance={RELEASE}"
            );
            (api, about)
        }
        Setup::Foreign(n) => {
            let api =
                builder.fixture("helm/default.yaml").helm_install(true).objects(foreign_objects()).start();
            grow(&api, "shop", "web", n);
            let web = pods_in(&api, Some("shop"), None);
            let all = pods_in(&api, None, None);
            let milvus = pods_in(&api, None, Some("app.kubernetes.io/name=milvus"));
            let about = format!(
                "release {RELEASE} beside Deployment shop/web: {web} web pods, {all} pods in all, \
                 {milvus} labelled app.kubernetes.io/name=milvus"
            );
            (api, about)
        }
        Setup::Releases(count, milvus_pods) => {
            // The Milvus pods of one release as installed, from the loopback (in-process, at once).
            let one = TestApi::builder()
                .backend(Backend::Loopback)
                .fixture("helm/default.yaml")
                .helm_install(true)
                .start();
            let per_release = pods_in(&one, None, Some("app.kubernetes.io/name=milvus"));
            drop(one);
            // The missing Milvus pods spread over the releases' querynodes, set before loading so
            // that a real control plane converges once rather than once a release.
            let mut builder = builder;
            let mut missing = (milvus_pods - per_release * count as i64).max(0);
            for i in 0..count {
                let (name, ns) = (release_name(i), format!("ns-{i:03}"));
                builder = builder.fixture_as("helm/default.yaml", &name, &ns).helm_install(true);
                let extra = missing / (count - i) as i64;
                missing -= extra;
                if extra > 0 {
                    builder = builder.replicas(&format!("{ns}/{name}-milvus-querynode"), 1 + extra);
                }
            }
            let api = builder.start();
            let all = pods_in(&api, None, None);
            let milvus = pods_in(&api, None, Some("app.kubernetes.io/name=milvus"));
            let about = format!(
                "{count} releases in {count} namespaces: {milvus} pods labelled \
                 app.kubernetes.io/name=milvus, {all} pods in all"
            );
            (api, about)
        }
    }
}

fn release_name(i: usize) -> String {
    format!("rel-{i:03}")
}

/// A URL query value, percent-encoded.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One of the commands compared.
struct Contender {
    label: String,
    program: String,
    args: Vec<String>,
    /// The pods its output should show (kubectl: table rows; curl: list items), checked once.
    expect_pods: Option<i64>,
    curl: bool,
}

impl Contender {
    fn command(&self, kubeconfig: &Path) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args).env("KUBECONFIG", kubeconfig).stdin(Stdio::null());
        c
    }
}

/// Wall time and peak RSS of one run.
struct Sample {
    wall: Duration,
    max_rss_kib: i64,
}

/// The environment variable that makes this binary the [`Runner`] process.
const RUNNER_ENV: &str = "KUBECTL_MILVUS_PERF_RUNNER";

/// The process that starts the measured commands. `ru_maxrss` of a child counts the memory of the
/// process it was forked from (the kernel keeps the larger of the two at `exec`), and this
/// harness holds the loopback API's thousands of pods: so the commands are started by a small
/// copy of this binary, started before anything is loaded, that reports each run's wall time
/// (spawn to reaping) and its `wait4` peak RSS over a pipe.
struct Runner {
    /// The runner's own peak RSS (KiB), as last reported.
    own_rss_kib: i64,
    child: std::process::Child,
    replies: std::io::BufReader<std::process::ChildStdout>,
}

impl Runner {
    fn start() -> Runner {
        let exe = std::env::current_exe().expect("this binary's path");
        let mut child = Command::new(exe)
            .env(RUNNER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the runner");
        let replies = std::io::BufReader::new(child.stdout.take().expect("runner stdout"));
        Runner { own_rss_kib: 0, child, replies }
    }

    /// Run `program args` with `KUBECONFIG`, stdout to /dev/null and stderr to `stderr`.
    fn measure(&mut self, program: &str, args: &[String], kubeconfig: &Path, stderr: &Path) -> Sample {
        use std::io::BufRead as _;
        let request = json!({
            "program": program, "args": args,
            "kubeconfig": kubeconfig.display().to_string(), "stderr": stderr.display().to_string(),
        });
        let stdin = self.child.stdin.as_mut().expect("runner stdin");
        writeln!(stdin, "{request}").and_then(|()| stdin.flush()).expect("write to the runner");
        let mut line = String::new();
        self.replies.read_line(&mut line).expect("read from the runner");
        let reply: Value = serde_json::from_str(&line).expect("the runner's reply");
        if reply["ok"] != true {
            let text = std::fs::read_to_string(stderr).unwrap_or_default();
            panic!("{program} {} failed ({}):\n{text}", args.join(" "), reply["error"]);
        }
        self.own_rss_kib = reply["runner_rss_kib"].as_i64().unwrap_or(0);
        Sample {
            wall: Duration::from_nanos(reply["wall_ns"].as_u64().expect("wall_ns")),
            max_rss_kib: reply["max_rss_kib"].as_i64().expect("max_rss_kib"),
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // end of input: the runner exits
        let _ = self.child.wait();
    }
}

/// The runner's side: one JSON request a line on stdin, one JSON reply a line on stdout.
fn runner_main() {
    use std::io::BufRead as _;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("read a request");
        let req: Value = serde_json::from_str(&line).expect("a request");
        let args: Vec<&str> =
            req["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
        let reply = match run_measured(
            req["program"].as_str().expect("program"),
            &args,
            req["kubeconfig"].as_str().expect("kubeconfig"),
            req["stderr"].as_str().expect("stderr"),
        ) {
            Ok((wall, rss)) => json!({
                "ok": true, "wall_ns": wall.as_nanos() as u64, "max_rss_kib": rss, "runner_rss_kib": own_peak_rss_kib(),
            }),
            Err(e) => json!({"ok": false, "error": e}),
        };
        writeln!(out, "{reply}").and_then(|()| out.flush()).expect("write a reply");
    }
}

/// This process's peak RSS (VmHWM) in KiB: a floor under every child's `ru_maxrss`.
fn own_peak_rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().to_string())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Spawn, reap with `wait4`: wall time from spawn to reaping, and the child's peak RSS in KiB.
fn run_measured(
    program: &str,
    args: &[&str],
    kubeconfig: &str,
    stderr: &str,
) -> Result<(Duration, i64), String> {
    let err = File::create(stderr).map_err(|e| format!("{stderr}: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).env("KUBECONFIG", kubeconfig).stdin(Stdio::null()).stdout(Stdio::null()).stderr(err);
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawn: {e}"))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| e.to_string())?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our unreaped child; `status` and `usage` are valid for writes.
    let reaped = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
    let wall = started.elapsed();
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    drop(child); // reaped above; dropping a Child neither waits nor kills
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("wait status {status}"));
    }
    Ok((wall, usage.ru_maxrss))
}

/// Run once with the output captured and check it shows the expected pods.
fn check(c: &Contender, kubeconfig: &Path) {
    let out = c.command(kubeconfig).output().expect("spawn");
    assert!(out.status.success(), "{} failed:\n{}", c.label, String::from_utf8_lossy(&out.stderr));
    let Some(want) = c.expect_pods else { return };
    let got = if c.curl {
        let list: Value = serde_json::from_slice(&out.stdout).expect("curl: a JSON list");
        list["items"].as_array().map_or(0, Vec::len) as i64
    } else {
        String::from_utf8_lossy(&out.stdout).lines().count() as i64 - 1 // the header
    };
    assert_eq!(got, want, "{} shows {got} pods, the server holds {want}", c.label);
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { f64::midpoint(xs[n / 2 - 1], xs[n / 2]) }
}

struct Stats {
    label: String,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    rss_mib: f64,
    /// Median of (plugin ÷ this) over the rounds.
    ratio: f64,
    requests: f64,
    /// Median over the runs of the server's time answering the run's requests (summed).
    server_ms: f64,
}

struct CaseResult {
    name: String,
    about: String,
    stats: Vec<Stats>,
}

fn run_case(case: &Case, o: &Options, tmp: &Path, runner: &mut Runner) -> CaseResult {
    let loading = Instant::now();
    eprintln!("--- {}: loading ({})", case.name, o.backend.name());
    let (api, about) = start(&case.setup, o.backend);
    eprintln!("--- {}: {about} (loaded in {:.0?})", case.name, loading.elapsed());
    let kubeconfig = api.kubeconfig_path().to_path_buf();

    // curl reads the token from a header file (not its command line) and trusts the server's CA.
    let ca = tmp.join(format!("{}-ca.pem", case.name));
    std::fs::write(&ca, api.ca_pem()).expect("write CA");
    let header = tmp.join(format!("{}-auth", case.name));
    {
        let mut f = File::create(&header).expect("header file");
        let token = api.token("admin").expect("admin token");
        writeln!(f, "Authorization: Bearer {token}").expect("write header file");
    }
    // kubectl's discovery cache: one per case, warmed by the check run, shared by every round.
    let cache = tmp.join(format!("{}-kubectl-cache", case.name));

    let (plugin_args, namespace, selector): (&[&str], Option<&str>, String) = match case.setup {
        Setup::Status(_) => {
            (&["status", RELEASE], Some("default"), format!("app.kubernetes.io/instance={RELEASE}"))
        }
        Setup::Foreign(_) | Setup::Releases(..) => {
            (&["list", "-A"], None, "app.kubernetes.io/name=milvus".into())
        }
    };
    let selected = pods_in(&api, namespace, Some(&selector));
    let path = match namespace {
        Some(ns) => format!("/api/v1/namespaces/{ns}/pods"),
        None => "/api/v1/pods".into(),
    };
    let url = format!("{}{path}?labelSelector={}", api.url(), encode(&selector));
    let mut kubectl_args: Vec<String> =
        vec!["get".into(), "pods".into(), "-l".into(), selector.clone(), "--cache-dir".into()];
    kubectl_args.push(cache.display().to_string());
    if namespace.is_none() {
        kubectl_args.push("-A".into());
    }
    let contenders = [
        Contender {
            label: format!("kubectl-milvus {}", plugin_args.join(" ")),
            program: o.plugin.clone(),
            args: plugin_args.iter().map(|s| (*s).to_string()).collect(),
            expect_pods: None,
            curl: false,
        },
        Contender {
            label: format!("kubectl get pods{} -l {selector}", if namespace.is_none() { " -A" } else { "" }),
            program: "kubectl".into(),
            args: kubectl_args,
            expect_pods: Some(selected),
            curl: false,
        },
        Contender {
            label: format!("curl GET {path}?labelSelector=…"),
            program: "curl".into(),
            args: vec![
                "-sSf".into(),
                "--cacert".into(),
                ca.display().to_string(),
                "-H".into(),
                format!("@{}", header.display()),
                url,
            ],
            expect_pods: Some(selected),
            curl: true,
        },
    ];
    for c in &contenders {
        check(c, &kubeconfig); // also warms kubectl's cache
    }

    let stderr = tmp.join("stderr");
    let mut samples: Vec<Vec<Sample>> = contenders.iter().map(|_| Vec::new()).collect();
    let mut requests: Vec<usize> = vec![0; contenders.len()];
    let mut server: Vec<Vec<f64>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 0..o.runs {
        for (i, c) in contenders.iter().enumerate() {
            // Each run's requests, alone on the server: the commands share one user and token.
            api.clear_requests();
            samples[i].push(runner.measure(&c.program, &c.args, &kubeconfig, &stderr));
            let log = api.requests();
            requests[i] += log.len();
            server[i].push(log.iter().map(|r| r.duration.as_secs_f64() * 1000.0).sum());
        }
        eprint!("\r--- {}: round {}/{}", case.name, round + 1, o.runs);
    }
    eprintln!();
    drop(api);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let stats = contenders
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let walls: Vec<f64> = samples[i].iter().map(|s| ms(s.wall)).collect();
            let ratios: Vec<f64> =
                (0..o.runs).map(|r| ms(samples[0][r].wall) / ms(samples[i][r].wall)).collect();
            Stats {
                label: c.label.clone(),
                median_ms: median(walls.clone()),
                min_ms: walls.iter().copied().fold(f64::INFINITY, f64::min),
                max_ms: walls.iter().copied().fold(0.0, f64::max),
                rss_mib: median(samples[i].iter().map(|s| s.max_rss_kib as f64 / 1024.0).collect()),
                ratio: median(ratios),
                requests: requests[i] as f64 / o.runs as f64,
                server_ms: median(server[i].clone()),
            }
        })
        .collect();
    CaseResult { name: case.name.clone(), about, stats }
}

fn print_case(r: &CaseResult, runs: usize) {
    println!("\n{}: {}; {runs} rounds", r.name, r.about);
    println!(
        "  {:<58} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10}",
        "command", "median", "min", "max", "peak RSS", "plugin ÷", "requests", "server"
    );
    for s in &r.stats {
        let ratio =
            if s.label.starts_with("kubectl-milvus") { "—".into() } else { format!("{:.2}×", s.ratio) };

        println!(
            "  {:<58} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>5.1} MiB {:>10} {:>9.1} {:>7.1} ms",
            s.label, s.median_ms, s.min_ms, s.max_ms, s.rss_mib, ratio, s.requests, s.server_ms
        );
    }
}

/// The summary as a Markdown table (the README's form).
fn summary(results: &[CaseResult]) -> String {
    let mut t = String::new();
    t.push_str(
        "| case | plugin | plugin ÷ kubectl | plugin ÷ curl | kubectl | curl | peak RSS plugin / kubectl / curl | plugin requests |\n",
    );
    t.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in results {
        let [p, k, c] = &r.stats[..] else { continue };
        let _ = writeln!(
            t,
            "| `{}` | {:.1} ms | {:.2}× | {:.2}× | {:.1} ms | {:.1} ms | {:.0} / {:.0} / {:.0} MiB | {:.0} |",
            r.name,
            p.median_ms,
            k.ratio,
            c.ratio,
            k.median_ms,
            c.median_ms,
            p.rss_mib,
            k.rss_mib,
            c.rss_mib,
            p.requests
        );
    }
    t
}

fn to_json(results: &[CaseResult], o: &Options) -> Value {
    json!({
        "backend": o.backend.name(),
        "runs": o.runs,
        "ratio": "median over rounds of plugin wall time / peer wall time",
        "cases": results.iter().map(|r| json!({
            "name": r.name,
            "setup": r.about,
            "commands": r.stats.iter().map(|s| json!({
                "command": s.label,
                "median_ms": s.median_ms,
                "min_ms": s.min_ms,
                "max_ms": s.max_ms,
                "peak_rss_mib": s.rss_mib,
                "plugin_ratio": s.ratio,
                "requests_per_run": s.requests,
                "server_ms": s.server_ms,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {cpu}")
}

fn kubectl_version() -> String {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "kubectl: not found".into())
}

fn main() {
    if std::env::var_os(RUNNER_ENV).is_some() {
        return runner_main();
    }
    // First, while this process is small (see `Runner`).
    let mut runner = Runner::start();
    let o = parse_args();
    let all = cases(&o);
    let wanted: Vec<&Case> = if o.cases.is_empty() {
        all.iter().collect()
    } else {
        for name in &o.cases {
            if !all.iter().any(|c| &c.name == name) {
                let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
                eprintln!("unknown case {name}; cases: {}", names.join(", "));
                std::process::exit(2);
            }
        }
        all.iter().filter(|c| o.cases.contains(&c.name)).collect()
    };
    if Command::new("curl").arg("--version").stdout(Stdio::null()).status().is_err() {
        eprintln!("curl is not installed (.ci/run installs it with apt)");
        std::process::exit(1);
    }
    let tmpdir = tempfile::tempdir().expect("temporary directory");
    let tmp: PathBuf = tmpdir.path().to_path_buf();
    println!(
        "kubectl-milvus benchmark: {}, {} backend, {} rounds per case; {}; plugin: {}",
        machine(),
        o.backend.name(),
        o.runs,
        kubectl_version(),
        if o.plugin == PLUGIN {
            format!("{} build", PLUGIN.rsplit('/').nth(1).unwrap_or("?"))
        } else {
            o.plugin.clone()
        },
    );
    println!("plugin ÷ peer = median over the rounds of (plugin's wall time ÷ the peer's in the same round)");
    let mut results = Vec::new();
    for case in wanted {
        let r = run_case(case, &o, &tmp, &mut runner);
        print_case(&r, o.runs);
        results.push(r);
    }
    println!(
        "(peak RSS is the child's ru_maxrss from wait4; the process that starts the commands peaked at {:.1} MiB, \
         a floor under those figures)",
        runner.own_rss_kib as f64 / 1024.0
    );
    drop(runner);
    drop(tmpdir);
    println!("\n{}", summary(&results));
    if o.json {
        println!("{}", to_json(&results, &o));
    }
}
