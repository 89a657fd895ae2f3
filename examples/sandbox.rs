//! A local "cluster" to try `kubectl milvus` against, backed by the loopback test API server.
//!
//! ```text
//! cargo run --example sandbox [-- --port 6443] [--kubeconfig PATH] [--no-demo] [--ready-delay SECONDS]
//! ```
//!
//! It builds the plugin (`cargo build --bin kubectl-milvus`), runs `kubectl milvus list -A` and
//! `kubectl milvus status search -n prod` through the real kubectl to show it working, prints the
//! lines to paste into another shell, and serves until Ctrl-C.
//!
//! It serves three Milvus releases:
//! - `my-release` in `default`: Helm chart defaults, healthy, installed by Helm (annotations and
//!   release Secret);
//! - `search` in `prod`: separate coordinators and HPAs for proxy and querynode, with one querynode
//!   crash-looping (OOMKilled) and one pending (unschedulable);
//! - `vectors` in `operator`: a Milvus Operator CR with its Deployments (the stand-in operator
//!   reconciler is on, so scaling through the CR moves the Deployments).

use milvus_test_api::{PodBehaviour, Rules, TestApi};
use std::path::{Path, PathBuf};
use std::process::Command;

fn usage() -> ! {
    eprintln!("usage: sandbox [--port N] [--kubeconfig PATH] [--no-demo] [--ready-delay SECONDS]");
    std::process::exit(2)
}

fn main() {
    let mut port: u16 = 0;
    let mut demo = true;
    let mut ready_delay = std::time::Duration::ZERO;
    let mut kubeconfig = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/sandbox/kubeconfig");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--kubeconfig" => kubeconfig = args.next().map(PathBuf::from).unwrap_or_else(|| usage()),
            "--no-demo" => demo = false,
            "--ready-delay" => {
                let seconds = args.next().and_then(|s| s.parse::<u64>().ok()).unwrap_or_else(|| usage());
                ready_delay = std::time::Duration::from_secs(seconds);
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }

    let api = TestApi::builder()
        // a healthy Helm release
        .fixture_as("helm/default.yaml", "my-release", "default")
        .helm_install(true)
        .helm_values(serde_json::json!({}))
        // a Helm release with problems
        .fixture_as("helm/coordinators-hpa.yaml", "search", "prod")
        .helm_install(true)
        .helm_values(serde_json::json!({
            "mixCoordinator": {"enabled": false},
            "rootCoordinator": {"enabled": true}, "queryCoordinator": {"enabled": true},
            "dataCoordinator": {"enabled": true}, "indexCoordinator": {"enabled": true},
            "indexNode": {"enabled": true},
            "proxy": {"replicas": 2, "hpa": {"enabled": true}},
            "dataNode": {"replicas": 2},
            "queryNode": {"replicas": -1, "hpa": {"enabled": true}},
        }))
        .replicas("prod/search-milvus-querynode", 3)
        .pod_behaviour("prod/search-milvus-querynode", 1, PodBehaviour::oom_killed(12))
        .pod_behaviour("prod/search-milvus-querynode", 2, PodBehaviour::PendingUnschedulable)
        // a Milvus Operator release
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "operator")
        .operator_reconciler(true)
        // a read-only user without access to secrets
        .user("viewer", Rules::read_only().deny("list", "secrets").deny("get", "secrets"))
        // new pods (after a scale-up) become ready this long after they start, to watch `scale --wait`
        .scale_up_ready_delay(ready_delay)
        .port(port)
        .kubeconfig_path(&kubeconfig)
        .start();

    let kc = api.kubeconfig_path().display().to_string();
    let plugin_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/debug");
    println!("milvus sandbox API server listening on {}", api.url());
    println!("kubeconfig: {kc} (contexts: admin [current], viewer)");
    if demo {
        show_plugin_working(&plugin_dir, api.kubeconfig_path());
    }
    println!();
    println!("Try it in another shell:");
    println!("  export KUBECONFIG={kc}");
    println!("  export PATH={}:$PATH", plugin_dir.display());
    println!("  kubectl milvus list -A");
    println!("  kubectl milvus status my-release");
    println!("  kubectl milvus status search -n prod --pods");
    println!("  kubectl milvus status vectors -n operator");
    println!("  kubectl --context viewer milvus list -A");
    println!("  kubectl get pods -A");
    println!();
    println!("Press Ctrl-C to stop.");

    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(tokio::signal::ctrl_c()) {
        eprintln!("cannot wait for Ctrl-C: {e}");
    }
    let n = api.requests().len();
    println!("\nstopping after {n} requests");
}

/// Builds the plugin and runs two commands through the real kubectl (or directly, without kubectl).
fn show_plugin_working(plugin_dir: &Path, kubeconfig: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    println!("\nBuilding the plugin: cargo build --bin kubectl-milvus");
    let built = Command::new(&cargo)
        .args(["build", "--quiet", "--bin", "kubectl-milvus", "--manifest-path"])
        .arg(&manifest)
        .status();
    if !matches!(built, Ok(status) if status.success()) {
        eprintln!("cannot build the plugin; the API server still runs");
        return;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![plugin_dir.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    let path = std::env::join_paths(paths).unwrap_or(path);
    let kubectl = Command::new("kubectl").arg("version").arg("--client").env("PATH", &path).output().is_ok();
    for args in [&["list", "-A"][..], &["status", "search", "-n", "prod"][..]] {
        let (mut command, shown) = if kubectl {
            let mut c = Command::new("kubectl");
            c.arg("milvus");
            (c, "kubectl milvus")
        } else {
            (Command::new(plugin_dir.join("kubectl-milvus")), "kubectl-milvus")
        };
        println!("\n$ {shown} {}", args.join(" "));
        let _ = command.args(args).env("PATH", &path).env("KUBECONFIG", kubeconfig).status();
    }
}
