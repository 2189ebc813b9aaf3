//! The runtime suite against the docker runtime, on the local Docker engine, with
//! `flotilla probe` in a FROM-scratch image around the static `flotilla` binary (built here
//! as `deploy/multihost/` builds it; no registry needed). Every test name starts with
//! `docker_`; without an engine they fail (tests/run leaves them out only under
//! `FLOTILLA_SKIP_DOCKER=1`, and says so).
//!
//! Containers carry a node id unique to each test and are removed when its harness drops;
//! the image is tagged by the binary's size and time, and older tags are removed.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_suite;

use agent::runtime::Runtime;
use agent::runtime::docker::{DockerConfig, DockerRuntime, LABEL_NODE};
use reconciler_types::{NodeId, TaskSpec};
use runtime_suite::{Harness, probe_task, run};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const IMAGE_REPO: &str = "flotilla-agent-test";

struct DockerHarness {
    _dir: tempfile::TempDir,
    cfg: DockerConfig,
    rt: DockerRuntime,
    image: String,
    prefix: String,
}

impl Harness for DockerHarness {
    type R = DockerRuntime;
    fn runtime(&self) -> &DockerRuntime {
        &self.rt
    }
    async fn restarted(&self) -> DockerRuntime {
        DockerRuntime::connect(self.cfg.clone()).await.unwrap()
    }
    fn base_spec(&self) -> TaskSpec {
        let mut spec = TaskSpec::default();
        spec.container_spec.image = self.image.clone();
        spec
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
    fn node_id(&self) -> NodeId {
        self.cfg.node_id.clone()
    }
}

impl Drop for DockerHarness {
    fn drop(&mut self) {
        // Whatever a failed test left behind.
        let filter = format!("label={LABEL_NODE}={}", self.cfg.node_id);
        let ids = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output();
        if let Ok(out) = ids {
            let ids = String::from_utf8_lossy(&out.stdout);
            for id in ids.split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.cfg.secrets_dir);
    }
}

async fn harness(name: &str) -> DockerHarness {
    let image = test_image();
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("flttest{}{}", std::process::id(), name.len());
    let cfg = DockerConfig {
        node_id: NodeId::new(tag.clone()),
        files_dir: dir.path().join("files"),
        secrets_dir: dir.path().join("secrets"),
    };
    let rt = DockerRuntime::connect(cfg.clone()).await.expect("a Docker engine answers");
    let prefix = format!("{tag}{}-", name.replace('_', "").chars().take(24).collect::<String>());
    DockerHarness { _dir: dir, cfg, rt, image, prefix }
}

fn target_dir() -> PathBuf {
    // <target>/debug/flotilla
    let exe = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    exe.parent().and_then(Path::parent).unwrap().to_owned()
}

/// Builds the static binary (a no-op when it is fresh) and an image around it; answers its
/// tag. One build at a time across test processes (a lock file in the target folder).
fn test_image() -> String {
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

mod docker {
    use super::*;
    runtime_suite!(super::harness);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_image_is_a_fatal_error_that_names_it() {
        let h = harness("noimage").await;
        let mut t = probe_task(&h, "t", &[]);
        t.spec.container_spec.image = "flotilla-agent-test-missing:never".into();
        let err = runtime_suite::prepare(&h.rt, &t).await.unwrap_err();
        assert!(!err.temporary, "{err:?}");
        assert!(err.message.contains("flotilla-agent-test-missing:never"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn containers_are_found_by_label_and_carry_the_task_name() {
        let h = harness("labels").await;
        let t = probe_task(&h, "t", &[]);
        run(&h.rt, &t).await;
        assert_eq!(h.rt.list().await.unwrap(), [t.who.task_id.as_str()]);
        let out = Command::new("docker")
            .args(["inspect", "--format", "{{.Name}}", &t.who.name()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("/{}", t.who.name()));
        h.rt.remove(&t).await.unwrap();
        assert!(h.rt.list().await.unwrap().is_empty());
    }
}
