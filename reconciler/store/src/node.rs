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

/// flotilla's Raft timings: heartbeats every 200 ms and an election once a follower has
/// heard nothing for its leader's lease (the longest election timeout, 1.6 s) plus its own
/// election timeout (0.8–1.6 s), so a new leader is usually elected within about 3 s of
/// losing the old one (Swarm's defaults take about 10 s). openraft also takes the heartbeat
/// interval as the deadline of every AppendEntries call: a shorter one (50 ms once) let a
/// loaded machine or a large append time out every time, the followers lose the leader and
/// elections follow one another. An append carries at most 16 entries and at most
/// [`crate::log_store::MAX_APPEND_BYTES`] of them (an orchestrator entry holds at most 200
/// commands), so a follower catching up never needs one call longer than that deadline. A
/// snapshot is built every `snapshot_every` entries.
pub fn raft_config(snapshot_every: u64) -> Result<Arc<Config>, NodeError> {
    let config = Config {
        cluster_name: "flotilla".to_owned(),
        heartbeat_interval: 200,
        election_timeout_min: 800,
        election_timeout_max: 1600,
        max_payload_entries: 16,
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
