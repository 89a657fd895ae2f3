//! The control-plane processes: `scripts/control-plane.sh up` (etcd, kube-apiserver,
//! kube-controller-manager on free loopback ports, with a watchdog that runs `down` once the test
//! process is gone) and `down` when the handle is dropped, so nothing outlives a failed start, a
//! failed test or a killed test process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The script that builds and runs the control plane.
fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("control-plane.sh")
}

/// Runs `control-plane.sh down DIR` when dropped, so nothing outlives a failed start or test.
pub(super) struct ControlPlane {
    pub(super) dir: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script_path())
            .arg("down")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A control plane that `up` started, as its state directory describes it.
pub(super) struct Started {
    /// `down`s the control plane when dropped.
    pub(super) handle: ControlPlane,
    /// The state directory (kubeconfigs, logs, etcd data).
    pub(super) dir: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub(super) url: String,
    pub(super) port: u16,
    /// The CA that signed the API server's certificate.
    pub(super) ca_pem: String,
    pub(super) audit_log: PathBuf,
    /// Every token user `up` created: name → token.
    pub(super) tokens: HashMap<String, String>,
}

/// `control-plane.sh up --parent-pid <this process> [--user U]... DIR` in a fresh directory,
/// retried when a port it picked was taken in between by a parallel test.
pub(super) fn up(users: &[&str]) -> Result<Started, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("milvus-test-kube-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = script_path();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg("up").arg("--parent-pid").arg(std::process::id().to_string());
    for u in users.iter().filter(|u| **u != "admin") {
        cmd.arg("--user").arg(u);
    }
    cmd.arg(&dir);
    let cp = ControlPlane { dir: dir.clone() };
    // `up` picks free ports and then binds them; a parallel test can take one in between.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let out = cmd.output().map_err(|e| format!("{}: {e}", script.display()))?;
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("address already in use") && attempt < 4 {
            continue;
        }
        let hint = if err.contains("not cached") {
            format!("\nbuild the control plane once with `{} build` (about 7 minutes)", script.display())
        } else {
            String::new()
        };
        return Err(format!("{} up failed:\n{err}{hint}", script.display()));
    }
    let tokens = read_users(&dir)?;
    let url = read_env(&dir, "CONTROL_PLANE_SERVER")?;
    let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let ca_pem = std::fs::read_to_string(read_env(&dir, "CONTROL_PLANE_CA")?).map_err(|e| e.to_string())?;
    let audit_log = PathBuf::from(read_env(&dir, "CONTROL_PLANE_AUDIT_LOG")?);
    Ok(Started { handle: cp, dir, url, port, ca_pem, audit_log, tokens })
}

fn read_users(dir: &Path) -> Result<HashMap<String, String>, String> {
    let text =
        std::fs::read_to_string(dir.join("users")).map_err(|e| format!("{}/users: {e}", dir.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(u, t)| (u.to_string(), t.trim().to_string()))
        .collect())
}

fn read_env(dir: &Path, key: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(dir.join("env")).map_err(|e| format!("{}/env: {e}", dir.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .map(|v| v.trim_matches('\'').to_string())
        .ok_or_else(|| format!("{key} missing from {}/env", dir.display()))
}
