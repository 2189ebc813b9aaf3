//! Typed clients: [`ApiClient`] for operators (the CLI, the benchmarks, other managers) and
//! [`DispatcherClient`] for agents. Both rebuild the manager's [`ApiError`] from its answer.

use crate::dispatcher::{
    ASSIGNMENTS_PATH, Assignments, AssignmentsQuery, HEARTBEAT_PATH, Heartbeat, HeartbeatAck,
    LOGS_PATH, LogAck, LogChunk, RegisterRequest, SESSION_PATH, STATUS_PATH, Session, StatusAck,
    StatusReport,
};
use crate::error::{ApiError, ErrorBody};
use crate::http::{base_url, http_client};
use crate::operator::{
    ClusterStatus, JoinRequest, JoinResponse, NodeInspect, NodeUpdate, NodeView, TokenView,
    UnlockRequest, WriteResult,
};
pub use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// An empty JSON object, the body of calls that answer nothing.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Empty {}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The manager answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The manager could not be reached.
    #[error("cannot reach the manager at {url}: {message}")]
    Transport {
        /// The URL called.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl ClientError {
    /// Worth retrying later or against another manager.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Api(e) => e.is_transient(),
            ClientError::Transport { .. } => true,
        }
    }
}

/// Sends one request and decodes the answer or the manager's error.
pub(crate) async fn send<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, ClientError> {
    let transport = |e: reqwest::Error| ClientError::Transport {
        url: url.to_owned(),
        message: e.without_url().to_string(),
    };
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    if status.is_success() {
        return resp.json().await.map_err(transport);
    }
    let text = resp.text().await.map_err(transport)?;
    let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
    Err(ApiError::from_remote(status.as_u16(), message).into())
}

/// Asks a manager to admit this node (no credential but the join token in the body).
///
/// # Errors
/// A wrong token or role, or the manager cannot be reached.
pub async fn join(
    http: &reqwest::Client,
    addr: &str,
    req: &JoinRequest,
) -> Result<JoinResponse, ClientError> {
    let url = format!("{}/v1/join", base_url(addr));
    send(http.post(&url).json(req), &url).await
}

/// Sends an unlock key to a locked manager (`flotilla manager unlock`).
///
/// # Errors
/// A wrong key, or the manager cannot be reached.
pub async fn unlock(host: &str, key: &str) -> Result<(), ClientError> {
    ApiClient::new(host, "", Duration::from_secs(10))?.unlock(key).await
}

/// A client of one manager, authenticated with a bearer token.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the manager at `host` (`host:port` or a URL) with an API token.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(host: &str, token: &str, timeout: Duration) -> Result<ApiClient, ClientError> {
        let http = http_client(timeout)
            .map_err(|e| ClientError::Transport { url: host.to_owned(), message: e.to_string() })?;
        Ok(ApiClient::with_http(host, token, http))
    }

    /// A client of a manager over TLS, verified against the roots of `ca_pem` (the
    /// `ca.pem` a manager writes beside its `api-token`, or `--tlscacert`), presenting
    /// `client_cert` (chain and key, PEM) when given.
    ///
    /// # Errors
    /// Damaged PEM, or the HTTP client cannot be built.
    pub fn with_tls(
        host: &str,
        token: &str,
        timeout: Duration,
        ca_pem: &str,
        client_cert: Option<(&str, &str)>,
    ) -> Result<ApiClient, ClientError> {
        let pem = |e: reconciler_tls::PkiError| ClientError::Transport {
            url: host.to_owned(),
            message: e.to_string(),
        };
        let tls = reconciler_tls::TlsState::new(ca_pem).map_err(pem)?;
        if let Some((chain, key)) = client_cert {
            tls.set_credentials(chain, key).map_err(pem)?;
        }
        let http = crate::pki::tls_client(&tls, timeout, true)?;
        Ok(ApiClient::with_http(&crate::pki::https_url(host), token, http))
    }

    /// A client over an HTTP client built elsewhere (with TLS settings, say).
    pub fn with_http(host: &str, token: &str, http: reqwest::Client) -> ApiClient {
        ApiClient { base: base_url(host), token: token.to_owned(), http }
    }

    /// Sends an unlock key to a locked manager (`flotilla manager unlock`).
    ///
    /// # Errors
    /// A wrong key, or the manager cannot be reached.
    pub async fn unlock(&self, key: &str) -> Result<(), ClientError> {
        let body = UnlockRequest { key: key.to_owned() };
        self.call::<_, Empty>(Method::POST, "/v1/unlock", Some(&body)).await.map(|_| ())
    }

    /// The manager's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method path` with an optional JSON body.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        send(req, &url).await
    }

    /// `GET path`, for a streamed answer (`service logs -f`): the response, once its status
    /// says success.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.base, path);
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            message: e.without_url().to_string(),
        };
        // A follow has no end: no overall timeout, only the connect timeout.
        let req = self.http.get(&url).bearer_auth(&self.token).timeout(Duration::MAX);
        let resp = req.send().await.map_err(transport)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport)?;
        let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
        Err(ApiError::from_remote(status, message).into())
    }

    /// `GET path`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `DELETE path`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::DELETE, path, None::<&()>).await
    }

    /// `node ls`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn nodes(&self) -> Result<Vec<NodeView>, ClientError> {
        self.get("/v1/nodes").await
    }

    /// `node inspect`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn inspect_node(&self, id: &str) -> Result<NodeInspect, ClientError> {
        self.get(&format!("/v1/nodes/{id}")).await
    }

    /// `node update`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn update_node(&self, id: &str, u: &NodeUpdate) -> Result<NodeInspect, ClientError> {
        self.post(&format!("/v1/nodes/{id}/update"), u).await
    }

    /// `node promote` / `node demote` (`action` is `promote` or `demote`).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn change_role(&self, id: &str, action: &str) -> Result<NodeInspect, ClientError> {
        self.post(&format!("/v1/nodes/{id}/{action}"), &Empty {}).await
    }

    /// `node rm`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn remove_node(&self, id: &str, force: bool) -> Result<(), ClientError> {
        self.delete::<Empty>(&format!("/v1/nodes/{id}?force={force}")).await.map(|_| ())
    }

    /// `join-token ROLE [--rotate]`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn join_token(&self, role: &str, rotate: bool) -> Result<TokenView, ClientError> {
        if rotate {
            self.post(&format!("/v1/join-token/{role}/rotate"), &Empty {}).await
        } else {
            self.get(&format!("/v1/join-token/{role}")).await
        }
    }

    /// `state export`: the cluster state (the store's `ClusterState`), decoded as `T`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn state<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        self.get("/v1/state").await
    }

    /// The answering manager's view of Raft.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        self.get("/v1/status").await
    }

    /// A raw write through Raft (`command` is a store command).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn write<C: Serialize>(&self, command: C) -> Result<WriteResult, ClientError> {
        #[derive(Serialize)]
        struct Body<C> {
            command: C,
        }
        self.post("/v1/write", &Body { command }).await
    }
}

/// An agent's client of the dispatcher, authenticated with its node credential. It talks to
/// one manager at a time; [`DispatcherClient::use_manager`] moves it to another.
#[derive(Clone)]
pub struct DispatcherClient {
    api: ApiClient,
    credential: String,
}

impl DispatcherClient {
    /// A client of the manager at `addr` presenting `credential`.
    pub fn new(addr: &str, credential: &str, http: reqwest::Client) -> DispatcherClient {
        DispatcherClient {
            api: ApiClient::with_http(addr, credential, http),
            credential: credential.to_owned(),
        }
    }

    /// The manager this client talks to.
    pub fn manager(&self) -> &str {
        self.api.base()
    }

    /// Talks to the manager at `addr` from now on.
    pub fn use_manager(&mut self, addr: &str) {
        self.api = ApiClient::with_http(addr, &self.credential, self.api.http.clone());
    }

    /// Opens a session.
    ///
    /// # Errors
    /// See [`ClientError`]; `Unauthorized` means this node's credential was revoked.
    pub async fn register(&self, req: &RegisterRequest) -> Result<Session, ClientError> {
        self.api.post(SESSION_PATH, req).await
    }

    /// Sends a heartbeat.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` means the session is gone (register again).
    pub async fn heartbeat(&self, session: &str) -> Result<HeartbeatAck, ClientError> {
        self.api.post(HEARTBEAT_PATH, &Heartbeat { session: session.to_owned() }).await
    }

    /// Waits up to `query.wait_ms` for assignments newer than `query.since`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` means the session is gone (register again).
    pub async fn assignments(&self, query: &AssignmentsQuery) -> Result<Assignments, ClientError> {
        let path = format!(
            "{ASSIGNMENTS_PATH}?session={}&since={}&wait_ms={}",
            query.session, query.since, query.wait_ms
        );
        let url = format!("{}{}", self.api.base, path);
        // The poll outlives the client's usual timeout by the wait it asked for.
        let timeout = Duration::from_millis(query.wait_ms.saturating_add(10_000));
        let req = self.api.http.get(&url).bearer_auth(&self.credential).timeout(timeout);
        send(req, &url).await
    }

    /// Waits up to `query.wait_ms` for routing-table changes after `query.since`.
    ///
    /// # Errors
    /// See [`ClientError`]; `NotFound` means the session is gone (register again).
    pub async fn routes(
        &self,
        query: &crate::mesh::RoutesQuery,
    ) -> Result<crate::mesh::Routes, ClientError> {
        let path = format!(
            "{}?session={}&since={}&wait_ms={}",
            crate::mesh::ROUTES_PATH,
            query.session,
            query.since,
            query.wait_ms
        );
        let url = format!("{}{}", self.api.base, path);
        let timeout = Duration::from_millis(query.wait_ms.saturating_add(10_000));
        let req = self.api.http.get(&url).bearer_auth(&self.credential).timeout(timeout);
        send(req, &url).await
    }

    /// Reports task states.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn report(&self, report: &StatusReport) -> Result<StatusAck, ClientError> {
        self.api.post(STATUS_PATH, report).await
    }

    /// Sends log lines for a subscription.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn publish_logs(&self, chunk: &LogChunk) -> Result<LogAck, ClientError> {
        self.api.post(LOGS_PATH, chunk).await
    }
}
