//! The cluster key that seals secret values in the store, and Swarm's autolock around it.
//!
//! Every manager holds the same 32-byte cluster key in `DATA_DIR/cluster.key`. Secret values
//! are sealed with it (ChaCha20-Poly1305, random 96-bit nonce) before they are written
//! through Raft, so the log, the snapshots and `state export` only ever hold ciphertext.
//!
//! With autolock the key file itself is sealed with an unlock key (`FLTKEY-1-<64 hex>`) that
//! is shown once to the operator and stored nowhere: the store keeps only its SHA-256, so a
//! joining manager's key can be checked. A restarted autolocked manager waits, serving only
//! `POST /v1/unlock`, until `flotilla manager unlock` supplies the key.

use crate::token::random_bytes;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The key file inside the data folder.
pub const KEY_FILE: &str = "cluster.key";
const UNLOCK_PREFIX: &str = "FLTKEY-1-";
const NONCE_LEN: usize = 12;

/// Why a key operation failed. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Sealed data is damaged or was sealed with another key.
    #[error("cannot decrypt: wrong key or damaged data")]
    Decrypt,
    /// Not `FLTKEY-1-<64 hex>`.
    #[error("invalid unlock key: expected FLTKEY-1-<64 hex digits>")]
    MalformedUnlockKey,
    /// The key file is missing or unreadable.
    #[error("cannot read the cluster key file: {0}")]
    File(String),
}

/// A 32-byte symmetric key.
#[derive(Clone, PartialEq, Eq)]
pub struct SymmetricKey([u8; 32]);

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl SymmetricKey {
    /// A fresh random key.
    ///
    /// # Errors
    /// No randomness available.
    pub fn generate() -> std::io::Result<Self> {
        let bytes = random_bytes(32)?;
        let mut k = [0u8; 32];
        k.copy_from_slice(&bytes);
        Ok(SymmetricKey(k))
    }

    /// The key in hex (for the join answer and the key file).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// A key from 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = from_hex(s)?;
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(SymmetricKey(arr))
    }

    /// Seals `plain`: nonce followed by ciphertext and tag.
    ///
    /// # Errors
    /// No randomness available.
    pub fn seal(&self, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let nonce = random_bytes(NONCE_LEN)?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| std::io::Error::other("encryption failed"))?;
        Ok([nonce, sealed].concat())
    }

    /// Opens what [`SymmetricKey::seal`] produced.
    ///
    /// # Errors
    /// [`KeyError::Decrypt`].
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Decrypt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        cipher.decrypt(Nonce::from_slice(nonce), body).map_err(|_| KeyError::Decrypt)
    }

    /// The key as an unlock key (`FLTKEY-1-<hex>`).
    pub fn to_unlock_key(&self) -> String {
        format!("{UNLOCK_PREFIX}{}", self.to_hex())
    }

    /// Parses an unlock key.
    ///
    /// # Errors
    /// [`KeyError::MalformedUnlockKey`].
    pub fn from_unlock_key(s: &str) -> Result<Self, KeyError> {
        let hex = s.trim().strip_prefix(UNLOCK_PREFIX).ok_or(KeyError::MalformedUnlockKey)?;
        SymmetricKey::from_hex(hex).ok_or(KeyError::MalformedUnlockKey)
    }

    /// The SHA-256 of the key in hex: what the store keeps to check an unlock key.
    pub fn fingerprint(&self) -> String {
        to_hex(&Sha256::digest(self.0))
    }
}

/// The SHA-256 of secret content, in hex (safe to show).
pub fn content_digest(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// What `cluster.key` holds.
#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum KeyFile {
    Plain { key: String },
    Locked { sealed: String },
}

/// The cluster key as found in a data folder.
#[derive(Debug)]
pub enum StoredKey {
    /// Readable.
    Ready(SymmetricKey),
    /// Sealed with an unlock key (autolock).
    Locked(Vec<u8>),
}

impl StoredKey {
    /// Opens a locked key with an unlock key.
    ///
    /// # Errors
    /// A malformed or wrong unlock key.
    pub fn unlock(&self, unlock_key: &str) -> Result<SymmetricKey, KeyError> {
        match self {
            StoredKey::Ready(k) => Ok(k.clone()),
            StoredKey::Locked(sealed) => {
                let kek = SymmetricKey::from_unlock_key(unlock_key)?;
                let plain = kek.open(sealed)?;
                let arr: [u8; 32] = plain.try_into().map_err(|_| KeyError::Decrypt)?;
                Ok(SymmetricKey(arr))
            }
        }
    }
}

/// Writes the cluster key, sealed with `unlock` when autolock is on.
///
/// # Errors
/// I/O failures.
pub fn save(dir: &Path, key: &SymmetricKey, unlock: Option<&SymmetricKey>) -> std::io::Result<()> {
    let file = match unlock {
        None => KeyFile::Plain { key: key.to_hex() },
        Some(kek) => KeyFile::Locked { sealed: to_hex(&kek.seal(&key.0)?) },
    };
    let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    crate::identity::write_private_file(&dir.join(KEY_FILE), &bytes)
}

/// Reads the cluster key of a data folder.
///
/// # Errors
/// [`KeyError::File`] when it is missing or damaged.
pub fn load(dir: &Path) -> Result<StoredKey, KeyError> {
    let bytes = std::fs::read(dir.join(KEY_FILE)).map_err(|e| KeyError::File(e.to_string()))?;
    let file: KeyFile =
        serde_json::from_slice(&bytes).map_err(|e| KeyError::File(e.to_string()))?;
    let bad = || KeyError::File("damaged key file".into());
    match file {
        KeyFile::Plain { key } => {
            SymmetricKey::from_hex(&key).map(StoredKey::Ready).ok_or_else(bad)
        }
        KeyFile::Locked { sealed } => from_hex(&sealed).map(StoredKey::Locked).ok_or_else(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_detect_tampering() {
        let k = SymmetricKey::generate().unwrap();
        let mut sealed = k.seal(b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open(&sealed).unwrap(), b"hunter2");
        let other = SymmetricKey::generate().unwrap();
        assert_eq!(other.open(&sealed), Err(KeyError::Decrypt));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(k.open(&sealed), Err(KeyError::Decrypt));
    }

    #[test]
    fn a_locked_key_file_opens_only_with_its_unlock_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SymmetricKey::generate().unwrap();
        let kek = SymmetricKey::generate().unwrap();
        save(dir.path(), &key, Some(&kek)).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        assert!(!text.contains(&key.to_hex()));
        let stored = load(dir.path()).unwrap();
        assert!(matches!(stored, StoredKey::Locked(_)));
        assert_eq!(stored.unlock(&kek.to_unlock_key()).unwrap(), key);
        let wrong = SymmetricKey::generate().unwrap().to_unlock_key();
        assert_eq!(stored.unlock(&wrong), Err(KeyError::Decrypt));
        assert_eq!(stored.unlock("nope"), Err(KeyError::MalformedUnlockKey));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let k = SymmetricKey::generate().unwrap();
        assert!(!format!("{k:?}").contains(&k.to_hex()[..8]));
    }
}
