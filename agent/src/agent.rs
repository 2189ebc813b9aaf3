//! `flotilla agent` as a library call: join (or load the identity), choose the runtime, find
//! the tasks of a previous run again, then keep a session with the dispatcher until told to
//! stop. Stopping leaves the tasks running (their supervisors or the engine keep them), for
//! the next agent to adopt, as Docker's live restore does.

use crate::clock::AgentClock;
use crate::node::{self, JoinArgs, JoinError, Joined};
use crate::outbox::Outbox;
use crate::runner::Shared;
use crate::runtime::docker::{DockerConfig, DockerRuntime};
use crate::runtime::process::{ProcessConfig, ProcessRuntime, default_secrets_dir};
use crate::runtime::{Runtime, RuntimeError};
use crate::session::{self, End, Managers};
use crate::taskstore::TaskStore;
use crate::worker::Worker;
use agent_core::logs::LogLimits;
use reconciler_api::DispatcherClient;
use reconciler_api::dispatcher::RegisterRequest;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often the agent checks its certificate and the cluster's roots.
const TLS_UPKEEP: Duration = Duration::from_secs(60);

/// Which runtime runs the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Host processes (the default).
    Process,
    /// Docker containers.
    Docker,
}

/// Everything `flotilla agent` is told.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// The data folder.
    pub data_dir: PathBuf,
    /// A manager to join through (first start), or to reach first.
    pub join: Option<String>,
    /// The worker join token (first start).
    pub token: Option<String>,
    /// The runtime.
    pub runtime: RuntimeKind,
    /// Engine labels (`--label k=v`).
    pub labels: BTreeMap<String, String>,
    /// The address other nodes reach this one at (default: the local address towards the
    /// manager).
    pub advertise: Option<String>,
    /// The hostname to report (default: the machine's).
    pub hostname: Option<String>,
    /// Task log limits.
    pub log_limits: LogLimits,
    /// Plain HTTP to managers started with `--insecure-listen`.
    pub insecure: bool,
    /// This very binary (the process runtime's supervisor, `flotilla ...` commands).
    pub flotilla_exe: PathBuf,
    /// Where the routing mesh listens on the published ports (`0.0.0.0` on a node of its
    /// own; `None`: no mesh on this node).
    pub mesh_addr: Option<std::net::IpAddr>,
    /// Which data path the routing mesh forwards TCP on.
    pub mesh_path: crate::mesh::MeshPath,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// It could not join.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// The runtime could not start.
    #[error("the {runtime} runtime: {source}")]
    Runtime {
        /// Which.
        runtime: &'static str,
        /// Why.
        #[source]
        source: RuntimeError,
    },
    /// A folder could not be made.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The routing mesh's kernel path was asked for and cannot be used.
    #[error("the routing mesh's kernel path: {0}")]
    MeshPath(#[from] crate::mesh::kernel::NatError),
    /// The cluster no longer knows this node.
    #[error(
        "the managers refused this node's credential: it was removed from the cluster; \
         remove {0} and join again with a new token"
    )]
    Removed(String),
}

/// Runs the agent until `shutdown` completes (or the node is removed).
///
/// # Errors
/// See [`AgentError`].
pub async fn run(opts: AgentOptions, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let hostname = opts.hostname.clone().unwrap_or_else(node::hostname);
    let advertise = opts
        .advertise
        .clone()
        .or_else(|| opts.join.as_deref().and_then(node::local_addr_towards))
        .unwrap_or_else(|| "127.0.0.1".into());
    let args = JoinArgs {
        addr: opts.join.clone(),
        token: opts.token.clone(),
        insecure: opts.insecure,
        hostname: hostname.clone(),
        advertise: advertise.clone(),
    };
    let joined = node::join_or_load(&opts.data_dir, &args).await?;
    tracing::info!(node = %joined.node.node_id, tls = joined.node.tls, "node identity");
    let runtime_err = |runtime| move |source| AgentError::Runtime { runtime, source };
    match opts.runtime {
        RuntimeKind::Process => {
            let cfg = ProcessConfig {
                state_dir: opts.data_dir.join("process"),
                secrets_dir: default_secrets_dir(&opts.data_dir, joined.node.node_id.as_str()),
                flotilla_exe: opts.flotilla_exe.clone(),
            };
            let rt = ProcessRuntime::new(cfg)?;
            let version = format!("flotilla {}", env!("CARGO_PKG_VERSION"));
            serve(rt, version, &opts, joined, hostname, advertise, shutdown).await
        }
        RuntimeKind::Docker => {
            let cfg = DockerConfig {
                node_id: joined.node.node_id.clone(),
                files_dir: opts.data_dir.join("docker-files"),
                secrets_dir: default_secrets_dir(&opts.data_dir, joined.node.node_id.as_str()),
            };
            let rt = DockerRuntime::connect(cfg).await.map_err(runtime_err("docker"))?;
            let version =
                format!("flotilla {} (docker {})", env!("CARGO_PKG_VERSION"), rt.engine_version());
            serve(rt, version, &opts, joined, hostname, advertise, shutdown).await
        }
    }
}

async fn serve<R: Runtime>(
    rt: R,
    engine_version: String,
    opts: &AgentOptions,
    joined: Joined,
    hostname: String,
    advertise: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let node_id = joined.node.node_id.clone();
    let shared = Shared {
        rt: Arc::new(rt),
        outbox: Arc::new(Outbox::default()),
        store: TaskStore::open(opts.data_dir.join("tasks"))?,
        clock: AgentClock::new(),
    };
    let description = node::describe(
        &hostname,
        shared.rt.name(),
        &engine_version,
        &shared.rt.limits_enforced(),
        &opts.labels,
    );
    let register = RegisterRequest {
        description,
        addr: advertise,
        runtimes: vec![shared.rt.name().to_owned()],
    };
    let worker = Arc::new(Worker::new(shared, node_id, opts.log_limits));
    worker.start().await;
    let mut first = joined.node.managers.clone();
    if let Some(j) = &opts.join {
        first.retain(|m| m != j);
        first.insert(0, j.clone());
    }
    let mut managers = Managers::new(first, joined.tls.is_some());
    let mut client =
        DispatcherClient::new(&managers.current(), &joined.node.credential, joined.http.clone());
    let (dir, node) = (opts.data_dir.clone(), joined.node.clone());
    // The certificate upkeep asks whichever manager answers, from the addresses the
    // sessions learn.
    let known = Arc::new(std::sync::Mutex::new(managers.all().to_vec()));
    let learned = known.clone();
    let save = move |all: &[String]| {
        *learned.lock().unwrap_or_else(|p| p.into_inner()) = all.to_vec();
        if let Err(e) = node::save_managers(&dir, &node, all) {
            tracing::warn!(error = %e, "cannot save the managers' addresses");
        }
    };
    let upkeep = tls_upkeep(&joined, &opts.data_dir, known);
    let mesh = match opts.mesh_addr {
        Some(a) => Some(Arc::new(crate::mesh::Mesh::with_path(a, opts.mesh_path)?)),
        None => None,
    };
    let session = session::run(worker.clone(), &mut managers, &mut client, register, &save, mesh);
    tokio::select! {
        end = session => {
            worker.detach();
            match end {
                End::Revoked => Err(AgentError::Removed(opts.data_dir.display().to_string())),
                other => {
                    tracing::error!(?other, "the session ended");
                    Ok(())
                }
            }
        }
        () = upkeep => Ok(()),
        () = shutdown => {
            tracing::info!("stopping; tasks keep running for the next agent to adopt");
            worker.detach();
            Ok(())
        }
    }
}

/// Keeps the node's certificate fresh and its roots current (never ends): looks every
/// [`TLS_UPKEEP`], or sooner when the certificate is due before then (a short
/// `--cert-expiry`), asking each known manager in turn until one answers.
async fn tls_upkeep(
    joined: &Joined,
    dir: &std::path::Path,
    managers: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let Some(tls) = joined.tls.clone() else { return std::future::pending().await };
    // Where in the renewal window this node renews: fixed per node, spread across nodes.
    let jitter = node_jitter(joined.node.node_id.as_str());
    loop {
        let now = crate::clock::now().0.as_secs();
        let info = tls.info();
        let wait = reconciler_tls::rotation::next_check(
            info.as_ref(),
            now,
            jitter,
            TLS_UPKEEP.as_secs(),
            1,
        );
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let addrs = managers.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let roots = tls.roots_pem();
        let mut last = None;
        for addr in &addrs {
            let base = reconciler_api::pki::https_url(addr);
            let now = crate::clock::now().0.as_secs();
            match reconciler_api::pki::keep_fresh(&tls, &joined.http, &base, now, jitter).await {
                Ok(renewed) => {
                    save_tls(dir, &tls, &roots, renewed);
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            let expired =
                tls.info().is_some_and(|i| i.not_after <= crate::clock::now().0.as_secs());
            if expired {
                tracing::error!(
                    error = %e,
                    "this node's certificate has expired and no manager accepts it any more: \
                     remove the node's data folder and join again with a new token"
                );
            } else {
                tracing::warn!(error = %e, "certificate upkeep failed; retrying later");
            }
        }
    }
}

/// Saves what an upkeep round changed: a renewed key and chain, or new roots.
fn save_tls(
    dir: &std::path::Path,
    tls: &reconciler_tls::TlsState,
    roots_before: &str,
    renewed: Option<(String, reconciler_api::pki::CertIssued)>,
) {
    let saved = match renewed {
        Some((key, issued)) => {
            tracing::info!(not_after = ?tls.info().map(|i| i.not_after), "certificate renewed");
            reconciler_tls::files::save(dir, &key, &issued.certificate, &issued.ca)
        }
        None if tls.roots_pem() != roots_before => {
            reconciler_tls::files::save_roots(dir, &tls.roots_pem())
        }
        None => Ok(()),
    };
    if let Err(e) = saved {
        tracing::warn!(error = %e, "cannot save the node's TLS files");
    }
}

/// A number in [0, 1) fixed for a node id (FNV-1a of the id).
fn node_jitter(node_id: &str) -> f64 {
    let hash = node_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash % 1000) as f64 / 1000.0
}
