//! The GitOps side of a manager: the Git source as cluster state ([`source`]), the forges'
//! push webhook, and the loop the leader runs ([`run`]) that turns the source's commits into
//! store writes.
//!
//! ```text
//!  forge push ──POST /v1/webhook (signature)──┐
//!  source set / refresh ──────────────────────┼─► Gitops::refresh ─┐
//!  poll timer (jitter), folder watch ─────────┘                    ▼
//!                        leader: run::serve ─► fetch (git, blocking thread) ─► plan ─► write
//! ```

pub mod fetch;
pub mod pass;
pub mod run;
pub mod source;

use crate::error::ApiError;
use crate::json_body::JsonBody;
use crate::manager::Manager;
use crate::server::{ApiAuth, body};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use reconciler_api::source::{
    REFRESH_PATH, SOURCE_PATH, SourceSet, SourceView, WEBHOOK_PATH, WebhookAnswer,
};
use reconciler_api::{Empty, ErrorBody};
use reconciler_source::webhook;
use reqwest::Method;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Notify;

/// The folder of a manager's data folder that holds fetched repositories.
pub const CACHE_DIR: &str = "gitops";

/// The largest webhook body accepted (GitHub caps its payloads at 25 MB).
pub const WEBHOOK_BODY_LIMIT: usize = 25 * 1024 * 1024;

/// A manager's GitOps handle: where it keeps repositories, and how the loop is woken.
#[derive(Debug, Default)]
pub struct Gitops {
    /// Where fetched repositories (and folder snapshots) are kept; `None`: a temporary
    /// folder.
    pub cache_dir: Option<PathBuf>,
    /// Wakes the leader's loop to fetch at once.
    pub refresh: Notify,
    /// Webhooks refused (bad or missing signature).
    pub webhook_rejections: AtomicU64,
    /// Looks at the source (fetches), failed or not.
    pub passes: AtomicU64,
    /// Looks at the source that failed (fetch, branch, folder, `flotilla.yaml`).
    pub fetch_failures: AtomicU64,
    /// Passes that read a head and applied it, and their total time in microseconds.
    pub applied_passes: AtomicU64,
    /// See `applied_passes`.
    pub pass_micros: AtomicU64,
}

impl Gitops {
    /// Counts a pass that applied a head, and its duration.
    pub fn record_pass(&self, took: std::time::Duration) {
        self.applied_passes.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.pass_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

type Shared = State<Arc<Manager>>;
type ApiResult<T> = Result<Json<T>, ApiError>;

/// The source and webhook routes, merged into the manager's router.
pub fn routes() -> Router<Arc<Manager>> {
    Router::new()
        .route(SOURCE_PATH, get(show).put(set).delete(remove))
        .route(REFRESH_PATH, post(refresh))
        .route(WEBHOOK_PATH, post(hook).layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)))
}

async fn show(State(m): Shared, _: ApiAuth) -> ApiResult<SourceView> {
    if let Some(view) = m.read_from_leader(SOURCE_PATH).await {
        return view.map(Json);
    }
    Ok(Json(m.source_view()))
}

async fn set(
    State(m): Shared,
    _: ApiAuth,
    b: Result<JsonBody<SourceSet>, JsonRejection>,
) -> ApiResult<SourceView> {
    let req = body(b)?;
    m.on_leader(Method::PUT, SOURCE_PATH, Some(&req), || m.set_source(&req)).await.map(Json)
}

async fn remove(State(m): Shared, _: ApiAuth) -> ApiResult<Empty> {
    let run = || async { m.remove_source().await.map(|()| Empty {}) };
    m.on_leader(Method::DELETE, SOURCE_PATH, None::<&()>, run).await.map(Json)
}

async fn refresh(State(m): Shared, _: ApiAuth) -> ApiResult<Empty> {
    Ok(Json(m.refresh_source().await?))
}

impl Manager {
    /// Asks the leader's loop to fetch now (forwarded to the leader from a follower).
    ///
    /// # Errors
    /// No leader within the write timeout.
    pub async fn refresh_source(&self) -> Result<Empty, ApiError> {
        let here = || async {
            self.gitops.refresh.notify_one();
            Ok(Empty {})
        };
        self.on_leader(Method::POST, REFRESH_PATH, Some(&Empty {}), here).await
    }
}

fn refuse(m: &Manager, status: StatusCode, error: String) -> Response {
    if status == StatusCode::UNAUTHORIZED {
        m.gitops.webhook_rejections.fetch_add(1, Ordering::Relaxed);
    }
    tracing::info!(%status, error, "webhook refused");
    (status, Json(ErrorBody { error })).into_response()
}

/// `POST /v1/webhook`: a forge's push, proved by its signature over the body (no bearer
/// token); a genuine push to the source's branch makes the leader fetch at once.
async fn hook(State(m): Shared, headers: HeaderMap, raw: axum::body::Bytes) -> Response {
    let found = m.node.state.read(|s| {
        s.state.source.as_ref().map(|src| (src.branch.clone(), src.webhook_secret.clone()))
    });
    let Some((branch, sealed)) = found else {
        return refuse(&m, StatusCode::NOT_FOUND, "the cluster has no Git source".into());
    };
    let Some(sealed) = sealed else {
        let why = "no webhook secret is set: flotilla source set --webhook-secret-file FILE";
        return refuse(&m, StatusCode::NOT_FOUND, why.into());
    };
    let secret = match m.cluster_key.open(&sealed) {
        Ok(s) => s,
        Err(e) => return refuse(&m, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let push = match webhook::verify(header, &raw, &secret) {
        Ok(p) => p,
        Err(e) => return refuse(&m, StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let wanted = format!("refs/heads/{branch}");
    if let Some(r) = push.git_ref.as_deref().filter(|r| *r != wanted) {
        let reason = format!("a push to {r}; the source deploys {wanted}");
        return Json(WebhookAnswer { fetch: false, reason }).into_response();
    }
    tracing::debug!("webhook: a push to the source's branch; fetching");
    match m.refresh_source().await {
        Ok(_) => Json(WebhookAnswer { fetch: true, reason: String::new() }).into_response(),
        Err(e) => e.into_response(),
    }
}
