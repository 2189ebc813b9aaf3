//! How Raft RPCs travel between managers: over HTTP ([`http`]) in the daemon, in memory
//! ([`mem`]) in tests. Both record when each peer last answered in [`PeerHealth`], which is
//! where `node ls` gets Reachable / Unreachable.

pub mod budget;
pub mod http;
pub mod mem;

use crate::type_config::RaftId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// When each peer last answered an RPC.
#[derive(Clone, Default)]
pub struct PeerHealth {
    last_ok: Arc<Mutex<BTreeMap<RaftId, Instant>>>,
}

impl PeerHealth {
    /// Records a successful exchange with `peer` now.
    pub fn record_ok(&self, peer: RaftId) {
        let mut map = self.last_ok.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(peer, Instant::now());
    }

    /// Whether `peer` answered within the last `within`.
    pub fn is_reachable(&self, peer: RaftId, within: Duration) -> bool {
        let map = self.last_ok.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&peer).is_some_and(|t| t.elapsed() <= within)
    }
}
