//! The rolling update (and rollback) of one service as a deterministic state machine.
//!
//! This is swarmkit's `update/updater.go` with its goroutines, timers and store writes turned
//! into data: a [`Rollout`] takes [`Input`]s (time, observed task states) and answers
//! [`Command`]s (create a task, change a desired state, set the update status, roll back,
//! wake me at). It is serializable and lives in the store, so a new leader resumes it.
//!
//! ```text
//!            start(slots)                    Tick / TaskObserved / OldTaskGone
//!   Service ───────────────► Rollout ◄──────────────────────────────────────── driver
//!                               │  Vec<Command>: CreateTask, SetDesired, SetStatus,
//!                               └──────────────► Rollback, WakeAt ──────────► store
//! ```
//!
//! Per dirty slot a worker: creates the new task (stop-first: shuts the old ones down and
//! starts the new one once an old one stopped, or after 60 s; start-first: starts it at once
//! and shuts the old ones down when it runs), waits with no timeout for it to reach RUNNING
//! (or fail), then sleeps `delay`. `parallelism` workers run at once. When every slot is
//! done the run watches failures for the monitoring tail and completes.
//!
//! Deliberate deviations from swarmkit, each toward a rollout that cannot hang or double up:
//! * a failure is judged at the time it was observed (`at`), not at the time the updater
//!   happens to process it (docs/swarm-semantics.md §6.4 quirk);
//! * a new task whose node is lost counts as ended at once (Swarm waits until it is
//!   ORPHANED 24 h later, which counts the same way);
//! * a queued slot that changed meanwhile ([`Input::SlotRefreshed`]) is taken as it is
//!   now, and dropped when it is no longer dirty (Swarm uses the snapshot from the start);
//! * S26 (docs/swarm-semantics.md §12): when a start-first update paused on its new task's
//!   failure and the restart supervisor's retry of the new spec later runs, the old task of
//!   that slot is shut down (the orchestrator's `retire_outdated_siblings`); Swarm keeps both
//!   running until the next update. Tested by `s26_deviation_…` in the simulator's scenarios;
//! * a run's decision to start a held task is carried out only while the task is still held
//!   at READY (the run decides from its snapshots; a task that ended or was told to stop
//!   meanwhile is never told to run again), as swarmkit's `StartNow` does.

mod machine;
pub mod policy;
mod worker;

pub use machine::{Rollout, RolloutTarget};

use crate::slot::SlotKey;
use reconciler_types::{MonoTime, TaskId, TaskState, UpdateStatus};
use serde::{Deserialize, Serialize};

/// Whether a run brings the service to its new spec or back to its previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// A normal update (uses `update_config`).
    Update,
    /// A rollback (uses the restored spec's `rollback_config`; never rolls back itself).
    Rollback,
}

/// A task of a slot, as the rollout needs to see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotTask {
    /// The task.
    pub id: TaskId,
    /// Whether it already runs the target spec (not dirty).
    pub clean: bool,
    /// Its desired state.
    pub desired: TaskState,
    /// Its observed state.
    pub observed: TaskState,
    /// Whether no agent will report on it again: its node is down or gone, or it was never
    /// placed on one.
    pub node_down: bool,
}

impl SlotTask {
    /// Still running or about to: observed ≤ RUNNING on a live node.
    pub fn is_live(&self) -> bool {
        !self.observed.is_terminal() && !self.node_down
    }
}

/// The updatable tasks of one slot (desired ≤ RUNNING, or the exhausted last task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSnapshot {
    /// Which slot.
    pub slot: SlotKey,
    /// Its tasks.
    pub tasks: Vec<SlotTask>,
}

impl SlotSnapshot {
    /// A slot needs work when it has more than one task or its only task is dirty.
    pub fn is_dirty(&self) -> bool {
        match self.tasks.as_slice() {
            [] => false,
            [only] => !only.clean,
            _ => true,
        }
    }
}

/// What happened, fed to [`Rollout::handle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Time passed (a wake-up the rollout asked for, or any later moment).
    Tick {
        /// The current time.
        now: MonoTime,
    },
    /// An agent (or a manager component) reported a task's observed state.
    TaskObserved {
        /// The task.
        task: TaskId,
        /// Its new observed state.
        state: TaskState,
        /// When it was observed.
        at: MonoTime,
    },
    /// A task's node went down or was removed: the task will never report again.
    OldTaskGone {
        /// The task.
        task: TaskId,
        /// When the node was lost.
        at: MonoTime,
    },
    /// A slot changed outside the rollout (a restart created a task in it): refresh the
    /// queued copy so the worker that takes it acts on what is there.
    SlotRefreshed {
        /// The slot as it is now.
        slot: SlotSnapshot,
    },
    /// The service changed (or was deleted): stop at once, leaving tasks as they are.
    Cancel,
}

/// What the rollout wants done, in order. The driver turns them into store writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Create a task of the target spec in a slot (global: on the slot's node).
    CreateTask {
        /// The slot.
        slot: SlotKey,
        /// The new task's id.
        task: TaskId,
        /// Its desired state (READY = hold until the old task stopped).
        desired: TaskState,
    },
    /// Change a task's desired state (SHUTDOWN an old task, RUNNING a held one).
    SetDesired {
        /// The task.
        task: TaskId,
        /// The new desired state.
        state: TaskState,
    },
    /// Set the service's update status.
    SetStatus(UpdateStatus),
    /// Roll the service back automatically: `Spec ← PreviousSpec`, `PreviousSpec ← none`,
    /// and set this status (`rollback_started`). A new run in rollback mode follows.
    Rollback(UpdateStatus),
    /// Call [`Rollout::handle`] with a `Tick` at this time (or later).
    WakeAt(MonoTime),
}
