//! The stack endpoints (`reconciler_api::stacks` has the paths and bodies). Reads come from
//! the leader when it can be reached, as the service reads do; a rollback and a removal run on
//! the leader (a follower forwards them) and write one Raft batch each, with compare-and-set
//! on every record they read. What they read and write is decided by `reconciler_deploy`'s
//! pure [`stacks`](reconciler_deploy::stacks) module.

use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::manager::Manager;
use crate::server::{ApiAuth, body};
use crate::services::{epoch_now, rules};
use crate::token;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use reconciler_api::services::{ServiceInfo, ServiceTasks, TaskView};
use reconciler_api::stacks::{
    DeploymentOutcome, DeploymentTrigger, DeploymentView, RemovedObject, STACKS_PATH, StackHistory,
    StackList, StackRemoved, StackRollback, StackRolledBack, StackServices, StackTasks, StackView,
    SyncStatus, stack_path,
};
use reconciler_deploy::stacks::{self as pure, RollbackError, RollbackRequest, SyncState};
use reconciler_orchestrator::state::gitops::{Deployment, Outcome, Trigger};
use reconciler_store::ClusterState;
use reconciler_types::{NodeState, ServiceId, StackName};
use reqwest::Method;
use std::sync::Arc;

type Shared = State<Arc<Manager>>;

/// How many times a rollback or a removal reads again after a record it read changed.
const CAS_ATTEMPTS: u32 = 5;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The stack routes, merged into the manager's router.
pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(STACKS_PATH, get(list))
        .route("/v1/stacks/{name}", axum::routing::delete(remove))
        .route("/v1/stacks/{name}/services", get(services))
        .route("/v1/stacks/{name}/tasks", get(tasks))
        .route("/v1/stacks/{name}/history", get(history))
        .route("/v1/stacks/{name}/rollback", post(rollback))
}

/// A deployment record as the API shows it.
pub fn deployment_view(d: &Deployment) -> DeploymentView {
    let (trigger, by) = match &d.trigger {
        Trigger::Sync => (DeploymentTrigger::Sync, None),
        Trigger::Reconcile { by } => (DeploymentTrigger::Reconcile, Some(by.clone())),
        Trigger::SelfHeal => (DeploymentTrigger::SelfHeal, None),
        Trigger::Rollback { by } => (DeploymentTrigger::Rollback, Some(by.clone())),
    };
    let outcome = match d.outcome {
        Outcome::InProgress => DeploymentOutcome::InProgress,
        Outcome::Succeeded => DeploymentOutcome::Succeeded,
        Outcome::RolledBack => DeploymentOutcome::RolledBack,
        Outcome::Failed => DeploymentOutcome::Failed,
    };
    DeploymentView {
        id: d.id,
        commit: d.commit.clone(),
        author: d.author.clone(),
        subject: d.subject.clone(),
        at: d.at,
        summary: d.summary.clone(),
        trigger,
        by,
        outcome,
        message: d.message.clone(),
    }
}

fn sync_status(s: SyncState) -> SyncStatus {
    match s {
        SyncState::Synced => SyncStatus::Synced,
        SyncState::OutOfSync => SyncStatus::OutOfSync,
        SyncState::Drifted => SyncStatus::Drifted,
        SyncState::Failed => SyncStatus::Failed,
        SyncState::RolledBack => SyncStatus::RolledBack,
        SyncState::Unmanaged => SyncStatus::Unmanaged,
    }
}

/// A stack's row of `stack ls`.
pub fn stack_view(s: &pure::StackStatus<'_>) -> StackView {
    StackView {
        name: s.name.to_string(),
        services: u64::try_from(s.services).unwrap_or(u64::MAX),
        revision: s.last.map(|d| d.commit.clone()),
        sync: sync_status(s.sync),
        message: s.message.clone(),
        drifted: s.drifted.clone(),
        last_deployment: s.last.map(deployment_view),
    }
}

fn nothing_found(stack: &str) -> ApiError {
    ApiError::NotFound(format!("Nothing found in stack: {stack}"))
}

fn rollback_error(e: RollbackError) -> ApiError {
    match e {
        RollbackError::NotDeployed(_)
        | RollbackError::NoTarget(_)
        | RollbackError::NotKept { .. }
        | RollbackError::RolledBackFrom { .. } => ApiError::FailedPrecondition(e.to_string()),
        RollbackError::NoSuchRevision { .. } => ApiError::NotFound(e.to_string()),
        RollbackError::Ambiguous { .. } => ApiError::BadRequest(e.to_string()),
        RollbackError::Execute { ref source, .. } => {
            ApiError::FailedPrecondition(format!("{e}: {source}"))
        }
    }
}

/// The tasks of a stack's removed services (their containers carry the stack's namespace),
/// until the reaper deletes them.
fn removed_services_tasks(state: &ClusterState, stack: &StackName) -> Vec<TaskView> {
    state
        .all_tasks()
        .filter(|t| {
            !state.services.contains_key(&t.service_id)
                && pure::in_stack(&t.spec.container_spec.labels, stack)
        })
        .map(|t| {
            let node = t.node_id.as_ref().map_or_else(String::new, |id| {
                state
                    .nodes
                    .get(id)
                    .map(|n| n.node.description.hostname.clone())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| id.to_string())
            });
            TaskView { task: t.clone(), node, ports: Vec::new() }
        })
        .collect()
}

impl Manager {
    fn read_state<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        self.node.state.read(|applied| f(&applied.state))
    }

    /// `stack ls`, from this manager's state.
    pub fn stack_list(&self) -> StackList {
        let stacks =
            self.read_state(|state| pure::statuses(state).iter().map(stack_view).collect());
        StackList { stacks, now: epoch_now() }
    }

    /// `stack services`, from this manager's state.
    ///
    /// # Errors
    /// `NotFound` for a stack without services.
    pub fn stack_services(&self, name: &str) -> Result<StackServices, ApiError> {
        let stack = StackName::new(name);
        self.read_state(|state| {
            let records = pure::services(state, &stack);
            if records.is_empty() {
                return Err(nothing_found(name));
            }
            let active = rules::active_nodes(state, |n| self.observed_state(n) != NodeState::Down);
            let mut statuses = rules::service_statuses(state, &active);
            let services = records
                .iter()
                .map(|r| ServiceInfo {
                    status: Some(statuses.remove(&r.id).unwrap_or_default()),
                    ..rules::service_info(r)
                })
                .collect();
            let drifted = pure::status(state, &stack).map(|s| s.drifted).unwrap_or_default();
            Ok(StackServices { stack: name.to_owned(), services, drifted })
        })
    }

    /// `stack ps`, from this manager's state.
    ///
    /// # Errors
    /// `NotFound` for a stack without tasks (Docker's `nothing found in stack`).
    pub fn stack_tasks(&self, name: &str) -> Result<StackTasks, ApiError> {
        let stack = StackName::new(name);
        self.read_state(|state| {
            let active: Vec<_> =
                rules::active_nodes(state, |n| self.observed_state(n) != NodeState::Down)
                    .into_iter()
                    .collect();
            let now = epoch_now();
            let services: Vec<ServiceTasks> = pure::services(state, &stack)
                .into_iter()
                .map(|r| ServiceTasks {
                    service: rules::service_info(r),
                    tasks: rules::task_views(state, r),
                    active_nodes: active.clone(),
                    now,
                })
                .collect();
            let removed = removed_services_tasks(state, &stack);
            if services.iter().all(|s| s.tasks.is_empty()) && removed.is_empty() {
                return Err(ApiError::NotFound(format!("nothing found in stack: {name}")));
            }
            let drifted = pure::status(state, &stack).map(|s| s.drifted).unwrap_or_default();
            Ok(StackTasks { stack: name.to_owned(), services, removed, drifted, now })
        })
    }

    /// `stack history`, from this manager's state.
    ///
    /// # Errors
    /// `NotFound` for a stack without deployments.
    pub fn stack_history(&self, name: &str) -> Result<StackHistory, ApiError> {
        let stack = StackName::new(name);
        self.read_state(|state| {
            let deploys = state
                .stacks
                .get(&stack)
                .map(|h| &h.deploy)
                .filter(|d| !d.deployments.is_empty())
                .ok_or_else(|| ApiError::NotFound(format!("stack {name} has no deployments")))?;
            Ok(StackHistory {
                stack: name.to_owned(),
                deployments: deploys.deployments.iter().rev().map(deployment_view).collect(),
                rolled_back_from: deploys.sync.rolled_back_from.clone(),
                now: epoch_now(),
            })
        })
    }

    /// `stack rollback` (leader only): one batch that pins the commit the stack leaves,
    /// returns it to the target deployment's specs and records who asked.
    ///
    /// # Errors
    /// Nothing to return to, an unknown or ambiguous revision, or a failed write.
    pub async fn rollback_stack(
        &self,
        name: &str,
        req: &StackRollback,
    ) -> Result<StackRolledBack, ApiError> {
        let stack = StackName::new(name);
        let by = if req.by.trim().is_empty() { "unknown" } else { req.by.trim() };
        // New ids for the services the rollback creates again: at most all of the stack's.
        let most = self.read_state(|state| {
            state.stacks.get(&stack).map_or(0, |h| {
                h.deploy.applied.values().map(|a| a.services.len()).max().unwrap_or(0)
            })
        });
        let internal = |e: std::io::Error| ApiError::Internal(e.to_string());
        let mut attempts = 0;
        let (planned, deployment) = loop {
            let mut ids = (0..most)
                .map(|_| token::new_node_id().map(ServiceId::new).map_err(internal))
                .collect::<Result<Vec<_>, _>>()?;
            let planned = self.read_state(|state| {
                let r = RollbackRequest { to: req.to.as_deref(), by, at: epoch_now() };
                // `ids` holds as many as the rollback can create; an empty one is never used.
                pure::rollback(state, &stack, &r, &mut || {
                    ids.pop().unwrap_or_else(|| ServiceId::new(""))
                })
            });
            let planned = planned.map_err(rollback_error)?;
            match self.write(planned.command.clone()).await {
                Ok(index) => break (planned, index),
                // The orchestrator wrote a record the batch read (a rollout's status): read
                // again.
                Err(ApiError::Conflict(_)) if attempts < CAS_ATTEMPTS => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        Ok(StackRolledBack {
            deployment,
            commit: planned.target.commit,
            from: planned.from,
            summary: planned.summary,
        })
    }

    /// `stack rm` (leader only): the stack's services, secrets, configs and networks in one
    /// batch.
    ///
    /// # Errors
    /// Nothing carries the stack's name, or a failed write (a change in between).
    pub async fn remove_stack(&self, name: &str) -> Result<StackRemoved, ApiError> {
        let stack = StackName::new(name);
        let mut attempts = 0;
        let (removed, from_git) = loop {
            let (command, removed, from_git) = self.read_state(|state| {
                let (command, removed) =
                    pure::remove(state, &stack).ok_or_else(|| nothing_found(name))?;
                let from_git = state
                    .stacks
                    .get(&stack)
                    .and_then(|h| h.deploy.deployments.last().map(|d| h.deploy.keeps(d.id)))
                    .unwrap_or(false);
                Ok::<_, ApiError>((command, removed, from_git))
            })?;
            match self.write(command).await {
                Ok(_) => break (removed, from_git),
                Err(ApiError::Conflict(_)) if attempts < CAS_ATTEMPTS => attempts += 1,
                Err(e) => return Err(e),
            }
        };
        let removed = removed
            .into_iter()
            .map(|r| RemovedObject { kind: r.kind.to_owned(), name: r.name })
            .collect();
        Ok(StackRemoved { removed, from_git })
    }
}

async fn list(State(m): Shared, _: ApiAuth) -> ApiResult<StackList> {
    if let Some(found) = m.read_from_leader(STACKS_PATH).await {
        return found.map(Json);
    }
    Ok(Json(m.stack_list()))
}

async fn services(
    State(m): Shared,
    _: ApiAuth,
    Path(name): Path<String>,
) -> ApiResult<StackServices> {
    if let Some(found) = m.read_from_leader(&format!("{}/services", stack_path(&name))).await {
        return found.map(Json);
    }
    m.stack_services(&name).map(Json)
}

async fn tasks(State(m): Shared, _: ApiAuth, Path(name): Path<String>) -> ApiResult<StackTasks> {
    if let Some(found) = m.read_from_leader(&format!("{}/tasks", stack_path(&name))).await {
        return found.map(Json);
    }
    m.stack_tasks(&name).map(Json)
}

async fn history(
    State(m): Shared,
    _: ApiAuth,
    Path(name): Path<String>,
) -> ApiResult<StackHistory> {
    if let Some(found) = m.read_from_leader(&format!("{}/history", stack_path(&name))).await {
        return found.map(Json);
    }
    m.stack_history(&name).map(Json)
}

async fn rollback(
    State(m): Shared,
    _: ApiAuth,
    Path(name): Path<String>,
    b: Result<JsonBody<StackRollback>, JsonRejection>,
) -> ApiResult<StackRolledBack> {
    let req = body(b)?;
    let path = format!("{}/rollback", stack_path(&name));
    m.on_leader(Method::POST, &path, Some(&req), || m.rollback_stack(&name, &req)).await.map(Json)
}

async fn remove(State(m): Shared, _: ApiAuth, Path(name): Path<String>) -> ApiResult<StackRemoved> {
    let path = stack_path(&name);
    m.on_leader(Method::DELETE, &path, None::<&()>, || m.remove_stack(&name)).await.map(Json)
}
