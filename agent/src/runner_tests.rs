//! The task runner against a scripted runtime, on tokio's paused clock: health checks gate
//! RUNNING (S53), an unhealthy task is stopped and FAILED, a shutdown interrupts a wait, a
//! temporary error is retried, a removed task is stopped and cleaned up.

use super::*;
use crate::runtime::{LogQuery, ProbeResult, Progress, RuntimeError};
use agent_core::TaskIdentity;
use agent_core::logs::{LogLimits, LogRecord};
use reconciler_api::dispatcher::TaskAssignment;
use reconciler_types::{HealthConfig, MonoTime, NodeId, PortConfig, Task, TaskId};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::mpsc;

#[derive(Default)]
struct Script {
    probes: VecDeque<bool>,
    prepare_errors: VecDeque<RuntimeError>,
    calls: Vec<String>,
}

struct Fake {
    script: Mutex<Script>,
    exit: watch::Sender<Option<i32>>,
}

impl Fake {
    fn new() -> Fake {
        Fake { script: Mutex::default(), exit: watch::channel(None).0 }
    }
    fn call(&self, c: &str) {
        self.script.lock().unwrap().calls.push(c.to_owned());
    }
    fn calls(&self) -> Vec<String> {
        self.script.lock().unwrap().calls.clone()
    }
}

impl Runtime for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn limits_enforced(&self) -> String {
        String::new()
    }
    async fn prepare(&self, _: &TaskContext, _: &Progress) -> Result<(), RuntimeError> {
        self.call("prepare");
        match self.script.lock().unwrap().prepare_errors.pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    async fn start(&self, _: &TaskContext) -> Result<Vec<PortConfig>, RuntimeError> {
        self.call("start");
        Ok(vec![PortConfig { target_port: 80, published_port: 30080, ..PortConfig::default() }])
    }
    async fn wait(&self, _: &TaskContext) -> Result<i32, RuntimeError> {
        let mut rx = self.exit.subscribe();
        let code = rx.wait_for(Option::is_some).await.map_err(|_| RuntimeError::fatal("gone"))?;
        Ok(code.unwrap_or_default())
    }
    async fn stop(&self, _: &TaskContext) -> Result<(), RuntimeError> {
        self.call("stop");
        self.exit.send_replace(Some(143));
        Ok(())
    }
    async fn remove(&self, _: &TaskContext) -> Result<(), RuntimeError> {
        self.call("remove");
        Ok(())
    }
    async fn adopt(&self, _: &TaskContext) -> Result<Found, RuntimeError> {
        Ok(Found::Absent)
    }
    async fn list(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(Vec::new())
    }
    async fn remove_by_id(&self, _: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn probe(
        &self,
        _: &TaskContext,
        _: &agent_core::HealthTest,
        _: Duration,
    ) -> Result<ProbeResult, RuntimeError> {
        self.call("probe");
        let passed = self.script.lock().unwrap().probes.pop_front().unwrap_or(true);
        Ok(ProbeResult { passed, output: if passed { String::new() } else { "503".into() } })
    }
    async fn logs(
        &self,
        _: &TaskContext,
        _: LogQuery,
        _: mpsc::Sender<LogRecord>,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }
}

struct Setup {
    fake: Arc<Fake>,
    shared: Arc<Shared<Fake>>,
    control: watch::Sender<Control>,
    _dir: tempfile::TempDir,
}

fn health(interval: u64, retries: u64) -> HealthConfig {
    HealthConfig {
        test: vec!["CMD".into(), "check".into()],
        interval: Some(Duration::from_secs(interval)),
        retries: Some(retries),
        ..HealthConfig::default()
    }
}

fn setup(healthcheck: Option<HealthConfig>, fake: Fake) -> (Setup, Runner<Fake>) {
    let dir = tempfile::tempdir().unwrap();
    let fake = Arc::new(fake);
    let shared = Arc::new(Shared {
        rt: fake.clone(),
        outbox: Arc::new(Outbox::default()),
        store: TaskStore::open(dir.path().join("tasks")).unwrap(),
        clock: AgentClock::starting_at(MonoTime::ZERO),
    });
    let mut task = Task { id: TaskId::new("t1"), slot: 1, ..Task::default() };
    task.spec.container_spec.healthcheck = healthcheck;
    task.status.state = TaskState::Assigned;
    task.desired_state = TaskState::Running;
    let ctx = TaskContext {
        who: TaskIdentity {
            task_id: task.id.clone(),
            service_name: "web".into(),
            service_id: "s".into(),
            slot: 1,
            node_id: NodeId::new("n"),
        },
        spec: task.spec.clone(),
        service_labels: Default::default(),
        ports: Vec::new(),
        files: Vec::new(),
        log_limits: LogLimits::default(),
    };
    let status = task.status.clone();
    let assignment = TaskAssignment {
        task,
        service_name: "web".into(),
        service_labels: Default::default(),
        endpoint: Default::default(),
    };
    let (control, rx) = watch::channel(Control { desired: TaskState::Running, removed: false });
    let runner = Runner::new(shared.clone(), ctx, Record { assignment, status }, rx, None);
    (Setup { fake, shared, control, _dir: dir }, runner)
}

impl Setup {
    fn status(&self) -> TaskStatus {
        self.shared.outbox.batch().pop().map(|u| u.status).unwrap_or_default()
    }
}

#[tokio::test(start_paused = true)]
async fn s53_a_task_with_a_health_check_is_starting_until_its_first_healthy_probe() {
    let (s, runner) = setup(Some(health(10, 1)), Fake::new());
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(s.status().state, TaskState::Starting, "not running before the first probe");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let st = s.status();
    assert_eq!(st.state, TaskState::Running);
    assert_eq!(st.timestamp, MonoTime::from_secs(10), "running at the first healthy probe");
    assert_eq!(st.ports[0].published_port, 30080, "the ports the runtime gave are reported");
}

#[tokio::test(start_paused = true)]
async fn s53_an_unhealthy_probe_stops_the_task_and_fails_it() {
    let fake = Fake::new();
    fake.script.lock().unwrap().probes = VecDeque::from([false]);
    let (s, runner) = setup(Some(health(10, 1)), fake);
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(11)).await;
    let st = s.status();
    assert_eq!(st.state, TaskState::Failed);
    assert_eq!(st.err, "fakeexec: unhealthy container");
    assert_eq!((st.timestamp, st.exit_code), (MonoTime::from_secs(10), Some(143)));
    assert_eq!(s.fake.calls(), ["prepare", "start", "probe", "stop"]);
}

#[tokio::test(start_paused = true)]
async fn a_task_exiting_before_its_first_probe_fails_with_its_code_or_completes() {
    for (code, state, err) in
        [(1, TaskState::Failed, "task: non-zero exit (1)"), (0, TaskState::Complete, "")]
    {
        let (s, runner) = setup(Some(health(10, 1)), Fake::new());
        tokio::spawn(runner.run());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(s.status().state, TaskState::Starting);
        s.fake.exit.send_replace(Some(code));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = s.status();
        assert_eq!((st.state, st.err.as_str(), st.exit_code), (state, err, Some(code)));
        assert_eq!(st.timestamp, MonoTime::from_secs(3));
        assert_eq!(s.fake.calls(), ["prepare", "start"], "no probe ran, nothing to stop");
    }
}

#[tokio::test(start_paused = true)]
async fn a_running_task_failing_its_checks_later_is_stopped_after_retries_failures() {
    let fake = Fake::new();
    fake.script.lock().unwrap().probes = VecDeque::from([true, true, false, false]);
    let (s, runner) = setup(Some(health(10, 2)), fake);
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(s.status().state, TaskState::Running, "one failure of two allowed");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let st = s.status();
    assert_eq!((st.state, st.timestamp), (TaskState::Failed, MonoTime::from_secs(40)));
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_interrupts_the_wait_and_stops_the_task() {
    let (s, runner) = setup(None, Fake::new());
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.status().state, TaskState::Running);
    s.control.send_modify(|c| c.desired = TaskState::Shutdown);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.status().state, TaskState::Shutdown);
    assert_eq!(s.fake.calls(), ["prepare", "start", "stop"]);
}

#[tokio::test(start_paused = true)]
async fn a_temporary_error_is_shown_and_retried_with_backoff() {
    let fake = Fake::new();
    fake.script.lock().unwrap().prepare_errors = VecDeque::from([
        RuntimeError::temporary("engine busy"),
        RuntimeError::temporary("engine busy"),
    ]);
    let (s, runner) = setup(None, fake);
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = s.status();
    assert_eq!((st.state, st.err.as_str()), (TaskState::Preparing, "engine busy"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.status().state, TaskState::Running, "retried after 1 s, then 2 s");
    assert_eq!(s.fake.calls()[..3], ["prepare", "prepare", "prepare"]);
}

#[tokio::test(start_paused = true)]
async fn a_removed_task_is_removed_by_the_runtime_and_forgotten() {
    let (s, runner) = setup(None, Fake::new());
    let done = tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(s.shared.store.load_all().len() == 1);
    s.control.send_modify(|c| c.removed = true);
    done.await.unwrap();
    assert_eq!(s.fake.calls(), ["prepare", "start", "remove"]);
    assert!(s.shared.store.load_all().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_running_task_unassigned_by_the_worker_is_removed_after_it_let_go_of_the_control() {
    // The worker marks the task removed and drops its end at once (Worker::remove).
    let (s, runner) = setup(None, Fake::new());
    let Setup { fake, shared, control, _dir } = s;
    let done = tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    control.send_modify(|c| c.removed = true);
    drop(control);
    done.await.unwrap();
    assert_eq!(fake.calls(), ["prepare", "start", "remove"]);
    assert!(shared.store.load_all().is_empty(), "the record is forgotten");
}

#[tokio::test(start_paused = true)]
async fn a_detached_runner_leaves_its_running_task_alone() {
    let (s, runner) = setup(None, Fake::new());
    let Setup { fake, shared, control, _dir } = s;
    let done = tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(control);
    done.await.unwrap();
    assert_eq!(fake.calls(), ["prepare", "start"], "neither stopped nor removed");
    assert_eq!(shared.store.load_all().len(), 1, "kept for the next agent to adopt");
}

#[tokio::test(start_paused = true)]
async fn an_unresolvable_task_is_rejected_with_the_reason() {
    let (s, runner) = setup(None, Fake::new());
    let Runner { shared, ctx, record, control, .. } = runner;
    let runner = Runner::new(shared, ctx, record, control, Some("secret pw was not sent".into()));
    tokio::spawn(runner.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let st = s.status();
    assert_eq!((st.state, st.err.as_str()), (TaskState::Rejected, "secret pw was not sent"));
    assert!(s.fake.calls().is_empty());
}
