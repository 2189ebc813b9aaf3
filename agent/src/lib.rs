//! flotilla's agent: turns the tasks the dispatcher assigns to this node into processes or
//! containers, reports what becomes of them, and keeps their logs.
//!
//! ```text
//!  dispatcher ──assignments──► session ─► worker ─► one task runner per task
//!      ▲                                              │ agent_core::task::next_step
//!      └──── batched status ◄── outbox ◄──────────────┤
//!                                                     ▼
//!                                      Runtime: process (supervised host processes)
//!                                               docker  (containers through bollard)
//! ```
//!
//! * [`runtime`]: the [`runtime::Runtime`] trait and its two implementations.
//! * [`logfile`]: task logs on disk (rotating writer, tail/since/follow reader).
//! * [`clock`]: time since the Unix epoch as `MonoTime`.
//!
//! The decisions (state machine, health accounting, file placement) are pure functions in
//! `agent-core`; this crate carries them out.

pub mod clock;
pub mod logfile;
pub mod runtime;
