//! A node's own credential: `FLTNODE-1-<node id>-<secret>`.
//!
//! The manager hands it out once, in the answer to a join, and keeps only a digest of the
//! secret beside the node record. The agent keeps it in its data folder and presents it as a
//! bearer token on every dispatcher call; the node id in it tells the manager which record to
//! check, and a removed node's credential stops working with its record.

use reconciler_types::NodeId;
use std::fmt;

const PREFIX: &str = "FLTNODE-1-";

/// A parsed node credential. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredential {
    /// The node it belongs to.
    pub node_id: NodeId,
    /// The secret part.
    pub secret: String,
}

/// Why a string is not a node credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a node credential (expected FLTNODE-1-<node id>-<secret>)")]
pub struct CredentialError;

impl NodeCredential {
    /// Parses `FLTNODE-1-<node id>-<secret>`; both parts must be non-empty and alphanumeric.
    ///
    /// # Errors
    /// [`CredentialError`] for anything else.
    pub fn parse(s: &str) -> Result<NodeCredential, CredentialError> {
        let rest = s.strip_prefix(PREFIX).ok_or(CredentialError)?;
        let (id, secret) = rest.split_once('-').ok_or(CredentialError)?;
        let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric());
        if !ok(id) || !ok(secret) {
            return Err(CredentialError);
        }
        Ok(NodeCredential { node_id: NodeId::new(id), secret: secret.to_owned() })
    }
}

impl fmt::Display for NodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}-{}", self.node_id, self.secret)
    }
}

impl fmt::Debug for NodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCredential").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_round_trips_and_hides_its_secret() {
        let c = NodeCredential { node_id: NodeId::new("abc123"), secret: "s3cr3t".into() };
        let text = c.to_string();
        assert_eq!(text, "FLTNODE-1-abc123-s3cr3t");
        assert_eq!(NodeCredential::parse(&text), Ok(c.clone()));
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn malformed_credentials_are_refused() {
        for bad in
            ["", "FLTNODE-1-", "FLTNODE-1-abc", "FLTNODE-1--x", "FLTNODE-2-a-b", "FLTNODE-1-a-b c"]
        {
            assert_eq!(NodeCredential::parse(bad), Err(CredentialError), "{bad:?}");
        }
    }
}
