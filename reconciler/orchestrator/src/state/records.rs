//! The records of the replicated state. Every record that a client can compare-and-set
//! carries `version`, the log index that last wrote it; a service's `spec_version` is a
//! separate counter that only spec changes move (Swarm's `SpecVersion`).

use crate::rollout::Rollout;
use reconciler_types::{
    MonoTime, NetworkSpec, Node, PortConfig, PortProtocol, ServiceId, ServiceSpec, Task, TaskId,
    UpdateStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

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
    /// The cluster's certificate authority (none with `--insecure-listen`).
    #[serde(default)]
    pub ca: Option<super::pki::CaRecord>,
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

/// A node, the digest of its own credential, and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node.
    pub node: Node,
    /// SHA-256 (hex) of the secret of the node's credential; `None` before one is issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_digest: Option<String>,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A service as the managers hold it: its spec and the one it replaced, their spec versions,
/// its rolling-update status and the published ports allocated to it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Its id.
    pub id: ServiceId,
    /// The spec in force.
    pub spec: ServiceSpec,
    /// The spec's version (Swarm's `SpecVersion`): every update bumps it, even a no-op one;
    /// a rollback restores the previous spec's.
    #[serde(default)]
    pub spec_version: u64,
    /// The spec it replaced (what a manual rollback returns to; `None` after an automatic
    /// rollback).
    pub previous_spec: Option<ServiceSpec>,
    /// The previous spec's version.
    #[serde(default)]
    pub previous_spec_version: Option<u64>,
    /// The rolling-update status (`None` after every update until a run sets it).
    #[serde(default)]
    pub update_status: Option<UpdateStatus>,
    /// The published ports as allocated (Swarm's `Endpoint.Ports`): the spec's ports with
    /// every ingress port published without a number given one from 30000–32767.
    #[serde(default)]
    pub endpoint_ports: Vec<PortConfig>,
    /// The log index that last wrote it.
    pub version: u64,
}

impl ServiceRecord {
    /// A new service at spec version `spec_version`, with no history.
    pub fn new(id: ServiceId, spec: ServiceSpec, spec_version: u64) -> Self {
        ServiceRecord { id, spec, spec_version, ..ServiceRecord::default() }
    }
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
    /// A digest of the plain value, salted with `salt` (safe to show; see
    /// `reconciler_planner::secret_digest`).
    pub digest: String,
    /// The salt of `digest` (empty: a plain SHA-256, from before digests were salted).
    #[serde(default)]
    pub salt: String,
    /// The sealed value.
    pub sealed: Vec<u8>,
    /// The size of the plain value in bytes (Swarm refuses 0 and 512000 or more).
    #[serde(default)]
    pub size: u64,
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

/// A service's rollout run, typed, as the orchestrator left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// The run.
    pub rollout: Rollout,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StackHistory {
    /// Applied commits, oldest first.
    pub applied: Vec<AppliedCommit>,
    /// Deployment records and sync state (the GitOps loop's).
    #[serde(default)]
    pub deploy: super::gitops::StackDeploys,
    /// The log index that last wrote it.
    pub version: u64,
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

/// Cluster-wide settings (`docker swarm update`), with Swarm's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// Tasks kept per slot, including the live one (`--task-history-limit`, default 5;
    /// negative = never prune).
    pub task_history_limit: i64,
    /// How often agents heartbeat (`--dispatcher-heartbeat`, default 5 s).
    #[serde(with = "reconciler_types::duration_ns")]
    pub dispatcher_heartbeat: Duration,
    /// The log index that last wrote them.
    pub version: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            task_history_limit: 5,
            dispatcher_heartbeat: Duration::from_secs(5),
            version: 0,
        }
    }
}

/// The counters a new leader must continue from, never rebuilt from what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// The number the next task id is made from (`t000042`).
    pub next_task_id: u64,
    /// The next service spec version.
    pub next_spec_version: u64,
    /// The epoch of the orchestrator allowed to write (each new leader claims a higher one).
    pub orchestrator_epoch: u64,
    /// The dynamic published port handed out last per protocol (0: none yet); the next
    /// one follows it.
    pub last_dynamic_port: LastPorts,
}

/// The last dynamic published port handed out, per protocol (each protocol has its own
/// port space, as in swarmkit's port allocator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LastPorts {
    /// TCP.
    pub tcp: u32,
    /// UDP.
    pub udp: u32,
    /// SCTP.
    pub sctp: u32,
}

impl LastPorts {
    /// The last port handed out for `protocol`.
    pub fn get_mut(&mut self, protocol: PortProtocol) -> &mut u32 {
        match protocol {
            PortProtocol::Tcp => &mut self.tcp,
            PortProtocol::Udp => &mut self.udp,
            PortProtocol::Sctp => &mut self.sctp,
        }
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            next_task_id: 0,
            next_spec_version: 1,
            orchestrator_epoch: 0,
            last_dynamic_port: LastPorts::default(),
        }
    }
}
