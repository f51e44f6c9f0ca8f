//! The Vault reply envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What a handler answers on success.
#[derive(Debug, Default)]
pub struct Reply {
    pub data: Option<Value>,
    pub warnings: Vec<String>,
    /// Only for the batch endpoints' partial failures (400 or the caller's code).
    pub status: Option<StatusCode>,
    /// 204 with an empty body (delete, restore).
    pub no_content: bool,
    /// Answer `data` as the whole body, without the envelope (`sys/health`).
    pub bare: bool,
}

impl Reply {
    pub fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            ..Self::default()
        }
    }

    pub fn no_content() -> Self {
        Self {
            no_content: true,
            ..Self::default()
        }
    }

    pub fn bare(body: Value, status: StatusCode) -> Self {
        Self {
            data: Some(body),
            status: Some(status),
            bare: true,
            ..Self::default()
        }
    }

    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    pub fn into_response_with(self, unrecognized: Vec<String>) -> Response {
        if self.no_content {
            return StatusCode::NO_CONTENT.into_response();
        }
        if self.bare {
            let status = self.status.unwrap_or(StatusCode::OK);
            return (status, axum::Json(self.data.unwrap_or(Value::Null))).into_response();
        }
        let mut warnings = self.warnings;
        if !unrecognized.is_empty() {
            warnings.push(format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                unrecognized.join(" ")
            ));
        }
        let body = json!({
            "request_id": uuid::Uuid::new_v4().to_string(),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": self.data,
            "wrap_info": null,
            "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
            "auth": null,
        });
        (self.status.unwrap_or(StatusCode::OK), axum::Json(body)).into_response()
    }
}
