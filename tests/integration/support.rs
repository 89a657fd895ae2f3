//! Running the plugin the way users do: the built binary directly, and `kubectl milvus …` through the
//! real kubectl (plugin discovery by PATH), against the loopback test API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

pub use milvus_test_api::{
    Backend, FakeMilvus, Fault, MilvusStatus, MilvusVersion, PodBehaviour, RequestRecord, Rules, TestApi,
};
use serde_json::Value;

/// The backend the tests run against: `MILVUS_TEST_BACKEND=kube-apiserver` selects a real API server
/// (see scripts/control-plane.sh), anything else the loopback API.
pub fn backend() -> Backend {
    Backend::from_env()
}

// Faults and latency work on both backends (a proxy in front of the server injects them). A test
// that still cannot run on a real API server (it stores an object the CRD schema refuses) has
// `loopback_only` in its name: .ci/run passes `--skip loopback_only` to the real-backend run, so it
// is reported as filtered out there, not as passed. The other way round, a test that needs a real API
// server (real Helm installs into it, tests/integration/helm.rs) has a name ending in
// `_kube_apiserver_only`: the loopback run passes `--skip kube_apiserver_only`, and on the loopback such
// a test fails (it asserts the backend) rather than passing without having run.

/// `text` with every whitespace run made one space and every age (`3s`, `20m`, `5m3s`, `2d`) made
/// `<age>`: for comparing outputs taken seconds apart on a real server.
pub fn without_ages(text: &str) -> String {
    let is_age = |t: &str| {
        !t.is_empty()
            && t.chars().next().is_some_and(|c| c.is_ascii_digit())
            && t.chars().last().is_some_and(|c| "smhdy".contains(c))
            && t.chars().all(|c| c.is_ascii_digit() || "smhdy".contains(c))
    };
    text.lines()
        .map(|l| {
            l.split_whitespace().map(|t| if is_age(t) { "<age>" } else { t }).collect::<Vec<_>>().join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ages of everything loaded: long enough that the AGE column (`20m`) is stable for a minute.
pub const AGE: Duration = Duration::from_secs(20 * 60);

pub fn plugin_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kubectl-milvus"))
}

/// A directory holding only a `kubectl-milvus` link to the built binary, to put first on the PATH.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-path");
        std::fs::create_dir_all(&dir).expect("create plugin dir");
        let link = dir.join("kubectl-milvus");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(plugin_binary(), &link).expect("link plugin");
        dir
    })
}

/// The result of one run.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    pub fn from(output: Output) -> Self {
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    pub fn success(self) -> Self {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }

    pub fn failure(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    pub fn yaml(&self) -> Value {
        serde_yaml::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not YAML ({e}):\n{}", self.stdout))
    }
}

/// How the plugin is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `kubectl-milvus …`
    Binary,
    /// `kubectl milvus …` through the real kubectl.
    Kubectl,
}

/// A command line for the plugin with a clean environment: no colour forcing, no stray kubeconfig.
pub fn command(via: Via, kubeconfig: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = match via {
        Via::Binary => Command::new(plugin_binary()),
        Via::Kubectl => {
            let mut cmd = Command::new("kubectl");
            cmd.arg("milvus");
            cmd
        }
    };
    cmd.args(args);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![plugin_dir().to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).expect("PATH"));
    cmd.env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE");
    // A HOME without ~/.kube/config, so only what the test gives is used.
    cmd.env("HOME", env!("CARGO_TARGET_TMPDIR"));
    if let Some(kubeconfig) = kubeconfig {
        cmd.env("KUBECONFIG", kubeconfig);
    }
    cmd
}

pub fn run_via(via: Via, kubeconfig: Option<&Path>, args: &[&str]) -> Run {
    let output = command(via, kubeconfig, args).output().expect("start the plugin");
    Run::from(output)
}

/// Runs `kubectl-milvus ARGS` against `api`.
pub fn run(api: &TestApi, args: &[&str]) -> Run {
    run_via(Via::Binary, Some(api.kubeconfig_path()), args)
}

/// Runs `kubectl milvus ARGS` against `api`, through the real kubectl.
pub fn kubectl(api: &TestApi, args: &[&str]) -> Run {
    run_via(Via::Kubectl, Some(api.kubeconfig_path()), args)
}

/// Requests that reached resources (discovery and /version excluded).
pub fn resource_requests(api: &TestApi) -> Vec<RequestRecord> {
    api.requests().into_iter().filter(|r| !r.is_discovery()).collect()
}

/// `METHOD path` of each request, sorted, for comparing request sets regardless of order.
pub fn request_lines(requests: &[RequestRecord]) -> Vec<String> {
    let mut lines: Vec<String> = requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    lines.sort();
    lines
}

/// The sandbox-like cluster used by most tests: a healthy Helm release in `default`, a Helm release with
/// an HPA and failing pods in `prod`, and an operator release in `operator`.
pub fn three_releases() -> TestApi {
    TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .fixture_as("helm/coordinators-hpa.yaml", "search", "prod")
        .helm_install(true)
        .replicas("prod/search-milvus-querynode", 3)
        .pod_behaviour("prod/search-milvus-querynode", 1, PodBehaviour::oom_killed(12))
        .pod_behaviour("prod/search-milvus-querynode", 2, PodBehaviour::PendingUnschedulable)
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "operator")
        .milvus_status(MilvusStatus::Healthy)
        .start()
}

/// One Helm release from a fixture in `default`, every pod ready.
pub fn helm_release(fixture: &str) -> TestApi {
    TestApi::builder().age(AGE).fixture(fixture).helm_install(true).start()
}

/// The text of a fixture file (`helm/default.yaml`).
pub fn fixture_text(path: &str) -> String {
    let dir = milvus_test_api::fixtures_dir().expect("fixtures dir");
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// The objects of a fixture file.
pub fn fixture_docs(path: &str) -> Vec<Value> {
    milvus_test_api::parse_yaml_docs(&fixture_text(path)).expect("fixture parses")
}

/// The Deployment `name` of a fixture's objects.
pub fn fixture_deployment(docs: &[Value], name: &str) -> Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("Deployment {name} in fixture"))
}

/// A copy of a Deployment named `name` as group `group`, labelled (and selecting) `label=group`.
pub fn grouped_copy(docs: &[Value], deployment: &str, label: &str, group: &str, name: &str) -> Value {
    let mut copy = fixture_deployment(docs, deployment);
    copy["metadata"]["name"] = Value::from(name);
    for labels in ["/metadata/labels", "/spec/selector/matchLabels", "/spec/template/metadata/labels"] {
        if let Some(map) = copy.pointer_mut(labels).and_then(Value::as_object_mut) {
            map.insert(label.into(), Value::from(group));
        }
    }
    copy
}

/// A scale-in of `my-release`'s datanode from 5 to 2 (plus `extra` arguments) that waits after its
/// first step, because every datanode crash-loops (one broken pod would not do: the ReplicaSet
/// controller removes the unready pod first, and the rest are healthy): returns once the first step is written and the plugin
/// reads the release to check its health, with the plugin still running.
pub fn scale_in_waiting_after_its_first_step(extra: &[&str]) -> (TestApi, std::process::Child) {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .replicas("my-release-milvus-datanode", 5)
        .workload_behaviour("my-release-milvus-datanode", PodBehaviour::oom_killed(3))
        .start();
    api.clear_requests();
    let args = [&["scale", "my-release", "datanode=2", "--timeout", "60s"][..], extra].concat();
    let child = command(Via::Binary, Some(api.kubeconfig_path()), &args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    api.wait_until(
        |s| {
            let log = s.requests();
            log.iter()
                .position(|r| r.method == "PATCH")
                .is_some_and(|i| log[i..].iter().any(|r| r.path.ends_with("/pods")))
        },
        Duration::from_secs(20),
    )
    .expect("first step written");
    (api, child)
}

/// The row of component `name` (its `displayName`) in a `status -o json` document, if there is one.
pub fn component_row<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["components"].as_array()?.iter().find(|c| c["displayName"] == name)
}

/// `spec.replicas` of a Deployment, read from the server.
pub fn deployment_replicas(api: &TestApi, namespace: &str, name: &str) -> i64 {
    api.get_json("apps", "v1", "deployments", Some(namespace), name)
        .and_then(|d| d["spec"]["replicas"].as_i64())
        .unwrap_or_else(|| panic!("deployment {namespace}/{name}"))
}

/// The mutating requests the server received.
pub fn mutating(api: &TestApi) -> Vec<RequestRecord> {
    api.requests().into_iter().filter(|r| r.is_mutating()).collect()
}

/// `METHOD last-path-segment` of each mutating request, with ` dry` for dry runs: the writes of a
/// command, in order (`PUT sh.helm.release.v1.my-release.v1 dry`, `PATCH my-release-milvus-querynode`).
pub fn writes(api: &TestApi) -> Vec<String> {
    mutating(api)
        .iter()
        .map(|r| {
            let last = r.path.rsplit('/').next().unwrap_or_default();
            format!("{} {last}{}", r.method, if r.dry_run { " dry" } else { "" })
        })
        .collect()
}
