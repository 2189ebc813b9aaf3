//! The GitOps loop end to end on three manager processes and two `flotilla agent` processes
//! (process runtime), driven by commits to a temporary Git repository that the cluster was
//! initialised with (`manager --init --repo DIR --poll`):
//!
//! * commit v1 of a stack that runs `flotilla probe` (four replicas, health check
//!   `[CMD, flotilla, probe, check, /health]`, `update_config` parallelism 1 with a delay) →
//!   every task runs on one of the two agents and answers v1 on its node port;
//! * commit v2 → once the rollout has replaced a slot and before it has replaced them all,
//!   `kill -9` the leading manager → the new leader finishes the rollout: every task answers
//!   v2, the stack's history records the v2 commit exactly once (and as succeeded), no slot
//!   ever had two tasks running at once, no slot started two tasks of one spec version, and
//!   no agent started a task twice (read from the agents' own logs).
//!
//! Everything asserted is what the product did: task states, slots and spec versions as the
//! API answers them (polled all along, so that a state held for a moment is still seen), the
//! deployments the API records, what the tasks answer. Waits poll with deadlines; nothing
//! sleeps in place of an observation.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reconciler_api::ApiClient;
use reconciler_api::services::{ServiceTasks, TaskView};
use reconciler_api::stacks::{DeploymentOutcome, StackHistory};
use reconciler_testkit::AgentProcess;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{TaskId, TaskState, UpdateState};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tokio::time::Instant;

const STACK: &str = "probe";
const SERVICE: &str = "probe_web";
const REPLICAS: usize = 4;
/// The agents' hostnames and the loopback address each one's mesh and tasks are reached on.
const AGENTS: [(&str, &str); 2] = [("a", "127.0.0.2"), ("b", "127.0.0.3")];
const DEADLINE: Duration = Duration::from_secs(90);

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=Ada", "-c", "user.email=ada@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The probe stack at `version`: four replicas behind a health check, two per node at most
/// (the first agent to join does not take them all), updated one at a time with a two-second
/// delay (stop-first, so a slot never runs two tasks).
fn stack(version: &str) -> String {
    format!(
        r#"version: "3.8"
services:
  web:
    image: flotilla/probe:{version}
    command: ["flotilla", "probe"]
    environment:
      PROBE_VERSION: {version}
    ports:
      - target: 80
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD", "flotilla", "probe", "check", "/health"]
      interval: 300ms
      retries: 3
    deploy:
      replicas: {REPLICAS}
      placement:
        max_replicas_per_node: 2
      update_config:
        parallelism: 1
        delay: 2s
        monitor: 1s
        order: stop-first
        failure_action: rollback
"#
    )
}

/// Commits the stack at `version`; answers the commit id.
fn commit(repo: &Path, version: &str) -> String {
    std::fs::create_dir_all(repo.join("stacks/probe")).unwrap();
    std::fs::write(repo.join("stacks/probe/stack.yml"), stack(version)).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", &format!("probe {version}")]);
    git(repo, &["rev-parse", "HEAD"])
}

fn version_of(v: &TaskView) -> &str {
    let env = &v.task.spec.container_spec.env;
    env.iter().find_map(|e| e.strip_prefix("PROBE_VERSION=")).unwrap_or_default()
}

/// Tasks of `version` that run and are meant to.
fn running(t: &ServiceTasks, version: &str) -> Vec<TaskView> {
    let live = |v: &&TaskView| {
        v.task.status.state == TaskState::Running
            && v.task.desired_state == TaskState::Running
            && version_of(v) == version
    };
    t.tasks.iter().filter(live).cloned().collect()
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
                "slot {} spec v{} {} {} on {} desired {} state {} err {:?}",
                k.slot,
                k.spec_version,
                version_of(v),
                k.id,
                v.node,
                k.desired_state,
                k.status.state,
                k.status.err
            )
        })
        .collect();
    rows.sort();
    rows.push(format!("update status: {:?}", t.service.update_status));
    rows
}

/// What the test saw of the service's tasks over all its polls.
#[derive(Default)]
struct Seen {
    /// Every task seen, with its slot and spec version, and whether it was ever seen
    /// RUNNING or past it.
    tasks: BTreeMap<TaskId, (u64, u64, bool)>,
    /// Polls in which a slot had two tasks running that were both meant to run.
    doubled: Vec<String>,
}

impl Seen {
    fn record(&mut self, t: &ServiceTasks) {
        let mut live: BTreeMap<u64, Vec<&TaskId>> = BTreeMap::new();
        for v in &t.tasks {
            let k = &v.task;
            let e = self.tasks.entry(k.id.clone()).or_insert((k.slot, k.spec_version, false));
            e.2 |= k.status.state >= TaskState::Running;
            if k.status.state == TaskState::Running && k.desired_state == TaskState::Running {
                live.entry(k.slot).or_default().push(&k.id);
            }
        }
        for (slot, ids) in live.iter().filter(|(_, ids)| ids.len() > 1) {
            self.doubled.push(format!("slot {slot}: {ids:?}"));
        }
    }

    /// The tasks that reached RUNNING, by (slot, spec version).
    fn started(&self) -> BTreeMap<(u64, u64), Vec<TaskId>> {
        let mut out: BTreeMap<(u64, u64), Vec<TaskId>> = BTreeMap::new();
        for (id, (slot, version, ran)) in &self.tasks {
            if *ran {
                out.entry((*slot, *version)).or_default().push(id.clone());
            }
        }
        out
    }
}

struct Setup {
    cluster: ProcessCluster,
    agents: Vec<AgentProcess>,
    seen: Seen,
}

impl Setup {
    /// A client of a manager that runs.
    fn client(&self) -> ApiClient {
        let i = (0..3).find(|i| self.cluster.managers[*i].is_running()).unwrap();
        self.cluster.client(i).unwrap()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for a in &self.agents {
            let log = std::fs::read_to_string(a.log_file()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            out.push_str(&format!("--- agent {} (tail)\n", a.hostname));
            tail.into_iter().rev().for_each(|l| out.push_str(&format!("{l}\n")));
        }
        for m in &self.cluster.managers {
            let log = std::fs::read_to_string(m.data_dir.with_extension("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!("--- manager {} (tail)\n", m.data_dir.display()));
            tail.into_iter().rev().for_each(|l| out.push_str(&format!("{l}\n")));
        }
        out
    }

    /// Polls the service's tasks until `f` holds, recording every poll.
    async fn wait(&mut self, what: &str, f: impl Fn(&ServiceTasks) -> bool) -> ServiceTasks {
        let deadline = Instant::now() + DEADLINE;
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(t) = self.client().service_tasks(SERVICE).await {
                self.seen.record(&t);
                if f(&t) {
                    return t;
                }
                last = Some(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}: {:#?}\n{}", last.map(|t| describe(&t)), self.logs());
    }

    /// Polls the stack's history until `f` holds.
    async fn wait_history(&self, what: &str, f: impl Fn(&StackHistory) -> bool) -> StackHistory {
        let deadline = Instant::now() + DEADLINE;
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(h) = self.client().stack_history(STACK).await {
                if f(&h) {
                    return h;
                }
                last = Some(h);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}: {last:#?}\n{}", self.logs());
    }

    /// Each running task of `version` answers `GET /` with that version, as itself, on the
    /// node port its agent reported, at its node's address.
    async fn assert_answers(&self, tasks: &[TaskView], version: &str) {
        let http = reconciler_api::http::http_client(Duration::from_secs(5)).unwrap();
        for v in tasks {
            let ip = AGENTS.iter().find(|(h, _)| *h == v.node).map(|(_, ip)| *ip);
            let ip =
                ip.unwrap_or_else(|| panic!("task {} on unknown node {:?}", v.task.id, v.node));
            let port = v.task.status.ports.first().expect("a running task reports its node port");
            let url = format!("http://{ip}:{}/", port.published_port);
            let r = http.get(&url).send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(r.status().is_success(), "{url}: {}", r.status());
            let got: serde_json::Value = r.json().await.unwrap();
            assert_eq!(got["version"], version, "{url}: {got}");
            assert_eq!(got["task"], v.task.id.as_str(), "{url}: {got}");
        }
    }
}

async fn start_agent(cluster: &ProcessCluster, root: &Path, name: &str, ip: &str) -> AgentProcess {
    let mut a = AgentProcess::at_address(cluster, &root.join(name), name, ip).await.unwrap();
    a.spawn().unwrap();
    a.wait_ready(cluster).await.unwrap();
    a
}

/// `text` without ANSI colour sequences (`ESC [ ... letter`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// How many times each task id was started by the agents, from their logs (a runner logs
/// every state change: `task=ID ... to=starting`).
fn starts_in_logs(agents: &[AgentProcess]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in agents {
        let log = plain(&std::fs::read_to_string(a.log_file()).unwrap());
        for line in log.lines().filter(|l| l.contains("task state") && l.contains("to=starting")) {
            let id = line.split_whitespace().find_map(|w| w.strip_prefix("task="));
            if let Some(id) = id {
                out.entry(id.to_owned()).or_default().push(a.hostname.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_rolls_out_to_the_end_under_a_new_leader_after_the_old_one_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let v1_commit = commit(&repo, "v1");

    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let repo_arg = repo.to_str().unwrap();
    let init = ["--repo", repo_arg, "--poll", "300ms"];
    let cluster =
        ProcessCluster::start_with_init_args(binary, &root.join("m"), 3, false, &init).await;
    let cluster = cluster.unwrap();
    let mut agents = Vec::new();
    for (name, ip) in AGENTS {
        agents.push(start_agent(&cluster, root, name, ip).await);
    }
    let mut s = Setup { cluster, agents, seen: Seen::default() };

    println!("=== commit v1 ({v1_commit}): {REPLICAS} healthy tasks answer v1");
    let t = s.wait("every v1 task running", |t| running(t, "v1").len() == REPLICAS).await;
    let v1 = running(&t, "v1");
    let nodes: BTreeSet<&str> = v1.iter().map(|v| v.node.as_str()).collect();
    assert_eq!(nodes.len(), 2, "spread over both agents: {:#?}", describe(&t));
    s.assert_answers(&v1, "v1").await;
    s.wait_history("v1 recorded as succeeded", |h| {
        h.deployments
            .first()
            .is_some_and(|d| d.commit == v1_commit && d.outcome == DeploymentOutcome::Succeeded)
    })
    .await;
    let v1_spec = v1[0].task.spec_version;

    let v2_commit = commit(&repo, "v2");
    println!("=== commit v2 ({v2_commit}): kill -9 the leader once a slot runs v2");
    let t = s
        .wait("the rollout's first slot", |t| {
            update_state(t) == Some(UpdateState::Updating) && !running(t, "v2").is_empty()
        })
        .await;
    let leader = s.cluster.leader().await.unwrap();
    // Read again just before the kill: it must land with slots still to replace.
    let t = s.client().service_tasks(SERVICE).await.unwrap_or(t);
    s.seen.record(&t);
    let done = running(&t, "v2").len();
    assert!(done < REPLICAS, "the rollout ended before the kill: {:#?}", describe(&t));
    assert_eq!(update_state(&t), Some(UpdateState::Updating), "{:#?}", describe(&t));
    s.cluster.kill(leader).unwrap();
    println!("=== killed manager {} with {done}/{REPLICAS} slots on v2", leader + 1);

    let t = s
        .wait("the rollout to complete under the new leader", |t| {
            update_state(t) == Some(UpdateState::Completed) && running(t, "v2").len() == REPLICAS
        })
        .await;
    let new_leader = s.cluster.leader().await.unwrap();
    assert_ne!(new_leader, leader);
    println!("=== manager {} leads; {:#?}", new_leader + 1, describe(&t));
    let v2 = running(&t, "v2");
    assert!(running(&t, "v1").is_empty(), "{:#?}", describe(&t));
    s.assert_answers(&v2, "v2").await;
    let slots: BTreeSet<u64> = v2.iter().map(|v| v.task.slot).collect();
    assert_eq!(slots.len(), REPLICAS, "one v2 task per slot: {:#?}", describe(&t));
    let v2_spec = v2[0].task.spec_version;
    assert!(v2.iter().all(|v| v.task.spec_version == v2_spec), "{:#?}", describe(&t));
    assert!(v2_spec > v1_spec);

    println!("=== the v2 deployment is recorded once, and succeeded");
    let h = s
        .wait_history("v2 recorded as succeeded", |h| {
            h.deployments.first().is_some_and(|d| {
                d.commit == v2_commit && d.outcome != DeploymentOutcome::InProgress
            })
        })
        .await;
    let rows: Vec<String> = h
        .deployments
        .iter()
        .map(|d| format!("{} {} {} {}", d.id, d.commit, d.trigger.as_str(), d.outcome.as_str()))
        .collect();
    println!("{rows:#?}");
    let of = |c: &str| h.deployments.iter().filter(|d| d.commit == c).count();
    assert_eq!(of(&v2_commit), 1, "the v2 commit is deployed once: {rows:#?}");
    assert_eq!(of(&v1_commit), 1, "the v1 commit is deployed once: {rows:#?}");
    assert_eq!(h.deployments.len(), 2, "{rows:#?}");
    assert_eq!(h.deployments[0].outcome, DeploymentOutcome::Succeeded, "{rows:#?}");

    println!("=== no slot ran two tasks at once or started one spec version twice");
    // One more look, from the new leader, so that the last states are in.
    let t = s.client().service_tasks(SERVICE).await.unwrap();
    s.seen.record(&t);
    assert!(s.seen.doubled.is_empty(), "a slot ran two tasks: {:#?}", s.seen.doubled);
    let started = s.seen.started();
    let twice: Vec<_> = started.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "a slot started a spec version twice: {twice:#?}");
    for slot in &slots {
        assert!(started.contains_key(&(*slot, v2_spec)), "slot {slot} never ran v2");
    }
    let by_agents = starts_in_logs(&s.agents);
    let known: BTreeSet<String> = s.seen.tasks.keys().map(|id| id.to_string()).collect();
    let sample: Vec<String> = s
        .agents
        .iter()
        .flat_map(|a| {
            let log = plain(&std::fs::read_to_string(a.log_file()).unwrap());
            log.lines()
                .filter(|l| l.contains("task state"))
                .take(3)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        by_agents.len() >= 2 * REPLICAS,
        "the agents' logs name their starts: {by_agents:#?}\n{sample:#?}"
    );
    for (id, hosts) in &by_agents {
        assert!(known.contains(id), "an agent started a task the API never showed: {id}");
        assert_eq!(hosts.len(), 1, "task {id} started more than once: {hosts:?}");
    }
    drop(s.agents);
    drop(s.cluster);
}
