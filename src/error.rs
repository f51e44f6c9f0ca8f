//! Errors at the HTTP edge.
//!
//! Which error type belongs to which layer:
//! * `transit_keys::Error`: everything the keyring decides (bad input for a key,
//!   version rules, crypto failures). Converted here by `From`.
//! * `StoreError`: everything the stores, the seal's edits and the server state
//!   decide (`crate::storage::StoreError`). Mapped here, in the one `From`
//!   below, to the status and body each kind gets.
//! * `ApiError`: what a handler returns; one variant per HTTP outcome. Its status
//!   is chosen by `match` on the variant, never by reading message text.
//! * A 500 never shows its cause to the client: the body is generic and the cause
//!   goes to the server log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use transit_keys::ErrorKind;

use crate::storage::{Missing, StoreError};

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
    /// 404 for an `X-Vault-Namespace` other than the root (OpenBao's wording).
    #[error("namespace not found")]
    UnknownNamespace,
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
            Self::NotFound | Self::UnsupportedPath | Self::NoRoute(_) | Self::UnknownNamespace => {
                StatusCode::NOT_FOUND
            }
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

impl From<crate::seal::SealError> for ApiError {
    fn from(e: crate::seal::SealError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => Self::BadRequest(m),
            StoreError::Missing(missing @ (Missing::User | Missing::Role(_))) => {
                Self::BadRequest(missing.to_string())
            }
            StoreError::Missing(Missing::RoleToUpdate) => Self::UnsupportedPath,
            StoreError::Sealed => Self::Unavailable("Vault is sealed".to_owned()),
            StoreError::Contended(what) => Self::Unavailable(what.to_string()),
            // The cause was logged where the storage failed.
            StoreError::Unavailable(_) => {
                Self::Unavailable("storage is unavailable; the change was not made".to_owned())
            }
            StoreError::Internal(cause) => Self::Internal(cause),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Contended;

    /// Every kind of store error, with the status and body it answers.
    #[test]
    fn each_store_error_answers_its_status_and_body() {
        let cases: Vec<(StoreError, StatusCode, &str)> = vec![
            (
                StoreError::invalid("bad input"),
                StatusCode::BAD_REQUEST,
                "bad input",
            ),
            (
                Missing::User.into(),
                StatusCode::BAD_REQUEST,
                "username does not exist",
            ),
            (
                Missing::Role("ci".to_owned()).into(),
                StatusCode::BAD_REQUEST,
                "role \"ci\" does not exist",
            ),
            (
                Missing::RoleToUpdate.into(),
                StatusCode::NOT_FOUND,
                "1 error occurred:\n\t* unsupported path\n\n",
            ),
            (
                StoreError::Sealed,
                StatusCode::SERVICE_UNAVAILABLE,
                "Vault is sealed",
            ),
            (
                Contended::Entry("the key").into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "the key is being changed concurrently; retry",
            ),
            (
                Contended::ChildTokens.into(),
                StatusCode::SERVICE_UNAVAILABLE,
                "tokens are being created under this token concurrently; retry",
            ),
            (
                StoreError::Unavailable("connection refused".to_owned()),
                StatusCode::SERVICE_UNAVAILABLE,
                "storage is unavailable; the change was not made",
            ),
            (
                StoreError::Internal("lock poisoned".to_owned()),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ),
        ];
        for (store, status, message) in cases {
            let what = format!("{store:?}");
            let api = ApiError::from(store);
            assert_eq!(api.status(), status, "{what}");
            assert_eq!(api.messages(), [message], "{what}");
        }
    }
}
