//! One task's life on this node (swarmkit `agent/task.go`): a loop that asks
//! [`agent_core::next_step`] what to do, calls the runtime, and records, saves and reports
//! every status change. A change of the desired state (or the task's removal) interrupts a
//! wait, a health wait or a prepare; a start, once begun, runs to its end, so nothing is left
//! half started.
//!
//! With a health check the task stays STARTING until its first healthy probe; an unhealthy
//! task is stopped and FAILED (`docs/swarm-semantics.md` §1.3, S53).

use crate::clock::AgentClock;
use crate::health::{policy, probe_until_changed, unhealthy_error};
use crate::outbox::Outbox;
use crate::runtime::{Found, Runtime, TaskContext};
use crate::taskstore::{Record, TaskStore};
use agent_core::task::{OpError, OpResult, after_op, exit_error};
use agent_core::{Health, HealthPolicy, HealthTracker, Op, Step, advance, next_step};
use reconciler_types::{Clock, TaskState, TaskStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the worker wants of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The managers' desired state.
    pub desired: TaskState,
    /// No longer assigned: stop it, remove what it left, forget it.
    pub removed: bool,
}

/// What every runner shares.
pub struct Shared<R> {
    /// The runtime.
    pub rt: Arc<R>,
    /// Where status changes go.
    pub outbox: Arc<Outbox>,
    /// Where records are saved.
    pub store: TaskStore,
    /// The clock of status timestamps and health checks.
    pub clock: AgentClock,
}

/// One task.
pub struct Runner<R: Runtime> {
    shared: Arc<Shared<R>>,
    ctx: TaskContext,
    record: Record,
    control: watch::Receiver<Control>,
    /// Why the task cannot run as assigned (a missing secret, a target outside the task).
    resolve_error: Option<String>,
    health: Option<HealthTracker>,
}

/// The longest wait before retrying a temporary error.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl<R: Runtime> Runner<R> {
    /// A runner for `record` (its status is the agent's last observation).
    pub fn new(
        shared: Arc<Shared<R>>,
        ctx: TaskContext,
        record: Record,
        control: watch::Receiver<Control>,
        resolve_error: Option<String>,
    ) -> Runner<R> {
        Runner { shared, ctx, record, control, resolve_error, health: None }
    }

    fn status(&self) -> &TaskStatus {
        &self.record.status
    }

    fn set_status(&mut self, status: TaskStatus) {
        if status == self.record.status {
            return;
        }
        let id = &self.ctx.who.task_id;
        tracing::info!(task = %id, from = %self.record.status.state, to = %status.state,
            message = %status.message, err = %status.err, "task state");
        self.record.status = status;
        if let Err(e) = self.shared.store.save(&self.record) {
            tracing::warn!(task = %id, error = %e, "cannot save the task's record");
        }
        self.shared.outbox.push(id.clone(), self.record.status.clone());
    }

    fn apply(&mut self, op: Op, result: OpResult) {
        let now = self.shared.clock.now();
        match after_op(self.status(), op, result, now) {
            Ok(Some(s)) => self.set_status(s),
            Ok(None) => {}
            Err(e) => tracing::error!(task = %self.ctx.who.task_id, error = %e, "task state"),
        }
    }

    /// Finds the task again after an agent restart and brings the status up to what the
    /// runtime shows (a task that exited while the agent was away gets its exit code).
    pub async fn adopt(&mut self) {
        let state = self.status().state;
        if state < TaskState::Preparing || state.is_terminal() {
            return;
        }
        let found = match self.shared.rt.adopt(&self.ctx).await {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(task = %self.ctx.who.task_id, error = %e, "cannot look the task up");
                return;
            }
        };
        tracing::info!(task = %self.ctx.who.task_id, %state, ?found, "adopting");
        match found {
            Found::Absent | Found::Prepared if state >= TaskState::Starting => {
                let lost = OpError::fatal("the task was not found after the agent restarted");
                self.apply(Op::Wait, OpResult::Failed(lost));
            }
            Found::Absent | Found::Prepared => {}
            Found::Running { ports } => {
                let mut s = self.status().clone();
                s.ports = ports;
                self.set_status(s);
                if state == TaskState::Running
                    && let Ok(Some(p)) = policy(&*self.shared.rt, &self.ctx).await
                {
                    self.health = Some(HealthTracker::healthy(p, self.shared.clock.now()));
                }
            }
            Found::Exited(code) => self.apply(Op::Wait, OpResult::Exited(code)),
        }
    }

    /// Runs the task until it is removed or the agent stops.
    pub async fn run(mut self) {
        self.reject_if_unresolved();
        let mut backoff = Duration::from_secs(1);
        loop {
            let ctl = *self.control.borrow_and_update();
            if ctl.removed {
                self.remove().await;
                return;
            }
            match next_step(ctl.desired, self.status().state) {
                Step::Idle => {
                    if self.control.changed().await.is_err() {
                        return;
                    }
                }
                Step::Advance { state, message } => {
                    match advance(self.status(), state, message, self.shared.clock.now()) {
                        Ok(s) => self.set_status(s),
                        Err(e) => {
                            tracing::error!(task = %self.ctx.who.task_id, error = %e, "task state");
                            if self.control.changed().await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Step::Run(op) => {
                    let Some(result) = self.run_op(op).await else {
                        // The worker drops its end right after marking a task removed: the
                        // loop's top still reads that removal. Only a worker that let go
                        // without one (detached) ends the runner here.
                        let closed = self.control.has_changed().is_err();
                        if closed && !self.control.borrow().removed {
                            return;
                        }
                        continue;
                    };
                    let temporary = matches!(&result, OpResult::Failed(e) if e.temporary);
                    self.apply(op, result);
                    if temporary {
                        if !self.pause(backoff).await {
                            return;
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    } else {
                        backoff = Duration::from_secs(1);
                    }
                }
            }
        }
    }

    /// A task that cannot be resolved and never started is rejected with the reason.
    fn reject_if_unresolved(&mut self) {
        let Some(why) = self.resolve_error.take() else { return };
        let desired = self.control.borrow().desired;
        if self.status().state < TaskState::Starting && desired < TaskState::Shutdown {
            let mut s = self.status().clone();
            s.state = TaskState::Rejected;
            s.message = "resolving controller failed".into();
            s.err = why;
            s.timestamp = self.shared.clock.now();
            self.set_status(s);
        }
    }

    /// Waits `d`, or less when the control changes; `false` when the worker is gone.
    async fn pause(&mut self, d: Duration) -> bool {
        match tokio::time::timeout(d, self.control.changed()).await {
            Ok(r) => r.is_ok(),
            Err(_) => true,
        }
    }

    /// Runs one call; `None` when the control changed so that the call no longer applies
    /// (or the worker went away).
    async fn run_op(&mut self, op: Op) -> Option<OpResult> {
        let mut control = self.control.clone();
        let state = self.status().state;
        let interrupted = async move {
            loop {
                if control.changed().await.is_err() {
                    return;
                }
                let c = *control.borrow();
                if c.removed || next_step(c.desired, state) != Step::Run(op) {
                    return;
                }
            }
        };
        match op {
            Op::Start => {
                // Starting is never interrupted; only the health wait after it is.
                let ports = match self.shared.rt.start(&self.ctx).await {
                    Ok(p) => p,
                    Err(e) => return Some(OpResult::Failed(e.into())),
                };
                let mut s = self.status().clone();
                s.ports = ports;
                self.record.status = s;
                tokio::select! {
                    r = self.until_healthy() => Some(r),
                    () = interrupted => None,
                }
            }
            Op::Prepare => {
                let (progress, mut messages) = watch::channel(String::new());
                let (rt, ctx) = (self.shared.rt.clone(), self.ctx.clone());
                let prepare = rt.prepare(&ctx, &progress);
                tokio::pin!(prepare);
                tokio::pin!(interrupted);
                loop {
                    tokio::select! {
                        r = &mut prepare => return Some(r.map_or_else(|e| OpResult::Failed(e.into()), |()| OpResult::Done)),
                        () = &mut interrupted => return None,
                        Ok(()) = messages.changed() => {
                            let text = messages.borrow_and_update().clone();
                            self.progress(text);
                        }
                    }
                }
            }
            Op::Wait => tokio::select! {
                r = self.until_exit() => Some(r),
                () = interrupted => None,
            },
            Op::Stop => Some(match self.shared.rt.stop(&self.ctx).await {
                Ok(()) => OpResult::Done,
                Err(e) => OpResult::Failed(e.into()),
            }),
        }
    }

    /// Shows a prepare's progress as the task's message.
    fn progress(&mut self, text: String) {
        let message = if text.is_empty() { "preparing".to_owned() } else { text };
        if message != self.status().message {
            let mut s = self.status().clone();
            s.message = message;
            s.timestamp = self.shared.clock.now();
            self.set_status(s);
        }
    }

    async fn health_policy(&self) -> Result<Option<HealthPolicy>, OpError> {
        policy(&*self.shared.rt, &self.ctx).await.map_err(OpError::fatal)
    }

    /// After a start: done at once without a health check, else at the first healthy probe.
    async fn until_healthy(&mut self) -> OpResult {
        let p = match self.health_policy().await {
            Ok(Some(p)) => p,
            Ok(None) => return OpResult::Done,
            Err(e) => return OpResult::Failed(e),
        };
        let mut tracker = HealthTracker::new(p, self.shared.clock.now());
        let rt = &*self.shared.rt;
        let decided = tokio::select! {
            h = probe_until_changed(rt, &self.ctx, &mut tracker, &self.shared.clock) => Some(h),
            // As Docker's executor: a task that exits while starting failed with its exit
            // code, or, exiting 0, started and completed (the wait that follows sees it).
            exit = rt.wait(&self.ctx) => return match exit {
                Ok(0) => OpResult::Done,
                Ok(code) => OpResult::Failed(exit_error(code)),
                Err(e) => OpResult::Failed(e.into()),
            },
        };
        let healthy = decided == Some(Health::Healthy);
        self.health = Some(tracker);
        if healthy { OpResult::Done } else { self.stop_unhealthy().await }
    }

    /// While running: the exit code, or a stop once the health check fails.
    async fn until_exit(&mut self) -> OpResult {
        let rt = &*self.shared.rt;
        let Some(tracker) = self.health.as_mut() else {
            return match rt.wait(&self.ctx).await {
                Ok(code) => OpResult::Exited(code),
                Err(e) => OpResult::Failed(e.into()),
            };
        };
        let unhealthy = tokio::select! {
            exit = rt.wait(&self.ctx) => return match exit {
                Ok(code) => OpResult::Exited(code),
                Err(e) => OpResult::Failed(e.into()),
            },
            h = probe_until_changed(rt, &self.ctx, tracker, &self.shared.clock) => h,
        };
        debug_assert_eq!(unhealthy, Health::Unhealthy);
        self.stop_unhealthy().await
    }

    async fn stop_unhealthy(&mut self) -> OpResult {
        let last = self.health.as_ref().map(|t| t.last_output().to_owned()).unwrap_or_default();
        tracing::info!(task = %self.ctx.who.task_id, output = %last, "unhealthy: stopping");
        let mut e = OpError::fatal(unhealthy_error(self.shared.rt.name()));
        // Said at once, before the stop and its grace period: a RUNNING task with an error
        // takes no new connections from the routing mesh (`reconciler_api::mesh`).
        if self.status().state == TaskState::Running {
            let mut s = self.status().clone();
            s.err.clone_from(&e.message);
            s.message = "unhealthy: stopping".into();
            self.set_status(s);
        }
        let rt = &*self.shared.rt;
        if let Err(err) = rt.stop(&self.ctx).await {
            tracing::warn!(task = %self.ctx.who.task_id, error = %err, "stopping an unhealthy task");
        }
        e.exit_code = rt.wait(&self.ctx).await.ok();
        OpResult::Failed(e)
    }

    /// The task is no longer assigned: stop it, remove what it left, forget it.
    async fn remove(&mut self) {
        let id = self.ctx.who.task_id.clone();
        let rt = &*self.shared.rt;
        let mut delay = Duration::from_millis(200);
        for attempt in 0..5 {
            match rt.remove(&self.ctx).await {
                Ok(()) => break,
                Err(e) if e.temporary && attempt < 4 => {
                    tracing::warn!(task = %id, error = %e, "removing the task; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::error!(task = %id, error = %e, "cannot remove the task");
                    break;
                }
            }
        }
        if let Err(e) = self.shared.store.remove(&id) {
            tracing::warn!(task = %id, error = %e, "cannot forget the task's record");
        }
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
