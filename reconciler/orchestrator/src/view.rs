//! The snapshot the orchestrators read ([`ClusterView`]) and the changes they answer
//! ([`StoreChange`]), with the pure `apply` that the store (and the simulator) run.

use crate::rollout::Rollout;
use crate::service::ServiceRecord;
use crate::slot::{SlotKey, TaskIdAllocator};
use reconciler_types::{
    MonoTime, Node, NodeId, NodeState, ServiceId, Task, TaskId, TaskState, UpdateStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cluster-wide orchestration settings (`docker swarm update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestrationSettings {
    /// Tasks kept per slot, including the live one (`--task-history-limit`, default 5;
    /// negative = never prune).
    pub task_history_limit: i64,
}

impl Default for OrchestrationSettings {
    fn default() -> Self {
        OrchestrationSettings { task_history_limit: 5 }
    }
}

/// A replacement task held at desired READY until its restart delay elapsed and the task it
/// replaces has stopped (swarmkit `restart.go`, `DelayStart`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelayedStart {
    /// Not before this time (the restart delay).
    pub not_before: MonoTime,
    /// The old task to wait for, if it was still running.
    pub wait_for: Option<TaskId>,
    /// Start anyway at this time even if the old task never reports (60 s).
    pub deadline: MonoTime,
}

/// Restarts recorded in one slot at one spec version (only kept when `max_attempts > 0`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestartHistory {
    /// The spec version the restarts were made at; another version means no history.
    pub spec_version: u64,
    /// When each replacement was created.
    pub times: Vec<MonoTime>,
}

/// Everything the orchestrators look at. Every map is ordered so that passes are
/// deterministic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterView {
    /// Nodes by id.
    pub nodes: BTreeMap<NodeId, Node>,
    /// Services by id.
    pub services: BTreeMap<ServiceId, ServiceRecord>,
    /// Tasks by id.
    pub tasks: BTreeMap<TaskId, Task>,
    /// Rollout runs by service.
    pub rollouts: BTreeMap<ServiceId, Rollout>,
    /// Held replacement tasks.
    pub delayed: BTreeMap<TaskId, DelayedStart>,
    /// Restart history per service and slot.
    pub restarts: BTreeMap<ServiceId, BTreeMap<SlotKey, RestartHistory>>,
    /// Settings.
    pub settings: OrchestrationSettings,
    /// The task-id allocator.
    pub ids: TaskIdAllocator,
}

/// One change to the cluster state, as an orchestrator decides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreChange {
    /// Create a task.
    CreateTask(Box<Task>),
    /// Change a task's desired state.
    SetDesired {
        /// The task.
        task: TaskId,
        /// The new desired state.
        state: TaskState,
    },
    /// The scheduler placed a task (observed ASSIGNED).
    Assign {
        /// The task.
        task: TaskId,
        /// The node.
        node: NodeId,
        /// `scheduler assigned task to node` or `… confirmed … preassigned node`.
        message: String,
    },
    /// A manager component sets a task's observed state (scheduler, constraint enforcer).
    SetObserved {
        /// The task.
        task: TaskId,
        /// The state.
        state: TaskState,
        /// The message.
        message: String,
        /// The error (`no suitable node (…)`, `assigned node no longer meets constraints`).
        err: String,
        /// When.
        at: MonoTime,
    },
    /// Delete a task record.
    DeleteTask(TaskId),
    /// Set a service's update status.
    SetUpdateStatus {
        /// The service.
        service: ServiceId,
        /// The status.
        status: Option<UpdateStatus>,
    },
    /// Roll a service back automatically (Spec ← PreviousSpec, PreviousSpec ← none).
    AutoRollback {
        /// The service.
        service: ServiceId,
        /// `rollback_started` with its message.
        status: UpdateStatus,
    },
    /// Store a rollout run.
    PutRollout(Box<Rollout>),
    /// Forget a service's rollout run.
    RemoveRollout(ServiceId),
    /// Hold a replacement task until it may start.
    DelayStart {
        /// The held task.
        task: TaskId,
        /// The conditions.
        delay: DelayedStart,
    },
    /// The held task was started (or is gone).
    ClearDelay(TaskId),
    /// Record a restart in a slot.
    RecordRestart {
        /// The service.
        service: ServiceId,
        /// The slot.
        slot: SlotKey,
        /// The spec version of the replacement.
        spec_version: u64,
        /// When the replacement was created.
        at: MonoTime,
    },
}

impl ClusterView {
    /// Applies one change. Unknown ids are ignored (the change raced with a deletion).
    pub fn apply(&mut self, change: &StoreChange) {
        match change {
            StoreChange::CreateTask(_)
            | StoreChange::SetDesired { .. }
            | StoreChange::Assign { .. }
            | StoreChange::SetObserved { .. }
            | StoreChange::DeleteTask(_) => self.apply_task_change(change),
            StoreChange::SetUpdateStatus { service, status } => {
                if let Some(s) = self.services.get_mut(service) {
                    s.update_status.clone_from(status);
                }
            }
            StoreChange::AutoRollback { service, status } => {
                if let Some(s) = self.services.get_mut(service) {
                    s.auto_rollback(status.clone());
                }
            }
            StoreChange::PutRollout(r) => {
                self.rollouts.insert(r.service().clone(), (**r).clone());
            }
            StoreChange::RemoveRollout(id) => {
                self.rollouts.remove(id);
            }
            StoreChange::DelayStart { task, delay } => {
                self.delayed.insert(task.clone(), delay.clone());
            }
            StoreChange::ClearDelay(task) => {
                self.delayed.remove(task);
            }
            StoreChange::RecordRestart { service, slot, spec_version, at } => {
                let h = self
                    .restarts
                    .entry(service.clone())
                    .or_default()
                    .entry(slot.clone())
                    .or_default();
                if h.spec_version != *spec_version {
                    *h = RestartHistory { spec_version: *spec_version, times: Vec::new() };
                }
                h.times.push(*at);
            }
        }
    }

    fn apply_task_change(&mut self, change: &StoreChange) {
        match change {
            StoreChange::CreateTask(task) => {
                let n = task.id.as_str().strip_prefix('t').and_then(|n| n.parse::<u64>().ok());
                if let Some(n) = n {
                    self.ids.next = self.ids.next.max(n.saturating_add(1));
                }
                self.tasks.insert(task.id.clone(), (**task).clone());
            }
            StoreChange::SetDesired { task, state } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.desired_state = *state;
                }
            }
            StoreChange::Assign { task, node, message } => {
                if let Some(t) = self.tasks.get_mut(task) {
                    t.node_id = Some(node.clone());
                    t.status.state = t.status.state.max(TaskState::Assigned);
                    t.status.message.clone_from(message);
                    t.status.err.clear();
                }
            }
            StoreChange::SetObserved { task, state, message, err, at } => {
                if let Some(t) = self.tasks.get_mut(task)
                    && *state >= t.status.state
                {
                    t.status.state = *state;
                    t.status.message.clone_from(message);
                    t.status.err.clone_from(err);
                    t.status.timestamp = *at;
                }
            }
            StoreChange::DeleteTask(id) => {
                self.tasks.remove(id);
                self.delayed.remove(id);
            }
            _ => {}
        }
    }

    /// Applies changes in order.
    pub fn apply_all(&mut self, changes: &[StoreChange]) {
        for c in changes {
            self.apply(c);
        }
    }

    /// Whether a task's node is down or gone (it will never report again).
    pub fn node_lost(&self, node: Option<&NodeId>) -> bool {
        match node {
            None => false,
            Some(id) => self.nodes.get(id).is_none_or(|n| n.status.state == NodeState::Down),
        }
    }

    /// The tasks of a service, in id order.
    pub fn service_tasks<'a>(
        &'a self,
        service: &'a ServiceId,
    ) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks.values().filter(move |t| &t.service_id == service)
    }
}
