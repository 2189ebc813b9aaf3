//! An in-memory Raft network for tests: RPCs are direct calls on the target's `Raft`, and a
//! test can cut a node off (both directions) or take it out entirely.

use super::PeerHealth;
use crate::type_config::{Raft, RaftId, TypeConfig};
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct RouterInner {
    nodes: BTreeMap<RaftId, Raft>,
    isolated: BTreeSet<RaftId>,
}

/// The in-memory "wire" every test node is plugged into.
#[derive(Clone, Default)]
pub struct MemRouter {
    inner: Arc<Mutex<RouterInner>>,
}

#[derive(Debug, thiserror::Error)]
#[error("node {0} is unreachable")]
struct Cut(RaftId);

impl MemRouter {
    fn lock(&self) -> std::sync::MutexGuard<'_, RouterInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Plugs a node in.
    pub fn add(&self, id: RaftId, raft: Raft) {
        self.lock().nodes.insert(id, raft);
    }

    /// Unplugs a node (as if its process died).
    pub fn remove(&self, id: RaftId) -> Option<Raft> {
        self.lock().nodes.remove(&id)
    }

    /// Cuts a node off from every other node, or reconnects it.
    pub fn set_isolated(&self, id: RaftId, isolated: bool) {
        let mut inner = self.lock();
        if isolated {
            inner.isolated.insert(id);
        } else {
            inner.isolated.remove(&id);
        }
    }

    /// A network factory for the node `source`.
    pub fn factory(&self, source: RaftId, health: PeerHealth) -> MemNetworkFactory {
        MemNetworkFactory { router: self.clone(), source, health }
    }

    fn route(&self, source: RaftId, target: RaftId) -> Result<Raft, Unreachable> {
        let inner = self.lock();
        let cut = inner.isolated.contains(&source) || inner.isolated.contains(&target);
        match inner.nodes.get(&target) {
            Some(raft) if !cut => Ok(raft.clone()),
            _ => Err(Unreachable::new(&Cut(target))),
        }
    }
}

/// Makes [`MemNetwork`] clients for one source node.
pub struct MemNetworkFactory {
    router: MemRouter,
    source: RaftId,
    health: PeerHealth,
}

impl RaftNetworkFactory<TypeConfig> for MemNetworkFactory {
    type Network = MemNetwork;

    async fn new_client(&mut self, target: RaftId, _node: &BasicNode) -> MemNetwork {
        MemNetwork {
            router: self.router.clone(),
            source: self.source,
            target,
            health: self.health.clone(),
        }
    }
}

/// A connection from one node to another over the in-memory router.
pub struct MemNetwork {
    router: MemRouter,
    source: RaftId,
    target: RaftId,
    health: PeerHealth,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<RaftId, BasicNode, RaftError<RaftId, E>>>;

impl MemNetwork {
    fn target(&self) -> Result<Raft, Unreachable> {
        self.router.route(self.source, self.target)
    }

    fn finish<T, E>(&self, r: Result<T, RaftError<RaftId, E>>) -> RpcResult<T, E>
    where
        E: std::error::Error,
    {
        self.health.record_ok(self.target);
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for MemNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftId>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let r = raft.append_entries(rpc).await;
        self.finish(r)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftId>, InstallSnapshotError> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let r = raft.install_snapshot(rpc).await;
        self.finish(r)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftId>> {
        let raft = self.target().map_err(RPCError::Unreachable)?;
        let r = raft.vote(rpc).await;
        self.finish(r)
    }
}
