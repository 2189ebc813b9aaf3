//! The image the docker tests run `flotilla probe` (and anything else of flotilla's) in: a
//! FROM-scratch image around the static `flotilla` binary, built here as `deploy/multihost/`
//! builds it (no registry needed, nothing is pulled). Used by `runtime_docker.rs` and
//! `up_docker.rs`.
//!
//! The image is tagged by the binary's size and time, and older tags are removed.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository of the test images.
pub const IMAGE_REPO: &str = "flotilla-agent-test";

fn target_dir() -> PathBuf {
    // <target>/debug/flotilla
    let exe = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// Builds the static binary (a no-op when it is fresh) and an image around it; answers its
/// tag. One build at a time across test processes (a lock file in the target folder).
pub fn test_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let target = target_dir();
            let lock = File::create(target.join("flotilla-docker-test.lock")).unwrap();
            lock.lock().unwrap();
            let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "flotilla", "--target", &triple])
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .env("CARGO_TARGET_DIR", &target)
                .current_dir(workspace)
                .status()
                .unwrap();
            assert!(status.success(), "the static build of flotilla failed");
            let bin = target.join(&triple).join("debug/flotilla");
            // Size and modification time name the build (hashing 100 MB in a debug test
            // binary takes seconds).
            let meta = std::fs::metadata(&bin).unwrap();
            let mtime = meta.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap();
            let image = format!("{IMAGE_REPO}:{}-{}", meta.len(), mtime.as_nanos());
            let have = Command::new("docker").args(["image", "inspect", &image]).output().unwrap();
            if !have.status.success() {
                build_image(&bin, &image);
            }
            image
        })
        .clone()
}

fn build_image(bin: &Path, image: &str) {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(bin, ctx.path().join("flotilla")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY flotilla /usr/local/bin/flotilla\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "--quiet", "-t", image])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build: {}", String::from_utf8_lossy(&out.stderr));
    // Older test images go; one still in use by another run stays.
    let list = Command::new("docker")
        .args(["images", IMAGE_REPO, "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
        .unwrap();
    for old in String::from_utf8_lossy(&list.stdout).lines().filter(|l| *l != image) {
        let _ = Command::new("docker").args(["rmi", old]).output();
    }
}

/// Removes every container (running or not) that carries `label=value`: what a test's
/// node left behind.
pub fn remove_containers(label: &str, value: &str) {
    let filter = format!("label={label}={value}");
    let ids = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
    if let Ok(out) = ids {
        let ids = String::from_utf8_lossy(&out.stdout);
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
    }
}
