//! An audit event as the request path describes it: the owned
//! [`AuditRecord`] (Vault's `logical.Auth`, `logical.Request` and
//! `logical.Response`, reduced) and the borrowed `Entry` the formatter reads,
//! so that the request path need not copy its request and reply to make one;
//! plus the per-device [`FormatOptions`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Whether an entry records a request (before it is handled) or a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }
}

/// The token that made the request (Vault's `logical.Auth`, reduced).
#[derive(Debug, Clone, Default)]
pub struct AuthInfo {
    pub client_token: String,
    pub accessor: String,
    pub display_name: String,
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub entity_id: String,
    /// `service`, `batch`..; empty is written as Vault's `default`.
    pub token_type: String,
    /// Seconds; 0 is omitted.
    pub token_ttl: i64,
    pub token_issue_time: Option<OffsetDateTime>,
}

/// The request (Vault's `logical.Request`, reduced). The namespace is always
/// the root namespace.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: String,
    /// `create`, `read`, `update`, `delete`, `list`..
    pub operation: String,
    pub mount_point: String,
    pub mount_type: String,
    pub mount_accessor: String,
    pub client_token: String,
    pub client_token_accessor: String,
    pub path: String,
    /// Request body; `null` and `{}` are omitted.
    pub data: Value,
    pub remote_address: String,
    /// 0 is omitted.
    pub remote_port: u16,
}

/// The response (Vault's `logical.Response`, reduced). Its mount members are
/// taken from the request, as Vault does.
#[derive(Debug, Clone, Default)]
pub struct ResponseInfo {
    /// Response body; `null` and `{}` are omitted.
    pub data: Value,
    pub warnings: Vec<String>,
    pub redirect: String,
}

/// One audit event, before hashing and serialisation.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub kind: Kind,
    pub time: OffsetDateTime,
    /// `None` is written as Vault writes a request without a token:
    /// `"auth":{"token_type":"default"}`.
    pub auth: Option<AuthInfo>,
    pub request: RequestInfo,
    /// Only written for [`Kind::Response`]; `None` then means an empty response.
    pub response: Option<ResponseInfo>,
    pub error: Option<String>,
}

/// Per-device formatting switches (Vault's `hmac_accessor` and `log_raw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatOptions {
    /// Hash `auth.accessor` and `request.client_token_accessor` (default true).
    pub hmac_accessor: bool,
    /// Write tokens and data in clear (default false).
    pub log_raw: bool,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            hmac_accessor: true,
            log_raw: false,
        }
    }
}

/// The response body of an entry, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Data<'a> {
    /// Written as is; `null` and `{}` are omitted.
    Value(&'a Value),
    /// Written as `{"value": ..}` (a reply whose data is not an object).
    Wrapped(&'a Value),
    /// An object, written as is; `{}` is omitted.
    Object(&'a Map<String, Value>),
}

/// The response part of an entry, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseView<'a> {
    pub data: Data<'a>,
    pub warnings: &'a [String],
    pub redirect: &'a str,
    /// A wrapped reply's `wrap_info` (`token`, `accessor`, `ttl`,
    /// `creation_time`, `creation_path`, `wrapped_accessor`): its token and
    /// accessors are written hashed.
    pub wrap_info: Option<&'a Value>,
}

/// One audit event as the formatter reads it: an [`AuditRecord`] whose parts
/// are borrowed from wherever they live (the request path keeps its
/// request and the reply; nothing is copied to make an entry).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<'a> {
    pub kind: Kind,
    pub time: OffsetDateTime,
    pub auth: Option<&'a AuthInfo>,
    pub request: &'a RequestInfo,
    /// Stands for `request.data` when set (`request.data` is then null):
    /// the request's parameters as the handler reads them, shared instead
    /// of copied into the `RequestInfo`.
    pub request_data: Option<&'a Map<String, Value>>,
    /// Only written for [`Kind::Response`]; `None` then means an empty response.
    pub response: Option<ResponseView<'a>>,
    pub error: Option<&'a str>,
    /// Stands for `request.data` when the request path left the data out
    /// (`request.data` is then null).
    pub elided: Option<&'a ElidedData>,
}

/// Request data left out of an entry: its size, how many strings it held,
/// and its compact JSON, which each device writes only as its HMAC (what
/// `sys/audit-hash` gives for that text), so the entry still identifies
/// the data without writing it. Written as the request's `data_elided`
/// member, beside where `data` would be: a client cannot forge it (any
/// member the client sends is inside `data`).
#[derive(Debug, Clone)]
pub(crate) struct ElidedData {
    /// The data as compact JSON (object keys sorted).
    pub json: Vec<u8>,
    /// String values in it (at any depth; object keys not counted).
    pub strings: usize,
}

impl AuditRecord {
    pub(crate) fn entry(&self) -> Entry<'_> {
        Entry {
            kind: self.kind,
            time: self.time,
            auth: self.auth.as_ref(),
            request: &self.request,
            request_data: None,
            response: self.response.as_ref().map(|r| ResponseView {
                data: Data::Value(&r.data),
                warnings: &r.warnings,
                redirect: &r.redirect,
                wrap_info: None,
            }),
            error: self.error.as_deref(),
            elided: None,
        }
    }
}
