//! kubectl-native behaviour: global flags, kubeconfig handling, errors, exit codes, verbosity, colour.

use std::time::Duration;

use crate::support::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

#[test]
fn help_reads_kubectl_milvus() {
    let out = run_via(Via::Kubectl, None, &["--help"]).success();
    assert!(out.stdout.contains("Usage: kubectl milvus [OPTIONS] <COMMAND>"), "{}", out.stdout);
    for command in ["list", "status", "version"] {
        assert!(out.stdout.contains(&format!("\n  {command} ")), "{command} missing:\n{}", out.stdout);
    }
    let status = run_via(Via::Binary, None, &["status", "--help"]).success();
    assert!(status.stdout.contains("Usage: kubectl milvus status [OPTIONS] <RELEASE>"), "{}", status.stdout);
    assert!(status.stdout.contains("Examples:\n  # Health of a release"), "{}", status.stdout);
}

#[test]
fn usage_errors_are_kubectl_style() {
    let out = run_via(Via::Binary, None, &["list", "--bogus"]).failure(1);
    assert!(out.stderr.starts_with("error: unexpected argument '--bogus' found\n"), "{}", out.stderr);
    assert!(out.stderr.ends_with("See 'kubectl milvus list --help' for usage.\n"), "{}", out.stderr);
    let format = run_via(Via::Binary, None, &["list", "-o", "table"]).failure(1);
    assert!(
        format.stderr.contains("unable to match a printer suitable for the output format \"table\", allowed formats are: json,name,wide,yaml"),
        "{}",
        format.stderr
    );
    let missing = run_via(Via::Kubectl, None, &["status"]).failure(1);
    assert!(missing.stderr.contains("<RELEASE>"), "{}", missing.stderr);
}

#[test]
fn version_prints_plugin_and_server_versions() {
    let api = three_releases();
    let server = api.server_version();
    assert_eq!(server, if backend() == Backend::Loopback { "v1.33.0" } else { "v1.34.4" });
    let out = kubectl(&api, &["version"]).success();
    assert_eq!(
        out.stdout,
        format!("Client Version: v{}\nServer Version: {server}\n", env!("CARGO_PKG_VERSION"))
    );
    let json = run(&api, &["version", "-o", "json"]).success().json();
    assert_eq!(json["clientVersion"]["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(json["serverVersion"]["gitVersion"], server.as_str());
    // --client needs no cluster at all.
    let client = run_via(Via::Binary, None, &["version", "--client"]).success();
    assert_eq!(client.stdout, format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn connection_refused_is_named_like_kubectl() {
    let api = three_releases();
    let url = TestApi::unused_url();
    let host = url.trim_start_matches("https://").to_string();
    let out = run(&api, &["list", "--server", &url]).failure(1);
    assert_eq!(
        out.stderr,
        format!(
            "The connection to the server {host} was refused - did you specify the right host or port?\n"
        )
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn api_errors_are_printed_as_error_from_server() {
    let api = TestApi::builder().age(AGE).fixture("helm/default.yaml").user("nobody", Rules::none()).start();
    let out = run_via(Via::Kubectl, Some(&api.kubeconfig_for("nobody")), &["list"]).failure(1);
    assert_eq!(
        out.stderr,
        "Error from server (Forbidden): deployments.apps is forbidden: User \"nobody\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"default\"\n"
    );
    let bad_token = run(&api, &["list", "--token", "not-a-token"]).failure(1);
    assert!(bad_token.stderr.starts_with("Error from server (Unauthorized):"), "{}", bad_token.stderr);
}

#[test]
fn no_configuration_is_a_clear_error() {
    let out = run_via(Via::Binary, None, &["list"]).failure(1);
    assert!(out.stderr.starts_with("error: no configuration has been provided"), "{}", out.stderr);
    let missing = run_via(Via::Binary, None, &["list", "--kubeconfig", "/nonexistent/kubeconfig"]).failure(1);
    assert_eq!(missing.stderr, "error: stat /nonexistent/kubeconfig: no such file or directory\n");
}

#[test]
fn context_cluster_and_user_flags_select_from_the_kubeconfig() {
    let api = three_releases();
    // The context's namespace is the default scope; -n overrides it.
    let dir = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read_to_string(api.kubeconfig_path()).expect("kubeconfig");
    let with_ns = write(dir.path(), "kc", &original.replace("namespace: default", "namespace: prod"));
    let out = run_via(Via::Binary, Some(&with_ns), &["list", "-o", "name"]).success();
    assert_eq!(out.stdout, "milvus/search\n");
    let out = run_via(Via::Binary, Some(&with_ns), &["list", "-o", "name", "-n", "operator"]).success();
    assert_eq!(out.stdout, "milvus/vectors\n");

    let unknown = run(&api, &["list", "--context", "nope"]).failure(1);
    assert_eq!(unknown.stderr, "error: context was not found for specified context: nope\n");
    let unknown_user = run(&api, &["list", "--user", "ghost"]).failure(1);
    assert_eq!(unknown_user.stderr, "error: auth info \"ghost\" does not exist\n");
}

#[test]
fn kubeconfig_files_in_kubeconfig_env_are_merged() {
    let api =
        TestApi::builder().age(AGE).fixture("helm/default.yaml").user("viewer", Rules::read_only()).start();
    let full: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(api.kubeconfig_path()).expect("read")).expect("yaml");
    // File 1: only the current context; file 2: contexts, clusters and users.
    let dir = tempfile::tempdir().expect("tempdir");
    let first = write(dir.path(), "a", "apiVersion: v1\nkind: Config\ncurrent-context: viewer\n");
    let mut rest = full.clone();
    if let Some(map) = rest.as_mapping_mut() {
        map.remove("current-context");
    }
    let second = write(dir.path(), "b", &serde_yaml::to_string(&rest).expect("yaml"));
    let joined = std::env::join_paths([&first, &second]).expect("join");
    api.clear_requests();
    let out = command(Via::Kubectl, None, &["list", "-o", "name"])
        .env("KUBECONFIG", &joined)
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "milvus/my-release\n");
    assert!(
        api.requests().iter().all(|r| r.user.as_deref() == Some("viewer")),
        "the first file's current-context wins"
    );
}

#[test]
fn server_token_and_ca_flags_work_without_a_kubeconfig() {
    let api = three_releases();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write(dir.path(), "ca.crt", api.ca_pem());
    let token = api.token("admin").expect("admin token");
    let ca_arg = ca.display().to_string();
    let out = run_via(
        Via::Binary,
        None,
        &[
            "list",
            "-A",
            "-o",
            "name",
            "--server",
            api.url(),
            "--token",
            &token,
            "--certificate-authority",
            &ca_arg,
        ],
    )
    .success();
    assert_eq!(out.stdout, "milvus/my-release\nmilvus/vectors\nmilvus/search\n");

    // Without the CA the server's certificate is not trusted: TLS verification is on.
    let untrusted =
        run_via(Via::Binary, None, &["list", "--server", api.url(), "--token", &token]).failure(1);
    let host = api.url().trim_start_matches("https://");
    assert_eq!(
        untrusted.stderr,
        format!("Unable to connect to the server {host}: invalid peer certificate: UnknownIssuer\n")
    );
    // ... unless the user explicitly says so.
    run_via(
        Via::Binary,
        None,
        &["list", "--server", api.url(), "--token", &token, "--insecure-skip-tls-verify"],
    )
    .success();
}

#[test]
fn impersonation_flags_are_sent() {
    let api =
        TestApi::builder().age(AGE).fixture("helm/default.yaml").user("viewer", Rules::read_only()).start();
    api.clear_requests();
    run(&api, &["list", "-o", "name", "--as", "viewer", "--as-group", "devs"]).success();
    assert!(api.requests().iter().all(|r| r.user.as_deref() == Some("viewer")), "{:?}", api.requests());
    let stranger = run(&api, &["list", "--as", "jane"]).failure(1);
    assert!(
        stranger
            .stderr
            .starts_with("Error from server (Forbidden): deployments.apps is forbidden: User \"jane\""),
        "{}",
        stranger.stderr
    );
    let not_allowed =
        run_via(Via::Binary, Some(&api.kubeconfig_for("viewer")), &["list", "--as", "admin"]).failure(1);
    assert!(not_allowed.stderr.contains("cannot impersonate resource \"users\""), "{}", not_allowed.stderr);
}

#[test]
fn exec_credential_plugins_provide_the_token() {
    let api =
        TestApi::builder().age(AGE).fixture("helm/default.yaml").user("viewer", Rules::read_only()).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let token = api.token("viewer").expect("token");
    let script = write(
        dir.path(),
        "credential.sh",
        &format!(
            "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'\n"
        ),
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let mut kubeconfig: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(api.kubeconfig_path()).expect("read")).expect("yaml");
    let users = kubeconfig["users"].as_sequence_mut().expect("users");
    for user in users.iter_mut() {
        user["user"] = serde_yaml::from_str(&format!(
            "exec: {{apiVersion: client.authentication.k8s.io/v1, command: {}, interactiveMode: Never}}",
            script.display()
        ))
        .expect("exec");
    }
    let path = write(dir.path(), "kubeconfig", &serde_yaml::to_string(&kubeconfig).expect("yaml"));
    api.clear_requests();
    let out = run_via(Via::Kubectl, Some(&path), &["list", "-o", "name"]).success();
    assert_eq!(out.stdout, "milvus/my-release\n");
    assert!(api.requests().iter().all(|r| r.user.as_deref() == Some("viewer")));
}

#[test]
fn verbosity_six_logs_each_request_without_credentials() {
    let api = three_releases();
    let token = api.token("admin").expect("token");
    let quiet = run(&api, &["list", "-v=5"]).success();
    assert_eq!(quiet.stderr, "");
    for level in ["-v=6", "--v=10"] {
        let out = kubectl(&api, &["status", "my-release", level]).success();
        let lines: Vec<&str> = out.stderr.lines().collect();
        // The release's reads, its Milvus configuration, and Milvus asked through the pod proxy (which
        // answers 404 here: no fake Milvus behind the pods).
        let (milvus, kube): (Vec<&str>, Vec<&str>) = lines.iter().partition(|l| l.contains("/proxy/"));
        assert_eq!((kube.len(), milvus.len()), (8, 9), "{}", out.stderr);
        for line in &lines {
            assert!(line.starts_with(&format!("GET {}/", api.url())), "{line}");
            assert!(line.contains(" in ") && line.ends_with(" milliseconds"), "{line}");
        }
        assert!(kube.iter().all(|l| l.contains(" 200 OK in ")), "{}", out.stderr);
        assert!(!out.stderr.contains(&token) && !out.stdout.contains(&token));
        assert!(!out.stderr.to_lowercase().contains("bearer"));
        assert!(!out.stderr.to_lowercase().contains("authorization"));
    }
    // A token given on the command line is not echoed either, and neither are Secret contents.
    let out = run(&api, &["list", "-A", "-v=9", "--token", &token]).success();
    assert!(!out.stderr.contains(&token));
    assert!(!out.stderr.contains("sh.helm.release"));
}

#[test]
fn color_follows_the_flag_the_terminal_and_no_color() {
    let api = three_releases();
    let piped = run(&api, &["status", "search", "-n", "prod"]).success();
    assert!(!piped.stdout.contains('\x1b'), "no colour when not a terminal");
    let always = run(&api, &["status", "search", "-n", "prod", "--color=always"]).success();
    assert!(always.stdout.contains("\x1b[31"), "red for the unready counts:\n{}", always.stdout);
    let never = run(&api, &["status", "search", "-n", "prod", "--color", "never"]).success();
    assert!(!never.stdout.contains('\x1b'));
    // Colour does not change the text. On a real server the AGE column is seconds since the objects
    // were created, and may tick between the two runs.
    let stripped: String = strip_ansi(&always.stdout);
    if backend() == Backend::Loopback {
        assert_eq!(stripped, piped.stdout);
    } else {
        assert_eq!(without_ages(&stripped), without_ages(&piped.stdout));
    }
    let no_color = command(Via::Binary, Some(api.kubeconfig_path()), &["list", "-A"])
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "1")
        .output()
        .expect("run");
    assert!(!String::from_utf8_lossy(&no_color.stdout).contains('\x1b'), "NO_COLOR wins in auto mode");
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn request_timeout_bounds_each_request() {
    let bad = run_via(Via::Binary, None, &["list", "--request-timeout", "soon"]).failure(1);
    assert!(bad.stderr.contains("invalid timeout value"), "{}", bad.stderr);
    let api = three_releases();
    api.set_latency(Duration::from_secs(5));
    let out = run(&api, &["list", "--request-timeout", "200ms"]).failure(1);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let api = three_releases();
    let mut child = command(Via::Binary, Some(api.kubeconfig_path()), &["list", "-A"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.code() == Some(0), "{output:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

/// Every command opens one TLS connection and sends all its requests over it as HTTP/2 streams,
/// even the lists it issues together.
#[test]
fn each_command_uses_one_http2_connection() {
    let api = three_releases();
    for args in [
        &["status", "search", "-n", "prod"][..],
        &["list", "-A"][..],
        &["scale", "my-release", "querynode=2", "--dry-run=client"][..],
        &["scale", "my-release", "datanode=2"][..],
    ] {
        api.clear_requests();
        run(&api, args).success();
        let requests = api.requests().len();
        assert!(requests >= 5, "{args:?}: {requests} requests");
        let protocols: Vec<String> = api.connections().into_iter().map(|c| c.protocol).collect();
        assert_eq!(protocols, ["h2"], "{args:?}: {requests} requests");
    }
}

/// A server that speaks only HTTP/1.1 still gets every request: one connection per request in
/// flight, as before.
#[test]
fn a_server_without_http2_is_spoken_to_in_http1() {
    let api = three_releases();
    let dir = tempfile::tempdir().expect("tmp");
    let h1 = api.http1_only_url();
    let kubeconfig =
        std::fs::read_to_string(api.kubeconfig_path()).expect("kubeconfig").replace(api.url(), &h1);
    let path = write(dir.path(), "kubeconfig", &kubeconfig);
    api.clear_requests();
    let out = run_via(Via::Binary, Some(&path), &["status", "search", "-n", "prod"]).success();
    assert!(out.stdout.contains("search"), "{}", out.stdout);
    let kube_reads = api
        .requests()
        .iter()
        .filter(|r| !r.path.contains("/proxy/") && !r.path.contains("/configmaps/"))
        .count();
    assert_eq!(kube_reads, 7);
    let protocols: Vec<String> = api.connections().into_iter().map(|c| c.protocol).collect();
    assert!(!protocols.is_empty() && protocols.iter().all(|p| p == "http/1.1"), "{protocols:?}");
}
