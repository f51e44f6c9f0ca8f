//! Errors at the HTTP edge.
//!
//! Which error type belongs to which layer:
//! * `transit_keys::Error`: everything the keyring decides (bad input for a key,
//!   version rules, crypto failures). Converted here by `From`.
//! * `ApiError`: what a handler returns; one variant per HTTP outcome. Its status
//!   is chosen by `match` on the variant, never by reading message text.
//! * A 500 never shows its cause to the client: the body is generic and the cause
//!   goes to the server log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use transit_keys::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 403: missing or invalid token, or not allowed.
    #[error("permission denied")]
    PermissionDenied,
    /// 403 for a valid token whose policies do not allow the request
    /// (OpenBao's wording, wrapper included).
    #[error("1 error occurred:\n\t* permission denied\n\n")]
    Denied,
    /// 404 with an empty error list (reading a missing key, an empty list).
    #[error("not found")]
    NotFound,
    /// 404 for a path no endpoint of a mount serves (OpenBao's wording, wrapper included).
    #[error("1 error occurred:\n\t* unsupported path\n\n")]
    UnsupportedPath,
    /// 404 for a path under no mount at all.
    #[error("no handler for route {0:?}. route entry not found.")]
    NoRoute(String),
    /// 405 for a method the endpoint does not take.
    #[error("1 error occurred:\n\t* unsupported operation\n\n")]
    UnsupportedOperation,
    /// 413: the body is over the configured limit.
    #[error("request body too large")]
    TooLarge,
    /// 503: sealed or otherwise unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a real internal fault; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PermissionDenied | Self::Denied => StatusCode::FORBIDDEN,
            Self::NotFound | Self::UnsupportedPath | Self::NoRoute(_) => StatusCode::NOT_FOUND,
            Self::UnsupportedOperation => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The messages of the `{"errors": [...]}` body.
    pub fn messages(&self) -> Vec<String> {
        match self {
            Self::NotFound => Vec::new(),
            Self::Internal(_) => vec!["internal error".to_owned()],
            other => vec![other.to_string()],
        }
    }
}

impl From<transit_keys::Error> for ApiError {
    fn from(e: transit_keys::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidRequest => Self::BadRequest(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let body = serde_json::json!({ "errors": self.messages() });
        (self.status(), axum::Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
