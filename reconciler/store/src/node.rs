//! Wiring one Raft node: config, redb-backed storage, a network, and the handles the manager
//! keeps.

use crate::log_store::LogStore;
use crate::network::PeerHealth;
use crate::state_machine::{StateHandle, StateMachineStore};
use crate::type_config::{Raft, RaftId, StorageError, TypeConfig};
use openraft::{Config, RaftNetworkFactory, SnapshotPolicy};
use redb::Database;
use std::sync::Arc;

/// Why a Raft node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The Raft config is invalid.
    #[error("invalid raft config")]
    Config(#[source] openraft::ConfigError),
    /// The stored state could not be read.
    #[error("cannot read the stored raft state")]
    Storage(#[source] StorageError),
    /// Raft refused to start.
    #[error("raft failed to start")]
    Fatal(#[source] openraft::error::Fatal<RaftId>),
}

/// flotilla's Raft timings: heartbeats every 100 ms (openraft checks its timers every 1.5
/// heartbeat intervals, so in practice every 150 ms), and an election once a follower has
/// heard nothing for its leader's lease (openraft 0.9 makes it the longest election timeout,
/// 400 ms) plus its own election timeout (300–400 ms, drawn once per node): a follower waits
/// at least 700 ms, at most 950 ms with the tick, and the first of the two survivors of a
/// three-manager cluster starts an election about 0.75 s after the leader's last heartbeat
/// (`bench-cluster`: failover in about 0.8 s; Swarm's defaults take about 10 s). The narrow
/// range keeps that short for a given wait; the ticks of the processes are not aligned, which
/// spreads the survivors' elections further apart.
///
/// openraft also takes the heartbeat interval as the deadline of every AppendEntries call.
/// 50 ms once let a loaded machine or a large append time out every time, the followers lost
/// the leader and elections followed one another; so did 60 ms heartbeats with 200–400 ms
/// elections, and 100 ms with 200–400 ms now and then, under `bench-scale` (10,000 tasks on
/// 100 fake nodes, a 2-core machine with a load of 8), while 100 ms with 300–400 ms kept the
/// first term. An append carries at most 16 entries and at most
/// [`crate::log_store::MAX_APPEND_BYTES`] of them (an orchestrator entry holds at most 200
/// commands). A follower far behind (30,000 tasks on 100 fake nodes on an idle machine) still
/// missed the deadline with every full append, for minutes, and nothing replicated: so each
/// peer's appends are kept within an [`crate::network::budget::AppendBudget`], halved at each
/// miss. A snapshot is built every `snapshot_every` entries.
pub fn raft_config(snapshot_every: u64) -> Result<Arc<Config>, NodeError> {
    let config = Config {
        cluster_name: "flotilla".to_owned(),
        heartbeat_interval: 100,
        election_timeout_min: 300,
        election_timeout_max: 400,
        max_payload_entries: crate::network::budget::MAX_APPEND_ENTRIES,
        install_snapshot_timeout: 2000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        max_in_snapshot_log_to_keep: 100,
        ..Config::default()
    };
    config.validate().map(Arc::new).map_err(NodeError::Config)
}

/// A running Raft node and what the manager needs alongside it.
#[derive(Clone)]
pub struct RaftNode {
    /// Its Raft id.
    pub id: RaftId,
    /// The Raft handle.
    pub raft: Raft,
    /// Reads of the applied state.
    pub state: StateHandle,
    /// When each peer last answered.
    pub health: PeerHealth,
}

/// Starts a Raft node on an open database (see [`crate::log_store::open_database`]).
///
/// # Errors
/// See [`NodeError`].
pub async fn new_raft_node<N>(
    id: RaftId,
    config: Arc<Config>,
    db: Arc<Database>,
    network: N,
    health: PeerHealth,
) -> Result<RaftNode, NodeError>
where
    N: RaftNetworkFactory<TypeConfig>,
{
    let log_store = LogStore::new(db.clone());
    let (sm, state) = StateMachineStore::open(db).map_err(NodeError::Storage)?;
    let raft = Raft::new(id, config, network, log_store, sm).await.map_err(NodeError::Fatal)?;
    Ok(RaftNode { id, raft, state, health })
}
