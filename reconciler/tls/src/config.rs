//! rustls configurations over live credentials.
//!
//! A [`TlsState`] holds the roots this node trusts and its own certificate and key. The
//! server and client configs built from it read the state on every handshake, so a renewed
//! certificate or a rotated root takes effect for the next connection without rebuilding
//! any HTTP client or listener.
//!
//! * Server side: the node's certificate; a client certificate is asked for but optional
//!   (the CLI may authenticate with the API token, a joining node has no certificate yet).
//!   When one is sent it must verify; what it allows is decided per request from its subject.
//! * Client side: the server must present a manager certificate that verifies against the
//!   roots (no name check); the node's own certificate is sent when it has one.
//!
//! One crypto provider for everything: ring.

use crate::cert::{CertInfo, cert_info, certs_from_pem, certs_to_pem};
use crate::error::PkiError;
use crate::verify::{root_store, verify_chain};
use reconciler_types::NodeRole;
use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::sync::{Arc, RwLock};

/// The crypto provider of every flotilla TLS connection.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

struct Inner {
    roots: Arc<RootCertStore>,
    root_ders: Vec<CertificateDer<'static>>,
    key: Option<Arc<CertifiedKey>>,
    info: Option<CertInfo>,
}

/// What this node trusts and presents. Shared by its listener and its clients.
pub struct TlsState {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState").field("identity", &self.info()).finish_non_exhaustive()
    }
}

/// A certified key from a PEM chain and a PEM private key.
///
/// # Errors
/// [`PkiError::Pem`] for damaged PEM or a key that does not match the certificate.
pub fn certified_key(chain_pem: &str, key_pem: &str) -> Result<(CertifiedKey, CertInfo), PkiError> {
    let chain = certs_from_pem(chain_pem)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| PkiError::Pem(e.to_string()))?;
    let signing =
        provider().key_provider.load_private_key(key).map_err(|e| PkiError::Pem(e.to_string()))?;
    let info = cert_info(&chain[0])?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|_| PkiError::Pem("the key does not belong to the certificate".into()))?;
    Ok((certified, info))
}

impl TlsState {
    /// A state trusting the roots of `roots_pem`, without credentials yet.
    ///
    /// # Errors
    /// [`PkiError::Pem`].
    pub fn new(roots_pem: &str) -> Result<Arc<TlsState>, PkiError> {
        let root_ders = certs_from_pem(roots_pem)?;
        let roots = Arc::new(root_store(&root_ders)?);
        let inner = Inner { roots, root_ders, key: None, info: None };
        Ok(Arc::new(TlsState { inner: RwLock::new(inner) }))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Trusts the roots of `roots_pem` from the next handshake on (a rotation).
    ///
    /// # Errors
    /// [`PkiError::Pem`].
    pub fn set_roots(&self, roots_pem: &str) -> Result<(), PkiError> {
        let root_ders = certs_from_pem(roots_pem)?;
        let roots = Arc::new(root_store(&root_ders)?);
        let mut inner = self.write();
        inner.roots = roots;
        inner.root_ders = root_ders;
        Ok(())
    }

    /// Presents this chain and key from the next handshake on (join, renewal, rotation).
    ///
    /// # Errors
    /// [`PkiError::Pem`] or [`PkiError::NotNodeCert`].
    pub fn set_credentials(&self, chain_pem: &str, key_pem: &str) -> Result<CertInfo, PkiError> {
        let (key, info) = certified_key(chain_pem, key_pem)?;
        let mut inner = self.write();
        inner.key = Some(Arc::new(key));
        inner.info = Some(info.clone());
        Ok(info)
    }

    /// What this node's own certificate says, when it has one.
    pub fn info(&self) -> Option<CertInfo> {
        self.read().info.clone()
    }

    /// The trusted roots as PEM.
    pub fn roots_pem(&self) -> String {
        certs_to_pem(self.read().root_ders.iter().map(|c| c.as_ref()))
    }

    /// Verifies a peer's chain against the current roots.
    ///
    /// # Errors
    /// See [`verify_chain`].
    pub fn verify(&self, chain: &[CertificateDer<'_>], now: u64) -> Result<CertInfo, PkiError> {
        let roots = self.read().roots.clone();
        let (first, rest) =
            chain.split_first().ok_or_else(|| PkiError::Verify("no certificate".into()))?;
        verify_chain(first, rest, &roots, now)
    }

    /// The listener's config: this node's certificate, client certificates optional but
    /// verified when sent, HTTP/1.1 and HTTP/2.
    ///
    /// # Errors
    /// [`PkiError::Generate`] when the provider supports no protocol version (never with ring).
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, PkiError> {
        let verifier = Arc::new(Verifier { state: self.clone(), server_role: None });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Generate(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// A client config: the server must present a certificate from a trusted root, a
    /// manager's when `require_manager` (the CLI, agents, joining nodes; managers talking to a
    /// member they chose from the Raft membership accept any node's, so a node being promoted
    /// can be reached before its new certificate); this node's certificate is sent when it
    /// has one.
    ///
    /// # Errors
    /// As [`TlsState::server_config`].
    pub fn client_config(
        self: &Arc<Self>,
        require_manager: bool,
    ) -> Result<rustls::ClientConfig, PkiError> {
        let server_role = require_manager.then_some(NodeRole::Manager);
        let verifier = Arc::new(Verifier { state: self.clone(), server_role });
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Generate(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(Resolver(self.clone()))))
    }
}

/// Presents the node's current certificate, as a server and as a client.
#[derive(Debug)]
struct Resolver(Arc<TlsState>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().key.clone()
    }
}

impl ResolvesClientCert for Resolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.read().key.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.read().key.is_some()
    }
}

/// Verifies a peer's chain against the current roots; as a client, also that the server is
/// a manager.
#[derive(Debug)]
struct Verifier {
    state: Arc<TlsState>,
    server_role: Option<NodeRole>,
}

fn tls_err(e: PkiError) -> rustls::Error {
    match e {
        PkiError::Verify(m) if m.contains("xpired") => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
        }
        PkiError::Verify(_) => {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        }
        other => rustls::Error::General(other.to_string()),
    }
}

fn secs(now: UnixTime) -> u64 {
    now.as_secs()
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let roots = self.state.read().roots.clone();
        let info = verify_chain(end_entity, intermediates, &roots, secs(now)).map_err(tls_err)?;
        match self.server_role {
            Some(role) if info.identity.role != role => Err(rustls::Error::General(format!(
                "the server's certificate is not a manager's (node {})",
                info.identity.node_id
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

impl ClientCertVerifier for Verifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let roots = self.state.read().roots.clone();
        verify_chain(end_entity, intermediates, &roots, secs(now)).map_err(tls_err)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// A client config that accepts any server certificate. Only for fetching a CA bundle that
/// is then pinned by the join token's digest ([`crate::verify::pin`]); nothing secret is
/// ever sent over it.
///
/// # Errors
/// As [`TlsState::server_config`].
pub fn unverified_client_config() -> Result<rustls::ClientConfig, PkiError> {
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::Generate(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth())
}

#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// What the peer of an accepted connection proved, from its verified certificates.
pub fn peer_info(certs: Option<&[CertificateDer<'_>]>) -> Option<CertInfo> {
    cert_info(certs?.first()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{NodeKey, RootCa};
    use crate::cert::NodeIdentity;
    use reconciler_types::NodeId;
    use rustls::{ClientConnection, ServerConnection};

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn node(ca: &RootCa, id: &str, role: NodeRole, issued: u64, expiry: u64) -> Arc<TlsState> {
        let who = NodeIdentity { node_id: NodeId::new(id), role, cluster_id: "c".into() };
        let key = NodeKey::generate().unwrap();
        let chain = ca.issue(&key.csr_der().unwrap(), &who, issued, expiry, &[]).unwrap();
        let state = TlsState::new(&ca.cert_pem()).unwrap();
        state.set_credentials(&chain, &key.to_pem()).unwrap();
        state
    }

    /// Runs a handshake in memory; the server's view of the client on success.
    fn handshake(
        server: &Arc<TlsState>,
        client: &Arc<TlsState>,
    ) -> Result<Option<CertInfo>, rustls::Error> {
        let mut s = ServerConnection::new(Arc::new(server.server_config().unwrap())).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut c =
            ClientConnection::new(Arc::new(client.client_config(true).unwrap()), name).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut back = Vec::new();
            s.write_tls(&mut back).unwrap();
            c.read_tls(&mut back.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(peer_info(s.peer_certificates()));
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn mutual_tls_tells_the_server_who_the_client_is() {
        let t = now();
        let ca = RootCa::generate("c", t).unwrap();
        let manager = node(&ca, "m1", NodeRole::Manager, t, 3600);
        let worker = node(&ca, "w1", NodeRole::Worker, t, 3600);
        let seen = handshake(&manager, &worker).unwrap().unwrap();
        assert_eq!(seen.identity.node_id, NodeId::new("w1"));
        assert_eq!(seen.identity.role, NodeRole::Worker);
        // A client with only the CA (the CLI with an API token) connects, anonymously.
        let anonymous = TlsState::new(&ca.cert_pem()).unwrap();
        assert_eq!(handshake(&manager, &anonymous).unwrap(), None);
    }

    #[test]
    fn strangers_expired_certificates_and_worker_servers_are_refused() {
        let t = now();
        let ca = RootCa::generate("c", t).unwrap();
        let manager = node(&ca, "m1", NodeRole::Manager, t, 3600);
        let other_ca = RootCa::generate("c", t).unwrap();
        let stranger = node(&other_ca, "x", NodeRole::Manager, t, 3600);
        assert!(handshake(&manager, &stranger).is_err());
        // The stranger's server is refused by our client too.
        assert!(handshake(&stranger, &node(&ca, "w", NodeRole::Worker, t, 3600)).is_err());
        let expired = node(&ca, "old", NodeRole::Manager, t - 7200, 3600);
        let err = handshake(&manager, &expired).unwrap_err();
        assert!(err.to_string().contains("xpired"), "{err}");
        let worker = node(&ca, "w1", NodeRole::Worker, t, 3600);
        let err = handshake(&worker, &manager).unwrap_err();
        assert!(err.to_string().contains("not a manager"), "{err}");
    }

    #[test]
    fn new_credentials_and_roots_apply_to_the_next_handshake() {
        let t = now();
        let old = RootCa::generate("c", t).unwrap();
        let new = RootCa::generate("c", t).unwrap();
        let manager = node(&old, "m1", NodeRole::Manager, t, 3600);
        let client = node(&new, "w1", NodeRole::Worker, t, 3600);
        assert!(handshake(&manager, &client).is_err());
        manager.set_roots(&format!("{}{}", old.cert_pem(), new.cert_pem())).unwrap();
        client.set_roots(&old.cert_pem()).unwrap();
        assert!(handshake(&manager, &client).is_ok());
        let key = NodeKey::generate().unwrap();
        let who = NodeIdentity {
            node_id: NodeId::new("w1"),
            role: NodeRole::Worker,
            cluster_id: "c".into(),
        };
        let chain = old.issue(&key.csr_der().unwrap(), &who, t, 60, &[]).unwrap();
        let info = client.set_credentials(&chain, &key.to_pem()).unwrap();
        assert_eq!(info.not_after, t + 60);
        assert_eq!(handshake(&manager, &client).unwrap().unwrap().not_after, t + 60);
        let wrong = NodeKey::generate().unwrap();
        assert!(client.set_credentials(&chain, &wrong.to_pem()).is_err());
    }
}
