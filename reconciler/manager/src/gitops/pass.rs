//! One pass of the GitOps loop over a head already read: for each stack, the plan against
//! what runs, the sync decision (`reconciler_deploy::sync`), and the writes — one batch per
//! stack that applies its plan and records its deployment, or a sync-state change (an
//! invalid stack file, a held mass deletion, drift). And, apart from passes, the outcomes of
//! the deployments in progress as their rollouts end.
//!
//! Every pass decides every stack under one read of the state (in place, no copy); a write
//! refused because the state moved is tried again by the next pass (a few hundred
//! milliseconds later), never forced.

use super::fetch::Fetched;
use crate::error::ApiError;
use crate::manager::Manager;
use reconciler_deploy::stacks::plan_summary;
use reconciler_deploy::sync::{Decision, SyncInput, decide, still_pinned};
use reconciler_deploy::{Apply, SealedSecret, execute, outcome};
use reconciler_gitops::show_problem;
use reconciler_orchestrator::state::ClusterState;
use reconciler_orchestrator::state::gitops::{
    Deployment, GitopsCommand, Outcome, SourceStatus, StackSync, Trigger,
};
use reconciler_planner::plan::{StackPlan, Warning};
use reconciler_store::{StoreCommand, SystemClock};
use reconciler_types::{Clock, MonoTime, ServiceId, StackName};
use std::collections::{BTreeMap, BTreeSet};

/// What a pass did, for the loop's timing and the logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Stacks whose plan was written.
    pub applied: Vec<String>,
    /// A write was refused because the state moved: pass again soon.
    pub retry: bool,
}

fn now() -> MonoTime {
    SystemClock::new().now()
}

/// Why each broken stack of the head cannot be used, by stack.
fn broken_stacks(f: &Fetched) -> BTreeMap<StackName, String> {
    let mut out: BTreeMap<StackName, Vec<String>> = BTreeMap::new();
    for p in &f.desired.problems {
        out.entry(StackName::new(p.stack.clone())).or_default().push(show_problem(p));
    }
    out.into_iter().map(|(k, v)| (k, v.join("; "))).collect()
}

/// The source status a read head makes: its commit, and the head's broken stacks as the
/// error.
pub fn head_status(f: &Fetched) -> SourceStatus {
    let broken = broken_stacks(f);
    let error = (!broken.is_empty()).then(|| {
        let n = broken.len();
        let list: Vec<&str> = broken.values().map(String::as_str).collect();
        format!(
            "{n} invalid stack{} at {}: {}",
            if n == 1 { "" } else { "s" },
            reconciler_gitops::short(&f.commit),
            list.join("; ")
        )
    });
    let skipped =
        f.desired.skipped.iter().map(|(stack, why)| format!("stack {stack}: {why}")).collect();
    SourceStatus { commit: Some(f.commit.clone()), error, at: now(), skipped }
}

/// The last deployment of a stack, when it is still in progress.
fn in_progress<'s>(state: &'s ClusterState, stack: &StackName) -> Option<&'s Deployment> {
    let last = state.stacks.get(stack)?.deploy.deployments.last()?;
    (last.outcome == Outcome::InProgress).then_some(last)
}

/// What a pass decided for one stack, carried out after the state is released.
enum Action {
    /// Record the stack's sync state (`before` is what the state held).
    Sync { stack: StackName, before: Option<StackSync>, next: StackSync },
    /// Write the stack's plan and deployment record as one batch.
    Deploy {
        stack: StackName,
        before: Option<StackSync>,
        batch: StoreCommand,
        trigger: Trigger,
        summary: String,
    },
}

/// Applies what `f` asks of every stack, as the sync policy decides. The state is read in
/// place (a copy costs tens of milliseconds at 100,000 tasks): what runs, then every stack's
/// decision and batch under one read, so all of them see the same state; the writes follow.
pub async fn apply_head(m: &Manager, f: &Fetched) -> Report {
    let mut actual = m.with_state(|state| reconciler_deploy::actual(state, "cluster"));
    // A skipped stack is neither deployed nor removed: what runs of it stays as it is.
    actual.stacks.retain(|name, _| !f.desired.skipped.contains_key(name));
    let plan = reconciler_gitops::plan(&f.desired, &actual);
    let actions = m.with_state(|state| decide_stacks(m, state, f, &plan));
    let mut report = Report::default();
    for action in actions {
        match action {
            Action::Sync { stack, before, next } => {
                set_sync(m, &stack, before.as_ref(), next).await
            }
            Action::Deploy { stack, before, batch, trigger, summary } => {
                match write_stack(m, f, &stack, batch, trigger, &summary).await {
                    Ok(()) => report.applied.push(stack.to_string()),
                    Err(Failed::Moved) => report.retry = true,
                    Err(Failed::Refused(why)) => {
                        let next =
                            StackSync { error: Some(why), ..before.clone().unwrap_or_default() };
                        set_sync(m, &stack, before.as_ref(), next).await;
                    }
                }
            }
        }
    }
    report
}

/// Every stack's decision on `state` (see [`apply_head`]).
fn decide_stacks(
    m: &Manager,
    state: &ClusterState,
    f: &Fetched,
    plan: &reconciler_planner::plan::Plan,
) -> Vec<Action> {
    let broken = broken_stacks(f);
    let mut names: BTreeSet<StackName> = f.desired.set.stacks.keys().cloned().collect();
    names.extend(plan.stacks.keys().map(|k| StackName::new(k.clone())));
    names.extend(broken.keys().cloned());
    let mut actions = Vec::new();
    for name in names {
        let sync = state.stacks.get(&name).map(|h| &h.deploy.sync);
        let set =
            |next: StackSync| Action::Sync { stack: name.clone(), before: sync.cloned(), next };
        if let Some(why) = broken.get(&name) {
            let next = StackSync { error: Some(why.clone()), ..sync.cloned().unwrap_or_default() };
            actions.push(set(next));
            continue;
        }
        let running = in_progress(state, &name);
        // A rollout that just ended is the outcome tracker's: it may pin the stack.
        if running.is_some_and(|d| outcome(d, state).is_some()) {
            continue;
        }
        let part = plan.stacks.get(name.as_str());
        let warnings: Vec<&Warning> =
            plan.warnings.iter().filter(|w| w.stack == name.as_str()).collect();
        let in_git = f.desired.set.stacks.get(&name);
        let policy = in_git.map_or(f.desired.default_policy, |s| s.policy);
        let pinned = state.stacks.get(&name).is_some_and(|h| still_pinned(&h.deploy, in_git));
        let input = SyncInput {
            plan: part,
            warnings: &warnings,
            policy,
            head: &f.commit,
            sync,
            request: None,
            pinned,
        };
        match decide(&input) {
            Decision::InSync { record } => {
                if in_git.is_some()
                    && (record
                        || sync
                            .is_some_and(|s| s.error.is_some() || s.held || !s.drifted.is_empty()))
                {
                    actions.push(set(StackSync {
                        head: Some(f.commit.clone()),
                        error: None,
                        held: false,
                        drifted: Vec::new(),
                        // Git no longer offers what the stack was rolled back from.
                        rolled_back_from: sync
                            .and_then(|s| s.rolled_back_from.clone())
                            .filter(|_| pinned),
                    }));
                }
            }
            // Drift during a rollout waits for its end (the rollout is Git's own change).
            Decision::Apply(Trigger::SelfHeal) if running.is_some() => {}
            Decision::Apply(trigger) => {
                let Some(part) = part else { continue };
                match stack_batch(m, state, f, &name, part, &trigger) {
                    Ok(batch) => actions.push(Action::Deploy {
                        stack: name.clone(),
                        before: sync.cloned(),
                        batch,
                        trigger,
                        summary: plan_summary(&part.counts),
                    }),
                    Err(why) => {
                        actions.push(set(StackSync {
                            error: Some(why),
                            ..sync.cloned().unwrap_or_default()
                        }));
                    }
                }
            }
            Decision::Hold(why) => {
                actions.push(set(StackSync {
                    held: true,
                    error: Some(why),
                    ..sync.cloned().unwrap_or_default()
                }));
            }
            Decision::Drift(services) => {
                actions.push(set(StackSync {
                    drifted: services,
                    ..sync.cloned().unwrap_or_default()
                }));
            }
            Decision::OutOfSync | Decision::Pinned => {}
        }
    }
    actions
}

/// Writes a stack's sync state when it changes.
async fn set_sync(m: &Manager, stack: &StackName, old: Option<&StackSync>, next: StackSync) {
    if old == Some(&next) || (old.is_none() && next == StackSync::default()) {
        return;
    }
    let cmd =
        StoreCommand::Gitops(Box::new(GitopsCommand::SetSync { stack: stack.clone(), sync: next }));
    if let Err(e) = m.write(cmd).await {
        tracing::warn!(%stack, error = %e, "gitops: cannot record the stack's sync state");
    }
}

enum Failed {
    /// The state moved under the plan: plan again.
    Moved,
    /// The plan cannot be applied (recorded as the stack's error).
    Refused(String),
}

/// Seals the stack's secrets that the plan writes.
fn sealed_secrets(
    m: &Manager,
    f: &Fetched,
    stack: &StackName,
    part: &StackPlan,
) -> Result<BTreeMap<String, SealedSecret>, String> {
    let mut out = BTreeMap::new();
    let Some(plain) = f.desired.secrets.get(stack) else { return Ok(out) };
    for name in part.secrets.keys() {
        if let Some(value) = plain.get(name) {
            let sealed = m
                .cluster_key
                .seal(&value.0)
                .map_err(|e| format!("cannot seal secret {name}: {e}"))?;
            let size = u64::try_from(value.0.len()).unwrap_or(u64::MAX);
            out.insert(name.clone(), SealedSecret { sealed, size });
        }
    }
    Ok(out)
}

/// One stack's batch: its plan and its deployment record (or why it cannot be applied).
fn stack_batch(
    m: &Manager,
    state: &ClusterState,
    f: &Fetched,
    stack: &StackName,
    part: &StackPlan,
    trigger: &Trigger,
) -> Result<StoreCommand, String> {
    let secrets = sealed_secrets(m, f, stack, part)?;
    let mut ids = Vec::new();
    for _ in 0..part.services.len() {
        let id = crate::token::new_node_id().map_err(|e| e.to_string())?;
        ids.push(ServiceId::new(id));
    }
    let mut fallback = 0u32;
    let mut next_id = || {
        ids.pop().unwrap_or_else(|| {
            fallback += 1;
            ServiceId::new(format!("{}-{fallback}", stack.as_str()))
        })
    };
    let deployment = Deployment {
        id: 0,
        commit: f.commit.clone(),
        author: f.info.author.clone(),
        subject: f.info.subject.clone(),
        at: now(),
        summary: plan_summary(&part.counts),
        trigger: trigger.clone(),
        services: BTreeMap::new(),
        outcome: Outcome::InProgress,
        message: String::new(),
    };
    let apply = Apply {
        stack,
        plan: part,
        desired: f.desired.set.stacks.get(stack),
        secrets: &secrets,
        deployment,
    };
    execute(&apply, state, &mut next_id).map_err(|e| e.to_string())
}

/// Writes one stack's batch.
async fn write_stack(
    m: &Manager,
    f: &Fetched,
    stack: &StackName,
    batch: StoreCommand,
    trigger: Trigger,
    summary: &str,
) -> Result<(), Failed> {
    match m.write(batch).await {
        Ok(index) => {
            tracing::info!(%stack, commit = reconciler_gitops::short(&f.commit), index, ?trigger, %summary, "gitops: deployed");
            Ok(())
        }
        Err(ApiError::Conflict(_) | ApiError::NotFound(_)) => Err(Failed::Moved),
        Err(e @ (ApiError::BadRequest(_) | ApiError::FailedPrecondition(_))) => {
            tracing::warn!(%stack, error = %e, "gitops: the plan was refused");
            Err(Failed::Refused(format!(
                "cannot apply {}: {e}",
                reconciler_gitops::short(&f.commit)
            )))
        }
        Err(e) => {
            tracing::warn!(%stack, error = %e, "gitops: cannot write the plan");
            Err(Failed::Moved)
        }
    }
}

/// The outcome writes that the deployments in progress call for: a finished rollout's
/// result, and for a rollout that rolled itself back, the stack pinned (auto sync does not
/// apply that commit again) and its head back at the commit that runs again.
pub fn outcome_commands(state: &ClusterState) -> Vec<StoreCommand> {
    let mut out = Vec::new();
    for (stack, h) in state.stacks.iter() {
        let deployments = &h.deploy.deployments;
        for (i, d) in deployments.iter().enumerate() {
            if d.outcome != Outcome::InProgress {
                continue;
            }
            let Some((result, message)) = outcome(d, state) else { continue };
            out.push(StoreCommand::Gitops(Box::new(GitopsCommand::SetOutcome {
                stack: stack.clone(),
                id: d.id,
                outcome: result,
                message: message.clone(),
            })));
            let latest = i + 1 == deployments.len();
            if result == Outcome::RolledBack && latest {
                let before =
                    deployments[..i].iter().rev().find(|p| p.outcome == Outcome::Succeeded);
                let sync = StackSync {
                    head: before.map(|p| p.commit.clone()),
                    error: None,
                    held: false,
                    drifted: Vec::new(),
                    rolled_back_from: Some(d.commit.clone()),
                };
                out.push(StoreCommand::Gitops(Box::new(GitopsCommand::SetSync {
                    stack: stack.clone(),
                    sync,
                })));
            }
        }
    }
    out
}

/// Records the outcomes of the deployments whose rollouts ended.
pub async fn record_outcomes(m: &Manager) {
    let commands = m.node.state.read(|s| {
        let any = s
            .state
            .stacks
            .values()
            .any(|h| h.deploy.deployments.iter().any(|d| d.outcome == Outcome::InProgress));
        if any { outcome_commands(&s.state) } else { Vec::new() }
    });
    if commands.is_empty() {
        return;
    }
    for c in &commands {
        if let StoreCommand::Gitops(g) = c
            && let GitopsCommand::SetOutcome { stack, id, outcome, message } = &**g
        {
            tracing::info!(%stack, deployment = id, outcome = outcome.as_str(), message, "gitops: deployment ended");
        }
    }
    if let Err(e) = m.write(StoreCommand::Batch { commands }).await {
        tracing::warn!(error = %e, "gitops: cannot record deployment outcomes");
    }
}
