//! Starting a manager: from a new data folder with `--init` (a new cluster) or `--join`
//! (through any manager, with the manager join token), or from an existing data folder (a
//! restart: the node rejoins with the identity and Raft log it already has).

use crate::api::{CompleteJoin, JoinRequest, JoinResponse, UnlockRequest};
use crate::dispatcher::{self, Dispatcher, DispatcherConfig};
use crate::error::ApiError;
use crate::identity::{self, Identity, IdentityError, RAFT_DB_FILE};
use crate::keys::{self, KeyError, StoredKey, SymmetricKey};
use crate::listener::{PeerConn, PlainListener, TlsListener};
use crate::manager::Manager;
use crate::server::router;
use crate::token;
use openraft::BasicNode;
use reconciler_api::ClientError;
use reconciler_api::{Empty, ErrorBody};
use reconciler_store::cluster_state::{ClusterInfo, ClusterSettings};
use reconciler_store::log_store::open_database;
use reconciler_store::network::PeerHealth;
use reconciler_store::network::http::{HttpNetworkFactory, base_url, http_client};
use reconciler_store::node::NodeError;
use reconciler_store::pki::{NodeCertRecord, PkiCommand};
use reconciler_store::{Expect, StoreCommand, new_raft_node, raft_config};
use reconciler_tls::{NodeIdentity, NodeKey, RootCa, TlsState};
use reconciler_types::{ManagerStatus, Node, NodeDescription, NodeId, NodeRole, NodeSpec};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How a manager starts.
#[derive(Clone)]
pub enum StartMode {
    /// Create a new cluster.
    Init,
    /// Join an existing cluster through the manager at `addr`.
    Join {
        /// Any manager's address.
        addr: String,
        /// The manager join token.
        token: String,
    },
    /// Restart from an existing data folder.
    Restart,
}

/// What `flotilla manager` was given.
#[derive(Clone)]
pub struct ManagerOptions {
    /// The data folder (`node.json`, `raft.redb`).
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The address other managers and clients reach this one at (empty: the address the
    /// listener got, useful with port 0).
    pub advertise: String,
    /// How to start.
    pub mode: StartMode,
    /// The hostname to report.
    pub hostname: String,
    /// Entries between snapshots.
    pub snapshot_every: u64,
    /// With `Init`: protect the cluster key with an unlock key (Swarm's autolock).
    pub autolock: bool,
    /// The unlock key, to join an autolocked cluster or to restart without waiting for
    /// `flotilla manager unlock`.
    pub unlock_key: Option<String>,
    /// The dispatcher's batching.
    pub dispatcher: DispatcherConfig,
    /// With `Init`: the cluster's heartbeat period (Swarm's `--dispatcher-heartbeat`; 5 s when
    /// not given). A cluster setting, replicated like the others.
    pub dispatcher_heartbeat: Option<Duration>,
    /// Serve plain HTTP and authenticate with tokens only, without the cluster CA (local
    /// tests; `--insecure-listen`). Every manager of a cluster must agree.
    pub insecure: bool,
    /// With `Init`: how long node certificates are valid (`--cert-expiry`).
    pub cert_expiry: Duration,
    /// With `Init`: the Git source the cluster deploys from (`--repo`, `--branch`, `--path`,
    /// `--poll`, `--webhook-secret-file`); later, `flotilla source set`.
    pub source: Option<reconciler_api::source::SourceSet>,
}

/// Why a manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data folder cannot be used.
    #[error("data folder problem")]
    Identity(#[from] IdentityError),
    /// The folder already belongs to a cluster member.
    #[error(
        "the data folder already belongs to cluster {0}; start without --init to restart this manager"
    )]
    AlreadyMember(String),
    /// The folder belongs to another cluster than the join token's.
    #[error("the data folder belongs to cluster {0}, not to the cluster of this join token")]
    OtherCluster(String),
    /// A new folder needs `--init` or `--join`.
    #[error("the data folder holds no cluster member: start with --init or --join ADDR --token T")]
    Empty,
    /// A Raft database without an identity.
    #[error("the data folder holds a raft database but no node.json; use an empty folder")]
    Orphaned,
    /// A join token that cannot be right.
    #[error("bad join token")]
    Token(#[from] token::TokenError),
    /// Opening the Raft database failed.
    #[error("cannot open the raft database")]
    Database(#[from] redb::Error),
    /// Starting Raft failed.
    #[error("cannot start raft")]
    Raft(#[source] Box<NodeError>),
    /// Binding the listen address failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The cluster refused or failed an operation.
    #[error("{context}")]
    Api {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: ApiError,
    },
    /// The cluster key cannot be read or unlocked.
    #[error("cluster key")]
    Key(#[from] KeyError),
    /// Joining an autolocked cluster needs its unlock key.
    #[error("this cluster is autolocked: pass its unlock key (--unlock-key)")]
    NeedUnlockKey,
    /// An I/O failure (randomness, folders).
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    /// The node's TLS material is missing or unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

fn tls_err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Tls(e.to_string())
}

/// A running manager and its HTTP server.
pub struct RunningManager {
    /// The manager.
    pub manager: Arc<Manager>,
    /// The address the server listens on.
    pub local_addr: SocketAddr,
    /// After `--init --autolock`: the unlock key, to show the operator once.
    pub new_unlock_key: Option<String>,
    server: JoinHandle<()>,
    stop: oneshot::Sender<()>,
    background: Vec<JoinHandle<()>>,
}

impl RunningManager {
    /// Stops the server and Raft.
    pub async fn shutdown(self) {
        let _receiver_gone = self.stop.send(());
        let _join = self.server.await;
        for task in self.background {
            task.abort();
        }
        let _raft = self.manager.node.raft.shutdown().await;
    }
}

fn api_err(context: &str) -> impl FnOnce(ApiError) -> DaemonError + '_ {
    move |source| DaemonError::Api { context: context.to_owned(), source }
}

/// Starts a manager and returns once it serves its API (and, when joining, once it is a
/// voter).
///
/// # Errors
/// See [`DaemonError`].
pub async fn start_manager(mut opts: ManagerOptions) -> Result<RunningManager, DaemonError> {
    std::fs::create_dir_all(&opts.data_dir)?;
    let existing = identity::load(&opts.data_dir)?;
    let client = http_client(Duration::from_secs(10)).map_err(|e| DaemonError::Api {
        context: "cannot build the HTTP client".into(),
        source: ApiError::Internal(e.to_string()),
    })?;
    // A locked restart waits for its unlock key before anything else listens.
    let mut known_key = None;
    let mut tls = None;
    if let Some(id) = &existing {
        if let StartMode::Join { token, .. } = &opts.mode
            && token::parse_token(token)?.digest != id.digest
        {
            return Err(DaemonError::OtherCluster(id.cluster_id.clone()));
        }
        if !matches!(opts.mode, StartMode::Init) {
            tls = load_tls(&opts)?;
            known_key = Some(unlock_stored_key(&opts, tls.as_ref()).await?);
        }
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: opts.listen, source })?;
    let local_addr = listener.local_addr()?;
    if opts.advertise.is_empty() {
        opts.advertise = local_addr.to_string();
    }
    let (identity, mode, pki) =
        resolve_identity(existing, &opts, &client, &mut known_key, &mut tls).await?;
    let (mut new_unlock_key, mut fingerprint) = (None, None);
    if let StartMode::Init = mode {
        let (key, unlock) = new_cluster_key(&opts)?;
        fingerprint = unlock.as_ref().map(SymmetricKey::fingerprint);
        new_unlock_key = unlock.as_ref().map(SymmetricKey::to_unlock_key);
        known_key = Some(key);
    }
    identity::save(&opts.data_dir, &identity)?;
    let Some(cluster_key) = known_key else {
        return Err(DaemonError::Key(KeyError::File("no cluster key".into())));
    };
    let client = match &tls {
        Some(t) => {
            reconciler_api::pki::tls_client(t, Duration::from_secs(10), false).map_err(tls_err)?
        }
        None => client,
    };
    let db = open_database(&opts.data_dir.join(RAFT_DB_FILE))?;
    let health = PeerHealth::default();
    let network = HttpNetworkFactory::new(client.clone(), &identity.peer_token, health.clone());
    let config = raft_config(opts.snapshot_every).map_err(|e| DaemonError::Raft(Box::new(e)))?;
    let node = new_raft_node(identity.raft_id, config, db, network, health)
        .await
        .map_err(|e| DaemonError::Raft(Box::new(e)))?;
    let mut manager = Manager::new(node, identity, opts.advertise.clone(), client, cluster_key);
    manager.dispatcher = Dispatcher::new(opts.dispatcher);
    manager.tls = tls;
    manager.gitops.cache_dir = Some(opts.data_dir.join(crate::gitops::CACHE_DIR));
    let manager = Arc::new(manager);
    let (server, stop) = serve(listener, manager.clone())?;
    let background = vec![
        tokio::spawn(dispatcher::run::serve(manager.clone())),
        tokio::spawn(crate::leader::serve(manager.clone())),
        tokio::spawn(crate::gitops::run::serve(manager.clone())),
    ];
    let running = RunningManager { manager, local_addr, new_unlock_key, server, stop, background };
    match mode {
        StartMode::Init => bootstrap(&running.manager, &opts, fingerprint, pki).await?,
        StartMode::Join { addr, .. } => complete_join(&running.manager, &addr).await?,
        StartMode::Restart => {
            tokio::spawn(become_voter_if_needed(running.manager.clone()));
        }
    }
    if running.manager.tls.is_some() {
        let dir = opts.data_dir.clone();
        crate::pki::spawn_upkeep(&running.manager, dir, UPKEEP_PERIOD);
    }
    Ok(running)
}

/// How often a manager checks its own certificate and the cluster's roots.
const UPKEEP_PERIOD: Duration = Duration::from_secs(2);

/// The TLS material of a data folder, required unless `--insecure-listen`.
fn load_tls(opts: &ManagerOptions) -> Result<Option<Arc<TlsState>>, DaemonError> {
    if opts.insecure {
        return Ok(None);
    }
    match reconciler_tls::files::load(&opts.data_dir).map_err(tls_err)? {
        Some((state, _key)) => Ok(Some(state)),
        None => Err(DaemonError::Tls(format!(
            "{} holds no node certificate: this manager ran with --insecure-listen; start it with --insecure-listen again",
            opts.data_dir.display()
        ))),
    }
}

/// After a restart: a manager whose join was interrupted before it became a voter asks the
/// leader to finish it. Demoted managers (role worker) stay as they are.
async fn become_voter_if_needed(m: Arc<Manager>) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let id = m.identity.node_id.clone();
    let is_manager = m
        .node
        .state
        .read(|s| s.state.nodes.get(&id).is_some_and(|r| r.node.spec.role == NodeRole::Manager));
    if !is_manager || m.voters().contains(&m.node.id) {
        return;
    }
    let body = CompleteJoin { node_id: id.clone() };
    let finish = || async { m.complete_join(&id).await.map(|_| Empty {}) };
    let done = m.on_leader(reqwest::Method::POST, "/v1/join/complete", Some(&body), finish).await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "this manager is not a voter and could not become one");
    }
}

/// What `--init` made for the cluster PKI; the bootstrap batch records it.
struct InitPki {
    root: RootCa,
    own: NodeCertRecord,
}

/// Who this manager is: its stored identity, a new cluster's, or one obtained by joining.
async fn resolve_identity(
    existing: Option<Identity>,
    opts: &ManagerOptions,
    client: &reqwest::Client,
    known_key: &mut Option<SymmetricKey>,
    tls: &mut Option<Arc<TlsState>>,
) -> Result<(Identity, StartMode, Option<InitPki>), DaemonError> {
    let resolved = match (existing, &opts.mode) {
        (Some(id), StartMode::Init) => return Err(DaemonError::AlreadyMember(id.cluster_id)),
        (Some(id), _) => (id, StartMode::Restart, None),
        (None, _) if opts.data_dir.join(RAFT_DB_FILE).exists() => {
            return Err(DaemonError::Orphaned);
        }
        (None, StartMode::Restart) => return Err(DaemonError::Empty),
        (None, StartMode::Init) => {
            let mut id = new_cluster_identity()?;
            let pki = if opts.insecure {
                None
            } else {
                let (pki, state) = init_pki(&mut id, opts)?;
                *tls = Some(state);
                Some(pki)
            };
            (id, StartMode::Init, pki)
        }
        (None, StartMode::Join { addr, token }) => {
            let (id, key) = request_join(client, opts, addr, token, tls).await?;
            keys::save(&opts.data_dir, &key.cluster_key, key.unlock.as_ref())?;
            if let Some(credential) = &key.node_credential {
                save_node_credential(&opts.data_dir, credential)?;
            }
            *known_key = Some(key.cluster_key);
            (id, opts.mode.clone(), None)
        }
    };
    Ok(resolved)
}

/// A new cluster's root CA (its digest goes into the join tokens) and this manager's
/// certificate from it, saved in the data folder.
fn init_pki(
    id: &mut Identity,
    opts: &ManagerOptions,
) -> Result<(InitPki, Arc<TlsState>), DaemonError> {
    if opts.cert_expiry < crate::pki::MIN_CERT_EXPIRY {
        return Err(DaemonError::Tls(format!(
            "--cert-expiry {}s is too short: at least {}s, so that nodes can renew in time",
            opts.cert_expiry.as_secs(),
            crate::pki::MIN_CERT_EXPIRY.as_secs()
        )));
    }
    let root = RootCa::generate(&id.cluster_id, crate::pki::unix_now()).map_err(tls_err)?;
    id.digest = root.digest();
    let who = NodeIdentity {
        node_id: id.node_id.clone(),
        role: NodeRole::Manager,
        cluster_id: id.cluster_id.clone(),
    };
    let (key, chain, own) =
        crate::pki::self_issue(&root, &who, opts.cert_expiry).map_err(tls_err)?;
    let roots = root.cert_pem();
    reconciler_tls::files::save(&opts.data_dir, &key.to_pem(), &chain, &roots).map_err(tls_err)?;
    let state = TlsState::new(&roots).map_err(tls_err)?;
    state.set_credentials(&chain, &key.to_pem()).map_err(tls_err)?;
    Ok((InitPki { root, own }, state))
}

/// A new cluster key, saved (sealed with a new unlock key when autolock is asked for).
fn new_cluster_key(
    opts: &ManagerOptions,
) -> Result<(SymmetricKey, Option<SymmetricKey>), DaemonError> {
    let unlock = if opts.autolock { Some(SymmetricKey::generate()?) } else { None };
    let key = SymmetricKey::generate()?;
    keys::save(&opts.data_dir, &key, unlock.as_ref())?;
    Ok((key, unlock))
}

async fn unlock_stored_key(
    opts: &ManagerOptions,
    tls: Option<&Arc<TlsState>>,
) -> Result<SymmetricKey, DaemonError> {
    match keys::load(&opts.data_dir)? {
        StoredKey::Ready(k) => Ok(k),
        locked => match &opts.unlock_key {
            Some(k) => Ok(locked.unlock(k)?),
            None => wait_for_unlock(opts.listen, locked, tls).await,
        },
    }
}

type Server = (JoinHandle<()>, oneshot::Sender<()>);

/// Serves the manager's router: over TLS with its credentials, or plain with
/// `--insecure-listen`. Each connection's [`PeerConn`] reaches the handlers.
fn serve(listener: TcpListener, manager: Arc<Manager>) -> Result<Server, DaemonError> {
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(manager.clone()).into_make_service_with_connect_info::<PeerConn>();
    let shutdown = async {
        let _sender_gone = stopped.await;
    };
    let server = match &manager.tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)?;
            tokio::spawn(async move {
                let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "manager API server stopped");
                }
            })
        }
        None => tokio::spawn(async move {
            let served =
                axum::serve(PlainListener(listener), app).with_graceful_shutdown(shutdown).await;
            if let Err(e) = served {
                tracing::error!(error = %e, "manager API server stopped");
            }
        }),
    };
    Ok((server, stop))
}

fn new_cluster_identity() -> Result<Identity, DaemonError> {
    let cluster_id = token::new_hex(16)?;
    Ok(Identity {
        digest: token::cluster_digest(&cluster_id),
        cluster_id,
        node_id: NodeId::new(token::new_node_id()?),
        raft_id: 1,
        peer_token: token::new_hex(32)?,
        api_token: token::new_hex(32)?,
    })
}

async fn bootstrap(
    m: &Manager,
    opts: &ManagerOptions,
    autolock_fingerprint: Option<String>,
    pki: Option<InitPki>,
) -> Result<(), DaemonError> {
    let id = &m.identity;
    let members = BTreeMap::from([(id.raft_id, BasicNode::new(m.peer_url(&opts.advertise)))]);
    if let Err(e) = m.node.raft.initialize(members).await {
        return Err(api_err("cannot initialise raft")(ApiError::Internal(e.to_string())));
    }
    let waited = m.node.raft.wait(Some(Duration::from_secs(10)));
    waited
        .current_leader(id.raft_id, "bootstrap leader")
        .await
        .map_err(|e| api_err("no leader after init")(ApiError::Internal(e.to_string())))?;
    let info = ClusterInfo {
        id: id.cluster_id.clone(),
        digest: id.digest.clone(),
        worker_secret: token::new_secret()?,
        manager_secret: token::new_secret()?,
        api_token: id.api_token.clone(),
        peer_token: id.peer_token.clone(),
        autolock_fingerprint,
        ca: None,
        version: 0,
    };
    let node = Node {
        id: id.node_id.clone(),
        spec: NodeSpec { role: NodeRole::Manager, ..NodeSpec::default() },
        description: NodeDescription { hostname: opts.hostname.clone(), ..Default::default() },
        status: reconciler_types::NodeStatus { addr: opts.advertise.clone(), ..Default::default() },
        manager_status: Some(ManagerStatus {
            raft_id: id.raft_id,
            addr: opts.advertise.clone(),
            ..Default::default()
        }),
    };
    let (credential, digest) = dispatcher::credential::issue(&id.node_id)?;
    let mut commands = vec![
        StoreCommand::InitCluster { info: Box::new(info) },
        StoreCommand::PutNode { node: Box::new(node), expected: Expect::Absent },
        StoreCommand::SetNodeCredential { id: id.node_id.clone(), digest },
    ];
    if let Some(set) = &opts.source {
        let empty = reconciler_store::ClusterState::default();
        let cmd = crate::gitops::source::set_command(&empty, set, &m.cluster_key)
            .map_err(api_err("cannot set the Git source"))?;
        commands.push(cmd);
    }
    if let Some(pki) = pki {
        let ca = crate::pki::ca_record(&pki.root, &m.cluster_key, opts.cert_expiry)
            .map_err(api_err("cannot seal the CA key"))?;
        let digest = id.digest.clone();
        let set_ca = PkiCommand::SetCa { ca, digest, expected: Expect::Absent };
        let own = PkiCommand::SetNodeCert { node: id.node_id.clone(), cert: pki.own };
        commands.push(StoreCommand::Pki { command: Box::new(set_ca) });
        commands.push(StoreCommand::Pki { command: Box::new(own) });
    }
    let batch = StoreCommand::Batch { commands };
    let batch = match opts.dispatcher_heartbeat {
        None => batch,
        Some(period) => {
            let settings = ClusterSettings { dispatcher_heartbeat: period, ..Default::default() };
            let set = StoreCommand::SetSettings { settings, expected: Expect::Any };
            StoreCommand::Batch { commands: vec![batch, set] }
        }
    };
    m.write(batch).await.map(|_| ()).map_err(api_err("cannot record the new cluster"))?;
    save_node_credential(&opts.data_dir, &credential.to_string())?;
    Ok(())
}

async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: String,
    bearer: Option<&str>,
    body: &B,
    timeout: Duration,
) -> Result<T, ApiError> {
    let mut req = client.post(&url).json(body).timeout(timeout);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::Unavailable(format!("cannot reach {url}: {}", e.without_url())))?;
    let status = resp.status();
    if status.is_success() {
        return resp.json().await.map_err(|e| ApiError::Internal(e.to_string()));
    }
    let text = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error).unwrap_or(text);
    Err(ApiError::from_remote(status.as_u16(), message))
}

async fn request_join(
    client: &reqwest::Client,
    opts: &ManagerOptions,
    addr: &str,
    join_token: &str,
    tls: &mut Option<Arc<TlsState>>,
) -> Result<(Identity, JoinedKey), DaemonError> {
    let parsed = token::parse_token(join_token)?;
    let req = JoinRequest {
        token: join_token.to_owned(),
        role: NodeRole::Manager,
        node_id: None,
        hostname: opts.hostname.clone(),
        addr: opts.advertise.clone(),
        csr: None,
    };
    let resp = if opts.insecure {
        let url = format!("{}/v1/join", base_url(addr));
        post_json::<_, JoinResponse>(client, url, None, &req, Duration::from_secs(15))
            .await
            .map_err(api_err("the cluster refused the join"))?
    } else {
        join_over_tls(opts, addr, req, tls).await?
    };
    let missing =
        || api_err("bad join answer")(ApiError::Internal("no manager credentials".into()));
    if resp.digest != parsed.digest {
        return Err(DaemonError::Token(token::TokenError::OtherCluster));
    }
    let hex = resp.cluster_key.as_deref().ok_or_else(missing)?;
    let cluster_key = SymmetricKey::from_hex(hex).ok_or_else(missing)?;
    let unlock = match &resp.autolock_fingerprint {
        None => None,
        Some(fp) => {
            let given = opts.unlock_key.as_deref().ok_or(DaemonError::NeedUnlockKey)?;
            let kek = SymmetricKey::from_unlock_key(given)?;
            if kek.fingerprint() != *fp {
                return Err(DaemonError::Key(KeyError::Decrypt));
            }
            Some(kek)
        }
    };
    let id = Identity {
        cluster_id: resp.cluster_id,
        digest: resp.digest,
        node_id: resp.node_id,
        raft_id: resp.raft_id.ok_or_else(missing)?,
        peer_token: resp.peer_token.ok_or_else(missing)?,
        api_token: resp.api_token.ok_or_else(missing)?,
    };
    Ok((id, JoinedKey { cluster_key, unlock, node_credential: resp.node_credential }))
}

/// Joins through `addr` after pinning its CA by the token's digest; saves the node's key,
/// certificate and roots.
async fn join_over_tls(
    opts: &ManagerOptions,
    addr: &str,
    req: JoinRequest,
    tls: &mut Option<Arc<TlsState>>,
) -> Result<JoinResponse, DaemonError> {
    let key = NodeKey::generate().map_err(tls_err)?;
    let (resp, state) = reconciler_api::pki::join_tls(addr, req, &key).await.map_err(|e| {
        let source = match e {
            ClientError::Api(a) => a,
            ClientError::Transport { message, .. } => ApiError::Unavailable(message),
        };
        DaemonError::Api { context: "the cluster refused the join".into(), source }
    })?;
    let chain = resp.certificate.as_deref().unwrap_or_default();
    let roots = resp.ca.as_deref().unwrap_or_default();
    reconciler_tls::files::save(&opts.data_dir, &key.to_pem(), chain, roots).map_err(tls_err)?;
    *tls = Some(state);
    Ok(resp)
}

struct JoinedKey {
    cluster_key: SymmetricKey,
    unlock: Option<SymmetricKey>,
    node_credential: Option<String>,
}

/// Keeps this manager's own node credential in its data folder (owner-only), for an agent
/// that runs beside it.
fn save_node_credential(dir: &std::path::Path, credential: &str) -> std::io::Result<()> {
    let text = format!("{credential}\n");
    identity::write_private_file(&dir.join(identity::NODE_CREDENTIAL_FILE), text.as_bytes())
}

/// Serves only `POST /v1/unlock` until an operator supplies the right unlock key; every
/// other request is told the manager is locked.
async fn wait_for_unlock(
    listen: SocketAddr,
    stored: StoredKey,
    tls: Option<&Arc<TlsState>>,
) -> Result<SymmetricKey, DaemonError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| DaemonError::Listen { addr: listen, source })?;
    tracing::warn!(%listen, "manager is locked: run `flotilla manager unlock`");
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SymmetricKey>(1);
    let stored = Arc::new(stored);
    let unlock = axum::routing::post(move |body: axum::Json<UnlockRequest>| {
        let (stored, tx) = (stored.clone(), tx.clone());
        async move {
            let key = stored.unlock(&body.0.key).map_err(|e| ApiError::Forbidden(e.to_string()))?;
            let _already_unlocked = tx.send(key).await;
            Ok::<_, ApiError>(axum::Json(Empty {}))
        }
    });
    let locked = || async {
        ApiError::Unavailable("this manager is locked: run `flotilla manager unlock`".into())
    };
    let app = axum::Router::new().route("/v1/unlock", unlock).fallback(locked);
    let (done_tx, done_rx) = oneshot::channel::<SymmetricKey>();
    let shutdown = async move {
        if let Some(k) = rx.recv().await {
            let _receiver_gone = done_tx.send(k);
        }
    };
    match tls {
        Some(tls) => {
            let listener = TlsListener::new(listener, tls)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
        }
        None => axum::serve(listener, app).with_graceful_shutdown(shutdown).await?,
    }
    done_rx.await.map_err(|_| DaemonError::Key(KeyError::Decrypt))
}

async fn complete_join(m: &Manager, addr: &str) -> Result<(), DaemonError> {
    let url = format!("{}/v1/join/complete", m.peer_url(addr));
    let req = CompleteJoin { node_id: m.identity.node_id.clone() };
    let mut last = None;
    for _ in 0..5 {
        let peer = Some(m.identity.peer_token.as_str());
        match post_json::<_, Empty>(&m.client, url.clone(), peer, &req, Duration::from_secs(40))
            .await
        {
            Ok(_) => return Ok(()),
            Err(e @ (ApiError::Unavailable(_) | ApiError::NoQuorum { .. })) => last = Some(e),
            Err(e) => return Err(api_err("cannot become a voter")(e)),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let e = last.unwrap_or_else(|| ApiError::Internal("join did not complete".into()));
    Err(api_err("cannot become a voter")(e))
}

/// The machine's hostname (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
