//! Who this agent is: its node id and own credential (kept in `node.json`, owner-only), its
//! TLS material (`node-key.pem`, `node-cert.pem`, `ca.pem`, as a manager keeps them), and
//! the description it registers with (hostname, platform, CPUs, memory, labels).
//!
//! The first start joins with the worker join token: over TLS the manager's CA is pinned by
//! the token's digest before the token is sent (`reconciler_api::pki::join_tls`); with
//! `--insecure` (managers started with `--insecure-listen`) over plain HTTP.

use crate::fsutil::{read_json, write_json};
use reconciler_api::http::http_client;
use reconciler_api::operator::JoinRequest;
use reconciler_api::pki;
use reconciler_api::{ClientError, client};
use reconciler_tls::{NodeKey, TlsState};
use reconciler_types::{EngineDescription, NodeDescription, NodeId, NodeRole, Platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The file an agent keeps its identity in.
pub const NODE_FILE: &str = "node.json";

/// Why the agent cannot become a node.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// No identity yet, and no way to join.
    #[error("{0} holds no node identity: give --join ADDR and --token with the worker join token")]
    NotJoined(String),
    /// The cluster refused or could not be reached.
    #[error("joining the cluster at {addr}: {source}")]
    Join {
        /// The manager.
        addr: String,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// The data folder cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Damaged TLS material.
    #[error("TLS material in {dir}: {message}")]
    Tls {
        /// The data folder.
        dir: String,
        /// What is wrong.
        message: String,
    },
}

/// A node's identity, as saved.
#[derive(Clone, Serialize, Deserialize)]
pub struct NodeFile {
    /// The node's id.
    pub node_id: NodeId,
    /// Its own credential (`FLTNODE-1-...`).
    pub credential: String,
    /// The managers it knows (the join address first).
    pub managers: Vec<String>,
    /// Whether the cluster speaks TLS.
    pub tls: bool,
}

impl std::fmt::Debug for NodeFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFile")
            .field("node_id", &self.node_id)
            .field("managers", &self.managers)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// How to join when the data folder holds no identity yet.
#[derive(Clone, Default)]
pub struct JoinArgs {
    /// A manager's address.
    pub addr: Option<String>,
    /// The worker join token.
    pub token: Option<String>,
    /// Plain HTTP (managers with `--insecure-listen`).
    pub insecure: bool,
    /// The hostname to join with.
    pub hostname: String,
    /// The address other nodes reach this one at.
    pub advertise: String,
}

/// A joined node: identity, and the HTTP client to talk to managers with.
pub struct Joined {
    /// The identity.
    pub node: NodeFile,
    /// TLS state (renewed in place), when the cluster speaks TLS.
    pub tls: Option<Arc<TlsState>>,
    /// The HTTP client for dispatcher calls.
    pub http: reqwest::Client,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |source| JoinError::Io { path: path.display().to_string(), source }
}

/// Loads the identity in `dir`, or joins the cluster and saves it.
///
/// # Errors
/// See [`JoinError`].
pub async fn join_or_load(dir: &Path, args: &JoinArgs) -> Result<Joined, JoinError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let file = dir.join(NODE_FILE);
    let tls_err = |e: reconciler_tls::PkiError| JoinError::Tls {
        dir: dir.display().to_string(),
        message: e.to_string(),
    };
    if let Some(node) = read_json::<NodeFile>(&file).map_err(io_err(&file))? {
        let tls = if node.tls {
            let (state, _key) =
                reconciler_tls::files::load(dir).map_err(tls_err)?.ok_or_else(|| {
                    JoinError::Tls {
                        dir: dir.display().to_string(),
                        message: "node-cert.pem is missing".into(),
                    }
                })?;
            Some(state)
        } else {
            None
        };
        let http = client_for(tls.as_ref())?;
        return Ok(Joined { node, tls, http });
    }
    let (Some(addr), Some(token)) = (&args.addr, &args.token) else {
        return Err(JoinError::NotJoined(dir.display().to_string()));
    };
    let req = JoinRequest {
        token: token.clone(),
        role: NodeRole::Worker,
        node_id: None,
        hostname: args.hostname.clone(),
        addr: args.advertise.clone(),
        csr: None,
    };
    let join_err = |source| JoinError::Join { addr: addr.clone(), source };
    let (resp, tls) = if args.insecure {
        let http =
            http_client(Duration::from_secs(15)).map_err(|e| join_err(transport(addr, &e)))?;
        let url = if addr.contains("://") { addr.clone() } else { format!("http://{addr}") };
        (client::join(&http, &url, &req).await.map_err(join_err)?, None)
    } else {
        let key = NodeKey::generate().map_err(tls_err)?;
        let (resp, state) = pki::join_tls(addr, req, &key).await.map_err(join_err)?;
        let chain = resp.certificate.clone().unwrap_or_default();
        let roots = resp.ca.clone().unwrap_or_default();
        reconciler_tls::files::save(dir, &key.to_pem(), &chain, &roots).map_err(tls_err)?;
        (resp, Some(state))
    };
    let credential = resp.node_credential.clone().ok_or_else(|| JoinError::Join {
        addr: addr.clone(),
        source: ClientError::Api(reconciler_api::ApiError::Internal(
            "the manager answered the join without a node credential".into(),
        )),
    })?;
    let node = NodeFile {
        node_id: resp.node_id,
        credential,
        managers: vec![addr.clone()],
        tls: tls.is_some(),
    };
    write_json(&file, &node).map_err(io_err(&file))?;
    let http = client_for(tls.as_ref())?;
    Ok(Joined { node, tls, http })
}

/// Saves the managers a session named, so a restarted agent can reach one of them.
///
/// # Errors
/// The file cannot be written.
pub fn save_managers(dir: &Path, node: &NodeFile, managers: &[String]) -> std::io::Result<()> {
    let mut n = node.clone();
    n.managers = managers.to_vec();
    write_json(&dir.join(NODE_FILE), &n)
}

fn transport(addr: &str, e: &dyn std::fmt::Display) -> ClientError {
    ClientError::Transport { url: addr.to_owned(), message: e.to_string() }
}

fn client_for(tls: Option<&Arc<TlsState>>) -> Result<reqwest::Client, JoinError> {
    let timeout = Duration::from_secs(30);
    let made = match tls {
        Some(t) => pki::tls_client(t, timeout, true),
        None => http_client(timeout).map_err(|e| transport("", &e)),
    };
    made.map_err(|source| JoinError::Join { addr: String::new(), source })
}

/// The description this node registers with: hostname, platform, CPUs and memory of the
/// machine, and its engine labels (the operator's `--label`s plus the runtime it runs
/// tasks with and the limits it enforces).
pub fn describe(
    hostname: &str,
    runtime: &str,
    engine_version: &str,
    limits: &str,
    labels: &BTreeMap<String, String>,
) -> NodeDescription {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut engine_labels = labels.clone();
    engine_labels.insert(agent_core::launch::ENGINE_RUNTIME_LABEL.into(), runtime.into());
    engine_labels.insert("com.flotilla.limits".into(), limits.into());
    NodeDescription {
        hostname: hostname.to_owned(),
        platform: Platform {
            os: std::env::consts::OS.into(),
            architecture: std::env::consts::ARCH.into(),
        },
        nano_cpus: i64::try_from(cpus).unwrap_or(1).saturating_mul(1_000_000_000),
        memory_bytes: memory_bytes().unwrap_or(0),
        generic_resources: Vec::new(),
        engine: EngineDescription { version: engine_version.to_owned(), labels: engine_labels },
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn memory_bytes() -> Option<i64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// The machine's hostname.
pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The local address this machine uses to reach `manager` (no packet is sent), for
/// `--advertise` by default.
pub fn local_addr_towards(manager: &str) -> Option<String> {
    let hostport = manager.split("://").last()?.trim_end_matches('/');
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(hostport).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_carries_the_runtime_and_the_machine() {
        let labels = BTreeMap::from([("zone".to_owned(), "a".to_owned())]);
        let d = describe("n1", "process", "flotilla 0.1.0", "ulimits", &labels);
        assert_eq!(d.engine.labels["com.flotilla.runtime"], "process");
        assert_eq!(d.engine.labels["zone"], "a");
        assert!(d.nano_cpus >= 1_000_000_000 && d.memory_bytes > 0);
        assert_eq!(local_addr_towards("https://127.0.0.1:2377").as_deref(), Some("127.0.0.1"));
    }

    #[test]
    fn a_folder_without_identity_needs_join_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let e = rt.block_on(join_or_load(dir.path(), &JoinArgs::default()));
        assert!(matches!(e, Err(JoinError::NotJoined(_))));
    }
}
