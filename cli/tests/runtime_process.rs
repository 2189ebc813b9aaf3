//! The runtime suite against the process runtime, plus what only host processes have:
//! process groups, secrets on tmpfs, and supervisors that outlive the agent.

// Helpers of a test may panic: a failed setup is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod runtime_suite;

use agent::runtime::process::{ProcessConfig, ProcessRuntime, layout};
use agent::runtime::{Runtime, TaskFile};
use agent_core::files::{FileKind, PlacedFile};
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use reconciler_types::{NodeId, TaskSpec};
use runtime_suite::{Harness, probe_task, run, wait_exit};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct ProcessHarness {
    _dir: tempfile::TempDir,
    cfg: ProcessConfig,
    rt: ProcessRuntime,
    prefix: String,
}

impl Harness for ProcessHarness {
    type R = ProcessRuntime;
    fn runtime(&self) -> &ProcessRuntime {
        &self.rt
    }
    async fn restarted(&self) -> ProcessRuntime {
        ProcessRuntime::new(self.cfg.clone()).unwrap()
    }
    fn base_spec(&self) -> TaskSpec {
        TaskSpec::default()
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
    fn node_id(&self) -> NodeId {
        NodeId::new("node1")
    }
}

async fn harness(name: &str) -> ProcessHarness {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ProcessConfig {
        state_dir: dir.path().join("process"),
        secrets_dir: dir.path().join("secrets"),
        flotilla_exe: PathBuf::from(env!("CARGO_BIN_EXE_flotilla")),
    };
    let rt = ProcessRuntime::new(cfg.clone()).unwrap();
    ProcessHarness { _dir: dir, cfg, rt, prefix: format!("{}-", name.replace('_', "")) }
}

runtime_suite!(harness);

/// Whether any process is left in a process group.
fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

fn started(h: &ProcessHarness, id: &str) -> layout::Started {
    layout::read_json(&h.cfg.state_dir.join(id).join("shim.json")).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_task_survives_it_after_stop_or_exit() {
    let h = harness("groups").await;
    // A task that leaves a child behind in its group.
    let mut t = probe_task(&h, "stop", &[]);
    t.spec.container_spec.command = vec!["/bin/sh".into(), "-c".into()];
    t.spec.container_spec.args = vec!["sleep 300 & exec flotilla probe".into()];
    run(&h.rt, &t).await;
    let pgid = started(&h, t.who.task_id.as_str()).pgid;
    assert!(group_alive(pgid));
    h.rt.stop(&t).await.unwrap();
    assert!(!group_alive(pgid), "the sleep left behind was killed with its task");
    // The same when the main process exits on its own.
    let mut t = probe_task(&h, "exit", &[]);
    t.spec.container_spec.command = vec!["/bin/sh".into(), "-c".into()];
    t.spec.container_spec.args = vec!["sleep 300 & sleep 0.2; exit 4".into()];
    run(&h.rt, &t).await;
    let pgid = started(&h, t.who.task_id.as_str()).pgid;
    assert_eq!(wait_exit(&h.rt, &t).await, 4);
    assert!(!group_alive(pgid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_outlives_the_agent_and_remove_kills_what_it_left() {
    let h = harness("outlive").await;
    let t = probe_task(&h, "t", &[]);
    {
        let agent = h.restarted().await;
        run(&agent, &t).await;
        // The agent goes away (its runtime is dropped); the task keeps running.
    }
    let s = started(&h, t.who.task_id.as_str());
    assert!(group_alive(s.pgid));
    let next = h.restarted().await;
    next.remove(&t).await.unwrap();
    assert!(!group_alive(s.pgid));
    assert!(!h.cfg.state_dir.join(t.who.task_id.as_str()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_takes_its_task_down_at_the_next_wait() {
    let h = harness("shimkill").await;
    let t = probe_task(&h, "t", &[]);
    run(&h.rt, &t).await;
    let s = started(&h, t.who.task_id.as_str());
    nix::sys::signal::kill(Pid::from_raw(s.shim_pid as i32), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), h.rt.wait(&t)).await.unwrap();
    let err = err.unwrap_err();
    assert!(err.message.contains("supervisor died"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_alive(s.pgid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!group_alive(s.pgid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_0400_outside_the_task_folder_and_removed_when_the_task_ends() {
    let h = harness("secrets").await;
    let mut t = probe_task(&h, "t", &[("PROBE_EXIT_AFTER", "300ms")]);
    t.files = vec![TaskFile {
        placed: PlacedFile {
            kind: FileKind::Secret,
            name: "pw".into(),
            path: "run/secrets/pw".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        },
        data: b"hunter2".to_vec(),
    }];
    runtime_suite::prepare(&h.rt, &t).await.unwrap();
    let real = h.cfg.secrets_dir.join(t.who.task_id.as_str()).join("run/secrets/pw");
    let meta = std::fs::metadata(&real).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);
    let link = h.cfg.state_dir.join(t.who.task_id.as_str()).join("root/run/secrets/pw");
    assert_eq!(std::fs::read_link(&link).unwrap(), real);
    h.rt.start(&t).await.unwrap();
    assert_eq!(wait_exit(&h.rt, &t).await, 0);
    assert!(!real.exists(), "the secret is gone once the task ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_a_command_or_with_mounts_is_refused() {
    let h = harness("refuse").await;
    let mut t = probe_task(&h, "nocmd", &[]);
    t.spec.container_spec.command.clear();
    t.spec.container_spec.image = "nginx:1.27".into();
    let e = runtime_suite::prepare(&h.rt, &t).await.unwrap_err();
    assert!(!e.temporary && e.message.contains("has neither"), "{e}");
    let mut t = probe_task(&h, "mount", &[]);
    t.spec
        .container_spec
        .mounts
        .push(reconciler_types::Mount { target: "/data".into(), ..Default::default() });
    let e = runtime_suite::prepare(&h.rt, &t).await.unwrap_err();
    assert!(e.message.contains("cannot mount"), "{e}");
    let mut t = probe_task(&h, "other", &[]);
    t.spec.container_spec.labels.insert(agent_core::launch::RUNTIME_LABEL.into(), "docker".into());
    let e = runtime_suite::prepare(&h.rt, &t).await.unwrap_err();
    assert!(e.message.contains("asks for the docker runtime"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flotilla_in_a_shell_health_check_or_command_is_the_agents_binary() {
    // `--health-cmd "flotilla probe check"` and a compose `test:` string are CMD-SHELL: the
    // shell finds `flotilla` on the task's PATH, where the agent's own binary is, as a
    // command whose first word is `flotilla` runs it (nothing needs installing).
    let h = harness("shell").await;
    let mut t = probe_task(&h, "shell", &[]);
    t.spec.container_spec.command = vec!["/bin/sh".into(), "-c".into()];
    t.spec.container_spec.args = vec!["exec flotilla probe".into()];
    let port = run(&h.rt, &t).await;
    runtime_suite::get(port, "/health").await;
    let check = agent_core::HealthTest::Shell("flotilla probe check /health".into());
    let ok = h.rt.probe(&t, &check, Duration::from_secs(10)).await.unwrap();
    assert!(ok.passed, "{ok:?}");
    h.rt.stop(&t).await.unwrap();
    h.rt.remove(&t).await.unwrap();
}
