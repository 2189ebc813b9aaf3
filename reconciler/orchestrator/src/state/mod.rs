//! The one replicated model of flotilla: [`ClusterState`] and its pure
//! [`ClusterState::apply`] of a [`StoreCommand`]. Every manager's Raft state machine, the
//! leader's orchestrator and the simulator hold this same type and change it only through
//! `apply`, so what the orchestrator decides, the simulator tests and the store replicates
//! are one thing.
//!
//! ```text
//!  API (operators) ─┐                         ┌─► events (crate::events::of) ─► orchestrator
//!  dispatcher ──────┼─► StoreCommand ─► apply ┤
//!  orchestrator ────┘   (Raft log order)      └─► ClusterState (every manager, the same)
//! ```
//!
//! Everything a new leader needs is here and typed: services with their spec versions and
//! update status, rollout runs, the task-id and spec-version counters, held restarts and
//! restart history, cluster settings, published-port allocation. Swarm's rules for service,
//! config and secret changes are applied inside `apply` (the product computes versions,
//! statuses, ports and refusals; clients only ask).
//!
//! `apply` reads no clock and does no I/O: time comes inside commands. A refused command
//! changes nothing; batches are all-or-nothing without cloning the state: every table is a
//! [`Table`] that journals what it changes while a savepoint is open (see [`table`]).

mod apply;
pub mod command;
pub mod gitops;
mod index;
mod objects;
pub mod pki;
mod ports;
mod records;
mod services;
pub mod table;

pub use apply::place;
pub use command::{Expect, Fence, RecordKind, Refusal, StoreCommand, StoreResponse};
pub use gitops::{GitSource, GitopsCommand, SourceStatus};
pub use ports::{DYNAMIC_PORTS_END, DYNAMIC_PORTS_START};
pub use records::{
    AppliedCommit, ClusterInfo, ClusterSettings, ConfigRecord, Counters, DelayedStart, LastPorts,
    NetworkRecord, NodeRecord, RestartHistory, RolloutRecord, SecretRecord, ServiceRecord,
    StackHistory, TaskRecord,
};
pub use table::Table;

use crate::slot::SlotKey;
use reconciler_types::{Node, NodeId, NodeRole, NodeState, ServiceId, StackName, Task, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use table::Mark;

/// How many applied commits a stack's history keeps.
pub const STACK_HISTORY_LIMIT: usize = 50;

/// Everything the managers replicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClusterState {
    /// The cluster identity, once initialised.
    pub cluster: Option<ClusterInfo>,
    /// Nodes by id.
    pub nodes: Table<NodeId, NodeRecord>,
    /// Services by id.
    pub services: Table<ServiceId, ServiceRecord>,
    /// Tasks by id.
    pub tasks: Table<TaskId, TaskRecord>,
    /// Configs by name.
    pub configs: Table<String, ConfigRecord>,
    /// Secrets by name.
    pub secrets: Table<String, SecretRecord>,
    /// Networks by name.
    pub networks: Table<String, NetworkRecord>,
    /// Rollout runs by service.
    pub rollouts: Table<ServiceId, RolloutRecord>,
    /// Applied commits by stack.
    pub stacks: Table<StackName, StackHistory>,
    /// Replacement tasks held until they may start.
    #[serde(default)]
    pub delayed: Table<TaskId, DelayedStart>,
    /// Restart history per service and slot.
    #[serde(default)]
    pub restarts: Table<ServiceId, BTreeMap<SlotKey, RestartHistory>>,
    /// Cluster settings.
    #[serde(default)]
    pub settings: ClusterSettings,
    /// Counters (task ids, spec versions, orchestrator epoch, dynamic ports).
    #[serde(default)]
    pub counters: Counters,
    /// The Git source the leader deploys from, and what it last saw of it.
    #[serde(default)]
    pub source: Option<GitSource>,
    /// What the leader last saw of the Git source.
    #[serde(default)]
    pub source_status: SourceStatus,
    /// Each node's current certificate (and removed nodes, whose certificates are refused).
    #[serde(default)]
    pub node_certs: Table<NodeId, pki::NodeCertRecord>,
    /// The last log index applied.
    pub last_index: u64,
    /// What is derived from the rest (indexes) and the open savepoints; never serialized,
    /// never compared.
    #[serde(skip)]
    derived: Derived,
}

/// The derived part of the state.
#[derive(Clone, Default)]
struct Derived {
    index: index::TaskIndex,
    savepoints: usize,
}

impl PartialEq for Derived {
    fn eq(&self, _: &Derived) -> bool {
        true
    }
}

impl std::fmt::Debug for Derived {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

/// Where every table's journal stood, and the small records, when a savepoint was taken.
struct Savepoint {
    marks: [Mark; 13],
    cluster: Option<ClusterInfo>,
    settings: ClusterSettings,
    counters: Counters,
    source: Option<GitSource>,
    source_status: SourceStatus,
    last_index: u64,
    synced: u64,
}

/// Calls `$f` (with the table's mark, when given) on every table, in a fixed order.
macro_rules! each_table {
    ($s:expr, $f:ident $(, $marks:expr)?) => {
        [
            $s.nodes.$f($($marks[0])?),
            $s.services.$f($($marks[1])?),
            $s.tasks.$f($($marks[2])?),
            $s.configs.$f($($marks[3])?),
            $s.secrets.$f($($marks[4])?),
            $s.networks.$f($($marks[5])?),
            $s.rollouts.$f($($marks[6])?),
            $s.stacks.$f($($marks[7])?),
            $s.delayed.$f($($marks[8])?),
            $s.restarts.$f($($marks[9])?),
            $s.derived.index.by_slot.$f($($marks[10])?),
            $s.derived.index.by_node.$f($($marks[11])?),
            $s.node_certs.$f($($marks[12])?),
        ]
    };
}

impl ClusterState {
    fn savepoint(&mut self) -> Savepoint {
        self.derived.savepoints += 1;
        Savepoint {
            marks: each_table!(self, mark),
            cluster: self.cluster.clone(),
            settings: self.settings,
            counters: self.counters,
            source: self.source.clone(),
            source_status: self.source_status.clone(),
            last_index: self.last_index,
            synced: self.derived.index.synced,
        }
    }

    fn rollback(&mut self, sp: Savepoint) {
        each_table!(self, undo_to, sp.marks);
        each_table!(self, release, sp.marks);
        self.cluster = sp.cluster;
        self.settings = sp.settings;
        self.counters = sp.counters;
        self.source = sp.source;
        self.source_status = sp.source_status;
        self.last_index = sp.last_index;
        self.derived.index.synced = sp.synced;
        self.derived.savepoints -= 1;
    }

    fn commit(&mut self, sp: Savepoint) {
        each_table!(self, release, sp.marks);
        self.derived.savepoints -= 1;
    }

    /// Runs `f` on this state, then undoes every change `f` made (also when it panics). The
    /// orchestrator's pass uses it to see its own decisions while it makes them; the
    /// decisions reach the state for real only through `apply`. Costs what `f` touched.
    pub fn tentatively<T>(&mut self, f: impl FnOnce(&mut ClusterState) -> T) -> T {
        if !self.indexed() {
            self.reindex();
        }
        let sp = self.savepoint();
        let guard = Undo { state: self, sp: Some(sp) };
        f(&mut *guard.state)
    }

    /// A node by id.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id).map(|r| &r.node)
    }

    /// A task by id.
    pub fn task(&self, id: &TaskId) -> Option<&Task> {
        self.tasks.get(id).map(|r| &r.task)
    }

    /// Every task, in id order.
    pub fn all_tasks(&self) -> impl Iterator<Item = &Task> + '_ {
        self.tasks.values().map(|r| &r.task)
    }

    /// Whether a task's node is down or gone (it will never report again).
    pub fn node_lost(&self, node: Option<&NodeId>) -> bool {
        match node {
            None => false,
            Some(id) => self.node(id).is_none_or(|n| n.status.state == NodeState::Down),
        }
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
}

/// Undoes a tentative run when dropped.
struct Undo<'a> {
    state: &'a mut ClusterState,
    sp: Option<Savepoint>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if let Some(sp) = self.sp.take() {
            self.state.rollback(sp);
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
