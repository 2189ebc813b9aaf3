//! Push webhooks: who sent one, whether it is genuine, and which branch it is about.
//!
//! A manager that exposes a webhook endpoint fetches its Git source at once when a genuine
//! push arrives, instead of waiting for the next poll. Three forges are recognised by their
//! headers; each proves knowledge of the shared secret its own way:
//!
//! | forge | header | proof |
//! |---|---|---|
//! | GitHub (and Forgejo/Gitea's GitHub-compatible header) | `X-Hub-Signature-256: sha256=<hex>` | HMAC-SHA256 of the body |
//! | Gitea / Forgejo | `X-Gitea-Signature` / `X-Forgejo-Signature: <hex>` | HMAC-SHA256 of the body |
//! | GitLab | `X-Gitlab-Token: <secret>` | the secret itself |
//!
//! Every comparison is constant-time. Nothing here fetches anything: the caller decides what
//! a verified push triggers.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Which forge sent a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// GitHub (or a forge sending GitHub's signature header).
    GitHub,
    /// Gitea or Forgejo.
    Gitea,
    /// GitLab.
    GitLab,
}

/// Why a webhook is refused. The messages never contain the secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No header of a known forge.
    #[error(
        "no webhook signature: expected X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature or X-Gitlab-Token"
    )]
    Unsigned,
    /// The signature header is not hex (or lacks GitHub's `sha256=` prefix).
    #[error("malformed {header} header")]
    Malformed {
        /// The header.
        header: &'static str,
    },
    /// The proof does not match the secret.
    #[error("webhook signature does not match the configured secret")]
    Mismatch,
}

/// A verified push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Who sent it.
    pub forge: Forge,
    /// The ref it updated (`refs/heads/main`), when the body says.
    pub git_ref: Option<String>,
}

/// Checks a webhook against `secret`. `header` looks a header up by its lowercase name.
///
/// # Errors
/// [`WebhookError`]: no known header, a malformed one, or a proof that does not match.
pub fn verify<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secret: &[u8],
) -> Result<Push, WebhookError> {
    let forge = if let Some(sig) = header("x-hub-signature-256") {
        let hex = sig
            .strip_prefix("sha256=")
            .ok_or(WebhookError::Malformed { header: "X-Hub-Signature-256" })?;
        check_hmac(hex, "X-Hub-Signature-256", body, secret)?;
        Forge::GitHub
    } else if let Some(sig) = header("x-gitea-signature").or_else(|| header("x-forgejo-signature"))
    {
        check_hmac(sig, "X-Gitea-Signature", body, secret)?;
        Forge::Gitea
    } else if let Some(token) = header("x-gitlab-token") {
        if !constant_time_eq(token.as_bytes(), secret) {
            return Err(WebhookError::Mismatch);
        }
        Forge::GitLab
    } else {
        return Err(WebhookError::Unsigned);
    };
    Ok(Push { forge, git_ref: pushed_ref(body) })
}

fn check_hmac(
    hex: &str,
    header: &'static str,
    body: &[u8],
    secret: &[u8],
) -> Result<(), WebhookError> {
    let given = decode_hex(hex.trim()).ok_or(WebhookError::Malformed { header })?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| WebhookError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| WebhookError::Mismatch)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes().chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}

/// Equality in time that depends only on the lengths: both sides are hashed first, so the
/// comparison is over two fixed-size digests.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `ref` of a push event body (GitHub, Gitea and GitLab all send it at the top level).
fn pushed_ref(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "ref")]
        git_ref: Option<String>,
    }
    serde_json::from_slice::<Event>(body).ok()?.git_ref
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_lowercase(), (*v).to_owned())).collect()
    }

    fn run(h: &BTreeMap<String, String>, body: &[u8], secret: &str) -> Result<Push, WebhookError> {
        verify(|k| h.get(k).map(String::as_str), body, secret.as_bytes())
    }

    // GitHub's documented example ("Validating webhook deliveries").
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_signature_from_githubs_documentation_is_accepted() {
        let h = headers(&[("X-Hub-Signature-256", GH_SIG)]);
        assert_eq!(run(&h, GH_BODY, GH_SECRET).unwrap().forge, Forge::GitHub);
    }

    #[test]
    fn github_signature_with_another_secret_or_body_is_refused() {
        let h = headers(&[("X-Hub-Signature-256", GH_SIG)]);
        assert_eq!(run(&h, GH_BODY, "other"), Err(WebhookError::Mismatch));
        assert_eq!(run(&h, b"Hello, World?", GH_SECRET), Err(WebhookError::Mismatch));
        let bare = headers(&[("X-Hub-Signature-256", &GH_SIG[7..])]);
        assert!(matches!(run(&bare, GH_BODY, GH_SECRET), Err(WebhookError::Malformed { .. })));
    }

    #[test]
    fn gitea_signature_is_the_bare_hex_hmac() {
        let h = headers(&[("X-Gitea-Signature", &GH_SIG[7..])]);
        assert_eq!(run(&h, GH_BODY, GH_SECRET).unwrap().forge, Forge::Gitea);
        let h = headers(&[("X-Forgejo-Signature", "zz")]);
        assert!(matches!(run(&h, GH_BODY, GH_SECRET), Err(WebhookError::Malformed { .. })));
    }

    #[test]
    fn gitlab_token_must_equal_the_secret() {
        let body = br#"{"ref":"refs/heads/main","after":"abc"}"#;
        let ok = run(&headers(&[("X-Gitlab-Token", "s3cret")]), body, "s3cret").unwrap();
        assert_eq!(ok, Push { forge: Forge::GitLab, git_ref: Some("refs/heads/main".into()) });
        let bad = run(&headers(&[("X-Gitlab-Token", "s3cre")]), body, "s3cret");
        assert_eq!(bad, Err(WebhookError::Mismatch));
    }

    #[test]
    fn an_unsigned_webhook_is_refused() {
        assert_eq!(run(&headers(&[]), GH_BODY, GH_SECRET), Err(WebhookError::Unsigned));
    }
}
