//! flotilla's pure planner: stack files → the specs `docker stack deploy` would create, the
//! semantic diff against what runs (or what an older commit wanted), and the plan that
//! `flotilla reconcile --dry-run` prints and the managers execute.
//!
//! ```text
//!  schema::model::Config ──convert──► StackSpec ─┐
//!                                                ├─diff──► Plan ──render──► text | markdown | json
//!  actual (base commit / snapshot) ► StackSpec ──┘  (fields → rollout batches → checks)
//! ```
//!
//! Entry points: [`convert::convert_stack`], [`diff::diff`], [`render::render`],
//! [`snapshot::stacks_from_snapshot`], [`steps::steps`] (the order a stack's plan is carried
//! out in). Pure: no I/O, no clock, no environment.

pub mod checks;
pub mod convert;
mod convert_service;
pub mod diff;
pub mod fields;
pub mod plan;
pub mod render;
pub mod rollout;
pub mod secret_digest;
pub mod snapshot;
pub mod steps;

pub use convert::{ConvertError, ObjectFiles, StackInput, convert_stack};
pub use convert_service::parse_cpus;
pub use diff::{assemble, diff, diff_one};
pub use plan::{Action, Plan, UpdateKind};
