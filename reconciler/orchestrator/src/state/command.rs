//! What is written through Raft ([`StoreCommand`]) and what applying it answers
//! ([`StoreResponse`]). A write that depends on something read carries an [`Expect`], checked
//! against the record's version (the log index that last wrote it) when the command applies.
//!
//! Three families of writers use them:
//! * the API (operators): nodes, services (create, update, rollback, remove), configs,
//!   secrets, networks, settings; Swarm's rules for these are applied inside `apply`;
//! * the dispatcher (agents): a node's description and status, a task's observed status;
//! * the leader's orchestrator: one [`StoreCommand::Orchestrate`] batch per pass, fenced so
//!   that a manager that lost leadership cannot write after its successor.

use super::records::{ClusterInfo, ClusterSettings, ConfigRecord, DelayedStart, SecretRecord};
use crate::rollout::Rollout;
use crate::slot::SlotKey;
use reconciler_types::{
    MonoTime, NetworkSpec, Node, NodeDescription, NodeId, NodeRole, NodeStatus, ServiceId,
    ServiceSpec, StackName, Task, TaskId, TaskState, TaskStatus, UpdateStatus,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A compare-and-set condition on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// No condition (a blind write; only for writes that depend on nothing read).
    #[default]
    Any,
    /// The record must not exist (a create).
    Absent,
    /// The record must exist at exactly this version.
    Version(u64),
}

/// What an orchestrator batch expects of the cluster, checked before any of its commands:
/// the writer's epoch (a new leader claims a higher one with its first batch) and the task-id
/// counter its pass allocated from. A batch whose fence does not hold is refused whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The writer's epoch (the Raft term it leads in).
    pub epoch: u64,
    /// This batch claims `epoch` (a new leader's first batch): it must be higher than the
    /// cluster's; otherwise it must be equal.
    pub claim: bool,
    /// The task-id counter the pass allocated from; it must still be the cluster's.
    pub next_task_id: u64,
    /// How many task ids the pass allocated (the counter moves by this much).
    pub task_ids: u64,
}

/// One write to the cluster state. Applied in log order by every manager.
///
/// Adjacently tagged (`{"op": …, "args": {…}}`, the tag first): serde reads the arguments
/// straight into the variant, where an internally tagged enum buffers each command (and an
/// orchestrator entry's 200 commands inside it) before reading it again; the log, replication
/// and snapshots decode every command.
///
/// Records larger than a few words are boxed, so that a command stays under 100 bytes: a pass
/// that scales a service to 100,000 replicas holds 200,000 of them, and every Raft entry
/// decodes 200 into a vector grown one element at a time (with the task inline, a command was
/// 1,120 bytes, and faulting in those vectors' fresh pages took about a fifth of a
/// follower's CPU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum StoreCommand {
    /// Records the cluster's identity and credentials; refused once the cluster exists.
    InitCluster {
        /// The cluster's identity.
        info: Box<ClusterInfo>,
    },
    /// Replaces the join secret of one role (`join-token --rotate`).
    SetJoinSecret {
        /// Which token.
        role: NodeRole,
        /// The new secret.
        secret: String,
        /// CAS on the cluster record.
        expected: Expect,
    },
    /// Changes the cluster settings (`swarm update`).
    SetSettings {
        /// The new settings (their `version` is ignored).
        settings: ClusterSettings,
        /// CAS on the settings.
        expected: Expect,
    },
    /// Creates or replaces a node (join, `node update`, promote, demote).
    PutNode {
        /// The node.
        node: Box<Node>,
        /// CAS on the node.
        expected: Expect,
    },
    /// An agent described its node (hostname, platform, resources, engine labels).
    SetNodeDescription {
        /// Which node.
        id: NodeId,
        /// What it reported.
        description: Box<NodeDescription>,
    },
    /// The dispatcher observed a node's state (ready, down with `heartbeat failure`, …).
    SetNodeStatus {
        /// Which node.
        id: NodeId,
        /// The observation.
        status: NodeStatus,
    },
    /// Records the digest of a node's own credential (written with its join; replaces the
    /// previous one). The credential stops working when the node is removed.
    SetNodeCredential {
        /// Which node.
        id: NodeId,
        /// SHA-256 of the credential's secret, in hex.
        digest: String,
    },
    /// A write to the cluster PKI (CA, rotation, node certificates).
    Pki {
        /// What to write.
        command: Box<super::pki::PkiCommand>,
    },
    /// Deletes a node.
    RemoveNode {
        /// Which node.
        id: NodeId,
        /// CAS on the node.
        expected: Expect,
    },
    /// Creates a service (`service create`): allocates its spec version and its dynamic
    /// published ports; refused when a published port is in use.
    CreateService {
        /// The service's id.
        id: ServiceId,
        /// Its spec.
        spec: Box<ServiceSpec>,
    },
    /// Updates a service (`service update`): PreviousSpec ← Spec (even when identical), a new
    /// spec version, update status cleared; refused on a mode change or a port in use.
    UpdateService {
        /// The service's id.
        id: ServiceId,
        /// The new spec.
        spec: Box<ServiceSpec>,
        /// CAS on the service.
        expected: Expect,
    },
    /// Creates a service when absent, updates it otherwise (the rules of both apply).
    PutService {
        /// The service's id.
        id: ServiceId,
        /// The new spec.
        spec: Box<ServiceSpec>,
        /// CAS on the service.
        expected: Expect,
    },
    /// `service rollback`: swaps Spec and PreviousSpec (and their versions), status
    /// `rollback_started` / `manually requested rollback`; refused without a previous spec.
    RollbackService {
        /// The service's id.
        id: ServiceId,
        /// CAS on the service.
        expected: Expect,
        /// When it was requested (the status's `started_at`).
        at: MonoTime,
    },
    /// Deletes a service (and its rollout run and restart history).
    RemoveService {
        /// Which service.
        id: ServiceId,
        /// CAS on the service.
        expected: Expect,
    },
    /// Creates or replaces a task.
    PutTask {
        /// The task.
        task: Box<Task>,
        /// CAS on the task.
        expected: Expect,
    },
    /// Changes a task's desired state.
    SetTaskDesiredState {
        /// Which task.
        id: TaskId,
        /// The new desired state.
        state: TaskState,
        /// CAS on the task.
        expected: Expect,
    },
    /// Records what an agent observed; an observed state never moves backwards.
    SetTaskStatus {
        /// Which task.
        id: TaskId,
        /// The observation.
        status: Box<TaskStatus>,
    },
    /// The scheduler placed a task: its node, observed at least ASSIGNED, error cleared.
    AssignTask {
        /// Which task.
        id: TaskId,
        /// The node.
        node: NodeId,
        /// `scheduler assigned task to node` or `… confirmed … preassigned node`.
        message: String,
        /// When.
        at: MonoTime,
    },
    /// Deletes a task.
    RemoveTask {
        /// Which task.
        id: TaskId,
        /// CAS on the task.
        expected: Expect,
    },
    /// Sets a service's rolling-update status (the rollout's progress).
    SetUpdateStatus {
        /// The service.
        service: ServiceId,
        /// The status.
        status: Option<UpdateStatus>,
    },
    /// Rolls a service back automatically (failure action rollback): Spec ← PreviousSpec,
    /// PreviousSpec ← none, with this status (`rollback_started`).
    AutoRollback {
        /// The service.
        service: ServiceId,
        /// The status.
        status: UpdateStatus,
    },
    /// Holds a replacement task at READY until it may start.
    DelayStart {
        /// The held task.
        task: TaskId,
        /// The conditions.
        delay: DelayedStart,
    },
    /// The held task was started (or is gone).
    ClearDelay {
        /// The task.
        task: TaskId,
    },
    /// Records a restart in a slot (restart history, for `max_attempts`).
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
    /// Creates or replaces a config; its content never changes under the same name.
    PutConfig {
        /// The config.
        config: Box<ConfigRecord>,
        /// CAS on the config.
        expected: Expect,
    },
    /// Deletes a config (refused while a service uses it).
    RemoveConfig {
        /// Its name.
        name: String,
        /// CAS on the config.
        expected: Expect,
    },
    /// Creates or replaces a secret (its value sealed with the cluster key); its content
    /// never changes under the same name.
    PutSecret {
        /// The secret.
        secret: Box<SecretRecord>,
        /// CAS on the secret.
        expected: Expect,
    },
    /// Deletes a secret (refused while a service uses it).
    RemoveSecret {
        /// Its name.
        name: String,
        /// CAS on the secret.
        expected: Expect,
    },
    /// Creates or replaces a network.
    PutNetwork {
        /// The network.
        spec: Box<NetworkSpec>,
        /// CAS on the network.
        expected: Expect,
    },
    /// Deletes a network.
    RemoveNetwork {
        /// Its name.
        name: String,
        /// CAS on the network.
        expected: Expect,
    },
    /// Stores a service's rollout run.
    PutRollout {
        /// The service being rolled out.
        service: ServiceId,
        /// The run.
        rollout: Box<Rollout>,
        /// CAS on the rollout record.
        expected: Expect,
    },
    /// Deletes a service's rollout run.
    RemoveRollout {
        /// The service.
        service: ServiceId,
        /// CAS on the rollout record.
        expected: Expect,
    },
    /// Appends a Git commit to a stack's applied history.
    RecordStackCommit {
        /// The stack.
        stack: StackName,
        /// The commit id that is now applied.
        commit: String,
        /// CAS on the stack's history.
        expected: Expect,
    },
    /// A write of GitOps state (the Git source, deployments, sync state).
    Gitops(Box<super::gitops::GitopsCommand>),
    /// Several commands applied atomically: all of them, or none when one is refused.
    Batch {
        /// The commands, in order.
        commands: Vec<StoreCommand>,
    },
    /// One orchestrator pass: its decisions, applied atomically once the fence holds. A
    /// decision about a task or service that is gone meanwhile is moot and skipped; any
    /// other refusal refuses the whole batch.
    Orchestrate {
        /// What the pass expects of the cluster.
        fence: Fence,
        /// The decisions, in order.
        commands: Vec<StoreCommand>,
    },
}

impl StoreCommand {
    /// The orchestrator creates a task (its id must be new).
    pub fn create_task(task: Task) -> StoreCommand {
        StoreCommand::PutTask { task: Box::new(task), expected: Expect::Absent }
    }

    /// The orchestrator changes a task's desired state.
    pub fn set_desired(id: &TaskId, state: TaskState) -> StoreCommand {
        StoreCommand::SetTaskDesiredState { id: id.clone(), state, expected: Expect::Any }
    }

    /// The orchestrator deletes a task.
    pub fn delete_task(id: &TaskId) -> StoreCommand {
        StoreCommand::RemoveTask { id: id.clone(), expected: Expect::Any }
    }

    /// A manager component (scheduler, constraint enforcer) sets a task's observed state,
    /// message and error, keeping the rest of its status.
    pub fn mark_task(
        task: &Task,
        state: TaskState,
        message: &str,
        err: &str,
        at: MonoTime,
    ) -> StoreCommand {
        let status = TaskStatus {
            state,
            timestamp: at,
            message: message.to_owned(),
            err: err.to_owned(),
            ..task.status.clone()
        };
        StoreCommand::SetTaskStatus { id: task.id.clone(), status: Box::new(status) }
    }

    /// The orchestrator stores a service's rollout run.
    pub fn put_rollout(rollout: Rollout) -> StoreCommand {
        let service = rollout.service().clone();
        StoreCommand::PutRollout { service, rollout: Box::new(rollout), expected: Expect::Any }
    }
}

/// The kind of record a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// The cluster record.
    Cluster,
    /// The cluster settings.
    Settings,
    /// A node.
    Node,
    /// A service.
    Service,
    /// A task.
    Task,
    /// A config.
    Config,
    /// A secret.
    Secret,
    /// A network.
    Network,
    /// A rollout record.
    Rollout,
    /// A stack's history.
    Stack,
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            RecordKind::Cluster => "cluster",
            RecordKind::Settings => "settings",
            RecordKind::Node => "node",
            RecordKind::Service => "service",
            RecordKind::Task => "task",
            RecordKind::Config => "config",
            RecordKind::Secret => "secret",
            RecordKind::Network => "network",
            RecordKind::Rollout => "rollout",
            RecordKind::Stack => "stack",
        };
        f.write_str(s)
    }
}

/// Why a command was not applied. A refusal changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The record's version is not the one the writer read.
    #[error("{kind} {id} changed: expected version {expected:?}, found {actual:?}")]
    VersionMismatch {
        /// Kind of record.
        kind: RecordKind,
        /// Its id.
        id: String,
        /// What the writer expected.
        expected: Expect,
        /// The record's current version (`None` when absent).
        actual: Option<u64>,
    },
    /// The record does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Kind of record.
        kind: RecordKind,
        /// Its id.
        id: String,
    },
    /// An observed task state would move backwards.
    #[error("task {id}: observed state {current} cannot go back to {proposed}")]
    StaleStatus {
        /// The task.
        id: String,
        /// Its current observed state.
        current: TaskState,
        /// The state proposed.
        proposed: TaskState,
    },
    /// The cluster is already initialised.
    #[error("the cluster is already initialised")]
    AlreadyInitialized,
    /// The request breaks one of Swarm's rules (Docker's InvalidArgument); the message is
    /// Docker's own.
    #[error("{message}")]
    Invalid {
        /// Docker's message.
        message: String,
    },
    /// Refused in the current state (Docker's FailedPrecondition); the message is Docker's.
    #[error("{message}")]
    FailedPrecondition {
        /// Docker's message.
        message: String,
    },
    /// An orchestrator batch from a writer that is no longer the cluster's orchestrator (or
    /// computed on a state that moved on).
    #[error(
        "orchestrator batch refused: written at epoch {epoch} from task id {next_task_id}, the cluster is at epoch {current_epoch} and task id {current_next_task_id}"
    )]
    Fenced {
        /// The batch's epoch.
        epoch: u64,
        /// The cluster's epoch.
        current_epoch: u64,
        /// The task-id counter the batch expected.
        next_task_id: u64,
        /// The cluster's task-id counter.
        current_next_task_id: u64,
    },
}

impl Refusal {
    /// An InvalidArgument refusal with Docker's message.
    pub fn invalid(message: impl Into<String>) -> Refusal {
        Refusal::Invalid { message: message.into() }
    }

    /// A FailedPrecondition refusal with Docker's message.
    pub fn precondition(message: impl Into<String>) -> Refusal {
        Refusal::FailedPrecondition { message: message.into() }
    }
}

/// The answer to one applied log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StoreResponse {
    /// The log index of the entry (the version of every record it wrote).
    pub index: u64,
    /// `None` when applied; why not otherwise.
    pub refusal: Option<Refusal>,
}

impl StoreResponse {
    /// The response as a `Result`: the new version, or why nothing changed.
    ///
    /// # Errors
    /// The refusal.
    pub fn into_result(self) -> Result<u64, Refusal> {
        match self.refusal {
            None => Ok(self.index),
            Some(r) => Err(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_command_stays_a_few_words_whatever_it_carries() {
        // A pass of 100,000 replicas holds 200,000 commands; large records are boxed.
        assert!(
            std::mem::size_of::<StoreCommand>() <= 96,
            "{}",
            std::mem::size_of::<StoreCommand>()
        );
    }
}
