//! The formatter as it was before memoized hashing and hashing while
//! serialising: a hashed deep copy of the data, every token hashed where
//! it appears, `hex::encode`, `format!` timestamps.

use std::collections::BTreeMap;

use ring::hmac;
use serde::Serialize;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

use crate::audit::format::{
    AuditRecord, AuthInfo, FormatOptions, Kind, NamespaceOut, ResponseInfo, is_zero, is_zero_port,
};

fn hash_with(key: &hmac::Key, s: &str) -> String {
    let tag = hmac::sign(key, s.as_bytes());
    format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
}

fn hash_strings(v: &mut Value, key: &hmac::Key) {
    match v {
        Value::String(s) => *s = hash_with(key, s),
        Value::Array(items) => items.iter_mut().for_each(|i| hash_strings(i, key)),
        Value::Object(map) => map.values_mut().for_each(|i| hash_strings(i, key)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(super) fn rfc3339_nano(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let offset = t.offset().whole_minutes();
    if offset == 0 {
        out.push('Z');
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", abs / 60, abs % 60));
    }
    out
}

#[derive(Serialize)]
struct EntryOut<'a> {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    auth: AuthOut<'a>,
    request: RequestOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<ResponseOut<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
}

#[derive(Serialize)]
struct AuthOut<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    client_token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    accessor: String,
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
    #[serde(skip_serializing_if = "String::is_empty")]
    token_issue_time: String,
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
    #[serde(skip_serializing_if = "String::is_empty")]
    client_token: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_token_accessor: String,
    namespace: NamespaceOut,
    #[serde(skip_serializing_if = "str::is_empty")]
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "str::is_empty")]
    remote_address: &'a str,
    #[serde(skip_serializing_if = "is_zero_port")]
    remote_port: u16,
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
    data: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    redirect: String,
}

pub(super) fn format_record(record: &AuditRecord, salt: &[u8], options: FormatOptions) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, salt);
    let hash = |s: &str| -> String {
        if options.log_raw || s.is_empty() {
            s.to_owned()
        } else {
            hash_with(&key, s)
        }
    };
    let hash_accessor = |s: &str| -> String {
        if options.hmac_accessor {
            hash(s)
        } else {
            s.to_owned()
        }
    };
    let data = |v: &Value| -> Option<Value> {
        let mut v = match v {
            Value::Null => return None,
            Value::Object(m) if m.is_empty() => return None,
            other => other.clone(),
        };
        if !options.log_raw {
            hash_strings(&mut v, &key);
        }
        Some(v)
    };
    let default_auth = AuthInfo::default();
    let auth = record.auth.as_ref().unwrap_or(&default_auth);
    let req = &record.request;
    let entry = EntryOut {
        time: rfc3339_nano(record.time),
        kind: record.kind.as_str(),
        auth: AuthOut {
            client_token: hash(&auth.client_token),
            accessor: hash_accessor(&auth.accessor),
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
            token_issue_time: auth.token_issue_time.map(rfc3339).unwrap_or_default(),
        },
        request: RequestOut {
            id: &req.id,
            operation: &req.operation,
            mount_point: &req.mount_point,
            mount_type: &req.mount_type,
            mount_accessor: &req.mount_accessor,
            client_token: hash(&req.client_token),
            client_token_accessor: hash_accessor(&req.client_token_accessor),
            namespace: NamespaceOut { id: "root" },
            path: &req.path,
            data: data(&req.data),
            remote_address: &req.remote_address,
            remote_port: req.remote_port,
        },
        response: match record.kind {
            Kind::Request => None,
            Kind::Response => {
                let default_response = ResponseInfo::default();
                let resp = record.response.as_ref().unwrap_or(&default_response);
                Some(ResponseOut {
                    mount_point: &req.mount_point,
                    mount_type: &req.mount_type,
                    mount_accessor: &req.mount_accessor,
                    data: data(&resp.data),
                    warnings: resp.warnings.clone(),
                    redirect: resp.redirect.clone(),
                })
            }
        },
        error: record.error.as_deref().unwrap_or(""),
    };
    serde_json::to_vec(&entry).unwrap()
}
