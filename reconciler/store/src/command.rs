//! What is written through Raft (`StoreCommand`) and what applying it answers
//! (`StoreResponse`). Every write that depends on something read carries an [`Expect`], checked
//! against the record's version (the log index that last wrote it) when the command applies.

use crate::cluster_state::{ClusterInfo, ConfigRecord, SecretRecord};
use reconciler_types::{
    NetworkSpec, Node, NodeId, NodeRole, ServiceId, ServiceSpec, StackName, Task, TaskId,
    TaskState, TaskStatus,
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

/// One write to the cluster state. Applied in log order by every manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StoreCommand {
    /// Records the cluster's identity and credentials; refused once the cluster exists.
    InitCluster {
        /// The cluster's identity.
        info: ClusterInfo,
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
    /// Creates or replaces a node.
    PutNode {
        /// The node.
        node: Node,
        /// CAS on the node.
        expected: Expect,
    },
    /// Deletes a node.
    RemoveNode {
        /// Which node.
        id: NodeId,
        /// CAS on the node.
        expected: Expect,
    },
    /// Creates or updates a service; the spec it replaces becomes its previous spec.
    PutService {
        /// The service's id.
        id: ServiceId,
        /// The new spec.
        spec: ServiceSpec,
        /// CAS on the service.
        expected: Expect,
    },
    /// Deletes a service.
    RemoveService {
        /// Which service.
        id: ServiceId,
        /// CAS on the service.
        expected: Expect,
    },
    /// Creates or replaces a task.
    PutTask {
        /// The task.
        task: Task,
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
        status: TaskStatus,
    },
    /// Deletes a task.
    RemoveTask {
        /// Which task.
        id: TaskId,
        /// CAS on the task.
        expected: Expect,
    },
    /// Creates or replaces a config.
    PutConfig {
        /// The config.
        config: ConfigRecord,
        /// CAS on the config.
        expected: Expect,
    },
    /// Deletes a config.
    RemoveConfig {
        /// Its name.
        name: String,
        /// CAS on the config.
        expected: Expect,
    },
    /// Creates or replaces a secret (its value sealed with the cluster key).
    PutSecret {
        /// The secret.
        secret: SecretRecord,
        /// CAS on the secret.
        expected: Expect,
    },
    /// Deletes a secret.
    RemoveSecret {
        /// Its name.
        name: String,
        /// CAS on the secret.
        expected: Expect,
    },
    /// Creates or replaces a network.
    PutNetwork {
        /// The network.
        spec: NetworkSpec,
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
    /// Stores a service's rollout progress (the orchestrator's own serialized record).
    PutRollout {
        /// The service being rolled out.
        service: ServiceId,
        /// The progress, opaque to the store.
        progress: serde_json::Value,
        /// CAS on the rollout record.
        expected: Expect,
    },
    /// Deletes a service's rollout progress.
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
    /// Several commands applied atomically: all of them, or none when one is refused.
    Batch {
        /// The commands, in order.
        commands: Vec<StoreCommand>,
    },
}

/// The kind of record a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// The cluster record.
    Cluster,
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
    pub fn into_result(self) -> Result<u64, Refusal> {
        match self.refusal {
            None => Ok(self.index),
            Some(r) => Err(r),
        }
    }
}
