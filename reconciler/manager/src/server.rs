//! The manager's HTTP server: the API under `/v1` (bearer API token, or a manager's
//! certificate for requests forwarded by another manager), Raft RPCs under `/raft` (a
//! current manager's certificate only), `/v1/join` (the join token in the body), `/v1/ca`
//! (public: a joiner pins it by its token) and `/v1/node/certificate` (a node's own
//! certificate). With `--insecure-listen` the peer token stands in for the certificates. Bodies are size-limited and malformed ones are
//! answered with a JSON error; nothing is written unless a request is complete and valid.

use crate::api::{
    ClusterStatus, CompleteJoin, JoinRequest, JoinResponse, NodeInspect, NodeUpdate, NodeView,
    SecretCreate, SecretView, TokenView, WriteResult,
};
use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::listener::PeerConn;
use crate::manager::Manager;
use crate::token::constant_time_eq;
use crate::views::redacted;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use reconciler_api::Empty;
use reconciler_api::pki::{CaView, CertIssued, CertRenew, CertStatus};
use reconciler_store::network::http::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use reconciler_store::{ClusterState, StoreCommand, TypeConfig};
use reconciler_tls::CertInfo;
use reconciler_types::NodeId;
use reconciler_types::NodeRole;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The largest API body accepted.
pub const API_BODY_LIMIT: usize = 1024 * 1024;
/// The largest Raft RPC body accepted (snapshot chunks and entry batches).
pub const RAFT_BODY_LIMIT: usize = 64 * 1024 * 1024;

type Shared = State<Arc<Manager>>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// Builds the router of a manager.
pub fn router(manager: Arc<Manager>) -> Router {
    let api = Router::new()
        .route("/v1/join", post(join))
        .route("/v1/join/complete", post(complete_join))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/{id}", get(inspect_node).delete(remove_node))
        .route("/v1/nodes/{id}/update", post(update_node))
        .route("/v1/nodes/{id}/promote", post(promote))
        .route("/v1/nodes/{id}/demote", post(demote))
        .route("/v1/join-token/{role}", get(join_token))
        .route("/v1/join-token/{role}/rotate", post(rotate_token))
        .route("/v1/state", get(export_state))
        .route("/v1/status", get(status))
        .route("/v1/write", post(write))
        .route("/v1/secrets", get(list_secrets).post(put_secret))
        .route("/v1/secrets/{name}", axum::routing::delete(remove_secret))
        .merge(crate::services::routes())
        .merge(crate::stacks::routes())
        .merge(crate::log_broker::routes())
        .merge(crate::gitops::routes())
        .route("/v1/ca", get(ca_view))
        .route("/v1/ca/rotate", post(rotate_ca))
        .route("/v1/node/certificate", get(cert_status).post(renew_cert))
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT));
    let raft = Router::new()
        .route(APPEND_PATH, post(raft_append))
        .route(VOTE_PATH, post(raft_vote))
        .route(SNAPSHOT_PATH, post(raft_snapshot))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT));
    let public = Router::new()
        .route("/metrics", get(crate::metrics::metrics))
        .route("/healthz", get(crate::metrics::healthz));
    let settled = axum::middleware::from_fn_with_state(manager.clone(), settled);
    let served = api.merge(crate::dispatcher::routes::routes()).route_layer(settled);
    served.merge(raft).merge(public).with_state(manager)
}

/// Operators' and agents' calls read the state: each waits, without a thread, for a pass
/// that holds it (see `StateHandle::settled`). Raft's own calls never read it and never wait.
async fn settled(
    State(m): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    m.node.state.settled().await;
    next.run(req).await
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ")
}

/// A request from an operator: the API token; over TLS also a current manager's
/// certificate; with `--insecure-listen` also the peer token (a forwarded request).
pub struct ApiAuth;
/// A request from another manager: over TLS, a certificate of a node that is a manager now
/// (not removed, not demoted); with `--insecure-listen`, the peer token.
pub struct PeerAuth;
/// A request from a cluster node about itself, proved by its certificate (TLS only).
pub struct NodeAuth {
    /// The node.
    pub node_id: NodeId,
    /// Whether it is a manager now (it may then act for another node it forwards for).
    pub is_manager: bool,
}

/// What the connection's verified certificate says, if the peer sent one.
pub(crate) fn peer_cert(parts: &Parts) -> Option<Arc<CertInfo>> {
    parts.extensions.get::<ConnectInfo<PeerConn>>()?.0.cert.clone()
}

/// The role the state gives the node of `cert` now (`None`: removed, or another cluster).
fn current_role(m: &Manager, cert: &CertInfo) -> Option<NodeRole> {
    if cert.identity.cluster_id != m.identity.cluster_id {
        return None;
    }
    let id = &cert.identity.node_id;
    m.node.state.read(|s| s.state.nodes.get(id).map(|r| r.node.spec.role))
}

/// A certificate issued to a manager of this cluster that this manager does not know as
/// removed or demoted. A node it has not heard of yet counts (a new manager's first Raft
/// messages arrive before it has replicated anything).
pub(crate) fn is_current_manager(m: &Manager, cert: &CertInfo) -> bool {
    let id = &cert.identity.node_id;
    cert.identity.role == NodeRole::Manager
        && cert.identity.cluster_id == m.identity.cluster_id
        && m.node.state.read(|s| {
            let state = &s.state;
            !state.node_removed(id)
                && state.nodes.get(id).is_none_or(|r| r.node.spec.role == NodeRole::Manager)
        })
}

impl FromRequestParts<Arc<Manager>> for ApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, m: &Arc<Manager>) -> Result<Self, ApiError> {
        if m.tls.is_some() && peer_cert(parts).is_some_and(|c| is_current_manager(m, &c)) {
            return Ok(ApiAuth);
        }
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let api = constant_time_eq(token, &m.identity.api_token);
        let peer = m.tls.is_none() && constant_time_eq(token, &m.identity.peer_token);
        if api | peer { Ok(ApiAuth) } else { Err(ApiError::Unauthorized) }
    }
}

impl FromRequestParts<Arc<Manager>> for PeerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, m: &Arc<Manager>) -> Result<Self, ApiError> {
        if m.tls.is_some() {
            let cert = peer_cert(parts).ok_or(ApiError::Unauthorized)?;
            return if is_current_manager(m, &cert) {
                Ok(PeerAuth)
            } else {
                Err(ApiError::Forbidden(format!(
                    "node {} is not a manager of this cluster",
                    cert.identity.node_id
                )))
            };
        }
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        if constant_time_eq(token, &m.identity.peer_token) {
            Ok(PeerAuth)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

impl FromRequestParts<Arc<Manager>> for NodeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, m: &Arc<Manager>) -> Result<Self, ApiError> {
        let cert = peer_cert(parts).ok_or(ApiError::Unauthorized)?;
        let Some(role) = current_role(m, &cert) else {
            return Err(ApiError::Forbidden(format!(
                "node {} is not a member of this cluster",
                cert.identity.node_id
            )));
        };
        let is_manager = role == NodeRole::Manager && cert.identity.role == NodeRole::Manager;
        Ok(NodeAuth { node_id: cert.identity.node_id.clone(), is_manager })
    }
}

/// The body of a request, or the API error a malformed or oversized one is.
///
/// # Errors
/// [`ApiError::TooLarge`] or [`ApiError::BadRequest`].
pub fn body<T>(b: Result<JsonBody<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|JsonBody(v)| v).map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("request body larger than {API_BODY_LIMIT} bytes"))
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

const NO_BODY: Option<&()> = None;

async fn join(
    State(m): Shared,
    b: Result<JsonBody<JoinRequest>, JsonRejection>,
) -> ApiResult<JoinResponse> {
    let req = body(b)?;
    m.on_leader(Method::POST, "/v1/join", Some(&req), || m.join(req.clone())).await.map(Json)
}

async fn complete_join(
    State(m): Shared,
    _: PeerAuth,
    b: Result<JsonBody<CompleteJoin>, JsonRejection>,
) -> ApiResult<Empty> {
    let req = body(b)?;
    let run = || async { m.complete_join(&req.node_id).await.map(|_| Empty {}) };
    m.on_leader(Method::POST, "/v1/join/complete", Some(&req), run).await.map(Json)
}

async fn list_nodes(State(m): Shared, _: ApiAuth) -> ApiResult<Vec<NodeView>> {
    if let Some(rows) = m.read_from_leader::<Vec<NodeView>>("/v1/nodes").await {
        let mut rows = rows?;
        for row in &mut rows {
            row.is_self = row.id == m.identity.node_id;
        }
        return Ok(Json(rows));
    }
    Ok(Json(m.node_views()))
}

async fn inspect_node(
    State(m): Shared,
    _: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<NodeInspect> {
    if let Some(found) = m.read_from_leader::<NodeInspect>(&format!("/v1/nodes/{id}")).await {
        return found.map(Json);
    }
    m.inspect_node(&id).map(Json)
}

async fn update_node(
    State(m): Shared,
    _: ApiAuth,
    Path(id): Path<String>,
    b: Result<JsonBody<NodeUpdate>, JsonRejection>,
) -> ApiResult<NodeInspect> {
    let update = body(b)?;
    let path = format!("/v1/nodes/{id}/update");
    m.on_leader(Method::POST, &path, Some(&update), || m.update_node(&id, &update)).await.map(Json)
}

async fn promote(State(m): Shared, _: ApiAuth, Path(id): Path<String>) -> ApiResult<NodeInspect> {
    let path = format!("/v1/nodes/{id}/promote");
    m.on_leader(Method::POST, &path, NO_BODY, || m.promote(&id)).await.map(Json)
}

async fn demote(State(m): Shared, _: ApiAuth, Path(id): Path<String>) -> ApiResult<NodeInspect> {
    let path = format!("/v1/nodes/{id}/demote");
    m.on_leader(Method::POST, &path, NO_BODY, || m.demote(&id)).await.map(Json)
}

/// `?force=true` of `DELETE /v1/nodes/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct RemoveQuery {
    /// Remove a node that is not down.
    #[serde(default)]
    pub force: bool,
}

async fn remove_node(
    State(m): Shared,
    _: ApiAuth,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Empty> {
    let path = format!("/v1/nodes/{id}?force={}", q.force);
    let run = || async { m.remove_node(&id, q.force).await.map(|_| Empty {}) };
    m.on_leader(Method::DELETE, &path, NO_BODY, run).await.map(Json)
}

fn parse_role(role: &str) -> Result<NodeRole, ApiError> {
    match role {
        "worker" => Ok(NodeRole::Worker),
        "manager" => Ok(NodeRole::Manager),
        other => Err(ApiError::BadRequest(format!("unknown role {other:?}: worker or manager"))),
    }
}

async fn join_token(
    State(m): Shared,
    _: ApiAuth,
    Path(role): Path<String>,
) -> ApiResult<TokenView> {
    m.join_token(parse_role(&role)?).map(Json)
}

async fn rotate_token(
    State(m): Shared,
    _: ApiAuth,
    Path(role): Path<String>,
) -> ApiResult<TokenView> {
    let r = parse_role(&role)?;
    let path = format!("/v1/join-token/{role}/rotate");
    m.on_leader(Method::POST, &path, NO_BODY, || m.rotate_token(r)).await.map(Json)
}

async fn export_state(State(m): Shared, _: ApiAuth) -> ApiResult<ClusterState> {
    Ok(Json(redacted(m.node.state.snapshot())))
}

async fn status(State(m): Shared, _: ApiAuth) -> ApiResult<ClusterStatus> {
    Ok(Json(m.status()))
}

async fn write(
    State(m): Shared,
    _: ApiAuth,
    b: Result<JsonBody<WriteRequest>, JsonRejection>,
) -> ApiResult<WriteResult> {
    let req = body(b)?;
    if matches!(
        req.command,
        StoreCommand::InitCluster { .. }
            | StoreCommand::SetJoinSecret { .. }
            | StoreCommand::PutSecret { .. }
            | StoreCommand::Pki { .. }
    ) {
        return Err(ApiError::Forbidden(
            "cluster credentials and secrets cannot be written through /v1/write (secrets: /v1/secrets)".into(),
        ));
    }
    let run = || async { m.write(req.command.clone()).await.map(|index| WriteResult { index }) };
    m.on_leader(Method::POST, "/v1/write", Some(&req), run).await.map(Json)
}

async fn list_secrets(State(m): Shared, _: ApiAuth) -> ApiResult<Vec<SecretView>> {
    Ok(Json(m.secrets()))
}

async fn put_secret(
    State(m): Shared,
    _: ApiAuth,
    b: Result<JsonBody<SecretCreate>, JsonRejection>,
) -> ApiResult<SecretView> {
    let req = body(b)?;
    m.on_leader(Method::POST, "/v1/secrets", Some(&req), || m.put_secret(&req)).await.map(Json)
}

async fn remove_secret(State(m): Shared, _: ApiAuth, Path(name): Path<String>) -> ApiResult<Empty> {
    let path = format!("/v1/secrets/{name}");
    let run = || async { m.remove_secret(&name).await.map(|_| Empty {}) };
    m.on_leader(Method::DELETE, &path, NO_BODY, run).await.map(Json)
}

async fn raft_append(
    State(m): Shared,
    _: PeerAuth,
    b: Result<JsonBody<AppendEntriesRequest<TypeConfig>>, JsonRejection>,
) -> Result<Json<impl Serialize>, ApiError> {
    let req = body(b)?;
    let leader = req.vote.leader_id().voted_for();
    let resp = m.node.raft.append_entries(req).await;
    // A follower hears from its leader only through these calls: an accepted one is the
    // leader's sign of life that `node ls` shows as reachable.
    if let (Some(leader), Ok(r)) = (leader, &resp)
        && !matches!(r, openraft::raft::AppendEntriesResponse::HigherVote(_))
    {
        m.node.health.record_ok(leader);
    }
    Ok(Json(resp))
}

async fn raft_vote(
    State(m): Shared,
    _: PeerAuth,
    b: Result<JsonBody<VoteRequest<u64>>, JsonRejection>,
) -> Result<Json<impl Serialize>, ApiError> {
    Ok(Json(m.node.raft.vote(body(b)?).await))
}

async fn raft_snapshot(
    State(m): Shared,
    _: PeerAuth,
    b: Result<JsonBody<InstallSnapshotRequest<TypeConfig>>, JsonRejection>,
) -> Result<Json<impl Serialize>, ApiError> {
    Ok(Json(m.node.raft.install_snapshot(body(b)?).await))
}

async fn ca_view(State(m): Shared) -> ApiResult<CaView> {
    m.ca_view().map(Json)
}

async fn rotate_ca(State(m): Shared, _: ApiAuth) -> ApiResult<CaView> {
    m.on_leader(Method::POST, "/v1/ca/rotate", NO_BODY, || m.rotate_ca()).await.map(Json)
}

async fn cert_status(State(m): Shared, node: NodeAuth) -> ApiResult<CertStatus> {
    m.cert_status(&node.node_id).map(Json)
}

async fn renew_cert(
    State(m): Shared,
    node: NodeAuth,
    b: Result<JsonBody<CertRenew>, JsonRejection>,
) -> ApiResult<CertIssued> {
    let req = body(b)?;
    // A manager may forward another node's renewal; anyone else renews only itself.
    let target = match req.node_id.clone() {
        Some(id) if node.is_manager => id,
        _ => node.node_id,
    };
    let fwd = CertRenew { csr: req.csr.clone(), node_id: Some(target.clone()) };
    let run = || m.renew_cert(&target, &req.csr);
    m.on_leader(Method::POST, "/v1/node/certificate", Some(&fwd), run).await.map(Json)
}

/// The body of `POST /v1/write`: one raw store command.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct WriteRequest {
    /// The command.
    pub command: StoreCommand,
}
