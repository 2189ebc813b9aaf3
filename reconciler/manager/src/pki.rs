//! The manager's side of the cluster PKI: the CA made at init, certificates issued at join
//! and renewal, the root rotation, and the upkeep loop every manager runs.
//!
//! The CA key lives in the replicated state sealed with the cluster key (so autolock, which
//! seals the cluster key, protects it too); any manager can open it, but only the leader
//! issues, so every issued certificate is recorded (issuer, expiry) through Raft. A rotation
//! ends on the leader once every node's recorded certificate names the new key.

use crate::error::ApiError;
use crate::keys::SymmetricKey;
use crate::manager::Manager;
use reconciler_api::pki::{CaView, CertIssued, CertRenew, CertStatus, NodeCertView};
use reconciler_store::pki::{CaRecord, CaRotation, NodeCertRecord, PkiCommand};
use reconciler_store::{ClusterState, Expect, StoreCommand};
use reconciler_tls::cert::{ca_digest, certs_from_pem};
use reconciler_tls::{NodeIdentity, NodeKey, RootCa};
use reconciler_types::{NodeId, NodeRole};
use reqwest::Method;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Swarm's default node certificate lifetime: 90 days.
pub const DEFAULT_CERT_EXPIRY: Duration = Duration::from_secs(2160 * 3600);
/// The shortest `--cert-expiry` accepted. Nodes renew between 50 % and 80 % of a
/// certificate's life and look at it again at that moment, so even this one renews seconds
/// ahead of its expiry; Swarm's minimum is one hour, shorter values are for tests.
pub const MIN_CERT_EXPIRY: Duration = Duration::from_secs(10);

/// Seconds since the Unix epoch (certificates are stamped with wall-clock time).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn no_ca() -> ApiError {
    ApiError::FailedPrecondition(
        "this cluster has no certificate authority (--insecure-listen)".into(),
    )
}

/// A new cluster's CA record (key sealed with `cluster_key`) for `root`.
///
/// # Errors
/// No randomness for the seal.
pub fn ca_record(
    root: &RootCa,
    cluster_key: &SymmetricKey,
    expiry: Duration,
) -> Result<CaRecord, ApiError> {
    Ok(CaRecord {
        root_cert: root.cert_pem(),
        root_key_sealed: cluster_key.seal(root.key_pem().as_bytes()).map_err(internal)?,
        rotation: None,
        cert_expiry_secs: expiry.as_secs(),
        version: 0,
    })
}

/// Issues a certificate for `who` from `root` and describes it for the store.
///
/// # Errors
/// A bad CSR ([`ApiError::BadRequest`]).
pub fn issue(
    root: &RootCa,
    intermediates: &[&[u8]],
    csr: &[u8],
    who: &NodeIdentity,
    expiry_secs: u64,
) -> Result<(String, NodeCertRecord), ApiError> {
    let now = unix_now();
    let chain = root
        .issue(csr, who, now, expiry_secs, intermediates)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let record = NodeCertRecord {
        role: who.role,
        issuer_key_id: root.key_id().map_err(internal)?,
        not_after: now + expiry_secs,
        removed: false,
        version: 0,
    };
    Ok((chain, record))
}

/// A key and a certificate for a manager of a new cluster, straight from its root.
///
/// # Errors
/// As [`issue`].
pub fn self_issue(
    root: &RootCa,
    who: &NodeIdentity,
    expiry: Duration,
) -> Result<(NodeKey, String, NodeCertRecord), ApiError> {
    let key = NodeKey::generate().map_err(internal)?;
    let csr = key.csr_der().map_err(internal)?;
    let (chain, record) = issue(root, &[], &csr, who, expiry.as_secs())?;
    Ok((key, chain, record))
}

impl Manager {
    fn ca(&self, state: &ClusterState) -> Result<CaRecord, ApiError> {
        state.cluster.as_ref().and_then(|c| c.ca.clone()).ok_or_else(no_ca)
    }

    fn open_root(&self, cert: &str, sealed: &[u8]) -> Result<RootCa, ApiError> {
        let key = self.cluster_key.open(sealed).map_err(internal)?;
        let key = String::from_utf8(key).map_err(internal)?;
        RootCa::from_pem(cert, &key).map_err(internal)
    }

    /// The CA key that signs now and the intermediates its certificates carry.
    fn signer(&self, ca: &CaRecord) -> Result<(RootCa, Vec<Vec<u8>>), ApiError> {
        match &ca.rotation {
            None => Ok((self.open_root(&ca.root_cert, &ca.root_key_sealed)?, Vec::new())),
            Some(r) => {
                let root = self.open_root(&r.root_cert, &r.root_key_sealed)?;
                let cross = certs_from_pem(&r.cross_signed).map_err(internal)?;
                Ok((root, cross.into_iter().map(|c| c.to_vec()).collect()))
            }
        }
    }

    /// Issues a certificate for a node of `state` (join and renewal).
    ///
    /// # Errors
    /// No CA, or a bad CSR.
    pub fn issue_for(
        &self,
        state: &ClusterState,
        node_id: &NodeId,
        role: NodeRole,
        csr: &[u8],
    ) -> Result<(String, String, NodeCertRecord), ApiError> {
        let ca = self.ca(state)?;
        let (root, inter) = self.signer(&ca)?;
        let inter: Vec<&[u8]> = inter.iter().map(Vec::as_slice).collect();
        let who = NodeIdentity {
            node_id: node_id.clone(),
            role,
            cluster_id: self.identity.cluster_id.clone(),
        };
        let (chain, record) = issue(&root, &inter, csr, &who, ca.cert_expiry_secs)?;
        Ok((chain, ca.trust_bundle(), record))
    }

    /// What a join writes: the node, and with a CSR (over TLS) the certificate issued for
    /// it, which is returned with the roots to trust.
    ///
    /// # Errors
    /// A bad CSR.
    pub(crate) fn join_write(
        &self,
        state: &ClusterState,
        node: reconciler_types::Node,
        csr: Option<&[u8]>,
    ) -> Result<(StoreCommand, Option<(String, String)>), ApiError> {
        let put = StoreCommand::PutNode { node: Box::new(node.clone()), expected: Expect::Absent };
        let Some(csr) = csr.filter(|_| self.tls.is_some()) else { return Ok((put, None)) };
        let (chain, ca, cert) = self.issue_for(state, &node.id, node.spec.role, csr)?;
        let record = StoreCommand::Pki {
            command: Box::new(PkiCommand::SetNodeCert { node: node.id, cert }),
        };
        Ok((StoreCommand::Batch { commands: vec![put, record] }, Some((chain, ca))))
    }

    /// Renews a node's certificate (leader only) for the role its record has now.
    ///
    /// # Errors
    /// An unknown (removed) node, no CA, a bad CSR, or a failed write.
    pub async fn renew_cert(&self, node_id: &NodeId, csr: &[u8]) -> Result<CertIssued, ApiError> {
        let (certificate, ca, cert) = self.with_state(|state| {
            let record = state.nodes.get(node_id).ok_or_else(|| {
                ApiError::Forbidden(format!("node {node_id} is not a member of this cluster"))
            })?;
            self.issue_for(state, node_id, record.node.spec.role, csr)
        })?;
        let command = PkiCommand::SetNodeCert { node: node_id.clone(), cert };
        self.write(StoreCommand::Pki { command: Box::new(command) }).await?;
        Ok(CertIssued { certificate, ca })
    }

    /// What a node's certificate should be.
    ///
    /// # Errors
    /// An unknown node, or no CA.
    pub fn cert_status(&self, node_id: &NodeId) -> Result<CertStatus, ApiError> {
        // Runs every few seconds on every node's behalf: read in place, never copy the state.
        let (role, ca) = self.node.state.read(|s| {
            let record = s.state.nodes.get(node_id).ok_or_else(|| {
                ApiError::Forbidden(format!("node {node_id} is not a member of this cluster"))
            })?;
            Ok::<_, ApiError>((record.node.spec.role, self.ca(&s.state)?))
        })?;
        let signer_cert = ca.rotation.as_ref().map_or(&ca.root_cert, |r| &r.root_cert);
        let der = certs_from_pem(signer_cert).map_err(internal)?;
        let signer_key_id = reconciler_tls::cert::subject_key_id(&der[0]).map_err(internal)?;
        Ok(CertStatus { role, signer_key_id, ca: ca.trust_bundle() })
    }

    /// The CA as `flotilla ca` shows it.
    ///
    /// # Errors
    /// No CA.
    pub fn ca_view(&self) -> Result<CaView, ApiError> {
        let (ca, digest) = self.node.state.read(|s| {
            let digest = s.state.cluster.as_ref().map(|c| c.digest.clone()).unwrap_or_default();
            Ok::<_, ApiError>((self.ca(&s.state)?, digest))
        })?;
        Ok(CaView { bundle: ca.trust_bundle(), digest, rotating: ca.rotation.is_some() })
    }

    /// Starts a root rotation (leader only): a new root, cross-signed by the one in force.
    /// Nodes then renew onto it and [`Manager::finish_rotation`] drops the old root.
    ///
    /// # Errors
    /// No CA, a rotation already in progress, or a failed write.
    pub async fn rotate_ca(&self) -> Result<CaView, ApiError> {
        let mut ca = self.with_state(|state| self.ca(state))?;
        if ca.rotation.is_some() {
            return Err(ApiError::FailedPrecondition(
                "a root rotation is already in progress; wait for every node to renew".into(),
            ));
        }
        let old = self.open_root(&ca.root_cert, &ca.root_key_sealed)?;
        let new = RootCa::generate(&self.identity.cluster_id, unix_now()).map_err(internal)?;
        let cross = old.cross_sign(&new).map_err(internal)?;
        ca.rotation = Some(CaRotation {
            root_cert: new.cert_pem(),
            root_key_sealed: self.cluster_key.seal(new.key_pem().as_bytes()).map_err(internal)?,
            cross_signed: reconciler_tls::cert::der_to_pem(&cross),
        });
        let digest = old.digest();
        let command = PkiCommand::SetCa { expected: Expect::Version(ca.version), ca, digest };
        self.write(StoreCommand::Pki { command: Box::new(command) }).await?;
        self.ca_view()
    }

    /// Ends a rotation (leader only) once every node holds a certificate from the new key:
    /// the new root is the only one, and the join tokens carry its digest. `Ok(false)` while
    /// some node has not renewed yet.
    ///
    /// # Errors
    /// A failed write.
    pub async fn finish_rotation(&self) -> Result<bool, ApiError> {
        // The leader's upkeep calls this every few seconds: read in place, copy only the CA
        // and, during a rotation, who issued each node's certificate.
        let read = self.node.state.read(|s| {
            let mut ca = s.state.cluster.as_ref().and_then(|c| c.ca.clone())?;
            let rotation = ca.rotation.take()?;
            let issuers: BTreeMap<NodeId, Option<String>> = s
                .state
                .nodes
                .keys()
                .map(|id| (id.clone(), s.state.node_certs.get(id).map(|c| c.issuer_key_id.clone())))
                .collect();
            Some((ca, rotation, issuers))
        });
        let Some((mut ca, rotation, issuers)) = read else { return Ok(false) };
        let new_der = certs_from_pem(&rotation.root_cert).map_err(internal)?;
        let new_key_id = reconciler_tls::cert::subject_key_id(&new_der[0]).map_err(internal)?;
        if !reconciler_tls::rotation::rotation_converged(&new_key_id, &issuers) {
            return Ok(false);
        }
        ca.root_cert = rotation.root_cert;
        ca.root_key_sealed = rotation.root_key_sealed;
        let digest = ca_digest(&new_der[0]);
        let command = PkiCommand::SetCa { expected: Expect::Version(ca.version), ca, digest };
        self.write(StoreCommand::Pki { command: Box::new(command) }).await?;
        Ok(true)
    }

    /// One round of this manager's certificate upkeep: trust the roots of the state, renew
    /// its own certificate when due (time, rotation, new role), and on the leader end a
    /// rotation that has converged.
    async fn upkeep(&self, dir: &std::path::Path, jitter: f64) -> Result<(), ApiError> {
        let Some(tls) = &self.tls else { return Ok(()) };
        let me = self.identity.node_id.clone();
        let status = match self.cert_status(&me) {
            Ok(s) => s,
            Err(_) => return Ok(()), // not caught up yet
        };
        if status.ca != tls.roots_pem() {
            tls.set_roots(&status.ca).map_err(internal)?;
            reconciler_tls::files::save_roots(dir, &status.ca).map_err(internal)?;
        }
        let Some(info) = tls.info() else { return Ok(()) };
        let due = reconciler_tls::rotation::needs_renewal(
            &info,
            &status.signer_key_id,
            status.role,
            unix_now(),
            jitter,
        );
        if due {
            let key = NodeKey::generate().map_err(internal)?;
            let csr = key.csr_der().map_err(internal)?;
            let body = CertRenew { csr: csr.clone(), node_id: Some(me.clone()) };
            let issued = self
                .on_leader(Method::POST, "/v1/node/certificate", Some(&body), || {
                    self.renew_cert(&me, &csr)
                })
                .await?;
            tls.set_roots(&issued.ca).map_err(internal)?;
            tls.set_credentials(&issued.certificate, &key.to_pem()).map_err(internal)?;
            reconciler_tls::files::save(dir, &key.to_pem(), &issued.certificate, &issued.ca)
                .map_err(internal)?;
        }
        if self.metrics().current_leader == Some(self.node.id) {
            self.finish_rotation().await?;
        }
        Ok(())
    }
}

/// Runs [`Manager::upkeep`] every `period`, or sooner when this manager's certificate is
/// due for renewal before then (a short `--cert-expiry`), until the manager is dropped.
pub fn spawn_upkeep(
    m: &Arc<Manager>,
    dir: PathBuf,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(m);
    // Where in the renewal window this manager renews: fixed per node, spread across nodes.
    let jitter = m.identity.raft_id.wrapping_mul(0x9e37_79b9) % 1000;
    let jitter = jitter as f64 / 1000.0;
    tokio::spawn(async move {
        let mut wait = period;
        loop {
            tokio::time::sleep(wait).await;
            let Some(m) = weak.upgrade() else { return };
            if let Err(e) = m.upkeep(&dir, jitter).await {
                tracing::warn!(error = %e, "certificate upkeep failed; retrying");
            }
            let info = m.tls.as_ref().and_then(|t| t.info());
            let secs = reconciler_tls::rotation::next_check(
                info.as_ref(),
                unix_now(),
                jitter,
                period.as_secs().max(1),
                1,
            );
            wait = period.min(Duration::from_secs(secs));
        }
    })
}

/// What `node inspect` shows of a node's certificate, from its replicated record.
pub fn cert_view(state: &ClusterState, node: &NodeId) -> Option<NodeCertView> {
    let c = state.node_certs.get(node).filter(|c| !c.removed)?;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(c.not_after);
    Some(NodeCertView {
        role: c.role,
        expires_at: c.not_after,
        expires: humantime::format_rfc3339_seconds(at).to_string(),
        issuer_key_id: c.issuer_key_id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_inspect_shows_the_recorded_expiry_in_utc() {
        let mut state = ClusterState::default();
        let id = NodeId::new("n1");
        assert_eq!(cert_view(&state, &id), None);
        let cert = NodeCertRecord {
            role: NodeRole::Worker,
            issuer_key_id: "ab12".into(),
            not_after: 1_800_000_000,
            removed: false,
            version: 3,
        };
        state.node_certs.insert(id.clone(), cert.clone());
        let view = cert_view(&state, &id).unwrap();
        assert_eq!(view.expires, "2027-01-15T08:00:00Z");
        assert_eq!((view.expires_at, view.role), (1_800_000_000, NodeRole::Worker));
        state.node_certs.insert(id.clone(), NodeCertRecord { removed: true, ..cert });
        assert_eq!(cert_view(&state, &id), None, "a removed node holds no valid certificate");
    }
}
