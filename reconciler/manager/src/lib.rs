//! flotilla's manager: the Raft-replicated brain every other piece writes through.
//!
//! ```text
//!  CLI / agents ──HTTP+bearer──► server (axum) ──► Manager::on_leader ──► leader? run here
//!                                     │                    └──────────► else forward to leader
//!  other managers ──/raft/*──────────►│                                       │
//!                                     ▼                                       ▼
//!                              openraft Raft ◄──────────── Manager::write (bounded; no quorum
//!                              (reconciler-store)                          → clear error)
//! ```
//!
//! Start at [`daemon::start_manager`] (init, join, restart from a data folder), then
//! [`server`] (the routes), [`manager`] (routing to the leader and writes), [`leader`] (the orchestration loop on the Raft leader), [`ops`] (joins,
//! membership, node commands, token rotation), [`services`] (the service commands),
//! [`stacks`] (the stack commands),
//! [`log_broker`] (`service logs` over the dispatcher's log subscriptions) and
//! [`token`] (Swarm-shaped join tokens), [`gitops`] (the Git source, the webhook and the
//! leader's GitOps loop), [`metrics`] (`/metrics` and `/healthz`).
//! The wire types and the typed client the CLI uses live in `reconciler-api`.

pub mod daemon;
pub mod dispatcher;
pub mod error;
pub mod gitops;
pub mod identity;
pub mod json_body;
pub mod keys;
pub mod leader;
pub mod listener;
pub mod log_broker;
pub mod manager;
pub mod metrics;
pub mod ops;
pub mod pki;
pub mod server;
pub mod services;
pub mod stacks;
pub mod token;
pub mod views;

pub use daemon::{ManagerOptions, RunningManager, StartMode, start_manager};
pub use error::ApiError;
pub use manager::Manager;
pub use reconciler_api::operator as api;
pub use reconciler_api::{ApiClient, ClientError, client};
