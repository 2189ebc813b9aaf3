//! A node's TLS material in its data folder: `node-key.pem` (mode 0600), `node-cert.pem`
//! (its chain) and `ca.pem` (the roots it trusts; beside the manager's `api-token`, it is
//! what the CLI verifies managers against).

use crate::config::TlsState;
use crate::error::PkiError;
use std::path::Path;
use std::sync::Arc;

/// The node's private key.
pub const KEY_FILE: &str = "node-key.pem";
/// The node's certificate chain.
pub const CERT_FILE: &str = "node-cert.pem";
/// The trusted roots.
pub const CA_FILE: &str = "ca.pem";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |e| PkiError::Pem(format!("{}: {e}", path.display()))
}

/// Writes a file readable by its owner only, atomically (temp file, fsync, rename).
///
/// # Errors
/// I/O failures.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Saves the node's key, chain and roots.
///
/// # Errors
/// [`PkiError::Pem`] naming the file that could not be written.
pub fn save(dir: &Path, key_pem: &str, chain_pem: &str, roots_pem: &str) -> Result<(), PkiError> {
    for (name, text) in [(KEY_FILE, key_pem), (CERT_FILE, chain_pem), (CA_FILE, roots_pem)] {
        let path = dir.join(name);
        write_private(&path, text.as_bytes()).map_err(io(&path))?;
    }
    Ok(())
}

/// Saves only the roots (after a rotation changed them).
///
/// # Errors
/// As [`save`].
pub fn save_roots(dir: &Path, roots_pem: &str) -> Result<(), PkiError> {
    let path = dir.join(CA_FILE);
    write_private(&path, roots_pem.as_bytes()).map_err(io(&path))
}

/// The node's TLS state from its data folder, `None` when the folder has none.
///
/// # Errors
/// Files that exist but cannot be read or do not match.
pub fn load(dir: &Path) -> Result<Option<(Arc<TlsState>, String)>, PkiError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(io(&path))
    };
    if !dir.join(CERT_FILE).exists() {
        return Ok(None);
    }
    let (key, chain, roots) = (read(KEY_FILE)?, read(CERT_FILE)?, read(CA_FILE)?);
    let state = TlsState::new(&roots)?;
    state.set_credentials(&chain, &key)?;
    Ok(Some((state, key)))
}
