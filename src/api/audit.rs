//! The audit hook of the request path, and `sys/audit`, `sys/audit-hash`.
//!
//! A request is written to the audit devices after it is authorized; its
//! response is written before the reply leaves. If no enabled device can
//! record either, the request fails (fail closed), except sealing
//! ([`may_go_unrecorded`]). A refused request is recorded with its error
//! (one entry, one wait). With no device enabled the hook costs nothing (no
//! copies are made). Entries borrow the request's parts and the reply
//! (nothing is copied to build them), and each device hashes the token and
//! accessor once per request ([`Session`]).
//!
//! # Bounded before authorization
//!
//! Every string of request data becomes a 76-byte HMAC, in the request
//! entry and again in the response entry. A client that is not authorized
//! (a login, which needs no token, or a refused or denied request) must not
//! be able to turn a body of empty strings into fifty times its size of
//! log: its data is written only within [`UNAUTHORIZED_DATA_BYTES`] and
//! [`UNAUTHORIZED_DATA_STRINGS`], and beyond them left out, an
//! `ElidedData` (size, string count, HMAC of the whole) standing for it in
//! both entries ([`bounded`]). Authorized requests are written in full.
//!
//! # One sync per request that changes nothing
//!
//! A request that changes state (key creation, including an encrypt or
//! `keys/:name` write that would create its key, rotation, configuration,
//! trimming, deletion, backup, restore, token and login paths, every `sys/`
//! path, and any request of a use-limited token) is served only once its
//! request entry is durable, and answered once its response entry is: two
//! syncs, as before. Nothing it changes can then be missing from the log.
//!
//! A request that changes nothing (the route table,
//! [`Endpoint::changes_nothing`](super::endpoint::Endpoint::changes_nothing),
//! says which: encrypt with a key
//! that exists and cannot be deleted, decrypt, rewrap, sign, verify, hmac,
//! hash, random, datakey, key reads and lists, exports, config reads) is
//! served first: its request entry is held back, and handed to each device
//! together with the response entry as one message that the device's writer
//! puts in one batch (one write, one `fdatasync`) or not at all. The reply
//! waits for that and is discarded (500) unless some device recorded both.
//! This is sound because the reply is the request's only effect: nothing
//! leaves before both entries are durable, and nothing is changed that an
//! entry would have had to precede. What differs is only that a request
//! that dies meanwhile (a crash, a disconnect) may leave no entry; it left
//! nothing else either (if its future is dropped, the request entry is
//! queued anyway).
//!
//! Queuing the request entry as soon as it is known and waiting for both
//! acknowledgements would keep the request on record a little earlier, but
//! the writer then often syncs the request entry alone, just before the
//! response entry arrives: two syncs in a row again for a lone client.
//! Acknowledging request entries after `write` (before `fdatasync`) was not
//! chosen either: a state change could then outlive a crash that its request
//! entry does not, and after a failed `fdatasync` the written bytes can
//! neither be trusted nor taken back.
//!
//! Whether the key exists is read from this node's cache before the handler
//! runs. An encrypt classified on a key that is deleted between that check
//! and the handler's own lookup would create the key unrecorded; keys that
//! can be deleted (`deletion_allowed`) are therefore always treated as
//! changing state, so the race needs a configuration change and a deletion
//! both completing (each with its own durable entry) within that window.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::Op;
use super::route::{Route, Routed};
use super::sys::SysPath;
use crate::audit::format::{Data, ElidedData, Entry, ResponseView};
use crate::audit::{AuditError, AuthInfo, Kind, Pending, RequestInfo, Session};
use crate::auth::token::TokenEntry;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::Unsealed;

pub struct Audit {
    unsealed: Option<Arc<Unsealed>>,
    auth: Option<AuthInfo>,
    request: RequestInfo,
    /// Per-device token HMACs and request-entry outcomes of this request.
    session: Session,
    /// When a deferred request entry is held back (see
    /// [`Audit::request_deferred`]): the time it records.
    deferred: Option<OffsetDateTime>,
    /// The request's data when it is not in `request.data`.
    data: DataElsewhere,
    /// This request may be served without a record ([`may_go_unrecorded`]).
    may_go_unrecorded: bool,
    /// It was: why no device recorded its request entry.
    unrecorded: Option<String>,
}

/// The request's data where `request.data` (then null) does not hold it.
#[derive(Default)]
struct DataElsewhere {
    /// Shared with the handler's parameters (not copied: a batch's items
    /// are written from where the handler reads them).
    shared: Option<Arc<Map<String, Value>>>,
    /// Left out ([`bounded`]): what stands for it.
    elided: Option<ElidedData>,
}

/// Request data enters the log in full only once the request is
/// authenticated and authorized. Before that (a login, a refused or denied
/// request) it is written only while it stays under these bounds (every
/// string value becomes a 76-byte HMAC, in the request entry and again in
/// the response entry: `""` would cost 25 times its size, twice); beyond
/// them it is left out, and an [`ElidedData`] (size, string count, HMAC of
/// the whole) stands for it. Far above any real login body (a password, a
/// role ID and a secret ID).
const UNAUTHORIZED_DATA_BYTES: usize = 4 << 10;
const UNAUTHORIZED_DATA_STRINGS: usize = 16;

/// `data` if it is within the bounds for a request not (yet) authorized,
/// otherwise null and what stands for it.
fn bounded(data: Value) -> (Value, Option<ElidedData>) {
    let strings = string_values(&data);
    // Serialising `Value` cannot fail (its keys are strings).
    let json = serde_json::to_vec(&data).unwrap_or_default();
    if strings <= UNAUTHORIZED_DATA_STRINGS && json.len() <= UNAUTHORIZED_DATA_BYTES {
        (data, None)
    } else {
        (Value::Null, Some(ElidedData { json, strings }))
    }
}

/// String values at any depth (object keys not counted: they are written
/// in clear, so the byte bound covers them).
fn string_values(v: &Value) -> usize {
    match v {
        Value::String(_) => 1,
        Value::Array(items) => items.iter().map(string_values).sum(),
        Value::Object(map) => map.values().map(string_values).sum(),
        _ => 0,
    }
}

/// The one request served even when no audit device can record it: sealing
/// (which needs `sudo`, as authorized by then). It only reduces exposure:
/// a sealed server serves nothing, and a server whose devices all fail
/// serves nothing else either. Everything else fails closed.
fn may_go_unrecorded(request: &Routed) -> bool {
    matches!(request.route, Route::Sys(SysPath::Seal)) && request.op == Op::Update
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

/// The mount an entry names: point, type and accessor (empty where the path
/// is in no mount).
fn mount_of(route: &Route) -> (String, String, String) {
    match route {
        Route::Sys(_) => ("sys/".into(), "system".into(), "system".into()),
        Route::Token(_) => ("auth/token/".into(), "token".into(), "auth_token".into()),
        Route::Login { method, .. } => (
            format!("auth/{}/", method.entry.path),
            method.entry.kind.name().into(),
            method.entry.accessor.clone(),
        ),
        Route::Transit { mount, .. } => (
            format!("{}/", mount.path),
            "transit".into(),
            mount.accessor.clone(),
        ),
        Route::Nowhere => (String::new(), String::new(), String::new()),
    }
}

static NULL: Value = Value::Null;

/// A request entry (or a refusal), borrowing the request's parts.
fn request_entry<'a>(
    auth: &'a Option<AuthInfo>,
    request: &'a RequestInfo,
    data: &'a DataElsewhere,
    time: OffsetDateTime,
    error: Option<&'a str>,
) -> Entry<'a> {
    Entry {
        kind: Kind::Request,
        time,
        auth: auth.as_ref(),
        request,
        request_data: data.shared.as_deref(),
        response: None,
        error,
        elided: data.elided.as_ref(),
    }
}

impl Audit {
    pub fn begin(
        unsealed: &Arc<Unsealed>,
        token: Option<(&str, &TokenEntry)>,
        request: &Routed,
        params: &Params,
        peer: Option<SocketAddr>,
    ) -> Self {
        if unsealed.audit.broker.is_empty() {
            return Self {
                unsealed: None,
                auth: None,
                request: RequestInfo::default(),
                session: Session::default(),
                deferred: None,
                data: DataElsewhere::default(),
                may_go_unrecorded: false,
                unrecorded: None,
            };
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (mount_point, mount_type, mount_accessor) = mount_of(&request.route);
        // Without a token (a login): bounded now. With one: in full, unless
        // authorization refuses it (`refused`).
        let (data, shared, elided) = match token {
            None => {
                let (data, elided) = bounded(params.to_value());
                (data, None, elided)
            }
            Some(_) => (Value::Null, Some(params.shared()), None),
        };
        let may_go_unrecorded = may_go_unrecorded(request);
        let request = RequestInfo {
            id: crate::response::new_request_id(),
            operation: operation(request.op).to_owned(),
            mount_point,
            mount_type,
            mount_accessor,
            client_token: token.map(|(t, _)| t.to_owned()).unwrap_or_default(),
            client_token_accessor: token.map(|(_, e)| e.accessor.clone()).unwrap_or_default(),
            path: request.path.clone(),
            data,
            remote_address: peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            remote_port: peer.map_or(0, |p| p.port()),
        };
        Self {
            unsealed: Some(Arc::clone(unsealed)),
            auth: token.map(|(t, e)| auth_info(t, e, now)),
            request,
            session: Session::default(),
            deferred: None,
            data: DataElsewhere { shared, elided },
            may_go_unrecorded,
            unrecorded: None,
        }
    }

    /// Whether any device is configured (otherwise every call is free).
    pub fn is_on(&self) -> bool {
        self.unsealed.is_some()
    }

    /// The request is refused for want of a record. Logged per request at
    /// debug level only: the broker logs each device's failure once, when
    /// it starts failing.
    fn refuse(&self, e: &AuditError) -> ApiError {
        tracing::debug!(error = %e, path = %self.request.path, "audit log failed; request refused");
        ApiError::Internal("no audit device could record the request".to_owned())
    }

    /// Queues the request entry (or a refusal).
    fn submit_request(&mut self, unsealed: &Unsealed, error: Option<&str>) -> Pending {
        let entry = request_entry(
            &self.auth,
            &self.request,
            &self.data,
            OffsetDateTime::now_utc(),
            error,
        );
        unsealed.audit.broker.submit(&[&entry], &mut self.session)
    }

    /// The request, durable before it is served. Only a request that may go
    /// unrecorded ([`may_go_unrecorded`]) is served when no device recorded
    /// it; the server log says so every time, and its reply carries a
    /// warning.
    pub async fn request(&mut self) -> ApiResult<()> {
        let Some(unsealed) = self.unsealed.clone() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let pending = self.submit_request(&unsealed, None);
        let outcome = pending.wait(&mut self.session).await;
        recorded(Kind::Request, started, outcome.is_ok());
        match outcome {
            Ok(()) => Ok(()),
            Err(e) if self.may_go_unrecorded => {
                tracing::error!(error = %e, path = %self.request.path, "no audit device could record this request; served all the same, as sealing only reduces exposure");
                self.unrecorded = Some(e.to_string());
                Ok(())
            }
            Err(e) => Err(self.refuse(&e)),
        }
    }

    /// The request of one that changes nothing (`super::changes_nothing`): its
    /// entry is held back and handed to the devices together with the
    /// response entry by [`Audit::response`], as one message that each device
    /// writes in one batch (one sync) or not at all, and the reply waits for
    /// it. (Queued now instead, the entry would often be synced alone, just
    /// before the response entry arrives: two syncs again.) Refused at once
    /// when no device is open. If the request never reaches
    /// [`Audit::response`] (its future dropped: the client went away, a
    /// panic), the entry is queued on drop.
    pub async fn request_deferred(&mut self) -> ApiResult<()> {
        let Some(unsealed) = self.unsealed.clone() else {
            return Ok(());
        };
        if !unsealed.audit.broker.can_record() {
            return self.request().await;
        }
        self.deferred = Some(OffsetDateTime::now_utc());
        Ok(())
    }

    /// A request refused before it was served: recorded with its error,
    /// its data bounded as a login's is (the caller is not authorized).
    pub async fn refused(mut self, error: ApiError) -> ApiResult<(Reply, Vec<String>)> {
        if let Some(unsealed) = self.unsealed.clone() {
            if self.data.elided.is_none() {
                let data = match self.data.shared.take() {
                    Some(shared) => Value::Object(Arc::unwrap_or_clone(shared)),
                    None => std::mem::take(&mut self.request.data),
                };
                (self.request.data, self.data.elided) = bounded(data);
            }
            let message = error.to_string();
            let started = std::time::Instant::now();
            let pending = self.submit_request(&unsealed, Some(&message));
            let outcome = pending.wait(&mut self.session).await;
            recorded(Kind::Request, started, outcome.is_ok());
            // The refusal stands whether or not it could be recorded.
            if let Err(e) = outcome {
                let _ = self.refuse(&e);
            }
        }
        Err(error)
    }

    /// The outcome, before the reply leaves. A deferred request entry is
    /// waited for here too: the reply is discarded (500) unless both entries
    /// were recorded.
    pub async fn response(
        mut self,
        result: ApiResult<(Reply, Vec<String>)>,
    ) -> ApiResult<(Reply, Vec<String>)> {
        let Some(unsealed) = self.unsealed.clone() else {
            return result;
        };
        let error_text;
        // A reply that issued a token is recorded with that token's `auth`
        // and the block in its data (a copy: rare, small).
        let issued;
        let with_auth;
        let (auth, data, warnings, error) = match &result {
            Ok((reply, _)) => match &reply.auth {
                Some(block) => {
                    let mut data = match &reply.data {
                        Some(Value::Object(m)) => m.clone(),
                        Some(other) => Map::from_iter([("value".to_owned(), other.clone())]),
                        None => Map::new(),
                    };
                    data.insert("auth".to_owned(), block.clone());
                    with_auth = Value::Object(data);
                    issued = issued_auth(block);
                    (
                        Some(&issued),
                        Data::Value(&with_auth),
                        reply.warnings.as_slice(),
                        None,
                    )
                }
                None => {
                    let data = match &reply.data {
                        Some(v @ Value::Object(_)) => Data::Value(v),
                        Some(other) => Data::Wrapped(other),
                        None => Data::Value(&NULL),
                    };
                    (self.auth.as_ref(), data, reply.warnings.as_slice(), None)
                }
            },
            Err(e) => {
                error_text = e.messages().join("; ");
                (
                    self.auth.as_ref(),
                    Data::Value(&NULL),
                    &[][..],
                    Some(error_text.as_str()),
                )
            }
        };
        let entry = Entry {
            kind: Kind::Response,
            time: OffsetDateTime::now_utc(),
            auth,
            request: &self.request,
            request_data: self.data.shared.as_deref(),
            response: Some(ResponseView {
                data,
                warnings,
                redirect: "",
                wrap_info: result.as_ref().ok().and_then(|(r, _)| r.wrap_info.as_ref()),
            }),
            error,
            elided: self.data.elided.as_ref(),
        };
        let started = std::time::Instant::now();
        let deferred = self.deferred.is_some();
        let pending = match self.deferred.take() {
            Some(time) => {
                let request = request_entry(&self.auth, &self.request, &self.data, time, None);
                unsealed
                    .audit
                    .broker
                    .submit(&[&request, &entry], &mut self.session)
            }
            None => unsealed.audit.broker.submit(&[&entry], &mut self.session),
        };
        let outcome = pending.wait(&mut self.session).await;
        if deferred {
            recorded(Kind::Request, started, outcome.is_ok());
        }
        recorded(Kind::Response, started, outcome.is_ok());
        let why = match (outcome, self.unrecorded.take()) {
            (Ok(()), None) => return result,
            (Err(e), None) if !self.may_go_unrecorded => return Err(self.refuse(&e)),
            // Sealed, but its outcome is not on record: it stands all the same.
            (Err(e), None) => {
                tracing::error!(error = %e, path = %self.request.path, "no audit device could record the outcome of this request; it stands all the same, as sealing only reduces exposure");
                e.to_string()
            }
            (_, Some(why)) => why,
        };
        result.map(|(reply, unrecognized)| (unrecorded_reply(reply, &why), unrecognized))
    }
}

/// Vault's audit metrics: the time to record an entry on every device
/// (`vault_audit_log_request`, `_response`), and the entries no device
/// recorded (`..._failure`).
fn recorded(kind: Kind, started: std::time::Instant, ok: bool) {
    let m = crate::metrics::metrics();
    let millis = crate::metrics::millis_since(started);
    let (timer, failures) = match kind {
        Kind::Request => (&m.audit_request, &m.audit_request_failure),
        Kind::Response => (&m.audit_response, &m.audit_response_failure),
    };
    timer.record(millis);
    if !ok {
        failures.increment(1);
    }
}

/// A reply served without a complete audit record: a warning says so (a
/// reply that had no body gets one to carry it).
fn unrecorded_reply(mut reply: Reply, why: &str) -> Reply {
    reply.no_content = false;
    reply.warn(format!(
        "no audit device could record this request or its outcome ({why}); it was served \
         all the same because it only reduces exposure: fix or remove the failing devices"
    ))
}

impl Drop for Audit {
    fn drop(&mut self) {
        // A deferred request that was never answered (its future dropped): on
        // record all the same, without waiting.
        if let (Some(time), Some(unsealed)) = (self.deferred.take(), self.unsealed.clone()) {
            let entry = request_entry(&self.auth, &self.request, &self.data, time, None);
            drop(unsealed.audit.broker.submit(&[&entry], &mut self.session));
        }
    }
}

/// `sys/audit`: every enabled device, and why a failing one fails.
pub(crate) fn devices(unsealed: &Unsealed) -> ApiResult<Reply> {
    let mut data = Map::new();
    for d in unsealed.audit.devices()? {
        let mut listed = json!({
            "type": d.kind,
            "description": d.description,
            "options": d.options,
            "path": d.path,
            "local": false,
        });
        // Only for a failing device, so the listing keeps Vault's shape.
        if let Some(failing) = unsealed.audit.broker.failing(&d.path) {
            listed["failing"] = json!({
                "since": failing.since.map(crate::audit::format::rfc3339_nano),
                "error": failing.error,
            });
        }
        data.insert(d.path.clone(), listed);
    }
    Ok(Reply::mirrored(Value::Object(data)))
}

/// `sys/audit-hash/:path`: what a device would write for `input`.
pub(crate) fn hash(unsealed: &Unsealed, path: &str, p: &Params) -> ApiResult<Reply> {
    let input = p.string("input")?.unwrap_or_default();
    let hash = unsealed
        .audit
        .broker
        .hash(path, &input)
        .ok_or_else(|| ApiError::bad(format!("unknown audit backend {path}")))?;
    Ok(Reply::mirrored(json!({ "hash": hash })))
}

/// `sys/audit/:path`: enable (update) or disable (delete) a device.
pub(crate) fn enable_or_disable(
    unsealed: &Unsealed,
    op: Op,
    path: &str,
    p: &Params,
) -> ApiResult<Reply> {
    match op {
        Op::Update => {
            let kind = p.string("type")?.unwrap_or_default();
            if !matches!(kind.as_str(), "file" | "stdout") {
                return Err(ApiError::bad(format!(
                    "transitd supports the file and stdout audit devices, not {kind:?}"
                )));
            }
            let description = p.string("description")?.unwrap_or_default();
            // The bao CLI sends `local: false`; a local device is not supported.
            super::unsupported::refuse_unless_default(p, &["local"])?;
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
            // Removing a failing device (a full disk) is what the operator
            // is expected to do: it succeeds, and says what it leaves.
            let failing = unsealed.audit.broker.failing(path);
            unsealed.audit.disable(path)?;
            Ok(match failing {
                None => Reply::no_content(),
                Some(f) => Reply::data(Value::Null).warn(format!(
                    "the device was failing ({}); it is removed, and its log may end \
                     without a final checkpoint",
                    f.error
                )),
            })
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

#[cfg(test)]
mod tests;
