//! The one route table: `/v1/sys/...` and every transit mount's paths.
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
use crate::auth::methods::{Backend, Method as AuthMethod};
use crate::auth::policy::Capability;
use crate::auth::token::TokenEntry;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::{AppState, Mount, Unsealed};
use endpoint::Endpoint;

mod audit;
mod crypt;
mod endpoint;
mod export;
mod hmac;
mod keys;
pub(crate) mod login;
mod misc;
mod sign;
pub(crate) mod sys;
mod token;

/// The operation a request asks for, as Vault names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Update,
    Delete,
    List,
}

/// Where a request goes inside the server, resolved once: its audit entries
/// name this mount, and authorization and serving use this same resolution.
pub(crate) enum Target {
    /// `sys/...`
    Sys,
    /// `auth/token/...`
    Token,
    /// A login method's path; `rest` is the path inside it.
    Method {
        method: Arc<AuthMethod>,
        rest: String,
    },
    /// A transit mount's path; `rest` is the path inside it.
    Transit { mount: Arc<Mount>, rest: String },
    /// No mount or login method at this path (404 once authorized).
    Nowhere,
}

impl Target {
    fn of(unsealed: &Unsealed, path: &str) -> ApiResult<Self> {
        if path.starts_with("sys/") {
            return Ok(Self::Sys);
        }
        if path.starts_with("auth/token/") {
            return Ok(Self::Token);
        }
        if let Some(inside) = path.strip_prefix("auth/") {
            return Ok(match unsealed.methods.resolve(inside)? {
                Some((method, rest)) => Self::Method {
                    rest: rest.to_owned(),
                    method,
                },
                None => Self::Nowhere,
            });
        }
        Ok(match unsealed.resolve(path)? {
            Some((mount, rest)) => Self::Transit {
                rest: rest.to_owned(),
                mount,
            },
            None => Self::Nowhere,
        })
    }

    /// Whether the mount or login method is still the one at `path`: it may
    /// have been disabled while the body was read and the request entry
    /// written, and serving into a removed mount would leave entries behind.
    fn still_current(&self, unsealed: &Unsealed, path: &str) -> ApiResult<bool> {
        Ok(match self {
            Self::Transit { mount, .. } => {
                matches!(unsealed.resolve(path)?, Some((m, _)) if Arc::ptr_eq(&m, mount))
            }
            Self::Method { method, .. } => match path.strip_prefix("auth/") {
                Some(inside) => matches!(
                    unsealed.methods.resolve(inside)?,
                    Some((m, _)) if Arc::ptr_eq(&m, method)
                ),
                None => false,
            },
            Self::Sys | Self::Token | Self::Nowhere => true,
        })
    }

    /// The transit endpoint, for a transit mount's path.
    fn endpoint(&self, op: Op) -> Option<(&Mount, ApiResult<Endpoint<'_>>)> {
        match self {
            Self::Transit { mount, rest } => Some((mount, Endpoint::parse(op, rest))),
            _ => None,
        }
    }
}

/// What every transit handler gets besides its parameters.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub mount: &'a Mount,
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
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return ApiError::UnsupportedPath.into_response();
    };
    let path = match canonical_path(path) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let query = uri.query().unwrap_or("").to_owned();
    let result = route(state, method, path, query, headers, body, peer).await;
    match result {
        Ok((reply, unrecognized)) => reply.into_response_with(unrecognized),
        Err(e) => e.into_response(),
    }
}

fn token(headers: &HeaderMap) -> Option<&str> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer ").map(str::trim)
}

async fn route(
    state: Arc<AppState>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Body,
    peer: Option<std::net::SocketAddr>,
) -> ApiResult<(Reply, Vec<String>)> {
    let query_params = Params::from_query(query.as_bytes())?;
    let list_query = query_params.bool("list")?.unwrap_or(false);
    let op = match method.as_str() {
        "GET" if list_query => Op::List,
        "GET" | "HEAD" => Op::Read,
        "POST" | "PUT" => Op::Update,
        "DELETE" => Op::Delete,
        "LIST" => Op::List,
        _ => return Err(ApiError::UnsupportedOperation),
    };
    let limit = state.limits.max_body_bytes;
    if let Some(rest) = path.strip_prefix("sys/")
        && sys::is_unauthenticated(rest)
    {
        let (params, _) = read_params(op, body, &headers, query_params, limit).await?;
        let reply = sys::handle(&state, op, rest, &params, None)?;
        return Ok((reply, Vec::new()));
    }
    // Logins need no token.
    if let Some(inside) = path.strip_prefix("auth/")
        && !inside.starts_with("token/")
    {
        let unsealed = state.unsealed()?;
        if let Some((method, rest)) = unsealed.methods.resolve(inside)?
            && login::is_login(&method.entry.kind, rest)
        {
            let rest = canonical_method_path(&method.entry.kind, rest);
            let path = format!("auth/{}/{rest}", method.entry.path);
            let (params, _) = read_params(op, body, &headers, query_params, limit).await?;
            // A bounded number of password hashes at a time (argon2id takes
            // 19 MiB each): a login flood queues instead of exhausting memory.
            let _permit = login_slot().await?;
            let target = Target::Method {
                method: Arc::clone(&method),
                rest: rest.clone(),
            };
            let mut audit = audit::Audit::begin(&unsealed, None, op, &path, &target, &params, peer);
            audit.request().await?;
            let result = off_workers(move || {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let reply = dispatch_method(&unsealed, &method, op, &rest, &params, now)?;
                Ok((reply, params.unrecognized()))
            })
            .await;
            return audit.response(result).await;
        }
    }
    // Sealing a sealed server is a no-op that needs no token (as in OpenBao).
    if path == "sys/seal" && op == Op::Update && state.is_sealed() {
        return Ok((Reply::no_content(), Vec::new()));
    }
    // Everything else needs the keys: 503 while sealed, before looking at the token.
    let unsealed = state.unsealed()?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let known = token(&headers)
        .map(|t| Ok::<_, ApiError>((t, unsealed.tokens.lookup(t, now)?)))
        .transpose()?;
    let Some((presented, Some((id, entry)))) =
        known.map(|(t, found)| (t, found.filter(|(_, e)| token_method_alive(&unsealed, e))))
    else {
        // Unknown, expired or missing token: refused (before reading the
        // body), and on record as such.
        let target = Target::of(&unsealed, &path).unwrap_or(Target::Nowhere);
        let audit = audit::Audit::begin(
            &unsealed,
            None,
            op,
            &path,
            &target,
            &Params::default(),
            peer,
        );
        return audit.refused(ApiError::PermissionDenied).await;
    };
    let path = canonical_names(&unsealed, &path);
    let target = Target::of(&unsealed, &path)?;
    let (params, body) = read_params(op, body, &headers, query_params, limit).await?;
    let mut audit = audit::Audit::begin(
        &unsealed,
        Some((presented, &entry)),
        op,
        &path,
        &target,
        &params,
        peer,
    );
    if let Err(denied) = authorize(&unsealed, &entry, op, &path, &target) {
        return audit.refused(denied).await;
    }
    // Nothing happens unless the request is on record first (fail closed).
    // A request that changes nothing (and whose token's uses are not
    // counted) is served while its entry is being written: its reply waits
    // for both entries (one sync), and is discarded if either fails.
    if audit.is_on() && entry.num_uses == 0 && changes_nothing(&target, op) {
        audit.request_deferred().await?;
    } else {
        audit.request().await?;
    }
    // A use-limited token pays one use per request (its last use revokes it).
    if entry.num_uses > 0 && !unsealed.tokens.use_once(&id)? {
        return Err(ApiError::PermissionDenied);
    }
    let caller = Caller { id, entry };
    let result = authorized(
        &state, &unsealed, &caller, presented, op, path, target, params, &body, now,
    )
    .await;
    audit.response(result).await
}

/// Whether the request changes nothing (see [`Endpoint::changes_nothing`]):
/// only a transit endpoint can; every `sys/` and `auth/` path counts as
/// changing state.
fn changes_nothing(target: &Target, op: Op) -> bool {
    match target.endpoint(op) {
        Some((mount, Ok(endpoint))) => endpoint.changes_nothing(
            |name| matches!(mount.key(name), Ok(Some(ring)) if !ring.deletion_allowed()),
        ),
        _ => false,
    }
}

/// An authenticated, authorized (and audited) request.
#[allow(clippy::too_many_arguments)]
async fn authorized(
    state: &Arc<AppState>,
    unsealed: &Arc<Unsealed>,
    caller: &Caller,
    presented: &str,
    op: Op,
    path: String,
    target: Target,
    params: Params<'static>,
    body: &Bytes,
    now: i64,
) -> ApiResult<(Reply, Vec<String>)> {
    let (state, unsealed, caller) = (Arc::clone(state), Arc::clone(unsealed), caller);
    if !target.still_current(&unsealed, &path)? {
        return Err(ApiError::NoRoute(path));
    }
    let (mount, rest) = match target {
        Target::Sys => {
            let rest = path.strip_prefix("sys/").unwrap_or_default();
            let reply = sys::handle(&state, op, rest, &params, Some(caller))?;
            return Ok((reply, params.unrecognized()));
        }
        Target::Token => {
            let rest = path.strip_prefix("auth/token/").unwrap_or_default();
            let reply = token::handle(&unsealed.tokens, caller, presented, op, rest, &params, now)?;
            return Ok((reply, params.unrecognized()));
        }
        // Password hashing and storage writes run off the async workers.
        Target::Method { method, rest } => {
            return off_workers(move || {
                let reply = dispatch_method(&unsealed, &method, op, &rest, &params, now)?;
                Ok((reply, params.unrecognized()))
            })
            .await;
        }
        Target::Transit { mount, rest } => (mount, rest),
        Target::Nowhere => return Err(ApiError::NoRoute(path)),
    };
    // Key generation (RSA-4096 takes a while) and storage writes (an fsync
    // each) must not stall the async workers. (AEAD keys created by encrypt's
    // upsert are just random bytes, but stored.)
    let blocks = Endpoint::parse(op, &rest)?
        .may_block(|name| mount.key(name).ok().flatten().is_none())
        || body.len() > 64 << 10;
    let run = move || {
        let ctx = Ctx {
            state: &state,
            mount: &mount,
            now: OffsetDateTime::now_utc(),
        };
        let reply = Endpoint::parse(op, &rest)?.serve(&ctx, op, &params)?;
        Ok((reply, params.unrecognized()))
    };
    if blocks {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| ApiError::Internal(format!("handler task failed: {e}")))?
    } else {
        run()
    }
}

/// A login method's paths (users, roles, secret IDs, logins).
fn dispatch_method(
    unsealed: &Unsealed,
    method: &AuthMethod,
    op: Op,
    rest: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let mount = &method.entry.path;
    match &method.backend {
        Backend::Userpass(store) => {
            login::userpass(store, &unsealed.tokens, mount, op, rest, p, now)
        }
        Backend::AppRole(store) => login::approle(store, &unsealed.tokens, mount, op, rest, p, now),
    }
}

/// Read and parse the parameters: the query string for reads, the body (under
/// the size limit, within a time limit) for writes.
async fn read_params(
    op: Op,
    body: Body,
    headers: &HeaderMap,
    query: Params<'static>,
    limit: usize,
) -> ApiResult<(Params<'static>, Bytes)> {
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit));
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        // Over the limit: a Vault-shaped 413.
        Ok(Err(_)) => return Err(ApiError::TooLarge),
        Err(_) => return Err(ApiError::bad("timed out reading the request body")),
    };
    let params = match op {
        Op::Update => {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            Params::from_body(&bytes, content_type)?
        }
        _ => query,
    };
    Ok((params, bytes))
}

const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Vault's paths, cleaned the one way we accept: percent-decoded, trailing
/// slashes dropped, and no empty, `.` or `..` segment anywhere (so the path
/// that is authorized is exactly the path that is routed).
fn canonical_path(raw: &str) -> ApiResult<String> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad("the request path is not valid UTF-8"))?;
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

/// Policy, user and role names are case-insensitive (stored lowercase, as in
/// Vault): authorize and route the lowercase form, so a rule about `web`
/// also governs `WEB`.
fn canonical_names(unsealed: &Unsealed, path: &str) -> String {
    for prefix in ["sys/policies/acl/", "sys/policy/"] {
        if let Some(name) = path.strip_prefix(prefix) {
            return format!("{prefix}{}", name.to_lowercase());
        }
    }
    if let Some(inside) = path.strip_prefix("auth/")
        && let Ok(Some((method, rest))) = unsealed.methods.resolve(inside)
    {
        return format!(
            "auth/{}/{}",
            method.entry.path,
            canonical_method_path(&method.entry.kind, rest)
        );
    }
    path.to_owned()
}

fn canonical_method_path(kind: &str, rest: &str) -> String {
    let mut segments: Vec<String> = rest.split('/').map(str::to_owned).collect();
    let named = match kind {
        "userpass" => ["users", "login"].contains(&segments[0].as_str()),
        "approle" => segments[0] == "role",
        _ => false,
    };
    if named && segments.len() > 1 {
        segments[1] = segments[1].to_lowercase();
    }
    segments.join("/")
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

/// Paths that need `sudo` besides the operation's capability (Vault's root-protected paths).
fn needs_sudo(path: &str) -> bool {
    path == "sys/seal"
        || path == "sys/audit"
        || path.starts_with("sys/audit/")
        || path.starts_with("sys/audit-hash/")
        || path.starts_with("sys/auth/")
        || path == "auth/token/create-orphan"
}

/// Whether a write would create something (which, as in Vault, needs
/// `create`, not `update`): a userpass user, an AppRole role, a transit key
/// (written, or created by encrypt's upsert). Asked of this node's cache
/// only, and failing closed: anything not known to exist (an error included)
/// counts as created.
fn creates(target: &Target, op: Op) -> bool {
    match target {
        Target::Method { method, rest } => {
            match (
                &method.backend,
                rest.split('/').collect::<Vec<_>>().as_slice(),
            ) {
                (Backend::Userpass(store), ["users", name]) => {
                    !matches!(store.get(name), Ok(Some(_)))
                }
                (Backend::AppRole(store), ["role", name]) => {
                    !matches!(store.cached_role(name), Ok(Some(_)))
                }
                _ => false,
            }
        }
        Target::Transit { mount, rest } => Endpoint::parse(op, rest)
            .ok()
            .and_then(|e| e.may_create())
            .is_some_and(|name| mount.key(name).ok().flatten().is_none()),
        _ => false,
    }
}

/// Check the caller's policies for this operation on this path, as Vault does:
/// `create` instead of `update` where the target does not exist yet (a transit
/// key, or encrypting with a key that upsert would create), `list` on the path
/// with a trailing slash, `sudo` on root-protected paths.
fn authorize(
    unsealed: &Unsealed,
    entry: &TokenEntry,
    op: Op,
    path: &str,
    target: &Target,
) -> ApiResult<()> {
    if entry.is_root() {
        return Ok(());
    }
    let acl = unsealed.policies.acl(&entry.policies)?;
    let capability = match op {
        Op::Read => Capability::Read,
        Op::List => Capability::List,
        Op::Delete => Capability::Delete,
        Op::Update if creates(target, op) => Capability::Create,
        Op::Update => Capability::Update,
    };
    let checked = if op == Op::List {
        format!("{path}/")
    } else {
        path.to_owned()
    };
    if acl.allows(&checked, capability)
        && (!needs_sudo(path) || acl.allows(&checked, Capability::Sudo))
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
    fn a_target_disabled_meanwhile_is_not_current() {
        let state = AppState::dev("root", Limits::default());
        let unsealed = state.unsealed().unwrap();
        unsealed.enable_mount("other", "").unwrap();
        let path = "other/encrypt/k";
        let target = Target::of(&unsealed, path).unwrap();
        assert!(matches!(target, Target::Transit { .. }));
        assert!(target.still_current(&unsealed, path).unwrap());
        unsealed.disable_mount("other").unwrap();
        assert!(!target.still_current(&unsealed, path).unwrap());
        // Enabled again at the same path: a new mount, still not this one.
        unsealed.enable_mount("other", "").unwrap();
        assert!(!target.still_current(&unsealed, path).unwrap());
        assert!(Target::Sys.still_current(&unsealed, "sys/health").unwrap());
    }
}
