//! The API's one error type lives in the wire crate ([`reconciler_api::ApiError`]); this
//! module adds how a store refusal becomes one.

pub use reconciler_api::ApiError;
use reconciler_store::Refusal;

/// The API error a refused store command becomes: a missing record is 404, a record that
/// changed since it was read (or a fenced orchestrator batch) is 409, a request that breaks
/// one of Swarm's rules is 400 with Docker's message, anything else refused in the current
/// state is 412.
pub fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::NotFound { .. } => ApiError::NotFound(r.to_string()),
        Refusal::VersionMismatch { .. } | Refusal::AlreadyInitialized | Refusal::Fenced { .. } => {
            ApiError::Conflict(r.to_string())
        }
        Refusal::Invalid { .. } => ApiError::BadRequest(r.to_string()),
        Refusal::StaleStatus { .. } | Refusal::FailedPrecondition { .. } => {
            ApiError::FailedPrecondition(r.to_string())
        }
    }
}
