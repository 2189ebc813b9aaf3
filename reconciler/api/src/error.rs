//! The one error type of the API: every failure a client can see, with its HTTP status.
//! The manager turns it into a response; the clients rebuild it from one.

use serde::{Deserialize, Serialize};

/// Every error body the managers send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a human.
    pub error: String,
}

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
    /// The HTTP status code of this error.
    pub fn status_code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::TooLarge(_) => 413,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::Conflict(_) => 409,
            ApiError::FailedPrecondition(_) => 412,
            ApiError::NoQuorum { .. } | ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// Rebuilds an error from a status and message received from a manager.
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

    /// Worth retrying later or against another manager (leader change, no quorum yet).
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::NoQuorum { .. } | ApiError::Unavailable(_))
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status_code())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody { error: self.to_string() })).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_survives_the_round_trip_through_its_status() {
        let errors = [
            ApiError::BadRequest("b".into()),
            ApiError::TooLarge("t".into()),
            ApiError::Unauthorized,
            ApiError::Forbidden("f".into()),
            ApiError::NotFound("n".into()),
            ApiError::Conflict("c".into()),
            ApiError::FailedPrecondition("p".into()),
            ApiError::Unavailable("u".into()),
            ApiError::Internal("i".into()),
        ];
        for e in errors {
            let message = match &e {
                ApiError::Unauthorized => String::new(),
                ApiError::Internal(m) => m.clone(),
                other => other.to_string(),
            };
            assert_eq!(ApiError::from_remote(e.status_code(), message), e);
        }
    }
}
