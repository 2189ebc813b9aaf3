//! Raft RPCs over HTTP/JSON: `POST {addr}/raft/{append,vote,snapshot}` with the cluster's
//! peer token as a bearer credential. The server side lives in the manager's router. Each
//! peer's appends are kept within an [`AppendBudget`] that adapts to how fast it answers.

use super::PeerHealth;
use super::budget::AppendBudget;
use crate::type_config::{RaftId, TypeConfig};
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The path of the append-entries RPC.
pub const APPEND_PATH: &str = "/raft/append";
/// The path of the vote RPC.
pub const VOTE_PATH: &str = "/raft/vote";
/// The path of the install-snapshot RPC.
pub const SNAPSHOT_PATH: &str = "/raft/snapshot";

pub use reconciler_api::http::{base_url, http_client};

/// Makes [`HttpNetwork`] clients, one per peer.
#[derive(Clone)]
pub struct HttpNetworkFactory {
    client: reqwest::Client,
    peer_token: Arc<str>,
    health: PeerHealth,
}

impl HttpNetworkFactory {
    /// A factory that authenticates with `peer_token` and records answers in `health`.
    pub fn new(client: reqwest::Client, peer_token: &str, health: PeerHealth) -> Self {
        HttpNetworkFactory { client, peer_token: peer_token.into(), health }
    }
}

impl RaftNetworkFactory<TypeConfig> for HttpNetworkFactory {
    type Network = HttpNetwork;

    async fn new_client(&mut self, target: RaftId, node: &BasicNode) -> HttpNetwork {
        HttpNetwork {
            client: self.client.clone(),
            peer_token: self.peer_token.clone(),
            health: self.health.clone(),
            base: base_url(&node.addr),
            target,
            budget: AppendBudget::default(),
        }
    }
}

/// A connection to one peer.
pub struct HttpNetwork {
    client: reqwest::Client,
    peer_token: Arc<str>,
    health: PeerHealth,
    base: String,
    target: RaftId,
    budget: AppendBudget,
}

impl HttpNetwork {
    /// Sends `req` as JSON, serialized into a buffer of `capacity` bytes (a megabyte append
    /// grown from empty was copied some twenty times on the way).
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        capacity: usize,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<RaftId, BasicNode, RaftError<RaftId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let url = format!("{}{}", self.base, path);
        let mut body = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut body, req)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let sent = self
            .client
            .post(url)
            .bearer_auth(&*self.peer_token)
            .timeout(option.hard_ttl())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(send_error(e)),
        };
        if !resp.status().is_success() {
            let err = std::io::Error::other(format!("peer answered HTTP {}", resp.status()));
            return Err(RPCError::Network(NetworkError::new(&err)));
        }
        let body: Result<Resp, RaftError<RaftId, E>> =
            resp.json().await.map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.health.record_ok(self.target);
        body.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// How a failed send reaches openraft. Only a refused or failed connection makes the peer
/// `Unreachable`: openraft then backs off and sends that peer nothing, heartbeats included,
/// so a follower that was merely slow to answer (a timeout under load) would elect itself.
/// A timeout is a `Network` error, which openraft retries at the next heartbeat.
fn send_error<E>(e: reqwest::Error) -> RPCError<RaftId, BasicNode, E>
where
    E: std::error::Error,
{
    if e.is_connect() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

/// Room for a call's fields besides its entries (log ids, vote, commit index).
const SMALL_BODY: usize = 512;

/// About how long an append's JSON is: its entries' commands as they are stored, plus
/// each entry's log id.
fn append_len(rpc: &AppendEntriesRequest<TypeConfig>) -> usize {
    let entry = |e: &crate::type_config::Entry| match &e.payload {
        openraft::EntryPayload::Normal(c) => c.encoded_len().unwrap_or(0),
        _ => 0,
    };
    rpc.entries.iter().map(|e| entry(e) + 128).sum::<usize>() + SMALL_BODY
}

impl RaftNetwork<TypeConfig> for HttpNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<RaftId>, RPCError<RaftId, BasicNode, RaftError<RaftId>>> {
        let entries = u64::try_from(rpc.entries.len()).unwrap_or(u64::MAX);
        if let Err(hint) = self.budget.admit(entries) {
            return Err(RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(hint)));
        }
        let started = tokio::time::Instant::now();
        let answer = self.call(APPEND_PATH, &rpc, append_len(&rpc), &option).await;
        self.budget.finished(entries, started.elapsed(), option.hard_ttl());
        answer
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<RaftId>,
        RPCError<RaftId, BasicNode, RaftError<RaftId, InstallSnapshotError>>,
    > {
        let capacity = rpc.data.len().saturating_mul(2).saturating_add(SMALL_BODY);
        self.call(SNAPSHOT_PATH, &rpc, capacity, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftId>,
        option: RPCOption,
    ) -> Result<VoteResponse<RaftId>, RPCError<RaftId, BasicNode, RaftError<RaftId>>> {
        self.call(VOTE_PATH, &rpc, SMALL_BODY, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type Err = RPCError<RaftId, BasicNode, RaftError<RaftId>>;

    async fn send_to(addr: std::net::SocketAddr) -> reqwest::Error {
        let client = http_client(Duration::from_secs(10)).expect("client");
        let sent = client
            .post(format!("http://{addr}/raft/vote"))
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        match sent {
            Ok(resp) => panic!("expected a failed send, got HTTP {}", resp.status()),
            Err(e) => e,
        }
    }

    // Paused time: the 200 ms deadline passes without a real wait.
    #[tokio::test(start_paused = true)]
    async fn a_peer_too_slow_to_answer_is_a_network_error_not_unreachable() {
        // Accepts the connection and never answers: a leader under load looks like this.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let held = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let e = send_to(addr).await;
        assert!(e.is_timeout(), "{e}");
        let err: Err = send_error(e);
        assert!(matches!(err, RPCError::Network(_)), "{err}");
        held.abort();
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        let err: Err = send_error(send_to(addr).await);
        assert!(matches!(err, RPCError::Unreachable(_)), "{err}");
    }
}
