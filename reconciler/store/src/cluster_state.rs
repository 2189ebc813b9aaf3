//! The replicated cluster state and its pure `apply`.
//!
//! `ClusterState` is what every manager holds after applying the log: the cluster identity,
//! nodes, services (spec, previous spec, version), tasks (desired and observed state), configs,
//! secrets (sealed), networks, rollout progress and per-stack applied commits. `apply` reads no
//! clock and does no I/O; the same log gives the same state on every manager. Every record
//! carries `version`, the log index that last wrote it, which is what [`Expect::Version`] checks.

use crate::command::{Expect, RecordKind, Refusal, StoreCommand, StoreResponse};
use reconciler_types::{NetworkSpec, Node, NodeId, NodeRole, ServiceId, ServiceSpec, StackName};
use reconciler_types::{Task, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The cluster's identity and credentials, written once by `InitCluster`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterInfo {
    /// The cluster id (hex).
    pub id: String,
    /// The digest part of join tokens (base 36, 50 characters).
    pub digest: String,
    /// The worker join token's secret part.
    pub worker_secret: String,
    /// The manager join token's secret part.
    pub manager_secret: String,
    /// The credential of API clients (the CLI's `--token`).
    pub api_token: String,
    /// The credential managers use between themselves (Raft RPCs, forwarded writes).
    pub peer_token: String,
    /// With autolock, the SHA-256 of the unlock key (never the key itself).
    #[serde(default)]
    pub autolock_fingerprint: Option<String>,
    /// The version of this record.
    pub version: u64,
}

impl std::fmt::Debug for ClusterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log line.
        f.debug_struct("ClusterInfo")
            .field("id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A node and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: Node,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A service: its current and previous spec, and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its id.
    pub id: ServiceId,
    /// The spec in force.
    pub spec: ServiceSpec,
    /// The spec it replaced (what a rollback returns to).
    pub previous_spec: Option<ServiceSpec>,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A task (desired state and observed status) and its version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task.
    pub task: Task,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A config object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ConfigRecord {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its content.
    pub data: Vec<u8>,
    /// The log index that last wrote it (ignored in commands).
    pub version: u64,
}

/// A secret object; its value is sealed with the cluster key and never leaves the store
/// unsealed except towards the tasks that use it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SecretRecord {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// A digest of the plain value (safe to show).
    pub digest: String,
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// The log index that last wrote it (ignored in commands).
    pub version: u64,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A network and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The network.
    pub spec: NetworkSpec,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A service's rollout progress, as the orchestrator serialized it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The progress.
    pub progress: serde_json::Value,
    /// The log index that last wrote it.
    pub version: u64,
}

/// One commit applied to a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCommit {
    /// The Git commit id.
    pub commit: String,
    /// The log index that recorded it.
    pub index: u64,
}

/// A stack's applied-commit history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StackHistory {
    /// Applied commits, oldest first.
    pub applied: Vec<AppliedCommit>,
    /// The log index that last wrote it.
    pub version: u64,
}

/// Everything the managers replicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterState {
    /// The cluster identity, once initialised.
    pub cluster: Option<ClusterInfo>,
    /// Nodes by id.
    pub nodes: BTreeMap<NodeId, NodeRecord>,
    /// Services by id.
    pub services: BTreeMap<ServiceId, ServiceRecord>,
    /// Tasks by id.
    pub tasks: BTreeMap<TaskId, TaskRecord>,
    /// Configs by name.
    pub configs: BTreeMap<String, ConfigRecord>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, SecretRecord>,
    /// Networks by name.
    pub networks: BTreeMap<String, NetworkRecord>,
    /// Rollout progress by service.
    pub rollouts: BTreeMap<ServiceId, RolloutRecord>,
    /// Applied commits by stack.
    pub stacks: BTreeMap<StackName, StackHistory>,
    /// The last log index applied.
    pub last_index: u64,
}

/// How many applied commits a stack's history keeps.
pub const STACK_HISTORY_LIMIT: usize = 50;

fn check(kind: RecordKind, id: &str, expected: Expect, actual: Option<u64>) -> Result<(), Refusal> {
    let ok = match expected {
        Expect::Any => true,
        Expect::Absent => actual.is_none(),
        Expect::Version(v) => actual == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::VersionMismatch { kind, id: id.to_owned(), expected, actual })
    }
}

fn not_found(kind: RecordKind, id: &str) -> Refusal {
    Refusal::NotFound { kind, id: id.to_owned() }
}

impl ClusterState {
    /// Applies one command written at log `index`. Pure: the same command on the same state
    /// always gives the same result. A refused command changes nothing but `last_index`.
    pub fn apply(&mut self, cmd: &StoreCommand, index: u64) -> StoreResponse {
        self.last_index = index;
        let refusal = match cmd {
            StoreCommand::Batch { commands } => self.apply_batch(commands, index).err(),
            other => self.apply_one(other, index).err(),
        };
        StoreResponse { index, refusal }
    }

    /// The manager nodes (role manager, with a Raft id), by Raft id.
    pub fn managers(&self) -> BTreeMap<u64, &Node> {
        self.nodes
            .values()
            .filter(|r| r.node.spec.role == NodeRole::Manager)
            .filter_map(|r| r.node.manager_status.as_ref().map(|m| (m.raft_id, &r.node)))
            .collect()
    }

    /// The node that has run a manager with Raft id `raft_id` (whatever its role now).
    pub fn node_by_raft_id(&self, raft_id: u64) -> Option<&Node> {
        self.nodes
            .values()
            .map(|r| &r.node)
            .find(|n| n.manager_status.as_ref().is_some_and(|m| m.raft_id == raft_id))
    }

    /// The highest Raft id any node has had.
    pub fn max_raft_id(&self) -> u64 {
        let ids = self.nodes.values().filter_map(|r| r.node.manager_status.as_ref());
        ids.map(|m| m.raft_id).max().unwrap_or(0)
    }

    fn apply_batch(&mut self, commands: &[StoreCommand], index: u64) -> Result<(), Refusal> {
        // All or nothing: work on a copy and keep it only if every command applied.
        let mut scratch = self.clone();
        for cmd in commands {
            match cmd {
                StoreCommand::Batch { commands } => scratch.apply_batch(commands, index)?,
                other => scratch.apply_one(other, index)?,
            }
        }
        *self = scratch;
        Ok(())
    }

    fn apply_one(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            StoreCommand::InitCluster { info } => {
                if self.cluster.is_some() {
                    return Err(Refusal::AlreadyInitialized);
                }
                self.cluster = Some(ClusterInfo { version: index, ..info.clone() });
                Ok(())
            }
            StoreCommand::SetJoinSecret { role, secret, expected } => {
                let Some(info) = self.cluster.as_mut() else {
                    return Err(not_found(RecordKind::Cluster, "cluster"));
                };
                check(RecordKind::Cluster, &info.id, *expected, Some(info.version))?;
                match role {
                    NodeRole::Worker => info.worker_secret.clone_from(secret),
                    NodeRole::Manager => info.manager_secret.clone_from(secret),
                }
                info.version = index;
                Ok(())
            }
            StoreCommand::PutNode { node, expected } => {
                let actual = self.nodes.get(&node.id).map(|r| r.version);
                check(RecordKind::Node, node.id.as_str(), *expected, actual)?;
                let record = NodeRecord { node: node.clone(), version: index };
                self.nodes.insert(node.id.clone(), record);
                Ok(())
            }
            StoreCommand::RemoveNode { id, expected } => {
                let actual = self.nodes.get(id).map(|r| r.version);
                remove_checked(
                    &mut self.nodes,
                    RecordKind::Node,
                    id,
                    id.as_str(),
                    *expected,
                    actual,
                )
            }
            StoreCommand::PutService { id, spec, expected } => {
                self.put_service(id, spec, *expected, index)
            }
            StoreCommand::RemoveService { id, expected } => {
                let actual = self.services.get(id).map(|r| r.version);
                remove_checked(
                    &mut self.services,
                    RecordKind::Service,
                    id,
                    id.as_str(),
                    *expected,
                    actual,
                )
            }
            StoreCommand::PutTask { .. }
            | StoreCommand::SetTaskDesiredState { .. }
            | StoreCommand::SetTaskStatus { .. }
            | StoreCommand::RemoveTask { .. } => self.apply_task(cmd, index),
            _ => self.apply_object(cmd, index),
        }
    }

    fn put_service(
        &mut self,
        id: &ServiceId,
        spec: &ServiceSpec,
        expected: Expect,
        index: u64,
    ) -> Result<(), Refusal> {
        let current = self.services.get(id);
        check(RecordKind::Service, id.as_str(), expected, current.map(|r| r.version))?;
        let previous_spec = current.map(|r| r.spec.clone());
        let record =
            ServiceRecord { id: id.clone(), spec: spec.clone(), previous_spec, version: index };
        self.services.insert(id.clone(), record);
        Ok(())
    }

    fn apply_task(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            StoreCommand::PutTask { task, expected } => {
                let actual = self.tasks.get(&task.id).map(|r| r.version);
                check(RecordKind::Task, task.id.as_str(), *expected, actual)?;
                self.tasks
                    .insert(task.id.clone(), TaskRecord { task: task.clone(), version: index });
                Ok(())
            }
            StoreCommand::SetTaskDesiredState { id, state, expected } => {
                let record = self
                    .tasks
                    .get_mut(id)
                    .ok_or_else(|| not_found(RecordKind::Task, id.as_str()))?;
                check(RecordKind::Task, id.as_str(), *expected, Some(record.version))?;
                record.task.desired_state = *state;
                record.version = index;
                Ok(())
            }
            StoreCommand::SetTaskStatus { id, status } => {
                let record = self
                    .tasks
                    .get_mut(id)
                    .ok_or_else(|| not_found(RecordKind::Task, id.as_str()))?;
                let current = record.task.status.state;
                if status.state < current {
                    return Err(Refusal::StaleStatus {
                        id: id.to_string(),
                        current,
                        proposed: status.state,
                    });
                }
                record.task.status = status.clone();
                record.version = index;
                Ok(())
            }
            StoreCommand::RemoveTask { id, expected } => {
                let actual = self.tasks.get(id).map(|r| r.version);
                remove_checked(
                    &mut self.tasks,
                    RecordKind::Task,
                    id,
                    id.as_str(),
                    *expected,
                    actual,
                )
            }
            _ => Ok(()),
        }
    }

    fn apply_object(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            StoreCommand::PutConfig { config, expected } => {
                let actual = self.configs.get(&config.name).map(|r| r.version);
                check(RecordKind::Config, &config.name, *expected, actual)?;
                let record = ConfigRecord { version: index, ..config.clone() };
                self.configs.insert(config.name.clone(), record);
                Ok(())
            }
            StoreCommand::RemoveConfig { name, expected } => {
                let actual = self.configs.get(name).map(|r| r.version);
                remove_checked(&mut self.configs, RecordKind::Config, name, name, *expected, actual)
            }
            StoreCommand::PutSecret { secret, expected } => {
                let actual = self.secrets.get(&secret.name).map(|r| r.version);
                check(RecordKind::Secret, &secret.name, *expected, actual)?;
                let record = SecretRecord { version: index, ..secret.clone() };
                self.secrets.insert(secret.name.clone(), record);
                Ok(())
            }
            StoreCommand::RemoveSecret { name, expected } => {
                let actual = self.secrets.get(name).map(|r| r.version);
                remove_checked(&mut self.secrets, RecordKind::Secret, name, name, *expected, actual)
            }
            StoreCommand::PutNetwork { spec, expected } => {
                let actual = self.networks.get(&spec.name).map(|r| r.version);
                check(RecordKind::Network, &spec.name, *expected, actual)?;
                let record = NetworkRecord { spec: spec.clone(), version: index };
                self.networks.insert(spec.name.clone(), record);
                Ok(())
            }
            StoreCommand::RemoveNetwork { name, expected } => {
                let actual = self.networks.get(name).map(|r| r.version);
                remove_checked(
                    &mut self.networks,
                    RecordKind::Network,
                    name,
                    name,
                    *expected,
                    actual,
                )
            }
            _ => self.apply_progress(cmd, index),
        }
    }

    fn apply_progress(&mut self, cmd: &StoreCommand, index: u64) -> Result<(), Refusal> {
        match cmd {
            StoreCommand::PutRollout { service, progress, expected } => {
                let actual = self.rollouts.get(service).map(|r| r.version);
                check(RecordKind::Rollout, service.as_str(), *expected, actual)?;
                let record = RolloutRecord { progress: progress.clone(), version: index };
                self.rollouts.insert(service.clone(), record);
                Ok(())
            }
            StoreCommand::RemoveRollout { service, expected } => {
                let actual = self.rollouts.get(service).map(|r| r.version);
                let id = service.as_str();
                remove_checked(
                    &mut self.rollouts,
                    RecordKind::Rollout,
                    service,
                    id,
                    *expected,
                    actual,
                )
            }
            StoreCommand::RecordStackCommit { stack, commit, expected } => {
                let actual = self.stacks.get(stack).map(|h| h.version);
                check(RecordKind::Stack, stack.as_str(), *expected, actual)?;
                let history = self.stacks.entry(stack.clone()).or_default();
                history.applied.push(AppliedCommit { commit: commit.clone(), index });
                let excess = history.applied.len().saturating_sub(STACK_HISTORY_LIMIT);
                history.applied.drain(..excess);
                history.version = index;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn remove_checked<K: Ord, V>(
    map: &mut BTreeMap<K, V>,
    kind: RecordKind,
    key: &K,
    id: &str,
    expected: Expect,
    actual: Option<u64>,
) -> Result<(), Refusal> {
    if actual.is_none() {
        return Err(not_found(kind, id));
    }
    check(kind, id, expected, actual)?;
    map.remove(key);
    Ok(())
}

#[cfg(test)]
#[path = "cluster_state_tests.rs"]
mod tests;
