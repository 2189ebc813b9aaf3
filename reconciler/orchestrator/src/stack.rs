//! Beyond Swarm, off by default: rollouts coordinated across the services of one stack
//! deployment (one Git commit), set under the stack file's `x-flotilla:` key:
//!
//! ```yaml
//! x-flotilla:
//!   rollout:
//!     failure_budget: stack          # default: service (Swarm: each service on its own)
//!     order: [[db], [api, worker], [web]]   # health-gated waves; default: all at once
//! ```
//!
//! * **Waves**: the services of wave `k+1` get their new spec only once every service of
//!   wave `k` is healthy (its update completed, or nothing to update and every slot running
//!   the current spec). Services not listed go with the first wave. A service that pauses or
//!   rolls back halts the waves: later services keep their old spec.
//! * **Stack failure budget**: when one service of the deployment rolls back (automatically),
//!   every other service the deployment already changed rolls back to its previous spec
//!   (the previous commit's), with status `rollback_started` and a message naming the cause.
//!
//! [`step`] is pure: it reads the state and the deployment record and answers what to do
//! next; the driver applies it and calls it again on every service event.

use crate::state::{ClusterState, ServiceRecord, StoreCommand};
use reconciler_types::{
    MonoTime, ServiceId, ServiceSpec, StackName, TaskState, UpdateState, UpdateStatus,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose failure rolls back what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureBudget {
    /// Each service on its own (Swarm).
    #[default]
    Service,
    /// One service rolling back rolls back the whole deployment.
    Stack,
}

/// A stack's `x-flotilla: rollout:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StackRolloutPolicy {
    /// Whose failure rolls back what.
    pub failure_budget: FailureBudget,
    /// Health-gated waves of services, first wave first (empty = all at once).
    pub waves: Vec<Vec<ServiceId>>,
}

/// Where a deployment is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    /// Applying waves.
    Rolling,
    /// Every service is healthy at its new spec.
    Completed,
    /// A service paused or rolled back; later waves were not applied.
    Halted {
        /// The service that failed.
        cause: ServiceId,
    },
    /// The stack failure budget rolled every changed service back.
    RolledBack {
        /// The service whose rollback started it.
        cause: ServiceId,
    },
}

/// One stack deployment (the services one commit changes). Lives in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackDeployment {
    /// The stack.
    pub stack: StackName,
    /// The commit being deployed.
    pub commit: String,
    /// Its rollout settings.
    pub policy: StackRolloutPolicy,
    /// The new spec of each changed service.
    pub targets: BTreeMap<ServiceId, ServiceSpec>,
    /// The spec version each service got when its new spec was applied.
    pub applied: BTreeMap<ServiceId, u64>,
    /// Where it is.
    pub state: DeploymentState,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum StackAction {
    /// Apply the service's new spec (`UpdateService`), then record its version in `applied`.
    Apply {
        /// The service.
        service: ServiceId,
        /// Its new spec.
        spec: Box<ServiceSpec>,
    },
    /// A store command (a stack-budget rollback).
    Change(Box<StoreCommand>),
    /// Nothing to do for this service until it is healthy.
    Wait {
        /// The service.
        service: ServiceId,
        /// Why (`updating`, `2/3 tasks running`).
        reason: String,
    },
    /// The deployment moved to a new state.
    SetState(DeploymentState),
}

/// How a service of the deployment is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Health {
    NotApplied,
    Healthy,
    Progressing(String),
    Failed { rolled_back: bool },
}

fn health(state: &ClusterState, dep: &StackDeployment, id: &ServiceId) -> Health {
    let Some(version) = dep.applied.get(id) else { return Health::NotApplied };
    let Some(svc) = state.services.get(id) else { return Health::Failed { rolled_back: false } };
    match svc.update_status.as_ref().map(|s| s.state) {
        Some(UpdateState::Paused | UpdateState::RollbackPaused) => {
            return Health::Failed { rolled_back: false };
        }
        Some(UpdateState::RollbackStarted | UpdateState::RollbackCompleted) => {
            return Health::Failed { rolled_back: true };
        }
        // Superseded by another change: the deployment stops here.
        _ if svc.spec_version != *version => return Health::Failed { rolled_back: false },
        Some(UpdateState::Completed) => return Health::Healthy,
        Some(UpdateState::Updating) => return Health::Progressing("updating".to_owned()),
        None => {}
    }
    let running = running_current(state, svc);
    let wanted = svc.spec.replicas().map_or(running, |r| usize::try_from(r).unwrap_or(usize::MAX));
    if running >= wanted {
        Health::Healthy
    } else {
        Health::Progressing(format!("{running}/{wanted} tasks running"))
    }
}

fn running_current(state: &ClusterState, svc: &ServiceRecord) -> usize {
    state
        .service_tasks(&svc.id)
        .filter(|t| t.desired_state == TaskState::Running && t.status.state == TaskState::Running)
        .filter(|t| crate::updater::is_clean(state, t, svc))
        .count()
}

/// The waves in order, unlisted services joining the first one.
fn waves(dep: &StackDeployment) -> Vec<Vec<ServiceId>> {
    let mut waves = dep.policy.waves.clone();
    let listed: Vec<&ServiceId> = waves.iter().flatten().collect();
    let unlisted: Vec<ServiceId> =
        dep.targets.keys().filter(|s| !listed.contains(s)).cloned().collect();
    if waves.is_empty() {
        waves.push(Vec::new());
    }
    waves[0].extend(unlisted);
    waves.iter_mut().for_each(|w| w.retain(|s| dep.targets.contains_key(s)));
    waves
}

/// Decides the deployment's next actions.
#[must_use]
pub fn step(state: &ClusterState, dep: &StackDeployment, now: MonoTime) -> Vec<StackAction> {
    if dep.state != DeploymentState::Rolling {
        return Vec::new();
    }
    let failed = dep.targets.keys().find_map(|id| match health(state, dep, id) {
        Health::Failed { rolled_back } => Some((id, rolled_back)),
        _ => None,
    });
    if let Some((cause, rolled_back)) = failed {
        if rolled_back && dep.policy.failure_budget == FailureBudget::Stack {
            return roll_back_stack(state, dep, cause, now);
        }
        return vec![StackAction::SetState(DeploymentState::Halted { cause: cause.clone() })];
    }
    for wave in waves(dep) {
        let mut actions = Vec::new();
        for id in &wave {
            match health(state, dep, id) {
                Health::NotApplied => {
                    let spec = Box::new(dep.targets[id].clone());
                    actions.push(StackAction::Apply { service: id.clone(), spec });
                }
                Health::Progressing(reason) => {
                    actions.push(StackAction::Wait { service: id.clone(), reason })
                }
                Health::Healthy | Health::Failed { .. } => {}
            }
        }
        if !actions.is_empty() {
            return actions;
        }
    }
    vec![StackAction::SetState(DeploymentState::Completed)]
}

/// The stack failure budget: every other changed service goes back to its previous spec.
fn roll_back_stack(
    state: &ClusterState,
    dep: &StackDeployment,
    cause: &ServiceId,
    now: MonoTime,
) -> Vec<StackAction> {
    let mut actions = Vec::new();
    for (id, version) in &dep.applied {
        let Some(svc) = state.services.get(id) else { continue };
        if id == cause || svc.spec_version != *version || svc.previous_spec.is_none() {
            continue;
        }
        let status = UpdateStatus {
            state: UpdateState::RollbackStarted,
            message: format!(
                "stack {} rolled back: service {cause} rolled back (commit {})",
                dep.stack, dep.commit
            ),
            started_at: Some(now),
            completed_at: None,
        };
        actions.push(StackAction::Change(Box::new(StoreCommand::AutoRollback {
            service: id.clone(),
            status,
        })));
    }
    actions.push(StackAction::SetState(DeploymentState::RolledBack { cause: cause.clone() }));
    actions
}
