//! The simulated cluster: nodes, agents, workloads, an event queue and the driver loop.

use crate::FakeClock;
use reconciler_orchestrator::orchestrator::{self, Event};
use reconciler_orchestrator::scheduler;
use reconciler_orchestrator::service::{ServiceError, ServiceRecord};
use reconciler_orchestrator::stack::{self, DeploymentState, StackAction, StackDeployment};
use reconciler_orchestrator::view::{ClusterView, StoreChange};
use reconciler_types::{
    MonoTime, Node, NodeId, NodeState, ServiceId, ServiceSpec, Task, TaskId, TaskState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How a task running an image behaves once told to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Workload {
    /// From desired RUNNING to observed RUNNING (a slow start or a health check).
    pub start_after: Duration,
    /// Exit this long after running, with this code (0 = COMPLETE, else FAILED).
    pub exit_after: Option<(Duration, i32)>,
    /// Fail this long after being told to run, never reaching RUNNING.
    pub fail_before_running: Option<Duration>,
    /// From desired SHUTDOWN to observed SHUTDOWN (the stop grace period when SIGTERM is
    /// ignored).
    pub stop_after: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SimEvent {
    Report { task: TaskId, state: TaskState, exit_code: Option<i32> },
    HeartbeatTimeout { node: NodeId },
    Tick,
}

/// How long a silent node takes to be marked DOWN (heartbeat period 5 s × 3).
pub const HEARTBEAT_GRACE: Duration = Duration::from_secs(15);

/// A simulated cluster driven by the pure orchestration core.
#[derive(Debug, Clone)]
pub struct SimCluster {
    /// The store's state.
    pub view: ClusterView,
    /// The clock.
    pub clock: FakeClock,
    /// Workloads by image (unknown images start and stop instantly and never exit).
    pub workloads: BTreeMap<String, Workload>,
    /// A narrative of every change, `t=<secs> <what>`.
    pub log: Vec<String>,
    events: BTreeMap<(MonoTime, u64), SimEvent>,
    seq: u64,
    seen: BTreeMap<TaskId, (TaskState, TaskState, Option<NodeId>)>,
    silent: BTreeSet<NodeId>,
    ticks: BTreeSet<MonoTime>,
    next_version: u64,
    /// Stack deployments being driven (beyond-Swarm waves and failure budget).
    pub deployments: Vec<StackDeployment>,
}

impl Default for SimCluster {
    fn default() -> Self {
        SimCluster::new()
    }
}

fn fmt_time(t: MonoTime) -> String {
    let ms = t.0.as_millis();
    if ms.is_multiple_of(1000) {
        format!("t={}", ms / 1000)
    } else {
        format!("t={}.{:03}", ms / 1000, ms % 1000)
    }
}

/// One change as a narrative line (without the time).
pub fn describe(change: &StoreChange) -> String {
    match change {
        StoreChange::CreateTask(t) => {
            let at = t.node_id.as_ref().map(|n| format!(" on {n}")).unwrap_or_default();
            format!(
                "create {} {} slot {}{at} v{} {}",
                t.id, t.service_id, t.slot, t.spec_version, t.desired_state
            )
        }
        StoreChange::SetDesired { task, state } => format!("desire {task} {state}"),
        StoreChange::Assign { task, node, .. } => format!("assign {task} {node}"),
        StoreChange::SetObserved { task, state, err, .. } if err.is_empty() => {
            format!("mark {task} {state}")
        }
        StoreChange::SetObserved { task, state, err, .. } => format!("mark {task} {state}: {err}"),
        StoreChange::DeleteTask(t) => format!("delete {t}"),
        StoreChange::SetUpdateStatus { service, status: Some(s) } => {
            format!("status {service} {}: {}", s.state, s.message)
        }
        StoreChange::SetUpdateStatus { service, status: None } => format!("status {service} nil"),
        StoreChange::AutoRollback { service, status } => {
            format!("rollback {service} {}: {}", status.state, status.message)
        }
        StoreChange::PutRollout(_) | StoreChange::RemoveRollout(_) => "rollout".to_owned(),
        StoreChange::DelayStart { task, delay } => {
            format!("hold {task} until {}", fmt_time(delay.not_before))
        }
        StoreChange::ClearDelay(t) => format!("release {t}"),
        StoreChange::RecordRestart { service, slot, .. } => {
            format!("restart-recorded {service} {slot}")
        }
    }
}

impl SimCluster {
    /// An empty cluster at t=0.
    pub fn new() -> Self {
        SimCluster {
            view: ClusterView::default(),
            clock: FakeClock::new(),
            workloads: BTreeMap::new(),
            log: Vec::new(),
            events: BTreeMap::new(),
            seq: 0,
            seen: BTreeMap::new(),
            silent: BTreeSet::new(),
            ticks: BTreeSet::new(),
            next_version: 1,
            deployments: Vec::new(),
        }
    }

    /// The current time.
    pub fn now(&self) -> MonoTime {
        self.clock.now()
    }

    /// Adds a READY, active worker named `id` (hostname = id, 4 CPUs, 8 GiB), shaped by `f`.
    pub fn add_node(&mut self, id: &str, f: impl FnOnce(&mut Node)) {
        let mut node = Node { id: NodeId::new(id), ..Node::default() };
        node.description.hostname = id.to_owned();
        node.description.nano_cpus = 4_000_000_000;
        node.description.memory_bytes = 8 << 30;
        node.description.platform.os = "linux".to_owned();
        node.description.platform.architecture = "x86_64".to_owned();
        node.status.state = NodeState::Ready;
        f(&mut node);
        self.view.nodes.insert(node.id.clone(), node);
        self.dispatch(Event::NodeChanged(NodeId::new(id)));
    }

    /// Changes a node (availability, labels, …) as `docker node update` would.
    pub fn update_node(&mut self, id: &str, f: impl FnOnce(&mut Node)) {
        if let Some(n) = self.view.nodes.get_mut(&NodeId::new(id)) {
            f(n);
        }
        self.dispatch(Event::NodeChanged(NodeId::new(id)));
    }

    /// Removes a node (`docker node rm`).
    pub fn remove_node(&mut self, id: &str) {
        self.view.nodes.remove(&NodeId::new(id));
        self.dispatch(Event::NodeRemoved(NodeId::new(id)));
    }

    /// The node's agent stops heartbeating now; the node is marked DOWN after the grace.
    pub fn stop_heartbeats(&mut self, id: &str) {
        self.silent.insert(NodeId::new(id));
        let at = self.now() + HEARTBEAT_GRACE;
        self.push(at, SimEvent::HeartbeatTimeout { node: NodeId::new(id) });
    }

    /// Creates a service.
    pub fn create_service(&mut self, id: &str, spec: ServiceSpec) {
        let version = self.bump_version();
        let id = ServiceId::new(id);
        self.view.services.insert(id.clone(), ServiceRecord::new(id.clone(), spec, version));
        self.dispatch(Event::ServiceChanged(id));
    }

    /// `UpdateService` with the spec changed by `f`.
    ///
    /// # Errors
    /// What the service refuses (a mode change).
    pub fn update_service(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut ServiceSpec),
    ) -> Result<(), ServiceError> {
        let version = self.bump_version();
        let sid = ServiceId::new(id);
        let Some(record) = self.view.services.get_mut(&sid) else { return Ok(()) };
        let mut spec = record.spec.clone();
        f(&mut spec);
        record.update(spec, version)?;
        self.log.push(format!("{} update {id} v{version}", fmt_time(self.now())));
        self.dispatch(Event::ServiceChanged(sid));
        Ok(())
    }

    /// `docker service rollback`.
    ///
    /// # Errors
    /// No previous spec.
    pub fn rollback_service(&mut self, id: &str) -> Result<(), ServiceError> {
        let sid = ServiceId::new(id);
        let now = self.now();
        if let Some(record) = self.view.services.get_mut(&sid) {
            record.rollback(now)?;
        }
        self.dispatch(Event::ServiceChanged(sid));
        Ok(())
    }

    /// Deletes a service.
    pub fn remove_service(&mut self, id: &str) {
        let sid = ServiceId::new(id);
        self.view.services.remove(&sid);
        self.dispatch(Event::ServiceRemoved(sid));
    }

    /// Starts a stack deployment; its waves are driven after every event.
    pub fn deploy_stack(&mut self, deployment: StackDeployment) {
        self.deployments.push(deployment);
        self.drive_stacks();
    }

    /// Runs the stack deployments' steps until none has anything more to do now.
    fn drive_stacks(&mut self) {
        for i in 0..self.deployments.len() {
            loop {
                let actions = stack::step(&self.view, &self.deployments[i], self.now());
                let progressed = actions.iter().any(|a| !matches!(a, StackAction::Wait { .. }));
                for action in actions {
                    self.stack_action(i, action);
                }
                if !progressed || self.deployments[i].state != DeploymentState::Rolling {
                    break;
                }
            }
        }
    }

    fn stack_action(&mut self, i: usize, action: StackAction) {
        let now = self.now();
        match action {
            StackAction::Apply { service, spec } => {
                let version = self.bump_version();
                if let Some(record) = self.view.services.get_mut(&service) {
                    if record.update(*spec, version).is_err() {
                        return;
                    }
                    self.deployments[i].applied.insert(service.clone(), version);
                    self.log.push(format!("{} stack apply {service} v{version}", fmt_time(now)));
                    self.dispatch(Event::ServiceChanged(service));
                }
            }
            StackAction::Change(change) => {
                self.commit(vec![change]);
                self.settle();
            }
            StackAction::Wait { .. } => {}
            StackAction::SetState(state) => {
                self.log.push(format!(
                    "{} stack {} {state:?}",
                    fmt_time(now),
                    self.deployments[i].stack
                ));
                self.deployments[i].state = state;
            }
        }
    }

    /// A new leader takes over: its orchestrators reconcile everything and resume rollouts.
    pub fn elect_new_leader(&mut self) {
        self.log.push(format!("{} leader elected", fmt_time(self.now())));
        self.dispatch(Event::LeaderElected);
    }

    /// Injects an agent report at the current time (a crash, an exit, a late start).
    pub fn report(&mut self, id: &TaskId, state: TaskState) {
        let exit_code = match state {
            TaskState::Complete => Some(0),
            TaskState::Failed => Some(1),
            _ => None,
        };
        let now = self.now();
        self.push(now, SimEvent::Report { task: id.clone(), state, exit_code });
    }

    /// No leader until `t`: time passes, queued agent reports are delivered to the store
    /// but nothing is orchestrated; heartbeat timeouts wait for the next leader.
    pub fn leaderless_until(&mut self, t: MonoTime) {
        let mut postponed = Vec::new();
        while let Some((&(at, seq), _)) = self.events.first_key_value() {
            if at > t {
                break;
            }
            let Some(event) = self.events.remove(&(at, seq)) else { break };
            self.clock.set(at);
            match event {
                SimEvent::Report { task, state, exit_code } => {
                    self.record_report(&task, state, exit_code);
                }
                SimEvent::HeartbeatTimeout { .. } => postponed.push(event),
                SimEvent::Tick => {}
            }
        }
        self.ticks.clear();
        self.clock.set(t);
        for event in postponed {
            self.push(t, event);
        }
    }

    fn bump_version(&mut self) -> u64 {
        let v = self.next_version;
        self.next_version += 1;
        v
    }

    fn push(&mut self, at: MonoTime, event: SimEvent) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    /// Runs every event up to and including `t`.
    pub fn run_until(&mut self, t: MonoTime) {
        while let Some((&(at, seq), _)) = self.events.first_key_value() {
            if at > t {
                break;
            }
            let Some(event) = self.events.remove(&(at, seq)) else { break };
            self.clock.set(at);
            match event {
                SimEvent::Report { task, state, exit_code } => {
                    if self.record_report(&task, state, exit_code) {
                        self.dispatch(Event::TaskObserved(task));
                    }
                }
                SimEvent::HeartbeatTimeout { node } => {
                    if let Some(n) = self.view.nodes.get_mut(&node) {
                        n.status.state = NodeState::Down;
                        n.status.message = "heartbeat failure".to_owned();
                        self.log.push(format!("{} node {node} down", fmt_time(at)));
                        self.dispatch(Event::NodeChanged(node));
                    }
                }
                SimEvent::Tick => {
                    self.ticks.remove(&at);
                    self.dispatch(Event::Tick);
                }
            }
            if !self.deployments.is_empty() {
                self.drive_stacks();
            }
        }
        self.clock.set(t);
    }

    /// Delivers an agent report to the store; answers whether it changed anything.
    fn record_report(&mut self, id: &TaskId, state: TaskState, exit_code: Option<i32>) -> bool {
        let now = self.now();
        let Some(task) = self.view.tasks.get_mut(id) else { return false };
        let node_ok = task.node_id.as_ref().is_some_and(|n| !self.silent.contains(n));
        let stale = state == TaskState::Running && task.desired_state > TaskState::Running;
        if !node_ok || state <= task.status.state || stale {
            return false;
        }
        task.status.state = state;
        task.status.timestamp = now;
        task.status.exit_code = exit_code;
        self.log.push(format!("{} observed {id} {state}", fmt_time(now)));
        if state == TaskState::Running {
            let image = task.spec.container_spec.image.clone();
            if let Some((after, code)) = self.workloads.get(&image).and_then(|w| w.exit_after) {
                let end = if code == 0 { TaskState::Complete } else { TaskState::Failed };
                self.push(
                    now + after,
                    SimEvent::Report { task: id.clone(), state: end, exit_code: Some(code) },
                );
            }
        }
        true
    }

    /// Feeds one store event to the orchestrators and settles the consequences.
    fn dispatch(&mut self, event: Event) {
        let changes = orchestrator::handle(&self.view, &event, self.now());
        self.commit(changes);
        self.settle();
    }

    fn commit(&mut self, changes: Vec<StoreChange>) {
        let now = self.now();
        for c in &changes {
            self.view.apply(c);
            if !matches!(c, StoreChange::PutRollout(_)) {
                self.log.push(format!("{} {}", fmt_time(now), describe(c)));
            }
        }
        for c in &changes {
            let more = orchestrator::after_change(&self.view, c, now);
            if !more.is_empty() {
                self.commit(more);
            }
        }
    }

    /// Schedules, lets agents react, and books the next orchestrator tick.
    fn settle(&mut self) {
        let pass = scheduler::schedule(&self.view, self.now());
        if !pass.changes.is_empty() {
            self.commit(pass.changes);
        }
        self.agents_react();
        if let Some(at) = orchestrator::next_wake(&self.view, self.now())
            && self.ticks.insert(at)
        {
            self.push(at, SimEvent::Tick);
        }
    }

    /// Each agent reacts to what changed in its tasks (swarmkit `exec.Do`).
    fn agents_react(&mut self) {
        let now = self.now();
        let mut reports = Vec::new();
        for (id, t) in &self.view.tasks {
            let key = (t.desired_state, t.status.state, t.node_id.clone());
            if self.seen.get(id) == Some(&key) {
                continue;
            }
            self.seen.insert(id.clone(), key);
            let Some(node) = &t.node_id else { continue };
            let alive = !self.silent.contains(node)
                && self.view.nodes.get(node).is_some_and(|n| n.status.state != NodeState::Down);
            if alive {
                reports.extend(self.react(t, now));
            }
        }
        self.seen.retain(|id, _| self.view.tasks.contains_key(id));
        for (at, event) in reports {
            self.push(at, event);
        }
    }

    fn react(&self, t: &Task, now: MonoTime) -> Vec<(MonoTime, SimEvent)> {
        let w = self.workloads.get(&t.spec.container_spec.image).cloned().unwrap_or_default();
        let report = |at: MonoTime, state: TaskState, code: Option<i32>| {
            (at, SimEvent::Report { task: t.id.clone(), state, exit_code: code })
        };
        let observed = t.status.state;
        if observed.is_terminal() || observed < TaskState::Assigned {
            return Vec::new();
        }
        if t.desired_state >= TaskState::Shutdown {
            let at = if observed < TaskState::Starting { now } else { now + w.stop_after };
            return vec![report(at, TaskState::Shutdown, None)];
        }
        if t.desired_state == TaskState::Ready && observed < TaskState::Ready {
            return vec![report(now, TaskState::Ready, None)];
        }
        if t.desired_state == TaskState::Running && observed < TaskState::Starting {
            if let Some(d) = w.fail_before_running {
                return vec![report(now + d, TaskState::Failed, Some(1))];
            }
            return vec![report(now + w.start_after, TaskState::Running, None)];
        }
        Vec::new()
    }

    /// Narrative lines containing `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        self.log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// The tasks of a service, in id order.
    pub fn tasks_of(&self, service: &str) -> Vec<&Task> {
        self.view.tasks.values().filter(|t| t.service_id.as_str() == service).collect()
    }

    /// Tasks of a service observed RUNNING (and still wanted), as `(slot, node, spec version)`.
    pub fn running(&self, service: &str) -> Vec<(u64, String, u64)> {
        self.tasks_of(service)
            .into_iter()
            .filter(|t| {
                t.status.state == TaskState::Running && t.desired_state <= TaskState::Running
            })
            .map(|t| {
                (
                    t.slot,
                    t.node_id.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    t.spec_version,
                )
            })
            .collect()
    }

    /// The service's update status as `state: message`, or `nil`.
    pub fn status_line(&self, service: &str) -> String {
        match self
            .view
            .services
            .get(&ServiceId::new(service))
            .and_then(|s| s.update_status.as_ref())
        {
            Some(s) => format!("{}: {}", s.state, s.message),
            None => "nil".to_owned(),
        }
    }
}
