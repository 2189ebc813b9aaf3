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
use tokio::sync::mpsc;
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
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, PeerConn)>,
    local: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl TlsListener {
    /// Starts accepting on `tcp` with the credentials of `tls`.
    ///
    /// # Errors
    /// The server configuration cannot be built, or the socket has no address.
    pub fn new(tcp: TcpListener, tls: &Arc<TlsState>) -> std::io::Result<TlsListener> {
        let config = tls.server_config().map_err(std::io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let accept_loop = tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { ready, local, accept_loop })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, PeerConn)>,
) {
    loop {
        let (stream, addr) = match tcp.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _unsupported = stream.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => return,
            };
            let cert = reconciler_tls::config::peer_info(tls.get_ref().1.peer_certificates());
            let _listener_gone = tx.send((tls, PeerConn { addr, cert: cert.map(Arc::new) })).await;
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = PeerConn;

    async fn accept(&mut self) -> (Self::Io, PeerConn) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<PeerConn> {
        Ok(PeerConn { addr: self.local, cert: None })
    }
}
