//! The `sys/` endpoints a transit client touches: health, seal status, mounts,
//! and the token self-lookup that `hvac.Client.is_authenticated()` calls.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Op;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::AppState;

/// The OpenBao release whose API we speak (clients read it from health).
pub const COMPAT_VERSION: &str = "2.7.2";

pub fn is_unauthenticated(rest: &str) -> bool {
    matches!(
        rest,
        "health" | "seal-status" | "init" | "unseal" | "leader"
    )
}

pub fn handle(
    state: &AppState,
    op: Op,
    rest: &str,
    p: &Params,
    caller: Option<&Caller>,
) -> ApiResult<Reply> {
    if let Some(name) = rest
        .strip_prefix("policy/")
        .or_else(|| rest.strip_prefix("policies/acl/"))
    {
        return policy(state, op, name, rest.starts_with("policy/"), p);
    }
    match (rest, op) {
        ("policy", Op::Read) => {
            let names = state.unsealed()?.policies.names()?;
            Ok(Reply::mirrored(json!({ "keys": names, "policies": names })))
        }
        ("policies/acl", Op::List) => {
            let names = state.unsealed()?.policies.names()?;
            Ok(Reply::data(json!({ "keys": names })))
        }
        ("capabilities-self", Op::Update) => capabilities_self(state, caller, p),
        ("auth", Op::Read) => auth_methods(state),
        (path, op)
            if path == "audit" || path.starts_with("audit/") || path.starts_with("audit-hash/") =>
        {
            super::audit::sys(&*state.unsealed()?, op, path, p)
        }
        (path, op) if path.starts_with("auth/") => {
            let method = path.trim_start_matches("auth/").trim_end_matches('/');
            let unsealed = state.unsealed()?;
            match op {
                Op::Update => {
                    let kind = p.string("type")?.unwrap_or_default();
                    let description = p.string("description")?.unwrap_or_default();
                    let _ = (
                        p.has("config"),
                        p.has("local"),
                        p.has("seal_wrap"),
                        p.has("options"),
                    );
                    unsealed.methods.enable(method, &kind, &description)?;
                    Ok(Reply::no_content())
                }
                Op::Delete => {
                    unsealed.methods.disable(method)?;
                    unsealed
                        .tokens
                        .revoke_created_under(&format!("auth/{method}/"))?;
                    Ok(Reply::no_content())
                }
                _ => Err(ApiError::UnsupportedOperation),
            }
        }
        ("health", Op::Read) => health(state, p),
        ("seal-status", Op::Read) => Ok(Reply::bare(seal_status(state)?, StatusCode::OK)),
        ("init", Op::Read) => Ok(Reply::bare(
            json!({ "initialized": state.seal_config()?.is_some() }),
            StatusCode::OK,
        )),
        ("init", Op::Update) => init(state, p),
        ("leader", Op::Read) => leader(state),
        ("unseal", Op::Update) => unseal(state, p),
        ("seal", Op::Update) => {
            state.seal()?;
            Ok(Reply::no_content())
        }
        ("mounts", Op::Read) => mounts(state),
        (path, op) if path.starts_with("mounts/") => {
            let mount = path.trim_start_matches("mounts/").trim_end_matches('/');
            match op {
                Op::Update => enable(state, mount, p),
                Op::Delete => {
                    state.unsealed()?.disable_mount(mount)?;
                    Ok(Reply::no_content())
                }
                _ => Err(ApiError::UnsupportedOperation),
            }
        }
        (
            "health" | "seal-status" | "mounts" | "init" | "unseal" | "seal" | "leader" | "policy"
            | "policies/acl" | "capabilities-self" | "auth",
            _,
        ) => Err(ApiError::UnsupportedOperation),
        _ => Err(ApiError::UnsupportedPath),
    }
}

fn init(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let shares = p.int("secret_shares")?.unwrap_or(0);
    let threshold = p.int("secret_threshold")?.unwrap_or(0);
    // Clients send these empty (the bao CLI does); only a real value is refused.
    for unsupported in ["pgp_keys", "root_token_pgp_key"] {
        let given = match p.raw(unsupported) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(_) => true,
        };
        if given {
            return Err(ApiError::bad(format!(
                "{unsupported} is not supported by transitd"
            )));
        }
    }
    let _ = (
        p.has("recovery_shares"),
        p.has("recovery_threshold"),
        p.has("stored_shares"),
    );
    let to_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
    let out = state.initialize(to_u64(shares), to_u64(threshold), None)?;
    let keys: Vec<String> = out.shares.iter().map(hex::encode).collect();
    let keys_base64: Vec<String> = out
        .shares
        .iter()
        .map(|s| base64::engine::general_purpose::STANDARD.encode(s.as_slice()))
        .collect();
    Ok(Reply::bare(
        json!({
            "keys": keys,
            "keys_base64": keys_base64,
            "root_token": out.root_token.as_str(),
        }),
        StatusCode::OK,
    ))
}

fn unseal(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let _ = p.has("migrate");
    if p.bool("reset")?.unwrap_or(false) {
        if !state.is_sealed() {
            return Err(ApiError::bad("vault is unsealed"));
        }
        state.reset_unseal();
    } else {
        let key = p.string("key")?.unwrap_or_default();
        if key.is_empty() {
            return Err(ApiError::bad(
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            ));
        }
        state.unseal(&key)?;
    }
    Ok(Reply::bare(seal_status(state)?, StatusCode::OK))
}

/// `sys/policy/:name` (`rules`) and `sys/policies/acl/:name` (`policy`).
fn policy(state: &AppState, op: Op, name: &str, legacy: bool, p: &Params) -> ApiResult<Reply> {
    let store = &state.unsealed()?.policies;
    let name = crate::auth::policy_store::PolicyStore::normalize(name);
    let field = if legacy { "rules" } else { "policy" };
    match op {
        Op::Read => {
            let text = if name == crate::auth::policy::ROOT {
                String::new()
            } else {
                store
                    .get(&name)?
                    .ok_or(ApiError::NotFound)?
                    .raw()
                    .to_owned()
            };
            let body = json!({ "name": name, field: text });
            Ok(if legacy {
                Reply::mirrored(body)
            } else {
                Reply::data(body)
            })
        }
        Op::Update => {
            let text = p
                .string("policy")?
                .or(p.string("rules")?)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| ApiError::bad("'policy' parameter not supplied or empty"))?;
            store.put(&name, &text)?;
            Ok(Reply::no_content())
        }
        Op::Delete => {
            store.delete(&name)?;
            Ok(Reply::no_content())
        }
        Op::List => Err(ApiError::UnsupportedOperation),
    }
}

/// `sys/capabilities-self`: what the caller's token may do on each path.
fn capabilities_self(state: &AppState, caller: Option<&Caller>, p: &Params) -> ApiResult<Reply> {
    let caller = caller.ok_or(ApiError::PermissionDenied)?;
    let unsealed = state.unsealed()?;
    let mut paths = crate::api::token::string_list(p, "paths")?.unwrap_or_default();
    if let Some(path) = p.string("path")? {
        paths.push(path);
    }
    if paths.is_empty() {
        return Err(ApiError::bad("paths must be supplied"));
    }
    let acl = unsealed.policies.acl(&caller.entry.policies)?;
    let mut body = Map::new();
    let mut all: Vec<&'static str> = Vec::new();
    for path in &paths {
        let caps = acl.capabilities(path.trim_start_matches('/'));
        all.extend(caps.iter().copied());
        body.insert(path.clone(), json!(caps));
    }
    all.sort_unstable();
    all.dedup();
    body.insert("capabilities".to_owned(), json!(all));
    Ok(Reply::mirrored(Value::Object(body)))
}

/// `sys/auth`: the token method and every enabled login method.
fn auth_methods(state: &AppState) -> ApiResult<Reply> {
    let unsealed = state.unsealed()?;
    let mut data = Map::new();
    let entry = |kind: &str, description: &str, accessor: &str, uuid: &str| {
        json!({
            "type": kind,
            "description": description,
            "accessor": accessor,
            "uuid": uuid,
            "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "token_type": "default-service" },
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
            "options": null,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
        })
    };
    data.insert(
        "token/".into(),
        entry("token", "token based credentials", "auth_token", ""),
    );
    for m in unsealed.methods.entries()? {
        data.insert(
            format!("{}/", m.path),
            entry(&m.kind, &m.description, &m.accessor, &m.uuid),
        );
    }
    Ok(Reply::mirrored(Value::Object(data)))
}

/// `sys/leader`, which the CLI reads after unsealing: one node, no HA.
fn leader(state: &AppState) -> ApiResult<Reply> {
    state.unsealed()?;
    Ok(Reply::bare(
        json!({
            "ha_enabled": false,
            "is_self": false,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
            "raft_committed_index": 0,
            "raft_applied_index": 0,
        }),
        StatusCode::OK,
    ))
}

fn health(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let code = |name: &str, default: u16| -> ApiResult<StatusCode> {
        let wanted = p.int(name)?.unwrap_or(i64::from(default));
        Ok(u16::try_from(wanted)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::from_u16(default).unwrap_or(StatusCode::OK)))
    };
    let _ = (
        p.has("standbyok"),
        p.has("perfstandbyok"),
        p.has("standbycode"),
    );
    let initialized = state.seal_config()?.is_some();
    let unsealed = state.unsealed().ok();
    let status = match (initialized, &unsealed) {
        (false, _) => code("uninitcode", 501)?,
        (true, None) => code("sealedcode", 503)?,
        (true, Some(_)) => code("activecode", 200)?,
    };
    let mut body = json!({
        "initialized": initialized,
        "sealed": unsealed.is_none(),
        "standby": unsealed.is_none(),
        "replication_performance_mode": if unsealed.is_some() { "disabled" } else { "unknown" },
        "replication_dr_mode": if unsealed.is_some() { "disabled" } else { "unknown" },
        "server_time_utc": time::OffsetDateTime::now_utc().unix_timestamp(),
        "version": COMPAT_VERSION,
    });
    if let Some(u) = &unsealed {
        body["cluster_name"] = json!(state.cluster_name);
        body["cluster_id"] = json!(u.cluster_id);
    }
    Ok(Reply::bare(body, status))
}

fn seal_status(state: &AppState) -> ApiResult<Value> {
    let config = state.seal_config()?;
    let unsealed = state.unsealed().ok();
    let (progress, nonce) = state.unseal_progress();
    let (t, n) = config
        .as_ref()
        .map_or((0, 0), |c| (c.secret_threshold, c.secret_shares));
    let mut body = json!({
        "type": state.seal_kind().name(),
        "initialized": config.is_some(),
        "sealed": unsealed.is_none(),
        "t": t,
        "n": n,
        "progress": progress,
        "nonce": nonce,
        "version": COMPAT_VERSION,
        "build_date": "",
        "commit_date": "",
        "migration": false,
        "recovery_seal": matches!(state.seal_kind(), crate::seal::SealKind::Static(_)),
        "storage_type": state.storage_kind(),
    });
    if let Some(u) = &unsealed {
        body["cluster_name"] = json!(state.cluster_name);
        body["cluster_id"] = json!(u.cluster_id);
    }
    Ok(body)
}

fn mount_entry(kind: &str, description: &str, accessor: &str, uuid: &str) -> Value {
    json!({
        "type": kind,
        "description": description,
        "accessor": accessor,
        "uuid": uuid,
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
    })
}

fn mounts(state: &AppState) -> ApiResult<Reply> {
    let mut data = Map::new();
    for m in state.unsealed()?.mounts()? {
        data.insert(
            format!("{}/", m.path),
            mount_entry("transit", &m.description, &m.accessor, &m.uuid),
        );
    }
    data.insert(
        "sys/".into(),
        mount_entry(
            "system",
            "system endpoints used for control, policy and debugging",
            "system",
            "",
        ),
    );
    Ok(Reply::data(Value::Object(data)))
}

fn enable(state: &AppState, path: &str, p: &Params) -> ApiResult<Reply> {
    let kind = p.string("type")?.unwrap_or_default();
    let description = p.string("description")?.unwrap_or_default();
    let _ = (
        p.has("config"),
        p.has("options"),
        p.has("local"),
        p.has("seal_wrap"),
        p.has("plugin_name"),
    );
    if kind != "transit" {
        return Err(ApiError::bad(format!(
            "transitd serves only the transit secrets engine, not {kind:?}"
        )));
    }
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(ApiError::bad("invalid mount path"));
    }
    state.unsealed()?.enable_mount(path, &description)?;
    Ok(Reply::no_content())
}
