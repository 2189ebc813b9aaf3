//! The agent's task state machine (`docs/swarm-semantics.md` §1.3), as swarmkit's
//! `exec.Do` split in two: [`next_step`] decides what to do from the desired and observed
//! states, and [`after_op`] / [`advance`] compute the status that follows. Neither panics: a
//! transition that would move a task backwards is an [`InvalidTransition`] error.
//!
//! ```text
//!  NEW/PENDING/ASSIGNED ─► ACCEPTED ─► PREPARING ─prepare─► READY ─► STARTING ─start─► RUNNING
//!        (only while observed < desired: a task desired READY is prepared, not started)   │
//!                                                                                      wait
//!  any state below COMPLETE ──stop (desired ≥ SHUTDOWN)──► SHUTDOWN        COMPLETE / FAILED
//!  a fatal error: REJECTED before STARTING, FAILED from STARTING on
//! ```

use reconciler_types::{MonoTime, TaskState, TaskStatus};
use std::fmt;

/// A call into the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Make everything the task needs (image, files, ports) so that starting is immediate.
    Prepare,
    /// Start the task; returns once it runs (and, with a health check, is healthy).
    Start,
    /// Wait until the task exits (or becomes unhealthy).
    Wait,
    /// Stop the task (stop signal, then kill after the grace period).
    Stop,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Prepare => "prepare",
            Op::Start => "start",
            Op::Wait => "wait",
            Op::Stop => "stop",
        })
    }
}

/// What to do next for a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing until the desired state changes.
    Idle,
    /// Move to `state` and report it; no runtime call.
    Advance {
        /// The next state.
        state: TaskState,
        /// Swarm's message for it.
        message: &'static str,
    },
    /// Call the runtime, then feed the result to [`after_op`].
    Run(Op),
}

/// Decides the next step of a task (swarmkit's `Do`, without the call).
#[must_use]
pub fn next_step(desired: TaskState, observed: TaskState) -> Step {
    if desired >= TaskState::Shutdown {
        return if observed >= TaskState::Complete { Step::Idle } else { Step::Run(Op::Stop) };
    }
    if observed > desired {
        return Step::Idle;
    }
    // These run to completion once entered, whatever the desired state.
    match observed {
        TaskState::Preparing => return Step::Run(Op::Prepare),
        TaskState::Starting => return Step::Run(Op::Start),
        TaskState::Running => return Step::Run(Op::Wait),
        _ => {}
    }
    // The "pause" states move only while below the desired state.
    if observed >= desired {
        return Step::Idle;
    }
    match observed {
        TaskState::New | TaskState::Pending | TaskState::Assigned => {
            Step::Advance { state: TaskState::Accepted, message: "accepted" }
        }
        TaskState::Accepted => Step::Advance { state: TaskState::Preparing, message: "preparing" },
        TaskState::Ready => Step::Advance { state: TaskState::Starting, message: "starting" },
        _ => Step::Idle,
    }
}

/// Why a runtime call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// What went wrong, for `service ps`'s ERROR column.
    pub message: String,
    /// Worth retrying without a state change (the engine is restarting, a pull timed out).
    pub temporary: bool,
    /// The task's exit code, when it had one (stopped after an unhealthy check, say).
    pub exit_code: Option<i32>,
}

impl OpError {
    /// A fatal error: the task is rejected (before starting) or failed.
    pub fn fatal(message: impl Into<String>) -> OpError {
        OpError { message: message.into(), temporary: false, exit_code: None }
    }

    /// A temporary error: retried later.
    pub fn temporary(message: impl Into<String>) -> OpError {
        OpError { message: message.into(), temporary: true, exit_code: None }
    }
}

/// The result of a runtime call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Prepare, start or stop succeeded.
    Done,
    /// Wait saw the task exit with this code.
    Exited(i32),
    /// The call failed.
    Failed(OpError),
}

/// A computed status would move a task backwards (a bug in the caller, reported, not
/// panicked on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid task state transition {from} -> {to} ({context})")]
pub struct InvalidTransition {
    /// The state the task is in.
    pub from: TaskState,
    /// The state it would move to.
    pub to: TaskState,
    /// What asked for it.
    pub context: String,
}

/// The status after an [`Step::Advance`].
///
/// # Errors
/// [`InvalidTransition`] when `state` is below the current one.
pub fn advance(
    current: &TaskStatus,
    state: TaskState,
    message: &str,
    now: MonoTime,
) -> Result<TaskStatus, InvalidTransition> {
    transition(current, state, message, now, "advance")
}

/// The status after a runtime call, or `None` when nothing changed. A temporary error
/// keeps the state but records the error, so `service ps` shows why the task waits.
///
/// # Errors
/// [`InvalidTransition`] when the result would move the task backwards (a `Wait` result
/// for a task that is not running, say).
pub fn after_op(
    current: &TaskStatus,
    op: Op,
    result: OpResult,
    now: MonoTime,
) -> Result<Option<TaskStatus>, InvalidTransition> {
    let next = match (op, result) {
        (_, OpResult::Failed(e)) => failed(current, op, e, now)?,
        (Op::Prepare, OpResult::Done) => {
            transition(current, TaskState::Ready, "prepared", now, op)?
        }
        (Op::Start, OpResult::Done) => transition(current, TaskState::Running, "started", now, op)?,
        (Op::Stop, OpResult::Done) => {
            transition(current, TaskState::Shutdown, "shutdown", now, op)?
        }
        (Op::Wait, OpResult::Exited(0)) => {
            let mut s = transition(current, TaskState::Complete, "finished", now, op)?;
            s.exit_code = Some(0);
            s
        }
        (Op::Wait, OpResult::Exited(code)) => failed(current, op, exit_error(code), now)?,
        (Op::Wait, OpResult::Done) | (_, OpResult::Exited(_)) => {
            return Err(InvalidTransition {
                from: current.state,
                to: current.state,
                context: format!("{op} answered an unexpected result"),
            });
        }
    };
    Ok((next != *current).then_some(next))
}

/// Docker's error for a task that exited with a non-zero code.
pub fn exit_error(code: i32) -> OpError {
    OpError {
        message: format!("task: non-zero exit ({code})"),
        temporary: false,
        exit_code: Some(code),
    }
}

fn failed(
    current: &TaskStatus,
    op: Op,
    e: OpError,
    now: MonoTime,
) -> Result<TaskStatus, InvalidTransition> {
    let mut next = current.clone();
    next.err = e.message;
    if let Some(code) = e.exit_code {
        next.exit_code = Some(code);
    }
    if !e.temporary {
        let to = if current.state < TaskState::Starting {
            TaskState::Rejected
        } else {
            TaskState::Failed
        };
        if to < current.state {
            return Err(InvalidTransition { from: current.state, to, context: op.to_string() });
        }
        next.state = to;
    }
    if next != *current {
        next.timestamp = now;
    }
    Ok(next)
}

fn transition(
    current: &TaskStatus,
    to: TaskState,
    message: &str,
    now: MonoTime,
    context: impl fmt::Display,
) -> Result<TaskStatus, InvalidTransition> {
    if to < current.state {
        return Err(InvalidTransition { from: current.state, to, context: context.to_string() });
    }
    let mut next = current.clone();
    next.state = to;
    message.clone_into(&mut next.message);
    next.err.clear();
    if next != *current {
        next.timestamp = now;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    fn status(state: TaskState) -> TaskStatus {
        TaskStatus { state, message: "m".into(), ..TaskStatus::default() }
    }

    #[test]
    fn a_task_walks_from_assigned_to_running_when_desired_running() {
        let mut s = status(Assigned);
        let now = MonoTime::from_secs(7);
        let mut seen = vec![];
        loop {
            match next_step(Running, s.state) {
                Step::Idle => break,
                Step::Advance { state, message } => s = advance(&s, state, message, now).unwrap(),
                Step::Run(Op::Wait) => break,
                Step::Run(op) => s = after_op(&s, op, OpResult::Done, now).unwrap().unwrap(),
            }
            seen.push((s.state, s.message.clone()));
        }
        let states: Vec<_> = seen.iter().map(|(st, m)| format!("{st}:{m}")).collect();
        assert_eq!(
            states,
            [
                "accepted:accepted",
                "preparing:preparing",
                "ready:prepared",
                "starting:starting",
                "running:started"
            ]
        );
        assert_eq!(s.timestamp, now);
    }

    #[test]
    fn a_task_desired_ready_is_prepared_but_not_started() {
        assert_eq!(
            next_step(Ready, Accepted),
            Step::Advance { state: Preparing, message: "preparing" }
        );
        assert_eq!(next_step(Ready, Preparing), Step::Run(Op::Prepare));
        assert_eq!(next_step(Ready, Ready), Step::Idle);
        assert_eq!(
            next_step(Running, Ready),
            Step::Advance { state: Starting, message: "starting" }
        );
    }

    #[test]
    fn states_past_the_desired_one_wait_and_entered_ones_run_to_completion() {
        // As in swarmkit: observed beyond desired is a pause; otherwise PREPARING, STARTING
        // and RUNNING run their call even when the desired state equals them.
        assert_eq!(next_step(Ready, Starting), Step::Idle);
        assert_eq!(next_step(Starting, Starting), Step::Run(Op::Start));
        assert_eq!(next_step(Running, Running), Step::Run(Op::Wait));
        assert_eq!(next_step(Preparing, Preparing), Step::Run(Op::Prepare));
    }

    #[test]
    fn shutdown_stops_anything_not_yet_finished_and_ignores_finished_tasks() {
        for observed in [Assigned, Preparing, Ready, Starting, Running] {
            assert_eq!(next_step(Shutdown, observed), Step::Run(Op::Stop), "{observed}");
            assert_eq!(next_step(Remove, observed), Step::Run(Op::Stop), "{observed}");
        }
        for observed in [Complete, Shutdown, Failed, Rejected] {
            assert_eq!(next_step(Shutdown, observed), Step::Idle, "{observed}");
        }
        let s = after_op(&status(Running), Op::Stop, OpResult::Done, MonoTime::ZERO).unwrap();
        assert_eq!(s.unwrap().state, Shutdown);
    }

    #[test]
    fn exit_codes_decide_complete_or_failed() {
        let ok = after_op(&status(Running), Op::Wait, OpResult::Exited(0), MonoTime::ZERO);
        let ok = ok.unwrap().unwrap();
        assert_eq!((ok.state, ok.exit_code, ok.message.as_str()), (Complete, Some(0), "finished"));
        let bad = after_op(&status(Running), Op::Wait, OpResult::Exited(3), MonoTime::ZERO);
        let bad = bad.unwrap().unwrap();
        assert_eq!((bad.state, bad.exit_code), (Failed, Some(3)));
        assert_eq!(bad.err, "task: non-zero exit (3)");
    }

    #[test]
    fn a_fatal_error_rejects_before_starting_and_fails_after() {
        let e = || OpResult::Failed(OpError::fatal("no such image"));
        let r = after_op(&status(Preparing), Op::Prepare, e(), MonoTime::ZERO).unwrap().unwrap();
        assert_eq!((r.state, r.err.as_str()), (Rejected, "no such image"));
        let f = after_op(&status(Starting), Op::Start, e(), MonoTime::ZERO).unwrap().unwrap();
        assert_eq!(f.state, Failed);
    }

    #[test]
    fn a_temporary_error_keeps_the_state_and_shows_the_error() {
        let t = OpResult::Failed(OpError::temporary("engine restarting"));
        let s = after_op(&status(Preparing), Op::Prepare, t, MonoTime::from_secs(3));
        let s = s.unwrap().unwrap();
        assert_eq!(
            (s.state, s.err.as_str(), s.timestamp),
            (Preparing, "engine restarting", MonoTime::from_secs(3))
        );
        // The same error again changes nothing.
        let again = OpResult::Failed(OpError::temporary("engine restarting"));
        assert_eq!(after_op(&s, Op::Prepare, again, MonoTime::from_secs(9)).unwrap(), None);
    }

    #[test]
    fn backwards_transitions_are_errors_not_panics() {
        let e = after_op(&status(Complete), Op::Prepare, OpResult::Done, MonoTime::ZERO);
        assert_eq!(e.unwrap_err().to, Ready);
        assert!(advance(&status(Running), Accepted, "accepted", MonoTime::ZERO).is_err());
        assert!(
            after_op(&status(Running), Op::Start, OpResult::Exited(1), MonoTime::ZERO).is_err()
        );
    }
}
