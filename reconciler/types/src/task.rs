//! Tasks and their states. States are ordered exactly as Swarm orders them (with the same
//! numeric values), and an observed state only ever moves forward.

use crate::ids::{NodeId, ServiceId, TaskId};
use crate::spec::{PortConfig, TaskSpec};
use crate::time::MonoTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A task's state, with Swarm's values (`api/types.proto`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Created by an orchestrator.
    #[default]
    New = 0,
    /// Resources allocated; waiting for the scheduler.
    Pending = 64,
    /// Placed on a node.
    Assigned = 192,
    /// Accepted by the node's agent.
    Accepted = 256,
    /// Being prepared (image, mounts, networks).
    Preparing = 320,
    /// Prepared; waiting for permission to start.
    Ready = 384,
    /// Starting (or waiting for its first healthy check).
    Starting = 448,
    /// Running (and healthy when it has a health check).
    Running = 512,
    /// Exited with code 0.
    Complete = 576,
    /// Stopped because its desired state asked for it.
    Shutdown = 640,
    /// Failed at or after starting.
    Failed = 704,
    /// Failed before starting.
    Rejected = 768,
    /// Desired only: delete once down.
    Remove = 800,
    /// On a node that has been down too long.
    Orphaned = 832,
}

impl TaskState {
    /// A state past RUNNING: the task will not run again.
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }

    /// Docker's lowercase name of the state, as `docker service ps` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What was last observed of a task.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The observed state.
    pub state: TaskState,
    /// When it was observed.
    pub timestamp: MonoTime,
    /// A short human message ("scheduler assigned task to node").
    pub message: String,
    /// The error, for failed and rejected tasks.
    pub err: String,
    /// The exit code, once exited.
    pub exit_code: Option<i32>,
    /// Where the task can be reached on its node (Swarm's `PortStatus`): for each port of the
    /// service's endpoint, the node port the runtime gave it in `published_port` (the
    /// process runtime allocates one per task; the docker runtime publishes the container
    /// port). The routing mesh forwards a service's published ports to these.
    #[serde(default)]
    pub ports: Vec<PortConfig>,
}

/// One task: one run of a service's task template in a slot (or on a node, for global
/// services).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The service it belongs to.
    pub service_id: ServiceId,
    /// Slot number, 1.. for replicated services, 0 for global ones.
    pub slot: u64,
    /// The node it is placed on, once scheduled (global tasks are created with it).
    pub node_id: Option<NodeId>,
    /// The spec version of the service this task was made from.
    pub spec_version: u64,
    /// The template it runs.
    pub spec: TaskSpec,
    /// What the managers want of it.
    pub desired_state: TaskState,
    /// What was last observed.
    pub status: TaskStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_are_ordered_as_in_swarm() {
        assert!(TaskState::New < TaskState::Pending);
        assert!(TaskState::Running < TaskState::Complete);
        assert!(TaskState::Failed.is_terminal());
        assert!(!TaskState::Running.is_terminal());
        assert_eq!(TaskState::Rejected as u32, 768);
    }
}
