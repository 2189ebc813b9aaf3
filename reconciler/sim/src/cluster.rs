//! The simulated cluster: the replicated state, the driver that leads it, simulated nodes and
//! agents, an event queue and the operator's commands. Every change, whoever makes it, is a
//! [`StoreCommand`] applied by [`ClusterState::apply`] at the next log index, exactly as the
//! Raft state machine applies it; the driver observes each one and answers with its batches.

use crate::FakeClock;
use crate::agents::{self, Report, Workload};
use crate::narrative::{describe, fmt_time};
use reconciler_orchestrator::driver::Driver;
use reconciler_orchestrator::stack::{self, DeploymentState, StackAction, StackDeployment};
use reconciler_orchestrator::state::{
    ClusterSettings, ClusterState, Expect, Refusal, ServiceRecord, StoreCommand,
};
use reconciler_types::{
    MonoTime, Node, NodeDescription, NodeId, NodeState, NodeStatus, ServiceId, ServiceSpec, Task,
    TaskId, TaskState, TaskStatus,
};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
enum SimEvent {
    Report(Report),
    HeartbeatTimeout { node: NodeId },
    Register { node: NodeId, description: NodeDescription },
    Tick,
}

/// How long a silent node takes to be marked DOWN (heartbeat period 5 s × 3).
pub const HEARTBEAT_GRACE: Duration = Duration::from_secs(15);

/// How many batches the driver may write at one instant before the simulator calls it a
/// livelock.
const MAX_PASSES_PER_INSTANT: usize = 1000;

/// One command the store applied (or refused), for harnesses that replay the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// When.
    pub at: MonoTime,
    /// Its log index.
    pub index: u64,
    /// The command.
    pub command: StoreCommand,
    /// Why it was refused, if it was.
    pub refusal: Option<Refusal>,
}

/// A simulated cluster driven by the orchestration core's driver.
#[derive(Debug, Clone)]
pub struct SimCluster {
    /// The replicated state.
    pub state: ClusterState,
    /// The leader's driver.
    pub driver: Driver,
    /// The clock.
    pub clock: FakeClock,
    /// Workloads by image (unknown images start and stop instantly and never exit).
    pub workloads: BTreeMap<String, Workload>,
    /// A narrative of every change, `t=<secs> <what>`.
    pub log: Vec<String>,
    /// Every command applied or refused, in log order.
    pub history: Vec<Applied>,
    /// Decisions the driver dropped while trying them (with why), and livelocks.
    pub anomalies: Vec<String>,
    /// Stack deployments being driven (beyond-Swarm waves and failure budget).
    pub deployments: Vec<StackDeployment>,
    index: u64,
    epoch: u64,
    events: BTreeMap<(MonoTime, u64), SimEvent>,
    seq: u64,
    seen: BTreeMap<TaskId, (TaskState, TaskState, Option<NodeId>)>,
    silent: BTreeSet<NodeId>,
    ticks: BTreeSet<MonoTime>,
}

impl Default for SimCluster {
    fn default() -> Self {
        SimCluster::new()
    }
}

/// A READY, described worker named `id` (hostname = id, 4 CPUs, 8 GiB, linux/x86_64).
fn ready_node(id: &str) -> Node {
    let mut node = Node { id: NodeId::new(id), ..Node::default() };
    node.description.hostname = id.to_owned();
    node.description.nano_cpus = 4_000_000_000;
    node.description.memory_bytes = 8 << 30;
    node.description.platform.os = "linux".to_owned();
    node.description.platform.architecture = "x86_64".to_owned();
    node.status.state = NodeState::Ready;
    node
}

impl SimCluster {
    /// An empty cluster at t=0 whose manager has just become leader (epoch 1).
    pub fn new() -> Self {
        let mut c = SimCluster {
            state: ClusterState::default(),
            driver: Driver::new(),
            clock: FakeClock::new(),
            workloads: BTreeMap::new(),
            log: Vec::new(),
            history: Vec::new(),
            anomalies: Vec::new(),
            deployments: Vec::new(),
            index: 0,
            epoch: 1,
            events: BTreeMap::new(),
            seq: 0,
            seen: BTreeMap::new(),
            silent: BTreeSet::new(),
            ticks: BTreeSet::new(),
        };
        c.driver.lead(c.epoch);
        c.settle();
        c
    }

    /// The current time.
    pub fn now(&self) -> MonoTime {
        self.clock.now()
    }

    /// Applies one command at the next log index, as the store would, and lets the driver
    /// react. Answers the index or the refusal.
    ///
    /// # Errors
    /// What the store refused.
    pub fn write(&mut self, cmd: StoreCommand) -> Result<u64, Refusal> {
        let result = self.commit(cmd);
        self.settle();
        result
    }

    /// Applies without letting the driver run yet (several writes at one instant).
    fn commit(&mut self, cmd: StoreCommand) -> Result<u64, Refusal> {
        self.index += 1;
        let response = self.state.apply(&cmd, self.index);
        let now = self.now();
        if response.refusal.is_none()
            && let StoreCommand::Orchestrate { commands, .. } = &cmd
        {
            let lines = commands.iter().filter_map(describe);
            self.log.extend(lines.map(|l| format!("{} {l}", fmt_time(now))));
        }
        self.driver.observe(&cmd, &response);
        let refusal = response.refusal.clone();
        self.history.push(Applied { at: now, index: self.index, command: cmd, refusal });
        response.into_result()
    }

    /// Lets the driver write its batches until it has nothing more to do now, then lets the
    /// agents react and books the driver's next wake-up.
    fn settle(&mut self) {
        for _ in 0..MAX_PASSES_PER_INSTANT {
            let now = self.now();
            let out = self.driver.pass(&mut self.state, now);
            for (cmd, why) in out.dropped {
                self.anomalies.push(format!("{} dropped {cmd:?}: {why}", fmt_time(now)));
            }
            if out.batches.is_empty() {
                self.drive_stacks();
                self.agents_react();
                if let Some(at) = self.driver.next_wake()
                    && self.ticks.insert(at)
                {
                    self.push(at.max(now), SimEvent::Tick);
                }
                return;
            }
            self.write_pass(out.batches);
        }
        self.anomalies.push(format!("{} the driver did not settle", fmt_time(self.now())));
    }

    fn push(&mut self, at: MonoTime, event: SimEvent) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn narrate(&mut self, what: String) {
        self.log.push(format!("{} {what}", fmt_time(self.now())));
    }

    /// Adds a READY, active worker named `id` (hostname = id, 4 CPUs, 8 GiB), shaped by `f`:
    /// it joins, then its agent describes it and reports READY at once.
    pub fn add_node(&mut self, id: &str, f: impl FnOnce(&mut Node)) {
        let mut node = ready_node(id);
        f(&mut node);
        self.join_node(node, None);
    }

    /// A node joins (recorded `unknown` and undescribed, as the manager admits it); its agent
    /// then registers its description and READY: at once with `None`, after `d` with
    /// `Some(d)`.
    pub fn join_node(&mut self, node: Node, register_after: Option<Duration>) {
        let mut joined = node.clone();
        joined.status = NodeStatus { state: NodeState::Unknown, ..NodeStatus::default() };
        joined.description = NodeDescription {
            hostname: node.description.hostname.clone(),
            ..NodeDescription::default()
        };
        let _ =
            self.write(StoreCommand::PutNode { node: Box::new(joined), expected: Expect::Absent });
        let register = SimEvent::Register { node: node.id.clone(), description: node.description };
        match register_after {
            None => self.handle(register),
            Some(d) => {
                let at = self.now() + d;
                self.push(at, register);
            }
        }
    }

    /// Changes a node (availability, labels, resources, …) as `docker node update` would.
    pub fn update_node(&mut self, id: &str, f: impl FnOnce(&mut Node)) {
        let Some(record) = self.state.nodes.get(&NodeId::new(id)) else { return };
        let mut node = record.node.clone();
        f(&mut node);
        let expected = Expect::Version(record.version);
        let _ = self.write(StoreCommand::PutNode { node: Box::new(node), expected });
    }

    /// Removes a node (`docker node rm`).
    pub fn remove_node(&mut self, id: &str) {
        let _ = self.write(StoreCommand::RemoveNode { id: NodeId::new(id), expected: Expect::Any });
    }

    /// The node's agent stops heartbeating now; the node is marked DOWN after the grace.
    pub fn stop_heartbeats(&mut self, id: &str) {
        self.silent.insert(NodeId::new(id));
        let at = self.now() + HEARTBEAT_GRACE;
        self.push(at, SimEvent::HeartbeatTimeout { node: NodeId::new(id) });
    }

    /// Creates a service (`service create`).
    pub fn create_service(&mut self, id: &str, spec: ServiceSpec) {
        let cmd = StoreCommand::CreateService { id: ServiceId::new(id), spec: Box::new(spec) };
        if let Err(e) = self.write(cmd) {
            self.narrate(format!("create {id} refused: {e}"));
        }
    }

    /// `service update` with the spec changed by `f`.
    ///
    /// # Errors
    /// What the store refused (a mode change, a port in use).
    pub fn update_service(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut ServiceSpec),
    ) -> Result<(), Refusal> {
        let sid = ServiceId::new(id);
        let Some(record) = self.state.services.get(&sid) else { return Ok(()) };
        let mut spec = record.spec.clone();
        f(&mut spec);
        let expected = Expect::Version(record.version);
        self.commit(StoreCommand::UpdateService {
            id: sid.clone(),
            spec: Box::new(spec),
            expected,
        })?;
        let version = self.service(id).map_or(0, |s| s.spec_version);
        self.narrate(format!("update {id} v{version}"));
        self.settle();
        Ok(())
    }

    /// `service rollback`.
    ///
    /// # Errors
    /// No previous spec.
    pub fn rollback_service(&mut self, id: &str) -> Result<(), Refusal> {
        let at = self.now();
        self.write(StoreCommand::RollbackService {
            id: ServiceId::new(id),
            expected: Expect::Any,
            at,
        })
        .map(|_| ())
    }

    /// Deletes a service.
    pub fn remove_service(&mut self, id: &str) {
        let _ = self
            .write(StoreCommand::RemoveService { id: ServiceId::new(id), expected: Expect::Any });
    }

    /// `swarm update`: changes the cluster settings.
    pub fn update_settings(&mut self, f: impl FnOnce(&mut ClusterSettings)) {
        let mut settings = self.state.settings;
        f(&mut settings);
        let _ = self.write(StoreCommand::SetSettings { settings, expected: Expect::Any });
    }

    /// Starts a stack deployment; its waves are driven after every event.
    pub fn deploy_stack(&mut self, deployment: StackDeployment) {
        self.deployments.push(deployment);
        self.settle();
    }

    /// Runs the stack deployments' steps until none has anything more to do now.
    fn drive_stacks(&mut self) {
        for i in 0..self.deployments.len() {
            for _ in 0..MAX_PASSES_PER_INSTANT {
                let actions = stack::step(&self.state, &self.deployments[i], self.now());
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
        match action {
            StackAction::Apply { service, spec } => {
                let cmd = StoreCommand::UpdateService {
                    id: service.clone(),
                    spec,
                    expected: Expect::Any,
                };
                if self.commit(cmd).is_ok() {
                    let version = self.state.services.get(&service).map_or(0, |s| s.spec_version);
                    self.deployments[i].applied.insert(service.clone(), version);
                    self.narrate(format!("stack apply {service} v{version}"));
                }
            }
            StackAction::Change(cmd) => {
                let line = describe(&cmd);
                if self.commit(*cmd).is_ok()
                    && let Some(line) = line
                {
                    self.narrate(line);
                }
            }
            StackAction::Wait { .. } => {}
            StackAction::SetState(state) => {
                self.narrate(format!("stack {} {state:?}", self.deployments[i].stack));
                self.deployments[i].state = state;
            }
        }
        self.settle_driver_only();
    }

    /// Lets the driver write its batches without re-entering the stack driving.
    fn settle_driver_only(&mut self) {
        for _ in 0..MAX_PASSES_PER_INSTANT {
            let out = self.driver.pass(&mut self.state, self.clock.now());
            if out.batches.is_empty() {
                return;
            }
            self.write_pass(out.batches);
        }
    }

    /// Writes a pass's entries in order as the leader loop does: it stops at the first one
    /// refused and abandons the rest.
    fn write_pass(&mut self, batches: Vec<StoreCommand>) {
        let n = batches.len();
        for (i, batch) in batches.into_iter().enumerate() {
            if self.commit(batch).is_err() {
                self.driver.abandon(n - i - 1);
                return;
            }
        }
    }

    /// A new leader takes over (a new epoch): its driver starts empty, restarts what ended
    /// meanwhile, reconciles everything and resumes rollouts.
    pub fn elect_new_leader(&mut self) {
        self.epoch += 1;
        self.narrate("leader elected".to_owned());
        self.driver = Driver::new();
        self.driver.lead(self.epoch);
        self.settle();
    }

    /// The current leader computes its next batch but loses leadership before writing it
    /// (a batch still in flight at a failover). Answers that batch, to be written later.
    pub fn stale_batch(&mut self) -> Option<StoreCommand> {
        let now = self.now();
        self.driver.pass(&mut self.state, now).batches.into_iter().next()
    }

    /// Injects an agent report at the current time (a crash, an exit, a late start).
    pub fn report(&mut self, id: &TaskId, state: TaskState) {
        let exit_code = match state {
            TaskState::Complete => Some(0),
            TaskState::Failed => Some(1),
            _ => None,
        };
        let now = self.now();
        self.push(now, SimEvent::Report(Report { at: now, task: id.clone(), state, exit_code }));
    }

    /// No leader until `t`: time passes, agents' reports reach the store, but nothing is
    /// orchestrated; heartbeat timeouts and registrations wait for the next leader.
    pub fn leaderless_until(&mut self, t: MonoTime) {
        self.driver.step_down();
        let mut postponed = Vec::new();
        while let Some((&(at, seq), _)) = self.events.first_key_value() {
            if at > t {
                break;
            }
            let Some(event) = self.events.remove(&(at, seq)) else { break };
            self.clock.set(at);
            match event {
                SimEvent::Report(r) => {
                    self.record_report(&r);
                }
                SimEvent::HeartbeatTimeout { .. } | SimEvent::Register { .. } => {
                    postponed.push(event)
                }
                SimEvent::Tick => {}
            }
        }
        self.ticks.clear();
        self.clock.set(t);
        for event in postponed {
            self.push(t, event);
        }
    }

    /// Runs every event up to and including `t`.
    pub fn run_until(&mut self, t: MonoTime) {
        while let Some((&(at, seq), _)) = self.events.first_key_value() {
            if at > t {
                break;
            }
            let Some(event) = self.events.remove(&(at, seq)) else { break };
            self.clock.set(at);
            if matches!(event, SimEvent::Tick) {
                self.ticks.remove(&at);
            }
            self.handle(event);
        }
        self.clock.set(t);
    }

    fn handle(&mut self, event: SimEvent) {
        match event {
            SimEvent::Report(r) => {
                if self.record_report(&r) {
                    self.settle();
                }
            }
            SimEvent::HeartbeatTimeout { node } => {
                if self.state.node(&node).is_some() {
                    let status = NodeStatus {
                        state: NodeState::Down,
                        message: "heartbeat failure".to_owned(),
                        ..NodeStatus::default()
                    };
                    self.narrate(format!("node {node} down"));
                    let _ = self.write(StoreCommand::SetNodeStatus { id: node, status });
                }
            }
            SimEvent::Register { node, .. } if self.silent.contains(&node) => {}
            SimEvent::Register { node, description } => {
                let ready = NodeStatus { state: NodeState::Ready, ..NodeStatus::default() };
                let described = StoreCommand::SetNodeDescription {
                    id: node.clone(),
                    description: Box::new(description),
                };
                if self.commit(described).is_ok() {
                    let _ = self.commit(StoreCommand::SetNodeStatus { id: node, status: ready });
                }
                self.settle();
            }
            SimEvent::Tick => self.settle(),
        }
    }

    /// Delivers an agent report to the store; answers whether it changed anything.
    fn record_report(&mut self, r: &Report) -> bool {
        let Some(task) = self.state.task(&r.task) else { return false };
        let node_ok = task.node_id.as_ref().is_some_and(|n| !self.silent.contains(n));
        let stale = r.state == TaskState::Running && task.desired_state > TaskState::Running;
        if !node_ok || r.state <= task.status.state || stale {
            return false;
        }
        let status = TaskStatus {
            state: r.state,
            timestamp: self.now(),
            message: r.state.as_str().to_owned(),
            err: String::new(),
            exit_code: r.exit_code,
            ..task.status.clone()
        };
        let workload = self.workload(task).clone();
        let reached_running = r.state == TaskState::Running;
        let cmd = StoreCommand::SetTaskStatus { id: r.task.clone(), status: Box::new(status) };
        if self.commit(cmd).is_err() {
            return false;
        }
        self.narrate(format!("observed {} {}", r.task, r.state));
        if reached_running
            && let Some(task) = self.state.task(&r.task)
            && let Some(exit) = agents::after_running(task, &workload, self.now())
        {
            self.push(exit.at, SimEvent::Report(exit));
        }
        true
    }

    fn workload(&self, task: &Task) -> &Workload {
        static INSTANT: Workload = Workload {
            start_after: Duration::ZERO,
            exit_after: None,
            fail_before_running: None,
            stop_after: Duration::ZERO,
            unhealthy: false,
            only_slots: None,
        };
        self.workloads.get(&task.spec.container_spec.image).unwrap_or(&INSTANT)
    }

    /// Each agent reacts to what changed in its tasks (swarmkit `exec.Do`).
    fn agents_react(&mut self) {
        let now = self.now();
        let mut reports = Vec::new();
        for t in self.state.all_tasks() {
            let key = (t.desired_state, t.status.state, t.node_id.clone());
            if self.seen.get(&t.id) == Some(&key) {
                continue;
            }
            self.seen.insert(t.id.clone(), key);
            let Some(node) = &t.node_id else { continue };
            let alive = !self.silent.contains(node)
                && self.state.node(node).is_some_and(|n| n.status.state != NodeState::Down);
            if alive {
                reports.extend(agents::react(t, self.workload(t), now));
            }
        }
        self.seen.retain(|id, _| self.state.tasks.contains_key(id));
        for r in reports {
            self.push(r.at, SimEvent::Report(r));
        }
    }

    /// Narrative lines containing `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        self.log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// A service's record.
    pub fn service(&self, id: &str) -> Option<&ServiceRecord> {
        self.state.services.get(&ServiceId::new(id))
    }

    /// A task by id.
    pub fn task(&self, id: &TaskId) -> Option<&Task> {
        self.state.task(id)
    }

    /// The tasks of a service, in id order.
    pub fn tasks_of(&self, service: &str) -> Vec<&Task> {
        self.state.all_tasks().filter(|t| t.service_id.as_str() == service).collect()
    }

    /// Tasks of a service observed RUNNING (and still wanted), as `(slot, node, spec version)`.
    pub fn running(&self, service: &str) -> Vec<(u64, String, u64)> {
        self.tasks_of(service)
            .into_iter()
            .filter(|t| {
                t.status.state == TaskState::Running && t.desired_state <= TaskState::Running
            })
            .map(|t| {
                let node = t.node_id.as_ref().map(|n| n.to_string()).unwrap_or_default();
                (t.slot, node, t.spec_version)
            })
            .collect()
    }

    /// The service's update status as `state: message`, or `nil`.
    pub fn status_line(&self, service: &str) -> String {
        match self.service(service).and_then(|s| s.update_status.as_ref()) {
            Some(s) => format!("{}: {}", s.state, s.message),
            None => "nil".to_owned(),
        }
    }
}
