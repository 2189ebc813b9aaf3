//! Fake agents: nodes that speak the real dispatcher protocol over HTTP (join with the worker
//! token, session, heartbeats, the assignments long poll, batched status reports) but run
//! nothing. Each task's fate comes from a [`Behaviour`], as the simulator's workloads do: how
//! long it takes to start, and whether (and when, with which exit code) it ends. Tests and the
//! cluster benchmark share them.

use agent::node::{JoinArgs, join_or_load};
use reconciler_api::DispatcherClient;
use reconciler_api::dispatcher::{
    Assignment, AssignmentChange, AssignmentRef, Assignments, AssignmentsKind, AssignmentsQuery,
    RegisterRequest, StatusReport, TaskAssignment, TaskStatusUpdate,
};
use reconciler_types::{
    EngineDescription, MonoTime, NodeDescription, NodeId, Platform, TaskId, TaskState, TaskStatus,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What happens to one task on a fake node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// From assignment to RUNNING.
    pub start_after: Duration,
    /// Ends this long after RUNNING, with this exit code (0: complete, else failed).
    pub exit_after: Option<(Duration, i32)>,
}

impl Default for Run {
    fn default() -> Self {
        Run { start_after: Duration::ZERO, exit_after: None }
    }
}

/// Decides each task's [`Run`] from its assignment.
pub type Behaviour = Arc<dyn Fn(&TaskAssignment) -> Run + Send + Sync>;

/// Every task starts at once and runs until told to stop.
pub fn healthy() -> Behaviour {
    Arc::new(|_| Run::default())
}

/// Tasks whose image contains `marker` fail `after` they start (exit 1); others run.
pub fn failing_images(marker: &str, after: Duration) -> Behaviour {
    let marker = marker.to_owned();
    Arc::new(move |t| {
        if t.task.spec.container_spec.image.contains(&marker) {
            Run { start_after: Duration::ZERO, exit_after: Some((after, 1)) }
        } else {
            Run::default()
        }
    })
}

/// What a fake node has been sent, for assertions.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Every task id ever assigned.
    pub tasks: BTreeSet<TaskId>,
    /// Every secret name ever received.
    pub secrets: BTreeSet<String>,
    /// Every config name ever received.
    pub configs: BTreeSet<String>,
    /// Sessions opened.
    pub sessions: u64,
}

/// How a fake node describes itself.
#[derive(Debug, Clone)]
pub struct FakeNode {
    /// Its hostname.
    pub hostname: String,
    /// CPUs, in units of 1e-9.
    pub nano_cpus: i64,
    /// Memory, in bytes.
    pub memory_bytes: i64,
    /// Engine labels.
    pub labels: BTreeMap<String, String>,
}

impl FakeNode {
    /// A node with 4 CPUs and 8 GiB.
    pub fn named(hostname: &str) -> FakeNode {
        FakeNode {
            hostname: hostname.to_owned(),
            nano_cpus: 4_000_000_000,
            memory_bytes: 8 << 30,
            labels: BTreeMap::new(),
        }
    }

    fn description(&self) -> NodeDescription {
        NodeDescription {
            hostname: self.hostname.clone(),
            platform: Platform { os: "linux".into(), architecture: "x86_64".into() },
            nano_cpus: self.nano_cpus,
            memory_bytes: self.memory_bytes,
            generic_resources: Vec::new(),
            engine: EngineDescription { version: "fake".into(), labels: self.labels.clone() },
        }
    }
}

/// Why a fake agent could not start.
#[derive(Debug, thiserror::Error)]
#[error("fake agent {hostname}: {message}")]
pub struct FakeAgentError {
    hostname: String,
    message: String,
}

struct Shared {
    seen: Mutex<Seen>,
    heartbeating: AtomicBool,
    stopped: AtomicBool,
    /// The current session: reports go out under it.
    session: Mutex<String>,
    /// The client of the manager it talks to now.
    client: Mutex<DispatcherClient>,
}

impl Shared {
    fn client(&self) -> Option<DispatcherClient> {
        self.client.lock().ok().map(|c| c.clone())
    }
}

/// A running fake node. Dropping it stops it (it falls silent, as a killed agent would).
pub struct FakeAgent {
    /// The node id the cluster gave it.
    pub node_id: NodeId,
    /// Its credential (`FLTNODE-1-...`).
    pub credential: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeAgent {
    /// Joins the cluster at `manager` with the worker `token` (plain HTTP when `insecure`,
    /// otherwise mutual TLS pinned by the token), keeping its identity in `dir`, and starts
    /// serving its tasks with `behaviour`.
    ///
    /// # Errors
    /// The join fails.
    pub async fn start(
        manager: &str,
        token: &str,
        insecure: bool,
        dir: &Path,
        node: FakeNode,
        behaviour: Behaviour,
    ) -> Result<FakeAgent, FakeAgentError> {
        let args = JoinArgs {
            addr: Some(manager.to_owned()),
            token: Some(token.to_owned()),
            insecure,
            hostname: node.hostname.clone(),
            advertise: "127.0.0.1:0".into(),
        };
        let err = |message: String| FakeAgentError { hostname: node.hostname.clone(), message };
        // A cluster that has just formed may move its leadership under the join: retry.
        let mut attempts = 0;
        let joined = loop {
            match join_or_load(dir, &args).await {
                Ok(j) => break j,
                Err(_) if attempts < 50 => attempts += 1,
                Err(e) => return Err(err(e.to_string())),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let tls = joined.tls.is_some();
        let client =
            DispatcherClient::new(&url(manager, tls), &joined.node.credential, joined.http);
        let shared = Arc::new(Shared {
            seen: Mutex::new(Seen::default()),
            heartbeating: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            session: Mutex::new(String::new()),
            client: Mutex::new(client),
        });
        let managers = vec![url(manager, tls)];
        let session = Session { managers, tls, node, behaviour, shared: shared.clone() };
        let task = tokio::spawn(session.run());
        Ok(FakeAgent {
            node_id: joined.node.node_id,
            credential: joined.node.credential,
            shared,
            task,
        })
    }

    /// What it has been sent so far.
    pub fn seen(&self) -> Seen {
        self.shared.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// How many tasks it has been sent so far (without copying what it saw).
    pub fn tasks_seen(&self) -> usize {
        self.shared.seen.lock().map(|s| s.tasks.len()).unwrap_or_default()
    }

    /// Stops (or resumes) its heartbeats; it keeps polling, as a node whose heartbeats are lost.
    pub fn set_heartbeating(&self, on: bool) {
        self.shared.heartbeating.store(on, Ordering::Relaxed);
    }

    /// Stops it: no more calls of any kind.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.task.abort();
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One node's connection to the dispatcher, re-registering whenever its session is lost.
struct Session {
    /// The managers to try (URLs), the one in use first.
    managers: Vec<String>,
    /// Whether the cluster speaks TLS.
    tls: bool,
    node: FakeNode,
    behaviour: Behaviour,
    shared: Arc<Shared>,
}

/// The node's task table: what runs, and the last state reported for each task.
#[derive(Default)]
struct Tasks {
    states: BTreeMap<TaskId, TaskState>,
    timers: BTreeMap<TaskId, JoinHandle<()>>,
}

impl Session {
    async fn run(mut self) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = Tasks::default();
        let mut reporter: Option<JoinHandle<()>> = None;
        let mut rx = Some(rx);
        loop {
            if self.shared.stopped.load(Ordering::Relaxed) {
                return;
            }
            let req = RegisterRequest {
                description: self.node.description(),
                addr: "127.0.0.1:0".into(),
                runtimes: vec!["fake".into()],
            };
            let Some(client) = self.shared.client() else { return };
            let Ok(session) = client.register(&req).await else {
                self.next_manager();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if !session.managers.is_empty() {
                let current = client.manager().to_owned();
                self.managers = session.managers.iter().map(|m| url(m, self.tls)).collect();
                self.managers.retain(|m| *m != current);
                self.managers.insert(0, current);
            }
            if let Ok(mut seen) = self.shared.seen.lock() {
                seen.sessions += 1;
            }
            let id = session.session.clone();
            if let Ok(mut current) = self.shared.session.lock() {
                current.clone_from(&id);
            }
            let heartbeat = tokio::spawn(heartbeats(
                client.clone(),
                id.clone(),
                session.heartbeat_period_ms,
                self.shared.clone(),
            ));
            if let Some(rx) = rx.take() {
                let shared = self.shared.clone();
                reporter = Some(tokio::spawn(report_loop(rx, shared)));
            }
            self.poll(&client, &id, &mut tasks, &tx).await;
            heartbeat.abort();
            if reporter.as_ref().is_some_and(JoinHandle::is_finished) {
                return;
            }
        }
    }

    /// Follows assignments until the session is lost.
    /// Moves to the next manager in the list (its old one stopped answering).
    fn next_manager(&mut self) {
        if self.managers.len() < 2 {
            return;
        }
        self.managers.rotate_left(1);
        if let Ok(mut c) = self.shared.client.lock() {
            c.use_manager(&self.managers[0]);
        }
    }

    async fn poll(
        &self,
        client: &DispatcherClient,
        session: &str,
        tasks: &mut Tasks,
        tx: &Reports,
    ) {
        let mut since = 0;
        loop {
            let query = AssignmentsQuery { session: session.to_owned(), since, wait_ms: 5_000 };
            let Ok(a) = client.assignments(&query).await else { return };
            if a.kind == AssignmentsKind::Incremental && a.applies_to != since {
                since = 0;
                continue;
            }
            since = a.generation;
            self.apply(a, tasks, tx);
        }
    }

    fn apply(&self, a: Assignments, tasks: &mut Tasks, tx: &Reports) {
        let mut held: BTreeSet<TaskId> = BTreeSet::new();
        for change in a.changes {
            match change {
                AssignmentChange::Update { assignment } => match assignment {
                    Assignment::Task(t) => {
                        held.insert(t.task.id.clone());
                        self.task(&t, tasks, tx);
                    }
                    Assignment::Secret(f) => self.note(|s| s.secrets.insert(f.name.clone())),
                    Assignment::Config(f) => self.note(|s| s.configs.insert(f.name.clone())),
                },
                AssignmentChange::Remove { item: AssignmentRef::Task { id } } => {
                    if let Some(t) = tasks.timers.remove(&id) {
                        t.abort();
                    }
                    tasks.states.remove(&id);
                }
                AssignmentChange::Remove { .. } => {}
            }
        }
        if a.kind == AssignmentsKind::Complete {
            let gone: Vec<TaskId> =
                tasks.states.keys().filter(|id| !held.contains(*id)).cloned().collect();
            for id in gone {
                tasks.states.remove(&id);
                if let Some(t) = tasks.timers.remove(&id) {
                    t.abort();
                }
            }
        }
    }

    fn note(&self, f: impl FnOnce(&mut Seen) -> bool) {
        if let Ok(mut seen) = self.shared.seen.lock() {
            f(&mut seen);
        }
    }

    /// Starts a new task's run, or stops a running one whose desired state says so.
    fn task(&self, t: &TaskAssignment, tasks: &mut Tasks, tx: &Reports) {
        let id = t.task.id.clone();
        self.note(|s| s.tasks.insert(id.clone()));
        let known = tasks.states.get(&id).copied();
        let stop = t.task.desired_state > TaskState::Running;
        match known {
            // Never started here, and no longer wanted: stopped before it ran (as an agent
            // stops a task it holds only as ASSIGNED).
            None if stop && t.task.status.state < TaskState::Complete => {
                tasks.states.insert(id.clone(), TaskState::Shutdown);
                let _ = tx.send(update(id, TaskState::Shutdown, "shutdown", None));
            }
            None if stop || t.task.status.state > TaskState::Running => {}
            // Held at READY (a stop-first update's replacement waiting for the old task):
            // an agent starts it only once its desired state is RUNNING.
            None if t.task.desired_state < TaskState::Running => {}
            None => {
                tasks.states.insert(id.clone(), TaskState::Running);
                let run = (self.behaviour)(t);
                let timer = tokio::spawn(lifecycle(id.clone(), run, tx.clone()));
                tasks.timers.insert(id, timer);
            }
            Some(state) if stop && state <= TaskState::Running => {
                if let Some(timer) = tasks.timers.remove(&id) {
                    timer.abort();
                }
                tasks.states.insert(id.clone(), TaskState::Shutdown);
                let _ = tx.send(update(id, TaskState::Shutdown, "shutdown", None));
            }
            Some(_) => {}
        }
    }
}

/// A manager's URL from its address.
fn url(addr: &str, tls: bool) -> String {
    match (addr.contains("://"), tls) {
        (true, _) => addr.to_owned(),
        (false, true) => format!("https://{addr}"),
        (false, false) => format!("http://{addr}"),
    }
}

type Reports = mpsc::UnboundedSender<TaskStatusUpdate>;

fn update(id: TaskId, state: TaskState, message: &str, exit_code: Option<i32>) -> TaskStatusUpdate {
    let err = match exit_code {
        Some(code) if code != 0 => format!("task: non-zero exit ({code})"),
        _ => String::new(),
    };
    let status = TaskStatus {
        state,
        timestamp: now(),
        message: message.to_owned(),
        err,
        exit_code,
        ports: Vec::new(),
    };
    TaskStatusUpdate { task_id: id, status }
}

fn now() -> MonoTime {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    MonoTime(since.unwrap_or_default())
}

/// A task's life on the fake node: starting, running, and perhaps its end.
async fn lifecycle(id: TaskId, run: Run, tx: Reports) {
    let _ = tx.send(update(id.clone(), TaskState::Starting, "starting", None));
    tokio::time::sleep(run.start_after).await;
    let _ = tx.send(update(id.clone(), TaskState::Running, "started", None));
    if let Some((after, code)) = run.exit_after {
        tokio::time::sleep(after).await;
        let state = if code == 0 { TaskState::Complete } else { TaskState::Failed };
        let _ = tx.send(update(id, state, "finished", Some(code)));
    }
}

/// Sends queued status updates in batches (everything queued at the time of a send).
async fn report_loop(mut rx: mpsc::UnboundedReceiver<TaskStatusUpdate>, shared: Arc<Shared>) {
    while let Some(first) = rx.recv().await {
        let mut updates = vec![first];
        while let Ok(more) = rx.try_recv() {
            updates.push(more);
        }
        // Retried (under the newest session) until the dispatcher takes them.
        loop {
            let session = shared.session.lock().map(|s| s.clone()).unwrap_or_default();
            let report = StatusReport { session, updates: updates.clone() };
            let Some(client) = shared.client() else { return };
            if client.report(&report).await.is_ok() || shared.stopped.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn heartbeats(client: DispatcherClient, session: String, period_ms: u64, s: Arc<Shared>) {
    let mut period = Duration::from_millis(period_ms.max(10));
    // A task of its own: aborting the session's task does not end it, so it checks `stopped`.
    while !s.stopped.load(Ordering::Relaxed) {
        if s.heartbeating.load(Ordering::Relaxed) {
            match client.heartbeat(&session).await {
                Ok(ack) => period = Duration::from_millis(ack.period_ms.max(10)),
                Err(_) => return,
            }
        }
        tokio::time::sleep(period).await;
    }
}
