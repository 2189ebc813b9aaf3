//! The routing mesh on this node (`docs/swarm-semantics.md` §8): for every published ingress
//! port of the cluster, this agent listens on the port (TCP or UDP) and forwards each new
//! connection, or each new UDP client, to one of the service's running tasks on any node.
//!
//! ```text
//!  dispatcher routes poll ─► Mesh::apply (Open/Close: listeners; Add/Remove: backends)
//!  client ─► listener ─► Balancer::pick ─► connect to node:port (next backend on failure)
//!                           └─ splice both ways until both sides close (mesh/splice.rs)
//!  UDP datagram from C ─► C's flow (or a new one, picked) ─► its backend; replies go back
//!                        to C from the published port; a flow idle for UDP_IDLE ends
//! ```
//!
//! A backend the table removes (its task stopped running, was found unhealthy or is being
//! stopped) gets no new connection from then on; connections already open go on, and a UDP
//! client of it moves to another backend with its next datagram. The choice of backend is
//! [`agent_core::mesh`]'s (least connections, ties in turn).
//!
//! Two data paths carry TCP ([`MeshPath`]). In user space the listener accepts and splices
//! each connection to its backend. In the kernel (root, `nft` present: [`kernel`]), a port
//! whose backends are all on loopback is forwarded by destination NAT for connections made on
//! this machine: new connections go to the tasks in turn, and the rules follow every change of
//! the table, so a removed backend gets nothing new at once. The listener stays bound under the
//! rules and serves what they do not cover (a connection from another machine, a port with a
//! task off loopback); UDP is always forwarded in user space.

pub mod kernel;
mod splice;

use agent_core::mesh::nat::{NatMatch, nat_match, nat_rule};
use agent_core::mesh::{Balancer, Flows};
use kernel::{Nat, NatError};
use reconciler_api::mesh::{PublishedPort, RouteChange, Routes, RoutesKind};
use reconciler_types::{PortProtocol, TaskId};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long a connection to a backend may take before the next backend is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A UDP flow without traffic either way for this long ends (conntrack's UDP timeout).
pub const UDP_IDLE: Duration = Duration::from_secs(30);
/// How often idle UDP flows are looked for.
const UDP_SWEEP: Duration = Duration::from_secs(1);
/// The largest UDP datagram.
const UDP_MAX: usize = 65_536;

/// A backend as the forwarders use it: the node's host and the task's node port.
type Target = (String, u16);
type Shared = Arc<Mutex<Balancer<TaskId, Target>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An answer that does not apply on top of what the mesh holds: ask for the complete table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routes for version {applies_to} do not apply to version {held}")]
pub struct Stale {
    /// What the answer applied to.
    pub applies_to: u64,
    /// What the mesh holds.
    pub held: u64,
}

struct Port {
    service: String,
    backends: Shared,
    /// The listener's task; `None` when the port could not be bound (tried again with the
    /// next complete table).
    listener: Option<JoinHandle<()>>,
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Some(l) = &self.listener {
            l.abort();
        }
    }
}

struct Inner {
    version: u64,
    ports: BTreeMap<PublishedPort, Port>,
    /// The kernel path's table, and what its rules match (`None`: user space only).
    nat: Option<(Nat, NatMatch)>,
}

/// Which data path forwards TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MeshPath {
    /// The kernel path when it can be used (root, `nft`, a loopback or unspecified IPv4
    /// bind address), else user space.
    #[default]
    Auto,
    /// The kernel path, or the mesh does not start.
    Kernel,
    /// User space only.
    Userspace,
}

/// This node's routing mesh.
pub struct Mesh {
    bind: IpAddr,
    inner: Mutex<Inner>,
}

impl Mesh {
    /// A mesh listening on `bind` (`0.0.0.0` on a node; one loopback address per agent when
    /// several run on one machine), holding no routes yet, forwarding in user space.
    pub fn new(bind: IpAddr) -> Mesh {
        Mesh { bind, inner: Mutex::new(Inner { version: 0, ports: BTreeMap::new(), nat: None }) }
    }

    /// A mesh on `bind` forwarding TCP on `path` ([`MeshPath::Auto`] falls back to user space
    /// and logs why).
    ///
    /// # Errors
    /// [`MeshPath::Kernel`] when the kernel path cannot be used.
    pub fn with_path(bind: IpAddr, path: MeshPath) -> Result<Mesh, NatError> {
        let mesh = Mesh::new(bind);
        if path == MeshPath::Userspace {
            return Ok(mesh);
        }
        let nat = nat_match(bind).ok_or(NatError::Scope(bind)).and_then(|m| Ok((Nat::open()?, m)));
        match nat {
            Ok((nat, m)) => {
                tracing::info!(table = nat.table(), %bind,
                    "mesh: TCP to loopback tasks is forwarded in the kernel (nftables)");
                lock(&mesh.inner).nat = Some((nat, m));
            }
            Err(e) if path == MeshPath::Kernel => return Err(e),
            Err(e) => tracing::info!(reason = %e, "mesh: forwarding in user space"),
        }
        Ok(mesh)
    }

    /// The kernel path's nftables table, when TCP is forwarded in the kernel.
    pub fn nat_table(&self) -> Option<String> {
        lock(&self.inner).nat.as_ref().map(|(n, _)| n.table().to_owned())
    }

    /// The table version held (0: none; the next poll asks for the complete table).
    pub fn version(&self) -> u64 {
        lock(&self.inner).version
    }

    /// Forgets the version (a new session: the next answer is a complete table). The
    /// listeners and backends stay until it comes, so forwarding goes on meanwhile.
    pub fn new_session(&self) {
        lock(&self.inner).version = 0;
    }

    /// The ports listened on, with each one's backends (`task@host:port`), for tests and logs.
    pub fn describe(&self) -> BTreeMap<String, Vec<String>> {
        let inner = lock(&self.inner);
        inner
            .ports
            .iter()
            .map(|(p, port)| {
                let b = lock(&port.backends);
                let list = b.backends().map(|(t, (h, n))| format!("{t}@{h}:{n}")).collect();
                (p.to_string(), list)
            })
            .collect()
    }

    /// Applies an answer of the routes poll: opens and closes listeners, adds and removes
    /// backends. Must run inside the tokio runtime (listeners are spawned on it).
    ///
    /// # Errors
    /// [`Stale`] when an incremental answer does not apply to the version held.
    pub fn apply(&self, routes: Routes) -> Result<(), Stale> {
        let mut inner = lock(&self.inner);
        match routes.kind {
            RoutesKind::Complete => {
                let mut opened: BTreeMap<PublishedPort, String> = BTreeMap::new();
                let mut added: BTreeMap<PublishedPort, Vec<(TaskId, Target)>> = BTreeMap::new();
                for c in routes.changes {
                    match c {
                        RouteChange::Open { port, service } => {
                            opened.insert(port, service);
                        }
                        RouteChange::Add { port, backend } => {
                            let target = (backend.addr, backend.port);
                            added.entry(port).or_default().push((backend.task_id, target));
                        }
                        RouteChange::Close { .. } | RouteChange::Remove { .. } => {}
                    }
                }
                inner.ports.retain(|p, _| opened.contains_key(p));
                for (port, service) in opened {
                    self.open(&mut inner, port, service);
                    if let Some(p) = inner.ports.get(&port) {
                        let mut b = lock(&p.backends);
                        b.clear();
                        for (task, target) in added.remove(&port).unwrap_or_default() {
                            b.add(task, target);
                        }
                    }
                }
            }
            RoutesKind::Incremental => {
                if routes.applies_to != inner.version {
                    return Err(Stale { applies_to: routes.applies_to, held: inner.version });
                }
                for c in routes.changes {
                    self.change(&mut inner, c);
                }
            }
        }
        inner.version = routes.version;
        sync_nat(&mut inner);
        Ok(())
    }

    fn change(&self, inner: &mut Inner, c: RouteChange) {
        match c {
            RouteChange::Open { port, service } => self.open(inner, port, service),
            RouteChange::Close { port } => {
                if inner.ports.remove(&port).is_some() {
                    tracing::info!(%port, "mesh: no longer published");
                }
            }
            RouteChange::Add { port, backend } => {
                if let Some(p) = inner.ports.get(&port) {
                    tracing::debug!(%port, task = %backend.task_id, "mesh: backend added");
                    lock(&p.backends).add(backend.task_id, (backend.addr, backend.port));
                }
            }
            RouteChange::Remove { port, task_id } => {
                if let Some(p) = inner.ports.get(&port) {
                    tracing::debug!(%port, task = %task_id, "mesh: backend removed");
                    lock(&p.backends).remove(&task_id);
                }
            }
        }
    }

    /// Listens on `port` unless it already does (a failed bind is tried again).
    fn open(&self, inner: &mut Inner, port: PublishedPort, service: String) {
        let entry = inner.ports.entry(port).or_insert_with(|| Port {
            service: service.clone(),
            backends: Arc::new(Mutex::new(Balancer::default())),
            listener: None,
        });
        entry.service = service;
        if entry.listener.is_some() {
            return;
        }
        let addr = SocketAddr::new(self.bind, port.port);
        match listen(addr, port, entry.backends.clone()) {
            Ok(task) => {
                tracing::info!(%port, %addr, service = %entry.service, "mesh: listening");
                entry.listener = Some(task);
            }
            Err(e) => {
                tracing::error!(%port, %addr, service = %entry.service, error = %e,
                    "mesh: cannot listen on a published port");
            }
        }
    }
}

/// Makes the kernel's rules follow the table: one rule per listened TCP port whose backends
/// are all on loopback. When `nft` refuses, the table is emptied and dropped, so that user
/// space forwards everything (rules that may still name a removed task must not stay).
fn sync_nat(inner: &mut Inner) {
    let Some((nat, daddr)) = &mut inner.nat else { return };
    let rules = inner
        .ports
        .iter()
        .filter(|(p, port)| p.protocol == PortProtocol::Tcp && port.listener.is_some())
        .filter_map(|(p, port)| {
            let b = lock(&port.backends);
            nat_rule(*daddr, p.port, b.backends().map(|(_, (h, n))| (h.as_str(), *n)))
        })
        .collect();
    if let Err(e) = nat.sync(rules) {
        tracing::error!(error = %e, "mesh: the kernel path failed; forwarding in user space");
        inner.nat = None;
    }
}

/// Binds `addr` for `port`'s protocol and spawns its forwarder.
fn listen(
    addr: SocketAddr,
    port: PublishedPort,
    backends: Shared,
) -> std::io::Result<JoinHandle<()>> {
    match port.protocol {
        PortProtocol::Tcp => {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            let l = TcpListener::from_std(l)?;
            Ok(tokio::spawn(serve_tcp(l, backends)))
        }
        PortProtocol::Udp => {
            let s = std::net::UdpSocket::bind(addr)?;
            s.set_nonblocking(true)?;
            let s = UdpSocket::from_std(s)?;
            Ok(tokio::spawn(serve_udp(Arc::new(s), backends)))
        }
        PortProtocol::Sctp => Err(std::io::Error::other("sctp is not forwarded")),
    }
}

/// Accepts connections and forwards each one.
pub async fn serve_tcp(listener: TcpListener, backends: Shared) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                tokio::spawn(forward_tcp(client, backends.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "mesh: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Forwards one connection to a backend (the next one when a connection fails), both ways
/// until either side closes. Without any backend the client's connection is closed.
async fn forward_tcp(mut client: TcpStream, backends: Shared) {
    let _ = client.set_nodelay(true);
    let mut tried: Vec<TaskId> = Vec::new();
    loop {
        let Some((task, (host, port))) = lock(&backends).pick(&tried) else {
            tracing::debug!(tried = tried.len(), "mesh: no backend answers");
            let _ = client.shutdown().await;
            return;
        };
        let connect = TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                if let Err(e) = splice::forward(&mut client, &mut upstream).await {
                    tracing::trace!(task = %task, error = %e, "mesh: connection ended");
                }
                lock(&backends).closed(&task);
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(task = %task, %host, port, error = %e, "mesh: backend refused");
            }
            Err(_) => tracing::debug!(task = %task, %host, port, "mesh: backend timed out"),
        }
        lock(&backends).closed(&task);
        tried.push(task);
    }
}

/// One UDP client's flow: its backend and the socket that talks to it.
struct Flow {
    task: TaskId,
    upstream: Upstream,
    replies: JoinHandle<()>,
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.replies.abort();
    }
}

/// A flow's socket towards its backend. It is not connected: a backend listening on a
/// wildcard address may answer from another local address than the one asked (loopback
/// aliases, several interfaces), so replies are taken from any address at the backend's port.
#[derive(Clone)]
struct Upstream {
    socket: Arc<UdpSocket>,
    to: SocketAddr,
}

type SharedFlows = Arc<Mutex<Flows<SocketAddr, Flow>>>;

/// Forwards datagrams per client address, and replies back from the published port.
pub async fn serve_udp(socket: Arc<UdpSocket>, backends: Shared) {
    let flows: SharedFlows = Arc::new(Mutex::new(Flows::new(UDP_IDLE)));
    let mut sweep = tokio::time::interval(UDP_SWEEP);
    let mut buf = vec![0u8; UDP_MAX];
    loop {
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let (n, client) = match got {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::debug!(error = %e, "mesh: udp receive failed");
                        continue;
                    }
                };
                let Some(up) = flow_for(&socket, &flows, &backends, client).await else {
                    tracing::debug!(%client, "mesh: no udp backend");
                    continue;
                };
                if let Err(e) = up.socket.send_to(&buf[..n], up.to).await {
                    tracing::debug!(%client, error = %e, "mesh: udp send to backend failed");
                }
            }
            _ = sweep.tick() => {
                let ended = lock(&flows).expire(crate::clock::now());
                let mut b = lock(&backends);
                for (_, flow) in ended {
                    b.closed(&flow.task);
                }
            }
        }
    }
}

/// The upstream of `client`'s flow: its flow's while that backend is still in the table,
/// else a new flow to a backend picked now.
async fn flow_for(
    socket: &Arc<UdpSocket>,
    flows: &SharedFlows,
    backends: &Shared,
    client: SocketAddr,
) -> Option<Upstream> {
    let now = crate::clock::now();
    {
        let mut f = lock(flows);
        let held = f.get(&client, now).map(|flow| (flow.task.clone(), flow.upstream.clone()));
        if let Some((task, upstream)) = held {
            if lock(backends).backends().any(|(t, _)| *t == task) {
                return Some(upstream);
            }
            // Its backend left the table: the flow moves.
            drop(f.remove(&client));
        }
    }
    let mut tried = Vec::new();
    loop {
        let (task, (host, port)) = lock(backends).pick(&tried)?;
        match open_upstream(&host, port).await {
            Ok(up) => {
                let replies =
                    tokio::spawn(replies(socket.clone(), up.clone(), flows.clone(), client));
                let flow = Flow { task, upstream: up.clone(), replies };
                lock(flows).insert(client, flow, now);
                return Some(up);
            }
            Err(e) => {
                tracing::debug!(task = %task, %host, port, error = %e, "mesh: udp backend unreachable");
                lock(backends).closed(&task);
                tried.push(task);
            }
        }
    }
}

async fn open_upstream(host: &str, port: u16) -> std::io::Result<Upstream> {
    let to = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host} has no address")))?;
    let any: IpAddr =
        if to.is_ipv6() { Ipv6Addr::UNSPECIFIED.into() } else { Ipv4Addr::UNSPECIFIED.into() };
    let socket = Arc::new(UdpSocket::bind((any, 0)).await?);
    Ok(Upstream { socket, to })
}

/// Sends a flow's replies back to its client from the published port.
async fn replies(socket: Arc<UdpSocket>, up: Upstream, flows: SharedFlows, client: SocketAddr) {
    let mut buf = vec![0u8; UDP_MAX];
    loop {
        match up.socket.recv_from(&mut buf).await {
            Ok((n, from)) if from.port() == up.to.port() => {
                lock(&flows).touch(&client, crate::clock::now());
                if let Err(e) = socket.send_to(&buf[..n], client).await {
                    tracing::debug!(%client, error = %e, "mesh: udp reply failed");
                }
            }
            Ok((_, from)) => tracing::debug!(%client, %from, "mesh: udp datagram from elsewhere"),
            // An ICMP port unreachable from the backend (it stopped): keep waiting; the flow
            // ends when idle or when its backend leaves the table.
            Err(e) => {
                tracing::trace!(%client, error = %e, "mesh: udp backend error");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconciler_api::mesh::Backend;

    fn tcp(port: u16) -> PublishedPort {
        PublishedPort { protocol: PortProtocol::Tcp, port }
    }

    fn add(port: u16, task: &str, node_port: u16) -> RouteChange {
        let backend =
            Backend { task_id: TaskId::new(task), addr: "127.0.0.1".into(), port: node_port };
        RouteChange::Add { port: tcp(port), backend }
    }

    /// A free TCP port on loopback.
    fn free() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// A TCP server on loopback answering each connection with `name` then closing.
    async fn task_server(name: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut c, _) = l.accept().await.unwrap();
                let _ = c.write_all(name.as_bytes()).await;
            }
        });
        port
    }

    async fn ask(port: u16) -> String {
        use tokio::io::AsyncReadExt;
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut s = String::new();
        let _ = c.read_to_string(&mut s).await;
        s
    }

    #[tokio::test]
    async fn connections_go_in_turn_to_the_backends_and_a_removed_one_gets_none() {
        let (a, b) = (task_server("t1").await, task_server("t2").await);
        let published = free();
        let mesh = Mesh::new(Ipv4Addr::LOCALHOST.into());
        let open = RouteChange::Open { port: tcp(published), service: "web".into() };
        let complete = Routes {
            kind: RoutesKind::Complete,
            applies_to: 0,
            version: 4,
            changes: vec![open, add(published, "t1", a), add(published, "t2", b)],
        };
        mesh.apply(complete).unwrap();
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(ask(published).await);
        }
        assert_eq!(got, ["t1", "t2", "t1", "t2"]);
        let stale =
            Routes { kind: RoutesKind::Incremental, applies_to: 3, version: 5, changes: vec![] };
        assert_eq!(mesh.apply(stale), Err(Stale { applies_to: 3, held: 4 }));
        let remove = RouteChange::Remove { port: tcp(published), task_id: TaskId::new("t1") };
        let inc = Routes {
            kind: RoutesKind::Incremental,
            applies_to: 4,
            version: 5,
            changes: vec![remove],
        };
        mesh.apply(inc).unwrap();
        for _ in 0..3 {
            assert_eq!(ask(published).await, "t2");
        }
        assert_eq!(mesh.version(), 5);
    }

    /// A TCP server on loopback answering each connection with `name` and the peer address
    /// it saw, then closing.
    async fn peer_server(name: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut c, peer) = l.accept().await.unwrap();
                let _ = c.write_all(format!("{name} {peer}").as_bytes()).await;
            }
        });
        port
    }

    /// Root runs the kernel path for real: it must work then (CI runs as root, and
    /// `tests/setup` installs nftables). Unprivileged, there is nothing to try.
    #[tokio::test]
    async fn as_root_tcp_goes_through_the_kernel_in_turn_and_a_removed_backend_gets_none() {
        use tokio::io::AsyncReadExt;
        if !nix::unistd::geteuid().is_root() {
            println!("not root: the kernel path cannot be used here (CI runs as root)");
            return;
        }
        let mesh = Mesh::with_path(Ipv4Addr::LOCALHOST.into(), MeshPath::Kernel)
            .expect("root, so the kernel path must work (nftables: tests/setup)");
        let table = mesh.nat_table().expect("the kernel path is on");
        let (a, b) = (peer_server("t1").await, peer_server("t2").await);
        let published = free();
        let open = RouteChange::Open { port: tcp(published), service: "web".into() };
        let changes = vec![open, add(published, "t1", a), add(published, "t2", b)];
        mesh.apply(Routes { kind: RoutesKind::Complete, applies_to: 0, version: 1, changes })
            .unwrap();
        // Each answer names the task and the peer it saw: the client itself, so no
        // forwarder in this process was in between.
        let ask_peer = || async {
            let mut c = TcpStream::connect(("127.0.0.1", published)).await.unwrap();
            let me = c.local_addr().unwrap().to_string();
            let mut s = String::new();
            c.read_to_string(&mut s).await.unwrap();
            let (task, peer) = s.split_once(' ').unwrap();
            assert_eq!(peer, me, "{task} saw the client, not a forwarder");
            task.to_owned()
        };
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(ask_peer().await);
        }
        assert_eq!(got, ["t1", "t2", "t1", "t2"]);
        let remove = RouteChange::Remove { port: tcp(published), task_id: TaskId::new("t1") };
        let inc = Routes {
            kind: RoutesKind::Incremental,
            applies_to: 1,
            version: 2,
            changes: vec![remove],
        };
        mesh.apply(inc).unwrap();
        for _ in 0..3 {
            assert_eq!(ask_peer().await, "t2");
        }
        assert_eq!(mesh.nat_table().as_deref(), Some(table.as_str()), "still in the kernel");
        drop(mesh);
        assert!(
            !kernel::tables().iter().any(|(t, _)| *t == table),
            "the mesh's table is removed when it stops"
        );
    }

    #[tokio::test]
    async fn a_backend_that_refuses_is_skipped_for_the_next_one() {
        let good = task_server("t2").await;
        let published = free();
        let mesh = Mesh::new(Ipv4Addr::LOCALHOST.into());
        let open = RouteChange::Open { port: tcp(published), service: "web".into() };
        let changes = vec![open, add(published, "t1", free()), add(published, "t2", good)];
        mesh.apply(Routes { kind: RoutesKind::Complete, applies_to: 0, version: 1, changes })
            .unwrap();
        for _ in 0..3 {
            assert_eq!(ask(published).await, "t2");
        }
        let close = Routes {
            kind: RoutesKind::Incremental,
            applies_to: 1,
            version: 2,
            changes: vec![RouteChange::Close { port: tcp(published) }],
        };
        mesh.apply(close).unwrap();
        assert!(mesh.describe().is_empty());
        tokio::task::yield_now().await;
        assert!(TcpStream::connect(("127.0.0.1", published)).await.is_err(), "no longer listening");
    }
}
