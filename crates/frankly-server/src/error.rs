//! Errors: [`ServerError`] for the library, [`AppError`] for HTTP responses.
//! Clients see their own input errors in full; internal errors are logged
//! and shown only as "internal error".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use frankly_api::ErrorBody;

/// Why a server operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration or data directory is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The audit chain does not verify.
    #[error("audit log does not verify: {0}")]
    AuditChain(String),
    /// A request was refused; the status and message go to the client.
    #[error("{message}")]
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// A stable code, e.g. `replay`.
        code: &'static str,
        /// What went wrong, for the client.
        message: String,
        /// Which message of a report failed, if that is the reason.
        message_index: Option<usize>,
    },
    /// Something that should not happen.
    #[error("internal: {0}")]
    Internal(String),
}

impl ServerError {
    /// A refusal with status and code.
    pub(crate) fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ServerError::Refused { status, code, message: message.into(), message_index: None }
    }
}

impl From<frankly_review::ReviewError> for ServerError {
    fn from(e: frankly_review::ReviewError) -> Self {
        use frankly_review::ErrorKind;
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Gone => StatusCode::GONE,
        };
        ServerError::refused(status, e.code(), e.to_string())
    }
}

/// The error type of every HTTP handler.
#[derive(Debug)]
pub struct AppError(pub ServerError);

impl<E: Into<ServerError>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError(e.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self.0 {
            ServerError::Refused { status, code, message, message_index } => {
                (status, axum::Json(ErrorBody { error: code.into(), message, message_index })).into_response()
            }
            other => {
                tracing::error!(error = %other, "internal error");
                let body =
                    ErrorBody { error: "internal".into(), message: "internal error".into(), message_index: None };
                (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
            }
        }
    }
}
