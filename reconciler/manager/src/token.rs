//! Join tokens in Swarm's shape, random secrets, and constant-time comparison.
//!
//! A token is `FLT-1-<cluster digest>-<secret>`: the digest is the SHA-256 of the cluster id
//! in base 36, left-padded with `0` to 50 characters (Swarm digests its root CA the same way);
//! the secret is 16 random bytes in base 36, padded to 25 characters. The digest tells a
//! joining node which cluster the token is for; the secret decides the role.

use reconciler_types::NodeRole;
use sha2::{Digest, Sha256};
use std::io::Read;

const PREFIX: &str = "FLT";
const VERSION: &str = "1";
const DIGEST_LEN: usize = 50;
const SECRET_LEN: usize = 25;

/// Why a token was refused. The messages never contain the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `FLT-1-<digest>-<secret>`.
    #[error("invalid join token: expected FLT-1-<cluster digest>-<secret>")]
    Malformed,
    /// The token belongs to another cluster.
    #[error("the join token is for another cluster")]
    OtherCluster,
    /// The secret matches neither the worker nor the manager token.
    #[error("invalid join token")]
    Invalid,
    /// The token is valid, for another role than the one asked for.
    #[error("the join token is a {actual} token; a {wanted} token is needed")]
    WrongRole {
        /// The role the token grants.
        actual: &'static str,
        /// The role asked for.
        wanted: &'static str,
    },
}

/// Reads `n` random bytes from the operating system.
///
/// # Errors
/// `/dev/urandom` cannot be read.
pub fn random_bytes(n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// `bytes` as a big-endian number in base 36 (digits then lowercase letters), left-padded with
/// `0` to `width`.
pub fn base36(bytes: &[u8], width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut num: Vec<u8> = bytes.to_vec();
    let mut out = Vec::new();
    while num.iter().any(|b| *b != 0) {
        let mut rem: u32 = 0;
        for b in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(DIGITS[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// A fresh random secret for a join token (16 bytes, base 36, 25 characters).
///
/// # Errors
/// No randomness available.
pub fn new_secret() -> std::io::Result<String> {
    Ok(base36(&random_bytes(16)?, SECRET_LEN))
}

/// A fresh random credential of 32 bytes in hex (API and peer tokens, cluster ids).
///
/// # Errors
/// No randomness available.
pub fn new_hex(n: usize) -> std::io::Result<String> {
    Ok(random_bytes(n)?.iter().map(|b| format!("{b:02x}")).collect())
}

/// The digest part of a cluster's join tokens.
pub fn cluster_digest(cluster_id: &str) -> String {
    base36(&Sha256::digest(cluster_id.as_bytes()), DIGEST_LEN)
}

/// Formats a join token.
pub fn format_token(digest: &str, secret: &str) -> String {
    format!("{PREFIX}-{VERSION}-{digest}-{secret}")
}

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// The cluster digest.
    pub digest: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken").field("digest", &self.digest).finish_non_exhaustive()
    }
}

/// Parses `FLT-1-<digest>-<secret>`.
///
/// # Errors
/// [`TokenError::Malformed`].
pub fn parse_token(token: &str) -> Result<ParsedToken, TokenError> {
    let mut parts = token.trim().split('-');
    let (Some(p), Some(v), Some(d), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let is_b36 = |x: &str| x.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    if p != PREFIX || v != VERSION || d.len() != DIGEST_LEN || s.len() != SECRET_LEN {
        return Err(TokenError::Malformed);
    }
    if !is_b36(d) || !is_b36(s) {
        return Err(TokenError::Malformed);
    }
    Ok(ParsedToken { digest: d.to_owned(), secret: s.to_owned() })
}

/// Compares two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn role_name(role: NodeRole) -> &'static str {
    match role {
        NodeRole::Worker => "worker",
        NodeRole::Manager => "manager",
    }
}

/// Checks a join token against a cluster's digest and secrets, and returns the role it grants.
/// When `wanted` is given, a token of the other role is refused.
///
/// # Errors
/// See [`TokenError`].
pub fn check_join_token(
    token: &str,
    digest: &str,
    worker_secret: &str,
    manager_secret: &str,
    wanted: Option<NodeRole>,
) -> Result<NodeRole, TokenError> {
    let parsed = parse_token(token)?;
    if !constant_time_eq(&parsed.digest, digest) {
        return Err(TokenError::OtherCluster);
    }
    let is_worker = constant_time_eq(&parsed.secret, worker_secret);
    let is_manager = constant_time_eq(&parsed.secret, manager_secret);
    let role = match (is_worker, is_manager) {
        (_, true) => NodeRole::Manager,
        (true, false) => NodeRole::Worker,
        (false, false) => return Err(TokenError::Invalid),
    };
    match wanted {
        Some(w) if w != role => {
            Err(TokenError::WrongRole { actual: role_name(role), wanted: role_name(w) })
        }
        _ => Ok(role),
    }
}

/// A new Swarm-style node id: 25 random base-36 characters.
///
/// # Errors
/// No randomness available.
pub fn new_node_id() -> std::io::Result<String> {
    Ok(base36(&random_bytes(16)?, 25))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_pads_and_converts() {
        assert_eq!(base36(&[0], 3), "000");
        assert_eq!(base36(&[35], 1), "z");
        assert_eq!(base36(&[1, 0], 0), "74"); // 256 = 7*36 + 4
        assert_eq!(base36(&[0xff; 16], 25).len(), 25);
    }

    #[test]
    fn tokens_round_trip_and_have_swarms_shape() {
        let digest = cluster_digest("c1");
        let secret = new_secret().unwrap();
        let token = format_token(&digest, &secret);
        assert!(token.starts_with("FLT-1-"));
        assert_eq!(token.len(), "FLT-1-".len() + 50 + 1 + 25);
        assert_eq!(parse_token(&token).unwrap(), ParsedToken { digest, secret });
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "FLT-1-abc-def", "SWMTKN-1-a-b", "FLT-1-x-y-z", &"FLT-1-".repeat(3)] {
            assert_eq!(parse_token(bad), Err(TokenError::Malformed), "{bad}");
        }
        let upper = format_token(&"A".repeat(50), &"0".repeat(25));
        assert_eq!(parse_token(&upper), Err(TokenError::Malformed));
    }

    #[test]
    fn join_token_decides_the_role_and_refuses_the_wrong_one() {
        let d = cluster_digest("c1");
        let (w, m) = ("1".repeat(25), "2".repeat(25));
        let worker = format_token(&d, &w);
        let manager = format_token(&d, &m);
        assert_eq!(check_join_token(&worker, &d, &w, &m, None), Ok(NodeRole::Worker));
        assert_eq!(check_join_token(&manager, &d, &w, &m, None), Ok(NodeRole::Manager));
        assert_eq!(
            check_join_token(&worker, &d, &w, &m, Some(NodeRole::Manager)),
            Err(TokenError::WrongRole { actual: "worker", wanted: "manager" })
        );
        let wrong = format_token(&d, &"3".repeat(25));
        assert_eq!(check_join_token(&wrong, &d, &w, &m, None), Err(TokenError::Invalid));
        let other = format_token(&cluster_digest("c2"), &w);
        assert_eq!(check_join_token(&other, &d, &w, &m, None), Err(TokenError::OtherCluster));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }

    #[test]
    fn token_errors_do_not_echo_the_token() {
        let err = parse_token("FLT-1-secretstuff").unwrap_err().to_string();
        assert!(!err.contains("secretstuff"));
    }
}
