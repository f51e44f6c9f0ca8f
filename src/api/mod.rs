//! The request pipeline: every request to `/v1/...` is bounded, parsed into
//! a [`Routed`] (route.rs), authenticated, authorized, audited and served, in
//! that order, by [`handle`].
//!
//! Vault paths are routed by hand rather than by axum's router because mounts
//! are dynamic (any path, several segments) and Vault's answers for unknown
//! paths (404) and wrong methods (405) must come out exactly.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::auth::policy::Capability;
use crate::auth::token::TokenEntry;
use crate::error::{ApiError, ApiResult};
use crate::metrics::MetricsAccess;
use crate::request::{Budget, Params};
use crate::response::Reply;
use crate::serve::ClientTls;
use crate::state::{AppState, Mount, Unsealed};
use route::{Route, Routed};
use sys::SysPath;

mod audit;
mod batch;
mod byok;
mod crypt;
mod endpoint;
mod export;
mod generate_root;
mod headers;
mod hmac;
mod keys;
pub(crate) mod login;
mod misc;
mod names;
mod openapi;
mod rekey;
mod route;
mod sign;
pub(crate) mod sys;
mod token;
mod unsupported;
mod wrapping;

/// The operation a request asks for, as Vault names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Read,
    Update,
    Delete,
    List,
}

/// What every transit handler gets besides its parameters.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub mount: &'a Arc<Mount>,
    pub now: OffsetDateTime,
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    // Only a cert login reads it.
    let client = parts
        .extensions
        .get::<ClientTls>()
        .cloned()
        .unwrap_or(ClientTls::Plain);
    let access = parts
        .extensions
        .get::<MetricsAccess>()
        .copied()
        .unwrap_or_default();
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return ApiError::UnsupportedPath.into_response();
    };
    let path = match canonical_path(path) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let query = uri.query().unwrap_or("").to_owned();
    let started = std::time::Instant::now();
    let origin = Origin {
        peer,
        client,
        access,
    };
    let result = route(state, method, path, query, headers, body, origin).await;
    crate::metrics::metrics()
        .handle_request
        .record(crate::metrics::millis_since(started));
    match result {
        Ok((reply, unrecognized)) => reply.into_response_with(unrecognized),
        Err(e) => e.into_response(),
    }
}

/// Where a request came from: the client's address, the TLS side of its
/// connection, and what its listener opens to the public.
struct Origin {
    peer: Option<std::net::SocketAddr>,
    client: ClientTls,
    access: MetricsAccess,
}

async fn route(
    state: Arc<AppState>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Body,
    origin: Origin,
) -> ApiResult<(Reply, Vec<String>)> {
    let Origin {
        peer,
        client,
        access,
    } = origin;
    // Parsed before anything is known of the caller: the smallest budget.
    let query_params = Params::from_query_within(query.as_bytes(), state.limits.budget(true))?;
    let list_query = query_params.bool("list")?.unwrap_or(false);
    let op = match method.as_str() {
        "GET" if list_query => Op::List,
        "GET" | "HEAD" => Op::Read,
        "POST" | "PUT" => Op::Update,
        "DELETE" => Op::Delete,
        "LIST" => Op::List,
        _ => return Err(ApiError::UnsupportedOperation),
    };
    let mut request = Routed::parse(op, path, &state)?;
    let (presented, wrap_ttl) = match headers::check(&headers) {
        Ok(asked) => {
            if let Route::Sys(SysPath::Metrics {
                prometheus_accepted,
            }) = &mut request.route
            {
                *prometheus_accepted = asked.prometheus_accepted;
            }
            (asked.token, asked.wrap_ttl)
        }
        Err(refused) => return headers::refuse(&state, &request, refused, peer, access).await,
    };
    let budget = state.limits.budget(request.route.is_public(access));
    if let Route::Sys(sys_path) = &request.route
        && sys_path.served_unaudited(access)
    {
        let (params, _) = read_params(op, body, &headers, query_params, budget).await?;
        if let Some(refused) = request.refusal() {
            return Err(refused);
        }
        let reply = sys::serve(&state, op, sys_path, &params, None)?;
        return Ok((reply, Vec::new()));
    }
    // Logins, the wrapping lookup and root generation need no token.
    if request.route.is_public(access) {
        wrapping::refuse_public_wrapping(&request.route, wrap_ttl)?;
        let unsealed = state.unsealed()?;
        let (params, _) = read_params(op, body, &headers, query_params, budget).await?;
        // A bounded number of password hashes at a time (argon2id takes
        // 19 MiB each): a login flood queues instead of exhausting memory.
        // The wrapping lookup hashes nothing and takes no slot.
        let _permit = match request.route {
            Route::Login { .. } => Some(login_slot().await?),
            _ => None,
        };
        let mut audit = audit::Audit::begin(&unsealed, None, &request, &params, peer);
        audit.request().await?;
        let creation_path = request.path.clone();
        let timed = (request.timed_at(), request.capability());
        let started = std::time::Instant::now();
        let presented = presented.map(|t| zeroize::Zeroizing::new(t.to_owned()));
        let serving = Arc::clone(&unsealed);
        let result = off_workers(move || {
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let reply = serve_public(
                &serving,
                &request,
                presented.as_ref().map(|t| t.as_str()),
                &params,
                &client,
                now,
            )?;
            Ok((reply, params.unrecognized()))
        })
        .await;
        time_route(timed, started);
        let result = wrapping::wrap_result(&unsealed, creation_path, wrap_ttl, result).await;
        return audit.response(result).await;
    }
    // Sealing a sealed server is a no-op that needs no token (as in OpenBao).
    if matches!(request.route, Route::Sys(SysPath::Seal)) && op == Op::Update && state.is_sealed() {
        return Ok((Reply::no_content(), Vec::new()));
    }
    // Everything else needs the keys: 503 while sealed, before looking at the token.
    let unsealed = state.unsealed()?;
    // The API document without a token: Vault answers one of no paths.
    if presented.is_none() && matches!(request.route, Route::Sys(SysPath::OpenApi)) {
        let public = state.limits.budget(true);
        let (params, _) = read_params(op, body, &headers, query_params, public).await?;
        let mut audit = audit::Audit::begin(&unsealed, None, &request, &params, peer);
        audit.request().await?;
        let result = match request.refusal() {
            Some(refused) => Err(refused),
            None => sys::serve(&state, op, &SysPath::OpenApi, &params, None),
        };
        return audit
            .response(result.map(|r| (r, params.unrecognized())))
            .await;
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let known = presented
        .map(|t| Ok::<_, ApiError>((t, unsealed.tokens.lookup(t, now)?)))
        .transpose()?;
    let Some((presented, Some((id, entry)))) =
        known.map(|(t, found)| (t, found.filter(|(_, e)| token_method_alive(&unsealed, e))))
    else {
        // Unknown, expired or missing token: refused (before reading the
        // body), and on record as such.
        let audit = audit::Audit::begin(&unsealed, None, &request, &Params::default(), peer);
        return audit.refused(ApiError::PermissionDenied).await;
    };
    let (params, body) = read_params(op, body, &headers, query_params, budget).await?;
    let mut audit = audit::Audit::begin(
        &unsealed,
        Some((presented, &entry)),
        &request,
        &params,
        peer,
    );
    if let Err(denied) = authorize(&unsealed, &entry, &request, wrap_ttl) {
        return audit.refused(denied).await;
    }
    // Nothing happens unless the request is on record first (fail closed).
    // A request that changes nothing (and whose token's uses are not
    // counted) is served while its entry is being written: its reply waits
    // for both entries (one sync), and is discarded if either fails.
    if audit.is_on() && entry.num_uses == 0 && request.route.changes_nothing() {
        audit.request_deferred().await?;
    } else {
        audit.request().await?;
    }
    // A use-limited token pays one use per request (its last use revokes it).
    if entry.num_uses > 0 && !unsealed.tokens.use_once(&id)? {
        return Err(ApiError::PermissionDenied);
    }
    let caller = Caller { id, entry };
    let creation_path = request.path.clone();
    let served = Served {
        caller: &caller,
        presented,
        wrapping: wrap_ttl.is_some(),
        now,
    };
    let timed = (request.timed_at(), request.capability());
    let started = std::time::Instant::now();
    let result = authorized(&state, &unsealed, served, request, params, &body).await;
    time_route(timed, started);
    let result = wrapping::wrap_result(&unsealed, creation_path, wrap_ttl, result).await;
    audit.response(result).await
}

/// Vault's `vault_route_*` timer of a request served at its mount.
fn time_route(timed: (Option<route::TimedAt>, Capability), started: std::time::Instant) {
    if let (Some(at), capability) = timed {
        crate::metrics::metrics().route(at.place(), capability.as_str(), started);
    }
}

/// Who an authorized request is served for, and what it asked by header.
struct Served<'a> {
    caller: &'a Caller,
    presented: &'a str,
    /// Whether its reply is to be wrapped.
    wrapping: bool,
    now: i64,
}

/// An authenticated, authorized (and audited) request.
async fn authorized(
    state: &Arc<AppState>,
    unsealed: &Arc<Unsealed>,
    served: Served<'_>,
    request: Routed,
    params: Params<'static>,
    body: &Bytes,
) -> ApiResult<(Reply, Vec<String>)> {
    let Served {
        caller,
        presented,
        wrapping,
        now,
    } = served;
    let (state, unsealed) = (Arc::clone(state), Arc::clone(unsealed));
    if !request.route.still_current(&unsealed)? {
        return Err(ApiError::NoRoute(request.path));
    }
    if let Some(refused) = request.refusal() {
        return Err(refused);
    }
    // Key generation (RSA-4096 takes a while), password hashing and storage
    // writes (an fsync each) must not stall the async workers. (AEAD keys
    // created by encrypt's upsert are just random bytes, but stored.)
    let blocks = request.route.may_block() || body.len() > OFF_WORKERS_ABOVE;
    let op = request.op;
    let reply = match request.route {
        Route::Sys(SysPath::Wrapping(path)) => {
            wrapping::serve(&unsealed, presented, path, &params, wrapping, now)?
        }
        Route::Sys(path) => sys::serve(&state, op, &path, &params, Some(caller))?,
        Route::Token(path) => token::serve(&unsealed, caller, presented, path, &params, now)?,
        Route::Login { .. } => {
            return off_workers(move || {
                // A token's request: its connection's certificate counts for nothing.
                let reply = serve_login(&unsealed, &request, &params, &ClientTls::Plain, now)?;
                Ok((reply, params.unrecognized()))
            })
            .await;
        }
        Route::Transit {
            mount,
            endpoint: Ok(endpoint),
        } => {
            let run = move || {
                let ctx = Ctx {
                    state: &state,
                    mount: &mount,
                    now: OffsetDateTime::now_utc(),
                };
                let reply = endpoint.serve(&ctx, op, &params)?;
                Ok((reply, params.unrecognized()))
            };
            return if blocks {
                tokio::task::spawn_blocking(run)
                    .await
                    .map_err(|e| ApiError::Internal(format!("handler task failed: {e}")))?
            } else {
                run()
            };
        }
        // Refused above.
        Route::Transit { .. } | Route::Nowhere => return Err(ApiError::NoRoute(request.path)),
    };
    Ok((reply, params.unrecognized()))
}

/// A login method's path (users, roles, secret IDs, logins).
fn serve_login(
    unsealed: &Unsealed,
    request: &Routed,
    p: &Params,
    client: &ClientTls,
    now: i64,
) -> ApiResult<Reply> {
    if let Some(refused) = request.refusal() {
        return Err(refused);
    }
    match &request.route {
        Route::Login { method, path } => {
            login::serve(&unsealed.tokens, method, request.op, path, p, client, now)
        }
        _ => Err(ApiError::NoRoute(request.path.clone())),
    }
}

/// A public path that needs the keys: a login, or the wrapping lookup
/// (which reads the token the request presents, if any).
fn serve_public(
    unsealed: &Unsealed,
    request: &Routed,
    presented: Option<&str>,
    p: &Params,
    client: &ClientTls,
    now: i64,
) -> ApiResult<Reply> {
    match &request.route {
        Route::Sys(SysPath::Wrapping(_)) => {
            if let Some(refused) = request.refusal() {
                return Err(refused);
            }
            wrapping::lookup(unsealed, presented, p, now)
        }
        Route::Sys(path @ SysPath::GenerateRoot { .. }) => {
            if let Some(refused) = request.refusal() {
                return Err(refused);
            }
            generate_root::serve(unsealed, request.op, path, p)
        }
        Route::Sys(SysPath::Rekey { target, step }) => {
            if let Some(refused) = request.refusal() {
                return Err(refused);
            }
            rekey::serve(unsealed, request.op, *target, *step, p)
        }
        _ => serve_login(unsealed, request, p, client, now),
    }
}

/// Read and parse the parameters: the query string for reads, the body
/// (within `budget`, and [`BODY_TIMEOUT`]) for writes.
async fn read_params(
    op: Op,
    body: Body,
    headers: &HeaderMap,
    query: Params<'static>,
    budget: Budget,
) -> ApiResult<(Params<'static>, Bytes)> {
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, read_body(body, budget.max_bytes)).await {
        Ok(read) => read?,
        Err(_) => return Err(ApiError::bad("timed out reading the request body")),
    };
    if op != Op::Update {
        return Ok((query, bytes));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = bytes.clone();
    let parse = move || Params::from_body_within(&body, content_type.as_deref(), budget);
    // A large parse takes a while: not on the async workers (`sys/health`
    // and every other request share them).
    let mut params = if bytes.len() > OFF_WORKERS_ABOVE {
        off_workers(parse).await?
    } else {
        parse()?
    };
    // A write reads its body only, as Vault does; say so rather than drop
    // the query's parameters without a word.
    params.not_read_from(&query, "query string");
    Ok((params, bytes))
}

/// The body, at most `limit` bytes: one declared larger (`Content-Length`)
/// is refused before a byte of it is read, so no `100 Continue` is sent.
/// The buffer is sized once from the declared length.
async fn read_body(mut body: Body, limit: usize) -> ApiResult<Bytes> {
    use axum::body::HttpBody as _;
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > limit {
        return Err(ApiError::TooLarge);
    }
    let mut bytes = Vec::with_capacity(declared);
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(|_| ApiError::bad("failed to read the request body"))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - bytes.len() {
                return Err(ApiError::TooLarge);
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(bytes))
}

const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bodies larger than this are parsed, and their requests served, on the
/// blocking pool.
const OFF_WORKERS_ABOVE: usize = 64 << 10;

/// Vault's paths, cleaned the one way we accept: percent-decoded, printable
/// ([`names::printable`]), trailing slashes dropped, and no empty, `.` or `..`
/// segment anywhere (so the path that is authorized is exactly the path that
/// is routed).
fn canonical_path(raw: &str) -> ApiResult<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad("the request path is not valid UTF-8"))?;
    // Control characters and white space other than the ASCII space can
    // hide inside a name; OpenBao refuses them too.
    if !decoded.chars().all(names::printable) {
        return Err(ApiError::bad(
            "invalid request path: it contains a non-printable character",
        ));
    }
    let trimmed = decoded.trim_end_matches('/');
    if trimmed
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(ApiError::bad(
            "invalid request path: empty, '.' or '..' segment",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A token issued by a login method is only as alive as the method.
fn token_method_alive(unsealed: &Unsealed, entry: &TokenEntry) -> bool {
    match entry.path.strip_prefix("auth/") {
        Some(inside) if !inside.starts_with("token/") => {
            matches!(unsealed.methods.resolve(inside), Ok(Some(_)))
        }
        _ => true,
    }
}

/// One of a few argon2 slots (one per core, at least two), waited for at most
/// a few seconds.
async fn login_slot() -> ApiResult<tokio::sync::SemaphorePermit<'static>> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(2))
    });
    match tokio::time::timeout(std::time::Duration::from_secs(5), slots.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::Unavailable(
            "too many logins in progress; retry later".to_owned(),
        )),
    }
}

/// Run blocking work (argon2, key generation, storage writes) on the blocking pool.
async fn off_workers<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("handler task failed: {e}")))?
}

/// Check the caller's policies for this request, as Vault does: the
/// capability its route and operation need ([`Routed::capability`]), on the
/// canonical path (with a trailing slash for `list`), `sudo` on
/// root-protected paths, and the deciding rule's wrapping bounds against
/// the wrapping asked for (`wrap_ttl`).
fn authorize(
    unsealed: &Unsealed,
    entry: &TokenEntry,
    request: &Routed,
    wrap_ttl: Option<std::time::Duration>,
) -> ApiResult<()> {
    // Any live token may read the API document; it shows only what the
    // caller's policies reach (api/openapi.rs), as in Vault.
    if entry.is_root() || matches!(request.route, Route::Sys(SysPath::OpenApi)) {
        return Ok(());
    }
    let acl = unsealed.policies.acl(&entry.policies)?;
    let checked = if request.op == Op::List {
        format!("{}/", request.path)
    } else {
        request.path.clone()
    };
    if acl.allows(&checked, request.capability())
        && (!request.route.needs_sudo() || acl.allows(&checked, Capability::Sudo))
        && acl.admits_wrapping(&checked, request.op == Op::List, wrap_ttl)
    {
        Ok(())
    } else {
        Err(ApiError::Denied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Limits;

    /// A mount disabled after the request resolved it (while its body was
    /// read and its request entry written) is not served into.
    #[test]
    fn a_route_disabled_meanwhile_is_not_current() {
        let state = AppState::dev("root", Limits::default());
        let unsealed = state.unsealed().unwrap();
        unsealed.enable_mount("other", "").unwrap();
        let request = Routed::parse(Op::Update, "other/encrypt/k".into(), &state).unwrap();
        assert!(matches!(request.route, Route::Transit { .. }));
        assert!(request.route.still_current(&unsealed).unwrap());
        unsealed.disable_mount("other").unwrap();
        assert!(!request.route.still_current(&unsealed).unwrap());
        // Enabled again at the same path: a new mount, still not this one.
        unsealed.enable_mount("other", "").unwrap();
        assert!(!request.route.still_current(&unsealed).unwrap());
        let health = Routed::parse(Op::Read, "sys/health".into(), &state).unwrap();
        assert!(health.route.still_current(&unsealed).unwrap());
    }
}
