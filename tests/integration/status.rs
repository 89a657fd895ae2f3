use std::time::Duration;

use crate::support::*;

#[test]
fn status_of_a_healthy_helm_release() {
    let api = three_releases();
    let out = kubectl(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert!(out.stdout.contains("Health:     Healthy"), "{}", out.stdout);
    assert_eq!(out.stderr, "");
}

#[test]
fn status_of_a_degraded_release_with_hpas_names_every_problem() {
    let api = three_releases();
    let out = kubectl(&api, &["status", "search", "-n", "prod"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    for problem in ["OOMKilled", "Insufficient memory", "search-milvus-querynode-hpa"] {
        assert!(out.stdout.contains(problem), "{problem} missing:\n{}", out.stdout);
    }
}

#[test]
fn status_of_an_operator_release() {
    let api = three_releases();
    let out = kubectl(&api, &["status", "vectors", "-n", "operator", "--pods"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert!(out.stdout.contains("vectors-milvus-querynode-0"), "{}", out.stdout);
}

#[test]
fn status_of_a_standalone_release() {
    let api = helm_release("helm/standalone.yaml");
    let out = run(&api, &["status", "my-release", "-o", "wide"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert!(out.stdout.contains("Mode:       standalone"), "{}", out.stdout);
}

#[test]
fn status_of_an_unavailable_release() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/kafka.yaml")
        .helm_install(true)
        .workload_behaviour("my-release-milvus-proxy", PodBehaviour::ImagePullBackOff)
        .pod_behaviour("my-release-kafka", 2, PodBehaviour::RunningNotReady)
        .start();
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["health"], "Unavailable");
    assert!(json["healthReason"].as_str().unwrap_or("").contains("proxy"), "{}", json["healthReason"]);
}

/// Every kind of pod problem, each with the detail a person needs to act on it.
#[test]
fn status_explains_each_problem_kind() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .replicas("my-release-milvus-querynode", 6)
        .pod_behaviour("my-release-milvus-querynode", 0, PodBehaviour::oom_killed(4))
        .pod_behaviour("my-release-milvus-querynode", 1, PodBehaviour::ImagePullBackOff)
        .pod_behaviour("my-release-milvus-querynode", 2, PodBehaviour::ErrImagePull)
        .pod_behaviour(
            "my-release-milvus-querynode",
            3,
            PodBehaviour::CreateContainerConfigError { message: "secret \"milvus-tls\" not found".into() },
        )
        .pod_behaviour("my-release-milvus-querynode", 4, PodBehaviour::PendingUnschedulable)
        .pod_behaviour("my-release-milvus-querynode", 5, PodBehaviour::RunningNotReady)
        .pod_behaviour("my-release-milvus-datanode", 0, PodBehaviour::Terminating)
        .pod_behaviour("my-release-milvus-proxy", 0, PodBehaviour::Evicted)
        .start();
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }

    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    let kinds: Vec<&str> =
        json["problems"].as_array().expect("problems").iter().filter_map(|p| p["kind"].as_str()).collect();
    for kind in [
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "Unschedulable",
        "NotReady",
        "Terminating",
        "Evicted",
    ] {
        // A real server sets deletionTimestamp when the deletion is requested (it cannot be
        // backdated), so a Terminating pod is minutes away from being stuck there.
        if kind == "Terminating" && backend() != Backend::Loopback {
            assert!(!kinds.contains(&kind), "a pod deleted seconds ago is not stuck: {kinds:?}");
            continue;
        }
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let reasons: Vec<&str> =
        json["problems"].as_array().expect("problems").iter().filter_map(|p| p["reason"].as_str()).collect();
    let all = reasons.join("\n");
    assert!(all.contains("OOMKilled (exit code 137)"), "{all}");
    assert!(all.contains("milvusdb/milvus:v2.6.15"), "{all}");
    assert!(all.contains("secret \"milvus-tls\" not found"), "{all}");
    assert!(all.contains("Insufficient memory"), "{all}");
}

#[test]
fn completed_job_pods_are_not_problems() {
    let api = helm_release("helm/default.yaml");
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["health"], "Healthy", "{json}");
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(0));
    // The pulsar init Jobs did run: their pods exist and are Completed.
    let pods = api.list_json("", "pods", Some("default"), Some("job-name")).expect("pods");
    assert!(!pods.is_empty());
}

#[test]
fn status_yaml_and_json_carry_everything() {
    let api = three_releases();
    let json = run(&api, &["status", "search", "-n", "prod", "-o", "json"]).success().json();
    assert_eq!(json["apiVersion"], "kubectl-milvus/v1");
    assert_eq!(json["kind"], "ReleaseStatus");
    assert_eq!(json["name"], "search");
    assert_eq!(json["namespace"], "prod");
    assert_eq!(json["managedBy"]["type"], "helm");
    assert_eq!(json["managedBy"]["chart"], "milvus-5.0.19");
    assert_eq!(json["health"], "Degraded");
    let querynode = component_row(&json, "querynode").expect("querynode row");
    assert_eq!(querynode["desired"], 3);
    assert_eq!(querynode["ready"], 1);
    assert_eq!(querynode["hpa"]["name"], "search-milvus-querynode-hpa");
    assert_eq!(querynode["hpa"]["minReplicas"], 1);
    assert_eq!(querynode["hpa"]["maxReplicas"], 5);
    assert_eq!(querynode["pods"].as_array().map(Vec::len), Some(3));
    let yaml = run(&api, &["status", "search", "-n", "prod", "-o", "yaml"]).success().yaml();
    assert_eq!(serde_json::to_value(&yaml).expect("yaml as json"), json);
}

#[test]
fn operator_release_json_names_the_active_querynode_and_conditions() {
    let api = three_releases();
    let json = run(&api, &["status", "vectors", "-n", "operator", "-o", "json"]).success().json();
    assert_eq!(json["managedBy"]["type"], "operator");
    assert_eq!(json["managedBy"]["status"], "Healthy");
    let conditions: Vec<&str> = json["managedBy"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert!(conditions.contains(&"MilvusReady"), "{conditions:?}");
    let querynodes: Vec<&serde_json::Value> = json["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter(|c| c["kind"] == "querynode")
        .collect();
    assert_eq!(querynodes.len(), 1, "the two querynode Deployments are one row");
    assert_eq!(querynodes[0]["activeWorkload"], "vectors-milvus-querynode-0");
    assert_eq!(querynodes[0]["workloads"].as_array().map(Vec::len), Some(2));
}

#[test]
fn exit_code_flag_fails_unless_healthy() {
    let api = three_releases();
    run(&api, &["status", "my-release", "--exit-code"]).success();
    let out = kubectl(&api, &["status", "search", "-n", "prod", "--exit-code"]).failure(3);
    assert!(out.stdout.contains("Degraded"), "{}", out.stdout);
    assert_eq!(out.stderr, "");
    // Without the flag, an unhealthy release is still a successful status report.
    run(&api, &["status", "search", "-n", "prod"]).success();
}

#[test]
fn release_in_another_namespace_is_pointed_to() {
    let api = three_releases();
    let out = kubectl(&api, &["status", "search"]).failure(1);
    assert_eq!(
        out.stderr,
        "error: Milvus release \"search\" not found in namespace \"default\": found in namespace prod, use -n prod\n"
    );
}

#[test]
fn unknown_release_lists_the_namespace_releases() {
    let api = three_releases();
    let out = run(&api, &["status", "nope"]).failure(1);
    assert_eq!(
        out.stderr,
        "error: Milvus release \"nope\" not found in namespace \"default\": releases in this namespace: my-release\n"
    );
    let empty = run(&api, &["status", "nope", "-n", "kube-system"]).failure(1);
    assert!(empty.stderr.contains("there are no Milvus releases in this namespace"), "{}", empty.stderr);
}

#[test]
fn all_namespaces_finds_the_release_or_asks_for_a_namespace() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture_as("helm/default.yaml", "twin", "a")
        .fixture_as("helm/default.yaml", "twin", "b")
        .fixture_as("helm/kafka.yaml", "solo", "c")
        .start();
    let found = run(&api, &["status", "solo", "-A", "-o", "json"]).success().json();
    assert_eq!(found["namespace"], "c");
    let out = run(&api, &["status", "twin", "-A"]).failure(1);
    assert_eq!(
        out.stderr,
        "error: release \"twin\" exists in several namespaces (a, b): choose one with -n NAMESPACE\n"
    );
}

#[test]
fn status_makes_one_concurrent_list_per_kind_in_the_namespace() {
    let api = three_releases();
    api.clear_requests();
    run(&api, &["status", "search", "-n", "prod"]).success();
    // Milvus's own view is asked through the proxy subresource (tests/integration/serving.rs).
    // And the release's Milvus configuration with one GET of the chart's ConfigMap.
    let all = api.requests();
    let configmaps: Vec<String> = all
        .iter()
        .filter(|r| r.path.contains("/configmaps"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(configmaps, ["GET /api/v1/namespaces/prod/configmaps/search-milvus"]);
    let requests: Vec<RequestRecord> =
        all.into_iter().filter(|r| !r.path.contains("/proxy/") && !r.path.contains("/configmaps")).collect();
    assert_eq!(
        request_lines(&requests),
        [
            "GET /api/v1/namespaces/prod/pods",
            "GET /api/v1/namespaces/prod/pods",
            "GET /api/v1/namespaces/prod/secrets",
            "GET /apis/apps/v1/namespaces/prod/deployments",
            "GET /apis/apps/v1/namespaces/prod/statefulsets",
            "GET /apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers",
            "GET /apis/milvus.io/v1beta1/namespaces/prod/milvuses",
        ]
    );
    // Only the release's deployed Helm record is read, by label: never every Secret of the namespace.
    let secrets = requests.iter().find(|r| r.path.ends_with("/secrets")).expect("secrets request");
    assert_eq!(secrets.query_param("labelSelector"), Some("owner=helm,name=search,status=deployed"));
    assert!(requests.iter().all(|r| r.verb.as_deref() == Some("list")));
    // The release's pods by its two labels (its own and, for an operator release, its dependencies'
    // release names): never every pod of the namespace.
    let set = "search,search-etcd,search-kafka,search-minio,search-pulsar";
    let mut pods: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .filter_map(|r| r.query_param("labelSelector"))
        .collect();
    pods.sort();
    assert_eq!(pods, [format!("app.kubernetes.io/instance in ({set})"), format!("release in ({set})")]);
    let others = requests.iter().filter(|r| !r.path.ends_with("/secrets") && !r.path.ends_with("/pods"));
    assert!(others.clone().all(|r| r.query_param("labelSelector").is_none()));
    // Lists are read in pages of 500 (the Helm record is one Secret, read whole).
    let lists = requests.iter().filter(|r| !r.path.ends_with("/secrets"));
    assert!(lists.clone().all(|r| r.query_param("limit") == Some("500")));
}

#[test]
fn problems_while_reading_are_reported_at_the_end_not_fatal() {
    let api = three_releases();
    api.set_fault(
        Fault::status(403)
            .on("GET", "/apis/autoscaling/v1/namespaces/prod/horizontalpodautoscalers")
            .message("horizontalpodautoscalers.autoscaling is forbidden: User \"admin\" cannot list resource \"horizontalpodautoscalers\" in API group \"autoscaling\" in the namespace \"prod\""),
    );
    let out = run(&api, &["status", "search", "-n", "prod"]).success();
    // The last warning is about Milvus's own view (no fake Milvus answers here).
    let tail: Vec<&str> = out.stdout.lines().rev().take(3).collect();
    assert_eq!(tail[2], "Warnings");
    assert!(tail[0].contains("Milvus's own view"), "{}", tail[0]);
    assert!(tail[1].contains("cannot list horizontalpodautoscalers.autoscaling in the namespace \"prod\": autoscaler bounds are not shown"), "{}", tail[1]);
    assert!(!out.stdout.contains("HPA"), "no HPA column without HPAs:\n{}", out.stdout);
    let json = run(&api, &["status", "search", "-n", "prod", "-o", "json"]).success().json();
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_server_error_on_a_required_kind_is_an_error() {
    let api = three_releases();
    api.set_fault(
        Fault::status(500)
            .on("GET", "/apis/apps/v1/namespaces/default/deployments")
            .message("etcdserver: request timed out"),
    );
    let out = run(&api, &["status", "my-release"]).failure(1);
    assert_eq!(out.stderr, "Error from server (InternalError): etcdserver: request timed out\n");
    assert_eq!(out.stdout, "");
}

#[test]
fn watch_refreshes_until_interrupted() {
    let api = three_releases();
    api.clear_requests();
    let mut child = command(
        Via::Binary,
        Some(api.kubeconfig_path()),
        &["status", "my-release", "-w", "--interval", "1s"],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .expect("start");
    // The refreshes are read as they are printed, until the third.
    let stdout = child.stdout.take().expect("stdout");
    let (refreshed, refreshes) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut text = String::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("Release:") {
                let _ = refreshed.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    for n in 1..=3 {
        refreshes.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("refresh {n}"));
    }
    // Interrupt as Ctrl-C does.
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    // Bounded wait: a plugin that ignores the interrupt fails the test instead of hanging it.
    let (done, finished) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(Duration::from_secs(20)) {
        Ok(output) => output.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("status -w did not stop on SIGINT");
        }
    };
    assert_eq!(output.status.code(), Some(0));
    let stdout = reader.join().expect("reader");
    let requests = resource_requests(&api);
    let log: Vec<String> =
        requests.iter().map(|r| format!("{} {} {:?} {}", r.seq, r.path, r.verb, r.status)).collect();
    assert!(stdout.matches("Release:    my-release").count() >= 3, "{stdout}\n{log:#?}");
    // The refreshes come from watches: each kind listed once, then watched; not listed per refresh.
    // The pods are two streams, one per label selector of the release.
    for (kind, streams) in [
        ("/deployments", 1),
        ("/statefulsets", 1),
        ("/pods", 2),
        ("/horizontalpodautoscalers", 1),
        ("/milvuses", 1),
    ] {
        let of = |verb: &str| {
            requests.iter().filter(|r| r.path.ends_with(kind) && r.verb.as_deref() == Some(verb)).count()
        };
        assert_eq!(of("list"), streams, "{kind}: {log:#?}");
        assert!(of("watch") >= streams, "{kind}: {log:#?}");
    }
}

use std::process::Command;

/// A release with more pods than one page is read page by page (`limit` from `--chunk-size`, 500 by
/// default, then `continue`), and every pod of it is in the status; another application's pods in
/// the namespace are never read. `--chunk-size 0` reads each list in one reply.
#[test]
fn a_release_larger_than_a_page_is_read_in_pages_and_nothing_else_is() {
    let web = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    });
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .helm_install(true)
        .objects(vec![web])
        .replicas("my-release-milvus-querynode", 4)
        .start();
    let whole = run(&api, &["status", "my-release", "-o", "json", "--chunk-size", "0"]).success().json();
    api.clear_requests();
    let json = run(&api, &["status", "my-release", "-o", "json", "--chunk-size", "3"]).success().json();
    assert_eq!(json, whole, "the same status, read in pages");
    let querynode = component_row(&json, "querynode").expect("querynode row");
    assert_eq!(querynode["ready"], 4);
    assert_eq!(querynode["pods"].as_array().map(Vec::len), Some(4));
    assert_eq!(json["health"], "Healthy", "{}", json["health"]);
    // Milvus and etcd pods carry the instance label, minio's the release label.
    let pods = api.list_json("", "pods", Some("default"), None).expect("pods");
    let labelled = |key: &str| {
        pods.iter().filter(|p| p["metadata"]["labels"][key].as_str() == Some("my-release")).count()
    };
    // n pods in pages of 3; a server may end a full last page with a `continue` to an empty one.
    let pages = |n: usize| n.div_ceil(3)..=n.div_ceil(3) + 1;
    let requests: Vec<RequestRecord> =
        api.requests().into_iter().filter(|r| r.path.ends_with("/pods")).collect();
    let by = |prefix: &str| -> Vec<&RequestRecord> {
        requests
            .iter()
            .filter(|r| r.query_param("labelSelector").is_some_and(|s| s.starts_with(prefix)))
            .collect()
    };
    let instance = by("app.kubernetes.io/instance in (");
    let release = by("release in (");
    assert!(pages(labelled("app.kubernetes.io/instance")).contains(&instance.len()), "{requests:?}");
    assert!(pages(labelled("release")).contains(&release.len()), "{requests:?}");
    assert!(instance.len() > 1 && release.len() > 1, "both lists paged: {requests:?}");
    assert_eq!(instance.len() + release.len(), requests.len(), "no other pod list: {requests:?}");
    for list in [&instance, &release] {
        assert!(list.iter().all(|r| r.query_param("limit") == Some("3")), "{list:?}");
        assert!(list[0].query_param("continue").is_none());
        assert!(list[1..].iter().all(|r| r.query_param("continue").is_some()), "{list:?}");
    }
    let web_pods = api.list_json("", "pods", Some("default"), Some("app=web")).expect("web pods");
    assert_eq!(web_pods.len(), 3, "the other application is there, just not read");
}
