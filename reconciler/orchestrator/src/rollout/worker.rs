//! The workers of a rollout: taking a slot, holding the new task until the old one has
//! stopped, waiting for it to run, and the update delay (swarmkit `updater.go` `worker`,
//! `updateTask`, `useExistingTask`).

use super::machine::{Created, Phase, Rollout};
use super::policy::OLD_TASK_TIMEOUT;
use super::{Command, SlotSnapshot, SlotTask};
use crate::slot::{SlotKey, TaskIdAllocator};
use reconciler_types::{MonoTime, TaskId, TaskState, UpdateOrder};
use serde::{Deserialize, Serialize};

/// A worker busy with one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Worker {
    pub(super) slot: SlotKey,
    pub(super) task: TaskId,
    pub(super) old: Vec<TaskId>,
    pub(super) start_first: bool,
    pub(super) stage: Stage,
}

/// What a worker waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Stage {
    /// The task is held at READY until an old task stops (or `deadline`); then it is started
    /// and, when `then_wait_running`, waited for.
    WaitOld { deadline: MonoTime, then_wait_running: bool },
    /// Waiting, without timeout, for the task to be RUNNING or terminal.
    WaitRunning,
    /// Sleeping the update delay.
    Delay { until: MonoTime },
}

impl Worker {
    /// Whether the worker still waits for its task to reach RUNNING (or end).
    pub(super) fn awaits_task(&self) -> bool {
        match self.stage {
            Stage::WaitRunning => true,
            Stage::WaitOld { then_wait_running, .. } => then_wait_running,
            Stage::Delay { .. } => false,
        }
    }
}

impl Rollout {
    pub(super) fn fire_timers(&mut self, due: MonoTime, out: &mut Vec<Command>) {
        let mut i = 0;
        while i < self.workers.len() {
            match self.workers[i].stage {
                Stage::WaitOld { deadline, then_wait_running } if deadline <= due => {
                    let task = self.workers[i].task.clone();
                    out.push(Command::SetDesired { task, state: TaskState::Running });
                    if then_wait_running {
                        self.workers[i].stage = Stage::WaitRunning;
                        i += 1;
                    } else if !self.finish_slot(i, due) {
                        i += 1;
                    }
                }
                Stage::Delay { until } if until <= due => {
                    self.workers.remove(i);
                }
                _ => i += 1,
            }
        }
        if let Phase::Tail { until } = self.phase
            && until <= due
        {
            self.phase = Phase::Done;
            self.complete(until, out);
        }
    }

    /// An old task stopped (or its node is gone): workers holding a task for it start it.
    pub(super) fn old_task_stopped(&mut self, task: &TaskId, at: MonoTime) {
        for w in &mut self.workers {
            if let Stage::WaitOld { then_wait_running, .. } = w.stage
                && w.old.contains(task)
            {
                // Marker deadline: started by flush_started with the event time.
                w.stage = Stage::WaitOld { deadline: at, then_wait_running };
                w.old.clear();
            }
        }
    }

    /// Starts workers whose old task stopped (marked by `old_task_stopped`).
    pub(super) fn flush_started(&mut self, out: &mut Vec<Command>) {
        let mut finished = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Stage::WaitOld { deadline, then_wait_running } = w.stage
                && w.old.is_empty()
            {
                out.push(Command::SetDesired { task: w.task.clone(), state: TaskState::Running });
                if then_wait_running {
                    w.stage = Stage::WaitRunning;
                } else {
                    finished.push((i, deadline));
                }
            }
        }
        for (i, at) in finished.into_iter().rev() {
            self.finish_slot(i, at);
        }
    }

    /// The worker's new task reached RUNNING or a terminal state.
    pub(super) fn task_started(
        &mut self,
        i: usize,
        state: TaskState,
        at: MonoTime,
        out: &mut Vec<Command>,
    ) {
        let w = &self.workers[i];
        if let Some(c) = self.created.get_mut(&w.task) {
            c.started.get_or_insert(at);
        }
        if w.start_first && state == TaskState::Running {
            for old in &w.old {
                out.push(Command::SetDesired { task: old.clone(), state: TaskState::Shutdown });
            }
        }
        self.finish_slot(i, at);
    }

    /// The worker is done with its slot: it sleeps the delay, or becomes free (answers true
    /// when it was removed).
    pub(super) fn finish_slot(&mut self, i: usize, at: MonoTime) -> bool {
        if self.config.delay.is_zero() {
            self.workers.remove(i);
            true
        } else {
            self.workers[i].stage = Stage::Delay { until: at + self.config.delay };
            false
        }
    }

    /// Hands queued slots to free workers while the run is rolling.
    pub(super) fn fill_workers(
        &mut self,
        now: MonoTime,
        ids: &mut TaskIdAllocator,
        out: &mut Vec<Command>,
    ) {
        while self.phase == Phase::Rolling && self.workers.len() < self.capacity {
            let Some(slot) = self.queue.pop_front() else { break };
            self.take_slot(slot, now, ids, out);
        }
    }

    /// One worker takes one slot (swarmkit `worker`, `useExistingTask`, `updateTask`).
    /// The slot already holds a task of the target spec (a resumed update): shut the
    /// others down and start it if it is held; no new task, no wait for it to run.
    fn use_existing(
        &mut self,
        slot: &SlotSnapshot,
        existing: SlotTask,
        now: MonoTime,
        out: &mut Vec<Command>,
    ) {
        let others: Vec<_> = slot.tasks.iter().filter(|t| t.id != existing.id).cloned().collect();
        let live_old = shut_down(&others, out);
        let mut w = Worker {
            slot: slot.slot.clone(),
            task: existing.id,
            old: live_old,
            start_first: false,
            stage: Stage::WaitRunning,
        };
        if existing.desired == TaskState::Running {
            self.workers.push(w);
            let i = self.workers.len() - 1;
            self.finish_slot(i, now);
            return;
        }
        w.stage = Stage::WaitOld { deadline: now + OLD_TASK_TIMEOUT, then_wait_running: false };
        self.push_waiting(w, now, out);
    }

    pub(super) fn take_slot(
        &mut self,
        slot: SlotSnapshot,
        now: MonoTime,
        ids: &mut TaskIdAllocator,
        out: &mut Vec<Command>,
    ) {
        let running = slot.tasks.iter().find(|t| t.clean && t.desired == TaskState::Running);
        let held = slot.tasks.iter().rev().find(|t| t.clean && t.desired < TaskState::Running);
        if let Some(existing) = running.or(held).cloned() {
            self.use_existing(&slot, existing, now, out);
            return;
        }
        let task = ids.alloc();
        self.created.insert(task.clone(), Created { started: None, counted: false });
        if self.config.order == UpdateOrder::StartFirst {
            out.push(Command::CreateTask {
                slot: slot.slot.clone(),
                task: task.clone(),
                desired: TaskState::Running,
            });
            let old = slot
                .tasks
                .iter()
                .filter(|t| t.desired <= TaskState::Running)
                .map(|t| t.id.clone())
                .collect();
            self.workers.push(Worker {
                slot: slot.slot,
                task,
                old,
                start_first: true,
                stage: Stage::WaitRunning,
            });
            return;
        }
        out.push(Command::CreateTask {
            slot: slot.slot.clone(),
            task: task.clone(),
            desired: TaskState::Ready,
        });
        let live_old = shut_down(&slot.tasks, out);
        let stage = Stage::WaitOld { deadline: now + OLD_TASK_TIMEOUT, then_wait_running: true };
        self.push_waiting(
            Worker { slot: slot.slot, task, old: live_old, start_first: false, stage },
            now,
            out,
        );
    }

    /// Adds a worker holding a task at READY; starts it at once if no old task is live.
    pub(super) fn push_waiting(&mut self, mut w: Worker, now: MonoTime, out: &mut Vec<Command>) {
        if w.old.is_empty()
            && let Stage::WaitOld { then_wait_running, .. } = w.stage
        {
            w.stage = Stage::WaitOld { deadline: now, then_wait_running };
        }
        self.workers.push(w);
        self.flush_started(out);
    }
}

/// Sets desired SHUTDOWN on the tasks that still want to run; answers the live ones (whose
/// stop a held replacement waits for).
fn shut_down(tasks: &[SlotTask], out: &mut Vec<Command>) -> Vec<TaskId> {
    let mut live = Vec::new();
    for t in tasks.iter().filter(|t| t.desired <= TaskState::Running) {
        out.push(Command::SetDesired { task: t.id.clone(), state: TaskState::Shutdown });
        if t.is_live() {
            live.push(t.id.clone());
        }
    }
    live
}
