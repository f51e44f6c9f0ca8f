//! Vault's JSON audit entry, one object per line.
//!
//! The members, their nesting and their "omit when empty" behaviour follow the
//! `file` audit device of Vault/OpenBao (`"time"`, `"type"`, `"auth"`,
//! `"request"`, `"response"` for responses, `"error"` when there is one), so
//! tools that read Vault audit logs read these. Top-level member order is the
//! same as Vault's; nested maps (`data`, `metadata`) come out with sorted keys,
//! as Go's encoder writes them. Not reproduced: Go's escaping of `<`, `>`, `&`
//! as `\u003c`.. (the decoded strings are identical) and members transitd has
//! no use for (`policy_results`, `wrap_info`, `headers`, `mount_running_*`..).
//!
//! Hashing matches Vault's salted HMAC (`salt.GetIdentifiedHMAC`, see `hash`).
//! It replaces the client token, the token accessor (unless
//! `hmac_accessor=false`) and every string value found at any depth inside
//! `request.data` and `response.data` (object keys stay readable); numbers,
//! booleans and nulls stay. Vault leaves its own `time.Time` values in clear;
//! here a string that looks like a timestamp is hashed too (in JSON data it is
//! only a string, and a secret may look like one). `log_raw=true` turns all
//! hashing off.
//!
//! Data strings are hashed as they are serialised (no hashed copy of the data
//! is built), the HMAC of the empty string is computed once per device, a
//! request's token and accessor once per device per request (`TokenMemo`),
//! hex and timestamps are written by hand into stack buffers. The output is
//! byte for byte what the straightforward version wrote (a test keeps that
//! version to compare against).
//!
//! Here: the `Formatter` and the shapes it serialises. Apart: `record` (the
//! event as the request path describes it), `hash` (the salted HMAC, hex and
//! the token memo) and `timestamp` (Go's RFC 3339 texts).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

mod hash;
mod record;
#[cfg(test)]
mod tests;
mod timestamp;

pub use hash::hash_value;
pub(crate) use hash::{SaltKey, TokenMemo, hex_encode_into};
pub use record::{AuditRecord, AuthInfo, FormatOptions, Kind, RequestInfo, ResponseInfo};
pub(crate) use record::{Data, ElidedData, Entry, ResponseView};
pub(crate) use timestamp::rfc3339_nano;

use hash::{Hashed, hash_with};
use timestamp::{TimeText, rfc3339_nano_text, rfc3339_text};

/// Serialises `record` as one JSON object (no newline, no `seq`/`chain`),
/// hashing with `salt` unless `options.log_raw`.
pub fn format_record(
    record: &AuditRecord,
    salt: &[u8],
    options: FormatOptions,
) -> Result<Vec<u8>, serde_json::Error> {
    Formatter::new(SaltKey::new(salt), options).format(&record.entry(), &mut TokenMemo::default())
}

static NULL: Value = Value::Null;

/// A device's way of writing entries: its HMAC key (the salt), its options,
/// and the HMAC of the empty string, which batch data holds by the hundred
/// (`"reference":""`).
pub(crate) struct Formatter {
    key: SaltKey,
    options: FormatOptions,
    empty: Hashed,
}

impl std::fmt::Debug for Formatter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Formatter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Formatter {
    pub(crate) fn new(key: SaltKey, options: FormatOptions) -> Self {
        let empty = Hashed::of(&key, "");
        Self {
            key,
            options,
            empty,
        }
    }

    pub(crate) fn options(&self) -> FormatOptions {
        self.options
    }

    /// `sys/audit-hash`.
    pub(crate) fn hash(&self, s: &str) -> String {
        hash_with(&self.key, s)
    }

    /// A string inside request or response data.
    fn data_string(&self, s: &str) -> Hashed {
        if s.is_empty() {
            self.empty
        } else {
            Hashed::of(&self.key, s)
        }
    }

    /// A token: in clear when empty or with `log_raw`.
    fn token<'a>(&self, memo: &mut TokenMemo, s: &'a str) -> Text<'a> {
        if self.options.log_raw || s.is_empty() {
            Text::Clear(s)
        } else {
            Text::Hashed(memo.get(&self.key, s))
        }
    }

    fn wrap_info<'a>(&self, info: &'a Value) -> WrapInfoOut<'a> {
        // Not the request's token or accessor: no memo to share.
        let mut memo = TokenMemo::default();
        let text = |k: &str| info[k].as_str().unwrap_or_default();
        WrapInfoOut {
            token: self.token(&mut memo, text("token")),
            accessor: self.accessor(&mut memo, text("accessor")),
            ttl: info["ttl"].as_u64().unwrap_or(0),
            creation_time: text("creation_time"),
            creation_path: text("creation_path"),
            wrapped_accessor: self.accessor(&mut memo, text("wrapped_accessor")),
        }
    }

    fn accessor<'a>(&self, memo: &mut TokenMemo, s: &'a str) -> Text<'a> {
        if self.options.hmac_accessor {
            self.token(memo, s)
        } else {
            Text::Clear(s)
        }
    }

    fn data<'a>(&'a self, data: Data<'a>) -> Option<DataOut<'a>> {
        match data {
            Data::Value(Value::Null) => None,
            Data::Value(Value::Object(m)) | Data::Object(m) if m.is_empty() => None,
            data => Some(DataOut { data, fmt: self }),
        }
    }

    /// Serialises one entry as a JSON object (no newline, no `seq`/`chain`).
    /// Strings of the data are hashed as they are written (no hashed copy of
    /// the data is built); `memo` holds this request's token HMACs for this
    /// device.
    pub(crate) fn format(
        &self,
        entry: &Entry<'_>,
        memo: &mut TokenMemo,
    ) -> Result<Vec<u8>, serde_json::Error> {
        let blocks = self.blocks(entry, memo)?;
        self.assemble(entry, &blocks)
    }

    /// Serialises the entries of one request: an entry that shares the
    /// `auth` and `request` blocks of the one before it (the same token and
    /// the same request, by reference: a request entry and its response
    /// entry) reuses them, so they are written, and their data hashed, once.
    pub(crate) fn format_all(
        &self,
        entries: &[&Entry<'_>],
        memo: &mut TokenMemo,
    ) -> Result<Vec<Vec<u8>>, serde_json::Error> {
        let mut out = Vec::with_capacity(entries.len());
        let mut previous: Option<(&Entry<'_>, Blocks)> = None;
        for &entry in entries {
            let blocks = match previous.take() {
                Some((prev, blocks)) if shared_blocks(prev, entry) => blocks,
                _ => self.blocks(entry, memo)?,
            };
            out.push(self.assemble(entry, &blocks)?);
            previous = Some((entry, blocks));
        }
        Ok(out)
    }

    /// An entry's `auth` and `request` blocks, serialised.
    fn blocks(&self, entry: &Entry<'_>, memo: &mut TokenMemo) -> Result<Blocks, serde_json::Error> {
        let default_auth = AuthInfo::default();
        let auth = entry.auth.unwrap_or(&default_auth);
        let req = entry.request;
        let auth_out = AuthOut {
            client_token: self.token(memo, &auth.client_token),
            accessor: self.accessor(memo, &auth.accessor),
            display_name: &auth.display_name,
            policies: &auth.policies,
            token_policies: &auth.token_policies,
            metadata: &auth.metadata,
            entity_id: &auth.entity_id,
            token_type: if auth.token_type.is_empty() {
                "default"
            } else {
                &auth.token_type
            },
            token_ttl: auth.token_ttl,
            token_issue_time: auth.token_issue_time.map(rfc3339_text),
        };
        let request_out = RequestOut {
            id: &req.id,
            operation: &req.operation,
            mount_point: &req.mount_point,
            mount_type: &req.mount_type,
            mount_accessor: &req.mount_accessor,
            client_token: self.token(memo, &req.client_token),
            client_token_accessor: self.accessor(memo, &req.client_token_accessor),
            namespace: NamespaceOut { id: "root" },
            path: &req.path,
            data: self.data(match entry.request_data {
                Some(map) => Data::Object(map),
                None => Data::Value(&req.data),
            }),
            data_elided: entry.elided.map(|e| ElidedOut {
                bytes: e.json.len(),
                hmac: memo.elided(&self.key, &e.json),
                strings: e.strings,
            }),
            remote_address: &req.remote_address,
            remote_port: req.remote_port,
        };
        let mut auth = Vec::with_capacity(512);
        serde_json::to_writer(&mut auth, &auth_out)?;
        let mut request = Vec::with_capacity(512);
        serde_json::to_writer(&mut request, &request_out)?;
        Ok(Blocks { auth, request })
    }

    /// The entry's object around its serialised blocks, members in Vault's
    /// order: `time`, `type`, `auth`, `request`, then `response` and `error`
    /// when there are any.
    fn assemble(&self, entry: &Entry<'_>, blocks: &Blocks) -> Result<Vec<u8>, serde_json::Error> {
        let req = entry.request;
        let response_out = match entry.kind {
            Kind::Request => None,
            Kind::Response => {
                let resp = entry.response.unwrap_or(ResponseView {
                    data: Data::Value(&NULL),
                    warnings: &[],
                    redirect: "",
                    wrap_info: None,
                });
                Some(ResponseOut {
                    mount_point: &req.mount_point,
                    mount_type: &req.mount_type,
                    mount_accessor: &req.mount_accessor,
                    data: self.data(resp.data),
                    warnings: resp.warnings,
                    redirect: resp.redirect,
                    wrap_info: resp.wrap_info.map(|info| self.wrap_info(info)),
                })
            }
        };
        let time = rfc3339_nano_text(entry.time);
        let mut buf = Vec::with_capacity(blocks.auth.len() + 2 * blocks.request.len() + 256);
        buf.extend_from_slice(b"{\"time\":");
        serde_json::to_writer(&mut buf, time.as_str())?;
        buf.extend_from_slice(b",\"type\":");
        serde_json::to_writer(&mut buf, entry.kind.as_str())?;
        buf.extend_from_slice(b",\"auth\":");
        buf.extend_from_slice(&blocks.auth);
        buf.extend_from_slice(b",\"request\":");
        buf.extend_from_slice(&blocks.request);
        if let Some(response) = &response_out {
            buf.extend_from_slice(b",\"response\":");
            serde_json::to_writer(&mut buf, response)?;
        }
        if let Some(error) = entry.error.filter(|e| !e.is_empty()) {
            buf.extend_from_slice(b",\"error\":");
            serde_json::to_writer(&mut buf, error)?;
        }
        buf.push(b'}');
        Ok(buf)
    }
}

/// An entry's `auth` and `request` blocks as JSON, shared by the request
/// entry and the response entry of one request.
struct Blocks {
    auth: Vec<u8>,
    request: Vec<u8>,
}

/// Whether `b` has `a`'s `auth` and `request` blocks: the same token and
/// request objects.
fn shared_blocks(a: &Entry<'_>, b: &Entry<'_>) -> bool {
    let same_auth = match (a.auth, b.auth) {
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        (None, None) => true,
        _ => false,
    };
    let same_elided = match (a.elided, b.elided) {
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        (None, None) => true,
        _ => false,
    };
    let same_data = match (a.request_data, b.request_data) {
        (Some(x), Some(y)) => std::ptr::eq(x, y),
        (None, None) => true,
        _ => false,
    };
    same_auth && same_elided && same_data && std::ptr::eq(a.request, b.request)
}

/// A string member written in clear or as its HMAC.
#[derive(Clone, Copy)]
enum Text<'a> {
    Clear(&'a str),
    Hashed(Hashed),
}

impl Text<'_> {
    fn is_empty(&self) -> bool {
        matches!(self, Text::Clear(s) if s.is_empty())
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Clear(t) => s.serialize_str(t),
            Text::Hashed(h) => s.serialize_str(h.as_str()),
        }
    }
}

/// Request or response data, written with every string (at any depth,
/// object keys excepted) replaced by its HMAC unless `log_raw`. Vault leaves
/// its own `time.Time` values in clear; in JSON data a timestamp is only a
/// string, and a client's secret may look like one, so every string is hashed.
struct DataOut<'a> {
    data: Data<'a>,
    fmt: &'a Formatter,
}

impl Serialize for DataOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.data {
            Data::Value(v) => HashedValue(v, self.fmt).serialize(s),
            Data::Object(map) => HashedMap(map, self.fmt).serialize(s),
            Data::Wrapped(v) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("value", &HashedValue(v, self.fmt))?;
                map.end()
            }
        }
    }
}

/// Serialises like `Value` does, strings hashed.
struct HashedValue<'a>(&'a Value, &'a Formatter);

impl Serialize for HashedValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fmt = self.1;
        match self.0 {
            Value::String(text) if !fmt.options.log_raw => {
                s.serialize_str(fmt.data_string(text).as_str())
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&HashedValue(item, fmt))?;
                }
                seq.end()
            }
            Value::Object(map) => HashedMap(map, fmt).serialize(s),
            other => other.serialize(s),
        }
    }
}

/// Serialises like `Map` does, strings of the values hashed.
struct HashedMap<'a>(&'a Map<String, Value>, &'a Formatter);

impl Serialize for HashedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            out.serialize_entry(k, &HashedValue(v, self.1))?;
        }
        out.end()
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_port(v: &u16) -> bool {
    *v == 0
}

#[derive(Serialize)]
struct AuthOut<'a> {
    #[serde(skip_serializing_if = "Text::is_empty")]
    client_token: Text<'a>,
    #[serde(skip_serializing_if = "Text::is_empty")]
    accessor: Text<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    display_name: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    policies: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    token_policies: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    entity_id: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    token_ttl: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_issue_time: Option<TimeText>,
}

#[derive(Serialize)]
struct NamespaceOut {
    id: &'static str,
}

#[derive(Serialize)]
struct RequestOut<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    operation: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_point: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_accessor: &'a str,
    #[serde(skip_serializing_if = "Text::is_empty")]
    client_token: Text<'a>,
    #[serde(skip_serializing_if = "Text::is_empty")]
    client_token_accessor: Text<'a>,
    namespace: NamespaceOut,
    #[serde(skip_serializing_if = "str::is_empty")]
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_elided: Option<ElidedOut>,
    #[serde(skip_serializing_if = "str::is_empty")]
    remote_address: &'a str,
    #[serde(skip_serializing_if = "is_zero_port")]
    remote_port: u16,
}

/// What stands for data left out (`ElidedData`): its compact JSON's
/// length, its HMAC (always, even with `log_raw`: the data was left out to
/// bound the log, not to hide it) and its count of strings.
#[derive(Serialize)]
struct ElidedOut {
    bytes: usize,
    hmac: Hashed,
    strings: usize,
}

#[derive(Serialize)]
struct ResponseOut<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_point: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    mount_accessor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    redirect: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wrap_info: Option<WrapInfoOut<'a>>,
}

/// A wrapped reply's `wrap_info`, its token and accessors hashed as the
/// request's are.
#[derive(Serialize)]
struct WrapInfoOut<'a> {
    token: Text<'a>,
    accessor: Text<'a>,
    ttl: u64,
    creation_time: &'a str,
    creation_path: &'a str,
    #[serde(skip_serializing_if = "Text::is_empty")]
    wrapped_accessor: Text<'a>,
}
