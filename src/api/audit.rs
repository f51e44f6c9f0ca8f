//! The audit hook of the request path, and `sys/audit`, `sys/audit-hash`.
//!
//! A request is written to the audit devices after it is authorized and
//! before anything is done; its response is written before the reply leaves.
//! If no enabled device can record either, the request fails (fail closed). A
//! refused request is recorded with its error. With no device enabled the
//! hook costs nothing (no copies are made).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::Op;
use crate::audit::{AuditRecord, AuthInfo, Kind, RequestInfo, ResponseInfo};
use crate::auth::token::TokenEntry;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::Unsealed;

pub struct Audit {
    unsealed: Option<Arc<Unsealed>>,
    auth: Option<AuthInfo>,
    request: RequestInfo,
}

fn operation(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Update => "update",
        Op::Delete => "delete",
        Op::List => "list",
    }
}

fn auth_info(token: &str, entry: &TokenEntry, now: i64) -> AuthInfo {
    AuthInfo {
        client_token: token.to_owned(),
        accessor: entry.accessor.clone(),
        display_name: entry.display_name.clone(),
        policies: entry.policies.clone(),
        token_policies: entry.policies.clone(),
        metadata: entry.meta.clone(),
        entity_id: String::new(),
        token_type: "service".to_owned(),
        token_ttl: i64::try_from(entry.ttl_left(now)).unwrap_or(0),
        token_issue_time: OffsetDateTime::from_unix_timestamp(entry.creation_time).ok(),
    }
}

/// The `auth` block of a reply that issued a token, as an audit `auth`.
fn issued_auth(block: &Value) -> AuthInfo {
    let text = |k: &str| block[k].as_str().unwrap_or_default().to_owned();
    let list = |k: &str| {
        block[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let metadata: BTreeMap<String, String> = block["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    AuthInfo {
        client_token: text("client_token"),
        accessor: text("accessor"),
        display_name: String::new(),
        policies: list("policies"),
        token_policies: list("token_policies"),
        metadata,
        entity_id: String::new(),
        token_type: "service".to_owned(),
        token_ttl: block["lease_duration"].as_i64().unwrap_or(0),
        token_issue_time: None,
    }
}

fn mount_of(unsealed: &Unsealed, path: &str) -> (String, String, String) {
    if path.starts_with("sys/") {
        return ("sys/".into(), "system".into(), "system".into());
    }
    if path.starts_with("auth/token/") {
        return ("auth/token/".into(), "token".into(), "auth_token".into());
    }
    if let Some(inside) = path.strip_prefix("auth/") {
        if let Ok(Some((m, _))) = unsealed.methods.resolve(inside) {
            return (
                format!("auth/{}/", m.entry.path),
                m.entry.kind.clone(),
                m.entry.accessor.clone(),
            );
        }
        return (String::new(), String::new(), String::new());
    }
    match unsealed.resolve(path) {
        Ok(Some((m, _))) => (format!("{}/", m.path), "transit".into(), m.accessor.clone()),
        _ => (String::new(), String::new(), String::new()),
    }
}

impl Audit {
    pub fn begin(
        unsealed: &Arc<Unsealed>,
        token: Option<(&str, &TokenEntry)>,
        op: Op,
        path: &str,
        params: &Params,
        peer: Option<SocketAddr>,
    ) -> Self {
        if unsealed.audit.broker.is_empty() {
            return Self {
                unsealed: None,
                auth: None,
                request: RequestInfo::default(),
            };
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (mount_point, mount_type, mount_accessor) = mount_of(unsealed, path);
        let request = RequestInfo {
            id: uuid::Uuid::new_v4().to_string(),
            operation: operation(op).to_owned(),
            mount_point,
            mount_type,
            mount_accessor,
            client_token: token.map(|(t, _)| t.to_owned()).unwrap_or_default(),
            client_token_accessor: token.map(|(_, e)| e.accessor.clone()).unwrap_or_default(),
            path: path.to_owned(),
            data: params.to_value(),
            remote_address: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            remote_port: peer.map_or(0, |p| p.port()),
        };
        Self {
            unsealed: Some(Arc::clone(unsealed)),
            auth: token.map(|(t, e)| auth_info(t, e, now)),
            request,
        }
    }

    async fn write(&self, record: AuditRecord) -> ApiResult<()> {
        let Some(unsealed) = &self.unsealed else {
            return Ok(());
        };
        unsealed.audit.broker.log(&record).await.map_err(|e| {
            tracing::error!(error = %e, path = %record.request.path, "audit log failed; request refused");
            ApiError::Internal("no audit device could record the request".to_owned())
        })
    }

    fn record(
        &self,
        kind: Kind,
        response: Option<ResponseInfo>,
        error: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            kind,
            time: OffsetDateTime::now_utc(),
            auth: self.auth.clone(),
            request: self.request.clone(),
            response,
            error,
        }
    }

    /// The request, before it is served.
    pub async fn request(&mut self) -> ApiResult<()> {
        if self.unsealed.is_none() {
            return Ok(());
        }
        self.write(self.record(Kind::Request, None, None)).await
    }

    /// A request refused before it was served: recorded with its error.
    pub async fn refused(self, error: ApiError) -> ApiResult<(Reply, Vec<String>)> {
        if self.unsealed.is_some() {
            let record = self.record(Kind::Request, None, Some(error.to_string()));
            // The refusal stands whether or not it could be recorded.
            let _ = self.write(record).await;
        }
        Err(error)
    }

    /// The outcome, before the reply leaves.
    pub async fn response(
        self,
        result: ApiResult<(Reply, Vec<String>)>,
    ) -> ApiResult<(Reply, Vec<String>)> {
        if self.unsealed.is_none() {
            return result;
        }
        let record = match &result {
            Ok((reply, _)) => {
                let mut data = match &reply.data {
                    Some(Value::Object(m)) => m.clone(),
                    Some(other) => Map::from_iter([("value".to_owned(), other.clone())]),
                    None => Map::new(),
                };
                let mut record_auth = self.auth.clone();
                if let Some(block) = &reply.auth {
                    record_auth = Some(issued_auth(block));
                    data.insert("auth".to_owned(), block.clone());
                }
                let response = ResponseInfo {
                    data: Value::Object(data),
                    warnings: reply.warnings.clone(),
                    redirect: String::new(),
                };
                let mut record = self.record(Kind::Response, Some(response), None);
                record.auth = record_auth;
                record
            }
            Err(e) => self.record(
                Kind::Response,
                Some(ResponseInfo::default()),
                Some(e.messages().join("; ")),
            ),
        };
        self.write(record).await?;
        result
    }
}

/// `sys/audit`, `sys/audit/:path`, `sys/audit-hash/:path`.
pub fn sys(unsealed: &Unsealed, op: Op, rest: &str, p: &Params) -> ApiResult<Reply> {
    if rest == "audit" {
        if op != Op::Read {
            return Err(ApiError::UnsupportedOperation);
        }
        let mut data = Map::new();
        for d in unsealed.audit.devices()? {
            data.insert(
                d.path.clone(),
                json!({
                    "type": d.kind,
                    "description": d.description,
                    "options": d.options,
                    "path": d.path,
                    "local": false,
                }),
            );
        }
        return Ok(Reply::mirrored(Value::Object(data)));
    }
    if let Some(path) = rest.strip_prefix("audit-hash/") {
        if op != Op::Update {
            return Err(ApiError::UnsupportedOperation);
        }
        let input = p.string("input")?.unwrap_or_default();
        let hash = unsealed
            .audit
            .broker
            .hash(path, &input)
            .ok_or_else(|| ApiError::bad(format!("unknown audit backend {path}")))?;
        return Ok(Reply::mirrored(json!({ "hash": hash })));
    }
    let path = rest.trim_start_matches("audit/");
    match op {
        Op::Update => {
            let kind = p.string("type")?.unwrap_or_default();
            if !matches!(kind.as_str(), "file" | "stdout") {
                return Err(ApiError::bad(format!(
                    "transitd supports the file and stdout audit devices, not {kind:?}"
                )));
            }
            let description = p.string("description")?.unwrap_or_default();
            let _ = p.has("local");
            let mut options = BTreeMap::new();
            match p.raw("options") {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        options.insert(k.clone(), v);
                    }
                }
                Some(_) => return Err(ApiError::bad("options must be a map")),
            }
            if kind == "stdout" {
                options.insert("file_path".to_owned(), "stdout".to_owned());
            }
            unsealed.audit.enable(path, &kind, &description, options)?;
            Ok(Reply::no_content())
        }
        Op::Delete => {
            unsealed.audit.disable(path)?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}
