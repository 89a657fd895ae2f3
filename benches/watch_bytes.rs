//! Bytes received from the API server while the plugin waits on a release of 1,000 pods where
//! nothing changes: `scale --wait` on a querynode whose new pod never becomes ready (it times out
//! after `--seconds`), and `status -w` for as long. A TCP proxy in front of the loopback test API
//! counts what the server sends (TLS included).
//!
//! ```text
//! cargo bench --bench watch_bytes [-- --seconds 60 --pods 1000 --binary path/to/kubectl-milvus]
//! ```
//!
//! `--binary` measures another build of the plugin (e.g. one from before watches).

// A measurement harness, not the plugin: a failed set-up ends the run with its reason.
#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use milvus_test_api::{PodBehaviour, TestApi};

/// Listens on a free loopback port and forwards every connection to `upstream`, counting the bytes
/// that come back from it. Returns the port and the counter.
fn counting_proxy(upstream: u16) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let port = listener.local_addr().expect("proxy address").port();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let (mut c_read, mut s_write) =
                (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                let _ = c_write.shutdown(Shutdown::Write);
            });
        }
    });
    (port, received)
}

fn main() {
    let mut seconds = 60u64;
    let mut pods = 1000i64;
    let mut binary = env!("CARGO_BIN_EXE_kubectl-milvus").to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            "--pods" => pods = args.next().and_then(|v| v.parse().ok()).unwrap_or(pods),
            "--binary" => binary = args.next().unwrap_or(binary),
            _ => {} // cargo bench passes --bench
        }
    }
    let api = TestApi::builder().fixture("helm/default.yaml").helm_install(true).start();
    let count = || api.list_json("", "pods", Some("default"), None).map(|p| p.len() as i64).unwrap_or(0);
    let querynodes = pods - (count() - 1);
    api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-querynode", querynodes)
        .expect("scale querynode");
    api.settle().expect("settle");
    println!("release my-release: {} pods ({querynodes} querynodes); plugin {binary}", count());

    let (port, received) = counting_proxy(api.port());
    let kubeconfig = std::fs::read_to_string(api.kubeconfig_path()).expect("kubeconfig");
    let upstream = format!("127.0.0.1:{}", api.port());
    assert!(kubeconfig.contains(&upstream), "the kubeconfig names {upstream}");
    let path = std::env::temp_dir().join(format!("watch-bytes-{}.kubeconfig", std::process::id()));
    std::fs::write(&path, kubeconfig.replace(&upstream, &format!("127.0.0.1:{port}")))
        .expect("write kubeconfig");

    // The new querynode never becomes ready: the wait lasts until its timeout.
    let index = u32::try_from(querynodes).expect("index");
    api.set_pod_behaviour("my-release-milvus-querynode", Some(index), PodBehaviour::PendingUnschedulable);
    let target = format!("querynode={}", querynodes + 1);
    let timeout = format!("{seconds}s");
    let runs: [(&str, Vec<&str>); 2] = [
        ("scale --wait", vec!["scale", "my-release", &target, "--wait", "--timeout", &timeout]),
        ("status -w", vec!["status", "my-release", "-w"]),
    ];
    for (name, args) in runs {
        received.store(0, Ordering::Relaxed);
        api.clear_requests();
        let started = Instant::now();
        let mut child = Command::new(&binary)
            .args(&args)
            .env("KUBECONFIG", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the plugin");
        if name == "status -w" {
            std::thread::sleep(Duration::from_secs(seconds));
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        }
        let status = child.wait().expect("wait for the plugin");
        let elapsed = started.elapsed().as_secs_f64();
        let bytes = received.load(Ordering::Relaxed);
        let requests = api.requests().into_iter().filter(|r| !r.is_discovery()).collect::<Vec<_>>();
        let lists = requests.iter().filter(|r| r.verb.as_deref() == Some("list")).count();
        let watches = requests.iter().filter(|r| r.watch).count();
        println!(
            "kubectl-milvus {name:<14} {elapsed:>5.1} s  {:>10.1} KiB received ({:>8.1} KiB/s)  {lists} lists, {watches} watches  (exit {:?})",
            bytes as f64 / 1024.0,
            bytes as f64 / 1024.0 / elapsed,
            status.code()
        );
        if name == "scale --wait" {
            // Back to the starting size for the next run.
            api.set_replicas(("apps", "deployments"), "default", "my-release-milvus-querynode", querynodes)
                .expect("scale back");
            api.settle().expect("settle");
        }
    }
    let _ = std::fs::remove_file(&path);
}
