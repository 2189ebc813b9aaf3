//! A real `flotilla manager` and a real `flotilla agent` (process runtime) on loopback, over
//! mutual TLS: the agent joins, registers, runs the tasks the dispatcher assigns it, reports
//! each state with its exit code and error, stops a task asked to, rejects one it cannot
//! run, and after `kill -9` and a restart re-adopts its tasks (and the exit code of one that
//! ended while it was away) instead of starting duplicates.
//!
//! Tasks are written to the store directly (as the orchestrator would write them), so this
//! tests the agent and the dispatcher without the leader loop.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nix::sys::signal::killpg;
use nix::unistd::Pid;
use reconciler_api::ApiClient;
use reconciler_store::{ClusterState, Expect, StoreCommand};
use reconciler_testkit::AgentProcess;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{NodeId, NodeState, SecretReference, Task, TaskId, TaskState, TaskStatus};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// A task id as Docker's log prefixes show it (at most 12 characters).
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

async fn state(c: &ApiClient) -> ClusterState {
    c.state::<ClusterState>().await.unwrap()
}

async fn wait_for<T>(what: &str, c: &ApiClient, f: impl Fn(&ClusterState) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = c.state::<ClusterState>().await
            && let Some(v) = f(&s)
        {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status_of(s: &ClusterState, id: &str) -> TaskStatus {
    s.tasks.get(&TaskId::new(id)).map(|r| r.task.status.clone()).unwrap_or_default()
}

async fn task_reaches(c: &ApiClient, id: &str, state: TaskState) -> TaskStatus {
    wait_for(&format!("{id} {state}"), c, |s| {
        let st = status_of(s, id);
        (st.state >= state).then_some(st)
    })
    .await
}

fn probe_task(id: &str, node: &NodeId, env: &[&str]) -> Task {
    let mut t =
        Task { id: TaskId::new(id), node_id: Some(node.clone()), slot: 1, ..Task::default() };
    t.desired_state = TaskState::Running;
    t.status.state = TaskState::Assigned;
    t.spec.container_spec.command = vec!["flotilla".into(), "probe".into()];
    // Recorded, not run, by the process runtime (Swarm requires an image).
    t.spec.container_spec.image = "flotilla/probe".into();
    let mut e = vec!["PORT=0".to_owned()];
    e.extend(env.iter().map(|s| (*s).to_owned()));
    t.spec.container_spec.env = e;
    t
}

async fn put(c: &ApiClient, task: Task) {
    c.write(StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent })
        .await
        .unwrap();
}

async fn start(root: &Path) -> (ProcessCluster, ApiClient, AgentProcess) {
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root, 1).await.unwrap();
    let c = cluster.client(0).unwrap();
    let agent = cluster.start_agent(root, "a1", "info").await.unwrap();
    (cluster, c, agent)
}

fn pgid(agent: &AgentProcess, task: &str) -> u32 {
    agent.task_pgid(task).expect("the task was started")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_runs_its_tasks_reports_each_state_and_stops_them_when_asked() {
    let root = tempfile::tempdir().unwrap();
    let (_cluster, c, agent) = start(root.path()).await;
    let node = agent.node_id().unwrap();
    let s = state(&c).await;
    let n = &s.nodes[&node].node;
    println!(
        "=== registered: {} cpus, {} bytes",
        n.description.nano_cpus, n.description.memory_bytes
    );
    assert!(n.description.nano_cpus > 0 && n.description.memory_bytes > 0);
    assert_eq!(n.description.engine.labels["com.flotilla.runtime"], "process");
    println!("=== a task runs");
    put(&c, probe_task("t-run", &node, &[])).await;
    let running = task_reaches(&c, "t-run", TaskState::Running).await;
    assert_eq!((running.state, running.message.as_str()), (TaskState::Running, "started"));
    assert!(running.timestamp.0.as_secs() > 1_600_000_000, "timestamps are epoch time");
    let pgid = pgid(&agent, "t-run");
    assert!(group_alive(pgid));
    println!("=== a task that exits non-zero is failed with its code");
    put(&c, probe_task("t-exit", &node, &["PROBE_EXIT_AFTER=200ms", "PROBE_EXIT_CODE=3"])).await;
    let failed = task_reaches(&c, "t-exit", TaskState::Failed).await;
    assert_eq!((failed.state, failed.exit_code), (TaskState::Failed, Some(3)));
    assert_eq!(failed.err, "task: non-zero exit (3)");
    println!("=== a task whose secret this node never received is rejected");
    let mut bad = probe_task("t-secret", &node, &[]);
    bad.spec.container_spec.secrets.push(SecretReference {
        secret_name: "nowhere".into(),
        target: "nowhere".into(),
        ..SecretReference::default()
    });
    put(&c, bad).await;
    let rejected = task_reaches(&c, "t-secret", TaskState::Rejected).await;
    assert!(rejected.err.contains("secret nowhere was not sent to this node"), "{rejected:?}");
    println!("=== desired shutdown stops the running task; nothing of it is left");
    let shut = StoreCommand::SetTaskDesiredState {
        id: TaskId::new("t-run"),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    c.write(shut).await.unwrap();
    let down = task_reaches(&c, "t-run", TaskState::Shutdown).await;
    assert_eq!(down.state, TaskState::Shutdown);
    assert!(!group_alive(pgid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_its_tasks_and_the_exit_code_of_one_that_ended_meanwhile() {
    let root = tempfile::tempdir().unwrap();
    let (_cluster, c, mut agent) = start(root.path()).await;
    let node = agent.node_id().unwrap();
    put(&c, probe_task("t-keep", &node, &[])).await;
    put(&c, probe_task("t-ends", &node, &["PROBE_EXIT_AFTER=4s", "PROBE_EXIT_CODE=5"])).await;
    task_reaches(&c, "t-keep", TaskState::Running).await;
    task_reaches(&c, "t-ends", TaskState::Running).await;
    let (keep, ends) = (pgid(&agent, "t-keep"), pgid(&agent, "t-ends"));
    println!("=== kill -9 the agent");
    agent.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while group_alive(ends) {
        assert!(Instant::now() < deadline, "t-ends did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(group_alive(keep), "tasks outlive their agent");
    assert_eq!(status_of(&state(&c).await, "t-ends").state, TaskState::Running);
    println!("=== restart it: adopted, not started again");
    agent.spawn().unwrap();
    let ended = task_reaches(&c, "t-ends", TaskState::Failed).await;
    assert_eq!((ended.exit_code, ended.err.as_str()), (Some(5), "task: non-zero exit (5)"));
    assert_eq!(pgid(&agent, "t-keep"), keep, "the same process, not a new one");
    assert!(group_alive(keep));
    assert_eq!(agent.task_dirs(), 2, "no task was started twice");
    assert_eq!(status_of(&state(&c).await, "t-keep").state, TaskState::Running);
    println!("=== the adopted task still stops when asked");
    let shut = StoreCommand::SetTaskDesiredState {
        id: TaskId::new("t-keep"),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    c.write(shut).await.unwrap();
    task_reaches(&c, "t-keep", TaskState::Shutdown).await;
    assert!(!group_alive(keep));
}

/// What the certificate in a node's data folder says.
fn cert_in(dir: &Path) -> reconciler_tls::CertInfo {
    let pem = std::fs::read_to_string(dir.join(reconciler_tls::files::CERT_FILE)).unwrap();
    let chain = reconciler_tls::cert::certs_from_pem(&pem).unwrap();
    reconciler_tls::cert::cert_info(&chain[0]).unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_renews_a_short_certificate_in_time_and_keeps_working_past_its_first_expiry() {
    let root = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let args = ["--cert-expiry", "10s"];
    let cluster = ProcessCluster::start_with_init_args(binary, root.path(), 1, false, &args);
    let cluster = cluster.await.unwrap();
    let c = cluster.client(0).unwrap();
    let agent = cluster.start_agent(root.path(), "a1", "info").await.unwrap();
    let node = agent.node_id().unwrap();
    let first = cert_in(&agent.dir);
    println!("=== the agent's first certificate expires at {}", first.not_after);
    let mut current = first.clone();
    let mut renewals = 0;
    while unix_now() <= first.not_after + 2 {
        let now = cert_in(&agent.dir);
        if now.not_after != current.not_after {
            let at = unix_now();
            println!("=== renewed at {at}: now valid until {}", now.not_after);
            assert!(at < current.not_after, "renewed after the certificate expired");
            assert_eq!(now.identity, first.identity);
            renewals += 1;
            current = now;
        }
        assert!(unix_now() < current.not_after, "the agent let its certificate expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(renewals >= 1, "the agent never renewed its certificate");
    println!("=== past the first expiry the session still works: a task runs");
    put(&c, probe_task("t-late", &node, &[])).await;
    task_reaches(&c, "t-late", TaskState::Running).await;
    let s = state(&c).await;
    assert_eq!(s.nodes[&node].node.status.state, NodeState::Ready);
    println!("=== node inspect shows the certificate's expiry");
    let out = cli(&cluster, &["node", "inspect", node.as_str()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expires_at = shown[0]["certificate"]["expires_at"].as_u64().unwrap();
    assert!(expires_at > first.not_after, "{shown}");
    assert!(shown[0]["certificate"]["expires"].as_str().unwrap().ends_with('Z'));
    let shut = StoreCommand::SetTaskDesiredState {
        id: TaskId::new("t-late"),
        state: TaskState::Shutdown,
        expected: Expect::Any,
    };
    c.write(shut).await.unwrap();
    task_reaches(&c, "t-late", TaskState::Shutdown).await;
}

/// Runs the CLI against the cluster's manager.
fn cli(cluster: &ProcessCluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flotilla"));
    cmd.args(args)
        .env("FLOTILLA_HOST", &cluster.managers[0].addr)
        .env("FLOTILLA_TOKEN", &cluster.token)
        .env("FLOTILLA_TLSCACERT", cluster.ca_file());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_logs_streams_each_tasks_lines_with_dockers_prefixes() {
    use reconciler_api::services::{ServiceCreate, ServiceCreated};
    use reconciler_types::{ServiceMode, ServiceSpec};
    let root = tempfile::tempdir().unwrap();
    let (cluster, c, agent) = start(root.path()).await;
    let node = agent.node_id().unwrap();
    let mut spec = ServiceSpec { name: "logs_web".into(), ..ServiceSpec::default() };
    spec.mode = ServiceMode::Replicated { replicas: 2 };
    spec.task_template = probe_task("x", &node, &["PROBE_VERSION=v9"]).spec;
    let created: ServiceCreated =
        c.post("/v1/services", &ServiceCreate { spec: spec.clone() }).await.unwrap();
    println!("=== the leader loop places both replicas on the agent, which runs them");
    let running = |s: &ClusterState, version: &str| {
        let mut ids: Vec<(u64, String)> = s
            .tasks
            .values()
            .map(|r| &r.task)
            .filter(|t| t.service_id == created.id && t.status.state == TaskState::Running)
            .filter(|t| t.spec.container_spec.env.iter().any(|e| e.ends_with(version)))
            .map(|t| (t.slot, t.id.to_string()))
            .collect();
        ids.sort();
        (ids.len() == 2).then_some(ids)
    };
    let ids = wait_for("two running replicas", &c, |s| running(s, "=v9")).await;
    println!("=== service logs: every task's lines, prefixed");
    let out = cli(&cluster, &["service", "logs", "logs_web"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (slot, id) in &ids {
        let prefix = format!("logs_web.{slot}.{}@a1    | probe v9 listening on", short(id));
        assert!(stdout.lines().any(|l| l.starts_with(&prefix)), "{prefix:?} in\n{stdout}");
    }
    println!("=== a task by id, --raw, --timestamps");
    let out = cli(&cluster, &["service", "logs", "--raw", "-t", &ids[0].1]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default().to_owned();
    let (ts, rest) = first.split_once(' ').unwrap();
    assert!(ts.ends_with('Z') && ts.contains('T'), "{first}");
    assert!(rest.starts_with("probe v9 listening on"), "{first}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    println!("=== -f follows until interrupted: lines written later, and tasks started later");
    let mut follow = cli(&cluster, &["service", "logs", "-f", "logs_web"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let into = seen.clone();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // The follower is connected once it printed the running tasks' first lines.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.lock().unwrap().contains("probe v9 listening on") {
        assert!(Instant::now() < deadline, "the follower printed nothing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut update = spec.clone();
    for e in &mut update.task_template.container_spec.env {
        if e == "PROBE_VERSION=v9" {
            *e = "PROBE_VERSION=v10".into();
        }
    }
    let info = c.inspect_service(created.id.as_str()).await.unwrap().service;
    c.update_service(created.id.as_str(), info.version, &update).await.unwrap();
    let new_ids = wait_for("two running replicas of v10", &c, |s| running(s, "=v10")).await;
    // The update stops the v9 tasks: what they print then reaches the follower; the v10
    // tasks started after the follow began, and their lines reach it too.
    let stop_lines: Vec<String> = ids
        .iter()
        .map(|(slot, id)| {
            format!("logs_web.{slot}.{}@a1    | probe: stopping on SIGTERM", short(id))
        })
        .collect();
    let start_lines: Vec<String> = new_ids
        .iter()
        .map(|(slot, id)| format!("logs_web.{slot}.{}@a1    | probe v10 listening on", short(id)))
        .collect();
    let shown = |text: &str| {
        let stopped = stop_lines.iter().any(|want| text.lines().any(|l| l == want));
        stopped && start_lines.iter().all(|want| text.lines().any(|l| l.starts_with(want)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !shown(&seen.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = follow.kill();
    let _ = follow.wait();
    reader.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(shown(&seen), "{stop_lines:?} (any) and {start_lines:?} (all) in\n{seen}");
    println!("=== an unknown target is Docker's error");
    let out = cli(&cluster, &["service", "logs", "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such task or service: nope"));
}
