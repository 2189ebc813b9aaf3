//! A small deterministic world for driving one service's [`Rollout`]: tasks per slot, an
//! agent that follows desired states with scripted timings per spec version, a fake clock,
//! and the store side of an automatic rollback. Every command is logged with its time.

#![allow(dead_code)] // each test binary uses a different part of the harness
#![allow(clippy::expect_used)] // test harness: a broken invariant should panic loudly

use reconciler_orchestrator::rollout::{Command, Input, Rollout, SlotSnapshot, SlotTask};
use reconciler_orchestrator::slot::{SlotKey, TaskIdAllocator};
use reconciler_types::{
    MonoTime, ServiceId, TaskId, TaskState, UpdateConfig, UpdateState, UpdateStatus,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// How the tasks of one spec version behave once told to run.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Time from desired RUNNING to observed RUNNING.
    pub start_after: Duration,
    /// Fail (observed FAILED) this long after reaching RUNNING.
    pub fail_after_running: Option<Duration>,
    /// Fail this long after being told to run, without ever reaching RUNNING.
    pub fail_before_running: Option<Duration>,
    /// Time from desired SHUTDOWN to observed SHUTDOWN (a task ignoring SIGTERM: the grace
    /// period). `None` = never reports (its node is gone silent).
    pub stop_after: Option<Duration>,
}

impl Behaviour {
    /// Starts and stops instantly, never fails.
    pub fn instant() -> Self {
        Behaviour { stop_after: Some(Duration::ZERO), ..Behaviour::default() }
    }
}

/// A task of the world.
#[derive(Debug, Clone)]
pub struct WTask {
    pub slot: SlotKey,
    pub version: u64,
    pub desired: TaskState,
    pub observed: TaskState,
}

/// A scheduled agent report.
#[derive(Debug, Clone)]
struct Report {
    task: TaskId,
    state: TaskState,
}

/// The world.
pub struct World {
    pub now: MonoTime,
    pub ids: TaskIdAllocator,
    pub tasks: BTreeMap<TaskId, WTask>,
    pub behaviour: BTreeMap<u64, Behaviour>,
    pub rollout: Option<Rollout>,
    pub log: Vec<String>,
    pub status: Option<UpdateStatus>,
    pub spec_version: u64,
    pub previous_version: Option<u64>,
    pub update: UpdateConfig,
    pub rollback: UpdateConfig,
    reports: BTreeMap<(MonoTime, u64), Report>,
    seq: u64,
    wake: Option<MonoTime>,
    /// Invariant checks run after every step.
    pub checks: Vec<fn(&World)>,
    /// Extra start/stop latencies, used in turn (property tests).
    pub jitter: Vec<Duration>,
    /// For tasks of spec versions ≥ 2, in turn: crash this long after running (property tests).
    pub crashes: Vec<Option<Duration>>,
    draws: usize,
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn at(s: u64) -> MonoTime {
    MonoTime::from_secs(s)
}

fn fmt_time(t: MonoTime) -> String {
    let ms = t.0.as_millis();
    if ms.is_multiple_of(1000) {
        format!("t={}", ms / 1000)
    } else {
        format!("t={}.{:03}", ms / 1000, ms % 1000)
    }
}

impl World {
    /// `replicas` slots running spec version 1, each with one RUNNING task.
    pub fn replicated(replicas: u64, update: UpdateConfig) -> World {
        let mut w = World {
            now: MonoTime::ZERO,
            ids: TaskIdAllocator::default(),
            tasks: BTreeMap::new(),
            behaviour: BTreeMap::new(),
            rollout: None,
            log: Vec::new(),
            status: None,
            spec_version: 1,
            previous_version: None,
            update,
            rollback: UpdateConfig::default(),
            reports: BTreeMap::new(),
            seq: 0,
            wake: None,
            checks: Vec::new(),
            jitter: Vec::new(),
            crashes: Vec::new(),
            draws: 0,
        };
        w.behaviour.insert(1, Behaviour::instant());
        for slot in 1..=replicas {
            let id = w.ids.alloc();
            w.tasks.insert(
                id,
                WTask {
                    slot: SlotKey::Replica(slot),
                    version: 1,
                    desired: TaskState::Running,
                    observed: TaskState::Running,
                },
            );
        }
        w
    }

    /// The live slots of the service (updatable tasks: desired ≤ RUNNING).
    pub fn slots(&self) -> Vec<SlotSnapshot> {
        let mut by_slot: BTreeMap<SlotKey, Vec<SlotTask>> = BTreeMap::new();
        for (id, t) in &self.tasks {
            if t.desired <= TaskState::Running {
                by_slot.entry(t.slot.clone()).or_default().push(SlotTask {
                    id: id.clone(),
                    clean: t.version == self.spec_version,
                    desired: t.desired,
                    observed: t.observed,
                    node_down: false,
                });
            }
        }
        by_slot.into_iter().map(|(slot, tasks)| SlotSnapshot { slot, tasks }).collect()
    }

    /// `UpdateService` with a new spec version: PreviousSpec ← Spec, status ← nil, new run.
    pub fn update_to(&mut self, version: u64, behaviour: Behaviour) {
        self.behaviour.insert(version, behaviour);
        self.previous_version = Some(self.spec_version);
        self.spec_version = version;
        self.status = None;
        self.start_run();
    }

    /// `UpdateService` with an identical spec: a new spec version whose tasks are deep-equal
    /// to the current ones (so no task is dirty because of it); status ← nil, new run.
    pub fn update_same_spec(&mut self) {
        self.previous_version = Some(self.spec_version);
        self.status = None;
        self.start_run();
    }

    /// No leader until `t`: time passes, nothing is processed.
    pub fn leaderless_until(&mut self, t: MonoTime) {
        self.wake = None;
        self.now = t;
    }

    /// Manual rollback (`docker service rollback`): swap, `rollback_started`.
    pub fn manual_rollback(&mut self) -> Result<(), String> {
        let Some(prev) = self.previous_version else {
            return Err("service svc does not have a previous spec".to_owned());
        };
        self.previous_version = Some(self.spec_version);
        self.spec_version = prev;
        self.status = Some(UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: "manually requested rollback".to_owned(),
            started_at: Some(self.now),
            completed_at: None,
        });
        self.start_run();
        Ok(())
    }

    /// Cancels the current run and starts one over the current slots.
    pub fn start_run(&mut self) {
        let mut cmds = Vec::new();
        if let Some(r) = self.rollout.as_mut() {
            cmds.extend(r.handle(Input::Cancel, &mut self.ids));
        }
        let svc = ServiceId::new("svc");
        let target = reconciler_orchestrator::rollout::RolloutTarget {
            service: &svc,
            spec_version: self.spec_version,
            update_config: &self.update,
            rollback_config: &self.rollback,
            status: self.status.as_ref(),
        };
        let (r, start) = Rollout::start(&target, self.slots(), self.now, &mut self.ids);
        self.rollout = Some(r);
        cmds.extend(start);
        self.apply(cmds);
    }

    /// A leader change: the run is serialized, read back and resumed over the store's slots.
    pub fn fail_over(&mut self) {
        let Some(r) = self.rollout.take() else { return };
        let json = serde_json::to_string(&r).expect("rollout serializes");
        let back: Rollout = serde_json::from_str(&json).expect("rollout deserializes");
        assert_eq!(back, r, "the stored rollout reads back identical");
        let (r, cmds) = back.resume(self.slots(), self.now, &mut self.ids);
        self.rollout = Some(r);
        self.wake = None;
        self.log.push(format!("{} leader change", fmt_time(self.now)));
        self.apply(cmds);
    }

    /// Carries out the rollout's commands as the store and the agents would.
    pub fn apply(&mut self, cmds: Vec<Command>) {
        for cmd in cmds {
            self.log.push(format!("{} {}", fmt_time(self.now), render(&cmd)));
            match cmd {
                Command::CreateTask { slot, task, desired } => {
                    let t = WTask {
                        slot,
                        version: self.spec_version,
                        desired,
                        observed: TaskState::Pending,
                    };
                    self.tasks.insert(task.clone(), t);
                    self.desired_changed(&task);
                }
                Command::SetDesired { task, state } => {
                    if let Some(t) = self.tasks.get_mut(&task) {
                        t.desired = state;
                    }
                    self.desired_changed(&task);
                }
                Command::SetStatus(s) => self.status = Some(s),
                Command::Rollback(s) => {
                    self.spec_version = self.previous_version.take().unwrap_or(self.spec_version);
                    self.status = Some(s);
                    self.start_run();
                }
                Command::WakeAt(t) => self.wake = Some(t),
            }
        }
    }

    fn schedule(&mut self, when: MonoTime, task: &TaskId, state: TaskState) {
        self.seq += 1;
        self.reports.insert((when, self.seq), Report { task: task.clone(), state });
    }

    fn next_jitter(&mut self) -> Duration {
        self.draws += 1;
        if self.jitter.is_empty() {
            Duration::ZERO
        } else {
            self.jitter[self.draws % self.jitter.len()]
        }
    }

    fn next_crash(&mut self, version: u64, scripted: Option<Duration>) -> Option<Duration> {
        self.draws += 1;
        if version < 2 || self.crashes.is_empty() {
            scripted
        } else {
            self.crashes[self.draws % self.crashes.len()]
        }
    }

    /// The agent reacts to a desired-state change.
    fn desired_changed(&mut self, id: &TaskId) {
        let Some(t) = self.tasks.get(id).cloned() else { return };
        let b = self.behaviour.get(&t.version).cloned().unwrap_or_else(Behaviour::instant);
        if t.desired >= TaskState::Shutdown && !t.observed.is_terminal() {
            if t.observed < TaskState::Starting {
                self.schedule(self.now, id, TaskState::Shutdown);
            } else if let Some(d) = b.stop_after {
                let d = d + self.next_jitter();
                self.schedule(self.now + d, id, TaskState::Shutdown);
            }
        } else if t.desired == TaskState::Running && t.observed < TaskState::Running {
            if let Some(d) = b.fail_before_running {
                self.schedule(self.now + d, id, TaskState::Failed);
            } else {
                let d = b.start_after + self.next_jitter();
                self.schedule(self.now + d, id, TaskState::Running);
            }
        }
    }

    /// Runs the world until `until` (inclusive): agent reports first, then wake-ups.
    pub fn run_until(&mut self, until: MonoTime) {
        loop {
            let next_report = self.reports.keys().next().map(|k| k.0);
            let next = match (next_report, self.wake) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > until {
                break;
            }
            self.now = next;
            if next_report == Some(next) {
                let key = *self.reports.keys().next().expect("a report is due");
                let report = self.reports.remove(&key).expect("the due report exists");
                self.report(report);
            } else {
                self.wake = None;
                let cmds = self
                    .rollout
                    .as_mut()
                    .map(|r| r.handle(Input::Tick { now: next }, &mut self.ids));
                self.apply(cmds.unwrap_or_default());
            }
            for check in self.checks.clone() {
                check(self);
            }
        }
        self.now = self.now.max(until);
    }

    fn report(&mut self, r: Report) {
        let Some(t) = self.tasks.get_mut(&r.task) else { return };
        if r.state <= t.observed {
            return;
        }
        t.observed = r.state;
        let version = t.version;
        self.log.push(format!("{} observed {} {}", fmt_time(self.now), r.task, r.state));
        if r.state == TaskState::Running {
            let b = self.behaviour.get(&version).cloned().unwrap_or_else(Behaviour::instant);
            if let Some(d) = self.next_crash(version, b.fail_after_running) {
                let when = self.now + d;
                self.schedule(when, &r.task, TaskState::Failed);
            }
        }
        let input = Input::TaskObserved { task: r.task, state: r.state, at: self.now };
        let cmds = self.rollout.as_mut().map(|ro| ro.handle(input, &mut self.ids));
        self.apply(cmds.unwrap_or_default());
    }

    /// Log lines that are commands (no observations), for timeline assertions.
    pub fn commands(&self) -> Vec<String> {
        self.log.iter().filter(|l| !l.contains(" observed ")).cloned().collect()
    }

    /// Log lines containing `needle`.
    pub fn lines(&self, needle: &str) -> Vec<String> {
        self.log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// The current status as `state: message`.
    pub fn status_line(&self) -> String {
        match &self.status {
            Some(s) => format!("{}: {}", s.state, s.message),
            None => "nil".to_owned(),
        }
    }

    /// Tasks observed RUNNING and still desired RUNNING, per slot.
    pub fn running_per_slot(&self) -> BTreeMap<SlotKey, Vec<(TaskId, u64)>> {
        let mut m: BTreeMap<SlotKey, Vec<(TaskId, u64)>> = BTreeMap::new();
        for (id, t) in &self.tasks {
            if t.observed == TaskState::Running {
                m.entry(t.slot.clone()).or_default().push((id.clone(), t.version));
            }
        }
        m
    }
}

/// One command as a short line.
pub fn render(cmd: &Command) -> String {
    match cmd {
        Command::CreateTask { slot, task, desired } => {
            format!("create slot {slot} {task} {desired}")
        }
        Command::SetDesired { task, state } => format!("desire {task} {state}"),
        Command::SetStatus(s) => format!("status {}: {}", s.state, s.message),
        Command::Rollback(s) => format!("rollback {}: {}", s.state, s.message),
        Command::WakeAt(t) => format!("wake {}", fmt_time(*t)),
    }
}
