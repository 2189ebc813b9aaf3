//! The openraft type configuration and the aliases the rest of flotilla uses.

use crate::command::{LogCommand, StoreResponse};
use std::io::Cursor;

openraft::declare_raft_types!(
    /// flotilla's Raft types: commands are [`LogCommand`]s (a shared `StoreCommand`), answers [`StoreResponse`], node
    /// ids `u64`, nodes [`openraft::BasicNode`] (the manager's advertised address).
    pub TypeConfig:
        D = LogCommand,
        R = StoreResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
);

/// A Raft node of flotilla.
pub type Raft = openraft::Raft<TypeConfig>;
/// A Raft node id.
pub type RaftId = u64;
/// A log id.
pub type LogId = openraft::LogId<RaftId>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Storage errors.
pub type StorageError = openraft::StorageError<RaftId>;
/// The metrics Raft publishes.
pub type RaftMetrics = openraft::RaftMetrics<RaftId, openraft::BasicNode>;
