//! `flotilla up --runtime docker` end to end, on the local Docker engine, with `flotilla
//! probe` in the FROM-scratch image around the static `flotilla` binary (`docker_image`:
//! built here, nothing is pulled), driven by commits to a temporary Git repository:
//!
//! * commit v1 of a probe stack (two replicas behind a health check) → both tasks run as
//!   containers and the published port answers v1;
//! * commit v2 → the rollout follows its `update_config` (parallelism 1, a 1 s delay,
//!   start-first), read from the tasks' history: each slot's v2 task was running before its
//!   v1 task stopped, and the slots' v2 tasks started at least the delay apart;
//! * commit v3, whose health check fails → the rollout rolls back by itself, the published
//!   port answers v2 again, and the stack's history records v3 as rolled back;
//! * SIGINT → `up` stops every container of its node and exits 0.
//!
//! Everything asserted is what the product did: the lines `up` printed, task states and
//! timestamps and the deployments as its API answers them, what the published port answers,
//! the containers the engine runs. Every test name starts with `docker::`; without an engine
//! they fail (tests/run leaves this binary out only under `FLOTILLA_SKIP_DOCKER=1`, and says
//! so).

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod docker_image;
mod up_process;

use agent::runtime::docker::LABEL_NODE;
use reconciler_api::services::{ServiceTasks, TaskView};
use reconciler_api::stacks::{DeploymentOutcome, StackHistory};
use reconciler_types::{MonoTime, TaskState, UpdateState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use up_process::{DEADLINE, Up, commit, free_port, get, git, wait_answer};

const SERVICE: &str = "probe_web";
/// The rollout's delay between slots.
const DELAY: Duration = Duration::from_secs(1);

/// The probe stack at `version` in `image`: two replicas behind a health check, updated one
/// at a time, start-first, with a 1 s delay, rolled back on failure. `fail_health` makes the
/// version's health check fail.
fn stack(image: &str, port: u16, version: &str, fail_health: bool) -> String {
    let fail = if fail_health { "\n      PROBE_FAIL_HEALTH: \"1\"" } else { "" };
    format!(
        r#"version: "3.8"
services:
  web:
    image: {image}
    command: ["flotilla", "probe"]
    environment:
      PROBE_VERSION: {version}{fail}
    ports:
      - "{port}:8080"
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "flotilla", "probe", "check", "/health"]
      interval: 250ms
      retries: 2
    deploy:
      replicas: 2
      update_config:
        parallelism: 1
        delay: 1s
        order: start-first
        monitor: 1s
        failure_action: rollback
      rollback_config:
        parallelism: 0
        monitor: 1s
"#
    )
}

/// Removes the containers of `up`'s node when the test ends, whatever happened.
struct Containers {
    data: PathBuf,
}

impl Containers {
    /// The node's id, once its agent has joined.
    fn node(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data.join("agent/node.json")).ok()?;
        let file: agent::node::NodeFile = serde_json::from_str(&text).ok()?;
        Some(file.node_id.to_string())
    }

    /// The ids of the node's containers that run.
    fn running(&self) -> Vec<String> {
        let node = self.node().expect("the agent joined");
        let filter = format!("label={LABEL_NODE}={node}");
        let out = Command::new("docker").args(["ps", "-q", "--filter", &filter]).output().unwrap();
        assert!(out.status.success(), "docker ps: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if let Some(node) = self.node() {
            docker_image::remove_containers(LABEL_NODE, &node);
        }
    }
}

fn version_of(v: &TaskView) -> &str {
    let env = &v.task.spec.container_spec.env;
    env.iter().find_map(|e| e.strip_prefix("PROBE_VERSION=")).unwrap_or_default()
}

/// Tasks of `version` that run and are meant to.
fn running<'a>(t: &'a ServiceTasks, version: &str) -> Vec<&'a TaskView> {
    let live = |v: &&TaskView| {
        v.task.status.state == TaskState::Running
            && v.task.desired_state == TaskState::Running
            && version_of(v) == version
    };
    t.tasks.iter().filter(live).collect()
}

fn update_state(t: &ServiceTasks) -> Option<UpdateState> {
    t.service.update_status.as_ref().map(|s| s.state)
}

fn describe(t: &ServiceTasks) -> Vec<String> {
    let mut rows: Vec<String> = t
        .tasks
        .iter()
        .map(|v| {
            let k = &v.task;
            format!(
                "slot {} {} {} desired {} state {} at {:?} err {:?}",
                k.slot,
                version_of(v),
                k.id,
                k.desired_state,
                k.status.state,
                k.status.timestamp,
                k.status.err
            )
        })
        .collect();
    rows.sort();
    rows.push(format!("update status: {:?}", t.service.update_status));
    rows
}

/// The API of `up`'s manager, polled.
struct Api {
    rt: tokio::runtime::Runtime,
    client: reconciler_api::ApiClient,
}

impl Api {
    fn new(up: &Up) -> Api {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Api { rt, client: up.client() }
    }

    /// Polls the service's tasks until `f` holds.
    fn wait(&self, up: &Up, what: &str, f: impl Fn(&ServiceTasks) -> bool) -> ServiceTasks {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < DEADLINE {
            if let Ok(t) = self.rt.block_on(self.client.service_tasks(SERVICE)) {
                if f(&t) {
                    return t;
                }
                last = Some(t);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}: {:#?}\n{}\n--- log\n{}",
            last.map(|t| describe(&t)),
            up.printed(),
            up.log_tail()
        );
    }

    /// Polls the stack's history until `f` holds.
    fn wait_history(&self, up: &Up, what: &str, f: impl Fn(&StackHistory) -> bool) -> StackHistory {
        let start = Instant::now();
        let mut last = None;
        while start.elapsed() < DEADLINE {
            if let Ok(h) = self.rt.block_on(self.client.stack_history("probe")) {
                if f(&h) {
                    return h;
                }
                last = Some(h);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}: {last:#?}\n{}", up.printed());
    }
}

/// The latest deployment in `h` is of `commit` (a short id) and ended as `outcome`.
fn latest_is(h: &StackHistory, commit: &str, outcome: DeploymentOutcome) -> bool {
    h.deployments.first().is_some_and(|d| d.commit.starts_with(commit) && d.outcome == outcome)
}

/// Answers of the published port over a few requests: each must be `version`.
fn assert_only(port: u16, version: &str) {
    for _ in 0..6 {
        let body = get(port).expect("the published port answers");
        let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
        assert_eq!(v["version"], version, "{v}");
    }
}

fn write_stack(repo: &Path, text: &str, message: &str) -> String {
    commit(repo, &[("stacks/probe/stack.yml", text)], message)
}

mod docker {
    use super::*;

    #[test]
    fn up_deploys_a_commit_rolls_out_the_next_in_order_and_rolls_back_a_failing_one() {
        let image = docker_image::test_image();
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let port = free_port();
        let first = write_stack(&repo, &stack(&image, port, "v1", false), "probe v1");

        // Declared before `up`, so dropped after it: no agent is left to start them again.
        let containers = Containers { data: state.join("flotilla") };
        let mut up = Up::start(&repo, &state, free_port(), &["--runtime", "docker"]);
        up.wait_line("Started a cluster");
        up.wait_line("agent on the docker runtime");
        println!("=== commit v1 ({first}): two containers run and the published port answers");
        up.wait_line(&format!("stack probe: deploying {first}"));
        up.wait_line(&format!("stack probe: {first} succeeded"));
        let api = Api::new(&up);
        let t = api.wait(&up, "two v1 tasks running", |t| running(t, "v1").len() == 2);
        let v1 = wait_answer(&up, port, "v1");
        let ids: Vec<&str> = running(&t, "v1").iter().map(|v| v.task.id.as_str()).collect();
        assert!(ids.contains(&v1["task"].as_str().unwrap()), "{v1} is one of {ids:?}");
        assert_eq!(containers.running().len(), 2, "two containers run");

        let second = write_stack(&repo, &stack(&image, port, "v2", false), "probe v2");
        println!("=== commit v2 ({second}): one slot at a time, start-first, {DELAY:?} apart");
        up.wait_line(&format!("stack probe: deploying {second}"));
        up.wait_line(&format!("service {SERVICE}: updating"));
        // The delay between the slots holds the rollout at one of two for a second.
        up.wait_line(&format!("service {SERVICE}: 1/2 tasks updated"));
        up.wait_line(&format!("service {SERVICE}: completed"));
        up.wait_line(&format!("stack probe: {second} succeeded"));
        let t = api.wait(&up, "the update to complete", |t| {
            update_state(t) == Some(UpdateState::Completed) && running(t, "v2").len() == 2
        });
        let rows = describe(&t);
        println!("{rows:#?}");
        assert!(running(&t, "v1").is_empty(), "{rows:#?}");
        // Per slot: when its v2 task reached RUNNING, and when its v1 task stopped.
        let mut slots: BTreeMap<u64, (Option<MonoTime>, Option<MonoTime>)> = BTreeMap::new();
        for v in &t.tasks {
            let k = &v.task;
            let slot = slots.entry(k.slot).or_default();
            match version_of(v) {
                "v2" if k.status.state == TaskState::Running => slot.0 = Some(k.status.timestamp),
                "v1" if k.status.state.is_terminal() => slot.1 = Some(k.status.timestamp),
                _ => {}
            }
        }
        assert_eq!(slots.len(), 2, "{rows:#?}");
        let mut started = Vec::new();
        for (slot, times) in &slots {
            let (Some(v2_running), Some(v1_stopped)) = *times else {
                panic!("slot {slot} has no running v2 task or stopped v1 task: {rows:#?}");
            };
            assert!(
                v1_stopped >= v2_running,
                "start-first: slot {slot}'s v1 task stopped before its v2 task ran: {rows:#?}"
            );
            started.push(v2_running);
        }
        started.sort();
        let gap = started[1] - started[0];
        assert!(gap >= DELAY, "parallelism 1 with a {DELAY:?} delay, but {gap:?}: {rows:#?}");
        wait_answer(&up, port, "v2");
        assert_only(port, "v2");

        let third = write_stack(&repo, &stack(&image, port, "v3", true), "probe v3, unhealthy");
        println!("=== commit v3 ({third}): its health check fails, the rollout rolls back");
        up.wait_line(&format!("stack probe: deploying {third}"));
        up.wait_line(&format!("stack probe: {third} rolled back"));
        let t = api.wait(&up, "the automatic rollback", |t| {
            update_state(t) == Some(UpdateState::RollbackCompleted) && running(t, "v2").len() == 2
        });
        let rows = describe(&t);
        println!("{rows:#?}");
        let env = &t.service.spec.task_template.container_spec.env;
        assert!(env.contains(&"PROBE_VERSION=v2".to_owned()), "the spec is v2's again: {env:?}");
        let v3: Vec<&TaskView> = t.tasks.iter().filter(|v| version_of(v) == "v3").collect();
        assert!(!v3.is_empty(), "a v3 task was started: {rows:#?}");
        assert!(v3.iter().all(|v| v.task.status.state.is_terminal()), "{rows:#?}");
        let unhealthy =
            v3.iter().filter(|v| v.task.status.err == "dockerexec: unhealthy container");
        assert!(unhealthy.count() >= 1, "a v3 task failed its health check: {rows:#?}");
        assert_only(port, "v2");
        let h = api.wait_history(&up, "v3 recorded as rolled back", |h| {
            latest_is(h, &third, DeploymentOutcome::RolledBack)
        });
        let outcomes: Vec<(String, &str)> =
            h.deployments.iter().map(|d| (d.commit[..12].to_owned(), d.outcome.as_str())).collect();
        assert_eq!(
            outcomes,
            [
                (third.clone(), "rolled back"),
                (second.clone(), "succeeded"),
                (first.clone(), "succeeded")
            ],
            "{h:#?}"
        );

        println!("=== SIGINT: up stops the node's containers and exits 0");
        let status = up.interrupt();
        assert!(status.success(), "up exited with {status}:\n{}", up.printed());
        let left = containers.running();
        assert!(left.is_empty(), "containers left running after up stopped: {left:?}");
        assert!(get(port).is_none(), "nothing answers on the published port after up stops");
    }
}
