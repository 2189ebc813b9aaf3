//! `flotilla up` as a user runs it, against a temporary Git repository holding a probe stack
//! and a stack the process runtime cannot run: the probe's tasks run and its published port
//! answers with the probe's own answer; the other stack is skipped with its reason; other
//! commands find the cluster without flags; a commit rolls out; SIGINT stops every task
//! process and exits 0; a second `up` on the same data folder resumes the cluster. On a
//! terminal (a pseudo-terminal of `script`), a rollout draws a progress bar under the same
//! lines.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod up_process;

use nix::sys::signal::killpg;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Command;
use up_process::{Up, commit as commit_files, free_port, get, git, wait_answer};

fn probe_stack(port: u16, version: &str) -> String {
    probe_stack_with(port, version, "")
}

/// [`probe_stack`] with more `update_config` lines (indented as they are).
fn probe_stack_with(port: u16, version: &str, update_config: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: flotilla/probe:{version}
    command: ["flotilla", "probe"]
    environment:
      PROBE_VERSION: {version}
    ports:
      - "{port}:8080"
    deploy:
      replicas: 2
      update_config:
        parallelism: 1
        order: start-first
        failure_action: rollback
        monitor: 1s{update_config}
"#
    )
}

/// A commit of the probe stack at `version` (and of an image-only stack); its short id.
fn commit(repo: &Path, port: u16, version: &str) -> String {
    let probe = probe_stack(port, version);
    let db = "version: \"3.8\"\nservices:\n  db:\n    image: postgres:16-alpine\n";
    let files = [("stacks/probe/stack.yml", probe.as_str()), ("stacks/db/stack.yml", db)];
    commit_files(repo, &files, &format!("probe {version}"))
}

/// The process groups of the agent's tasks.
fn task_groups(agent: &Path) -> Vec<i32> {
    let Ok(dirs) = std::fs::read_dir(agent.join("process")) else { return Vec::new() };
    dirs.flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("shim.json")).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .filter_map(|v| v["pgid"].as_i64())
        .map(|p| i32::try_from(p).unwrap())
        .collect()
}

fn alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// `flotilla stack ls` with no flag or variable naming the manager or its credentials.
fn stack_ls(state: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .args(["stack", "ls"])
        .env("XDG_STATE_HOME", state)
        .env_remove("FLOTILLA_HOST")
        .env_remove("FLOTILLA_TOKEN")
        .env_remove("FLOTILLA_TLSCACERT")
        .output()
        .unwrap();
    assert!(out.status.success(), "stack ls: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn up_deploys_a_repository_rolls_out_a_commit_stops_cleanly_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let state: PathBuf = tmp.path().join("state");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let published = free_port();
    let listen = free_port();
    let first = commit(&repo, published, "v1");

    let mut up = Up::start(&repo, &state, listen, &[]);
    up.wait_line("Started a cluster");
    up.wait_line("skipped stack db: the process runtime runs a service's entrypoint and command, and db_db has neither");
    up.wait_line(&format!("stack probe: deploying {first}"));
    let v1 = wait_answer(&up, published, "v1");
    assert!(v1["task"].as_str().is_some_and(|t| !t.is_empty()), "the probe names its task: {v1}");
    up.wait_line("service probe_web: 2/2 tasks running");
    up.wait_line(&format!("service probe_web: http://127.0.0.1:{published}/ answers"));
    up.wait_line(&format!("stack probe: {first} succeeded"));
    // Both tasks answer through the published port, in turn.
    let mut tasks = std::collections::BTreeSet::new();
    for _ in 0..6 {
        tasks.insert(wait_answer(&up, published, "v1")["task"].to_string());
    }
    assert_eq!(tasks.len(), 2, "the published port reaches both tasks: {tasks:?}");

    // Other commands find the cluster and its token without flags.
    let ls = stack_ls(&state);
    assert!(ls.contains("probe") && !ls.contains("db "), "{ls}");

    // A commit rolls out.
    let second = commit(&repo, published, "v2");
    up.wait_line(&format!("stack probe: deploying {second}"));
    up.wait_line("service probe_web: updating");
    up.wait_line("service probe_web: completed");
    up.wait_line(&format!("stack probe: {second} succeeded"));
    wait_answer(&up, published, "v2");

    // SIGINT stops every task process, then up exits 0.
    let agent = state.join("flotilla/agent");
    let groups: Vec<i32> = task_groups(&agent).into_iter().filter(|g| alive(*g)).collect();
    assert_eq!(groups.len(), 2, "two task processes run: {groups:?}");
    let status = up.interrupt();
    assert!(status.success(), "up exited with {status}:\n{}", up.printed());
    let left: Vec<i32> = groups.into_iter().filter(|g| alive(*g)).collect();
    assert!(left.is_empty(), "task process groups left running: {left:?}");
    assert!(get(published).is_none(), "nothing answers on the published port after up stops");
    drop(up);

    // A second up on the same folder resumes: the same deployment, its tasks back.
    let mut again = Up::start(&repo, &state, listen, &[]);
    again.wait_line("Resumed the cluster");
    wait_answer(&again, published, "v2");
    again.wait_line("service probe_web: 2/2 tasks running");
    assert!(
        !again.printed().contains(&format!("deploying {second}")),
        "the resumed cluster does not deploy the same commit again:\n{}",
        again.printed()
    );
    let status = again.interrupt();
    assert!(status.success(), "the second up exited with {status}:\n{}", again.printed());
}

#[test]
fn up_on_a_terminal_draws_a_bar_while_a_rollout_is_under_way() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let state: PathBuf = tmp.path().join("state");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let published = free_port();
    // A 1 s delay between the two slots: the bar shows one of two tasks updated meanwhile.
    let delay = "\n        delay: 1s";
    let stack = |version: &str| probe_stack_with(published, version, delay);
    let first = commit_files(&repo, &[("stacks/probe/stack.yml", &stack("v1"))], "probe v1");

    let mut up = Up::start_on_terminal(&repo, &state, free_port(), &[]);
    up.wait_line(&format!("stack probe: {first} succeeded"));
    wait_answer(&up, published, "v1");
    let second = commit_files(&repo, &[("stacks/probe/stack.yml", &stack("v2"))], "probe v2");
    up.wait_line(&format!("stack probe: deploying {second}"));
    up.wait_line("service probe_web: updating, 1/2 tasks updated [=========================>");
    up.wait_line(&format!("stack probe: {second} succeeded"));
    wait_answer(&up, published, "v2");
    let status = up.interrupt();
    assert!(status.success(), "up exited with {status}:\n{}", up.printed());
}
