//! The dispatcher's HTTP routes (paths in `reconciler_api::dispatcher`). Every call carries
//! the node's own credential as its bearer token. A follower forwards the call to the leader
//! unchanged (same credential); the leader checks the credential against the node's stored
//! digest and serves it from its [`super::Dispatcher`].
//!
//! Over TLS the credential must also come with the certificate of the node it names (mutual
//! TLS at the manager the agent talks to), or of a manager (a follower forwarding the call).
//! So a worker's certificate acts only for its own node: it cannot open another node's
//! session, read its assignments (and secrets) or report its tasks, even holding that
//! node's credential; and a removed node's certificate is refused like its credential.

use super::credential;
use crate::error::ApiError;
use crate::json_body::JsonBody;
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
use reconciler_api::mesh::{ROUTES_PATH, Routes, RoutesQuery};
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
        .route(ROUTES_PATH, get(mesh_routes))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
}

/// The bearer credential of a dispatcher call (checked by the leader).
pub struct NodeBearer(String);

impl FromRequestParts<Arc<Manager>> for NodeBearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, m: &Arc<Manager>) -> Result<Self, ApiError> {
        let value = parts.headers.get(axum::http::header::AUTHORIZATION);
        let token = value.and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        let token = token.ok_or(ApiError::Unauthorized)?;
        if m.tls.is_some() {
            let cert = crate::server::peer_cert(parts).ok_or(ApiError::Unauthorized)?;
            certificate_may_act_for(m, &cert, token)?;
        }
        Ok(NodeBearer(token.to_owned()))
    }
}

/// Whether the node of a verified certificate may make a dispatcher call with `credential`:
/// a manager may (it forwards agents' calls to the leader, and runs an agent beside it);
/// any other node only with its own credential. Whether that node is still a member is the
/// leader's check of the credential: this manager may not have replicated a node that has
/// just joined, but it refuses at once a node it knows was removed.
///
/// # Errors
/// [`ApiError::Unauthorized`] for another cluster's or a removed node's certificate (as
/// its credential is), and [`ApiError::Forbidden`] for a credential of another node.
fn certificate_may_act_for(
    m: &Manager,
    cert: &reconciler_tls::CertInfo,
    credential: &str,
) -> Result<(), ApiError> {
    if crate::server::is_current_manager(m, cert) {
        return Ok(());
    }
    let id = &cert.identity.node_id;
    let removed = m.node.state.read(|s| s.state.node_removed(id));
    if cert.identity.cluster_id != m.identity.cluster_id || removed {
        return Err(ApiError::Unauthorized);
    }
    let named = reconciler_api::NodeCredential::parse(credential).map(|c| c.node_id).ok();
    if named.as_ref() == Some(id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "the certificate of node {id} cannot act for another node"
        )))
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
    b: Result<JsonBody<RegisterRequest>, JsonRejection>,
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
    b: Result<JsonBody<Heartbeat>, JsonRejection>,
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

async fn mesh_routes(
    State(m): Shared,
    who: NodeBearer,
    Query(q): Query<RoutesQuery>,
) -> ApiResult<Routes> {
    let wait = Duration::from_millis(q.wait_ms.min(MAX_WAIT_MS));
    let via = who.forwarding(&m, wait + Duration::from_secs(2));
    let path =
        format!("{ROUTES_PATH}?session={}&since={}&wait_ms={}", q.session, q.since, q.wait_ms);
    let run = || async { m.dispatcher.routes(&who.node(&m)?, &q).await };
    m.on_leader_via(Method::GET, &path, None::<&()>, &via, run).await.map(Json)
}

async fn status(
    State(m): Shared,
    who: NodeBearer,
    b: Result<JsonBody<StatusReport>, JsonRejection>,
) -> ApiResult<StatusAck> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(2));
    let run = || async { m.dispatcher.report(&m, &who.node(&m)?, req.clone()).await };
    m.on_leader_via(Method::POST, STATUS_PATH, Some(&req), &via, run).await.map(Json)
}

async fn logs(
    State(m): Shared,
    who: NodeBearer,
    b: Result<JsonBody<LogChunk>, JsonRejection>,
) -> ApiResult<LogAck> {
    let req = body(b)?;
    let via = who.forwarding(&m, Duration::from_secs(2));
    let run = || async { m.dispatcher.publish_logs(&who.node(&m)?, req.clone()).await };
    m.on_leader_via(Method::POST, LOGS_PATH, Some(&req), &via, run).await.map(Json)
}
