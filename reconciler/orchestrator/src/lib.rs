//! flotilla's orchestration core, pure and deterministic: what Swarm's manager decides, as
//! functions of a state snapshot and an event (or the time) that answer store changes.
//!
//! ```text
//!   store events ─┐   orchestrator::handle(view, event, now)    ┌─► Vec<StoreChange>
//!   (services,    │   ┌──────────────────────────────────────┐  │   (create task, set
//!    tasks,       ├──►│ replicated · global · restart        ├──┤    desired state, update
//!    nodes)       │   │ updater ─► rollout state machine     │  │    status, rollback, …)
//!   Tick(now) ────┘   └──────────────────────────────────────┘  │
//!                     scheduler::schedule(view, now) ───────────┤   assignments, "no
//!                     orchestrator::after_change (reaper, …) ───┘   suitable node (…)"
//! ```
//!
//! * [`orchestrator`]: the event entry points ([`orchestrator::handle`],
//!   [`orchestrator::after_change`], [`orchestrator::next_wake`],
//!   [`orchestrator::reconcile_all`]).
//! * [`replicated`], [`global`]: the two service orchestrators (swarmkit
//!   `orchestrator/replicated`, `orchestrator/global`).
//! * [`restart`]: the restart supervisor (condition, delay, max_attempts, window).
//! * [`reaper`]: task history (`task-history-limit`) and REMOVE deletion.
//! * [`scheduler`]: filters that explain themselves, constraints, spread, balancing.
//! * [`rollout`]: the rolling update / rollback state machine (`updater.go`), serializable;
//!   [`updater`] connects it to the orchestrators.
//! * [`service`]: a service record and its update / manual rollback / automatic rollback.
//! * [`stack`]: beyond Swarm (opt-in `x-flotilla:`): health-gated waves and a stack-wide
//!   failure budget.
//! * [`state`]: the snapshot ([`state::ClusterView`]) and [`state::StoreChange`] with its
//!   pure `apply`. [`slot`]: slots and deterministic task ids.
//!
//! No tokio, no clock, no I/O: time comes in as `MonoTime`; identical inputs give identical
//! outputs. The rules are those of `docs/swarm-semantics.md`; where flotilla deliberately
//! differs (always toward a rollout that cannot hang or double up), the module says so.

pub mod global;
pub mod orchestrator;
pub mod reaper;
pub mod replicated;
pub mod restart;
pub mod rollout;
pub mod scheduler;
pub mod service;
pub mod slot;
pub mod stack;
pub mod state;
pub mod updater;
pub mod view;
