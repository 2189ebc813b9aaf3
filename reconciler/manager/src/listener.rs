//! The manager's listeners and what each connection proved about its peer.
//!
//! Over TLS, handshakes run concurrently off the accept loop (a slow or silent client never
//! holds up the others) and each finished connection carries the peer's verified node
//! certificate, if it sent one, to the handlers as [`PeerConn`] (axum's `ConnectInfo`). With
//! `--insecure-listen` connections are plain and carry no certificate.

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use reconciler_tls::{CertInfo, TlsState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct PeerConn {
    /// The peer's address.
    pub addr: SocketAddr,
    /// What its verified certificate says (mutual TLS), if it presented one.
    pub cert: Option<Arc<CertInfo>>,
}

impl Connected<IncomingStream<'_, PlainListener>> for PeerConn {
    fn connect_info(stream: IncomingStream<'_, PlainListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for PeerConn {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A plain TCP listener (`--insecure-listen`) with TCP_NODELAY on every connection:
/// without it, Nagle and delayed ACKs add tens of milliseconds to every Raft round trip.
pub struct PlainListener(pub TcpListener);

impl Listener for PlainListener {
    type Io = TcpStream;
    type Addr = PeerConn;

    async fn accept(&mut self) -> (TcpStream, PeerConn) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    let _unsupported = tcp.set_nodelay(true);
                    return (tcp, PeerConn { addr, cert: None });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<PeerConn> {
        Ok(PeerConn { addr: self.0.local_addr()?, cert: None })
    }
}

/// A TLS listener: handshakes with the node's live credentials and verifies client
/// certificates against the roots the node trusts.
///
/// It owns its socket: dropping it (axum drops the listener when a graceful shutdown
/// begins) closes the port at once, so a manager that stops listening, such as a locked
/// manager once it is unlocked, can bind the same address again straight away.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, PeerConn)>>,
}

impl TlsListener {
    /// Accepts on `tcp` with the credentials of `tls`.
    ///
    /// # Errors
    /// The server configuration cannot be built.
    pub fn new(tcp: TcpListener, tls: &Arc<TlsState>) -> std::io::Result<TlsListener> {
        let config = tls.server_config().map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        Ok(TlsListener { tcp, acceptor, handshakes: JoinSet::new() })
    }
}

/// One connection's handshake; `None` when it failed or took too long.
async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
) -> Option<(TlsStream<TcpStream>, PeerConn)> {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "TLS handshake refused");
            return None;
        }
        Err(_) => return None,
    };
    let cert = reconciler_tls::config::peer_info(tls.get_ref().1.peer_certificates());
    Some((tls, PeerConn { addr, cert: cert.map(Arc::new) }))
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = PeerConn;

    /// Accepts connections and runs their handshakes concurrently (a slow or silent client
    /// never holds up the others); answers the first connection whose handshake finished.
    async fn accept(&mut self) -> (Self::Io, PeerConn) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _unsupported = stream.set_nodelay(true);
                        self.handshakes.spawn(handshake(self.acceptor.clone(), stream, addr));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(conn)) = done {
                        return conn;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<PeerConn> {
        Ok(PeerConn { addr: self.tcp.local_addr()?, cert: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_tls::{NodeIdentity, RootCa};
    use reconciler_types::{NodeId, NodeRole};

    fn manager_tls() -> Arc<TlsState> {
        let root = RootCa::generate("c", crate::pki::unix_now()).unwrap();
        let who = NodeIdentity {
            node_id: NodeId::new("m1"),
            role: NodeRole::Manager,
            cluster_id: "c".into(),
        };
        let expiry = Duration::from_secs(3600);
        let (key, chain, _) = crate::pki::self_issue(&root, &who, expiry).unwrap();
        let state = TlsState::new(&root.cert_pem()).unwrap();
        state.set_credentials(&chain, &key.to_pem()).unwrap();
        state
    }

    #[tokio::test]
    async fn a_dropped_tls_listener_frees_its_port_at_once() {
        let tls = manager_tls();
        for _ in 0..20 {
            let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            let listener = TlsListener::new(tcp, &tls).unwrap();
            drop(listener);
            // No yield in between: the socket must be closed by the drop itself.
            TcpListener::bind(addr).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_up_the_next_handshake() {
        let tls = manager_tls();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let mut listener = TlsListener::new(tcp, &tls).unwrap();
        let _silent = TcpStream::connect(addr).await.unwrap();
        let config = Arc::new(tls.client_config(true).unwrap());
        let client = tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
            tokio_rustls::TlsConnector::from(config).connect(name.to_owned(), stream).await
        });
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        let (_, peer) = accepted.expect("the second client's handshake finishes first");
        assert_eq!(peer.cert.unwrap().identity.node_id, NodeId::new("m1"));
        client.await.unwrap().unwrap();
    }
}
