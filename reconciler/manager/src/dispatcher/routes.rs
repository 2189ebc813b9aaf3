//! The dispatcher's HTTP routes (paths in `reconciler_api::dispatcher`). Every call carries
//! the node's own credential as its bearer token. A follower forwards the call to the leader
//! unchanged (same credential); the leader checks the credential against the node's stored
//! digest and serves it from its [`super::Dispatcher`].

use super::credential;
use crate::error::ApiError;
use crate::manager::{Forwarding, Manager};
use crate::server::{API_BODY_LIMIT, body};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use reconciler_api::dispatcher::{
    ASSIGNMENTS_PATH, Assignments, AssignmentsQuery, HEARTBEAT_PATH, Heartbeat, HeartbeatAck,
    LOGS_PATH, LogAck, LogChunk, MAX_WAIT_MS, RegisterRequest, SESSION_PATH, STATUS_PATH, Session,
    StatusAck, StatusReport,
};
use reconciler_types::NodeId;
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;

type Shared = State<Arc<Manager>>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The dispatcher's routes, merged into the manager's router.
pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(SESSION_PATH, post(session))
        .route(HEARTBEAT_PATH, post(heartbeat))
        .route(ASSIGNMENTS_PATH, get(assignments))
        .route(STATUS_PATH, post(status))
        .route(LOGS_PATH, post(logs))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
}

/// The bearer credential of a dispatcher call (checked by the leader).
pub struct NodeBearer(String);

impl FromRequestParts<Arc<Manager>> for NodeBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<Manager>) -> Result<Self, ApiError> {
        let value = parts.headers.get(axum::http::header::AUTHORIZATION);
        let token = value.and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        token.map(|t| NodeBearer(t.to_owned())).ok_or(ApiError::Unauthorized)
    }
}

impl NodeBearer {
    /// The node this credential belongs to, checked against the leader's state.
    fn node(&self, m: &Manager) -> Result<NodeId, ApiError> {
        m.node.state.read(|s| credential::verify(&s.state, &self.0))
    }

    fn forwarding(&self, m: &Manager, extra: Duration) -> Forwarding<'_> {
        Forwarding { bearer: &self.0, timeout: m.write_timeout + extra }
    }
}

async fn session(
    State(m): Shared,
    who: NodeBearer,
    b: Result<Json<RegisterRequest>, JsonRejection>,
) -> ApiResult<Session> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(2));
    let run = || async {
        let node = who.node(&m)?;
        m.dispatcher.register(&m, node, req.clone()).await
    };
    m.on_leader_via(Method::POST, SESSION_PATH, Some(&req), &via, run).await.map(Json)
}

async fn heartbeat(
    State(m): Shared,
    who: NodeBearer,
    b: Result<Json<Heartbeat>, JsonRejection>,
) -> ApiResult<HeartbeatAck> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(1));
    let run = || async { m.dispatcher.heartbeat(&who.node(&m)?, &req.session) };
    m.on_leader_via(Method::POST, HEARTBEAT_PATH, Some(&req), &via, run).await.map(Json)
}

async fn assignments(
    State(m): Shared,
    who: NodeBearer,
    Query(q): Query<AssignmentsQuery>,
) -> ApiResult<Assignments> {
    let wait = Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    let via = who.forwarding(&m, wait + Duration::from_secs(2));
    let path =
        format!("{ASSIGNMENTS_PATH}?session={}&since={}&wait_ms={}", q.session, q.since, q.wait_ms);
    let run = || async { m.dispatcher.assignments(&m, &who.node(&m)?, &q).await };
    m.on_leader_via(Method::GET, &path, None::<&()>, &via, run).await.map(Json)
}

async fn status(
    State(m): Shared,
    who: NodeBearer,
    b: Result<Json<StatusReport>, JsonRejection>,
) -> ApiResult<StatusAck> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(2));
    let run = || async { m.dispatcher.report(&m, &who.node(&m)?, req.clone()).await };
    m.on_leader_via(Method::POST, STATUS_PATH, Some(&req), &via, run).await.map(Json)
}

async fn logs(
    State(m): Shared,
    who: NodeBearer,
    b: Result<Json<LogChunk>, JsonRejection>,
) -> ApiResult<LogAck> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(2));
    let run = || async { m.dispatcher.publish_logs(&who.node(&m)?, req.clone()).await };
    m.on_leader_via(Method::POST, LOGS_PATH, Some(&req), &via, run).await.map(Json)
}
