//! Errors: [`ServerError`] for the library, [`AppError`] for HTTP responses.
//! Clients see their own input errors in full; internal errors are logged
//! and shown only as "internal error".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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

/// The error type of every HTTP handler.
#[derive(Debug)]
pub struct AppError(pub ServerError);

impl<E: Into<ServerError>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError(e.into())
    }
}

/// The JSON body of an API error.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A stable code.
    pub error: String,
    /// What went wrong.
    pub message: String,
    /// The index (in the report, oldest first) of the message that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_index: Option<usize>,
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
