//! The `sys/` endpoints a transit client touches: health, seal status, mounts,
//! and the token self-lookup that `hvac.Client.is_authenticated()` calls.

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::Op;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::AppState;

/// The OpenBao release whose API we speak (clients read it from health).
pub const COMPAT_VERSION: &str = "2.7.2";

pub fn is_unauthenticated(rest: &str) -> bool {
    matches!(rest, "health" | "seal-status" | "init")
}

pub fn handle(
    state: &AppState,
    op: Op,
    rest: &str,
    p: &Params,
    _headers: &HeaderMap,
) -> ApiResult<Reply> {
    match (rest, op) {
        ("health", Op::Read) => health(state, p),
        ("seal-status", Op::Read) => Ok(Reply::bare(seal_status(state), StatusCode::OK)),
        // Dev mode is born initialized (init arrives with persistent storage).
        ("init", Op::Read) => Ok(Reply::bare(json!({ "initialized": true }), StatusCode::OK)),
        ("mounts", Op::Read) => mounts(state),
        (path, op) if path.starts_with("mounts/") => {
            let mount = path.trim_start_matches("mounts/").trim_end_matches('/');
            match op {
                Op::Update => enable(state, mount, p),
                Op::Delete => {
                    state.disable_mount(mount)?;
                    Ok(Reply::no_content())
                }
                _ => Err(ApiError::UnsupportedOperation),
            }
        }
        ("health" | "seal-status" | "mounts", _) => Err(ApiError::UnsupportedOperation),
        _ => Err(ApiError::UnsupportedPath),
    }
}

fn health(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let code = p.int("activecode")?.unwrap_or(200);
    let _ = (
        p.has("standbyok"),
        p.has("perfstandbyok"),
        p.has("sealedcode"),
        p.has("uninitcode"),
        p.has("standbycode"),
    );
    let status = u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let body = json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": time::OffsetDateTime::now_utc().unix_timestamp(),
        "version": COMPAT_VERSION,
        "cluster_name": state.cluster_name,
        "cluster_id": state.cluster_id,
    });
    Ok(Reply::bare(body, status))
}

fn seal_status(state: &AppState) -> Value {
    json!({
        "type": "shamir",
        "initialized": true,
        "sealed": false,
        "t": 1,
        "n": 1,
        "progress": 0,
        "nonce": "",
        "version": COMPAT_VERSION,
        "build_date": "",
        "migration": false,
        "cluster_name": state.cluster_name,
        "cluster_id": state.cluster_id,
        "recovery_seal": false,
        "storage_type": "inmem",
    })
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
    for m in state.mounts()? {
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
    state.enable_mount(path, &description)?;
    Ok(Reply::no_content())
}

/// `auth/token/lookup-self` for the dev root token.
pub fn lookup_self(_state: &AppState) -> Reply {
    Reply::data(json!({
        "accessor": "",
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": "root",
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/root",
        "policies": ["root"],
        "ttl": 0,
        "type": "service",
    }))
}
