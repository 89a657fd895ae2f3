//! Wall time and request count of `kubectl-milvus status` and `list -A` on a release with 1,000 pods,
//! against the loopback test API (release build of the plugin):
//!
//! ```text
//! cargo bench --bench status [-- --runs 30 --pods 1000]
//! ```

// A measurement harness, not the plugin: a failed set-up ends the run with its reason.
#![allow(clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use milvus_test_api::TestApi;

fn main() {
    let mut runs = 30usize;
    let mut pods = 1000i64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            "--pods" => pods = args.next().and_then(|v| v.parse().ok()).unwrap_or(pods),
            _ => {} // cargo bench passes --bench
        }
    }
    let api = TestApi::builder().fixture("helm/default.yaml").helm_install(true).start();
    let count = || api.list_json("", "pods", Some("default"), None).map(|p| p.len() as i64).unwrap_or(0);
    // Grow the querynode Deployment until the release has `pods` pods in all.
    let querynodes = pods - (count() - 1);
    api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-querynode", querynodes)
        .expect("scale querynode");
    let binary = env!("CARGO_BIN_EXE_kubectl-milvus");
    let total_pods = count();
    println!("release my-release: {total_pods} pods ({querynodes} querynodes), {runs} runs each");

    for args in
        [&["status", "my-release"][..], &["status", "my-release", "-o", "json"][..], &["list", "-A"][..]]
    {
        let run = || {
            let started = Instant::now();
            let output = Command::new(binary)
                .args(args)
                .env("KUBECONFIG", api.kubeconfig_path())
                .output()
                .expect("run the plugin");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            started.elapsed()
        };
        run(); // warm-up
        api.clear_requests();
        let mut times: Vec<Duration> = (0..runs).map(|_| run()).collect();
        let requests = api.requests().len() as f64 / runs as f64;
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "kubectl-milvus {:<28} min {:>6.1} ms   median {:>6.1} ms   p90 {:>6.1} ms   max {:>6.1} ms   {requests} requests/run",
            args.join(" "),
            ms(times[0]),
            ms(times[runs / 2]),
            ms(times[runs * 9 / 10]),
            ms(times[runs - 1]),
        );
    }
}
