//! `flotilla up` as a user runs it, against a temporary Git repository holding a probe stack
//! and a stack the process runtime cannot run: the probe's tasks run and its published port
//! answers with the probe's own answer; the other stack is skipped with its reason; other
//! commands find the cluster without flags; a commit rolls out; SIGINT stops every task
//! process and exits 0; a second `up` on the same data folder resumes the cluster.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn probe_stack(port: u16, version: &str) -> String {
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
        monitor: 1s
"#
    )
}

/// A commit of the probe stack at `version` (and of an image-only stack); its short id.
fn commit(repo: &Path, port: u16, version: &str) -> String {
    std::fs::create_dir_all(repo.join("stacks/probe")).unwrap();
    std::fs::create_dir_all(repo.join("stacks/db")).unwrap();
    std::fs::write(repo.join("stacks/probe/stack.yml"), probe_stack(port, version)).unwrap();
    std::fs::write(
        repo.join("stacks/db/stack.yml"),
        "version: \"3.8\"\nservices:\n  db:\n    image: postgres:16-alpine\n",
    )
    .unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", &format!("probe {version}")]);
    git(repo, &["rev-parse", "HEAD"])[..12].to_owned()
}

/// One `flotilla up` process and the lines it printed.
struct Up {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Up {
    fn start(repo: &Path, state: &Path, listen: u16) -> Up {
        let data = state.join("flotilla");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flotilla"))
            .arg("up")
            .arg("--repo")
            .arg(repo)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &format!("127.0.0.1:{listen}"), "--poll", "200ms"])
            .env("XDG_STATE_HOME", state)
            .env_remove("FLOTILLA_HOST")
            .env_remove("FLOTILLA_TOKEN")
            .env_remove("FLOTILLA_TLSCACERT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(state.join("up.log")).unwrap())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Up { child, lines }
    }

    fn printed(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until a printed line contains `text`.
    fn wait_line(&mut self, text: &str) {
        let start = Instant::now();
        while !self.printed().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("up exited ({status}) before printing {text:?}:\n{}", self.printed());
            }
            assert!(start.elapsed() < DEADLINE, "no line {text:?} in:\n{}", self.printed());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGINT, then the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), Signal::SIGINT).unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "up did not stop:\n{}", self.printed());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of `GET /` on the published port, if it answers.
fn get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
}

/// Waits until the published port answers with the probe's JSON for `version`.
fn wait_answer(up: &Up, port: u16, version: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(body) = get(port)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(body.trim())
            && v["version"] == version
        {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "port {port} never answered {version}:\n{}",
            up.printed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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

    let mut up = Up::start(&repo, &state, listen);
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
    let mut again = Up::start(&repo, &state, listen);
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
