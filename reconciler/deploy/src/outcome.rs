//! A deployment's result, read from the services it wrote: a rollout that was rolled back
//! by itself makes the deployment `rolled back` (never a success), one that paused makes it
//! `failed`, and it succeeds once every service it wrote has finished its rollout and runs
//! its replicas at the version the deployment wrote.

use reconciler_orchestrator::rollout::policy::MSG_MANUAL_ROLLBACK;
use reconciler_orchestrator::state::gitops::{Deployment, Outcome};
use reconciler_orchestrator::state::{ClusterState, ServiceRecord};
use reconciler_types::{TaskState, UpdateState};

/// How one service of the deployment stands.
enum Standing {
    Done,
    Pending,
    Ended(Outcome, String),
}

/// The outcome of an in-progress deployment, with its message; `None` while it is still in
/// progress.
pub fn outcome(d: &Deployment, state: &ClusterState) -> Option<(Outcome, String)> {
    let mut pending = false;
    let mut failed = None;
    for (id, version) in &d.services {
        let Some(r) = state.services.get(id) else { continue };
        match standing(r, *version, state) {
            Standing::Done => {}
            Standing::Pending => pending = true,
            Standing::Ended(Outcome::RolledBack, m) => return Some((Outcome::RolledBack, m)),
            Standing::Ended(o, m) => failed = failed.or(Some((o, m))),
        }
    }
    match (failed, pending) {
        (Some(f), _) => Some(f),
        (None, true) => None,
        (None, false) => Some((Outcome::Succeeded, String::new())),
    }
}

fn standing(r: &ServiceRecord, version: u64, state: &ClusterState) -> Standing {
    let status = r.update_status.as_ref();
    let named = |m: &str| format!("service {}: {m}", r.spec.name);
    if r.spec_version != version {
        // Rolled back by itself (a manual rollback says so in its message), or superseded.
        return match status {
            Some(s) if rolled_back(s.state) && s.message != MSG_MANUAL_ROLLBACK => {
                Standing::Ended(Outcome::RolledBack, named(&s.message))
            }
            _ => Standing::Done,
        };
    }
    match status.map(|s| (s.state, s.message.as_str())) {
        Some((UpdateState::Paused, m)) => Standing::Ended(Outcome::Failed, named(m)),
        Some((UpdateState::Updating, _)) => Standing::Pending,
        Some((s, m)) if rolled_back(s) => Standing::Ended(Outcome::RolledBack, named(m)),
        _ if converged(r, version, state) => Standing::Done,
        _ => Standing::Pending,
    }
}

fn rolled_back(s: UpdateState) -> bool {
    matches!(
        s,
        UpdateState::RollbackStarted | UpdateState::RollbackCompleted | UpdateState::RollbackPaused
    )
}

/// Every task the service wants running runs at `version` (a replicated service has its
/// replicas; a global one has no task of another version left).
fn converged(r: &ServiceRecord, version: u64, state: &ClusterState) -> bool {
    let live: Vec<_> =
        state.service_tasks(&r.id).filter(|t| t.desired_state == TaskState::Running).collect();
    let running = live
        .iter()
        .filter(|t| t.spec_version == version && t.status.state == TaskState::Running)
        .count();
    match r.spec.replicas() {
        Some(n) => u64::try_from(running).unwrap_or(u64::MAX) >= n,
        None => running == live.len(),
    }
}
