use crate::support::*;

#[test]
fn list_all_namespaces_through_kubectl() {
    let api = three_releases();
    let out = kubectl(&api, &["list", "-A"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    } else {
        // Real pod names and ages differ from run to run: the rows, not the snapshot.
        let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
        let release = |r: &Vec<&str>| r[..7].join(" ");
        assert_eq!(
            rows.iter().map(release).collect::<Vec<_>>(),
            [
                "NAMESPACE NAME MANAGED-BY MODE VERSION COMPONENTS STATUS",
                "default my-release helm cluster v2.6.15 5/5 Healthy",
                "operator vectors operator cluster v2.6.11 5/5 Healthy",
                "prod search helm cluster v2.6.15 8/9 Degraded",
            ],
            "{}",
            out.stdout
        );
    }
    assert_eq!(out.stderr, "");
}

#[test]
fn list_is_the_same_directly_and_through_kubectl() {
    let api = three_releases();
    let direct = run(&api, &["list", "-A", "-o", "wide"]).success();
    let via_kubectl = kubectl(&api, &["list", "-A", "-o", "wide"]).success();
    if backend() == Backend::Loopback {
        assert_eq!(direct.stdout, via_kubectl.stdout);
        insta::assert_snapshot!(direct.stdout);
    } else {
        // A real server's objects are seconds old, and the two runs may straddle a second.
        assert_eq!(without_ages(&direct.stdout), without_ages(&via_kubectl.stdout));
    }
}

#[test]
fn alias_ls_and_current_namespace_scope() {
    let api = three_releases();
    let out = kubectl(&api, &["ls"]).success();
    // The kubeconfig's namespace is `default`: only my-release, and no NAMESPACE column.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].starts_with("NAME "), "{}", lines[0]);
    assert!(lines[1].starts_with("my-release "), "{}", lines[1]);

    let prod = kubectl(&api, &["ls", "-n", "prod", "-o", "name"]).success();
    assert_eq!(prod.stdout, "milvus/search\n");
}

#[test]
fn list_json_has_the_documented_schema() {
    let api = three_releases();
    let out = run(&api, &["list", "-A", "-o", "json"]).success();
    let list = out.json();
    assert_eq!(list["apiVersion"], "kubectl-milvus/v1");
    assert_eq!(list["kind"], "ReleaseList");
    let items = list["items"].as_array().expect("items");
    let names: Vec<(&str, &str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["namespace"].as_str().unwrap_or(""),
                i["name"].as_str().unwrap_or(""),
                i["managedBy"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("default", "my-release", "helm"), ("operator", "vectors", "operator"), ("prod", "search", "helm")]
    );
    let search = &items[2];
    assert_eq!(search["status"], "Degraded");
    assert_eq!(search["mode"], "cluster");
    assert_eq!(search["version"], "v2.6.15");
    assert_eq!(search["chart"], "milvus-5.0.19");
    assert_eq!(search["components"]["total"], 9);
    assert_eq!(search["components"]["ready"], 8);
    assert!(search["reason"].as_str().unwrap_or("").contains("querynode"), "{search}");
    assert!(search["created"].as_str().is_some_and(|c| c.ends_with('Z')), "{search}");
    let dependencies: Vec<&str> =
        search["dependencies"].as_array().expect("deps").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(dependencies, ["etcd", "minio", "pulsarv3"]);
    assert_eq!(items[1]["operatorStatus"], "Healthy");

    // YAML carries the same data.
    let yaml = run(&api, &["list", "-A", "-o", "yaml"]).success().yaml();
    assert_eq!(serde_json::to_value(&yaml).expect("yaml as json"), list);
}

#[test]
fn list_selector_narrows_releases() {
    let api = three_releases();
    let out =
        run(&api, &["list", "-A", "-l", "app.kubernetes.io/instance in (search,vectors)", "-o", "name"])
            .success();
    assert_eq!(out.stdout, "milvus/vectors\nmilvus/search\n");
    let none = run(&api, &["list", "-A", "-l", "team=nobody"]).success();
    assert_eq!(none.stdout, "");
    assert_eq!(none.stderr, "No Milvus releases found.\n");
    let bad = run(&api, &["list", "-l", "app in db"]).failure(1);
    assert!(bad.stderr.starts_with("error: invalid value 'app in db' for '--selector"), "{}", bad.stderr);
}

#[test]
fn list_with_name_override() {
    let renamed = fixture_text("helm/kafka.yaml")
        .replace("app.kubernetes.io/name: milvus", "app.kubernetes.io/name: vectordb");
    let api = TestApi::builder().age(AGE).yaml(&renamed).helm_install(true).start();
    let default = run(&api, &["list", "-o", "name"]).success();
    assert_eq!(default.stdout, "");
    let out = run(&api, &["list", "--name-override", "vectordb", "-o", "name"]).success();
    assert_eq!(out.stdout, "milvus/my-release\n");
}

#[test]
fn list_without_the_milvus_crd_still_shows_helm_releases() {
    let api = helm_release("helm/default.yaml");
    let out = run(&api, &["list", "-o", "name"]).success();
    assert_eq!(out.stdout, "milvus/my-release\n");
    assert_eq!(
        out.stderr,
        "Warning: the Milvus Operator CRD (milvuses.milvus.io) is not installed: showing Helm releases only\n"
    );
}

#[test]
fn list_forbidden_to_read_milvuses_still_shows_helm_releases() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture("helm/default.yaml")
        .fixture("operator/milvus-crd.yaml")
        .fixture_as("operator/cluster.yaml", "vectors", "default")
        .user("viewer", Rules::read_only().deny("list", "milvuses"))
        .start();
    let out = run_via(Via::Binary, Some(&api.kubeconfig_for("viewer")), &["list", "-o", "name"]).success();
    // Operator workloads are still seen (their labels say so), but the Milvus object is not readable.
    assert_eq!(out.stdout, "milvus/my-release\nmilvus/vectors\n");
    assert!(out.stderr.starts_with("Warning: cannot list milvuses.milvus.io in the namespace \"default\": Milvus Operator releases are not shown"), "{}", out.stderr);
    assert!(out.stderr.contains("User \"viewer\" cannot list resource \"milvuses\""), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn list_all_namespaces_makes_one_concurrent_list_per_kind() {
    let api = three_releases();
    api.clear_requests();
    run(&api, &["list", "-A"]).success();
    let requests = resource_requests(&api);
    assert_eq!(
        request_lines(&requests),
        [
            "GET /api/v1/pods",
            "GET /api/v1/pods",
            "GET /apis/apps/v1/deployments",
            "GET /apis/apps/v1/statefulsets",
            "GET /apis/milvus.io/v1beta1/milvuses",
        ]
    );
    assert!(requests.iter().all(|r| r.verb.as_deref() == Some("list") && !r.is_mutating()));
    // Every list is paged.
    assert!(requests.iter().all(|r| r.query_param("limit") == Some("500")), "{requests:?}");
    // Pods are read after the releases are known, and only theirs (and their dependencies').
    let set = "my-release,my-release-etcd,my-release-kafka,my-release-minio,my-release-pulsar,\
               search,search-etcd,search-kafka,search-minio,search-pulsar,\
               vectors,vectors-etcd,vectors-kafka,vectors-minio,vectors-pulsar";
    let mut selectors: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.ends_with("/pods"))
        .filter_map(|r| r.query_param("labelSelector"))
        .collect();
    selectors.sort();
    assert_eq!(selectors, [format!("app.kubernetes.io/instance in ({set})"), format!("release in ({set})")]);
    let first_pods = requests.iter().position(|r| r.path.ends_with("/pods")).expect("pods");
    assert!(requests[..first_pods].iter().filter(|r| !r.path.ends_with("/pods")).count() == 3);
    // Nothing else: no discovery round-trips either.
    assert_eq!(api.requests().len(), 5);
}

#[test]
fn a_large_cluster_reads_its_release_pods_in_concurrent_lists_each_pod_once() {
    let api = three_releases();
    // One unpaged list of each selector: the reference.
    let whole = run(&api, &["list", "-A", "-o", "json", "--chunk-size", "0"]).success();
    let whole: serde_json::Value = serde_json::from_str(&whole.stdout).expect("json");
    // Pages of 3 objects: the three releases' pods fill more than four pages per list, so the
    // instance-labelled pods are read in three lists of disjoint releases, issued at once.
    api.clear_requests();
    let paged = run(&api, &["list", "-A", "-o", "json", "--chunk-size", "3"]).success();
    let paged: serde_json::Value = serde_json::from_str(&paged.stdout).expect("json");
    assert_eq!(paged, whole, "the same releases, health and counts");
    let requests = resource_requests(&api);
    let pods: Vec<_> = requests.iter().filter(|r| r.path.ends_with("/pods")).collect();
    assert!(pods.iter().all(|r| r.query_param("labelSelector").is_some()), "never every pod: {pods:?}");
    let first_pages: Vec<&str> = pods
        .iter()
        .filter(|r| r.query_param("continue").is_none())
        .filter_map(|r| r.query_param("labelSelector"))
        .collect();
    let instance: Vec<&str> =
        first_pages.iter().copied().filter(|s| s.starts_with("app.kubernetes.io/instance in (")).collect();
    assert_eq!(instance.len(), 3, "{first_pages:#?}");
    assert_eq!(first_pages.len(), 4, "and one list of release-labelled pods: {first_pages:#?}");
    // Each release is in exactly one of the instance lists.
    let mut named: Vec<&str> = instance
        .iter()
        .flat_map(|s| {
            s.trim_start_matches("app.kubernetes.io/instance in (").trim_end_matches(')').split(',')
        })
        .collect();
    named.sort_unstable();
    let mut unique = named.clone();
    unique.dedup();
    assert_eq!(named, unique, "{instance:#?}");
    for release in ["my-release", "search", "vectors", "vectors-etcd"] {
        assert!(named.contains(&release), "{release}: {instance:#?}");
    }
}

#[test]
fn list_in_a_namespace_stays_in_it() {
    let api = three_releases();
    api.clear_requests();
    run(&api, &["list", "-n", "prod"]).success();
    assert_eq!(
        request_lines(&api.requests()),
        [
            "GET /api/v1/namespaces/prod/pods",
            "GET /api/v1/namespaces/prod/pods",
            "GET /apis/apps/v1/namespaces/prod/deployments",
            "GET /apis/apps/v1/namespaces/prod/statefulsets",
            "GET /apis/milvus.io/v1beta1/namespaces/prod/milvuses",
        ]
    );
}
