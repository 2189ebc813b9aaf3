//! What the loop does with one stack at one commit: apply it, hold it, leave it, or report
//! drift (`flotilla.yaml`'s sync policy, prune's mass-deletion guard, the rollback pin and
//! self-heal). A stack's `sync.head` is the commit it was last deployed or found in sync
//! at: changes between Git and the cluster while Git's head is still that commit were made
//! by hand (drift); at a new commit they are Git's.
//!
//! The rollback pin holds while Git's stack is what the stack was rolled back from, compared
//! by content ([`still_pinned`]): a commit that changes only other stacks moves Git's head
//! but does not undo a rollback.

use reconciler_orchestrator::state::gitops::{StackDeploys, StackSync, Trigger};
use reconciler_planner::plan::{Counts, StackPlan, Warning};
use reconciler_types::{StackPolicy, StackSpec, SyncPolicy};

/// A request from an operator (`flotilla reconcile --stack S`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who asked.
    pub by: String,
    /// `--allow-mass-delete`.
    pub allow_mass_delete: bool,
}

/// Everything the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct SyncInput<'a> {
    /// The stack's part of the plan (`None`: nothing differs).
    pub plan: Option<&'a StackPlan>,
    /// The plan's warnings about this stack.
    pub warnings: &'a [&'a Warning],
    /// The stack's policy (Git's, or the default for a stack Git no longer has).
    pub policy: StackPolicy,
    /// The commit Git offers.
    pub head: &'a str,
    /// The stack's sync state in the cluster.
    pub sync: Option<&'a StackSync>,
    /// An operator's request, if this pass answers one.
    pub request: Option<&'a Request>,
    /// Git's stack is the one the stack was rolled back from ([`still_pinned`]), whatever
    /// the commit.
    pub pinned: bool,
}

/// Whether Git's stack (`git`) is what the stack was rolled back from: the specs kept by the
/// newest deployment of `sync.rolled_back_from`. A commit that changes only other stacks
/// keeps the pin; one that changes this stack ends it.
pub fn still_pinned(deploys: &StackDeploys, git: Option<&StackSpec>) -> bool {
    let (Some(from), Some(git)) = (deploys.sync.rolled_back_from.as_deref(), git) else {
        return false;
    };
    deploys
        .deployments
        .iter()
        .rev()
        .filter(|d| d.commit == from)
        .find_map(|d| deploys.kept(d.id))
        .is_some_and(|kept| kept.stack == *git)
}

/// What to do with the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing would change (`record` the head as in sync when it is new).
    InSync {
        /// Whether the stack's head is not yet this commit.
        record: bool,
    },
    /// Write the plan.
    Apply(Trigger),
    /// A mass deletion waits for `--allow-mass-delete`.
    Hold(String),
    /// Manual sync: the head waits for `flotilla reconcile --stack S`.
    OutOfSync,
    /// The stack was rolled back from this very commit: auto sync waits for a new one.
    Pinned,
    /// Changed by hand, and self-heal is off: these services differ from Git.
    Drift(Vec<String>),
}

fn changes(c: &Counts) -> bool {
    c.created + c.updated + c.removed > 0
}

/// The services of a plan that would change.
pub fn changed_services(plan: &StackPlan) -> Vec<String> {
    plan.services.values().map(|s| s.name.clone()).collect()
}

/// Decides one stack's fate for this pass.
pub fn decide(i: &SyncInput<'_>) -> Decision {
    let seen = i.sync.and_then(|s| s.head.as_deref());
    let Some(plan) = i.plan.filter(|p| changes(&p.counts)) else {
        return Decision::InSync { record: seen != Some(i.head) };
    };
    let mass = i.warnings.first().map(|w| w.message.clone());
    if let Some(r) = i.request {
        return match mass {
            Some(m) if !r.allow_mass_delete => Decision::Hold(m),
            _ => Decision::Apply(Trigger::Reconcile { by: r.by.clone() }),
        };
    }
    if seen == Some(i.head) {
        return if i.policy.self_heals() {
            Decision::Apply(Trigger::SelfHeal)
        } else {
            Decision::Drift(changed_services(plan))
        };
    }
    if i.pinned || i.sync.and_then(|s| s.rolled_back_from.as_deref()) == Some(i.head) {
        return Decision::Pinned;
    }
    if i.policy.sync == SyncPolicy::Manual {
        return Decision::OutOfSync;
    }
    match mass {
        Some(m) => Decision::Hold(m),
        None => Decision::Apply(Trigger::Sync),
    }
}
