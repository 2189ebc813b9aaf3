//! The cluster's root CA and the keys of nodes.
//!
//! A root is an ECDSA P-256 key and a self-signed certificate valid 20 years (Swarm's
//! default). It signs node certificates from CSRs: the CA ignores the subject the node asked
//! for and writes the one the manager decided (node id, role, cluster), valid from one hour
//! before `now` (clock skew, as Swarm backdates) for the cluster's certificate expiry. For a
//! rotation the old root cross-signs the new root's key, so a node that still trusts only the
//! old root accepts certificates the new key issues.

use crate::cert::{self, NodeIdentity, certs_from_pem, der_to_pem, role_ou};
use crate::error::PkiError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::pki_types::CertificateSigningRequestDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How long a root certificate is valid (Swarm: 20 years).
pub const ROOT_VALIDITY_SECS: u64 = 20 * 365 * 24 * 3600;
/// How far a certificate's start is put before `now`, for clocks that differ.
pub const BACKDATE_SECS: u64 = 3600;
/// The common name of every flotilla root.
pub const ROOT_CN: &str = "flotilla-root-ca";

fn gen_err(e: rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}

fn datetime(secs: u64) -> Result<OffsetDateTime, PkiError> {
    let secs = i64::try_from(secs).map_err(|_| PkiError::Generate("time out of range".into()))?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| PkiError::Generate(e.to_string()))
}

fn serial(parts: &[&[u8]]) -> SerialNumber {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let mut bytes = h.finalize()[..16].to_vec();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// The parameters of a root of `cluster_id`, valid from `not_before` for 20 years.
fn root_params(
    cluster_id: &str,
    not_before: u64,
    salt: &[u8],
) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ROOT_CN);
    dn.push(DnType::OrganizationName, cluster_id);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = datetime(not_before)?;
    p.not_after = datetime(not_before + ROOT_VALIDITY_SECS)?;
    p.serial_number = Some(serial(&[cluster_id.as_bytes(), salt]));
    Ok(p)
}

/// A root CA: its certificate and its private key.
pub struct RootCa {
    cert_der: Vec<u8>,
    key: KeyPair,
    cluster_id: String,
    not_before: u64,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa").field("digest", &self.digest()).finish_non_exhaustive()
    }
}

impl RootCa {
    /// A new root for `cluster_id`, valid from `now` (seconds since the epoch) minus the
    /// backdate, for 20 years.
    ///
    /// # Errors
    /// [`PkiError::Generate`].
    pub fn generate(cluster_id: &str, now: u64) -> Result<RootCa, PkiError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let not_before = now.saturating_sub(BACKDATE_SECS);
        let params = root_params(cluster_id, not_before, key.public_key_raw())?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(RootCa {
            cert_der: cert.der().to_vec(),
            key,
            cluster_id: cluster_id.to_owned(),
            not_before,
        })
    }

    /// A root from its stored certificate and key (both PEM).
    ///
    /// # Errors
    /// [`PkiError::Pem`] or a certificate that is not a flotilla root.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<RootCa, PkiError> {
        let der = certs_from_pem(cert_pem)?.remove(0).to_vec();
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::Pem(e.to_string()))?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::Pem(e.to_string()))?;
        let cluster_id = parsed
            .subject()
            .iter_organization()
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| PkiError::Pem("the root certificate names no cluster".into()))?;
        let not_before = u64::try_from(parsed.validity().not_before.timestamp()).unwrap_or(0);
        Ok(RootCa { cert_der: der, key, cluster_id, not_before })
    }

    /// The root certificate as PEM.
    pub fn cert_pem(&self) -> String {
        der_to_pem(&self.cert_der)
    }

    /// The root certificate's DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key as PKCS#8 PEM: the caller seals it before storing it.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The digest join tokens carry.
    pub fn digest(&self) -> String {
        cert::ca_digest(&self.cert_der)
    }

    /// The key id that certificates this root signs name as their issuer.
    ///
    /// # Errors
    /// A damaged certificate.
    pub fn key_id(&self) -> Result<String, PkiError> {
        cert::subject_key_id(&self.cert_der)
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &self.key).map_err(gen_err)
    }

    /// Signs a node's CSR: the certificate says `who`, is valid from `now` minus the backdate
    /// until `now + expiry_secs`, and is returned as a PEM chain (the certificate, then
    /// `intermediates`, such as a cross-signed root during a rotation).
    ///
    /// # Errors
    /// [`PkiError::Csr`] for a CSR that does not parse or whose signature is wrong.
    pub fn issue(
        &self,
        csr_der: &[u8],
        who: &NodeIdentity,
        now: u64,
        expiry_secs: u64,
        intermediates: &[&[u8]],
    ) -> Result<String, PkiError> {
        let csr =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|e| PkiError::Csr(e.to_string()))?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, who.node_id.as_str());
        dn.push(DnType::OrganizationalUnitName, role_ou(who.role));
        dn.push(DnType::OrganizationName, who.cluster_id.as_str());
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        p.not_before = datetime(now.saturating_sub(BACKDATE_SECS))?;
        p.not_after = datetime(now.saturating_add(expiry_secs))?;
        let stamp = now.to_be_bytes();
        p.serial_number =
            Some(serial(&[who.node_id.as_str().as_bytes(), &stamp, &self.cert_der, csr_der]));
        let cert = p.signed_by(&csr.public_key, &self.issuer()?).map_err(gen_err)?;
        let mut chain = der_to_pem(cert.der());
        for der in intermediates {
            chain.push_str(&der_to_pem(der));
        }
        Ok(chain)
    }

    /// `other`'s key certified by this root under `other`'s own subject: the intermediate that
    /// lets nodes trusting only this root accept what `other` signs (a rotation).
    ///
    /// # Errors
    /// [`PkiError::Generate`].
    pub fn cross_sign(&self, other: &RootCa) -> Result<Vec<u8>, PkiError> {
        let params = root_params(&other.cluster_id, other.not_before, other.key.public_key_raw())?;
        let cert = params.signed_by(&other.key, &self.issuer()?).map_err(gen_err)?;
        Ok(cert.der().to_vec())
    }
}

/// A node's private key. Its `Debug` shows nothing of the key.
pub struct NodeKey(KeyPair);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

impl NodeKey {
    /// A fresh ECDSA P-256 key.
    ///
    /// # Errors
    /// [`PkiError::Generate`].
    pub fn generate() -> Result<NodeKey, PkiError> {
        KeyPair::generate().map(NodeKey).map_err(gen_err)
    }

    /// A key from PKCS#8 PEM.
    ///
    /// # Errors
    /// [`PkiError::Pem`].
    pub fn from_pem(pem: &str) -> Result<NodeKey, PkiError> {
        KeyPair::from_pem(pem).map(NodeKey).map_err(|e| PkiError::Pem(e.to_string()))
    }

    /// The key as PKCS#8 PEM (kept in the node's data folder, mode 0600).
    pub fn to_pem(&self) -> String {
        self.0.serialize_pem()
    }

    /// A certificate signing request for this key (DER). The subject is a placeholder: the
    /// CA decides who the certificate is for.
    ///
    /// # Errors
    /// [`PkiError::Generate`].
    pub fn csr_der(&self) -> Result<Vec<u8>, PkiError> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "flotilla-node");
        let csr = p.serialize_request(&self.0).map_err(gen_err)?;
        Ok(csr.der().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::cert_info;
    use reconciler_types::{NodeId, NodeRole};

    const NOW: u64 = 1_800_000_000;

    fn who(role: NodeRole) -> NodeIdentity {
        NodeIdentity { node_id: NodeId::new("n1abc"), role, cluster_id: "c1".into() }
    }

    #[test]
    fn a_node_certificate_carries_the_decided_identity_and_expiry() {
        let ca = RootCa::generate("c1", NOW).unwrap();
        let key = NodeKey::generate().unwrap();
        let chain =
            ca.issue(&key.csr_der().unwrap(), &who(NodeRole::Worker), NOW, 7200, &[]).unwrap();
        let der = certs_from_pem(&chain).unwrap().remove(0);
        let info = cert_info(&der).unwrap();
        assert_eq!(info.identity, who(NodeRole::Worker));
        assert_eq!(info.not_after, NOW + 7200);
        assert_eq!(info.not_before, NOW - BACKDATE_SECS);
        assert_eq!(info.issuer_key_id, ca.key_id().unwrap());
    }

    #[test]
    fn a_root_survives_storage_and_keeps_its_digest() {
        let ca = RootCa::generate("c1", NOW).unwrap();
        let back = RootCa::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(back.digest(), ca.digest());
        assert_eq!(ca.digest().len(), cert::DIGEST_LEN);
        let other = RootCa::generate("c1", NOW).unwrap();
        assert_ne!(other.digest(), ca.digest());
    }

    #[test]
    fn a_damaged_csr_is_refused() {
        let ca = RootCa::generate("c1", NOW).unwrap();
        let mut csr = NodeKey::generate().unwrap().csr_der().unwrap();
        let n = csr.len() - 3;
        csr[n] ^= 0xff;
        let err = ca.issue(&csr, &who(NodeRole::Manager), NOW, 60, &[]).unwrap_err();
        assert!(matches!(err, PkiError::Csr(_)), "{err:?}");
        assert!(matches!(
            ca.issue(b"junk", &who(NodeRole::Manager), NOW, 60, &[]),
            Err(PkiError::Csr(_))
        ));
    }

    #[test]
    fn keys_round_trip_and_hide_in_debug() {
        let key = NodeKey::generate().unwrap();
        let pem = key.to_pem();
        assert_eq!(NodeKey::from_pem(&pem).unwrap().to_pem(), pem);
        assert_eq!(format!("{key:?}"), "NodeKey(..)");
        let ca = RootCa::generate("c1", NOW).unwrap();
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }
}
