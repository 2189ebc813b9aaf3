//! flotilla's replicated store: the cluster state every manager holds, kept consistent by
//! openraft 0.9 with redb underneath.
//!
//! ```text
//!  client write ──► Raft::client_write(StoreCommand) ──► log (redb, `log_store`)
//!                                                          │ committed
//!                                                          ▼
//!                     StateMachineStore::apply ──► ClusterState::apply (pure)
//!                          │                              │
//!                snapshots (redb)        StateHandle: reads, applied-index watch, and the
//!                                        applied commands (StoreEvent) for the leader loop
//! ```
//!
//! The state and its commands are the orchestration core's one model
//! (`reconciler_orchestrator::state`), re-exported as [`cluster_state`] and [`command`].
//! [`node::new_raft_node`] wires a Raft node from a data folder and a network; [`network`]
//! has the HTTP transport used by managers and an in-memory one for tests; [`clock`] is the
//! daemons' clock.

// openraft's error types (StorageError, RPCError) are large and fixed by its traits; boxing
// them in our helpers would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

pub mod clock;
pub mod cluster_state;
pub mod command;
pub mod lock;
pub mod log_store;
pub mod network;
pub mod node;
pub mod pki;
pub mod state_machine;
pub mod type_config;

pub use clock::SystemClock;
pub use cluster_state::ClusterState;
pub use command::{Expect, Fence, LogCommand, RecordKind, Refusal, StoreCommand, StoreResponse};
pub use node::{RaftNode, new_raft_node, raft_config};
pub use state_machine::{AppliedState, StateHandle, StoreEvent};
pub use type_config::{Raft, RaftId, TypeConfig};
