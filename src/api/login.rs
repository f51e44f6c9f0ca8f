//! The HTTP side of the userpass and AppRole login methods, for one mount:
//! Vault's paths, fields, reply shapes and error texts (after OpenBao's
//! `builtin/credential/userpass` and `builtin/credential/approle`).
//!
//! `rest` is the path inside the mount (`users/alice`, `login/alice`,
//! `role/ci/secret-id`, `login`); `mount_path` is the mount's path under
//! `auth/` (`userpass`, `approle`, `ci/approle`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::Op;
use super::keys::rfc3339;
use super::token::{auth_block, string_list};
use crate::auth::approle::{AppRoleStore, Role, SecretIdInfo, SecretIdRequest};
use crate::auth::token::{TokenRequest, TokenStore};
use crate::auth::userpass::{TokenParams, UserpassStore};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, decode_b64};
use crate::response::Reply;

/// Userpass's answer to every failed login (OpenBao `path_login.go`).
pub const USERPASS_INVALID: &str = "invalid username or password";

/// Which paths of a login method need no token: Vault's `login/*` for
/// userpass, `login` for AppRole.
pub fn is_login(kind: &str, rest: &str) -> bool {
    match kind {
        "userpass" => rest.strip_prefix("login/").is_some_and(|n| !n.is_empty()),
        "approle" => rest == "login",
        _ => false,
    }
}

/// Vault's `GenericNameRegex`: `\w(([\w-.@]+)?\w)?` (ASCII word characters).
fn is_name(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match (s.chars().next(), s.chars().last()) {
        (Some(first), Some(last)) if word(first) && word(last) => {
            s.chars().all(|c| word(c) || matches!(c, '-' | '.' | '@'))
        }
        _ => false,
    }
}

/// `users/alice/password` -> `("alice", "password")`; `None` unless the name
/// is a valid one.
fn named<'a>(rest: &'a str, dir: &str) -> Option<(&'a str, &'a str)> {
    let tail = rest.strip_prefix(dir)?.strip_prefix('/')?;
    let (name, sub) = tail.split_once('/').unwrap_or((tail, ""));
    is_name(name).then_some((name, sub))
}

fn required(p: &Params, field: &str) -> ApiResult<Zeroizing<String>> {
    p.string(field)?
        .filter(|s| !s.is_empty())
        .map(Zeroizing::new)
        .ok_or_else(|| ApiError::bad(format!("missing {field}")))
}

/// A LIST answer: `keys` (sorted) from just after `after`, at most `limit`
/// of them (Vault's paging fields); 404 when there are none.
fn list_reply(keys: Vec<String>, p: &Params) -> ApiResult<Reply> {
    let after = p.string("after")?.unwrap_or_default();
    let limit = p.int("limit")?.unwrap_or(0);
    let keys: Vec<String> = keys
        .into_iter()
        .filter(|k| after.is_empty() || *k > after)
        .take(
            usize::try_from(limit)
                .ok()
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX),
        )
        .collect();
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// A 404 whose `errors` carry a message (Vault's `ErrUnsupportedPath` with
/// an error response); `ApiError` has no such variant.
fn not_found(message: String) -> ApiResult<Reply> {
    Ok(Reply::bare(
        json!({ "errors": [message] }),
        StatusCode::NOT_FOUND,
    ))
}

fn unsupported(field: &str) -> ApiError {
    ApiError::bad(format!("{field} is not supported by transitd"))
}

/// Refuse a list field (CIDR bindings) that transitd cannot enforce.
fn refuse_list(p: &Params, field: &str) -> ApiResult<()> {
    if string_list(p, field)?.is_some_and(|l| !l.is_empty()) {
        return Err(unsupported(field));
    }
    Ok(())
}

fn lowercase_policies(list: Vec<String>) -> Vec<String> {
    let mut list: Vec<String> = list.into_iter().map(|p| p.to_lowercase()).collect();
    list.sort();
    list.dedup();
    list
}

/// The `token_*` fields of a user or role write (each `None` when absent).
#[derive(Debug, Default)]
struct TokenPatch {
    policies: Option<Vec<String>>,
    legacy_policies: Option<bool>,
    ttl: Option<u64>,
    max_ttl: Option<u64>,
    explicit_max_ttl: Option<u64>,
    num_uses: Option<u64>,
    no_default_policy: Option<bool>,
}

impl TokenPatch {
    /// `legacy_ttls`: also take userpass's deprecated `ttl`, `max_ttl`.
    fn parse(p: &Params, legacy_ttls: bool) -> ApiResult<Self> {
        refuse_list(p, "token_bound_cidrs")?;
        for period in ["token_period", "period"] {
            if p.duration_secs(period)?.unwrap_or(0) > 0 {
                return Err(unsupported(period));
            }
        }
        if p.bool("token_strictly_bind_ip")?.unwrap_or(false) {
            return Err(unsupported("token_strictly_bind_ip"));
        }
        if let Some(kind) = p.string("token_type")? {
            match kind.as_str() {
                "" | "default" | "service" | "default-service" => {}
                "batch" | "default-batch" => {
                    return Err(ApiError::bad(format!(
                        "token type {kind:?} is not supported by transitd"
                    )));
                }
                other => {
                    return Err(ApiError::bad(format!(
                        "invalid 'token_type' value {other:?}"
                    )));
                }
            }
        }
        let mut patch = Self::default();
        patch.parse_policies(p)?;
        patch.ttl = p.duration_secs("token_ttl")?;
        patch.max_ttl = p.duration_secs("token_max_ttl")?;
        if legacy_ttls {
            let ttl = p.duration_secs("ttl")?;
            let max_ttl = p.duration_secs("max_ttl")?;
            patch.ttl = patch.ttl.or(ttl);
            patch.max_ttl = patch.max_ttl.or(max_ttl);
        }
        patch.explicit_max_ttl = p.duration_secs("token_explicit_max_ttl")?;
        patch.num_uses = p
            .int("token_num_uses")?
            .map(|n| {
                u64::try_from(n).map_err(|_| ApiError::bad("'token_num_uses' cannot be negative"))
            })
            .transpose()?;
        patch.no_default_policy = p.bool("token_no_default_policy")?;
        Ok(patch)
    }

    /// Vault's upgrade rule: `token_policies` wins; `policies` alone sets
    /// both and is echoed on reads.
    fn parse_policies(&mut self, p: &Params) -> ApiResult<()> {
        let legacy_given = p.has("policies");
        if let Some(list) = string_list(p, "token_policies")? {
            self.policies = Some(lowercase_policies(list));
            self.legacy_policies = Some(legacy_given);
        } else if let Some(list) = string_list(p, "policies")? {
            self.policies = Some(lowercase_policies(list));
            self.legacy_policies = Some(true);
        }
        Ok(())
    }

    fn apply(self, t: &mut TokenParams, legacy_policies: &mut bool) {
        if let Some(policies) = self.policies {
            t.token_policies = policies;
        }
        if let Some(legacy) = self.legacy_policies {
            *legacy_policies = legacy;
        }
        if let Some(v) = self.ttl {
            t.token_ttl = v;
        }
        if let Some(v) = self.max_ttl {
            t.token_max_ttl = v;
        }
        if let Some(v) = self.explicit_max_ttl {
            t.token_explicit_max_ttl = v;
        }
        if let Some(v) = self.num_uses {
            t.token_num_uses = v;
        }
        if let Some(v) = self.no_default_policy {
            t.token_no_default_policy = v;
        }
    }
}

/// The token fields of a user or role read (Vault's `PopulateTokenData`).
fn token_data(t: &TokenParams, legacy_policies: bool) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert("token_bound_cidrs".into(), json!([]));
    data.insert(
        "token_explicit_max_ttl".into(),
        json!(t.token_explicit_max_ttl),
    );
    data.insert("token_max_ttl".into(), json!(t.token_max_ttl));
    data.insert(
        "token_no_default_policy".into(),
        json!(t.token_no_default_policy),
    );
    data.insert("token_period".into(), json!(0));
    data.insert("token_policies".into(), json!(t.token_policies));
    data.insert("token_type".into(), json!("default"));
    data.insert("token_ttl".into(), json!(t.token_ttl));
    data.insert("token_num_uses".into(), json!(t.token_num_uses));
    data.insert("token_strictly_bind_ip".into(), json!(false));
    if legacy_policies {
        data.insert("policies".into(), json!(t.token_policies));
    }
    data
}

/// Vault's display name of a login token: the mount path (slashes as
/// dashes), a dash, the method's name for the caller, one trailing dash cut.
fn display_name(mount_path: &str, name: &str) -> String {
    let full = format!("{}-{name}", mount_path.trim_matches('/').replace('/', "-"));
    full.strip_suffix('-')
        .map_or_else(|| full.clone(), str::to_owned)
}

/// Issue the token of a successful login: an orphan service token with the
/// method's policies (plus `default`), TTLs and use limit.
fn issue(
    tokens: &TokenStore,
    t: &TokenParams,
    meta: BTreeMap<String, String>,
    display_name: String,
    path: String,
    now: i64,
) -> ApiResult<Reply> {
    let mut policies: Vec<String> = t
        .token_policies
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if policies.iter().any(|p| p == "root") {
        return Err(ApiError::bad("auth methods cannot create root tokens"));
    }
    if !t.token_no_default_policy {
        policies.push("default".to_owned());
    }
    policies.sort();
    policies.dedup();
    // The store knows one ceiling per token: the stricter of the two.
    let max = match (t.token_explicit_max_ttl, t.token_max_ttl) {
        (0, m) | (m, 0) => m,
        (a, b) => a.min(b),
    };
    let request = TokenRequest {
        policies,
        meta,
        display_name,
        num_uses: t.token_num_uses,
        ttl_secs: t.token_ttl,
        explicit_max_ttl_secs: max,
        renewable: true,
        parent: None,
        path,
    };
    let issued = tokens.create(request, None, now)?;
    Ok(Reply::auth(auth_block(
        &issued.entry,
        Some(&issued.token),
        now,
    )))
}

fn mount(mount_path: &str) -> &str {
    mount_path.trim_matches('/')
}

// ----- userpass ----------------------------------------------------------------

/// `auth/<userpass mount>/...`
pub fn userpass(
    store: &UserpassStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    rest: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    if rest == "users" {
        return match op {
            Op::List => list_reply(store.list()?, p),
            _ => Err(ApiError::UnsupportedOperation),
        };
    }
    if let Some((name, sub)) = named(rest, "users") {
        return match (sub, op) {
            ("", Op::Read) => read_user(store, name),
            ("", Op::Update) => write_user(store, name, p),
            ("", Op::Delete) => {
                store.delete(name)?;
                Ok(Reply::no_content())
            }
            ("password", Op::Update) => {
                refuse_password_hash(p)?;
                let password = p.string("password")?.map(Zeroizing::new);
                match password.as_deref().map(String::as_str) {
                    None | Some("") => Err(ApiError::bad(
                        "must provide either password or password_hash",
                    )),
                    Some(pw) => {
                        store.set_password(name, pw)?;
                        Ok(Reply::no_content())
                    }
                }
            }
            ("policies", Op::Update) => {
                let mut patch = TokenPatch::default();
                patch.parse_policies(p)?;
                store.update(name, |u| {
                    patch.apply(&mut u.token, &mut u.legacy_policies);
                    Ok(())
                })?;
                Ok(Reply::no_content())
            }
            ("" | "password" | "policies", _) => Err(ApiError::UnsupportedOperation),
            _ => Err(ApiError::UnsupportedPath),
        };
    }
    if let Some((name, "")) = named(rest, "login") {
        return match op {
            Op::Update => userpass_login(store, tokens, mount_path, name, p, now),
            _ => Err(ApiError::UnsupportedOperation),
        };
    }
    Err(ApiError::UnsupportedPath)
}

fn refuse_password_hash(p: &Params) -> ApiResult<()> {
    if p.string("password_hash")?.is_some_and(|h| !h.is_empty()) {
        return Err(ApiError::bad(
            "password_hash is not supported by transitd (it stores argon2id hashes): give password",
        ));
    }
    Ok(())
}

fn read_user(store: &UserpassStore, name: &str) -> ApiResult<Reply> {
    let user = store.get(name)?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(Value::Object(token_data(
        &user.token,
        user.legacy_policies,
    ))))
}

fn write_user(store: &UserpassStore, name: &str, p: &Params) -> ApiResult<Reply> {
    refuse_password_hash(p)?;
    refuse_list(p, "bound_cidrs")?;
    let password = p.string("password")?.map(Zeroizing::new);
    let patch = TokenPatch::parse(p, true)?;
    store.write(name, password.as_deref().map(String::as_str), |u| {
        patch.apply(&mut u.token, &mut u.legacy_policies);
        Ok(())
    })?;
    Ok(Reply::no_content())
}

fn userpass_login(
    store: &UserpassStore,
    tokens: &TokenStore,
    mount_path: &str,
    name: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let password = Zeroizing::new(p.string("password")?.unwrap_or_default());
    if password.is_empty() {
        return Err(ApiError::bad("missing password"));
    }
    let user = store
        .login(name, &password)?
        .ok_or_else(|| ApiError::bad(USERPASS_INVALID))?;
    let meta = BTreeMap::from([("username".to_owned(), user.name.clone())]);
    let mount = mount(mount_path);
    issue(
        tokens,
        &user.token,
        meta,
        display_name(mount, &user.name),
        format!("auth/{mount}/login/{name}"),
        now,
    )
}

// ----- AppRole -----------------------------------------------------------------

/// `auth/<approle mount>/...`
pub fn approle(
    store: &AppRoleStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    rest: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    match rest {
        "login" => {
            return match op {
                Op::Update => approle_login(store, tokens, mount_path, p, now),
                _ => Err(ApiError::UnsupportedOperation),
            };
        }
        "role" => {
            return match op {
                Op::List => list_reply(store.list_roles()?, p),
                _ => Err(ApiError::UnsupportedOperation),
            };
        }
        _ => {}
    }
    let Some((name, sub)) = named(rest, "role") else {
        return Err(ApiError::UnsupportedPath);
    };
    match (sub, op) {
        ("", Op::Read) => read_role(store, name),
        ("", Op::Update) => write_role(store, name, p),
        ("", Op::Delete) => {
            store.delete_role(name)?;
            Ok(Reply::no_content())
        }
        ("role-id", Op::Read) => {
            let role = store.get_role(name)?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(json!({ "role_id": role.role_id })))
        }
        ("role-id", Op::Update) => {
            let role_id = p.string("role_id")?.unwrap_or_default();
            store.set_role_id(name, &role_id)?;
            Ok(Reply::no_content())
        }
        ("secret-id", Op::Update) => new_secret_id(store, name, p, now, false),
        ("custom-secret-id", Op::Update) => new_secret_id(store, name, p, now, true),
        ("secret-id", Op::List) => list_reply(store.list_accessors(name)?, p),
        ("secret-id/lookup", Op::Update) => {
            let secret_id = required(p, "secret_id")?;
            match store.lookup_secret_id(name, &secret_id, now)? {
                Some(info) => Ok(Reply::data(secret_id_data(&info))),
                None => Ok(Reply::no_content()),
            }
        }
        ("secret-id/destroy", Op::Update | Op::Delete) => {
            let secret_id = required(p, "secret_id")?;
            store.destroy_secret_id(name, &secret_id)?;
            Ok(Reply::no_content())
        }
        ("secret-id-accessor/lookup", Op::Update) => {
            let accessor = required(p, "secret_id_accessor")?;
            match store.lookup_accessor(name, &accessor, now)? {
                Some(info) => Ok(Reply::data(secret_id_data(&info))),
                None => not_found(no_accessor(&accessor)),
            }
        }
        ("secret-id-accessor/destroy", Op::Update | Op::Delete) => {
            let accessor = required(p, "secret_id_accessor")?;
            if !store.destroy_accessor(name, &accessor)? {
                return Err(ApiError::bad(no_accessor(&accessor)));
            }
            Ok(Reply::no_content())
        }
        (
            ""
            | "role-id"
            | "secret-id"
            | "custom-secret-id"
            | "secret-id/lookup"
            | "secret-id/destroy"
            | "secret-id-accessor/lookup"
            | "secret-id-accessor/destroy",
            _,
        ) => Err(ApiError::UnsupportedOperation),
        _ => Err(ApiError::UnsupportedPath),
    }
}

fn no_accessor(accessor: &str) -> String {
    format!("failed to find accessor entry for secret_id_accessor: {accessor:?}")
}

fn read_role(store: &AppRoleStore, name: &str) -> ApiResult<Reply> {
    let role = store.get_role(name)?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(role_data(&role)))
}

fn role_data(role: &Role) -> Value {
    let mut data = token_data(&role.token, role.legacy_policies);
    data.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    data.insert("secret_id_bound_cidrs".into(), Value::Null);
    data.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    data.insert("local_secret_ids".into(), json!(false));
    Value::Object(data)
}

fn write_role(store: &AppRoleStore, name: &str, p: &Params) -> ApiResult<Reply> {
    if name.len() > crate::auth::approle::MAX_HMAC_INPUT {
        return Err(ApiError::bad(format!(
            "role_name is longer than maximum of {} bytes",
            crate::auth::approle::MAX_HMAC_INPUT
        )));
    }
    refuse_list(p, "secret_id_bound_cidrs")?;
    refuse_list(p, "bound_cidr_list")?;
    if p.bool("local_secret_ids")?.unwrap_or(false) {
        return Err(unsupported("local_secret_ids"));
    }
    let patch = TokenPatch::parse(p, false)?;
    let role_id = p.string("role_id")?;
    let bind_secret_id = p.bool("bind_secret_id")?;
    let secret_id_num_uses = p
        .int("secret_id_num_uses")?
        .map(|n| {
            u64::try_from(n).map_err(|_| ApiError::bad("secret_id_num_uses cannot be negative"))
        })
        .transpose()?;
    let secret_id_ttl = p.duration_secs("secret_id_ttl")?;
    let mut bound = true;
    store.write_role(name, |role| {
        patch.apply(&mut role.token, &mut role.legacy_policies);
        if let Some(id) = role_id {
            role.role_id = id;
        }
        if let Some(b) = bind_secret_id {
            role.bind_secret_id = b;
        }
        if let Some(n) = secret_id_num_uses {
            role.secret_id_num_uses = n;
        }
        if let Some(t) = secret_id_ttl {
            role.secret_id_ttl = t;
        }
        bound = role.bind_secret_id;
        Ok(())
    })?;
    if !bound {
        // OpenBao refuses a role without bind_secret_id unless it has CIDR
        // bindings (which transitd does not support); transitd allows it and
        // says what it means.
        return Ok(Reply::default().warn(
            "bind_secret_id is false and the role has no other constraint: its role_id alone logs in",
        ));
    }
    Ok(Reply::no_content())
}

fn new_secret_id(
    store: &AppRoleStore,
    name: &str,
    p: &Params,
    now: i64,
    custom: bool,
) -> ApiResult<Reply> {
    let secret_id = if custom {
        Some(required(p, "secret_id")?)
    } else {
        None
    };
    if store.get_role(name)?.is_none() {
        return not_found(format!("role {name:?} does not exist"));
    }
    refuse_list(p, "cidr_list")?;
    refuse_list(p, "token_bound_cidrs")?;
    let num_uses = p
        .int("num_uses")?
        .map(|n| u64::try_from(n).map_err(|_| ApiError::bad("num_uses cannot be negative")))
        .transpose()?;
    let ttl = p.duration_secs("ttl")?;
    let metadata = parse_metadata(p)?;
    let new = store.create_secret_id(
        name,
        SecretIdRequest {
            secret_id,
            num_uses,
            ttl,
            metadata,
        },
        now,
    )?;
    Ok(Reply::data(json!({
        "secret_id": new.secret_id.as_str(),
        "secret_id_accessor": new.accessor,
        "secret_id_ttl": new.ttl,
        "secret_id_num_uses": new.num_uses,
    })))
}

/// Secret ID metadata: a JSON object, or (as Vault's
/// `ParseArbitraryKeyValues`) a string holding a JSON object, base64 of one,
/// or `k1=v1,k2=v2`.
fn parse_metadata(p: &Params) -> ApiResult<BTreeMap<String, String>> {
    let fail = |why: String| ApiError::bad(format!("failed to parse metadata: {why}"));
    let strings = |m: &Map<String, Value>| {
        m.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(fail(format!("value of {k:?} is not a string"))),
            })
            .collect::<ApiResult<BTreeMap<_, _>>>()
    };
    let raw = match p.raw("metadata") {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => return strings(m),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(fail("expected a JSON object or key=value pairs".to_owned())),
    };
    if raw.is_empty() {
        return Ok(BTreeMap::new());
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(raw) {
        return strings(&m);
    }
    if let Ok(bytes) = decode_b64(raw)
        && let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&bytes)
    {
        return strings(&m);
    }
    raw.split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                fail(format!(
                    "invalid key/value pair {pair:?}: format must be key=value"
                ))
            })?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn time_string(t: Option<i64>) -> String {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339)
}

/// A secret ID's properties as Vault's lookups answer them.
fn secret_id_data(info: &SecretIdInfo) -> Value {
    json!({
        "secret_id_accessor": info.accessor,
        "secret_id_num_uses": info.num_uses,
        "secret_id_ttl": info.ttl,
        "creation_time": time_string(Some(info.creation_time)),
        "expiration_time": time_string(info.expiration_time),
        "last_updated_time": time_string(Some(info.last_updated_time)),
        "metadata": info.metadata,
        "cidr_list": [],
        "token_bound_cidrs": [],
    })
}

fn approle_login(
    store: &AppRoleStore,
    tokens: &TokenStore,
    mount_path: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let role_id = Zeroizing::new(p.string("role_id")?.unwrap_or_default());
    let secret_id = p.string("secret_id")?.map(Zeroizing::new);
    let login = store.login(&role_id, secret_id.as_deref().map(String::as_str), now)?;
    let mut meta = login.metadata;
    meta.insert("role_name".to_owned(), login.role.name.clone());
    let mount = mount(mount_path);
    issue(
        tokens,
        &login.role.token,
        meta,
        display_name(mount, ""),
        format!("auth/{mount}/login"),
        now,
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::approle::INVALID_LOGIN;
    use crate::auth::userpass::tests::barrier;
    use crate::storage::Storage;

    struct World {
        tokens: TokenStore,
        users: UserpassStore,
        roles: AppRoleStore,
        storage: Arc<crate::storage::MemoryStorage>,
    }

    fn world() -> World {
        let (storage, barrier, lookup) = barrier();
        World {
            tokens: TokenStore::load(Arc::clone(&barrier), Arc::clone(&lookup)).unwrap(),
            users: UserpassStore::load(
                Arc::clone(&barrier),
                Arc::clone(&lookup),
                "auth/u1/".to_owned(),
            )
            .unwrap(),
            roles: AppRoleStore::load(barrier, lookup, "auth/a1/".to_owned()).unwrap(),
            storage,
        }
    }

    fn params(v: Value) -> Params<'static> {
        match v {
            Value::Object(m) => Params::from_map(m),
            _ => Params::default(),
        }
    }

    impl World {
        fn up(&self, op: Op, rest: &str, body: Value) -> ApiResult<Reply> {
            userpass(
                &self.users,
                &self.tokens,
                "userpass",
                op,
                rest,
                &params(body),
                1000,
            )
        }

        fn ar(&self, op: Op, rest: &str, body: Value, now: i64) -> ApiResult<Reply> {
            approle(
                &self.roles,
                &self.tokens,
                "approle",
                op,
                rest,
                &params(body),
                now,
            )
        }
    }

    fn data(r: ApiResult<Reply>) -> Value {
        r.unwrap().data.unwrap()
    }

    fn auth(r: ApiResult<Reply>) -> Value {
        r.unwrap().auth.unwrap()
    }

    fn err(r: ApiResult<Reply>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn login_paths() {
        assert!(is_login("userpass", "login/alice"));
        assert!(!is_login("userpass", "login"));
        assert!(!is_login("userpass", "users/alice"));
        assert!(is_login("approle", "login"));
        assert!(!is_login("approle", "login/x"));
        assert!(!is_login("approle", "role/x"));
        assert!(!is_login("token", "login"));
        assert!(is_name("alice") && is_name("a") && is_name("a.b-c@d_e") && is_name("A1"));
        assert!(!is_name("") && !is_name("-a") && !is_name("a.") && !is_name("a b"));
    }

    #[test]
    fn userpass_endpoints() {
        let w = world();
        assert!(matches!(
            w.up(Op::List, "users", json!({})),
            Err(ApiError::NotFound)
        ));
        assert_eq!(
            err(w.up(Op::Update, "users/alice", json!({"policies": "dev"}))),
            "must provide either password or password_hash"
        );
        let r = w
            .up(
                Op::Update,
                "users/Alice",
                json!({"password": "pw", "policies": "Dev, ops", "token_ttl": "1h"}),
            )
            .unwrap();
        assert!(r.no_content);
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["token_policies"], json!(["dev", "ops"]));
        assert_eq!(user["policies"], json!(["dev", "ops"]));
        assert_eq!(user["token_ttl"], json!(3600));
        assert_eq!(user["token_bound_cidrs"], json!([]));
        assert_eq!(user["token_type"], json!("default"));
        assert!(user.get("password").is_none() && user.get("password_hash").is_none());
        assert_eq!(
            data(w.up(Op::List, "users", json!({}))),
            json!({"keys": ["alice"]})
        );
        w.up(Op::Update, "users/bob", json!({"password": "b"}))
            .unwrap();
        w.up(Op::Update, "users/carl", json!({"password": "c"}))
            .unwrap();
        assert_eq!(
            data(w.up(Op::List, "users", json!({"after": "alice", "limit": "1"}))),
            json!({"keys": ["bob"]})
        );
        assert!(matches!(
            w.up(Op::List, "users", json!({"after": "carl"})),
            Err(ApiError::NotFound)
        ));
        w.up(Op::Delete, "users/bob", json!({})).unwrap();
        w.up(Op::Delete, "users/carl", json!({})).unwrap();
        // token_policies replaces, and stops the legacy echo.
        w.up(
            Op::Update,
            "users/alice",
            json!({"token_policies": ["web"], "token_num_uses": 5}),
        )
        .unwrap();
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["token_policies"], json!(["web"]));
        assert!(user.get("policies").is_none());
        assert_eq!(user["token_num_uses"], json!(5));

        for (body, want) in [
            (
                json!({"token_bound_cidrs": "10.0.0.0/8"}),
                "token_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"bound_cidrs": ["10.0.0.0/8"]}),
                "bound_cidrs is not supported by transitd",
            ),
            (
                json!({"token_type": "batch"}),
                "token type \"batch\" is not supported by transitd",
            ),
            (
                json!({"token_ttl": 100, "token_max_ttl": 10}),
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ),
            (
                json!({"token_num_uses": -1}),
                "'token_num_uses' cannot be negative",
            ),
        ] {
            assert_eq!(err(w.up(Op::Update, "users/alice", body)), want);
        }
        assert!(
            w.up(Op::Update, "users/alice", json!({"token_bound_cidrs": []}))
                .is_ok()
        );

        w.up(
            Op::Update,
            "users/alice/policies",
            json!({"policies": ["a", "b"]}),
        )
        .unwrap();
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["policies"], json!(["a", "b"]));
        assert_eq!(
            err(w.up(Op::Update, "users/bob/policies", json!({"policies": "a"}))),
            "username does not exist"
        );
        assert_eq!(
            err(w.up(Op::Update, "users/bob/password", json!({"password": "x"}))),
            "username does not exist"
        );
        w.up(
            Op::Update,
            "users/alice/password",
            json!({"password": "pw2"}),
        )
        .unwrap();
        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({"password": "pw"}))),
            USERPASS_INVALID
        );

        // Paths and methods Vault does not serve.
        for (op, path) in [
            (Op::Read, "users"),
            (Op::List, "users/alice"),
            (Op::Read, "login/alice"),
        ] {
            assert!(matches!(
                w.up(op, path, json!({})),
                Err(ApiError::UnsupportedOperation)
            ));
        }
        for path in [
            "users/-x",
            "users/alice/other",
            "login",
            "login/a/b",
            "nothing",
        ] {
            assert!(matches!(
                w.up(Op::Update, path, json!({})),
                Err(ApiError::UnsupportedPath)
            ));
        }
        assert!(matches!(
            w.up(Op::Read, "users/bob", json!({})),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.up(Op::Delete, "users/alice", json!({}))
                .unwrap()
                .no_content
        );
        assert!(
            w.up(Op::Delete, "users/alice", json!({}))
                .unwrap()
                .no_content
        );
        assert!(matches!(
            w.up(Op::Read, "users/alice", json!({})),
            Err(ApiError::NotFound)
        ));
    }

    #[test]
    fn userpass_login_issues_a_token() {
        let w = world();
        w.up(
            Op::Update,
            "users/alice",
            json!({"password": "s3cret", "token_policies": "dev", "token_ttl": 600, "token_num_uses": 3}),
        )
        .unwrap();
        let a = auth(w.up(Op::Update, "login/Alice", json!({"password": "s3cret"})));
        assert_eq!(a["policies"], json!(["default", "dev"]));
        assert_eq!(a["token_policies"], json!(["default", "dev"]));
        assert_eq!(a["metadata"], json!({"username": "alice"}));
        assert_eq!(a["lease_duration"], json!(600));
        assert_eq!(a["renewable"], json!(true));
        assert_eq!(a["orphan"], json!(true));
        assert_eq!(a["num_uses"], json!(3));
        let token = a["client_token"].as_str().unwrap();
        assert!(token.starts_with("s."));
        let (_, entry) = w.tokens.lookup(token, 1000).unwrap().unwrap();
        assert_eq!(entry.display_name, "userpass-alice");
        assert_eq!(entry.path, "auth/userpass/login/Alice");
        assert!(entry.parent.is_none());

        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({"password": "nope"}))),
            USERPASS_INVALID
        );
        assert_eq!(
            err(w.up(Op::Update, "login/bob", json!({"password": "s3cret"}))),
            USERPASS_INVALID
        );
        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({}))),
            "missing password"
        );

        // No default policy, and never root.
        w.up(
            Op::Update,
            "users/carol",
            json!({"password": "pw", "token_policies": "ops", "token_no_default_policy": true}),
        )
        .unwrap();
        let a = auth(w.up(Op::Update, "login/carol", json!({"password": "pw"})));
        assert_eq!(a["policies"], json!(["ops"]));
        w.up(
            Op::Update,
            "users/root-wannabe",
            json!({"password": "pw", "policies": "root"}),
        )
        .unwrap();
        assert_eq!(
            err(w.up(Op::Update, "login/root-wannabe", json!({"password": "pw"}))),
            "auth methods cannot create root tokens"
        );
        // Passwords never reach storage in clear.
        for path in w.storage.list("").unwrap() {
            let v = w.storage.get(&path).unwrap().unwrap();
            assert!(!v.windows(6).any(|x| x == b"s3cret"));
        }
    }

    #[test]
    fn approle_endpoints_and_login() {
        let w = world();
        assert!(matches!(
            w.ar(Op::List, "role", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.ar(
                Op::Update,
                "role/CI",
                json!({"token_policies": "deploy,Build", "secret_id_num_uses": 2, "secret_id_ttl": "10m", "token_ttl": 300}),
                0,
            )
            .unwrap()
            .no_content
        );
        let role = data(w.ar(Op::Read, "role/ci", json!({}), 0));
        assert_eq!(role["bind_secret_id"], json!(true));
        assert_eq!(role["token_policies"], json!(["build", "deploy"]));
        assert_eq!(role["secret_id_num_uses"], json!(2));
        assert_eq!(role["secret_id_ttl"], json!(600));
        assert_eq!(role["local_secret_ids"], json!(false));
        assert!(role.get("role_id").is_none());
        assert_eq!(
            data(w.ar(Op::List, "role", json!({}), 0)),
            json!({"keys": ["ci"]})
        );
        let role_id = data(w.ar(Op::Read, "role/ci/role-id", json!({}), 0))["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(matches!(
            w.ar(Op::Read, "role/nope/role-id", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(
            w.ar(Op::Update, "role/nope/role-id", json!({"role_id": "x"}), 0),
            Err(ApiError::UnsupportedPath)
        ));

        let s = data(w.ar(
            Op::Update,
            "role/ci/secret-id",
            json!({"metadata": "{\"job\": \"7\"}"}),
            1000,
        ));
        assert_eq!(s["secret_id_ttl"], json!(600));
        assert_eq!(s["secret_id_num_uses"], json!(2));
        let secret_id = s["secret_id"].as_str().unwrap().to_owned();
        let accessor = s["secret_id_accessor"].as_str().unwrap().to_owned();
        assert_eq!(
            data(w.ar(Op::List, "role/ci/secret-id", json!({}), 1000)),
            json!({"keys": [accessor]})
        );
        let look = data(w.ar(
            Op::Update,
            "role/ci/secret-id/lookup",
            json!({"secret_id": secret_id}),
            1000,
        ));
        assert_eq!(look["secret_id_accessor"], json!(accessor));
        assert_eq!(look["metadata"], json!({"job": "7"}));
        assert_eq!(look["creation_time"], json!("1970-01-01T00:16:40Z"));
        assert_eq!(look["expiration_time"], json!("1970-01-01T00:26:40Z"));
        let by_acc = data(w.ar(
            Op::Update,
            "role/ci/secret-id-accessor/lookup",
            json!({"secret_id_accessor": accessor}),
            1000,
        ));
        assert_eq!(by_acc, look);

        // Login: an orphan token with the role's policies, and the metadata.
        let a = auth(w.ar(
            Op::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret_id}),
            1001,
        ));
        assert_eq!(a["policies"], json!(["build", "default", "deploy"]));
        assert_eq!(a["metadata"], json!({"job": "7", "role_name": "ci"}));
        assert_eq!(a["lease_duration"], json!(300));
        let (_, entry) = w
            .tokens
            .lookup(a["client_token"].as_str().unwrap(), 1001)
            .unwrap()
            .unwrap();
        assert_eq!(entry.display_name, "approle");
        assert_eq!(entry.path, "auth/approle/login");
        // Second and last use, then refused.
        w.ar(
            Op::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret_id}),
            1002,
        )
        .unwrap();
        assert_eq!(
            err(w.ar(
                Op::Update,
                "login",
                json!({"role_id": role_id, "secret_id": secret_id}),
                1003,
            )),
            INVALID_LOGIN
        );
        assert!(matches!(
            w.ar(Op::List, "role/ci/secret-id", json!({}), 1003),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id/lookup",
                json!({"secret_id": secret_id}),
                1003,
            )
            .unwrap()
            .no_content
        );
        assert_eq!(
            err(w.ar(Op::Update, "login", json!({"secret_id": secret_id}), 0)),
            "missing role_id"
        );
        assert_eq!(
            err(w.ar(
                Op::Update,
                "login",
                json!({"role_id": "nope", "secret_id": "x"}),
                0
            )),
            INVALID_LOGIN
        );
        assert_eq!(
            err(w.ar(Op::Update, "login", json!({"role_id": role_id}), 0)),
            "missing secret_id"
        );

        // Destroy by secret ID and by accessor.
        let a1 = data(w.ar(Op::Update, "role/ci/secret-id", json!({}), 0));
        let a2 = data(w.ar(
            Op::Update,
            "role/ci/secret-id",
            json!({"num_uses": 1, "ttl": 60}),
            0,
        ));
        assert_eq!(
            (
                a2["secret_id_num_uses"].clone(),
                a2["secret_id_ttl"].clone()
            ),
            (json!(1), json!(60))
        );
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id/destroy",
                json!({"secret_id": a1["secret_id"]}),
                0,
            )
            .unwrap()
            .no_content
        );
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id-accessor/destroy",
                json!({"secret_id_accessor": a2["secret_id_accessor"]}),
                0,
            )
            .unwrap()
            .no_content
        );
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id-accessor/destroy",
                json!({"secret_id_accessor": a2["secret_id_accessor"]}),
                0,
            )),
            format!(
                "failed to find accessor entry for secret_id_accessor: {}",
                a2["secret_id_accessor"]
            )
        );
        let missing = w
            .ar(
                Op::Update,
                "role/ci/secret-id-accessor/lookup",
                json!({"secret_id_accessor": "nope"}),
                0,
            )
            .unwrap();
        assert_eq!(missing.status, Some(StatusCode::NOT_FOUND));
        for s in [&a1, &a2] {
            assert_eq!(
                err(w.ar(
                    Op::Update,
                    "login",
                    json!({"role_id": role_id, "secret_id": s["secret_id"]}),
                    0,
                )),
                INVALID_LOGIN
            );
        }

        // A secret ID for a missing role: Vault's 404 with a message.
        let r = w
            .ar(Op::Update, "role/nope/secret-id", json!({}), 0)
            .unwrap();
        assert_eq!(r.status, Some(StatusCode::NOT_FOUND));
        assert_eq!(
            r.data.unwrap(),
            json!({"errors": ["role \"nope\" does not exist"]})
        );
        // Custom secret IDs and metadata forms.
        let c = data(w.ar(
            Op::Update,
            "role/ci/custom-secret-id",
            json!({"secret_id": "my-secret", "metadata": "a=1, b=2"}),
            0,
        ));
        assert_eq!(c["secret_id"], json!("my-secret"));
        let look = data(w.ar(
            Op::Update,
            "role/ci/secret-id/lookup",
            json!({"secret_id": "my-secret"}),
            0,
        ));
        assert_eq!(look["metadata"], json!({"a": "1", "b": "2"}));
        assert_eq!(look["expiration_time"], json!("1970-01-01T00:10:00Z"));
        assert_eq!(
            err(w.ar(Op::Update, "role/ci/custom-secret-id", json!({}), 0)),
            "missing secret_id"
        );
        assert!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id",
                json!({"metadata": "junk"}),
                0
            ))
            .starts_with("failed to parse metadata: ")
        );

        // Refusals.
        for (body, want) in [
            (
                json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
                "secret_id_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"token_bound_cidrs": ["10.0.0.0/8"]}),
                "token_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"secret_id_num_uses": -1}),
                "secret_id_num_uses cannot be negative",
            ),
            (
                json!({"token_period": "1h"}),
                "token_period is not supported by transitd",
            ),
        ] {
            assert_eq!(err(w.ar(Op::Update, "role/ci", body, 0)), want);
        }
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id",
                json!({"cidr_list": "10.0.0.0/8"}),
                0
            )),
            "cidr_list is not supported by transitd"
        );

        // role_id only.
        let r = w
            .ar(
                Op::Update,
                "role/svc",
                json!({"bind_secret_id": false, "role_id": "svc-id"}),
                0,
            )
            .unwrap();
        assert_eq!(r.warnings.len(), 1);
        let a = auth(w.ar(
            Op::Update,
            "login",
            json!({"role_id": "svc-id", "secret_id": null}),
            0,
        ));
        assert_eq!(a["metadata"], json!({"role_name": "svc"}));
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/role-id",
                json!({"role_id": "svc-id"}),
                0
            )),
            "role_id already in use"
        );

        // Delete a role: its secret IDs go too.
        w.ar(Op::Delete, "role/ci", json!({}), 0).unwrap();
        assert!(matches!(
            w.ar(Op::Read, "role/ci", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert_eq!(
            err(w.ar(Op::List, "role/ci/secret-id", json!({}), 0)),
            "role \"ci\" does not exist"
        );
        assert!(w.storage.list("auth/a1/secret_id/").unwrap().is_empty());
        for (op, path) in [
            (Op::Read, "login"),
            (Op::Read, "role"),
            (Op::Read, "role/svc/secret-id"),
        ] {
            assert!(matches!(
                w.ar(op, path, json!({}), 0),
                Err(ApiError::UnsupportedOperation)
            ));
        }
        for path in ["role/svc/period", "roles", "role/", "login/x"] {
            assert!(matches!(
                w.ar(Op::Update, path, json!({}), 0),
                Err(ApiError::UnsupportedPath)
            ));
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("userpass", "alice"), "userpass-alice");
        assert_eq!(display_name("approle", ""), "approle");
        assert_eq!(display_name("team/up/", "bob"), "team-up-bob");
    }
}
