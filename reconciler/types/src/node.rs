//! Nodes as Swarm models them: a spec the operator sets (role, availability, labels), a
//! description the node reports (hostname, platform, resources, engine labels), and a
//! status the managers observe.

use crate::ids::NodeId;
use crate::spec::GenericResource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// What the operator set.
    pub spec: NodeSpec,
    /// What the node reported about itself.
    pub description: NodeDescription,
    /// What the managers observe.
    pub status: NodeStatus,
    /// Raft membership status, for managers.
    pub manager_status: Option<ManagerStatus>,
}

/// What the operator sets on a node (`docker node update`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeSpec {
    /// worker or manager.
    pub role: NodeRole,
    /// active, pause or drain.
    pub availability: Availability,
    /// Operator labels (`node.labels.*` in constraints).
    pub labels: BTreeMap<String, String>,
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// Runs tasks only.
    #[default]
    Worker,
    /// Takes part in Raft and may run tasks.
    Manager,
}

/// Whether a node takes tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Takes new tasks.
    #[default]
    Active,
    /// Keeps its tasks, takes no new ones.
    Pause,
    /// Its tasks are moved away; takes none.
    Drain,
}

/// What a node reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeDescription {
    /// Hostname.
    pub hostname: String,
    /// OS and architecture.
    pub platform: Platform,
    /// CPU in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// Memory in bytes.
    pub memory_bytes: i64,
    /// Discrete generic resources the node offers.
    pub generic_resources: Vec<GenericResource>,
    /// The engine's labels (`engine.labels.*` in constraints).
    pub engine: EngineDescription,
}

/// OS and architecture of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub architecture: String,
}

/// The runtime's description.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EngineDescription {
    /// Runtime version.
    pub version: String,
    /// Engine labels.
    pub labels: BTreeMap<String, String>,
}

/// What the managers observe of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Ready, down, ...
    pub state: NodeState,
    /// Why, when not ready.
    pub message: String,
    /// The address the node is reached at.
    pub addr: String,
}

/// A node's observed state (Docker's STATUS column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Not yet heard from.
    #[default]
    Unknown,
    /// Missed its heartbeats.
    Down,
    /// Heartbeating and accepting work.
    Ready,
    /// Lost its session, within the grace period.
    Disconnected,
}

/// A manager's place in the Raft cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManagerStatus {
    /// Raft node id.
    pub raft_id: u64,
    /// Whether it currently leads.
    pub leader: bool,
    /// Whether the leader reaches it.
    pub reachability: Reachability,
    /// Its Raft address.
    pub addr: String,
}

/// Whether a manager is reachable from the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// Not known yet.
    #[default]
    Unknown,
    /// Not reachable.
    Unreachable,
    /// Reachable.
    Reachable,
}
