//! The one error of the PKI. Messages never contain key material.

/// Why a PKI operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// A key or certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    /// A certificate signing request that does not parse or whose signature is wrong.
    #[error("invalid certificate signing request: {0}")]
    Csr(String),
    /// PEM text without the expected objects.
    #[error("invalid PEM: {0}")]
    Pem(String),
    /// A certificate that is not one flotilla issued to a node.
    #[error("not a flotilla node certificate: {0}")]
    NotNodeCert(String),
    /// A chain that does not lead to a trusted root, or is expired.
    #[error("the certificate does not verify: {0}")]
    Verify(String),
    /// No certificate of the CA bundle has the join token's digest.
    #[error(
        "the manager's CA certificate does not match the join token's digest: the token is for another cluster, or someone is between you and the manager"
    )]
    DigestMismatch,
}
