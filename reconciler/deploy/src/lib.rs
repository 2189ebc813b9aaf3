//! flotilla's pure GitOps core: what the leader's loop decides, without doing any of it.
//!
//! ```text
//!  ClusterState ──live──► actual StackSet ─┐
//!  Git (desired StackSet) ─────────────────┼─diff (planner)─► Plan ─┐
//!                                          │                        ├─sync::decide─► apply? hold? skip? drift?
//!                                          │                        └─execute──────► one StoreCommand batch per stack
//!  ClusterState (services, tasks) ─────────┴─outcome──────────────────────────────► succeeded | rolled back | failed
//! ```
//!
//! Entry points: [`live::actual`] (the cluster's stacks, read the way `reconcile --dry-run`
//! reads a state snapshot), [`execute::execute`] (a stack's plan → the batch that applies
//! it, ending with its deployment record), [`sync::decide`] (sync policy, mass-deletion
//! hold, rollback pin, drift and self-heal), [`outcome::outcome`] (a deployment's result
//! from its services' rollouts), [`stacks`] (what the stack commands read: sync state and
//! drift; and write: a rollback to an earlier deployment, a stack's removal). Pure: no I/O, no clock, no randomness (new service ids
//! come from the caller).

pub mod execute;
pub mod live;
pub mod outcome;
pub mod stacks;
pub mod sync;

pub use execute::{Apply, ExecuteError, SealedSecret, execute};
pub use live::actual;
pub use outcome::outcome;
pub use sync::{Decision, SyncInput, decide};
