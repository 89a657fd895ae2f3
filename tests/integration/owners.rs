//! Who else owns a release: Argo CD and Flux applying it from Git, a paused Milvus Operator, and
//! `helm template` without a Helm record. `status` names the chain, `list -o wide` shows it from the
//! labels alone, `scale` refuses what would be reverted or ignored unless told otherwise.

use serde_json::{Value, json};

use crate::support::*;

const APPLICATION: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/milvus";
const HELMRELEASE: &str = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/flux-system/helmreleases/milvus";

fn crd(file: &str) -> String {
    format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The Helm render with `edit` applied to the metadata of every object (as a GitOps tool labels all it applies).
fn render_with(path: &str, edit: impl Fn(&mut Value)) -> Vec<Value> {
    let mut docs = fixture_docs(path);
    for doc in &mut docs {
        edit(doc);
    }
    docs
}

/// Argo CD's annotation tracking, as Argo CD writes it on each object it applies for application `app`.
fn argo_tracked(doc: &mut Value, app: &str) {
    let kind = doc["kind"].as_str().unwrap_or_default().to_string();
    let group = doc["apiVersion"].as_str().and_then(|v| v.rsplit_once('/')).map(|(g, _)| g).unwrap_or("");
    let id = format!(
        "{app}:{group}/{kind}:{}/{}",
        doc["metadata"]["namespace"].as_str().unwrap_or("default"),
        doc["metadata"]["name"].as_str().unwrap_or_default()
    );
    doc["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] = Value::from(id);
}

/// helm-controller's labels on what it installs for HelmRelease flux-system/milvus.
fn flux_labelled(doc: &mut Value) {
    doc["metadata"]["labels"]["helm.toolkit.fluxcd.io/name"] = Value::from("milvus");
    doc["metadata"]["labels"]["helm.toolkit.fluxcd.io/namespace"] = Value::from("flux-system");
}

fn application() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "milvus", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            "source": {"repoURL": "https://zilliztech.github.io/milvus-helm", "chart": "milvus",
                "targetRevision": "5.0.19", "helm": {"releaseName": "my-release",
                    "valuesObject": {"queryNode": {"replicas": 1}}}},
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}
        }
    })
}

fn helmrelease(suspend: bool) -> Value {
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "milvus", "namespace": "flux-system"},
        "spec": {
            "interval": "10m", "releaseName": "my-release", "targetNamespace": "default", "suspend": suspend,
            "chart": {"spec": {"chart": "milvus", "version": "5.0.19",
                "sourceRef": {"kind": "HelmRepository", "name": "milvus"}}},
            "values": {"queryNode": {"replicas": 1}}
        }
    })
}

/// The Helm release rendered by Argo CD (helm template: no Helm record), with its Application.
pub fn argo_release() -> milvus_test_api::TestApiBuilder {
    TestApi::builder()
        .age(AGE)
        .fixture(&crd("argocd-application-crd.yaml"))
        .objects(vec![namespace("argocd"), application()])
        .objects(render_with("helm/default.yaml", |d| argo_tracked(d, "milvus")))
}

/// The Helm release installed by Flux's helm-controller (a Helm record), with its HelmRelease.
pub fn flux_release(suspend: bool) -> milvus_test_api::TestApiBuilder {
    TestApi::builder()
        .age(AGE)
        .fixture(&crd("flux-helmrelease-crd.yaml"))
        .objects(vec![namespace("flux-system"), helmrelease(suspend)])
        .objects(render_with("helm/default.yaml", flux_labelled))
        .helm_install(true)
}

/// The operator release `my-release` with `edit` applied to its `Milvus` object.
fn operator_release(edit: impl Fn(&mut Value)) -> TestApi {
    let docs = render_with("operator/cluster.yaml", |d| {
        if d["kind"] == "Milvus" {
            edit(d);
        }
    });
    TestApi::builder().age(AGE).fixture("operator/milvus-crd.yaml").objects(docs).start()
}

fn gets_of(api: &TestApi, path: &str) -> usize {
    api.requests().iter().filter(|r| r.method == "GET" && r.path == path).count()
}

fn assert_nothing_written(api: &TestApi) {
    let writes = mutating(api);
    assert!(writes.is_empty(), "no write may be sent: {writes:?}");
}

pub fn status_line(stdout: &str) -> &str {
    stdout.lines().find(|l| l.starts_with("Owner:")).unwrap_or_else(|| panic!("no Owner line:\n{stdout}"))
}

#[test]
fn owners_argocd_status_names_the_application_read_once() {
    let api = argo_release().start();
    api.clear_requests();
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert_eq!(
        status_line(&out.stdout),
        "Owner:      no Helm record: rendered by helm template, tracked by Argo CD application milvus (auto-sync, self-heal)"
    );
    assert_eq!(
        gets_of(&api, APPLICATION),
        1,
        "one GET of the Application: {:?}",
        request_lines(&api.requests())
    );

    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    let owner = &json["owner"];
    assert_eq!(owner["short"], "argocd:milvus");
    assert_eq!(owner["helm"]["record"], "none");
    assert_eq!(owner["helm"]["renderedByTemplate"], true);
    let gitops = &owner["gitops"];
    assert_eq!(gitops["tool"], "argocd");
    assert_eq!(gitops["namespace"], "argocd");
    assert_eq!(gitops["name"], "milvus");
    assert_eq!(gitops["trackedBy"], "argocd.argoproj.io/tracking-id");
    assert_eq!(gitops["readable"], true);
    assert_eq!(gitops["repoURL"], "https://zilliztech.github.io/milvus-helm");
    assert_eq!(gitops["chart"], "milvus");
    assert_eq!(gitops["targetRevision"], "5.0.19");
    assert_eq!(gitops["autoSync"], true);
    assert_eq!(gitops["selfHeal"], true);
    let yaml = run(&api, &["status", "my-release", "-o", "yaml"]).success().yaml();
    assert_eq!(serde_json::to_value(&yaml).expect("yaml as json")["owner"], *owner);
}

#[test]
fn owners_argocd_scale_is_refused_naming_the_application_and_the_value() {
    let api = argo_release().start();
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    for needed in [
        "error: cannot scale my-release: my-release is tracked by Argo CD application milvus (auto-sync, self-heal)",
        "Argo CD sets the replicas back at once (self-heal is on)",
        "queryNode.replicas in spec.source.helm.valuesObject (now 1)",
        "https://zilliztech.github.io/milvus-helm, chart milvus 5.0.19",
        "--ignore-gitops",
        "Nothing was changed.",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing:\n{}", out.stderr);
    }
    assert_nothing_written(&api);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 1);
    // A dry run is refused alike: it shows what the real run would do.
    run(&api, &["scale", "my-release", "querynode=3", "--dry-run"]).failure(1);
    assert_nothing_written(&api);
}

#[test]
fn owners_argocd_ignore_gitops_scales_with_a_warning() {
    let api = argo_release().start();
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=2", "--ignore-gitops"]).success();
    assert!(
        out.stdout.contains("deployment.apps/my-release-milvus-querynode scaled (1 → 2)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "Warning: --ignore-gitops: my-release is tracked by Argo CD application milvus (auto-sync, self-heal): \
             the change is temporary, Argo CD sets it back at once (self-heal is on)"
        ),
        "{}",
        out.stderr
    );
    let patches: Vec<_> = mutating(&api).into_iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].path.ends_with("/deployments/my-release-milvus-querynode"), "{patches:?}");
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    // -o json carries the warning.
    let json =
        run(&api, &["scale", "my-release", "datanode=2", "--ignore-gitops", "-o", "json"]).success().json();
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("--ignore-gitops"), "{warnings}");
}

#[test]
fn owners_argocd_application_forbidden_is_named_without_details() {
    let api = argo_release().user("ops", Rules::admin().deny("get", "applications")).start();
    let ops = api.kubeconfig_for("ops");
    let status = run_via(Via::Binary, Some(&ops), &["status", "my-release"]).success();
    assert_eq!(
        status_line(&status.stdout),
        "Owner:      no Helm record: rendered by helm template, tracked by Argo CD application milvus \
         (details not readable: forbidden to get applications.argoproj.io in namespace argocd)"
    );
    let json = run_via(Via::Binary, Some(&ops), &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["owner"]["gitops"]["readable"], false);
    assert_eq!(json["owner"]["gitops"]["name"], "milvus");
    assert!(json["owner"]["gitops"].get("autoSync").is_none(), "{}", json["owner"]);
    api.clear_requests();
    let out = run_via(Via::Binary, Some(&ops), &["scale", "my-release", "querynode=3"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    assert!(
        stderr.contains(
            "tracked by Argo CD application milvus: Argo CD sets the replicas back at its next sync"
        ),
        "{}",
        out.stderr
    );
    assert!(
        stderr.contains("Change queryNode.replicas=3 wherever the Application's source keeps it (the Application could not be read: forbidden to get applications.argoproj.io in namespace argocd)"),
        "{}",
        out.stderr
    );
    assert_nothing_written(&api);
}

#[test]
fn owners_argocd_application_missing_in_its_own_namespace_is_named() {
    // Apps in any namespace: the tracking id names the Application's namespace; none exists there.
    let api = TestApi::builder()
        .age(AGE)
        .fixture(&crd("argocd-application-crd.yaml"))
        .objects(render_with("helm/default.yaml", |d| argo_tracked(d, "team_vdb")))
        .start();
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(
        status_line(&out.stdout),
        "Owner:      no Helm record: rendered by helm template, tracked by Argo CD application team/vdb \
         (details not readable: applications.argoproj.io team/vdb not found)"
    );
    let list = run(&api, &["list", "-o", "json"]).success().json();
    assert_eq!(list["items"][0]["owner"], "argocd:team/vdb");
    assert_eq!(list["items"][0]["gitops"]["namespace"], "team");
}

#[test]
fn owners_helm_template_without_argo_says_so_and_scale_warns() {
    // Rendered by a pipeline: chart labels, no Helm record, no GitOps tracking.
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").start();
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(
        status_line(&out.stdout),
        "Owner:      no Helm record: rendered by helm template (Argo CD or a pipeline?)"
    );
    let out = run(&api, &["scale", "my-release", "querynode=2"]).success();
    assert!(
        out.stderr.contains("Warning: no Helm record: my-release was rendered by helm template"),
        "{}",
        out.stderr
    );
    // Installed with Helm: the record's revision.
    let api = helm_release("helm/default.yaml");
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(status_line(&out.stdout), "Owner:      Helm release my-release rev 1");
}

#[test]
fn owners_flux_status_and_scale_refusal_name_the_helmrelease_value() {
    let api = flux_release(true).start();
    api.clear_requests();
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(
        status_line(&out.stdout),
        "Owner:      Helm release my-release rev 1, managed by Flux HelmRelease flux-system/milvus (suspended)"
    );
    assert_eq!(gets_of(&api, HELMRELEASE), 1);
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["owner"]["short"], "flux:flux-system/milvus");
    assert_eq!(json["owner"]["helm"]["record"], "recorded");
    assert_eq!(json["owner"]["helm"]["revision"], 1);
    assert_eq!(json["owner"]["gitops"]["tool"], "flux");
    assert_eq!(json["owner"]["gitops"]["suspend"], true);
    assert_eq!(json["owner"]["gitops"]["trackedBy"], "helm.toolkit.fluxcd.io/name");

    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    for needed in [
        "my-release is managed by Flux HelmRelease flux-system/milvus: Flux sets the replicas back when it is resumed",
        "Change spec.values.queryNode.replicas (now 1) of the HelmRelease",
        "--ignore-gitops",
        "Nothing was changed.",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing:\n{}", out.stderr);
    }
    assert_nothing_written(&api);

    let out = run(&api, &["scale", "my-release", "querynode=2", "--ignore-gitops"]).success();
    assert!(out.stderr.contains("Warning: --ignore-gitops: my-release is managed by Flux HelmRelease flux-system/milvus: the change is temporary"), "{}", out.stderr);
    assert_eq!(deployment_replicas(&api, "default", "my-release-milvus-querynode"), 2);
    // The record helm-controller keeps is left alone, and no `helm upgrade` is suggested: the value
    // belongs in the HelmRelease.
    assert!(!out.stderr.contains("helm upgrade"), "{}", out.stderr);
    assert_eq!(crate::helm_record::revisions(&api), [(1, "deployed".into())]);
    let json =
        run(&api, &["scale", "my-release", "querynode=3", "--ignore-gitops", "-o", "json"]).success().json();
    assert_eq!(json["helm"]["record"]["state"], "skipped", "{json}");
    assert_eq!(json["helm"]["record"]["reason"], "Flux HelmRelease flux-system/milvus applies the release");
}

#[test]
fn owners_flux_helmrelease_forbidden_still_refuses_by_name() {
    let api = flux_release(false).user("ops", Rules::admin().deny("get", "helmreleases")).start();
    let ops = api.kubeconfig_for("ops");
    let status = run_via(Via::Binary, Some(&ops), &["status", "my-release"]).success();
    assert_eq!(
        status_line(&status.stdout),
        "Owner:      Helm release my-release rev 1, managed by Flux HelmRelease flux-system/milvus \
         (details not readable: forbidden to get helmreleases.helm.toolkit.fluxcd.io in namespace flux-system)"
    );
    api.clear_requests();
    let out = run_via(Via::Binary, Some(&ops), &["scale", "my-release", "datanode=2"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    assert!(stderr.contains("Change spec.values.dataNode.replicas of the HelmRelease (the HelmRelease could not be read: forbidden"), "{}", out.stderr);
    assert_nothing_written(&api);
}

#[test]
fn owners_operator_paused_reconcile_refuses_and_allow_paused_writes() {
    let api = operator_release(|m| {
        m["metadata"]["annotations"]["milvus.io/pause-reconcile"] = Value::from("true");
    });
    let out = run(&api, &["status", "my-release"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    assert_eq!(status_line(&out.stdout), "Owner:      Milvus object my-release (reconcile paused)");
    let json = run(&api, &["status", "my-release", "-o", "json"]).success().json();
    assert_eq!(json["owner"]["operator"]["reconcilePaused"], true);
    assert_eq!(json["owner"]["short"], "operator(paused)");

    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    for needed in [
        "the operator does not reconcile it",
        "kubectl annotate milvus my-release -n default milvus.io/pause-reconcile-",
        "--allow-paused",
        "Nothing was changed.",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing:\n{}", out.stderr);
    }
    assert_nothing_written(&api);
    // --wait could never finish: refused up front, with or without --allow-paused.
    for extra in [&["--wait"][..], &["--wait", "--allow-paused"]] {
        let args = [&["scale", "my-release", "querynode=3"][..], extra].concat();
        let out = run(&api, &args).failure(1);
        assert!(out.stderr.contains("--wait could never finish"), "{}", out.stderr);
    }
    assert_nothing_written(&api);

    let out = run(&api, &["scale", "my-release", "querynode=3", "--allow-paused"]).success();
    assert!(
        out.stdout.contains("milvus.milvus.io/my-release patched (queryNode.replicas 2 → 3)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("Warning: --allow-paused: the Milvus object my-release is annotated"),
        "{}",
        out.stderr
    );
    let cr = api.get_json("milvus.io", "v1beta1", "milvuses", Some("default"), "my-release").expect("cr");
    assert_eq!(cr["spec"]["components"]["queryNode"]["replicas"], 3);
}

#[test]
fn owners_operator_manual_mode_points_at_the_deployment() {
    let api = operator_release(|m| {
        m["spec"]["components"]["enableManualMode"] = Value::from(true);
    });
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(status_line(&out.stdout), "Owner:      Milvus object my-release (manual mode)");
    api.clear_requests();
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    let stderr = out.stderr.replace('\n', " ");
    for needed in [
        "is in manual mode (spec.components.enableManualMode: true): the operator no longer copies replicas",
        "kubectl scale deployment/my-release-milvus-querynode-0 -n default --replicas=3",
        "\"enableManualMode\":false",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing:\n{}", out.stderr);
    }
    assert_nothing_written(&api);
}

#[test]
fn owners_operator_paused_components_hold_two_deployment_components_only() {
    let api = operator_release(|m| {
        m["spec"]["components"]["paused"] = Value::from(true);
    });
    let out = run(&api, &["status", "my-release"]).success();
    assert_eq!(status_line(&out.stdout), "Owner:      Milvus object my-release (components paused)");
    api.clear_requests();
    // querynode runs as two Deployments: the operator does not scale it while paused.
    let out = run(&api, &["scale", "my-release", "querynode=3"]).failure(1);
    assert!(
        out.stderr
            .replace('\n', " ")
            .contains("spec.components.paused is true: the operator does not scale querynode"),
        "{}",
        out.stderr
    );
    assert_nothing_written(&api);
    // datanode is one Deployment: the operator still sets its replicas (only rollouts pause).
    let out = run(&api, &["scale", "my-release", "datanode=3"]).success();
    assert!(out.stdout.contains("(dataNode.replicas 2 → 3)"), "{}", out.stdout);
}

#[test]
fn owners_list_wide_and_json_from_labels_only() {
    let api = TestApi::builder()
        .age(AGE)
        .fixture(&crd("argocd-application-crd.yaml"))
        .fixture(&crd("flux-helmrelease-crd.yaml"))
        .objects(vec![namespace("argocd"), namespace("flux-system"), namespace("gitops"), application()])
        .objects(render_with("helm/default.yaml", |d| argo_tracked(d, "milvus")))
        .release("argo")
        .namespace("gitops")
        .objects(render_with("helm/default.yaml", flux_labelled))
        .release("flux")
        .namespace("gitops")
        .helm_install(true)
        .fixture_as("helm/default.yaml", "plain", "gitops")
        .helm_install(true)
        .fixture("operator/milvus-crd.yaml")
        .objects(render_with("operator/cluster.yaml", |d| {
            if d["kind"] == "Milvus" {
                d["metadata"]["annotations"]["milvus.io/pause-reconcile"] = Value::from("true");
            }
        }))
        .release("held")
        .namespace("gitops")
        .start();
    api.clear_requests();
    let out = run(&api, &["list", "-n", "gitops", "-o", "wide"]).success();
    if backend() == Backend::Loopback {
        insta::assert_snapshot!(out.stdout);
    }
    let owner_of = |name: &str| -> String {
        let line = out.stdout.lines().find(|l| l.starts_with(&format!("{name} "))).expect("row");
        line.split_whitespace().nth(7).expect("OWNER column").to_string()
    };
    assert!(out.stdout.lines().next().is_some_and(|h| h.contains("OWNER")), "{}", out.stdout);
    assert_eq!(owner_of("argo"), "argocd:milvus");
    assert_eq!(owner_of("flux"), "flux:flux-system/milvus");
    assert_eq!(owner_of("plain"), "helm");
    assert_eq!(owner_of("held"), "operator(paused)");
    // From the inventory only: no Application, HelmRelease or Secret is read.
    let requests = request_lines(&resource_requests(&api));
    assert!(
        requests
            .iter()
            .all(|r| !r.contains("argoproj.io") && !r.contains("fluxcd.io") && !r.contains("secrets")),
        "{requests:?}"
    );

    let json = run(&api, &["list", "-n", "gitops", "-o", "json"]).success().json();
    let items = json["items"].as_array().expect("items");
    let item = |name: &str| items.iter().find(|i| i["name"] == name).cloned().expect("item");
    assert_eq!(item("argo")["owner"], "argocd:milvus");
    assert_eq!(
        item("argo")["gitops"],
        json!({"tool": "argocd", "namespace": "argocd", "name": "milvus", "trackedBy": "argocd.argoproj.io/tracking-id"})
    );
    assert_eq!(item("flux")["gitops"]["tool"], "flux");
    assert_eq!(item("plain")["owner"], "helm");
    assert!(item("plain").get("gitops").is_none());
    assert_eq!(item("held")["owner"], "operator(paused)");
}
