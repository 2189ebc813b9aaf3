//! flotilla's orchestration core, pure and deterministic: the one replicated model of the
//! cluster and what Swarm's manager decides about it.
//!
//! ```text
//!                      ┌──────────────────── Driver (driver) ─────────────────────┐
//!  applied commands ──►│ events::of ─► queue ─► pass: for each event              │
//!  (StoreEvent)        │                          orchestrator::handle(state, e)  │──► one
//!  lead(term) ────────►│                          → try on the state, after_change│    Orchestrate
//!  now (Clock) ───────►│                        scheduler::schedule(state)        │    batch
//!                      │                        next_wake                          │    + next_wake
//!                      └───────────────────────────────────────────────────────────┘
//!                                   ▲ reads                     │ written through Raft
//!                       ClusterState (state) ◄── apply ◄────────┘ (or the simulator)
//! ```
//!
//! * [`state`]: the replicated model: [`state::ClusterState`], [`state::StoreCommand`] and the
//!   pure `apply` with Swarm's rules for services, configs, secrets and published ports.
//! * [`driver`]: the one driver loop (the leader's task and the simulator run it), and its
//!   contract; [`events`]: the one translation from applied commands to events.
//! * [`fuse`]: a pass's decisions made shorter before they are written (a task created and
//!   placed in one pass is written once).
//! * [`orchestrator`]: the event entry points ([`orchestrator::handle`],
//!   [`orchestrator::after_change`], [`orchestrator::next_wake`]); [`pass::Pass`] is the
//!   context every part of one handler receives whole.
//! * [`replicated`], [`global`]: the two service orchestrators (swarmkit
//!   `orchestrator/replicated`, `orchestrator/global`).
//! * [`restart`]: the restart supervisor (condition, delay, max_attempts, window).
//! * [`reaper`]: task history (`task-history-limit`) and REMOVE deletion.
//! * [`scheduler`]: filters that explain themselves, constraints, spread, balancing.
//! * [`rollout`]: the rolling update / rollback state machine (`updater.go`), serializable;
//!   [`updater`] connects it to the orchestrators.
//! * [`stack`]: beyond Swarm (opt-in `x-flotilla:`): health-gated waves and a stack-wide
//!   failure budget.
//! * [`slot`]: slots and deterministic task ids.
//!
//! No tokio, no clock, no I/O: time comes in as `MonoTime`; identical inputs give identical
//! outputs. The rules are those of `docs/swarm-semantics.md`; where flotilla deliberately
//! differs (always toward a rollout that cannot hang or double up), the module says so.

pub mod driver;
pub mod events;
pub mod fuse;
pub mod global;
pub mod orchestrator;
pub mod pass;
pub mod reaper;
pub mod replicated;
pub mod restart;
pub mod rollout;
pub mod scheduler;
pub mod slot;
pub mod stack;
pub mod state;
pub mod updater;
