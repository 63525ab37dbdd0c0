//! The one error type of `brevetd`, and its mapping to HTTP in one place.
//!
//! Each variant carries a message written for the person at the terminal. Internal detail
//! (database, I/O) is logged with an incident id and never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brevet_proto::api::{ErrorBody, code};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    MfaRequired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    DeviceDisabled(String),
    /// Too many attempts: refused before any work, to be retried after `retry_after` seconds.
    #[error("{message}")]
    Throttled { message: String, retry_after: u64 },
    #[error("{0}")]
    DeviceSuperseded(String),
    #[error("{0}")]
    RestorePending(String),
    #[error("{0}")]
    PolicyDenied(String),
    #[error("{0}")]
    SeparationOfDuties(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] brevet_store::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<brevet_proto::Error> for Error {
    fn from(e: brevet_proto::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

impl From<brevet_identity::Error> for Error {
    fn from(e: brevet_identity::Error) -> Self {
        Error::Internal(format!("identity: {e}"))
    }
}

impl Error {
    pub(crate) fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        Error::Io(format!("cannot {what} `{}`: {e}", path.display()))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Invalid(_) => (StatusCode::BAD_REQUEST, code::INVALID_INPUT),
            Error::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
            Error::MfaRequired(_) => (StatusCode::UNAUTHORIZED, code::MFA_REQUIRED),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, code::FORBIDDEN),
            Error::DeviceDisabled(_) => (StatusCode::FORBIDDEN, code::DEVICE_DISABLED),
            Error::DeviceSuperseded(_) => (StatusCode::UNAUTHORIZED, code::DEVICE_SUPERSEDED),
            Error::RestorePending(_) => (StatusCode::SERVICE_UNAVAILABLE, code::RESTORE_PENDING),
            Error::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, code::THROTTLED),
            Error::PolicyDenied(_) => (StatusCode::FORBIDDEN, code::POLICY_DENIED),
            Error::SeparationOfDuties(_) => (StatusCode::FORBIDDEN, code::SEPARATION_OF_DUTIES),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, code::NOT_FOUND),
            Error::Conflict(_) => (StatusCode::CONFLICT, code::CONFLICT),
            Error::AlreadyExists(_) => (StatusCode::CONFLICT, code::ALREADY_EXISTS),
            Error::Config(_) | Error::Io(_) | Error::Store(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL)
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let retry_after = match &self {
            Error::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            let incident = uuid::Uuid::new_v4();
            tracing::error!(%incident, error = %self, "internal error");
            format!("internal error (incident {incident}); the server log has the details")
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            code: code.to_owned(),
            message,
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
        }
        response
    }
}
