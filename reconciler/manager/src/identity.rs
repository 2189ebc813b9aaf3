//! What a manager keeps in its data folder besides the Raft database: who it is and which
//! cluster it belongs to (`node.json`), so a restarted manager rejoins from its folder and a
//! folder from another cluster is refused.

use reconciler_types::NodeId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file name of the identity inside the data folder.
pub const IDENTITY_FILE: &str = "node.json";
/// The Raft database inside the data folder.
pub const RAFT_DB_FILE: &str = "raft.redb";
/// A copy of the API token for the operator (`export FLOTILLA_TOKEN=$(cat D/api-token)`).
pub const API_TOKEN_FILE: &str = "api-token";
/// This manager's own node credential (`FLTNODE-1-...`), for an agent running beside it.
pub const NODE_CREDENTIAL_FILE: &str = "node-credential";

/// A manager's identity.
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster it belongs to.
    pub cluster_id: String,
    /// The cluster digest.
    pub digest: String,
    /// Its node id.
    pub node_id: NodeId,
    /// Its Raft id.
    pub raft_id: u64,
    /// The managers' shared credential.
    pub peer_token: String,
    /// The API credential.
    pub api_token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cluster_id", &self.cluster_id)
            .field("node_id", &self.node_id)
            .field("raft_id", &self.raft_id)
            .finish_non_exhaustive()
    }
}

/// Why the data folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing failed.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an identity.
    #[error("{path} is not a flotilla node identity")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the identity of a data folder, `None` when the folder is new.
///
/// # Errors
/// See [`IdentityError`].
pub fn load(dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let path = dir.join(IDENTITY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| IdentityError::Corrupt { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Io { path, source }),
    }
}

/// Writes the identity (atomically: temp file, then rename) and the API token file, both
/// readable by the owner only.
///
/// # Errors
/// See [`IdentityError`].
pub fn save(dir: &Path, id: &Identity) -> Result<(), IdentityError> {
    let bytes = serde_json::to_vec_pretty(id)
        .map_err(|source| IdentityError::Corrupt { path: dir.join(IDENTITY_FILE), source })?;
    let io = |path: PathBuf| move |source| IdentityError::Io { path, source };
    let id_path = dir.join(IDENTITY_FILE);
    write_private_file(&id_path, &bytes).map_err(io(id_path.clone()))?;
    let token_path = dir.join(API_TOKEN_FILE);
    let token = format!("{}\n", id.api_token);
    write_private_file(&token_path, token.as_bytes()).map_err(io(token_path.clone()))
}

/// Writes a file readable by its owner only, atomically (temp file, fsync, rename).
///
/// # Errors
/// I/O failures.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
