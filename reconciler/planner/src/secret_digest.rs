//! The digests a cluster shows for its secrets, salted per secret.
//!
//! A plain SHA-256 of a secret's value lets anyone who can list secrets test guesses of a
//! weak value (a short password) against it, and shows which secrets share a value. So a
//! cluster shows, for each secret, a random salt and
//!
//! ```text
//!   digest = sha256_hex(salt ":" sha256_hex(value))
//! ```
//!
//! Git's side of a plan knows the value, so it keeps the plain `sha256_hex(value)` with an
//! empty salt; comparing it with a live secret salts it with the live secret's salt
//! ([`same_content`]). The salt comes from the sealed value ([`salt_for`]): random (the seal's
//! nonce is), fixed for as long as the record keeps that sealed value, and computable by the
//! pure executor. A record without a salt (written before salting) shows the plain digest.

use sha2::{Digest, Sha256};

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest shown for a secret whose value has the plain digest `content` (hex SHA-256),
/// under `salt`; `content` itself when `salt` is empty.
pub fn salted(salt: &str, content: &str) -> String {
    if salt.is_empty() {
        content.to_owned()
    } else {
        sha256_hex(format!("{salt}:{content}").as_bytes())
    }
}

/// The salt of a secret whose value was sealed as `sealed`: 16 bytes in hex.
pub fn salt_for(sealed: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"flotilla secret salt\0");
    h.update(sealed);
    h.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets, each a `(salt, digest)` pair, hold the same value. One side may be
/// unsalted (Git's); two different salts cannot be compared and count as different.
pub fn same_content(a: (&str, &str), b: (&str, &str)) -> bool {
    let ((a_salt, a_digest), (b_salt, b_digest)) = (a, b);
    if a_salt == b_salt {
        a_digest == b_digest
    } else if a_salt.is_empty() {
        salted(b_salt, a_digest) == b_digest
    } else if b_salt.is_empty() {
        salted(a_salt, b_digest) == a_digest
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_salted_digest_hides_the_plain_one_and_differs_per_salt() {
        let plain = sha256_hex(b"hunter2");
        let (s1, s2) = (salt_for(b"sealed once"), salt_for(b"sealed twice"));
        assert_eq!(s1.len(), 32);
        assert_ne!(s1, s2);
        assert_ne!(salted(&s1, &plain), plain);
        assert_ne!(salted(&s1, &plain), salted(&s2, &plain), "equal values do not show equal");
        assert_eq!(salted("", &plain), plain);
    }

    #[test]
    fn gits_plain_digest_compares_with_a_salted_one() {
        let plain = sha256_hex(b"hunter2");
        let salt = salt_for(b"x");
        let live = (salt.as_str(), salted(&salt, &plain));
        assert!(same_content(("", &plain), (live.0, &live.1)));
        assert!(same_content((live.0, &live.1), ("", &plain)));
        assert!(!same_content(("", &sha256_hex(b"hunter3")), (live.0, &live.1)));
        assert!(same_content(("", &plain), ("", &plain)));
        let other = salt_for(b"y");
        assert!(!same_content((other.as_str(), &salted(&other, &plain)), (live.0, &live.1)));
    }
}
