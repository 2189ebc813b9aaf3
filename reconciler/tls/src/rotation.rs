//! The pure rules of certificate lifetimes and of a root rotation (Swarm's `ca --rotate`).
//!
//! A rotation moves through three states, each one replicated:
//! 1. **Steady**: one root; it signs; nodes trust it.
//! 2. **Rotating**: a new root exists; it signs, and every certificate it issues carries the
//!    new root cross-signed by the old one, so a node that still trusts only the old root
//!    accepts it. Nodes are told to trust both roots, and every node gets a new certificate.
//! 3. When every node's certificate names the new key as its issuer, the old root is dropped:
//!    steady again on the new root, and the join tokens carry the new root's digest.

use std::collections::BTreeMap;

/// When a certificate valid from `not_before` to `not_after` should be renewed: at a point
/// between 50 % and 80 % of its lifetime (Swarm's window), `jitter` in [0, 1) choosing where,
/// so a cluster's nodes do not all renew at once.
///
/// The lifetime counts from when the certificate was issued, not from its backdated start
/// ([`crate::ca::BACKDATE_SECS`] before the issue): with the backdate counted, a certificate
/// shorter than about two hours would be due the moment it was issued, and renewed again on
/// every check.
pub fn renew_at(not_before: u64, not_after: u64, jitter: f64) -> u64 {
    let issued = not_before.saturating_add(crate::ca::BACKDATE_SECS).min(not_after);
    let span = not_after.saturating_sub(issued) as f64;
    let fraction = 0.5 + 0.3 * jitter.clamp(0.0, 0.999);
    issued + (span * fraction) as u64
}

/// How long a node may wait before it looks at its certificate again: its usual `period`,
/// or less when the renewal time of `current` comes sooner (a short `--cert-expiry`), so
/// that a node renews on time whatever the expiry. Never less than `floor` seconds.
pub fn next_check(
    current: Option<&crate::cert::CertInfo>,
    now: u64,
    jitter: f64,
    period: u64,
    floor: u64,
) -> u64 {
    let until =
        current.map_or(period, |c| renew_at(c.not_before, c.not_after, jitter).saturating_sub(now));
    until.min(period).max(floor)
}

/// Whether a node holding a certificate described by `current` must ask for a new one:
/// its renewal time has come, it was issued by another key than the one that signs now (a
/// rotation), or for another role than the node has now (promote, demote).
pub fn needs_renewal(
    current: &crate::cert::CertInfo,
    signer_key_id: &str,
    role: reconciler_types::NodeRole,
    now: u64,
    jitter: f64,
) -> bool {
    now >= renew_at(current.not_before, current.not_after, jitter)
        || current.issuer_key_id != signer_key_id
        || current.identity.role != role
}

/// Whether a rotation to the key `new_key_id` is complete: every node's certificate (node →
/// issuer key id, `None` when the node has not reported one yet) names the new key.
pub fn rotation_converged<K: Ord>(new_key_id: &str, issuers: &BTreeMap<K, Option<String>>) -> bool {
    issuers.values().all(|i| i.as_deref() == Some(new_key_id))
}

/// The nodes whose certificate still comes from another key than `new_key_id`.
pub fn unconverged<'a, K: Ord>(
    new_key_id: &str,
    issuers: &'a BTreeMap<K, Option<String>>,
) -> Vec<&'a K> {
    issuers.iter().filter(|(_, i)| i.as_deref() != Some(new_key_id)).map(|(k, _)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_falls_between_half_and_four_fifths_of_the_lifetime() {
        // Certificates start BACKDATE before they are issued; the window counts from the issue.
        let b = crate::ca::BACKDATE_SECS;
        let t = 100_000;
        assert_eq!(renew_at(t - b, t + 1000, 0.0), t + 500);
        assert_eq!(renew_at(t - b, t + 1000, 0.5), t + 650);
        assert!(renew_at(t - b, t + 1000, 1.0) < t + 800);
        assert!(renew_at(t - b, t + 1000, 0.999) >= t + 799);
        assert_eq!(renew_at(2000, 1000, 0.3), 1000);
    }

    #[test]
    fn a_short_certificate_is_renewed_in_its_window_not_at_once() {
        // --cert-expiry 60s, issued at 10_000: valid from 10_000 - BACKDATE to 10_060.
        let (issued, expiry) = (10_000, 60);
        let nb = issued - crate::ca::BACKDATE_SECS;
        for jitter in [0.0, 0.3, 0.999] {
            let at = renew_at(nb, issued + expiry, jitter);
            assert!((issued + 30..issued + 48).contains(&at), "renews at {at} (jitter {jitter})");
        }
    }

    #[test]
    fn a_node_looks_again_no_later_than_its_renewal_time() {
        use crate::cert::{CertInfo, NodeIdentity};
        use reconciler_types::{NodeId, NodeRole};
        let info = |issued: u64, expiry: u64| CertInfo {
            identity: NodeIdentity {
                node_id: NodeId::new("n"),
                role: NodeRole::Worker,
                cluster_id: "c".into(),
            },
            not_before: issued - crate::ca::BACKDATE_SECS,
            not_after: issued + expiry,
            issuer_key_id: "k".into(),
        };
        // A long certificate: the usual period.
        assert_eq!(next_check(Some(&info(10_000, 90 * 86_400)), 10_000, 0.0, 60, 1), 60);
        // A 20 s certificate renews at 10 s: look again in 10 s, not in 60.
        assert_eq!(next_check(Some(&info(10_000, 20)), 10_000, 0.0, 60, 1), 10);
        // Past the renewal time (a renewal failed): the floor, so it retries soon.
        assert_eq!(next_check(Some(&info(10_000, 20)), 10_015, 0.0, 60, 1), 1);
        assert_eq!(next_check(None, 10_000, 0.0, 60, 1), 60);
    }

    #[test]
    fn renewal_is_due_on_time_on_a_new_signer_and_on_a_new_role() {
        use crate::cert::{CertInfo, NodeIdentity};
        use reconciler_types::{NodeId, NodeRole};
        let info = CertInfo {
            identity: NodeIdentity {
                node_id: NodeId::new("n"),
                role: NodeRole::Worker,
                cluster_id: "c".into(),
            },
            not_before: 0,
            not_after: 1000 + crate::ca::BACKDATE_SECS,
            issuer_key_id: "k1".into(),
        };
        let b = crate::ca::BACKDATE_SECS;
        assert!(!needs_renewal(&info, "k1", NodeRole::Worker, b + 400, 0.0));
        assert!(needs_renewal(&info, "k1", NodeRole::Worker, b + 500, 0.0));
        assert!(needs_renewal(&info, "k2", NodeRole::Worker, 10, 0.0));
        assert!(needs_renewal(&info, "k1", NodeRole::Manager, 10, 0.0));
    }

    #[test]
    fn a_rotation_converges_only_when_every_node_names_the_new_key() {
        let mut m = BTreeMap::from([("a", Some("new".to_owned())), ("b", Some("old".to_owned()))]);
        assert!(!rotation_converged("new", &m));
        assert_eq!(unconverged("new", &m), vec![&"b"]);
        m.insert("b", Some("new".into()));
        assert!(rotation_converged("new", &m));
        m.insert("c", None);
        assert!(!rotation_converged("new", &m));
    }
}
