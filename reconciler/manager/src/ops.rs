//! The leader's side of the cluster operations: joins, Raft membership (promote, demote,
//! complete a manager's join), node updates and removal, join-token rotation. Each one reads
//! the state, decides, and writes with compare-and-set on the versions it read.

use crate::api::{
    JoinRequest, JoinResponse, NodeInspect, NodeUpdate, SecretCreate, SecretView, TokenView,
};
use crate::dispatcher::credential;
use crate::error::ApiError;
use crate::keys;
use crate::manager::Manager;
use crate::token::{self, TokenError};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use reconciler_store::cluster_state::{ClusterInfo, NodeRecord, SecretRecord};
use reconciler_store::{ClusterState, Expect, RaftId, StoreCommand};
use reconciler_types::{
    Availability, ManagerStatus, Node, NodeId, NodeRole, NodeSpec, NodeState, NodeStatus,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// How long a new manager has to catch up before it becomes a voter.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

fn token_error(e: TokenError) -> ApiError {
    ApiError::Forbidden(e.to_string())
}

fn membership_error(e: RaftError<RaftId, ClientWriteError<RaftId, BasicNode>>) -> ApiError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => {
            ApiError::Unavailable("leadership changed during a membership change; retry".into())
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => {
            ApiError::FailedPrecondition(c.to_string())
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// Finds a node by exact id, then hostname, then unique id prefix (as Docker does).
///
/// # Errors
/// [`ApiError::NotFound`] or, for an ambiguous prefix, [`ApiError::BadRequest`].
pub fn resolve_node<'a>(state: &'a ClusterState, key: &str) -> Result<&'a NodeRecord, ApiError> {
    if let Some(r) = state.nodes.get(&NodeId::new(key)) {
        return Ok(r);
    }
    let by_host: Vec<_> =
        state.nodes.values().filter(|r| r.node.description.hostname == key).collect();
    if let [one] = by_host.as_slice() {
        return Ok(one);
    }
    let by_prefix: Vec<_> = state
        .nodes
        .values()
        .filter(|r| !key.is_empty() && r.node.id.as_str().starts_with(key))
        .collect();
    match by_prefix.as_slice() {
        [one] => Ok(one),
        [] if by_host.is_empty() => Err(ApiError::NotFound(format!("node {key} not found"))),
        _ => Err(ApiError::BadRequest(format!("node {key} is ambiguous (more than one match)"))),
    }
}

fn cluster_info(state: &ClusterState) -> Result<&ClusterInfo, ApiError> {
    state
        .cluster
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the cluster is not initialised yet".into()))
}

/// What a join decided, before it is written.
struct Admitted {
    node_id: NodeId,
    role: NodeRole,
    raft_id: Option<RaftId>,
    info: ClusterInfo,
    credential: reconciler_api::NodeCredential,
    digest: String,
    put: StoreCommand,
    issued: Option<(String, String)>,
}

impl Manager {
    /// Admits a node (leader only): checks the join token, records the node with the digest
    /// of the node credential it answers (any role: a manager may run an agent too), and for
    /// a manager allocates its Raft id. The manager becomes a voter with
    /// [`Manager::complete_join`].
    ///
    /// # Errors
    /// Wrong token or role, a node id in use, or a failed write.
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResponse, ApiError> {
        let _guard = self.membership_lock.lock().await;
        let Admitted { node_id, role, raft_id, info, credential, digest, put, issued } =
            self.with_state(|state| self.admit(state, &req))?;
        let set = StoreCommand::SetNodeCredential { id: node_id.clone(), digest };
        self.write(StoreCommand::Batch { commands: vec![put, set] }).await?;
        let is_manager = role == NodeRole::Manager;
        Ok(JoinResponse {
            node_id,
            role,
            raft_id,
            cluster_id: info.id.clone(),
            digest: info.digest.clone(),
            peer_token: is_manager.then(|| info.peer_token.clone()),
            api_token: is_manager.then(|| info.api_token.clone()),
            cluster_key: is_manager.then(|| self.cluster_key.to_hex()),
            autolock_fingerprint: info.autolock_fingerprint.clone().filter(|_| is_manager),
            node_credential: Some(credential.to_string()),
            certificate: issued.as_ref().map(|(chain, _)| chain.clone()),
            ca: issued.map(|(_, ca)| ca),
        })
    }

    /// The decisions of a join, read from the state (no copy): the node's id, role and Raft
    /// id, its credential, and the writes that record it.
    fn admit(&self, state: &ClusterState, req: &JoinRequest) -> Result<Admitted, ApiError> {
        let info = cluster_info(state)?;
        let role = token::check_join_token(
            &req.token,
            &info.digest,
            &info.worker_secret,
            &info.manager_secret,
            Some(req.role),
        )
        .map_err(token_error)?;
        if req.addr.trim().is_empty() || req.hostname.trim().is_empty() {
            return Err(ApiError::BadRequest(
                "a join needs the node's hostname and address".into(),
            ));
        }
        let node_id = match &req.node_id {
            Some(id) if state.nodes.contains_key(id) => {
                return Err(ApiError::Conflict(format!("node ID {id} is already in use")));
            }
            Some(id) => id.clone(),
            None => {
                NodeId::new(token::new_node_id().map_err(|e| ApiError::Internal(e.to_string()))?)
            }
        };
        let raft_id = (role == NodeRole::Manager)
            .then(|| state.max_raft_id().max(self.voters().last().copied().unwrap_or(0)) + 1);
        let node = Node {
            id: node_id.clone(),
            spec: NodeSpec { role, availability: Availability::Active, ..NodeSpec::default() },
            description: reconciler_types::NodeDescription {
                hostname: req.hostname.clone(),
                ..Default::default()
            },
            status: NodeStatus {
                state: NodeState::Unknown,
                addr: req.addr.clone(),
                ..Default::default()
            },
            manager_status: raft_id.map(|id| ManagerStatus {
                raft_id: id,
                addr: req.addr.clone(),
                ..Default::default()
            }),
        };
        let (credential, digest) =
            credential::issue(&node_id).map_err(|e| ApiError::Internal(e.to_string()))?;
        let (put, issued) = self.join_write(state, node, req.csr.as_deref())?;
        Ok(Admitted { node_id, role, raft_id, info: info.clone(), credential, digest, put, issued })
    }

    /// Makes a joined (or promoted) manager a voter (leader only): adds it as a learner,
    /// waits for it to catch up, then changes the membership (joint consensus). Idempotent.
    ///
    /// # Errors
    /// Unknown node, not a manager, or the change failed.
    pub async fn complete_join(&self, node_id: &NodeId) -> Result<(), ApiError> {
        let _guard = self.membership_lock.lock().await;
        let record = self.with_state(|state| state.nodes.get(node_id).cloned());
        let record = record
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(format!("node {node_id} not found")))?;
        self.add_voter(&record.node).await
    }

    async fn add_voter(&self, node: &Node) -> Result<(), ApiError> {
        let Some(ms) = node.manager_status.as_ref().filter(|_| node.spec.role == NodeRole::Manager)
        else {
            return Err(ApiError::FailedPrecondition(format!("node {} is not a manager", node.id)));
        };
        if self.voters().contains(&ms.raft_id) {
            return Ok(());
        }
        let raft = &self.node.raft;
        let learner = raft.add_learner(ms.raft_id, BasicNode::new(self.peer_url(&ms.addr)), true);
        match tokio::time::timeout(CATCH_UP_TIMEOUT, learner).await {
            Err(_) => {
                return Err(ApiError::Unavailable(format!(
                    "manager {} did not catch up in time",
                    node.id
                )));
            }
            Ok(r) => r.map_err(membership_error)?,
        };
        let add = ChangeMembers::AddVoterIds(BTreeSet::from([ms.raft_id]));
        match tokio::time::timeout(CATCH_UP_TIMEOUT, raft.change_membership(add, false)).await {
            Err(_) => Err(self.no_quorum()),
            Ok(r) => r.map(|_| ()).map_err(membership_error),
        }
    }

    /// A node's record (by id, or unique prefix or hostname) and its certificate's view,
    /// read without copying the state.
    fn node_and_cert(
        &self,
        key: &str,
    ) -> Result<(NodeRecord, Option<reconciler_api::pki::NodeCertView>), ApiError> {
        self.with_state(|state| {
            let record = resolve_node(state, key)?;
            Ok((record.clone(), crate::pki::cert_view(state, &record.node.id)))
        })
    }

    /// `node update` (leader only), retried on a concurrent change.
    ///
    /// # Errors
    /// Unknown node, or a failed write.
    pub async fn update_node(
        &self,
        key: &str,
        update: &NodeUpdate,
    ) -> Result<NodeInspect, ApiError> {
        let mut attempts = 0;
        loop {
            let (record, certificate) = self.node_and_cert(key)?;
            let mut node = record.node;
            if let Some(a) = update.availability {
                node.spec.availability = a;
            }
            for k in &update.label_rm {
                node.spec.labels.remove(k);
            }
            node.spec.labels.extend(update.label_add.clone());
            let cmd = StoreCommand::PutNode {
                node: Box::new(node.clone()),
                expected: Expect::Version(record.version),
            };
            match self.write(cmd).await {
                Ok(version) => return Ok(NodeInspect { node, version, certificate }),
                Err(ApiError::Conflict(_)) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// `node promote` (leader only): a node that has run a manager becomes a voter again.
    ///
    /// # Errors
    /// The node never ran a manager, or the membership change failed.
    pub async fn promote(&self, key: &str) -> Result<NodeInspect, ApiError> {
        let _guard = self.membership_lock.lock().await;
        let (record, certificate) = self.node_and_cert(key)?;
        let mut node = record.node;
        if node.manager_status.is_none() {
            return Err(ApiError::FailedPrecondition(format!(
                "node {} runs no manager process; start `flotilla manager --join` on it",
                node.id
            )));
        }
        let mut version = record.version;
        if node.spec.role != NodeRole::Manager {
            node.spec.role = NodeRole::Manager;
            let cmd = StoreCommand::PutNode {
                node: Box::new(node.clone()),
                expected: Expect::Version(version),
            };
            version = self.write(cmd).await?;
        }
        self.add_voter(&node).await?;
        Ok(NodeInspect { node, version, certificate })
    }

    /// `node demote` (leader only), refused for the last manager and when the removal would
    /// lose quorum (Swarm's checks and messages).
    ///
    /// # Errors
    /// See above, or a failed write / membership change.
    pub async fn demote(&self, key: &str) -> Result<NodeInspect, ApiError> {
        let _guard = self.membership_lock.lock().await;
        let (record, certificate) = self.node_and_cert(key)?;
        let mut node = record.node;
        let Some(raft_id) = node.manager_status.as_ref().map(|m| m.raft_id) else {
            return Ok(NodeInspect { node, version: record.version, certificate });
        };
        let voters = self.voters();
        let remaining: BTreeSet<RaftId> =
            voters.iter().copied().filter(|v| *v != raft_id).collect();
        if node.spec.role == NodeRole::Manager && remaining.is_empty() {
            return Err(ApiError::FailedPrecondition(
                "attempting to demote the last manager of the swarm".into(),
            ));
        }
        let reachable = remaining.iter().filter(|id| self.is_reachable(**id)).count();
        if voters.contains(&raft_id) && reachable < remaining.len() / 2 + 1 {
            return Err(ApiError::FailedPrecondition(
                "can't remove member from the raft: this would result in a loss of quorum".into(),
            ));
        }
        node.spec.role = NodeRole::Worker;
        let cmd = StoreCommand::PutNode {
            node: Box::new(node.clone()),
            expected: Expect::Version(record.version),
        };
        let version = self.write(cmd).await?;
        if voters.contains(&raft_id) {
            let remove = ChangeMembers::RemoveVoters(BTreeSet::from([raft_id]));
            let change = self.node.raft.change_membership(remove, false);
            match tokio::time::timeout(CATCH_UP_TIMEOUT, change).await {
                Err(_) => return Err(self.no_quorum()),
                Ok(r) => r.map_err(membership_error)?,
            };
        }
        Ok(NodeInspect { node, version, certificate })
    }

    /// `node rm` (leader only): a manager must be demoted first; a node that is not down
    /// needs `--force`.
    ///
    /// # Errors
    /// See above, or a failed write.
    pub async fn remove_node(&self, key: &str, force: bool) -> Result<(), ApiError> {
        let record = self.with_state(|state| resolve_node(state, key).cloned())?;
        let node = &record.node;
        let raft_id = node.manager_status.as_ref().map(|m| m.raft_id);
        if node.spec.role == NodeRole::Manager
            || raft_id.is_some_and(|id| self.voters().contains(&id))
        {
            return Err(ApiError::FailedPrecondition(format!(
                "node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
                node.id
            )));
        }
        if !force && self.observed_state(node) == NodeState::Ready {
            return Err(ApiError::FailedPrecondition(format!(
                "node {} is not down and can't be removed",
                node.id
            )));
        }
        let cmd = StoreCommand::RemoveNode {
            id: node.id.clone(),
            expected: Expect::Version(record.version),
        };
        self.write(cmd).await.map(|_| ())
    }

    /// The join token of a role, from the local state.
    ///
    /// # Errors
    /// The cluster is not initialised.
    pub fn join_token(&self, role: NodeRole) -> Result<TokenView, ApiError> {
        self.with_state(|state| {
            let info = cluster_info(state)?;
            let secret = match role {
                NodeRole::Worker => &info.worker_secret,
                NodeRole::Manager => &info.manager_secret,
            };
            Ok(TokenView { role, token: token::format_token(&info.digest, secret) })
        })
    }

    /// `join-token --rotate` (leader only): a new secret; the old token stops working for
    /// new joins, nodes already in the cluster are unaffected.
    ///
    /// # Errors
    /// A failed write.
    pub async fn rotate_token(&self, role: NodeRole) -> Result<TokenView, ApiError> {
        let version = self.with_state(|state| cluster_info(state).map(|info| info.version))?;
        let secret = token::new_secret().map_err(|e| ApiError::Internal(e.to_string()))?;
        let cmd = StoreCommand::SetJoinSecret { role, secret, expected: Expect::Version(version) };
        self.write(cmd).await?;
        self.join_token(role)
    }

    /// Creates or replaces a secret (leader only): the value is sealed with the cluster key
    /// before it is written, so Raft never sees it in the clear. The digest shown is salted
    /// per secret (`reconciler_planner::secret_digest`); a replacement keeps the salt, so the
    /// same value keeps its digest (a label change) and another value is refused, as Swarm
    /// refuses it.
    ///
    /// # Errors
    /// An empty name, or a failed write.
    pub async fn put_secret(&self, req: &SecretCreate) -> Result<SecretView, ApiError> {
        use reconciler_planner::secret_digest::{salt_for, salted, same_content};
        if req.name.trim().is_empty() {
            return Err(ApiError::BadRequest("a secret needs a name".into()));
        }
        let content = keys::content_digest(&req.data);
        let current = self.node.state.read(|s| s.state.secrets.get(&req.name).cloned());
        let (sealed, salt, digest) = match current {
            Some(c) if same_content((&c.salt, &c.digest), ("", &content)) => {
                (c.sealed, c.salt, c.digest)
            }
            other => {
                let sealed = self
                    .cluster_key
                    .seal(&req.data)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                let salt = other.map_or_else(|| salt_for(&sealed), |c| c.salt);
                let digest = salted(&salt, &content);
                (sealed, salt, digest)
            }
        };
        let record = SecretRecord {
            name: req.name.clone(),
            labels: req.labels.clone(),
            digest,
            salt,
            sealed,
            size: u64::try_from(req.data.len()).unwrap_or(u64::MAX),
            version: 0,
        };
        let view = |version| SecretView {
            name: record.name.clone(),
            labels: record.labels.clone(),
            digest: record.digest.clone(),
            salt: record.salt.clone(),
            version,
        };
        let cmd =
            StoreCommand::PutSecret { secret: Box::new(record.clone()), expected: Expect::Any };
        self.write(cmd).await.map(view)
    }

    /// Removes a secret (leader only).
    ///
    /// # Errors
    /// Unknown secret, or a failed write.
    pub async fn remove_secret(&self, name: &str) -> Result<(), ApiError> {
        let cmd = StoreCommand::RemoveSecret { name: name.to_owned(), expected: Expect::Any };
        self.write(cmd).await.map(|_| ())
    }

    /// The secrets, without their values.
    pub fn secrets(&self) -> Vec<SecretView> {
        self.with_state(|state| {
            state
                .secrets
                .values()
                .map(|s| SecretView {
                    name: s.name.clone(),
                    labels: s.labels.clone(),
                    digest: s.digest.clone(),
                    salt: s.salt.clone(),
                    version: s.version,
                })
                .collect()
        })
    }

    /// The plain value of a secret, unsealed with this manager's key (as the dispatcher's
    /// `StateSources` unseals what it hands to a node; this one serves checks and tests).
    ///
    /// # Errors
    /// Unknown secret, or a value that does not open with this manager's key.
    pub fn secret_value(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        let sealed = self.with_state(|state| state.secrets.get(name).map(|s| s.sealed.clone()));
        let sealed =
            sealed.ok_or_else(|| ApiError::NotFound(format!("secret {name} not found")))?;
        self.cluster_key.open(&sealed).map_err(|e| ApiError::Internal(e.to_string()))
    }
}
