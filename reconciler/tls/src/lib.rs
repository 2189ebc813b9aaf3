//! flotilla's cluster PKI, the way Swarm secures a cluster without operator setup.
//!
//! ```text
//!  manager --init ──► RootCa::generate (key sealed with the cluster key, replicated)
//!                         │ digest ──► join tokens FLT-1-<digest>-<secret>
//!  joining node: NodeKey + CSR ──► RootCa::issue ──► chain (CN node id, OU role, O cluster)
//!  every connection: rustls with TlsState (live credentials and roots) + verify_chain
//!  `ca rotate`: new root, cross-signed by the old, every node reissued, old root dropped
//! ```
//!
//! * [`ca`]: the root CA, node certificates from CSRs, cross-signing; [`NodeKey`] and its CSR.
//! * [`cert`]: what a node certificate says ([`CertInfo`]), the CA digest, PEM helpers.
//! * [`verify`]: a chain checked against the trusted roots; a CA bundle pinned by a digest.
//! * [`config`]: the rustls server and client configs over live credentials ([`TlsState`]).
//! * [`files`]: a node's key, chain and trusted roots in its data folder.
//! * [`rotation`]: the pure rules of a root rotation and of renewal times.
//!
//! Time is given as seconds since the Unix epoch by the caller; this crate reads no clock.

pub mod ca;
pub mod cert;
pub mod config;
pub mod error;
pub mod files;
pub mod rotation;
pub mod verify;

pub use ca::{NodeKey, RootCa};
pub use cert::{CertInfo, NodeIdentity, ca_digest};
pub use config::TlsState;
pub use error::PkiError;
