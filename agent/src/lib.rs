//! flotilla's agent: turns the tasks the dispatcher assigns to this node into processes or
//! containers, reports what becomes of them, and keeps their logs.
//!
//! ```text
//!  dispatcher ──assignments──► session ─► worker ─► one task runner per task
//!      │ ──routes──────────────► mesh (published ports → tasks on any node)
//!      ▲                                              │ agent_core::task::next_step
//!      └──── batched status ◄── outbox ◄──────────────┤
//!                                                     ▼
//!                                      Runtime: process (supervised host processes)
//!                                               docker  (containers through bollard)
//! ```
//!
//! * [`agent::run`]: `flotilla agent` (join, runtime, adoption, session).
//! * [`session`]: register, heartbeats, long-polled assignments, batched reports, failover.
//! * [`worker`]: one [`runner::Runner`] per task; [`holdings`]: what the dispatcher assigned;
//!   [`outbox`]: statuses waiting to be reported; [`taskstore`]: tasks saved for a restart.
//! * [`runtime`]: the [`runtime::Runtime`] trait and its two implementations;
//!   [`health`]: running health checks.
//! * [`logfile`]: task logs on disk (rotating writer, tail/since/follow reader);
//!   [`logpub`]: sending them for `service logs`.
//! * [`node`]: identity, join, description; [`clock`]: epoch time as `MonoTime`.
//! * [`mesh`]: the routing mesh: every published ingress port forwarded to its tasks.
//!
//! The decisions (state machine, health accounting, file placement) are pure functions in
//! `agent-core`; this crate carries them out.

pub mod agent;
pub mod clock;
pub mod fsutil;
pub mod health;
pub mod holdings;
pub mod logfile;
pub mod logpub;
pub mod mesh;
pub mod node;
pub mod outbox;
pub mod runner;
pub mod runtime;
pub mod session;
pub mod taskstore;
pub mod worker;
