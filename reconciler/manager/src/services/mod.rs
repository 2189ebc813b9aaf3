//! The service endpoints (`reconciler_api::services` has the paths and bodies): create,
//! update, rollback and remove run on the leader (a follower forwards them) and write through
//! Raft with compare-and-set on the version the operator read; reads are answered by the
//! leader when it can be reached (as Swarm proxies its control API to the leader), so a
//! `service update` followed by a read never sees the spec it replaced.
//!
//! [`rules`] holds Swarm's checks and the views, pure.

pub mod rules;

use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::manager::Manager;
use crate::server::{ApiAuth, body};
use crate::token;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use reconciler_api::Empty;
use reconciler_api::services::{
    SERVICES_PATH, ServiceCreate, ServiceCreated, ServiceInfo, ServiceInspect, ServiceRollback,
    ServiceTasks, ServiceUpdate, service_path,
};
use reconciler_store::{ClusterState, Expect, StoreCommand, SystemClock};
use reconciler_types::{Clock, MonoTime, NodeId, NodeState, ServiceId, ServiceSpec};
use reqwest::Method;
use std::collections::BTreeSet;
use std::sync::Arc;

type Shared = State<Arc<Manager>>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The service routes, merged into the manager's router.
pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(SERVICES_PATH, get(list).post(create))
        .route("/v1/services/{key}", get(inspect).delete(remove))
        .route("/v1/services/{key}/update", post(update))
        .route("/v1/services/{key}/rollback", post(rollback))
        .route("/v1/services/{key}/tasks", get(tasks))
}

/// The managers' epoch clock: time since the Unix epoch, the origin every manager shares.
pub(crate) fn epoch_now() -> MonoTime {
    SystemClock::new().now()
}

/// A store refusal of a service write, in Docker's words: a version that moved is `update out
/// of sequence`.
fn out_of_sequence(e: ApiError) -> ApiError {
    match e {
        ApiError::Conflict(_) => ApiError::Conflict("update out of sequence".into()),
        other => other,
    }
}

impl Manager {
    fn active_nodes(&self, state: &ClusterState) -> BTreeSet<NodeId> {
        rules::active_nodes(state, |n| self.observed_state(n) != NodeState::Down)
    }

    /// `service ls`, from this manager's state.
    pub fn service_list(&self) -> Vec<ServiceInfo> {
        self.with_state(|state| {
            let active = self.active_nodes(state);
            let mut statuses = rules::service_statuses(state, &active);
            state
                .services
                .values()
                .map(|r| ServiceInfo {
                    status: Some(statuses.remove(&r.id).unwrap_or_default()),
                    ..rules::service_info(r)
                })
                .collect()
        })
    }

    /// `service inspect`, from this manager's state.
    ///
    /// # Errors
    /// Unknown or ambiguous service.
    pub fn service_inspect(&self, key: &str) -> Result<ServiceInspect, ApiError> {
        let service =
            self.with_state(|state| rules::resolve(state, key).map(rules::service_info))?;
        Ok(ServiceInspect { service, now: epoch_now() })
    }

    /// `service ps` and progress: a service and every task it has, from this manager's state.
    ///
    /// # Errors
    /// Unknown or ambiguous service.
    pub fn service_tasks(&self, key: &str) -> Result<ServiceTasks, ApiError> {
        self.with_state(|state| {
            let record = rules::resolve(state, key)?;
            Ok(ServiceTasks {
                service: rules::service_info(record),
                tasks: rules::task_views(state, record),
                active_nodes: self.active_nodes(state).into_iter().collect(),
                now: epoch_now(),
            })
        })
    }

    /// `service create` (leader only): checks the spec as Swarm does, names an unnamed
    /// service, and writes it under a new id.
    ///
    /// # Errors
    /// Swarm's refusals (a taken name, a bad spec), or a failed write.
    pub async fn create_service(&self, mut spec: ServiceSpec) -> Result<ServiceCreated, ApiError> {
        let internal = |e: std::io::Error| ApiError::Internal(e.to_string());
        // Serialised so that two creates cannot both take a free name.
        let _guard = self.service_lock.lock().await;
        while spec.name.is_empty() {
            let random = token::random_bytes(2).map_err(internal)?;
            let name = rules::generated_name([random[0], random[1]]);
            if self.with_state(|state| rules::check_name_free(state, &name)).is_ok() {
                spec.name = name;
            }
        }
        self.with_state(|state| {
            rules::validate(&spec, state)?;
            rules::check_name_free(state, &spec.name)
        })?;
        let id = ServiceId::new(token::new_node_id().map_err(internal)?);
        let cmd = StoreCommand::CreateService { id: id.clone(), spec: Box::new(spec) };
        let version = self.write(cmd).await?;
        Ok(ServiceCreated { id, version, warnings: Vec::new() })
    }

    /// `service update` (leader only): the new spec, if the service is still at `version`
    /// (the store applies Swarm's rules: previous spec, a new spec version, the update
    /// status cleared, no mode change, published ports free).
    ///
    /// # Errors
    /// Swarm's refusals (rename, mode change, a bad spec, a port in use), `update out of
    /// sequence`, or a failed write.
    pub async fn update_service(
        &self,
        key: &str,
        req: &ServiceUpdate,
    ) -> Result<ServiceCreated, ApiError> {
        let id = self.with_state(|state| {
            let current = rules::resolve(state, key)?;
            rules::validate(&req.spec, state)?;
            rules::check_update(current, &req.spec)?;
            Ok::<_, ApiError>(current.id.clone())
        })?;
        let cmd = StoreCommand::UpdateService {
            id: id.clone(),
            spec: Box::new(req.spec.clone()),
            expected: Expect::Version(req.version),
        };
        let version = self.write(cmd).await.map_err(out_of_sequence)?;
        Ok(ServiceCreated { id, version, warnings: Vec::new() })
    }

    /// `service rollback` (leader only): the previous spec becomes the spec, and the spec the
    /// previous one, so two rollbacks in a row toggle; the status is `rollback_started` /
    /// `manually requested rollback`.
    ///
    /// # Errors
    /// No previous spec (Swarm's FailedPrecondition), `update out of sequence`, or a failed
    /// write.
    pub async fn rollback_service(
        &self,
        key: &str,
        req: ServiceRollback,
    ) -> Result<ServiceCreated, ApiError> {
        let id = self.with_state(|state| rules::resolve(state, key).map(|r| r.id.clone()))?;
        let cmd = StoreCommand::RollbackService {
            id: id.clone(),
            expected: Expect::Version(req.version),
            at: epoch_now(),
        };
        let version = self.write(cmd).await.map_err(out_of_sequence)?;
        Ok(ServiceCreated { id, version, warnings: Vec::new() })
    }

    /// `service rm` (leader only).
    ///
    /// # Errors
    /// Unknown service, or a failed write.
    pub async fn remove_service(&self, key: &str) -> Result<(), ApiError> {
        let (id, version) =
            self.with_state(|state| rules::resolve(state, key).map(|r| (r.id.clone(), r.version)))?;
        let cmd = StoreCommand::RemoveService { id, expected: Expect::Version(version) };
        self.write(cmd).await.map(|_| ())
    }
}

async fn list(State(m): Shared, _: ApiAuth) -> ApiResult<Vec<ServiceInfo>> {
    if let Some(rows) = m.read_from_leader(SERVICES_PATH).await {
        return rows.map(Json);
    }
    Ok(Json(m.service_list()))
}

async fn inspect(
    State(m): Shared,
    _: ApiAuth,
    Path(key): Path<String>,
) -> ApiResult<ServiceInspect> {
    if let Some(found) = m.read_from_leader(&service_path(&key)).await {
        return found.map(Json);
    }
    m.service_inspect(&key).map(Json)
}

async fn tasks(State(m): Shared, _: ApiAuth, Path(key): Path<String>) -> ApiResult<ServiceTasks> {
    if let Some(found) = m.read_from_leader(&format!("{}/tasks", service_path(&key))).await {
        return found.map(Json);
    }
    m.service_tasks(&key).map(Json)
}

async fn create(
    State(m): Shared,
    _: ApiAuth,
    b: Result<JsonBody<ServiceCreate>, JsonRejection>,
) -> ApiResult<ServiceCreated> {
    let req = body(b)?;
    let run = || m.create_service(req.spec.clone());
    m.on_leader(Method::POST, SERVICES_PATH, Some(&req), run).await.map(Json)
}

async fn update(
    State(m): Shared,
    _: ApiAuth,
    Path(key): Path<String>,
    b: Result<JsonBody<ServiceUpdate>, JsonRejection>,
) -> ApiResult<ServiceCreated> {
    let req = body(b)?;
    let path = format!("{}/update", service_path(&key));
    m.on_leader(Method::POST, &path, Some(&req), || m.update_service(&key, &req)).await.map(Json)
}

async fn rollback(
    State(m): Shared,
    _: ApiAuth,
    Path(key): Path<String>,
    b: Result<JsonBody<ServiceRollback>, JsonRejection>,
) -> ApiResult<ServiceCreated> {
    let req = body(b)?;
    let path = format!("{}/rollback", service_path(&key));
    m.on_leader(Method::POST, &path, Some(&req), || m.rollback_service(&key, req)).await.map(Json)
}

async fn remove(State(m): Shared, _: ApiAuth, Path(key): Path<String>) -> ApiResult<Empty> {
    let path = service_path(&key);
    let run = || async { m.remove_service(&key).await.map(|()| Empty {}) };
    m.on_leader(Method::DELETE, &path, None::<&()>, run).await.map(Json)
}
