//! A typed client of the manager API (what the CLI and the benchmarks use).

use crate::api::{
    ClusterStatus, ErrorBody, NodeInspect, NodeUpdate, NodeView, TokenView, WriteRequest,
    WriteResult,
};
use crate::error::ApiError;
use crate::server::Empty;
use reconciler_store::network::http::{base_url, http_client};
use reconciler_store::{ClusterState, StoreCommand};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Sends an unlock key to a locked manager (`flotilla manager unlock`).
///
/// # Errors
/// A wrong key, or the manager cannot be reached.
pub async fn unlock(host: &str, key: &str) -> Result<(), ClientError> {
    let client = ApiClient::new(host, "", Duration::from_secs(10))?;
    let body = crate::api::UnlockRequest { key: key.to_owned() };
    client.call::<_, Empty>(Method::POST, "/v1/unlock", Some(&body)).await.map(|_| ())
}

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

/// A client of one manager.
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
        Ok(ApiClient { base: base_url(host), token: token.to_owned(), http })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{}", self.base, path);
        let transport = |e: reqwest::Error| ClientError::Transport {
            url: url.clone(),
            message: e.without_url().to_string(),
        };
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(transport);
        }
        let text = resp.text().await.map_err(transport)?;
        let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
        Err(ApiError::from_remote(status.as_u16(), message).into())
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
        let path = format!("/v1/nodes/{id}?force={force}");
        self.call::<(), Empty>(Method::DELETE, &path, None).await.map(|_| ())
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

    /// `state export`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn state(&self) -> Result<ClusterState, ClientError> {
        self.get("/v1/state").await
    }

    /// The answering manager's view of Raft.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn status(&self) -> Result<ClusterStatus, ClientError> {
        self.get("/v1/status").await
    }

    /// A raw write through Raft.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn write(&self, command: StoreCommand) -> Result<WriteResult, ClientError> {
        self.post("/v1/write", &WriteRequest { command }).await
    }
}
