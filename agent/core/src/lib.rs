//! flotilla's agent, pure part: every decision the agent makes about a task, as functions of
//! data. The effectful `agent` crate reads assignments, calls the runtime and the clock, and
//! asks these functions what comes next.
//!
//! ```text
//!  assignment (desired state) ─┐
//!  observed TaskStatus ────────┴─► task::next_step ─► Step::Run(Op) ─► runtime ─► OpResult
//!                                                                                 │
//!                                  task::after_op(status, op, result, now) ◄──────┘
//!  probe results + time ─► health::HealthTracker ─► Starting / Healthy / Unhealthy
//! ```
//!
//! * [`task`]: the task state machine (`docs/swarm-semantics.md` §1.3).
//! * [`health`]: Docker's health-check rules.
//! * [`files`]: where configs and secrets go, never outside the task.
//! * [`launch`]: the runtime a task asks for, its argv and environment, its name.
//! * [`logs`]: the log record format, line splitting and rotation limits.
//! * [`mesh`]: the routing mesh's choice of backend and its UDP flows.
//!
//! No tokio, filesystem, network, clock or environment reads (see `clippy.toml`).

pub mod files;
pub mod health;
pub mod launch;
pub mod logs;
pub mod mesh;
pub mod task;

pub use health::{Health, HealthPolicy, HealthTest, HealthTracker};
pub use launch::TaskIdentity;
pub use task::{Op, OpError, OpResult, Step, advance, after_op, next_step};
