//! The operator API's bodies (nodes, join tokens, secrets, status), shared by the manager's
//! server and [`crate::client::ApiClient`].
//!
//! Endpoints (all under a bearer token; the manager's `server` module has the routes):
//! ```text
//! POST /v1/join                       JoinRequest → JoinResponse   (join token in the body)
//! POST /v1/join/complete              CompleteJoin → {}            (peer token)
//! GET  /v1/nodes                      → [NodeView]
//! GET  /v1/nodes/{id}                 → NodeInspect
//! POST /v1/nodes/{id}/update          NodeUpdate → NodeInspect
//! POST /v1/nodes/{id}/promote|demote  → NodeInspect
//! DELETE /v1/nodes/{id}?force=true    → {}
//! GET  /v1/join-token/{role}          → TokenView
//! POST /v1/join-token/{role}/rotate   → TokenView
//! GET  /v1/state                      → ClusterState (credentials and secret values removed)
//! POST /v1/write                      {command: StoreCommand} → WriteResult
//! GET  /v1/status                     → ClusterStatus
//! GET  /v1/secrets, POST /v1/secrets  → [SecretView], SecretCreate → SecretView
//! ```
//! The cluster PKI's endpoints are listed in [`crate::pki`].

use reconciler_types::{Availability, Node, NodeId, NodeRole, NodeState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A request to join the cluster.
#[derive(Clone, Serialize, Deserialize, Default)]
pub struct JoinRequest {
    /// The join token (never logged).
    pub token: String,
    /// The role the node wants; a token of the other role is refused.
    pub role: NodeRole,
    /// The node id to use, when the node already has one.
    pub node_id: Option<NodeId>,
    /// The node's hostname.
    pub hostname: String,
    /// The address other managers (or the dispatcher) reach it at.
    pub addr: String,
    /// A certificate signing request for the node's own key (DER): a cluster with TLS
    /// answers with the node's certificate.
    #[serde(default, with = "crate::b64::option")]
    pub csr: Option<Vec<u8>>,
}

impl std::fmt::Debug for JoinRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinRequest")
            .field("role", &self.role)
            .field("node_id", &self.node_id)
            .field("hostname", &self.hostname)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The answer to a join.
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The node's id in the cluster.
    pub node_id: NodeId,
    /// Its role.
    pub role: NodeRole,
    /// Its Raft id, for managers.
    pub raft_id: Option<u64>,
    /// The cluster id.
    pub cluster_id: String,
    /// The cluster digest (the middle of join tokens).
    pub digest: String,
    /// The managers' shared credential, for managers.
    pub peer_token: Option<String>,
    /// The API credential, for managers.
    pub api_token: Option<String>,
    /// The cluster key (hex), for managers.
    pub cluster_key: Option<String>,
    /// With autolock, the SHA-256 of the unlock key, so the joiner can check the one it got.
    pub autolock_fingerprint: Option<String>,
    /// The node's own credential for the dispatcher (see [`crate::credential`]); only this
    /// node receives it, and it stops working when the node is removed.
    #[serde(default)]
    pub node_credential: Option<String>,
    /// The node's certificate chain (PEM), when it sent a CSR.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The roots the node must trust from now on (PEM).
    #[serde(default)]
    pub ca: Option<String>,
}

impl std::fmt::Debug for JoinResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinResponse")
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("raft_id", &self.raft_id)
            .field("cluster_id", &self.cluster_id)
            .finish_non_exhaustive()
    }
}

/// Asks the leader to make a joined manager a Raft voter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteJoin {
    /// The joined node.
    pub node_id: NodeId,
}

/// `node update`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeUpdate {
    /// New availability.
    pub availability: Option<Availability>,
    /// Labels to add or replace.
    #[serde(default)]
    pub label_add: BTreeMap<String, String>,
    /// Labels to remove.
    #[serde(default)]
    pub label_rm: Vec<String>,
}

/// One row of `node ls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub id: NodeId,
    /// Whether it is the manager that answered.
    pub is_self: bool,
    /// Hostname.
    pub hostname: String,
    /// Ready / Down / Unknown / Disconnected.
    pub status: NodeState,
    /// Active / Pause / Drain.
    pub availability: Availability,
    /// "Leader", "Reachable", "Unreachable", or empty for workers.
    pub manager_status: String,
    /// Engine (flotilla) version.
    pub engine_version: String,
}

/// `node inspect`: the stored node with its live manager status, and its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInspect {
    /// The node (manager status filled in from Raft).
    pub node: Node,
    /// The log index that last wrote it.
    pub version: u64,
    /// What its current certificate says (expiry, issuer); none without TLS or before the
    /// node has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<crate::pki::NodeCertView>,
}

/// A join token.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenView {
    /// worker or manager.
    pub role: NodeRole,
    /// The token.
    pub token: String,
}

/// The result of a raw write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteResult {
    /// The log index the write was applied at (the new version of what it wrote).
    pub index: u64,
}

/// What a manager knows about the Raft cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This manager's node id.
    pub node_id: NodeId,
    /// This manager's Raft id.
    pub raft_id: u64,
    /// The leader's Raft id, when known.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The last applied log index.
    pub applied: u64,
    /// Raft ids of the voters.
    pub voters: Vec<u64>,
    /// What this manager's leader loop has done since it started.
    #[serde(default)]
    pub leader_loop: LeaderLoopStats,
}

/// Counters of a manager's leader loop (zero on a manager that never led).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderLoopStats {
    /// Passes run.
    pub passes: u64,
    /// Batches written (one Raft entry each).
    pub batches: u64,
    /// Decisions inside those batches.
    pub decisions: u64,
    /// The last pass's duration, in microseconds.
    pub last_pass_micros: u64,
    /// All passes' duration, in microseconds.
    pub pass_micros: u64,
}

/// `POST /v1/unlock` on a locked manager.
#[derive(Clone, Serialize, Deserialize)]
pub struct UnlockRequest {
    /// The unlock key (`FLTKEY-1-...`).
    pub key: String,
}

/// `POST /v1/secrets`: creates or replaces a secret. The value is sealed with the cluster key
/// by the leader and never returned by any endpoint.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretCreate {
    /// Its name.
    pub name: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub data: Vec<u8>,
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretView {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// SHA-256 of the salt and the value's SHA-256 (`sha256(salt ":" sha256(value))`, in
    /// hex): equal values do not show equal digests, and a guess must be hashed per secret.
    pub digest: String,
    /// The salt of `digest` (empty for a secret stored before digests were salted).
    #[serde(default)]
    pub salt: String,
    /// The log index that last wrote it.
    pub version: u64,
}
