//! Node credentials on the manager's side: issued at join (`FLTNODE-1-<node id>-<secret>`,
//! see `reconciler_api::credential`), kept only as the SHA-256 of the secret beside the node
//! record, and checked on every dispatcher call in constant time. A removed node has no
//! record, so its credential stops working with the next call.

use crate::error::ApiError;
use crate::token::{constant_time_eq, new_hex};
use reconciler_api::NodeCredential;
use reconciler_store::ClusterState;
use reconciler_types::NodeId;
use sha2::{Digest, Sha256};

/// SHA-256 of a credential's secret, in hex: what the store keeps.
pub fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new credential for `node_id` (32 random bytes of secret) and its digest.
///
/// # Errors
/// No randomness available.
pub fn issue(node_id: &NodeId) -> std::io::Result<(NodeCredential, String)> {
    let secret = new_hex(32)?;
    let digest = digest(&secret);
    Ok((NodeCredential { node_id: node_id.clone(), secret }, digest))
}

/// Checks a bearer credential against the state: the node must exist and its stored digest
/// match. Every failure is the same `401`, so a caller learns nothing about which part failed.
///
/// # Errors
/// [`ApiError::Unauthorized`].
pub fn verify(state: &ClusterState, bearer: &str) -> Result<NodeId, ApiError> {
    let cred = NodeCredential::parse(bearer).map_err(|_| ApiError::Unauthorized)?;
    let stored = state.nodes.get(&cred.node_id).and_then(|r| r.credential_digest.as_deref());
    let given = digest(&cred.secret);
    match stored {
        Some(d) if constant_time_eq(d, &given) => Ok(cred.node_id),
        _ => Err(ApiError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_store::{Expect, StoreCommand};
    use reconciler_types::Node;

    fn state_with(node: &str, digest: Option<String>) -> ClusterState {
        let mut s = ClusterState::default();
        let node = Node { id: NodeId::new(node), ..Node::default() };
        s.apply(&StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent }, 1);
        if let Some(d) = digest {
            s.apply(&StoreCommand::SetNodeCredential { id: NodeId::new("n1"), digest: d }, 2);
        }
        s
    }

    #[test]
    fn an_issued_credential_verifies_and_a_tampered_one_does_not() {
        let (cred, d) = issue(&NodeId::new("n1")).unwrap();
        let state = state_with("n1", Some(d));
        assert_eq!(verify(&state, &cred.to_string()), Ok(NodeId::new("n1")));
        let mut other = cred.clone();
        other.secret.replace_range(0..1, if other.secret.starts_with('a') { "b" } else { "a" });
        assert_eq!(verify(&state, &other.to_string()), Err(ApiError::Unauthorized));
        assert_eq!(verify(&state, "FLTNODE-1-n1"), Err(ApiError::Unauthorized));
    }

    #[test]
    fn a_node_without_a_record_or_digest_is_refused() {
        let (cred, _) = issue(&NodeId::new("n1")).unwrap();
        assert_eq!(
            verify(&ClusterState::default(), &cred.to_string()),
            Err(ApiError::Unauthorized)
        );
        assert_eq!(verify(&state_with("n1", None), &cred.to_string()), Err(ApiError::Unauthorized));
    }
}
