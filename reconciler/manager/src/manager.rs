//! One manager: its Raft node, its identity, and the two ways an operation reaches the
//! leader. A handler calls [`Manager::on_leader`]: on the leader the operation runs here; on a
//! follower the same HTTP request is forwarded to the leader with the peer token. Writes are
//! bounded in time: when no leader can commit within `write_timeout`, the caller gets
//! "no quorum: N of M managers reachable". Reads are served from the local state.

use crate::dispatcher::{Dispatcher, DispatcherConfig};
use crate::error::ApiError;
use crate::identity::Identity;
use crate::keys::SymmetricKey;
use openraft::error::{ClientWriteError, RaftError};
use reconciler_store::network::http::base_url;
use reconciler_store::type_config::RaftMetrics;
use reconciler_store::{RaftId, RaftNode, StoreCommand};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How recently a peer must have answered to count as reachable.
pub const REACHABLE_WITHIN: Duration = Duration::from_millis(1500);

/// How often a forwarded operation is retried while the leader it knows does not answer
/// (a leader change wakes it at once).
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// A running manager.
pub struct Manager {
    /// The Raft node.
    pub node: RaftNode,
    /// Who this manager is.
    pub identity: Identity,
    /// This manager's advertised address.
    pub advertise: String,
    /// The HTTP client for forwarding to the leader.
    pub client: reqwest::Client,
    /// How long a write may wait for a leader and a quorum.
    pub write_timeout: Duration,
    /// The key that seals secret values.
    pub cluster_key: SymmetricKey,
    /// This manager's TLS credentials and trusted roots (`None` with `--insecure-listen`).
    pub tls: Option<std::sync::Arc<reconciler_tls::TlsState>>,
    /// Serialises joins and membership changes on the leader.
    pub(crate) membership_lock: tokio::sync::Mutex<()>,
    /// The agents' dispatcher (serving while this manager leads).
    pub dispatcher: Dispatcher,
    /// Serialises service creates on the leader (a name is checked free, then taken).
    pub(crate) service_lock: tokio::sync::Mutex<()>,
    /// What the leader loop has done (passes, batches, pass time).
    pub leader_stats: crate::leader::LoopStats,
    /// The GitOps loop's handle (repository cache, refresh trigger).
    pub gitops: crate::gitops::Gitops,
}

/// Where an operation has to run.
enum Route {
    Here,
    Leader(String),
    Unknown,
}

impl Manager {
    /// Runs `f` on the applied state without copying it (the read lock is held meanwhile:
    /// keep `f` short, and never await inside it). A copy of the state
    /// (`StateHandle::snapshot`) costs tens of milliseconds and a few hundred megabytes at
    /// 100,000 tasks.
    pub(crate) fn with_state<T>(&self, f: impl FnOnce(&reconciler_store::ClusterState) -> T) -> T {
        self.node.state.read(|applied| f(&applied.state))
    }

    /// A manager around a started Raft node.
    pub fn new(
        node: RaftNode,
        identity: Identity,
        advertise: String,
        client: reqwest::Client,
        cluster_key: SymmetricKey,
    ) -> Self {
        Manager {
            node,
            identity,
            advertise,
            client,
            cluster_key,
            write_timeout: Duration::from_secs(3),
            tls: None,
            membership_lock: tokio::sync::Mutex::new(()),
            dispatcher: Dispatcher::new(DispatcherConfig::default()),
            service_lock: tokio::sync::Mutex::new(()),
            leader_stats: crate::leader::LoopStats::default(),
            gitops: crate::gitops::Gitops::default(),
        }
    }

    /// The latest Raft metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.node.raft.metrics().borrow().clone()
    }

    /// The Raft ids of the voting managers.
    pub fn voters(&self) -> BTreeSet<RaftId> {
        self.metrics().membership_config.membership().voter_ids().collect()
    }

    /// Whether a manager is reachable from here (itself always is).
    pub fn is_reachable(&self, raft_id: RaftId) -> bool {
        raft_id == self.node.id || self.node.health.is_reachable(raft_id, REACHABLE_WITHIN)
    }

    /// The "no quorum" error with the current counts.
    pub fn no_quorum(&self) -> ApiError {
        let voters = self.voters();
        let reachable = voters.iter().filter(|id| self.is_reachable(**id)).count();
        ApiError::NoQuorum { reachable, total: voters.len() }
    }

    /// How other managers reach a manager at `addr`: `https://addr` over TLS.
    pub fn peer_url(&self, addr: &str) -> String {
        if self.tls.is_some() { reconciler_api::pki::https_url(addr) } else { base_url(addr) }
    }

    fn route(&self) -> Route {
        let m = self.metrics();
        match m.current_leader {
            Some(id) if id == self.node.id => Route::Here,
            Some(id) => match m.membership_config.membership().get_node(&id) {
                Some(node) => Route::Leader(base_url(&node.addr)),
                None => Route::Unknown,
            },
            None => Route::Unknown,
        }
    }

    /// The base URL of the leader when another manager leads; `None` when this one does.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] while no leader is known.
    pub fn leader_base(&self) -> Result<Option<String>, ApiError> {
        match self.route() {
            Route::Here => Ok(None),
            Route::Leader(base) => Ok(Some(base)),
            Route::Unknown => Err(ApiError::Unavailable("no leader is known yet; retry".into())),
        }
    }

    /// Runs `local` if this manager leads; otherwise forwards the request (`method`, `path`,
    /// `body`) to the leader. Retries while the leader is unknown or unreachable, until
    /// `write_timeout` has passed.
    ///
    /// # Errors
    /// The operation's own errors, or [`ApiError::NoQuorum`] when no leader answers in time.
    pub async fn on_leader<T, B, F, Fut>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        local: F,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let via = Forwarding {
            bearer: &self.identity.peer_token,
            timeout: self.write_timeout + Duration::from_secs(1),
        };
        self.on_leader_via(method, path, body, &via, local).await
    }

    /// [`Manager::on_leader`], forwarding with the caller's own credential and timeout (an
    /// agent's dispatcher call: the leader authenticates the node itself).
    ///
    /// # Errors
    /// As [`Manager::on_leader`].
    pub async fn on_leader_via<T, B, F, Fut>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        via: &Forwarding<'_>,
        local: F,
    ) -> Result<T, ApiError>
    where
        T: DeserializeOwned,
        B: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let deadline = Instant::now() + self.write_timeout;
        let mut metrics = self.node.raft.metrics();
        loop {
            let routed_to = metrics.borrow_and_update().current_leader;
            match self.route() {
                Route::Here => return local().await,
                Route::Leader(base) => match self.forward(&method, &base, path, body, via).await {
                    Err(ForwardError::Unreachable) => {}
                    Err(ForwardError::Api(e)) => return Err(e),
                    Ok(v) => return Ok(v),
                },
                Route::Unknown => {}
            }
            if Instant::now() >= deadline {
                return Err(self.no_quorum());
            }
            // Retry as soon as another leader is known (a new one elected, or this manager),
            // and at least every RETRY_EVERY while none is.
            let moved = metrics.wait_for(|m| m.current_leader != routed_to);
            let stopped = matches!(tokio::time::timeout(RETRY_EVERY, moved).await, Ok(Err(_)));
            if stopped {
                // Raft has shut down: nothing will change, so do not spin until the deadline.
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }

    async fn forward<T: DeserializeOwned, B: Serialize>(
        &self,
        method: &reqwest::Method,
        base: &str,
        path: &str,
        body: Option<&B>,
        via: &Forwarding<'_>,
    ) -> Result<T, ForwardError> {
        let mut req = self
            .client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(via.bearer)
            .timeout(via.timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|_| ForwardError::Unreachable)?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .map_err(|e| ForwardError::Api(ApiError::Internal(e.to_string())));
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<reconciler_api::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Err(ForwardError::Api(ApiError::from_remote(status.as_u16(), message)))
    }

    /// Asks the leader for a read (`GET path`) when another manager leads. `None` when this
    /// manager leads, or the leader does not answer within a second or refuses this
    /// manager's credentials (the caller then answers from its own, possibly stale, state);
    /// the leader's own refusal (`not found`, a bad request) is the answer, so a read right
    /// after a forwarded removal does not find the removed object in a follower's state.
    pub async fn read_from_leader<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Option<Result<T, ApiError>> {
        let Route::Leader(base) = self.route() else {
            return None;
        };
        let req = self
            .client
            .get(format!("{base}{path}"))
            .bearer_auth(&self.identity.peer_token)
            .timeout(Duration::from_secs(1));
        let resp = req.send().await.ok()?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.ok().map(Ok);
        }
        let answered = matches!(status.as_u16(), 400 | 404 | 409 | 412);
        if !answered {
            return None;
        }
        let text = resp.text().await.ok()?;
        let message = serde_json::from_str::<reconciler_api::ErrorBody>(&text)
            .map(|b| b.error)
            .unwrap_or(text);
        Some(Err(ApiError::from_remote(status.as_u16(), message)))
    }

    /// Writes one command through Raft on this manager, which must be the leader. Waits at
    /// most `write_timeout`.
    ///
    /// # Errors
    /// The store's refusal, [`ApiError::NoQuorum`] on timeout, or
    /// [`ApiError::Unavailable`] when leadership moved.
    pub async fn write(&self, cmd: StoreCommand) -> Result<u64, ApiError> {
        let write = self.node.raft.client_write(cmd.into());
        match tokio::time::timeout(self.write_timeout, write).await {
            Err(_) => Err(self.no_quorum()),
            Ok(Ok(resp)) => resp.data.into_result().map_err(crate::error::refused),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(ApiError::Unavailable("leadership changed during the write; retry".into()))
            }
            Ok(Err(e)) => Err(ApiError::Internal(e.to_string())),
        }
    }
}

/// How a request is forwarded to the leader: with which bearer credential, waiting how long.
pub struct Forwarding<'a> {
    /// The credential presented to the leader.
    pub bearer: &'a str,
    /// How long to wait for its answer.
    pub timeout: Duration,
}

enum ForwardError {
    Unreachable,
    Api(ApiError),
}
