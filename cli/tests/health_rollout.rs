//! Health-gated rollouts through a real agent (`docs/swarm-semantics.md` §1.3, S53): one
//! manager process and one `flotilla agent` process (process runtime); the leader loop places
//! a 2-replica `flotilla probe` service whose compose healthcheck is
//! `[CMD, flotilla, probe, check, /health]`. Its tasks stay STARTING until their first healthy
//! probe and then run and answer; an update to a version that never becomes healthy fails
//! its task with `processexec: unhealthy container`, and failure_action rollback brings the
//! previous version back, running and answering.
//!
//! Everything asserted is what the product computed: task states and timestamps, errors and
//! the update status as the API answers them, and what the tasks answer on the node ports
//! the agent reported. Waits poll with deadlines.

// Test helpers panic on setup failures; that is how a test reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agent_core::health::DEFAULT_START_INTERVAL;
use reconciler_api::ApiClient;
use reconciler_api::services::{ServiceTasks, TaskView};
use reconciler_testkit::AgentProcess;
use reconciler_testkit::harness::ProcessCluster;
use reconciler_types::{
    FailureAction, HealthConfig, MonoTime, PortConfig, ServiceMode, ServiceSpec, TaskId, TaskState,
    UpdateState,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

const SERVICE: &str = "health_web";

fn spec() -> ServiceSpec {
    let mut spec = ServiceSpec { name: SERVICE.into(), ..ServiceSpec::default() };
    spec.mode = ServiceMode::Replicated { replicas: 2 };
    let c = &mut spec.task_template.container_spec;
    c.image = "flotilla/probe".into();
    c.command = vec!["flotilla".into(), "probe".into()];
    c.env = vec!["PROBE_VERSION=v1".into()];
    c.stop_grace_period = Some(Duration::from_secs(2));
    c.healthcheck = Some(HealthConfig {
        test: ["CMD", "flotilla", "probe", "check", "/health"].map(String::from).to_vec(),
        interval: Some(Duration::from_millis(300)),
        retries: Some(3),
        start_period: Some(Duration::from_secs(5)),
        ..HealthConfig::default()
    });
    if std::env::var("NOPORTS").is_err() {
        spec.endpoint_spec.ports = vec![PortConfig { target_port: 80, ..PortConfig::default() }];
    }
    spec.update_config.parallelism = 1;
    spec.update_config.failure_action = FailureAction::Rollback;
    spec.update_config.monitor = Duration::from_secs(2);
    spec.rollback_config.parallelism = 1;
    spec.rollback_config.monitor = Duration::from_secs(2);
    spec
}

fn version_of(v: &TaskView) -> &str {
    let env = &v.task.spec.container_spec.env;
    env.iter().find_map(|e| e.strip_prefix("PROBE_VERSION=")).unwrap_or_default()
}

/// Tasks of `version` that run and are meant to.
fn running(t: &ServiceTasks, version: &str) -> Vec<TaskView> {
    t.tasks
        .iter()
        .filter(|v| {
            v.task.status.state == TaskState::Running
                && v.task.desired_state == TaskState::Running
                && version_of(v) == version
        })
        .cloned()
        .collect()
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
                "slot {} {} {} desired {} state {} err {:?} ports {:?}",
                k.slot,
                version_of(v),
                k.id,
                k.desired_state,
                k.status.state,
                k.status.err,
                k.status.ports
            )
        })
        .collect();
    rows.sort();
    rows.push(format!("update status: {:?}", t.service.update_status));
    rows
}

/// Every status each task was seen in (in order, each once), polled from the API.
#[derive(Default)]
struct Seen {
    states: BTreeMap<TaskId, Vec<(TaskState, MonoTime)>>,
}

impl Seen {
    fn record(&mut self, t: &ServiceTasks) {
        for v in &t.tasks {
            let seen = self.states.entry(v.task.id.clone()).or_default();
            let s = &v.task.status;
            if seen.last().is_none_or(|(state, _)| *state != s.state) {
                seen.push((s.state, s.timestamp));
            }
        }
    }

    fn of(&self, id: &TaskId) -> &[(TaskState, MonoTime)] {
        self.states.get(id).map(Vec::as_slice).unwrap_or_default()
    }
}

struct Setup {
    cluster: ProcessCluster,
    agent: AgentProcess,
    c: ApiClient,
    seen: Seen,
}

impl Setup {
    /// Polls the service's tasks until `f` holds (60 s at most), recording every state seen.
    async fn wait(&mut self, what: &str, f: impl Fn(&ServiceTasks) -> bool) -> ServiceTasks {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(t) = self.c.service_tasks(SERVICE).await {
                self.seen.record(&t);
                if f(&t) {
                    return t;
                }
                last = Some(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(self.agent.log_file()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "timed out waiting for {what}: {:#?}\nagent log (tail):\n{}",
            last.map(|t| describe(&t)),
            tail.join("\n")
        );
    }
}

/// GETs `/` of a task on the node port the agent reported for it.
async fn answer(v: &TaskView) -> serde_json::Value {
    let port = v.task.status.ports.first().expect("a running task reports its node port");
    let url = format!("http://127.0.0.1:{}/", port.published_port);
    let http = reconciler_api::http::http_client(Duration::from_secs(5)).unwrap();
    let r = http.get(&url).send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

/// The running tasks of `version` answer with it, each as itself.
async fn assert_answer(tasks: &[TaskView], version: &str) {
    for v in tasks {
        let got = answer(v).await;
        assert_eq!(got["version"], version, "{got}");
        assert_eq!(got["task"], v.task.id.as_str(), "{got}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthcheck_gates_running_and_an_unhealthy_update_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let binary = Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let cluster = ProcessCluster::start(binary, root, 1).await.unwrap();
    let agent = cluster.start_agent(root, "a1", "info,agent=debug").await.unwrap();
    let c = cluster.client(0).unwrap();
    let mut s = Setup { cluster, agent, c, seen: Seen::default() };

    println!("=== create: both replicas are STARTING until healthy, then RUNNING");
    let created = s.c.create_service(&spec()).await.unwrap();
    let t = s.wait("two healthy v1 replicas", |t| running(t, "v1").len() == 2).await;
    let v1 = running(&t, "v1");
    for v in &v1 {
        let seen = s.seen.of(&v.task.id);
        let starting = seen.iter().find(|(st, _)| *st == TaskState::Starting);
        let (_, starting_at) = starting.unwrap_or_else(|| panic!("never seen STARTING: {seen:?}"));
        let ran_at = v.task.status.timestamp;
        let gated = ran_at.saturating_since(*starting_at);
        println!("=== {} STARTING for {gated:?}", v.task.id);
        // During the start period probes come every start interval (Docker's default 5 s):
        // the first one, healthy, ends the wait.
        assert!(gated >= DEFAULT_START_INTERVAL, "RUNNING {gated:?} after STARTING: {seen:?}");
        assert_eq!(v.task.status.message, "started");
        assert_eq!(v.task.status.err, "");
    }
    assert_answer(&v1, "v1").await;

    println!("=== update to a version that never becomes healthy: rolled back");
    let mut bad = spec();
    bad.task_template.container_spec.env =
        vec!["PROBE_FAIL_HEALTH=1".into(), "PROBE_VERSION=v2".into()];
    let info = s.c.inspect_service(created.id.as_str()).await.unwrap().service;
    s.c.update_service(created.id.as_str(), info.version, &bad).await.unwrap();
    let t = s
        .wait("the automatic rollback", |t| {
            update_state(t) == Some(UpdateState::RollbackCompleted) && running(t, "v1").len() == 2
        })
        .await;
    let rows = describe(&t);
    assert_eq!(
        t.service.spec.task_template.container_spec.env,
        spec().task_template.container_spec.env
    );
    // The v2 tasks that started were stopped by their health check and never ran; a
    // replacement the rollback overtook may have been shut down before it started.
    let v2: Vec<&TaskView> = t.tasks.iter().filter(|v| version_of(v) == "v2").collect();
    let unhealthy = v2.iter().filter(|v| v.task.status.state == TaskState::Failed);
    assert!(unhealthy.clone().count() >= 1, "a v2 task failed: {rows:#?}");
    for v in unhealthy {
        assert_eq!(v.task.status.err, "processexec: unhealthy container", "{rows:#?}");
        let seen = s.seen.of(&v.task.id);
        assert!(seen.iter().any(|(st, _)| *st == TaskState::Starting), "{seen:?}");
    }
    for v in &v2 {
        let seen = s.seen.of(&v.task.id);
        assert!(!seen.iter().any(|(st, _)| *st == TaskState::Running), "v2 ran: {seen:?}");
        assert!(v.task.status.state.is_terminal(), "{rows:#?}");
    }
    let status = t.service.update_status.clone().unwrap();
    println!("=== update status: {} ({})", status.state.as_str(), status.message);
    let v1 = running(&t, "v1");
    assert_answer(&v1, "v1").await;
    s.c.remove_service(created.id.as_str()).await.unwrap();
    drop(s.agent);
    drop(s.cluster);
}
