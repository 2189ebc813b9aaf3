//! What `node ls`, `node inspect`, `status` and `state export` show: the stored state plus
//! what only Raft knows (who leads, who is reachable).

use crate::api::{ClusterStatus, NodeInspect, NodeView};
use crate::error::ApiError;
use crate::manager::Manager;
use crate::ops::resolve_node;
use reconciler_store::ClusterState;
use reconciler_types::{Node, NodeRole, NodeState, Reachability};

/// The version flotilla reports as its engine version.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

impl Manager {
    fn live_manager(&self, node: &Node) -> Option<(u64, bool, Reachability)> {
        let ms = node.manager_status.as_ref().filter(|_| node.spec.role == NodeRole::Manager)?;
        // A peer is reachable when it answered this manager lately, or (the leader, seen from
        // a follower) when its last heartbeat came lately; a leader this manager no longer
        // hears from is shown unreachable, not as the leader, until a new one is elected.
        if !self.is_reachable(ms.raft_id) {
            return Some((ms.raft_id, false, Reachability::Unreachable));
        }
        let leader = self.metrics().current_leader == Some(ms.raft_id);
        Some((ms.raft_id, leader, Reachability::Reachable))
    }

    /// The STATUS of a node: managers are Ready when reachable, Down otherwise; workers show
    /// what the dispatcher recorded.
    pub fn observed_state(&self, node: &Node) -> NodeState {
        match self.live_manager(node) {
            Some((_, _, Reachability::Reachable)) => NodeState::Ready,
            Some(_) => NodeState::Down,
            None => node.status.state,
        }
    }

    /// Docker's MANAGER STATUS column: Leader, Reachable, Unreachable, or empty.
    pub fn manager_status_label(&self, node: &Node) -> String {
        match self.live_manager(node) {
            Some((_, true, _)) => "Leader".into(),
            Some((_, false, Reachability::Reachable)) => "Reachable".into(),
            Some(_) => "Unreachable".into(),
            None => String::new(),
        }
    }

    fn with_live_status(&self, node: &Node) -> Node {
        let mut node = node.clone();
        node.status.state = self.observed_state(&node);
        match self.live_manager(&node) {
            Some((_, leader, reachability)) => {
                if let Some(ms) = node.manager_status.as_mut() {
                    ms.leader = leader;
                    ms.reachability = reachability;
                }
            }
            None => node.manager_status = None,
        }
        node
    }

    /// The rows of `node ls`, sorted by hostname then id.
    pub fn node_views(&self) -> Vec<NodeView> {
        // Copies the node records only: a copy of the whole state costs as much as the tasks.
        let nodes: Vec<Node> =
            self.node.state.read(|s| s.state.nodes.values().map(|r| r.node.clone()).collect());
        let mut rows: Vec<NodeView> = nodes
            .iter()
            .map(|node| NodeView {
                id: node.id.clone(),
                is_self: node.id == self.identity.node_id,
                hostname: node.description.hostname.clone(),
                status: self.observed_state(node),
                availability: node.spec.availability,
                manager_status: self.manager_status_label(node),
                engine_version: ENGINE_VERSION.to_owned(),
            })
            .collect();
        rows.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
        rows
    }

    /// `node inspect`.
    ///
    /// # Errors
    /// Unknown or ambiguous node.
    pub fn inspect_node(&self, key: &str) -> Result<NodeInspect, ApiError> {
        let (record, certificate) = self.node.state.read(|s| {
            let record = resolve_node(&s.state, key)?;
            Ok::<_, ApiError>((record.clone(), crate::pki::cert_view(&s.state, &record.node.id)))
        })?;
        let node = self.with_live_status(&record.node);
        Ok(NodeInspect { node, version: record.version, certificate })
    }

    /// This manager's view of the Raft cluster.
    pub fn status(&self) -> ClusterStatus {
        let m = self.metrics();
        ClusterStatus {
            node_id: self.identity.node_id.clone(),
            raft_id: self.node.id,
            leader: m.current_leader,
            term: m.current_term,
            applied: m.last_applied.map(|l| l.index).unwrap_or(0),
            voters: self.voters().into_iter().collect(),
            leader_loop: self.leader_stats.view(),
        }
    }
}

/// The state with every credential (and credential digest) and secret value removed: what `state export` writes
/// and `reconcile --dry-run --state` reads.
pub fn redacted(mut state: ClusterState) -> ClusterState {
    if let Some(info) = state.cluster.as_mut() {
        info.worker_secret.clear();
        info.manager_secret.clear();
        info.api_token.clear();
        info.peer_token.clear();
    }
    for secret in state.secrets.values_mut() {
        secret.sealed.clear();
    }
    for node in state.nodes.values_mut() {
        node.credential_digest = None;
    }
    for stack in state.stacks.values_mut() {
        for kept in stack.deploy.applied.values_mut().flat_map(|a| a.secrets.values_mut()) {
            kept.sealed.clear();
        }
    }
    state
}
