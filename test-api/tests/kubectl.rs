//! The real `kubectl` (when on PATH) works against the server: discovery, TLS, tokens, tables.

use milvus_test_api::{PodBehaviour, Rules, TestApi};
use std::process::Command;

fn kubectl(api: &TestApi, args: &[&str]) -> Option<(bool, String, String)> {
    let out = match Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(api.kubeconfig_path())
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kubectl not runnable ({e}); skipping");
            return None;
        }
    };
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn kubectl_get_pods_and_deployments() {
    let api = TestApi::builder()
        .fixture("helm/default.yaml")
        .helm_install(true)
        .fixture_as("helm/default.yaml", "other", "prod")
        .pod_behaviour("prod/other-milvus-querynode", 0, PodBehaviour::oom_killed(3))
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "operator")
        .user("viewer", Rules::read_only().deny("list", "secrets"))
        .start();
    let Some((ok, out, err)) = kubectl(&api, &["get", "pods", "-A"]) else {
        return;
    };
    assert!(ok, "kubectl get pods -A failed: {err}");
    let header = out.lines().next().unwrap_or_default();
    for col in ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("default") && l.contains("my-release-etcd-0") && l.contains("Running")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("prod")
            && l.contains("other-milvus-querynode-")
            && l.contains("CrashLoopBackOff")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("operator") && l.contains("vectors-milvus-proxy-")), "{out}");

    let (ok, out, err) = kubectl(&api, &["get", "deployments", "-n", "default"]).expect("kubectl");
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("my-release-milvus-querynode ") && l.contains("1/1")), "{out}");

    let (ok, out, err) = kubectl(&api, &["get", "deployments", "-A", "-o", "name"]).expect("kubectl");
    assert!(ok, "{err}");
    assert!(out.contains("deployment.apps/vectors-milvus-querynode-0"), "{out}");

    let (ok, out, err) = kubectl(&api, &["get", "milvuses", "-n", "operator"]).expect("kubectl");
    assert!(ok, "{err}");
    assert!(out.contains("vectors") && out.contains("Healthy"), "{out}");

    let (ok, out, err) =
        kubectl(&api, &["get", "mi", "vectors", "-n", "operator", "-o", "jsonpath={.status.status}"])
            .expect("kubectl");
    assert!(ok, "{err}");
    assert_eq!(out, "Healthy");

    let (ok, _, err) = kubectl(&api, &["--context", "viewer", "get", "secrets"]).expect("kubectl");
    assert!(!ok);
    assert!(err.contains("secrets is forbidden: User \"viewer\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""), "{err}");

    // plain JSON lists (no Table) also work
    let (ok, out, err) = kubectl(&api, &["get", "pods", "-n", "default", "-o", "json"]).expect("kubectl");
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(v["items"].as_array().is_some_and(|a| a.len() > 10));

    let (ok, out, err) =
        kubectl(&api, &["scale", "deployment/my-release-milvus-proxy", "--replicas=2"]).expect("kubectl");
    assert!(ok, "{err}");
    assert!(out.contains("scaled"), "{out}");
    let d = api.get_json("apps", "v1", "deployments", Some("default"), "my-release-milvus-proxy").expect("d");
    assert_eq!(d["status"]["readyReplicas"], 2);

    let log = api.requests();
    assert!(log.iter().all(|r| r.status != 401));
    assert_eq!(log.iter().filter(|r| r.is_mutating()).count(), 1);
}

#[test]
fn kubectl_without_tables_falls_back() {
    // `kubectl get` asks for server-side tables; a server that answers plain lists still works,
    // which is what `--server-print=false` exercises.
    let api = TestApi::builder().fixture("helm/standalone.yaml").start();
    let Some((ok, out, err)) = kubectl(&api, &["get", "pods", "-A", "--server-print=false"]) else {
        return;
    };
    assert!(ok, "{err}");
    assert!(out.contains("my-release-milvus-standalone-"), "{out}");
}
