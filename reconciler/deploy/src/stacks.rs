//! What `flotilla stack ls | services | ps | history | rollback | rm` read and write, from a
//! `ClusterState`: each stack's sync state (from its GitOps records and the drift between its
//! services and what its last deployment applied), the batch that returns a stack to an
//! earlier deployment, and the batch that removes a stack.
//!
//! ```text
//!  ClusterState ─► status()   ─► SYNC: failed │ drifted │ rolled back │ out of sync │ synced
//!               ─► rollback() ─► SetSync(pin) + execute(kept specs, Trigger::Rollback)
//!               ─► remove()   ─► services, secrets, configs, networks (docker stack rm)
//! ```
//!
//! A stack is what carries the `com.docker.stack.namespace` label, as in Docker, plus the
//! stacks Git deploys whose services are all gone (removed by hand: drift).

use crate::execute::{Apply, ExecuteError, SealedSecret, execute};
use crate::live::actual;
use reconciler_orchestrator::state::gitops::{
    Deployment, GitopsCommand, KeptStack, Outcome, StackDeploys, StackSync, Trigger,
};
use reconciler_orchestrator::state::{ClusterState, Expect, ServiceRecord, StoreCommand};
use reconciler_planner::checks::count_stack;
use reconciler_planner::diff::diff_stack;
use reconciler_planner::plan::{Action, Counts};
use reconciler_types::stack::NAMESPACE_LABEL;
use reconciler_types::{MonoTime, ServiceId, StackName, StackSet, StackSpec};
use std::collections::{BTreeMap, BTreeSet};

/// A stack's sync state, as `stack ls` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// The cluster runs what Git's head says.
    Synced,
    /// Git offers a commit that is not applied (manual sync, or a held mass deletion).
    OutOfSync,
    /// Services differ from what the last deployment applied (changed by hand).
    Drifted,
    /// Git's head could not be applied (invalid files, a refused plan), or the last
    /// deployment's rollout failed.
    Failed,
    /// The stack was rolled back (by `stack rollback`, or by a failed rollout).
    RolledBack,
    /// Not deployed from Git (no deployment record).
    Unmanaged,
}

impl SyncState {
    /// `synced`, `out of sync`, `drifted`, `failed`, `rolled back`, `unmanaged`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::OutOfSync => "out of sync",
            SyncState::Drifted => "drifted",
            SyncState::Failed => "failed",
            SyncState::RolledBack => "rolled back",
            SyncState::Unmanaged => "unmanaged",
        }
    }
}

/// One stack as `stack ls` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct StackStatus<'a> {
    /// The stack.
    pub name: StackName,
    /// How many services carry its namespace.
    pub services: usize,
    /// Its last deployment.
    pub last: Option<&'a Deployment>,
    /// Its sync state.
    pub sync: SyncState,
    /// Why it is in that state (an error, the drifted services, the commit it was rolled
    /// back from); empty when synced.
    pub message: String,
    /// The services that differ from what the last deployment applied.
    pub drifted: Vec<String>,
}

/// Whether an object's labels put it in `stack`.
pub fn in_stack(labels: &BTreeMap<String, String>, stack: &StackName) -> bool {
    labels.get(NAMESPACE_LABEL).is_some_and(|s| s == stack.as_str())
}

/// The services of a stack, by name.
pub fn services<'a>(state: &'a ClusterState, stack: &StackName) -> Vec<&'a ServiceRecord> {
    let mut out: Vec<_> =
        state.services.values().filter(|r| in_stack(&r.spec.labels, stack)).collect();
    out.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    out
}

/// What a stack's last deployment applied, when the cluster should still run it: not after
/// a rollout that rolled back by itself (the services returned to their previous specs).
fn expected(deploys: &StackDeploys) -> Option<KeptStack> {
    let last = deploys.deployments.last()?;
    if last.outcome == Outcome::RolledBack {
        return None;
    }
    deploys.kept(last.id)
}

/// The services that differ from what the stack's last deployment applied (changed, scaled,
/// removed or added by hand), as the loop's self-heal would see them; `live` is the
/// cluster's stacks ([`actual`]).
pub fn drift(deploys: &StackDeploys, live: &StackSet, stack: &StackName) -> Vec<String> {
    let Some(applied) = expected(deploys) else { return Vec::new() };
    let empty = StackSpec::default();
    let running = live.stacks.get(stack).unwrap_or(&empty);
    let plan = diff_stack(&applied.stack, running, true);
    plan.services
        .values()
        .filter(|s| matches!(s.action, Action::Create | Action::Update | Action::Remove))
        .map(|s| s.name.clone())
        .collect()
}

/// The names of the stacks: those with objects in the cluster, and those Git deploys
/// (their last deployment applied specs) whose objects are gone.
pub fn names(state: &ClusterState) -> BTreeSet<StackName> {
    let labelled = |labels: &BTreeMap<String, String>| {
        labels.get(NAMESPACE_LABEL).map(|s| StackName::new(s.clone()))
    };
    let mut out: BTreeSet<StackName> =
        state.services.values().filter_map(|r| labelled(&r.spec.labels)).collect();
    out.extend(state.networks.values().filter_map(|r| labelled(&r.spec.labels)));
    out.extend(state.configs.values().filter_map(|r| labelled(&r.labels)));
    out.extend(state.secrets.values().filter_map(|r| labelled(&r.labels)));
    for (name, h) in state.stacks.iter() {
        let last = h.deploy.deployments.last();
        let deployed =
            last.is_some_and(|d| d.outcome != Outcome::RolledBack && h.deploy.keeps(d.id));
        if deployed || h.deploy.sync.error.is_some() {
            out.insert(name.clone());
        }
    }
    out
}

/// Every stack's status, by name.
pub fn statuses(state: &ClusterState) -> Vec<StackStatus<'_>> {
    let live = actual(state, "cluster");
    names(state).into_iter().map(|name| status_in(state, &live, name)).collect()
}

/// One stack's status (`None`: no such stack).
pub fn status<'a>(state: &'a ClusterState, stack: &StackName) -> Option<StackStatus<'a>> {
    names(state).contains(stack).then(|| status_in(state, &actual(state, "cluster"), stack.clone()))
}

fn status_in<'a>(state: &'a ClusterState, live: &StackSet, name: StackName) -> StackStatus<'a> {
    let services = services(state, &name).len();
    let Some(deploys) = state.stacks.get(&name).map(|h| &h.deploy) else {
        return StackStatus {
            name,
            services,
            last: None,
            sync: SyncState::Unmanaged,
            message: String::new(),
            drifted: Vec::new(),
        };
    };
    let last = deploys.deployments.last();
    let mut drifted: BTreeSet<String> = deploys.sync.drifted.iter().cloned().collect();
    drifted.extend(drift(deploys, live, &name));
    let drifted: Vec<String> = drifted.into_iter().collect();
    let (sync, message) = sync_state(state, deploys, &drifted);
    StackStatus { name, services, last, sync, message, drifted }
}

/// The sync state, first of: failed, drifted, rolled back, out of sync, synced.
fn sync_state(
    state: &ClusterState,
    deploys: &StackDeploys,
    drifted: &[String],
) -> (SyncState, String) {
    let sync = &deploys.sync;
    let last = deploys.deployments.last();
    if let Some(e) = sync.error.as_ref().filter(|_| !sync.held) {
        return (SyncState::Failed, e.clone());
    }
    if let Some(d) = last.filter(|d| d.outcome == Outcome::Failed) {
        return (SyncState::Failed, d.message.clone());
    }
    if last.is_none() && sync.head.is_none() && !sync.held {
        return (SyncState::Unmanaged, String::new());
    }
    if !drifted.is_empty() {
        return (SyncState::Drifted, format!("changed by hand: {}", drifted.join(", ")));
    }
    if let Some(from) = &sync.rolled_back_from {
        return (SyncState::RolledBack, format!("rolled back from {}", short(from)));
    }
    if let Some(d) = last.filter(|d| d.outcome == Outcome::RolledBack) {
        return (SyncState::RolledBack, d.message.clone());
    }
    if sync.held {
        return (SyncState::OutOfSync, sync.error.clone().unwrap_or_default());
    }
    match state.source_status.commit.as_deref() {
        Some(head) if state.source.is_some() && sync.head.as_deref() != Some(head) => {
            (SyncState::OutOfSync, format!("{} is not applied", short(head)))
        }
        _ => (SyncState::Synced, String::new()),
    }
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// A plan's counts as a deployment records them (`1 created, 2 updated`, or `no changes`).
pub fn plan_summary(c: &Counts) -> String {
    let parts: Vec<String> =
        [(c.created, "created"), (c.updated, "updated"), (c.removed, "removed")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
    if parts.is_empty() { "no changes".to_owned() } else { parts.join(", ") }
}

/// `flotilla stack rollback STACK [--to REV]`.
#[derive(Debug, Clone, Copy)]
pub struct RollbackRequest<'a> {
    /// A commit id or a prefix of one (`None`: the deployment before the current one).
    pub to: Option<&'a str>,
    /// Who asked.
    pub by: &'a str,
    /// When (the deployment record's time).
    pub at: MonoTime,
}

/// Why a stack cannot be rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackError {
    /// The stack has no deployment records.
    #[error("stack {0} has no deployments: only stacks deployed from Git can be rolled back")]
    NotDeployed(StackName),
    /// No earlier deployment to return to.
    #[error(
        "stack {0} has no earlier successful deployment to roll back to (the newest {limit} deployments keep their specs)",
        limit = reconciler_orchestrator::state::gitops::ROLLBACK_TARGET_LIMIT
    )]
    NoTarget(StackName),
    /// No deployment of this revision.
    #[error("stack {stack} has no deployment of revision {rev}")]
    NoSuchRevision {
        /// The stack.
        stack: StackName,
        /// The revision asked for.
        rev: String,
    },
    /// The prefix matches several commits.
    #[error("revision {rev} is ambiguous in stack {stack}'s history: {}", commits.join(", "))]
    Ambiguous {
        /// The stack.
        stack: StackName,
        /// The revision asked for.
        rev: String,
        /// The commits it matches.
        commits: Vec<String>,
    },
    /// The deployment is too old to have kept its specs.
    #[error(
        "the deployment of {rev} to stack {stack} no longer keeps its specs (only the newest {limit} do): revert the commit in Git instead",
        limit = reconciler_orchestrator::state::gitops::ROLLBACK_TARGET_LIMIT
    )]
    NotKept {
        /// The stack.
        stack: StackName,
        /// The revision asked for.
        rev: String,
    },
    /// The stack would return to the commit it was rolled back from.
    #[error(
        "stack {stack} was rolled back from {rev}: apply it again with `flotilla reconcile --stack {stack}`"
    )]
    RolledBackFrom {
        /// The stack.
        stack: StackName,
        /// The revision asked for.
        rev: String,
    },
    /// The kept specs do not make a batch.
    #[error("cannot return stack {stack} to {rev}")]
    Execute {
        /// The stack.
        stack: StackName,
        /// The revision.
        rev: String,
        /// Why.
        #[source]
        source: ExecuteError,
    },
}

/// A rollback, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// The one batch: the rollback pin, the writes that return the stack to the target's
    /// specs, and the new deployment record.
    pub command: StoreCommand,
    /// The deployment returned to.
    pub target: Deployment,
    /// The commit auto sync will not apply again.
    pub from: String,
    /// What the batch changes (`1 updated`).
    pub summary: String,
}

/// The deployment to return to: with `to`, the newest deployment of the commit it names
/// (the commit or a prefix of it); without, the newest successful deployment before the
/// current one at another commit than the current one and than the one the stack was rolled
/// back from.
fn target<'a>(
    deploys: &'a StackDeploys,
    stack: &StackName,
    to: Option<&str>,
) -> Result<&'a Deployment, RollbackError> {
    let all = &deploys.deployments;
    let current = all.last().ok_or_else(|| RollbackError::NotDeployed(stack.clone()))?;
    let pinned = deploys.sync.rolled_back_from.as_deref();
    let Some(rev) = to else {
        return all
            .iter()
            .rev()
            .skip(1)
            .find(|d| {
                d.commit != current.commit
                    && Some(d.commit.as_str()) != pinned
                    && d.outcome == Outcome::Succeeded
                    && deploys.keeps(d.id)
            })
            .ok_or_else(|| RollbackError::NoTarget(stack.clone()));
    };
    let matching: Vec<&Deployment> =
        all.iter().filter(|d| !rev.is_empty() && d.commit.starts_with(rev)).collect();
    let commits: BTreeSet<&str> = matching.iter().map(|d| d.commit.as_str()).collect();
    if commits.len() > 1 {
        let commits = commits.into_iter().map(|c| short(c).to_owned()).collect();
        return Err(RollbackError::Ambiguous {
            stack: stack.clone(),
            rev: rev.to_owned(),
            commits,
        });
    }
    let Some(newest) = matching.last() else {
        return Err(RollbackError::NoSuchRevision { stack: stack.clone(), rev: rev.to_owned() });
    };
    if Some(newest.commit.as_str()) == pinned {
        return Err(RollbackError::RolledBackFrom { stack: stack.clone(), rev: rev.to_owned() });
    }
    matching
        .iter()
        .rev()
        .find(|d| deploys.keeps(d.id))
        .copied()
        .ok_or_else(|| RollbackError::NotKept { stack: stack.clone(), rev: rev.to_owned() })
}

/// The batch that returns `stack` to an earlier deployment's specs (its services, networks,
/// configs and secrets as that deployment applied them; services added since are removed)
/// and records who asked. Auto sync then leaves the commit the stack was rolled back from
/// alone until Git offers another.
///
/// # Errors
/// See [`RollbackError`].
pub fn rollback(
    state: &ClusterState,
    stack: &StackName,
    req: &RollbackRequest<'_>,
    new_id: &mut dyn FnMut() -> ServiceId,
) -> Result<Rollback, RollbackError> {
    let deploys = state
        .stacks
        .get(stack)
        .map(|h| &h.deploy)
        .filter(|d| !d.deployments.is_empty())
        .ok_or_else(|| RollbackError::NotDeployed(stack.clone()))?;
    let target = target(deploys, stack, req.to)?;
    let kept = deploys.kept(target.id).ok_or_else(|| RollbackError::NotKept {
        stack: stack.clone(),
        rev: target.commit.clone(),
    })?;
    let sync = &deploys.sync;
    // Still pinned: Git has offered nothing new since the last rollback.
    let from = sync
        .rolled_back_from
        .clone()
        .or_else(|| sync.head.clone())
        .or_else(|| deploys.deployments.last().map(|d| d.commit.clone()))
        .unwrap_or_default();
    let live = actual(state, "cluster");
    let empty = StackSpec::default();
    let mut plan = diff_stack(&kept.stack, live.stacks.get(stack).unwrap_or(&empty), true);
    plan.counts = count_stack(&plan);
    let summary = plan_summary(&plan.counts);
    let secrets: BTreeMap<String, SealedSecret> = kept
        .secrets
        .iter()
        .map(|(k, v)| (k.clone(), SealedSecret { sealed: v.sealed.clone(), size: v.size }))
        .collect();
    let deployment = Deployment {
        id: 0,
        commit: target.commit.clone(),
        author: target.author.clone(),
        subject: target.subject.clone(),
        at: req.at,
        summary: summary.clone(),
        trigger: Trigger::Rollback { by: req.by.to_owned() },
        services: BTreeMap::new(),
        outcome: Outcome::InProgress,
        message: String::new(),
    };
    let apply =
        Apply { stack, plan: &plan, desired: Some(&kept.stack), secrets: &secrets, deployment };
    let batch = execute(&apply, state, new_id).map_err(|source| RollbackError::Execute {
        stack: stack.clone(),
        rev: target.commit.clone(),
        source,
    })?;
    let pin = GitopsCommand::SetSync {
        stack: stack.clone(),
        sync: StackSync { rolled_back_from: Some(from.clone()), ..sync.clone() },
    };
    // The pin first: the deployment record of a rollback keeps it.
    let command =
        StoreCommand::Batch { commands: vec![StoreCommand::Gitops(Box::new(pin)), batch] };
    Ok(Rollback { command, target: target.clone(), from, summary })
}

/// One object `stack rm` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// `service`, `secret`, `config` or `network`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// The batch that removes a stack's services, secrets, configs and networks (in that order,
/// as `docker stack rm`), each at the version read; `None` when nothing carries the stack's
/// namespace.
pub fn remove(state: &ClusterState, stack: &StackName) -> Option<(StoreCommand, Vec<Removed>)> {
    let mut commands = Vec::new();
    let mut removed = Vec::new();
    let mut note = |kind, name: &str| removed.push(Removed { kind, name: name.to_owned() });
    for r in services(state, stack) {
        note("service", &r.spec.name);
        commands.push(StoreCommand::RemoveService {
            id: r.id.clone(),
            expected: Expect::Version(r.version),
        });
    }
    for s in state.secrets.values().filter(|s| in_stack(&s.labels, stack)) {
        note("secret", &s.name);
        let expected = Expect::Version(s.version);
        commands.push(StoreCommand::RemoveSecret { name: s.name.clone(), expected });
    }
    for c in state.configs.values().filter(|c| in_stack(&c.labels, stack)) {
        note("config", &c.name);
        let expected = Expect::Version(c.version);
        commands.push(StoreCommand::RemoveConfig { name: c.name.clone(), expected });
    }
    for n in state.networks.values().filter(|n| in_stack(&n.spec.labels, stack)) {
        note("network", &n.spec.name);
        let expected = Expect::Version(n.version);
        commands.push(StoreCommand::RemoveNetwork { name: n.spec.name.clone(), expected });
    }
    (!commands.is_empty()).then_some((StoreCommand::Batch { commands }, removed))
}
