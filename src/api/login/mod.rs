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

use super::keys::rfc3339;
use super::token::{auth_block, string_list};
use super::unsupported::{refuse_unless_default, unsupported};
use super::{Op, names};
use crate::api::openapi::{Answer, Field, OpDoc, PathDoc, Ty, f};
use crate::auth::approle::{AppRoleStore, Role, SecretIdInfo, SecretIdRequest};
use crate::auth::methods::{Backend, Method as AuthMethod};
use crate::auth::token::{TokenRequest, TokenStore};
use crate::auth::userpass::{TokenParams, UserpassStore};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, decode_b64};
use crate::response::Reply;
use crate::serve::ClientTls;

mod approle;
mod cert;
mod jwt;
mod kubernetes;
mod store_paths;
mod userpass;

pub(crate) use approle::{AppRolePath, approle};
pub(crate) use cert::cert;
pub(crate) use jwt::{JwtPath, jwt};
pub(crate) use kubernetes::kubernetes;
pub(crate) use store_paths::StorePath;
pub(crate) use userpass::{UserpassPath, userpass};

/// Userpass's answer to every failed login (OpenBao `path_login.go`).
pub const USERPASS_INVALID: &str = "invalid username or password";

/// One path inside a login method's mount, by the method's kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MethodPath {
    Userpass(UserpassPath),
    AppRole(AppRolePath),
    Jwt(JwtPath),
    Kubernetes(StorePath),
    Cert(StorePath),
}

impl MethodPath {
    pub(crate) fn parse(backend: &Backend, rest: &str) -> Self {
        match backend {
            Backend::Userpass(_) => Self::Userpass(UserpassPath::parse(rest)),
            Backend::AppRole(_) => Self::AppRole(AppRolePath::parse(rest)),
            Backend::Jwt(_) => Self::Jwt(JwtPath::parse(rest)),
            Backend::Kubernetes(_) => Self::Kubernetes(StorePath::parse(rest)),
            Backend::Cert(_) => Self::Cert(StorePath::parse_in(rest, "certs")),
        }
    }

    /// Whether it is an endpoint at all (otherwise 404).
    pub(crate) fn exists(&self) -> bool {
        !matches!(
            self,
            Self::Userpass(UserpassPath::NoLogin | UserpassPath::Unknown)
                | Self::AppRole(AppRolePath::Unknown)
                | Self::Jwt(JwtPath::Store(StorePath::Unknown))
                | Self::Kubernetes(StorePath::Unknown)
                | Self::Cert(StorePath::Unknown)
        )
    }

    pub(crate) fn allows(&self, op: Op) -> bool {
        match self {
            Self::Userpass(path) => path.allows(op),
            Self::AppRole(path) => path.allows(op),
            Self::Jwt(path) => path.allows(op),
            Self::Kubernetes(path) | Self::Cert(path) => path.allows(op),
        }
    }

    /// The canonical user or role name it carries (the path's second segment).
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::Userpass(path) => path.name(),
            Self::AppRole(path) => path.name(),
            Self::Jwt(path) => path.name(),
            Self::Kubernetes(path) | Self::Cert(path) => path.name(),
        }
    }

    /// Whether it needs no token: the logins.
    pub(crate) fn is_public(&self) -> bool {
        match self {
            Self::Userpass(path) => path.is_public(),
            Self::AppRole(path) => path.is_public(),
            Self::Jwt(path) => path.is_public(),
            Self::Kubernetes(path) | Self::Cert(path) => path.is_public(),
        }
    }

    /// Whether `op` would create its user or role: asked of this node's
    /// cache only, and failing closed (anything not known to exist, an error
    /// included, counts as created).
    pub(crate) fn creates(&self, backend: &Backend, op: Op) -> bool {
        match (self, backend) {
            (Self::Userpass(path), Backend::Userpass(store)) => path
                .may_create(op)
                .is_some_and(|name| !matches!(store.get(name), Ok(Some(_)))),
            (Self::AppRole(path), Backend::AppRole(store)) => path
                .may_create(op)
                .is_some_and(|name| !matches!(store.cached_role(name), Ok(Some(_)))),
            (Self::Jwt(path), Backend::Jwt(store)) => path
                .may_create(op)
                .is_some_and(|name| !matches!(store.cached_role(name), Ok(Some(_)))),
            (Self::Kubernetes(path), Backend::Kubernetes(store)) => path
                .may_create(op)
                .is_some_and(|name| !matches!(store.cached_role(name), Ok(Some(_)))),
            (Self::Cert(path), Backend::Cert(store)) => path
                .may_create(op)
                .is_some_and(|name| !matches!(store.cached_role(name), Ok(Some(_)))),
            _ => false,
        }
    }
}

/// The paging fields of every list of a login method.
const LIST_FIELDS: &[Field] = &[f("after", Ty::Str), f("limit", Ty::Int)];

/// The token settings every role or user of a login method takes.
const TOKEN_FIELDS: &[Field] = &[
    f("token_policies", Ty::Strings),
    f("policies", Ty::Strings),
    f("token_ttl", Ty::Duration),
    f("token_max_ttl", Ty::Duration),
    f("token_explicit_max_ttl", Ty::Duration),
    f("token_num_uses", Ty::Int),
    f("token_no_default_policy", Ty::Bool),
    f("token_type", Ty::Str).one_of(&["default", "service"]),
    f("token_period", Ty::Duration),
    f("period", Ty::Duration),
    f("token_bound_cidrs", Ty::Strings),
    f("token_strictly_bind_ip", Ty::Bool),
    f("ttl", Ty::Duration).later(),
    f("max_ttl", Ty::Duration).later(),
];

/// The document's description of a login method's paths, by its backend.
pub(crate) fn docs(backend: &Backend) -> &'static [PathDoc] {
    match backend {
        Backend::Userpass(_) => userpass::DOCS,
        Backend::AppRole(_) => approle::DOCS,
        Backend::Jwt(_) => jwt::DOCS,
        Backend::Kubernetes(_) => kubernetes::DOCS,
        Backend::Cert(_) => cert::DOCS,
    }
}

/// A login method kind's declared paths, by its Vault name (tests).
#[cfg(test)]
pub(crate) fn docs_of(kind: &str) -> &'static [PathDoc] {
    match kind {
        "userpass" => userpass::DOCS,
        "approle" => approle::DOCS,
        "jwt" => jwt::DOCS,
        "kubernetes" => kubernetes::DOCS,
        _ => cert::DOCS,
    }
}

/// Serves `path` of `method`, which takes `op`; `client` is the TLS side of
/// the request's connection (read by the cert login only).
pub(crate) fn serve(
    tokens: &TokenStore,
    method: &AuthMethod,
    op: Op,
    path: &MethodPath,
    p: &Params,
    client: &ClientTls,
    now: i64,
) -> ApiResult<Reply> {
    let mount = &method.entry.path;
    let served = match (&method.backend, path) {
        (Backend::Userpass(store), MethodPath::Userpass(inner)) => {
            userpass(store, tokens, mount, op, inner, p, now)
        }
        (Backend::AppRole(store), MethodPath::AppRole(inner)) => {
            approle(store, tokens, mount, op, inner, p, now)
        }
        (Backend::Jwt(store), MethodPath::Jwt(path)) => jwt(store, tokens, mount, op, path, p, now),
        (Backend::Kubernetes(store), MethodPath::Kubernetes(path)) => {
            kubernetes(store, tokens, mount, op, path, p, now)
        }
        (Backend::Cert(store), MethodPath::Cert(path)) => {
            cert(store, tokens, mount, op, path, p, client, now)
        }
        // Parsed for this method's backend: cannot differ.
        _ => return Err(ApiError::UnsupportedPath),
    };
    // Logins are the public paths; a failed one is counted by method.
    if served.is_err() && path.is_public() {
        crate::metrics::metrics().login_failure(method.entry.kind.name());
    }
    served
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

/// Refuse a list field (CIDR bindings) that transitd cannot enforce.
fn refuse_list(p: &Params, field: &str) -> ApiResult<()> {
    if string_list(p, field)?.is_some_and(|l| !l.is_empty()) {
        return Err(unsupported(field));
    }
    Ok(())
}

/// A whole-number field that must not be negative (`None` when absent).
fn non_negative(p: &Params, field: &str) -> ApiResult<Option<u64>> {
    p.int(field)?
        .map(|n| {
            u64::try_from(n).map_err(|_| ApiError::bad(format!("'{field}' cannot be negative")))
        })
        .transpose()
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
        patch.num_uses = non_negative(p, "token_num_uses")?;
        patch.no_default_policy = p.bool("token_no_default_policy")?;
        Ok(patch)
    }

    /// Vault's upgrade rule: `token_policies` wins; `policies` alone sets
    /// both and is echoed on reads.
    fn parse_policies(&mut self, p: &Params) -> ApiResult<()> {
        let legacy_given = p.has("policies");
        if let Some(list) = string_list(p, "token_policies")? {
            self.policies = Some(names::policy_list(list));
            self.legacy_policies = Some(legacy_given);
        } else if let Some(list) = string_list(p, "policies")? {
            self.policies = Some(names::policy_list(list));
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
    let mut policies = names::policy_list(t.token_policies.clone());
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

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::userpass::tests::barrier;

    pub(super) struct World {
        pub(super) tokens: TokenStore,
        pub(super) users: UserpassStore,
        pub(super) roles: AppRoleStore,
        pub(super) storage: Arc<crate::storage::MemoryStorage>,
    }

    pub(super) fn world() -> World {
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

    pub(super) fn params(v: Value) -> Params<'static> {
        match v {
            Value::Object(m) => Params::from_map(m),
            _ => Params::default(),
        }
    }

    impl World {
        /// As the route serves it: parsed, 405 for an operation it does not take.
        pub(super) fn up(&self, op: Op, rest: &str, body: Value) -> ApiResult<Reply> {
            let path = UserpassPath::parse(rest);
            if !path.allows(op) {
                return Err(ApiError::UnsupportedOperation);
            }
            userpass(
                &self.users,
                &self.tokens,
                "userpass",
                op,
                &path,
                &params(body),
                1000,
            )
        }

        pub(super) fn ar(&self, op: Op, rest: &str, body: Value, now: i64) -> ApiResult<Reply> {
            let path = AppRolePath::parse(rest);
            if !path.allows(op) {
                return Err(ApiError::UnsupportedOperation);
            }
            approle(
                &self.roles,
                &self.tokens,
                "approle",
                op,
                &path,
                &params(body),
                now,
            )
        }
    }

    pub(super) fn data(r: ApiResult<Reply>) -> Value {
        r.unwrap().data.unwrap()
    }

    pub(super) fn auth(r: ApiResult<Reply>) -> Value {
        r.unwrap().auth.unwrap()
    }

    pub(super) fn err(r: ApiResult<Reply>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn login_paths() {
        let up = |rest: &str| UserpassPath::parse(rest).is_public();
        let ar = |rest: &str| AppRolePath::parse(rest).is_public();
        assert!(up("login/alice") && up("login/a/b") && up("login/a b"));
        assert!(!up("login") && !up("users/alice"));
        assert!(ar("login"));
        assert!(!ar("login/x") && !ar("role/x"));
        assert_eq!(
            UserpassPath::parse("login/Alice"),
            UserpassPath::Login("alice".into())
        );
        assert_eq!(UserpassPath::parse("login/a b"), UserpassPath::NoLogin);
        assert_eq!(
            AppRolePath::parse("role/CI/secret-id"),
            AppRolePath::SecretId("ci".into())
        );
        assert_eq!(AppRolePath::parse("role/c i"), AppRolePath::Unknown);
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("userpass", "alice"), "userpass-alice");
        assert_eq!(display_name("approle", ""), "approle");
        assert_eq!(display_name("team/up/", "bob"), "team-up-bob");
    }
}
