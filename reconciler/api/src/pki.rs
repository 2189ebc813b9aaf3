//! The node side of the cluster PKI: joining with a token that pins the CA, renewing the
//! node's certificate, and the bodies of the PKI endpoints.
//!
//! ```text
//! GET  /v1/ca                 → CaView       (no credential: the joiner pins it by its token)
//! POST /v1/ca/rotate          → CaView       (API token or a manager's certificate)
//! GET  /v1/node/certificate   → CertStatus   (the caller's own node certificate)
//! POST /v1/node/certificate   CertRenew → CertIssued (the caller's own node certificate)
//! ```
//!
//! A joining node first fetches the CA bundle over a connection it does not trust, keeps
//! only the root whose digest is the one in its join token, and from then on talks only
//! over connections verified against that root: the token's secret and the node's CSR are
//! never sent to a manager that cannot prove it holds a certificate from the pinned root.

use crate::client::{ClientError, send};
use crate::http::base_url;
use crate::operator::{JoinRequest, JoinResponse};
use reconciler_tls::{NodeKey, PkiError, TlsState};
use reconciler_types::{NodeId, NodeRole};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The cluster's CA as `GET /v1/ca` and `flotilla ca` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaView {
    /// The roots nodes trust (PEM): one, or the old and the new during a rotation.
    pub bundle: String,
    /// The digest of the root in force (the join tokens' digest).
    pub digest: String,
    /// Whether a rotation is in progress.
    pub rotating: bool,
}

/// What `GET /v1/node/certificate` tells a node about the certificate it should hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertStatus {
    /// The node's role now.
    pub role: NodeRole,
    /// The key id of the CA key that signs now.
    pub signer_key_id: String,
    /// The roots to trust (PEM).
    pub ca: String,
}

/// `POST /v1/node/certificate`: a CSR for the caller's new key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertRenew {
    /// The CSR (DER).
    #[serde(with = "crate::b64")]
    pub csr: Vec<u8>,
    /// Set only by a manager forwarding another node's renewal to the leader.
    #[serde(default)]
    pub node_id: Option<NodeId>,
}

/// What `node inspect` shows of a node's certificate (Swarm shows the issuer in `TLSInfo`;
/// flotilla adds the expiry, which a short `--cert-expiry` makes worth watching).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCertView {
    /// The role it was issued for.
    pub role: NodeRole,
    /// When it expires, as RFC 3339 in UTC.
    pub expires: String,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The key id (hex) of the CA key that issued it.
    pub issuer_key_id: String,
}

/// A newly issued certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertIssued {
    /// The chain (PEM).
    pub certificate: String,
    /// The roots to trust (PEM).
    pub ca: String,
}

fn transport(url: &str) -> impl FnOnce(String) -> ClientError + '_ {
    move |message| ClientError::Transport { url: url.to_owned(), message }
}

/// `host:port` → `https://host:port`; an address with a scheme is kept.
pub fn https_url(addr: &str) -> String {
    if addr.contains("://") {
        base_url(addr)
    } else {
        format!("https://{}", addr.trim_end_matches('/'))
    }
}

/// An HTTP client over TLS with this node's live credentials (see
/// [`TlsState::client_config`] for `require_manager`).
///
/// # Errors
/// The client cannot be built.
pub fn tls_client(
    tls: &Arc<TlsState>,
    timeout: Duration,
    require_manager: bool,
) -> Result<reqwest::Client, ClientError> {
    let fail = |m: String| ClientError::Transport { url: String::new(), message: m };
    let config = tls.client_config(require_manager).map_err(|e| fail(e.to_string()))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| fail(e.to_string()))
}

/// The digest part of a join token `FLT-1-<digest>-<secret>`.
pub fn token_digest(token: &str) -> Option<&str> {
    token.trim().split('-').nth(2).filter(|d| d.len() == reconciler_tls::cert::DIGEST_LEN)
}

/// Fetches the manager's CA bundle without trusting the connection, and returns the root
/// whose digest is `digest` (PEM).
///
/// # Errors
/// The manager cannot be reached, or no root has the digest ([`PkiError::DigestMismatch`]
/// as an [`crate::ApiError::Forbidden`]).
pub async fn fetch_pinned_root(addr: &str, digest: &str) -> Result<String, ClientError> {
    let url = format!("{}/v1/ca", https_url(addr));
    let config = reconciler_tls::config::unverified_client_config()
        .map_err(|e| transport(&url)(e.to_string()))?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| transport(&url)(e.to_string()))?;
    let view: CaView = send(http.get(&url), &url).await?;
    let root = reconciler_tls::verify::pin(&view.bundle, digest).map_err(pki_refused)?;
    Ok(reconciler_tls::cert::der_to_pem(&root))
}

fn pki_refused(e: PkiError) -> ClientError {
    ClientError::Api(crate::ApiError::Forbidden(e.to_string()))
}

/// Joins over TLS: pins the CA by the token's digest, then sends the join request with a
/// CSR for `key` over a connection verified against that root. Returns the answer and the
/// node's TLS state (its new certificate and the roots it must trust).
///
/// # Errors
/// A malformed token, a manager of another cluster (refused before the token is sent), or
/// the join's own errors.
pub async fn join_tls(
    addr: &str,
    mut req: JoinRequest,
    key: &NodeKey,
) -> Result<(JoinResponse, Arc<TlsState>), ClientError> {
    let digest = token_digest(&req.token).ok_or_else(|| {
        ClientError::Api(crate::ApiError::BadRequest(
            "invalid join token: expected FLT-1-<cluster digest>-<secret>".into(),
        ))
    })?;
    let root = fetch_pinned_root(addr, digest).await?;
    let tls = TlsState::new(&root).map_err(pki_refused)?;
    req.csr = Some(key.csr_der().map_err(pki_refused)?);
    let http = tls_client(&tls, Duration::from_secs(15), true)?;
    let url = format!("{}/v1/join", https_url(addr));
    let resp: JoinResponse = send(http.post(&url).json(&req), &url).await?;
    let (Some(chain), Some(ca)) = (&resp.certificate, &resp.ca) else {
        return Err(ClientError::Api(crate::ApiError::Internal(
            "the manager answered the join without a certificate".into(),
        )));
    };
    tls.set_roots(ca).map_err(pki_refused)?;
    tls.set_credentials(chain, &key.to_pem()).map_err(pki_refused)?;
    Ok((resp, tls))
}

/// Asks for a new certificate for a new key (over `http`, which presents the current one).
/// Returns the new key (PEM) and what the manager issued; the caller applies and saves them.
///
/// # Errors
/// The manager refused (a removed node, an expired certificate) or cannot be reached.
pub async fn renew(
    http: &reqwest::Client,
    base: &str,
) -> Result<(String, CertIssued), ClientError> {
    let key = NodeKey::generate().map_err(pki_refused)?;
    let body = CertRenew { csr: key.csr_der().map_err(pki_refused)?, node_id: None };
    let url = format!("{base}/v1/node/certificate");
    let issued: CertIssued = send(http.post(&url).json(&body), &url).await?;
    Ok((key.to_pem(), issued))
}

/// What the cluster says this node's certificate should be.
///
/// # Errors
/// As [`renew`].
pub async fn status(http: &reqwest::Client, base: &str) -> Result<CertStatus, ClientError> {
    let url = format!("{base}/v1/node/certificate");
    send(http.get(&url), &url).await
}

/// One round of a node's certificate upkeep: trusts the roots the cluster names and renews
/// when [`reconciler_tls::rotation::needs_renewal`] says so. Returns the new key and chain to
/// save when it renewed. `now` is seconds since the epoch, `jitter` in [0, 1).
///
/// # Errors
/// As [`renew`].
pub async fn keep_fresh(
    tls: &Arc<TlsState>,
    http: &reqwest::Client,
    base: &str,
    now: u64,
    jitter: f64,
) -> Result<Option<(String, CertIssued)>, ClientError> {
    let st = status(http, base).await?;
    if st.ca != tls.roots_pem() {
        tls.set_roots(&st.ca).map_err(pki_refused)?;
    }
    let Some(info) = tls.info() else { return Ok(None) };
    if !reconciler_tls::rotation::needs_renewal(&info, &st.signer_key_id, st.role, now, jitter) {
        return Ok(None);
    }
    let (key, issued) = renew(http, base).await?;
    tls.set_roots(&issued.ca).map_err(pki_refused)?;
    tls.set_credentials(&issued.certificate, &key).map_err(pki_refused)?;
    Ok(Some((key, issued)))
}
