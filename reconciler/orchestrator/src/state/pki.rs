//! The replicated part of the cluster PKI: the root CA (its key sealed with the cluster key,
//! so autolock protects it too; kept in the cluster record), a rotation in progress, and
//! what each node's current certificate says (issuer and expiry), which is how a rotation
//! knows when every node has moved to the new root and how `node inspect` shows expiry. A
//! removed node keeps a record marked `removed`, so its certificate stays refused even by a
//! manager that never saw it join.

use super::ClusterState;
use super::apply::check;
use super::command::{Expect, RecordKind, Refusal};
use reconciler_types::{NodeId, NodeRole};
use serde::{Deserialize, Serialize};

/// The cluster's certificate authority.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaRecord {
    /// The root certificate in force (PEM); its digest is the join tokens' digest.
    pub root_cert: String,
    /// Its private key (PKCS#8 PEM), sealed with the cluster key.
    pub root_key_sealed: Vec<u8>,
    /// A rotation in progress.
    #[serde(default)]
    pub rotation: Option<CaRotation>,
    /// How long node certificates are valid, in seconds (`--cert-expiry`).
    pub cert_expiry_secs: u64,
    /// The log index that last wrote it.
    pub version: u64,
}

impl std::fmt::Debug for CaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaRecord")
            .field("rotating", &self.rotation.is_some())
            .field("cert_expiry_secs", &self.cert_expiry_secs)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The new root of a rotation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CaRotation {
    /// The new root certificate (PEM).
    pub root_cert: String,
    /// Its private key, sealed with the cluster key.
    pub root_key_sealed: Vec<u8>,
    /// The new root's key certified by the old root (PEM): the intermediate sent with every
    /// certificate the new key issues while nodes may still trust only the old root.
    pub cross_signed: String,
}

impl CaRecord {
    /// The roots nodes must trust: the root in force, and the new one during a rotation.
    pub fn trust_bundle(&self) -> String {
        match &self.rotation {
            None => self.root_cert.clone(),
            Some(r) => format!("{}{}", self.root_cert, r.root_cert),
        }
    }
}

/// What a node's current certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeCertRecord {
    /// The role it was issued for.
    pub role: NodeRole,
    /// The key id of the CA key that signed it.
    pub issuer_key_id: String,
    /// When it expires (seconds since the Unix epoch).
    pub not_after: u64,
    /// The node was removed: its certificate is refused from then on.
    #[serde(default)]
    pub removed: bool,
    /// The log index that last wrote it.
    pub version: u64,
}

/// A write to the PKI state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pki_op", rename_all = "snake_case")]
pub enum PkiCommand {
    /// Sets the CA (init, rotation start, rotation end); `digest` becomes the join tokens'.
    SetCa {
        /// The CA.
        ca: CaRecord,
        /// The digest of its root in force.
        digest: String,
        /// CAS on the CA record.
        expected: Expect,
    },
    /// Records a node's newly issued certificate.
    SetNodeCert {
        /// The node.
        node: NodeId,
        /// What its certificate says.
        cert: NodeCertRecord,
    },
}

impl ClusterState {
    /// Applies a PKI command.
    pub(super) fn apply_pki(&mut self, cmd: &PkiCommand, index: u64) -> Result<(), Refusal> {
        let Some(info) = self.cluster.as_mut() else {
            return Err(Refusal::NotFound { kind: RecordKind::Cluster, id: "cluster".into() });
        };
        match cmd {
            PkiCommand::SetCa { ca, digest, expected } => {
                let actual = info.ca.as_ref().map(|c| c.version);
                check(RecordKind::Cluster, "ca", *expected, actual)?;
                info.ca = Some(CaRecord { version: index, ..ca.clone() });
                info.digest.clone_from(digest);
                Ok(())
            }
            PkiCommand::SetNodeCert { node, cert } => {
                if self.nodes.get(node).is_none() {
                    return Err(Refusal::NotFound {
                        kind: RecordKind::Node,
                        id: node.as_str().to_owned(),
                    });
                }
                let record = NodeCertRecord { version: index, removed: false, ..cert.clone() };
                self.node_certs.insert(node.clone(), record);
                Ok(())
            }
        }
    }

    /// Whether `node` was removed from the cluster (its certificate is refused).
    pub fn node_removed(&self, node: &NodeId) -> bool {
        self.node_certs.get(node).is_some_and(|c| c.removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ClusterInfo;
    use reconciler_types::Node;

    fn state() -> ClusterState {
        let cluster = Some(ClusterInfo { digest: "old".into(), ..Default::default() });
        ClusterState { cluster, ..Default::default() }
    }

    #[test]
    fn the_ca_is_compare_and_set_and_moves_the_token_digest() {
        let mut s = state();
        let ca = CaRecord { root_cert: "R1".into(), ..Default::default() };
        let set = |expected| PkiCommand::SetCa { ca: ca.clone(), digest: "d1".into(), expected };
        s.apply_pki(&set(Expect::Absent), 3).unwrap();
        let info = s.cluster.clone().unwrap();
        assert_eq!(info.digest, "d1");
        assert!(s.apply_pki(&set(Expect::Version(2)), 4).is_err());
        s.apply_pki(&set(Expect::Version(3)), 5).unwrap();
        assert_eq!(s.cluster.unwrap().ca.map(|c| c.version), Some(5));
    }

    #[test]
    fn a_certificate_is_recorded_only_for_a_known_node_and_removal_marks_it() {
        let mut s = state();
        let id = NodeId::new("n1");
        let cmd = PkiCommand::SetNodeCert { node: id.clone(), cert: NodeCertRecord::default() };
        assert!(s.apply_pki(&cmd, 1).is_err());
        let node = Node { id: id.clone(), ..Node::default() };
        s.apply(
            &crate::state::StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent },
            2,
        );
        s.apply_pki(&cmd, 3).unwrap();
        assert!(!s.node_removed(&id));
        s.apply(
            &crate::state::StoreCommand::RemoveNode { id: id.clone(), expected: Expect::Any },
            4,
        );
        assert!(s.node_removed(&id));
    }

    #[test]
    fn the_trust_bundle_holds_both_roots_during_a_rotation() {
        let mut ca = CaRecord { root_cert: "A\n".into(), ..Default::default() };
        assert_eq!(ca.trust_bundle(), "A\n");
        ca.rotation = Some(CaRotation { root_cert: "B\n".into(), ..Default::default() });
        assert_eq!(ca.trust_bundle(), "A\nB\n");
        assert!(!format!("{ca:?}").contains("A\\n"));
    }
}
