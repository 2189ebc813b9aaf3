//! The cluster PKI's replicated records live in the one state model
//! ([`reconciler_orchestrator::state::pki`]); re-exported here beside the other store paths.

pub use reconciler_orchestrator::state::pki::*;
