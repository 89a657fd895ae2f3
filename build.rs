//! Records the git commit the plugin is built from (`kubectl milvus version -o json` shows it as
//! `gitCommit`). Without git, or outside a work tree (a source tarball), the build goes on without it.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KUBECTL_MILVUS_GIT_COMMIT");
    // Rebuild when HEAD moves: HEAD itself (branch switch) and the branch it points at (commit).
    // Only existing paths are watched: a missing one would make cargo rerun this script every build.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let git_dir = Path::new(&git_dir);
        for path in [git_dir.join("HEAD"), git_dir.join("packed-refs")] {
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let path = git_dir.join(reference);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    // An explicit value (a release pipeline building from an exported tree) wins.
    if std::env::var_os("KUBECTL_MILVUS_GIT_COMMIT").is_some() {
        return;
    }
    if let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) {
        println!("cargo:rustc-env=KUBECTL_MILVUS_GIT_COMMIT={commit}");
    }
}

/// The trimmed stdout of a successful `git ARGS`, run in the crate's directory; `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
