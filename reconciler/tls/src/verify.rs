//! Checking a node's certificate chain against the trusted roots, and pinning a CA bundle by
//! the digest of a join token.
//!
//! Names are not checked (managers move between addresses, and Swarm does not check them
//! either): what counts is that the chain leads to a trusted root, is within its validity,
//! and that its subject is a flotilla node; what the node may do follows from that subject.

use crate::cert::{CertInfo, ca_digest, cert_info, certs_from_pem};
use crate::error::PkiError;
use rustls::RootCertStore;
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::ParsedCertificate;
use std::time::Duration;

/// A root store of the given certificates.
///
/// # Errors
/// [`PkiError::Pem`] when one is not a usable trust anchor.
pub fn root_store(roots: &[CertificateDer<'static>]) -> Result<RootCertStore, PkiError> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).map_err(|e| PkiError::Pem(e.to_string()))?;
    }
    Ok(store)
}

/// Verifies `end_entity` (with the `intermediates` its peer sent) against `roots` at `now`
/// (seconds since the epoch) and returns what it says.
///
/// # Errors
/// [`PkiError::Verify`] for an unknown issuer, an expired or not yet valid certificate, a bad
/// signature; [`PkiError::NotNodeCert`] for a subject that is not a node's.
pub fn verify_chain(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &RootCertStore,
    now: u64,
) -> Result<CertInfo, PkiError> {
    let parsed =
        ParsedCertificate::try_from(end_entity).map_err(|e| PkiError::Verify(e.to_string()))?;
    let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let at = UnixTime::since_unix_epoch(Duration::from_secs(now));
    verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, at, algs.all)
        .map_err(|e| PkiError::Verify(e.to_string()))?;
    cert_info(end_entity)
}

/// The certificate of `bundle_pem` whose digest is `digest`: what a joining node trusts from
/// then on. A manager sends its CA bundle without proof; the token's digest is the proof.
///
/// # Errors
/// [`PkiError::DigestMismatch`], or [`PkiError::Pem`] for a damaged bundle.
pub fn pin(bundle_pem: &str, digest: &str) -> Result<CertificateDer<'static>, PkiError> {
    certs_from_pem(bundle_pem)?
        .into_iter()
        .find(|c| crate::cert::constant_time_eq(&ca_digest(c), digest))
        .ok_or(PkiError::DigestMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{NodeKey, RootCa};
    use crate::cert::NodeIdentity;
    use reconciler_types::{NodeId, NodeRole};

    const NOW: u64 = 1_800_000_000;

    fn issue(ca: &RootCa, expiry: u64, inter: &[&[u8]]) -> Vec<CertificateDer<'static>> {
        let who = NodeIdentity {
            node_id: NodeId::new("n1"),
            role: NodeRole::Manager,
            cluster_id: "c".into(),
        };
        let key = NodeKey::generate().unwrap();
        certs_from_pem(&ca.issue(&key.csr_der().unwrap(), &who, NOW, expiry, inter).unwrap())
            .unwrap()
    }

    fn roots(cas: &[&RootCa]) -> RootCertStore {
        let ders: Vec<_> =
            cas.iter().map(|c| CertificateDer::from(c.cert_der().to_vec())).collect();
        root_store(&ders).unwrap()
    }

    #[test]
    fn a_chain_verifies_only_against_its_own_root_and_within_its_validity() {
        let ca = RootCa::generate("c", NOW).unwrap();
        let other = RootCa::generate("c", NOW).unwrap();
        let chain = issue(&ca, 3600, &[]);
        let info = verify_chain(&chain[0], &chain[1..], &roots(&[&ca]), NOW + 10).unwrap();
        assert_eq!(info.identity.role, NodeRole::Manager);
        let err = verify_chain(&chain[0], &chain[1..], &roots(&[&other]), NOW).unwrap_err();
        assert!(matches!(err, PkiError::Verify(_)), "{err:?}");
        let expired = verify_chain(&chain[0], &chain[1..], &roots(&[&ca]), NOW + 3601).unwrap_err();
        assert!(expired.to_string().contains("xpired"), "{expired}");
    }

    #[test]
    fn a_cross_signed_root_lets_old_trust_accept_new_certificates() {
        let old = RootCa::generate("c", NOW).unwrap();
        let new = RootCa::generate("c", NOW + 5).unwrap();
        let cross = old.cross_sign(&new).unwrap();
        let chain = issue(&new, 3600, &[&cross]);
        // A node that has only the old root accepts it through the cross-signed intermediate.
        verify_chain(&chain[0], &chain[1..], &roots(&[&old]), NOW).unwrap();
        // A node that already trusts only the new root accepts it directly.
        verify_chain(&chain[0], &chain[1..], &roots(&[&new]), NOW).unwrap();
        // Without the intermediate, the old root does not accept it.
        assert!(verify_chain(&chain[0], &[], &roots(&[&old]), NOW).is_err());
        // A certificate from the old root is not accepted by the new root alone.
        let legacy = issue(&old, 3600, &[]);
        assert!(verify_chain(&legacy[0], &[], &roots(&[&new]), NOW).is_err());
    }

    #[test]
    fn pinning_picks_the_root_with_the_tokens_digest_and_refuses_others() {
        let ca = RootCa::generate("c", NOW).unwrap();
        let other = RootCa::generate("c", NOW).unwrap();
        let bundle = format!("{}{}", other.cert_pem(), ca.cert_pem());
        assert_eq!(pin(&bundle, &ca.digest()).unwrap().as_ref(), ca.cert_der());
        assert_eq!(pin(&other.cert_pem(), &ca.digest()), Err(PkiError::DigestMismatch));
    }
}
