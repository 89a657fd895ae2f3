//! The control-plane processes: `scripts/control-plane.sh up` (etcd, kube-apiserver,
//! kube-controller-manager on free loopback ports, with a watchdog that runs `down` once the test
//! process is gone), shared by the tests of one process: a control plane a test is done with goes
//! back to a pool, and the next test that asks for one with the same users gets it after
//! `control-plane.sh reset` (everything created since `up` deleted, the controller-manager
//! restarted). Nothing outlives a failed start, a failed test or a killed test process: a control
//! plane whose reset fails is stopped with `down`, and the watchdog stops the pooled ones.
//!
//! `MILVUS_TEST_SHARED_CONTROL_PLANE=0` gives every test a control plane of its own (`down` when
//! it is done), as before sharing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The script that builds and runs the control plane.
fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("control-plane.sh")
}

fn shared() -> bool {
    std::env::var("MILVUS_TEST_SHARED_CONTROL_PLANE").map_or(true, |v| v != "0")
}

/// Control planes no test is using, reset before they are handed out again.
static IDLE: Mutex<Vec<Info>> = Mutex::new(Vec::new());

/// A control plane that `up` started, as its state directory describes it.
#[derive(Clone)]
pub(super) struct Info {
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

/// A control plane in use by one test: back to the pool when dropped (or `down` when sharing is
/// off).
pub(super) struct ControlPlane {
    info: Info,
}

impl ControlPlane {
    pub(super) fn info(&self) -> &Info {
        &self.info
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if shared() {
            super::lock(&IDLE).push(self.info.clone());
        } else {
            down(&self.info.dir);
        }
    }
}

/// `control-plane.sh down DIR`, then the directory removed.
fn down(dir: &Path) {
    let _ = Command::new("bash")
        .arg(script_path())
        .arg("down")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(dir);
}

/// A control plane for one test, with at least `users` as token users, and the audit log's length
/// when it was handed out (what was logged before belongs to earlier tests).
pub(super) fn acquire(users: &[&str]) -> Result<(ControlPlane, u64), String> {
    if shared() {
        while let Some(info) = take_idle(users) {
            let out = Command::new("bash").arg(script_path()).arg("reset").arg(&info.dir).output();
            match out {
                Ok(o) if o.status.success() => {
                    let offset = std::fs::metadata(&info.audit_log).map(|m| m.len()).unwrap_or(0);
                    return Ok((ControlPlane { info }, offset));
                }
                // Not reusable: stop it, and try the next one or start a new one.
                _ => down(&info.dir),
            }
        }
    }
    Ok((ControlPlane { info: up(users)? }, 0))
}

fn take_idle(users: &[&str]) -> Option<Info> {
    let mut idle = super::lock(&IDLE);
    let i = idle.iter().position(|c| users.iter().all(|u| c.tokens.contains_key(*u)))?;
    Some(idle.swap_remove(i))
}

/// `control-plane.sh up --parent-pid <this process> [--user U]... DIR` in a fresh directory,
/// retried when a port it picked was taken in between by a parallel test.
fn up(users: &[&str]) -> Result<Info, String> {
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
            format!("\nbuild the control plane once with `{} build` (10-20 minutes)", script.display())
        } else {
            String::new()
        };
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("{} up failed:\n{err}{hint}", script.display()));
    }
    let info = (|| {
        let tokens = read_users(&dir)?;
        let url = read_env(&dir, "CONTROL_PLANE_SERVER")?;
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let ca_pem =
            std::fs::read_to_string(read_env(&dir, "CONTROL_PLANE_CA")?).map_err(|e| e.to_string())?;
        let audit_log = PathBuf::from(read_env(&dir, "CONTROL_PLANE_AUDIT_LOG")?);
        Ok(Info { dir: dir.clone(), url, port, ca_pem, audit_log, tokens })
    })();
    if info.is_err() {
        down(&dir);
    }
    info
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
