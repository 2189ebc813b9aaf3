//! The runtime suite against the docker runtime, on the local Docker engine, with
//! `flotilla probe` in a FROM-scratch image around the static `flotilla` binary
//! (`docker_image`; no registry needed). Every test name starts with `docker::`; without an
//! engine they fail (tests/run leaves them out only under `FLOTILLA_SKIP_DOCKER=1`, and says
//! so).
//!
//! Containers carry a node id unique to each test and are removed when its harness drops.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod docker_image;
mod runtime_suite;

use agent::runtime::Runtime;
use agent::runtime::docker::{DockerConfig, DockerRuntime, LABEL_NODE};
use docker_image::{remove_containers, test_image};
use reconciler_types::{NodeId, TaskSpec};
use runtime_suite::{Harness, probe_task, run};
use std::process::Command;

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
        remove_containers(LABEL_NODE, self.cfg.node_id.as_str());
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
