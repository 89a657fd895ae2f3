//! Real Helm against a real API server: what `helm upgrade` does to a replica count that
//! `kubectl milvus scale` changed, and whether the plugin reads the release record real Helm writes.
//!
//! Helm 3 (v3.17.3) and Helm 4 (v4.1.4) come from `scripts/tools.sh build` (`.ci/run` does; see
//! its header for the npm packages). The chart is made at test time from the fixture
//! `helm/default.yaml`, a `helm template my-release milvus/milvus -n default` render of chart
//! 5.0.19: every object literal except the Deployments' `spec.replicas`, which come from
//! `<key>.replicas` in values.yaml as in the real chart, so `helm upgrade --reuse-values` renders the
//! recorded value the way the real chart does.
//!
//! Every test here has a name ending in `_kube_apiserver_only`: the loopback run skips them by name
//! (`--skip kube_apiserver_only` in `.ci/run`), and on the loopback they fail rather than pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const QUERYNODE: &str = "my-release-milvus-querynode";

/// The Helm values key of each Deployment of the renders (`src/milvus/component.rs`'s table).
const REPLICA_KEYS: &[(&str, &str)] = &[
    ("my-release-milvus-datacoord", "dataCoordinator"),
    ("my-release-milvus-datanode", "dataNode"),
    ("my-release-milvus-indexcoord", "indexCoordinator"),
    ("my-release-milvus-indexnode", "indexNode"),
    ("my-release-milvus-mixcoord", "mixCoordinator"),
    ("my-release-milvus-proxy", "proxy"),
    ("my-release-milvus-querycoord", "queryCoordinator"),
    ("my-release-milvus-querynode", "queryNode"),
    ("my-release-milvus-rootcoord", "rootCoordinator"),
    ("my-release-milvus-streamingnode", "streamingNode"),
];

/// A chart `milvus` 5.0.19 made from the render, in a temporary directory.
pub struct Chart {
    dir: tempfile::TempDir,
}

impl Chart {
    pub fn from_fixture(fixture: &str) -> Chart {
        let (templates, values) = templated(&fixture_text(fixture));
        let dir = tempfile::tempdir().expect("chart dir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("templates")).expect("templates dir");
        let app_version = templates
            .lines()
            .find_map(|l| l.trim().strip_prefix("app.kubernetes.io/version:"))
            .map(|v| v.trim().trim_matches('"').to_string())
            .expect("app.kubernetes.io/version in the render");
        let chart_yaml = format!(
            "apiVersion: v2\nname: milvus\nversion: 5.0.19\nappVersion: \"{app_version}\"\n\
             description: Milvus, made from a render of chart 5.0.19 for tests\n"
        );
        std::fs::write(root.join("Chart.yaml"), chart_yaml).expect("Chart.yaml");
        std::fs::write(root.join("values.yaml"), values).expect("values.yaml");
        std::fs::write(root.join("templates/render.yaml"), templates).expect("templates");
        Chart { dir }
    }

    pub fn path(&self) -> &str {
        self.dir.path().to_str().expect("UTF-8 temp dir")
    }
}

/// The render with each Deployment's `replicas:` made `{{ .Values.<key>.replicas }}` and each
/// HorizontalPodAutoscaler's `minReplicas:`/`maxReplicas:` `{{ .Values.<key>.hpa.… }}` (the key of
/// the Deployment it targets), as the real chart renders them, and the values.yaml holding the
/// render's numbers under those keys.
fn templated(render: &str) -> (String, String) {
    let mut values: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    let mut docs = Vec::new();
    let key_of = |name: &str| REPLICA_KEYS.iter().find(|(d, _)| *d == name).map(|(_, k)| *k);
    for doc in render.split("\n---\n") {
        let kind = doc.lines().find_map(|l| l.strip_prefix("kind: ")).unwrap_or_default();
        let name = doc.lines().find_map(|l| l.strip_prefix("  name: ")).unwrap_or_default();
        let mut doc = doc.to_string();
        match kind {
            "Deployment" => {
                let key = key_of(name).unwrap_or_else(|| panic!("Deployment {name} has no values key"));
                // A Deployment an HPA scales has no replicas in the render.
                if let Some(line) = doc.lines().find(|l| l.starts_with("  replicas: ")).map(str::to_string) {
                    let number = line.trim_start_matches("  replicas: ");
                    values.entry(key).or_default().push(format!("  replicas: {number}"));
                    doc = doc.replacen(&line, &format!("  replicas: {{{{ .Values.{key}.replicas }}}}"), 1);
                }
            }
            "HorizontalPodAutoscaler" => {
                let target = doc
                    .lines()
                    .skip_while(|l| !l.starts_with("  scaleTargetRef:"))
                    .find_map(|l| l.strip_prefix("    name: "))
                    .expect("scaleTargetRef.name");
                let key = key_of(target).unwrap_or_else(|| panic!("{target} has no values key"));
                values.entry(key).or_default().push("  hpa:".into());
                for field in ["minReplicas", "maxReplicas"] {
                    let line = doc
                        .lines()
                        .find(|l| l.starts_with(&format!("  {field}: ")))
                        .map(str::to_string)
                        .unwrap_or_else(|| panic!("{name} has no {field}"));
                    let number = line.trim_start_matches(&format!("  {field}: ")).to_string();
                    values.entry(key).or_default().push(format!("    {field}: {number}"));
                    doc = doc.replacen(&line, &format!("  {field}: {{{{ .Values.{key}.hpa.{field} }}}}"), 1);
                }
            }
            _ => {}
        }
        docs.push(doc);
    }
    let values: String =
        values.iter().map(|(key, lines)| format!("{key}:\n{}\n", lines.join("\n"))).collect();
    (docs.join("\n---\n"), values)
}

/// The executable of a tool built by scripts/tools.sh; panics with its message (how to build it).
fn tool(name: &str) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tools.sh");
    let out = Command::new("bash").arg(script).args(["path", name]).output().expect("run scripts/tools.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} is needed: {}", stderr.trim());
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// One Helm (`helm3`, `helm4`) against one API server, with its config, cache and data in a
/// temporary directory and no repositories.
pub struct Helm<'a> {
    exe: PathBuf,
    api: &'a TestApi,
    home: tempfile::TempDir,
    /// `HELM_DRIVER`, when not Helm's default (Secrets).
    driver: Option<&'static str>,
}

impl<'a> Helm<'a> {
    pub fn new(name: &str, api: &'a TestApi) -> Helm<'a> {
        Helm { exe: tool(name), api, home: tempfile::tempdir().expect("helm home"), driver: None }
    }

    /// This Helm with `HELM_DRIVER=driver`.
    pub fn with_driver(self, driver: &'static str) -> Helm<'a> {
        Helm { driver: Some(driver), ..self }
    }

    /// `helm ARGS --kubeconfig … -n default`.
    pub fn run(&self, args: &[&str]) -> Run {
        let home = self.home.path();
        let output = Command::new(&self.exe)
            .args(args)
            .arg("--kubeconfig")
            .arg(self.api.kubeconfig_path())
            .args(["-n", "default"])
            .env_remove("KUBECONFIG")
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .envs(self.driver.map(|d| ("HELM_DRIVER", d)))
            .output()
            .expect("start helm");
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            code: output.status.code().unwrap_or(-1),
        }
    }
}

/// A real control plane with nothing of Milvus in it.
fn empty_cluster() -> TestApi {
    assert_eq!(
        backend(),
        Backend::KubeApiserver,
        "real Helm needs a real API server: run with MILVUS_TEST_BACKEND=kube-apiserver \
         (the loopback run skips *_kube_apiserver_only)"
    );
    TestApi::builder().start()
}

/// Waits until Deployment `name` has `ready` ready replicas of `ready` (the real controllers and the
/// kubelet stand-in at work).
fn wait_ready(api: &TestApi, name: &str, ready: i64) {
    api.wait_until(
        |s| {
            s.get("apps", "deployments", Some("default"), name)
                .is_some_and(|d| d["spec"]["replicas"] == ready && d["status"]["readyReplicas"] == ready)
        },
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{name}: {ready} ready replicas: {e:?}"));
}

fn querynodes(api: &TestApi) -> i64 {
    deployment_replicas(api, "default", QUERYNODE)
}

/// Installs the chart with `helm` (plus `extra`), then scales querynode 1 → 3 through
/// `kubectl milvus` without touching Helm's record (`--helm-record=false`): what happens to a
/// change made outside Helm.
fn install_then_scale(api: &TestApi, helm: &Helm, chart: &Chart, extra: &[&str]) {
    let args = [&["install", "my-release", chart.path()][..], extra].concat();
    helm.run(&args).success();
    wait_ready(api, QUERYNODE, 1);
    kubectl(api, &["scale", "my-release", "querynode=3", "--helm-record=false"]).success();
    assert_eq!(querynodes(api), 3);
}

/// `helm upgrade my-release CHART --reuse-values` plus `extra`.
fn upgrade(helm: &Helm, chart: &Chart, extra: &[&str]) -> Run {
    helm.run(&[&["upgrade", "my-release", chart.path(), "--reuse-values"][..], extra].concat())
}

/// The drift warning `status` prints while querynode runs 3 and the record says 1, for a release
/// Helm updates client-side (Helm 3, Helm 4 with `--server-side=false`)…
const DRIFT: &str = "querynode: 3 live, Helm release says 1 (queryNode.replicas); \
                     the next helm upgrade of my-release sets it back";
/// …and for one Helm 4 applies server-side (its default).
const DRIFT_SERVER_SIDE: &str = "querynode: 3 live, Helm release says 1 (queryNode.replicas); \
                     the next helm upgrade of my-release fails with a conflict on spec.replicas \
                     (Helm applies server-side), and with --force-conflicts sets it back";

fn status(api: &TestApi) -> String {
    run(api, &["status", "my-release"]).success().stdout
}

/// The revision and status of each release Secret Helm wrote, oldest first, and that each is one
/// the plugin reads (type `helm.sh/release.v1`, labels `owner=helm,name=my-release`).
fn release_secrets(api: &TestApi) -> Vec<(i64, String)> {
    let mut revisions: Vec<(i64, String)> = api
        .list_json("", "secrets", Some("default"), Some("owner=helm"))
        .expect("list release Secrets")
        .into_iter()
        .map(|s| {
            assert_eq!(s["type"], "helm.sh/release.v1", "{}", s["metadata"]);
            let labels = &s["metadata"]["labels"];
            assert_eq!(labels["name"], "my-release", "{}", s["metadata"]);
            let revision = labels["version"].as_str().and_then(|v| v.parse().ok()).expect("version label");
            let name = format!("sh.helm.release.v1.my-release.v{revision}");
            assert_eq!(s["metadata"]["name"], name.as_str());
            (revision, labels["status"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    revisions.sort();
    revisions
}

// ---------------------------------------------------------------------------------------------
// What `helm upgrade --reuse-values` does after `kubectl milvus scale --helm-record=false`.

#[test]
fn helm3_upgrade_reverts_a_scale_kube_apiserver_only() {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new("helm3", &api);
    install_then_scale(&api, &helm, &chart, &[]);
    let out = upgrade(&helm, &chart, &[]).success();
    assert!(out.stdout.contains("Release \"my-release\" has been upgraded."), "{}", out.stdout);
    // Helm 3's three-way merge compares the new manifest with the live object and patches the
    // difference: the record's 1 is written back over the 3.
    assert_eq!(querynodes(&api), 1);
    assert_eq!(release_secrets(&api), [(1, "superseded".into()), (2, "deployed".into())]);
    assert!(!status(&api).contains("Helm release says"));
}

#[test]
fn helm4_client_side_upgrade_reverts_a_scale_kube_apiserver_only() {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new("helm4", &api);
    // --server-side=false at install; the upgrade's default (`auto`) follows the release's method.
    install_then_scale(&api, &helm, &chart, &["--server-side=false"]);
    upgrade(&helm, &chart, &[]).success();
    assert_eq!(querynodes(&api), 1);
    assert!(!status(&api).contains("Helm release says"));
}

#[test]
fn helm4_server_side_upgrade_is_refused_by_the_scale_kube_apiserver_only() {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new("helm4", &api);
    install_then_scale(&api, &helm, &chart, &[]);
    // Helm 4 applies server-side (field manager `helm`, no force); the scale's merge patch made
    // `kubectl-milvus` the manager of spec.replicas, so the apply conflicts and nothing changes.
    let out = upgrade(&helm, &chart, &[]).failure(1);
    assert!(
        out.stderr.contains(
            "Error: UPGRADE FAILED: conflict occurred while applying object \
             default/my-release-milvus-querynode apps/v1, Kind=Deployment: Apply failed with 1 \
             conflict: conflict with \"kubectl-milvus\" using apps/v1: .spec.replicas"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(querynodes(&api), 3);
    // Helm records the attempt as a failed revision; the deployed one, which the plugin reads, is
    // still revision 1, so the drift warning stays.
    assert_eq!(release_secrets(&api), [(1, "deployed".into()), (2, "failed".into())]);
    let after = status(&api);
    assert!(after.contains(DRIFT_SERVER_SIDE), "{after}");

    // --force-conflicts takes spec.replicas over and writes the record's 1.
    upgrade(&helm, &chart, &["--force-conflicts"]).success();
    assert_eq!(querynodes(&api), 1);
    assert_eq!(release_secrets(&api).last(), Some(&(3, "deployed".into())));
    assert!(!status(&api).contains("Helm release says"));
}

// ---------------------------------------------------------------------------------------------
// The plugin reads the release record real Helm writes.

/// The parts of `status` that do not depend on the dependencies' pods: the header without the
/// health line, the components table and the warnings.
fn status_sections(text: &str) -> String {
    let text = without_ages(text);
    let mut kept = Vec::new();
    let mut section = "header";
    for line in text.lines() {
        match line {
            "Components" | "Dependencies" | "Warnings" => section = line,
            _ => {}
        }
        // (The pods here run no Milvus: the warning that its own view is not shown names a pod.)
        if section != "Dependencies" && !line.starts_with("Health:") && !line.starts_with("Milvus's own view")
        {
            kept.push(line);
        }
    }
    kept.join("\n")
}

/// Before and after a scale: what `status` and `scale --dry-run` say of the Helm record.
fn reads_the_record(helm_name: &str, install: &[&str]) {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new(helm_name, &api);
    helm.run(&[&["install", "my-release", chart.path()][..], install].concat()).success();
    wait_ready(&api, QUERYNODE, 1);
    assert_eq!(release_secrets(&api), [(1, "deployed".into())]);

    let before = status(&api);
    assert!(before.contains("Managed by: Helm (chart milvus-5.0.19)"), "{before}");
    assert!(!before.contains("Helm release says"), "{before}");
    let plan =
        run(&api, &["scale", "my-release", "querynode=3", "--dry-run=client", "-o", "json"]).success().json();
    assert_eq!(plan["helm"]["recorded"], serde_json::json!([["queryNode.replicas", 1]]), "{plan}");
    // Helm 4 applies server-side by default (a `helm` manager with operation Apply), Helm 3 updates.
    assert_eq!(plan["helm"]["serverSideApply"], helm_name == "helm4" && install.is_empty(), "{plan}");
    assert_eq!(
        plan["helm"]["command"],
        "helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values --set queryNode.replicas=3"
    );
    let record = &plan["helm"]["record"];
    assert_eq!(record["state"], "planned", "{plan}");
    assert_eq!((record["revision"].as_i64(), record["newRevision"].as_i64()), (Some(1), Some(2)), "{plan}");
    assert_eq!(record["values"], serde_json::json!([{"key": "queryNode.replicas", "from": 1, "to": 3}]));
    // Without the record, the dry run says what Helm would do and how to keep the change…
    let dry =
        kubectl(&api, &["scale", "my-release", "querynode=3", "--dry-run=client", "--helm-record=false"])
            .success();
    insta::assert_snapshot!(format!("{helm_name}_dry_run_stderr"), dry.stderr);
    // …with it, the plan shows the new revision and there is nothing to run.
    let planned = kubectl(&api, &["scale", "my-release", "querynode=3", "--dry-run=client"]).success();
    assert_eq!(planned.stderr, "");
    // The plan and the result lines, without the diff between them.
    let lines: Vec<&str> = planned.stdout.lines().collect();
    let diff = lines.iter().position(|l| l.starts_with("diff -u")).expect("a diff");
    let results = lines.iter().position(|l| l.starts_with("deployment.apps/")).expect("result lines");
    let plan = [&lines[..diff], &lines[results..]].concat();
    insta::assert_snapshot!(format!("{helm_name}_dry_run_plan"), plan.join("\n"));

    kubectl(&api, &["scale", "my-release", "querynode=3", "--helm-record=false"]).success();
    wait_ready(&api, QUERYNODE, 3);
    let after = status(&api);
    let drift = if helm_name == "helm4" { DRIFT_SERVER_SIDE } else { DRIFT };
    assert!(after.contains(drift), "{after}");
    insta::assert_snapshot!(format!("{helm_name}_status_after_scale"), status_sections(&after));
    // Scaling back to the recorded value: no more drift, nothing to make permanent. (A scale-in of
    // query nodes: these pods run no Milvus to drain, and the chart's grace period is Kubernetes'.)
    let back = run(
        &api,
        &[
            "scale",
            "my-release",
            "querynode=1",
            "--dry-run=client",
            "--allow-kill-before-drain",
            "--no-drain",
            "-o",
            "json",
        ],
    )
    .success()
    .json();
    assert!(back["helm"].is_null(), "{back}");
}

#[test]
fn status_and_dry_run_read_the_record_helm3_writes_kube_apiserver_only() {
    reads_the_record("helm3", &[]);
}

#[test]
fn status_and_dry_run_read_the_record_helm4_writes_kube_apiserver_only() {
    reads_the_record("helm4", &[]);
}

// ---------------------------------------------------------------------------------------------
// The command the plugin prints makes the change permanent.

/// Scales through the plugin, runs the `helm upgrade` it prints (with the local chart for
/// `milvus/milvus --version 5.0.19`), then a plain `helm upgrade --reuse-values`: 3 stays.
fn printed_command_keeps_the_scale(helm_name: &str) {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new(helm_name, &api);
    helm.run(&["install", "my-release", chart.path()]).success();
    wait_ready(&api, QUERYNODE, 1);
    let result = run(&api, &["scale", "my-release", "querynode=3", "--helm-record=false", "-o", "json"])
        .success()
        .json();
    assert_eq!(result["helm"]["record"]["state"], "skipped", "{result}");
    let command = result["helm"]["command"].as_str().expect("helm.command").to_string();
    assert_eq!(
        command,
        "helm upgrade my-release milvus/milvus --version 5.0.19 -n default --reuse-values --set queryNode.replicas=3"
    );
    let local = command.replace("milvus/milvus --version 5.0.19", chart.path());
    let args: Vec<&str> =
        local.split_whitespace().skip(1).filter(|a| !["-n", "default"].contains(a)).collect();
    assert_eq!(args.len(), 6, "{args:?}");
    helm.run(&args).success();
    assert_eq!(querynodes(&api), 3);
    assert!(!status(&api).contains("Helm release says"));

    upgrade(&helm, &chart, &[]).success();
    assert_eq!(querynodes(&api), 3);
    assert_eq!(release_secrets(&api).last(), Some(&(3, "deployed".into())));
}

#[test]
fn the_printed_command_makes_a_scale_permanent_helm3_kube_apiserver_only() {
    printed_command_keeps_the_scale("helm3");
}

#[test]
fn the_printed_command_makes_a_scale_permanent_helm4_kube_apiserver_only() {
    printed_command_keeps_the_scale("helm4");
}

// ---------------------------------------------------------------------------------------------
// The scale goes into Helm's record: Helm itself reads it, keeps it and rolls it back.

/// `helm ARGS` succeeded; its stdout.
fn helm_out(helm: &Helm, args: &[&str]) -> String {
    helm.run(args).success().stdout
}

/// Installs with `helm_name` (plus `install`), scales querynode 1 → 3 through the plugin, and checks
/// what Helm's own commands read of the new revision; then upgrades with `upgrade` and rolls back.
fn recorded_in_helm(helm_name: &str, install: &[&str], upgrade_args: &[&str]) {
    recorded_in_helm_with(helm_name, None, install, upgrade_args);
}

/// [`recorded_in_helm`] with Helm and the plugin given `HELM_DRIVER=driver`.
fn recorded_in_helm_with(
    helm_name: &str,
    driver: Option<&'static str>,
    install: &[&str],
    upgrade_args: &[&str],
) {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let mut helm = Helm::new(helm_name, &api);
    if let Some(driver) = driver {
        helm = helm.with_driver(driver);
    }
    helm.run(&[&["install", "my-release", chart.path()][..], install].concat()).success();
    wait_ready(&api, QUERYNODE, 1);

    let output = command(Via::Kubectl, Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=3"])
        .envs(driver.map(|d| ("HELM_DRIVER", d)))
        .output()
        .expect("run the plugin");
    let out = Run::from(output).success();
    let object = if driver == Some("configmap") { "configmap" } else { "secret" };
    assert!(
        out.stdout.contains(&format!(
            "{object}/sh.helm.release.v1.my-release.v2 created: Helm revision 2 deployed, 1 superseded; \
             queryNode.replicas=3 (was 1)"
        )),
        "{}",
        out.stdout
    );
    assert!(!out.stderr.contains("helm upgrade"), "nothing left for the user to run: {}", out.stderr);
    assert!(!out.stderr.contains("stays this tool's"), "spec.replicas is Helm's again: {}", out.stderr);
    assert_eq!(querynodes(&api), 3);
    if driver.is_none() {
        assert_eq!(release_secrets(&api), [(1, "superseded".into()), (2, "deployed".into())]);
    }

    // Helm's own view of the new revision.
    let history = helm_out(&helm, &["history", "my-release", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_str(&history).expect("helm history -o json");
    assert_eq!(history[0]["status"], "superseded", "{history}");
    assert_eq!(history[1]["revision"], 2, "{history}");
    assert_eq!(history[1]["status"], "deployed", "{history}");
    assert_eq!(history[1]["chart"], "milvus-5.0.19", "{history}");
    assert_eq!(history[1]["description"], "Scaled by kubectl-milvus: queryNode.replicas=3 (was 1)");
    let values = helm_out(&helm, &["get", "values", "my-release", "-o", "json"]);
    let values: serde_json::Value = serde_json::from_str(&values).expect("helm get values -o json");
    assert_eq!(values, serde_json::json!({"queryNode": {"replicas": 3}}));
    let manifest = helm_out(&helm, &["get", "manifest", "my-release"]);
    let querynode = manifest
        .split("\n---\n")
        .find(|doc| doc.contains("kind: Deployment") && doc.contains(&format!("name: {QUERYNODE}\n")))
        .expect("the querynode Deployment in the manifest");
    assert!(querynode.contains("\nspec:\n  replicas: 3\n"), "{querynode}");
    let status = helm_out(&helm, &["status", "my-release"]);
    assert!(status.contains("STATUS: deployed") && status.contains("REVISION: 2"), "{status}");
    // The plugin sees no drift any more.
    assert!(!status_of(&api).contains("Helm release says"));

    // A plain upgrade with --reuse-values keeps 3.
    let upgrade = [&["upgrade", "my-release", chart.path(), "--reuse-values"][..], upgrade_args].concat();
    helm.run(&upgrade).success();
    assert_eq!(querynodes(&api), 3);

    // Rolling back to revision 1 restores the count it recorded.
    helm.run(&["rollback", "my-release", "1"]).success();
    wait_ready(&api, QUERYNODE, 1);
    let history = helm_out(&helm, &["history", "my-release", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_str(&history).expect("helm history -o json");
    let statuses: Vec<(i64, &str)> = history
        .as_array()
        .expect("revisions")
        .iter()
        .map(|r| (r["revision"].as_i64().unwrap_or_default(), r["status"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(statuses, [(1, "superseded"), (2, "superseded"), (3, "superseded"), (4, "deployed")]);
    if driver == Some("configmap") {
        assert!(release_secrets(&api).is_empty(), "Helm and the plugin keep the record in ConfigMaps");
    }
}

fn status_of(api: &TestApi) -> String {
    status(api)
}

#[test]
fn a_scale_is_a_helm3_revision_kube_apiserver_only() {
    recorded_in_helm("helm3", &[], &[]);
}

#[test]
fn a_scale_is_a_helm4_revision_server_side_kube_apiserver_only() {
    recorded_in_helm("helm4", &[], &[]);
}

#[test]
fn a_scale_is_a_helm3_revision_in_configmap_storage_kube_apiserver_only() {
    recorded_in_helm_with("helm3", Some("configmap"), &[], &[]);
}

#[test]
fn a_scale_is_a_helm4_revision_client_side_kube_apiserver_only() {
    recorded_in_helm("helm4", &["--server-side=false"], &[]);
}

#[test]
fn a_helm_upgrade_between_read_and_write_stops_the_scale_with_nothing_changed_kube_apiserver_only() {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/default.yaml");
    let helm = Helm::new("helm3", &api);
    helm.run(&["install", "my-release", chart.path()]).success();
    wait_ready(&api, QUERYNODE, 1);
    // The plugin's first write (the dry-run check of the deployed revision) waits at a gate while a
    // real `helm upgrade` runs.
    let gate = milvus_test_api::Gate::new();
    api.set_fault(
        milvus_test_api::Fault::hold(&gate)
            .on("PUT", "/api/v1/namespaces/default/secrets/*")
            .with_query("dryRun", "All"),
    );
    let child = command(Via::Binary, Some(api.kubeconfig_path()), &["scale", "my-release", "querynode=3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the plugin");
    assert!(gate.wait_held(1, Duration::from_secs(60)), "the plugin's first write reached the gate");
    upgrade(&helm, &chart, &["--set", "queryNode.replicas=2"]).success();
    gate.open();
    let output = child.wait_with_output().expect("the plugin ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the Helm release my-release changed since it was read (another helm upgrade or rollback?)"
        ),
        "{stderr}"
    );
    // Helm's upgrade stands, untouched: its count, its revisions.
    wait_ready(&api, QUERYNODE, 2);
    assert_eq!(release_secrets(&api), [(1, "superseded".into()), (2, "deployed".into())]);
    let history = helm_out(&helm, &["history", "my-release", "-o", "json"]);
    assert!(history.contains("Upgrade complete"), "{history}");
}

// ---------------------------------------------------------------------------------------------
// An autoscaled component's bounds go into Helm's record too.

fn hpa_bounds(api: &TestApi) -> (i64, i64) {
    let hpa = api
        .get_json(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            Some("default"),
            "my-release-milvus-querynode-hpa",
        )
        .expect("the querynode autoscaler");
    (
        hpa["spec"]["minReplicas"].as_i64().unwrap_or(1),
        hpa["spec"]["maxReplicas"].as_i64().unwrap_or_default(),
    )
}

fn autoscaler_bounds_recorded(helm_name: &str) {
    let api = empty_cluster();
    let chart = Chart::from_fixture("helm/coordinators-hpa.yaml");
    let helm = Helm::new(helm_name, &api);
    helm.run(&["install", "my-release", chart.path()]).success();
    assert_eq!(hpa_bounds(&api), (1, 5));
    let out = kubectl(&api, &["scale", "my-release", "querynode", "--min", "2", "--max", "8"]).success();
    assert!(out.stdout.contains("secret/sh.helm.release.v1.my-release.v2 created"), "{}", out.stdout);
    assert_eq!(hpa_bounds(&api), (2, 8));
    let values = helm_out(&helm, &["get", "values", "my-release", "-o", "json"]);
    let values: serde_json::Value = serde_json::from_str(&values).expect("helm get values -o json");
    assert_eq!(values["queryNode"]["hpa"], serde_json::json!({"minReplicas": 2, "maxReplicas": 8}));
    // The next upgrade keeps the bounds; a rollback to revision 1 puts its bounds back.
    upgrade(&helm, &chart, &[]).success();
    assert_eq!(hpa_bounds(&api), (2, 8));
    helm.run(&["rollback", "my-release", "1"]).success();
    assert_eq!(hpa_bounds(&api), (1, 5));
}

#[test]
fn autoscaler_bounds_are_a_helm3_revision_kube_apiserver_only() {
    autoscaler_bounds_recorded("helm3");
}

#[test]
fn autoscaler_bounds_are_a_helm4_revision_server_side_kube_apiserver_only() {
    autoscaler_bounds_recorded("helm4");
}
