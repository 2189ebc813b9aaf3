//! The assembly of a plan, shared by `flotilla reconcile --dry-run` and the leader's GitOps
//! loop, so that what a pull-request comment shows is what the loop applies:
//!
//! ```text
//!  Repo ─► desired(rev) ─► read each stack (reconciler-source) ─► convert (planner) ─► Desired
//!                                                                                    │
//!  actual StackSet (a snapshot, the live ClusterState, or another commit) ─► plan() ─┴─► Plan
//! ```
//!
//! [`desired`] reads and converts one revision (and, for the leader, keeps the plain values
//! of the stacks' secrets so they can be sealed at once); [`plan`] diffs it against what
//! runs; [`base::against_base`] compares two revisions of one repository. Reads Git; no
//! network but `git fetch`, no clock.

pub mod base;
pub mod desired;

pub use desired::{
    Desired, Plain, desired, plan, short, show_problem, skip_unrunnable, unrunnable,
};
