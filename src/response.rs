//! The Vault reply envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// A random (v4) UUID for a request id, from the thread's userspace CSPRNG
/// (no system call per request).
pub fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Vault's envelope, serialized as is (fields in the order `json!` gave them:
/// sorted).
#[derive(Serialize)]
struct Envelope<'a> {
    auth: &'a Option<Value>,
    data: &'a Option<Value>,
    lease_duration: u32,
    lease_id: &'static str,
    renewable: bool,
    request_id: String,
    warnings: Option<&'a [String]>,
    wrap_info: &'a Option<Value>,
}

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
    /// The `auth` block of token-issuing replies (create, login, renew).
    pub auth: Option<Value>,
    /// Also put `data`'s fields at the top level, as Vault's older `sys/`
    /// endpoints do (clients read either).
    pub mirror: bool,
    /// Set when the reply was wrapped (`X-Vault-Wrap-TTL`): then only this is
    /// sent; `data` and `auth` stay for the audit log, which hashes them.
    pub wrap_info: Option<Value>,
    /// A body sent as is, with its content type (`sys/metrics`).
    pub raw: Option<(&'static str, String)>,
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

    /// `body` as the whole reply, with `content_type` and `status`.
    pub fn raw(status: StatusCode, content_type: &'static str, body: String) -> Self {
        Self {
            status: Some(status),
            raw: Some((content_type, body)),
            ..Self::default()
        }
    }

    pub fn mirrored(data: Value) -> Self {
        Self {
            data: Some(data),
            mirror: true,
            ..Self::default()
        }
    }

    pub fn auth(auth: Value) -> Self {
        Self {
            auth: Some(auth),
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
        if let Some((content_type, body)) = self.raw {
            let status = self.status.unwrap_or(StatusCode::OK);
            let header = [(axum::http::header::CONTENT_TYPE, content_type)];
            return (status, header, body).into_response();
        }
        if self.bare {
            let status = self.status.unwrap_or(StatusCode::OK);
            return (status, axum::Json(self.data.unwrap_or(Value::Null))).into_response();
        }
        if self.wrap_info.is_some() {
            // Never the wrapped secrets: they are behind the wrapping token.
            let envelope = Envelope {
                auth: &None,
                data: &None,
                lease_duration: 0,
                lease_id: "",
                renewable: false,
                request_id: String::new(),
                warnings: None,
                wrap_info: &self.wrap_info,
            };
            return (StatusCode::OK, axum::Json(envelope)).into_response();
        }
        let mut warnings = self.warnings;
        if !unrecognized.is_empty() {
            warnings.push(format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                unrecognized.join(" ")
            ));
        }
        let status = self.status.unwrap_or(StatusCode::OK);
        if !self.mirror {
            let envelope = Envelope {
                auth: &self.auth,
                data: &self.data,
                lease_duration: 0,
                lease_id: "",
                renewable: false,
                request_id: new_request_id(),
                warnings: (!warnings.is_empty()).then_some(warnings.as_slice()),
                wrap_info: &None,
            };
            let size = ENVELOPE_BYTES
                + self.data.as_ref().map_or(0, json_len)
                + self.auth.as_ref().map_or(0, json_len)
                + warnings.iter().map(|w| w.len() + 3).sum::<usize>();
            return json_response(status, &envelope, size);
        }
        let top = self.data.clone();
        let mut body = json!({
            "request_id": new_request_id(),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": self.data,
            "wrap_info": null,
            "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
            "auth": self.auth,
        });
        if let (Some(Value::Object(fields)), Value::Object(envelope)) = (top, &mut body) {
            for (k, v) in fields {
                envelope.entry(k).or_insert(v);
            }
        }
        (status, axum::Json(body)).into_response()
    }
}

/// Room for the envelope's own members around `data` and `auth`.
const ENVELOPE_BYTES: usize = 160;

/// `body` as `application/json`, serialised into one buffer of `size`
/// bytes reserved up front: a batch reply (40 KB for 250 items) would
/// otherwise grow from axum's 128 bytes through nine reallocations, each a
/// copy of all it held.
fn json_response(status: StatusCode, body: &impl Serialize, size: usize) -> Response {
    let mut buf = Vec::with_capacity(size);
    match serde_json::to_writer(&mut buf, body) {
        Ok(()) => {
            let header = [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )];
            (status, header, buf).into_response()
        }
        // As `axum::Json` answers (a `Value` always serialises).
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// About the length of `v` as compact JSON: exact but for escapes and
/// numbers (counted at their longest), so a reply's buffer is sized once.
pub(crate) fn json_len(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_len(i) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_len(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The estimate reserves at least what a batch reply takes (no escapes
    /// in it), so the buffer never grows while it is written.
    #[test]
    fn a_batch_reply_fits_its_reserved_buffer() {
        let item =
            json!({"ciphertext": "vault:v1:abcd", "key_version": 12_345_678, "reference": ""});
        let data = json!({"batch_results": vec![item; 250], "n": null, "b": true, "f": 0.5});
        let written = serde_json::to_vec(&data).unwrap().len();
        let estimate = json_len(&data);
        assert!(estimate >= written, "{estimate} < {written}");
        assert!(estimate < written * 2, "{estimate} is far above {written}");
    }
}
