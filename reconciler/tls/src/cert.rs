//! What a node certificate says, and how certificates travel.
//!
//! A node certificate's subject is Swarm's: the common name is the node id, the
//! organizational unit its role (`flotilla-manager` or `flotilla-worker`), the organization
//! the cluster id. Its authority key identifier names the CA key that signed it, which is how
//! a root rotation knows which nodes still hold a certificate from the old root.
//!
//! The CA digest is the SHA-256 of the root certificate's DER in base 36, 50 characters:
//! the `<digest>` of `FLT-1-<digest>-<secret>` (Swarm's `SWMTKN-1-<CA digest>-<secret>`).

use crate::error::PkiError;
use reconciler_types::{NodeId, NodeRole};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::X509Certificate;

/// The organizational unit of a manager's certificate.
pub const MANAGER_OU: &str = "flotilla-manager";
/// The organizational unit of a worker's certificate.
pub const WORKER_OU: &str = "flotilla-worker";
/// The length of a CA digest.
pub const DIGEST_LEN: usize = 50;

/// Who a certificate was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node id (the subject's common name).
    pub node_id: NodeId,
    /// The role (the organizational unit).
    pub role: NodeRole,
    /// The cluster id (the organization).
    pub cluster_id: String,
}

/// What a verified node certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Its subject.
    pub identity: NodeIdentity,
    /// Valid from (seconds since the Unix epoch).
    pub not_before: u64,
    /// Valid until (seconds since the Unix epoch).
    pub not_after: u64,
    /// The key id (hex) of the CA key that signed it.
    pub issuer_key_id: String,
}

/// The organizational unit of a role.
pub fn role_ou(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Manager => MANAGER_OU,
        NodeRole::Worker => WORKER_OU,
    }
}

/// `bytes` as a big-endian number in base 36 (digits then lowercase letters), left-padded with
/// `0` to `width`.
pub fn base36(bytes: &[u8], width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while num.iter().any(|b| *b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(DIGITS[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of a root certificate (its DER), as join tokens carry it.
pub fn ca_digest(root_der: &[u8]) -> String {
    base36(&Sha256::digest(root_der), DIGEST_LEN)
}

/// Compares two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The certificates of a PEM text, in order.
///
/// # Errors
/// [`PkiError::Pem`] when the text holds none or a damaged one.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(PkiError::Pem("no certificate found".into()));
    }
    Ok(certs)
}

/// DER certificates as one PEM text.
pub fn certs_to_pem<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> String {
    certs.into_iter().map(der_to_pem).collect()
}

/// One DER certificate as PEM.
pub fn der_to_pem(der: &[u8]) -> String {
    pem_block("CERTIFICATE", der)
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| PkiError::NotNodeCert(e.to_string()))
}

/// The subject key id (hex) of a certificate: for a root, the id its node certificates name
/// as their issuer.
///
/// # Errors
/// A certificate that does not parse or has no subject key identifier.
pub fn subject_key_id(der: &[u8]) -> Result<String, PkiError> {
    let cert = parse(der)?;
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(id) = ext.parsed_extension() {
            return Ok(hex(id.0));
        }
    }
    Err(PkiError::NotNodeCert("no subject key identifier".into()))
}

/// Reads what a node certificate says. It does not verify it: see [`crate::verify`].
///
/// # Errors
/// [`PkiError::NotNodeCert`] when the subject is not a node's.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, PkiError> {
    let cert = parse(der)?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
    };
    let bad = |what: &str| PkiError::NotNodeCert(format!("the subject has no {what}"));
    let node_id = first(&mut subject.iter_common_name()).ok_or_else(|| bad("common name"))?;
    let ou = first(&mut subject.iter_organizational_unit()).ok_or_else(|| bad("role"))?;
    let cluster_id = first(&mut subject.iter_organization()).ok_or_else(|| bad("cluster"))?;
    let role = match ou.as_str() {
        MANAGER_OU => NodeRole::Manager,
        WORKER_OU => NodeRole::Worker,
        other => return Err(PkiError::NotNodeCert(format!("unknown role {other:?}"))),
    };
    let mut issuer_key_id = None;
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(aki) = ext.parsed_extension() {
            issuer_key_id = aki.key_identifier.as_ref().map(|k| hex(k.0));
        }
    }
    let validity = cert.validity();
    let secs = |t: i64| u64::try_from(t).unwrap_or(0);
    Ok(CertInfo {
        identity: NodeIdentity { node_id: NodeId::new(node_id), role, cluster_id },
        not_before: secs(validity.not_before.timestamp()),
        not_after: secs(validity.not_after.timestamp()),
        issuer_key_id: issuer_key_id.ok_or_else(|| bad("authority key identifier"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_pads_and_converts() {
        assert_eq!(base36(&[0], 3), "000");
        assert_eq!(base36(&[35], 1), "z");
        assert_eq!(base36(&[1, 0], 0), "74"); // 256 = 7*36 + 4
        assert_eq!(base36(&[0xff; 16], 25).len(), 25);
    }

    #[test]
    fn pem_round_trips_through_the_parser() {
        for len in [1usize, 2, 3, 4, 47, 48, 100] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let pem = der_to_pem(&der);
            let parsed = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            assert_eq!(parsed.len(), 1);
            assert_eq!(parsed[0].as_ref(), der.as_slice(), "length {len}");
        }
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(certs_from_pem("hello"), Err(PkiError::Pem(_))));
        assert!(matches!(cert_info(b"\x30\x03abc"), Err(PkiError::NotNodeCert(_))));
    }
}
