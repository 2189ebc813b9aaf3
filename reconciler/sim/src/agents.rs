//! Simulated agents: each follows its tasks' desired states (swarmkit `exec.Do`) with the
//! timings of the workload the task's image names, including the health-check gate of a
//! container with a health check (moby's executor: STARTING until the first healthy check,
//! FAILED after `retries` failed ones).

use reconciler_types::{HealthConfig, MonoTime, Task, TaskState};
use std::collections::BTreeSet;
use std::time::Duration;

/// Docker's default health-check interval.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);

/// How a task running an image behaves once told to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Workload {
    /// From desired RUNNING to started (a slow start): RUNNING then, or STARTING when the task
    /// has a health check.
    pub start_after: Duration,
    /// Exit this long after running, with this code (0 = COMPLETE, else FAILED).
    pub exit_after: Option<(Duration, i32)>,
    /// Fail this long after being told to run, never reaching RUNNING.
    pub fail_before_running: Option<Duration>,
    /// From desired SHUTDOWN to observed SHUTDOWN (the stop grace period when SIGTERM is
    /// ignored).
    pub stop_after: Duration,
    /// Every health check fails (with a health check: FAILED after `retries` checks).
    pub unhealthy: bool,
    /// The failures above (`exit_after`, `fail_before_running`, `unhealthy`) happen only to
    /// tasks of these slots (all slots when `None`); the others run healthy.
    pub only_slots: Option<BTreeSet<u64>>,
}

impl Workload {
    /// This workload as it behaves for `task`: with its failures, or healthy outside
    /// `only_slots`.
    pub fn for_task(&self, task: &Task) -> Workload {
        match &self.only_slots {
            Some(slots) if !slots.contains(&task.slot) => Workload {
                exit_after: None,
                fail_before_running: None,
                unhealthy: false,
                ..self.clone()
            },
            _ => self.clone(),
        }
    }
}

/// A state an agent reports at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// When.
    pub at: MonoTime,
    /// The task.
    pub task: reconciler_types::TaskId,
    /// The observed state.
    pub state: TaskState,
    /// The exit code, for an exit.
    pub exit_code: Option<i32>,
}

/// The task's health check, unless it has none or it is disabled (`NONE`).
fn health_check(task: &Task) -> Option<&HealthConfig> {
    let h = task.spec.container_spec.healthcheck.as_ref()?;
    match h.test.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some(_) => Some(h),
    }
}

/// What the task's agent reports about it now that its desired or observed state changed.
pub fn react(task: &Task, w: &Workload, now: MonoTime) -> Vec<Report> {
    let w = &w.for_task(task);
    let report = |at: MonoTime, state: TaskState, exit_code: Option<i32>| Report {
        at,
        task: task.id.clone(),
        state,
        exit_code,
    };
    let observed = task.status.state;
    if observed.is_terminal() || observed < TaskState::Assigned {
        return Vec::new();
    }
    if task.desired_state >= TaskState::Shutdown {
        let at = if observed < TaskState::Starting { now } else { now + w.stop_after };
        return vec![report(at, TaskState::Shutdown, None)];
    }
    if task.desired_state == TaskState::Ready && observed < TaskState::Ready {
        return vec![report(now, TaskState::Ready, None)];
    }
    if task.desired_state != TaskState::Running || observed >= TaskState::Starting {
        return Vec::new();
    }
    if let Some(d) = w.fail_before_running {
        return vec![report(now + d, TaskState::Failed, Some(1))];
    }
    let started = now + w.start_after;
    let Some(h) = health_check(task) else {
        return vec![report(started, TaskState::Running, None)];
    };
    let interval = h.interval.unwrap_or(DEFAULT_HEALTH_INTERVAL);
    let checks = if w.unhealthy { h.retries.unwrap_or(3).max(1) } else { 1 };
    let decided = started + interval * u32::try_from(checks).unwrap_or(u32::MAX);
    let end = if w.unhealthy {
        report(decided, TaskState::Failed, Some(1))
    } else {
        report(decided, TaskState::Running, None)
    };
    vec![report(started, TaskState::Starting, None), end]
}

/// What a task that just reached RUNNING does next: exit after a while, or nothing.
pub fn after_running(task: &Task, w: &Workload, now: MonoTime) -> Option<Report> {
    let (after, code) = w.for_task(task).exit_after?;
    let state = if code == 0 { TaskState::Complete } else { TaskState::Failed };
    Some(Report { at: now + after, task: task.id.clone(), state, exit_code: Some(code) })
}
