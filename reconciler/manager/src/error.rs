//! The one error type of the API: every failure a client can see, with its HTTP status.

use crate::api::ErrorBody;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use reconciler_store::Refusal;

/// An API failure. The message is safe to show: it never contains a token or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the API accepts.
    #[error("{0}")]
    TooLarge(String),
    /// No or wrong credential.
    #[error("unauthorized: a valid token is required")]
    Unauthorized,
    /// The credential is valid but not for this.
    #[error("{0}")]
    Forbidden(String),
    /// No such object.
    #[error("{0}")]
    NotFound(String),
    /// The object changed since it was read, or the id is in use.
    #[error("{0}")]
    Conflict(String),
    /// Refused in the current state (Docker's FailedPrecondition).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Writes cannot commit.
    #[error("no quorum: {reachable} of {total} managers reachable")]
    NoQuorum {
        /// Managers this one can reach (itself included).
        reachable: usize,
        /// Voting managers.
        total: usize,
    },
    /// Temporarily unavailable (leader changing); retry.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an I/O failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::FailedPrecondition(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::NoQuorum { .. } | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Rebuilds an error from a status and message received from another manager.
    pub fn from_remote(status: u16, message: String) -> ApiError {
        match status {
            400 | 415 | 422 => ApiError::BadRequest(message),
            413 => ApiError::TooLarge(message),
            401 => ApiError::Unauthorized,
            403 => ApiError::Forbidden(message),
            404 => ApiError::NotFound(message),
            409 => ApiError::Conflict(message),
            412 => ApiError::FailedPrecondition(message),
            503 => ApiError::Unavailable(message),
            _ => ApiError::Internal(message),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound { .. } => ApiError::NotFound(r.to_string()),
            Refusal::VersionMismatch { .. } | Refusal::AlreadyInitialized => {
                ApiError::Conflict(r.to_string())
            }
            Refusal::StaleStatus { .. } => ApiError::FailedPrecondition(r.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(ErrorBody { error: self.to_string() })).into_response()
    }
}
