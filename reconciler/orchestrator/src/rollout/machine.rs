//! The rollout state machine itself. See the module docs of `rollout` for the shape.

use super::policy;
use super::worker::{Stage, Worker};
use super::{Command, Input, RolloutKind, SlotSnapshot};
use crate::slot::{SlotKey, TaskIdAllocator};
use reconciler_types::{
    FailureAction, MonoTime, ServiceId, TaskId, TaskState, UpdateConfig, UpdateState, UpdateStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// One rolling update (or rollback) run of one service. Serializable: it lives in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub(super) service: ServiceId,
    pub(super) kind: RolloutKind,
    pub(super) spec_version: u64,
    pub(super) config: UpdateConfig,
    pub(super) status: Option<UpdateStatus>,
    pub(super) queue: VecDeque<SlotSnapshot>,
    pub(super) workers: Vec<Worker>,
    pub(super) capacity: usize,
    pub(super) dirty_slots: u32,
    pub(super) failures: u32,
    pub(super) created: BTreeMap<TaskId, Created>,
    pub(super) phase: Phase,
    pub(super) now: MonoTime,
    pub(super) wake: Option<MonoTime>,
}

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Phase {
    /// Handing out slots to workers.
    Rolling,
    /// Every slot done; watching failures until `until`.
    Tail { until: MonoTime },
    /// The failure action paused the run: workers finish their slot, nothing more.
    Paused,
    /// Finished (completed), or nothing to do.
    Done,
    /// Cancelled (superseded, or rolled back): inert.
    Cancelled,
}

/// A task this run created, for failure accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Created {
    pub(super) started: Option<MonoTime>,
    pub(super) counted: bool,
}

/// What a run is, whole: the service, update or rollback, the target spec version, the config
/// in use and the status it starts from.
struct RunSpec {
    service: ServiceId,
    kind: RolloutKind,
    spec_version: u64,
    config: UpdateConfig,
    status: Option<UpdateStatus>,
}

/// The identity of a run: which service, toward which spec version, with which configs.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutTarget<'a> {
    /// The service.
    pub service: &'a ServiceId,
    /// The spec version the slots are brought to.
    pub spec_version: u64,
    /// The service's `update_config`.
    pub update_config: &'a UpdateConfig,
    /// The service's `rollback_config`.
    pub rollback_config: &'a UpdateConfig,
    /// The service's current update status (decides update vs rollback, and paused).
    pub status: Option<&'a UpdateStatus>,
}

impl Rollout {
    /// Starts a run over the service's live slots (swarmkit `Updater.Run`): does nothing
    /// while paused; completes at once when no slot is dirty; otherwise sets `updating`
    /// (unless a status is already set) and hands the dirty slots, ascending, to workers.
    #[must_use]
    pub fn start(
        target: &RolloutTarget<'_>,
        slots: Vec<SlotSnapshot>,
        now: MonoTime,
        ids: &mut TaskIdAllocator,
    ) -> (Rollout, Vec<Command>) {
        let status = target.status.cloned();
        let kind = match status.as_ref().map(|s| s.state) {
            Some(UpdateState::RollbackStarted | UpdateState::RollbackPaused) => {
                RolloutKind::Rollback
            }
            _ => RolloutKind::Update,
        };
        let config = policy::effective_config(kind, target.update_config, target.rollback_config);
        let run = RunSpec {
            service: target.service.clone(),
            kind,
            spec_version: target.spec_version,
            config,
            status,
        };
        Rollout::begin(run, slots, now, ids)
    }

    /// Resumes this run on a new leader, as swarmkit does: the dirty slots are recomputed
    /// from `slots` (already-updated ones are clean and skipped, a slot caught with two tasks
    /// is finished through its clean task), `started_at` is kept, failure counting restarts,
    /// and no delay is owed from before the failover. A cancelled run stays cancelled.
    #[must_use]
    pub fn resume(
        self,
        slots: Vec<SlotSnapshot>,
        now: MonoTime,
        ids: &mut TaskIdAllocator,
    ) -> (Rollout, Vec<Command>) {
        if self.phase == Phase::Cancelled {
            return (self, Vec::new());
        }
        let run = RunSpec {
            service: self.service,
            kind: self.kind,
            spec_version: self.spec_version,
            config: self.config,
            status: self.status,
        };
        Rollout::begin(run, slots, now, ids)
    }

    /// The constructor shared by start and resume.
    fn begin(
        run: RunSpec,
        slots: Vec<SlotSnapshot>,
        now: MonoTime,
        ids: &mut TaskIdAllocator,
    ) -> (Rollout, Vec<Command>) {
        let mut dirty: Vec<SlotSnapshot> =
            slots.into_iter().filter(SlotSnapshot::is_dirty).collect();
        dirty.sort_by(|a, b| a.slot.cmp(&b.slot));
        let dirty_slots = u32::try_from(dirty.len()).unwrap_or(u32::MAX);
        let capacity = policy::worker_count(&run.config, dirty.len());
        let mut r = Rollout {
            service: run.service,
            kind: run.kind,
            spec_version: run.spec_version,
            config: run.config,
            status: run.status,
            queue: dirty.into(),
            workers: Vec::new(),
            capacity,
            dirty_slots,
            failures: 0,
            created: BTreeMap::new(),
            phase: Phase::Rolling,
            now,
            wake: None,
        };
        let mut out = Vec::new();
        if r.status.as_ref().is_some_and(|s| s.state.is_paused()) {
            r.phase = Phase::Paused;
            return (r, out);
        }
        if r.queue.is_empty() {
            r.phase = Phase::Done;
            if r.status.as_ref().is_some_and(|s| {
                matches!(s.state, UpdateState::Updating | UpdateState::RollbackStarted)
            }) {
                r.complete(now, &mut out);
            }
            return (r, out);
        }
        if r.status.is_none() {
            r.set_status(
                UpdateState::Updating,
                policy::MSG_UPDATING.to_owned(),
                Some(now),
                None,
                &mut out,
            );
        }
        r.fill_workers(now, ids, &mut out);
        r.after(now, &mut out);
        (r, out)
    }

    /// Feeds one input; answers the commands to carry out, in order. Pure and deterministic.
    #[must_use]
    pub fn handle(&mut self, input: Input, ids: &mut TaskIdAllocator) -> Vec<Command> {
        let mut out = Vec::new();
        if self.phase == Phase::Cancelled {
            return out;
        }
        match input {
            Input::Tick { now } => self.on_tick(now, ids, &mut out),
            Input::TaskObserved { task, state, at } => {
                self.on_observed(&task, state, at, ids, &mut out)
            }
            Input::OldTaskGone { task, at } => self.on_gone(&task, at, ids, &mut out),
            Input::SlotRefreshed { slot } => self.on_refresh(slot, ids, &mut out),
            Input::Cancel => {
                self.phase = Phase::Cancelled;
                self.wake = None;
            }
        }
        out
    }

    /// The service this run updates.
    pub fn service(&self) -> &ServiceId {
        &self.service
    }

    /// The spec version this run brings the slots to.
    pub fn spec_version(&self) -> u64 {
        self.spec_version
    }

    /// Update or rollback.
    pub fn kind(&self) -> RolloutKind {
        self.kind
    }

    /// The config in use (monitor default applied).
    pub fn config(&self) -> &UpdateConfig {
        &self.config
    }

    /// The update status this run last set (or started with).
    pub fn status(&self) -> Option<&UpdateStatus> {
        self.status.as_ref()
    }

    /// Slots currently held by a worker (including workers sleeping their delay).
    pub fn in_flight(&self) -> usize {
        self.workers.len()
    }

    /// The number of concurrent workers.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Failures counted against the ratio so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Still doing something (not finished, paused with idle workers, or cancelled).
    pub fn is_active(&self) -> bool {
        match self.phase {
            Phase::Rolling | Phase::Tail { .. } => true,
            Phase::Paused => !self.workers.is_empty(),
            Phase::Done | Phase::Cancelled => false,
        }
    }

    /// Whether a slot is still queued or held by a worker that has not finished it.
    pub fn holds_slot(&self, slot: &SlotKey) -> bool {
        self.queue.iter().any(|s| &s.slot == slot)
            || self
                .workers
                .iter()
                .any(|w| &w.slot == slot && !matches!(w.stage, Stage::Delay { .. }))
    }

    /// Cancelled: superseded or rolled back.
    pub fn is_cancelled(&self) -> bool {
        self.phase == Phase::Cancelled
    }

    /// The time of the next timer, if any.
    pub fn next_wake(&self) -> Option<MonoTime> {
        self.wake
    }

    fn on_tick(&mut self, now: MonoTime, ids: &mut TaskIdAllocator, out: &mut Vec<Command>) {
        self.now = self.now.max(now);
        while let Some(due) = self.earliest_timer().filter(|due| *due <= now) {
            self.fire_timers(due, out);
            self.fill_workers(due, ids, out);
            self.enter_tail(due);
        }
        self.after(now, out);
    }

    fn earliest_timer(&self) -> Option<MonoTime> {
        let workers = self.workers.iter().filter_map(|w| match w.stage {
            Stage::WaitOld { deadline, .. } => Some(deadline),
            Stage::Delay { until } => Some(until),
            Stage::WaitRunning => None,
        });
        let tail = match self.phase {
            Phase::Tail { until } => Some(until),
            _ => None,
        };
        workers.chain(tail).min()
    }

    fn on_observed(
        &mut self,
        task: &TaskId,
        state: TaskState,
        at: MonoTime,
        ids: &mut TaskIdAllocator,
        out: &mut Vec<Command>,
    ) {
        self.now = self.now.max(at);
        for slot in &mut self.queue {
            for t in slot.tasks.iter_mut().filter(|t| &t.id == task) {
                t.observed = t.observed.max(state);
            }
        }
        if state.is_terminal() {
            self.judge_failure(task, at, out);
            if self.phase == Phase::Cancelled {
                return;
            }
            self.old_task_stopped(task, at);
            self.flush_started(out);
        }
        if state >= TaskState::Running
            && let Some(i) = self.workers.iter().position(|w| &w.task == task && w.awaits_task())
        {
            self.task_started(i, state, at, out);
        }
        self.fill_workers(at, ids, out);
        self.after(at, out);
    }

    fn on_gone(
        &mut self,
        task: &TaskId,
        at: MonoTime,
        ids: &mut TaskIdAllocator,
        out: &mut Vec<Command>,
    ) {
        if self.workers.iter().any(|w| &w.task == task && w.awaits_task()) {
            // A new task whose node is lost will never run: it ends as ORPHANED would.
            self.on_observed(task, TaskState::Orphaned, at, ids, out);
            return;
        }
        self.now = self.now.max(at);
        for slot in &mut self.queue {
            for t in slot.tasks.iter_mut().filter(|t| &t.id == task) {
                t.node_down = true;
            }
        }
        self.old_task_stopped(task, at);
        self.flush_started(out);
        self.fill_workers(at, ids, out);
        self.after(at, out);
    }

    fn on_refresh(
        &mut self,
        slot: SlotSnapshot,
        ids: &mut TaskIdAllocator,
        out: &mut Vec<Command>,
    ) {
        if let Some(pos) = self.queue.iter().position(|s| s.slot == slot.slot) {
            if slot.is_dirty() {
                self.queue[pos] = slot;
            } else {
                self.queue.remove(pos);
            }
        }
        let now = self.now;
        self.fill_workers(now, ids, out);
        self.after(now, out);
    }

    /// Counts a failure of a task this run created (§6.4) and applies the failure action.
    fn judge_failure(&mut self, task: &TaskId, at: MonoTime, out: &mut Vec<Command>) {
        if self.config.failure_action == FailureAction::Continue
            || !matches!(self.phase, Phase::Rolling | Phase::Tail { .. })
        {
            return;
        }
        let monitor = self.config.monitor;
        let Some(created) = self.created.get_mut(task) else { return };
        let within = created.started.is_none_or(|s| at.saturating_since(s) <= monitor);
        if created.counted || !within {
            return;
        }
        created.counted = true;
        self.failures = self.failures.saturating_add(1);
        if policy::failures_trigger_action(&self.config, self.failures, self.dirty_slots) {
            self.apply_failure_action(task, at, out);
        }
    }

    fn apply_failure_action(&mut self, task: &TaskId, at: MonoTime, out: &mut Vec<Command>) {
        let started_at = self.status.as_ref().and_then(|s| s.started_at);
        match (self.kind, self.config.failure_action) {
            (RolloutKind::Update, FailureAction::Rollback) => {
                let status = UpdateStatus {
                    state: UpdateState::RollbackStarted,
                    message: policy::msg_rolled_back(task),
                    started_at: Some(at),
                    completed_at: None,
                };
                self.status = Some(status.clone());
                out.push(Command::Rollback(status));
                self.phase = Phase::Cancelled;
                self.workers.clear();
                self.wake = None;
            }
            (RolloutKind::Update, _) => {
                self.set_status(
                    UpdateState::Paused,
                    policy::msg_paused(task),
                    started_at,
                    None,
                    out,
                );
                self.phase = Phase::Paused;
            }
            (RolloutKind::Rollback, FailureAction::Rollback) => {
                let msg = policy::msg_rollback_paused(task);
                self.set_status(UpdateState::RollbackPaused, msg, started_at, None, out);
                self.phase = Phase::Paused;
            }
            (RolloutKind::Rollback, _) => {
                self.set_status(
                    UpdateState::RollbackPaused,
                    policy::msg_paused(task),
                    started_at,
                    None,
                    out,
                );
                self.phase = Phase::Paused;
            }
        }
    }

    /// After every input: enter the monitoring tail when all slots are done, and announce the
    /// next timer.
    fn after(&mut self, now: MonoTime, out: &mut Vec<Command>) {
        self.enter_tail(now);
        let next = match self.phase {
            Phase::Cancelled | Phase::Done => None,
            _ => self.earliest_timer(),
        };
        if next != self.wake {
            self.wake = next;
            if let Some(at) = next {
                out.push(Command::WakeAt(at));
            }
        }
    }

    fn enter_tail(&mut self, now: MonoTime) {
        if self.phase == Phase::Rolling && self.queue.is_empty() && self.workers.is_empty() {
            self.phase = Phase::Tail { until: now + policy::monitoring_tail(&self.config) };
        }
    }

    pub(super) fn complete(&mut self, at: MonoTime, out: &mut Vec<Command>) {
        let (state, msg) = match self.kind {
            RolloutKind::Update => (UpdateState::Completed, policy::MSG_COMPLETED),
            RolloutKind::Rollback => {
                (UpdateState::RollbackCompleted, policy::MSG_ROLLBACK_COMPLETED)
            }
        };
        let started_at = self.status.as_ref().and_then(|s| s.started_at);
        self.set_status(state, msg.to_owned(), started_at, Some(at), out);
    }

    fn set_status(
        &mut self,
        state: UpdateState,
        message: String,
        started_at: Option<MonoTime>,
        completed_at: Option<MonoTime>,
        out: &mut Vec<Command>,
    ) {
        let status = UpdateStatus { state, message, started_at, completed_at };
        self.status = Some(status.clone());
        out.push(Command::SetStatus(status));
    }
}
