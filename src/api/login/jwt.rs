//! JWT: `config`, roles and `login` (OpenBao's `credential/jwt`, non-browser
//! part). The OIDC browser flow's paths answer that it is not served.

use super::store_paths::{StoreApi, StorePath, serve_store};
use super::*;
use crate::auth::jwt::{BoundClaimsType, Configured, JwtConfig, JwtRole, JwtSpec, JwtStore};
use crate::auth::jwt_verify::Leeways;
use crate::go_syntax::parse_duration_secs;

/// One path inside a JWT mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JwtPath {
    Store(StorePath),
    /// `oidc/auth_url`, `oidc/callback`, `oidc/poll`: Vault's browser flow,
    /// public there; refused here with a clear 400, not a 403.
    OidcFlow,
}

/// The document's description of a JWT mount's paths
/// (`api/openapi.rs`), checked by the route tests.
pub(crate) const DOCS: &[PathDoc] = {
    use crate::api::openapi::plain_path as p;
    use Answer::*;
    use Op::*;
    &[
        p(
            "config",
            &[
                OpDoc::new(Read, "read-configuration", Data),
                OpDoc::new(Update, "configure", Empty).with(CONFIG_FIELDS),
            ],
        ),
        p(
            "role",
            &[OpDoc::new(List, "list-roles", Data).with(LIST_FIELDS)],
        ),
        p(
            "role/{name}",
            &[
                OpDoc::new(Read, "read-role", Data),
                OpDoc::new(Update, "write-role", Empty)
                    .with(ROLE_FIELDS)
                    .and(TOKEN_FIELDS),
                OpDoc::new(Delete, "delete-role", Empty),
            ],
        ),
        p(
            "login",
            &[OpDoc::new(Update, "login", Auth).with(LOGIN_FIELDS)],
        ),
        p("oidc/auth_url", OIDC_AUTH_URL),
        p("oidc/callback", OIDC_CALLBACK),
        p("oidc/poll", OIDC_POLL),
    ]
};

const CONFIG_FIELDS: &[Field] = &[
    f("jwks_url", Ty::Str),
    f("jwks_ca_pem", Ty::Str),
    f("jwks_pairs", Ty::Objects),
    f("jwt_validation_pubkeys", Ty::Strings),
    f("jwt_supported_algs", Ty::Strings),
    f("bound_issuer", Ty::Str),
    f("default_role", Ty::Str),
    f("namespace_in_state", Ty::Bool),
    f("oidc_discovery_url", Ty::Str),
    f("oidc_discovery_ca_pem", Ty::Str),
    f("oidc_client_id", Ty::Str),
    f("oidc_client_secret", Ty::Str),
    f("oidc_response_mode", Ty::Str),
    f("oidc_response_types", Ty::Strings),
    f("override_allowed_server_names", Ty::Strings),
    f("provider_config", Ty::Object),
    f("skip_jwks_validation", Ty::Bool),
];
const ROLE_FIELDS: &[Field] = &[
    f("role_type", Ty::Str).one_of(&["jwt"]),
    f("user_claim", Ty::Str),
    f("allowed_redirect_uris", Ty::Strings),
    f("callback_mode", Ty::Str).one_of(&["client"]),
    f("max_age", Ty::Duration),
    f("oauth2_metadata", Ty::Strings),
    f("oidc_disable_confirmation", Ty::Bool),
    f("oidc_scopes", Ty::Strings),
    f("poll_interval", Ty::Int),
    f("token_policies_template_claims", Ty::Bool),
    f("verbose_oidc_logging", Ty::Bool),
    f("bound_audiences", Ty::Strings),
    f("bound_claims", Ty::Object),
    f("bound_claims_type", Ty::Str).one_of(&["string", "glob"]),
    f("bound_subject", Ty::Str),
    f("claim_mappings", Ty::Object),
    f("clock_skew_leeway", Ty::Duration),
    f("expiration_leeway", Ty::Duration),
    f("not_before_leeway", Ty::Duration),
    f("groups_claim", Ty::Str),
    f("user_claim_json_pointer", Ty::Bool),
];
/// The browser (OIDC) flow's paths: refused with a 400 that says so.
const OIDC_AUTH_URL: &[OpDoc] = &[
    OpDoc::new(Op::Read, "oidc-read-auth-url", Answer::Data),
    OpDoc::new(Op::Update, "oidc-auth-url", Answer::Data),
];
const OIDC_CALLBACK: &[OpDoc] = &[
    OpDoc::new(Op::Read, "oidc-read-callback", Answer::Data),
    OpDoc::new(Op::Update, "oidc-callback", Answer::Data),
];
const OIDC_POLL: &[OpDoc] = &[
    OpDoc::new(Op::Read, "oidc-read-poll", Answer::Data),
    OpDoc::new(Op::Update, "oidc-poll", Answer::Data),
];
const LOGIN_FIELDS: &[Field] = &[f("role", Ty::Str), f("jwt", Ty::Str).required()];

impl JwtPath {
    pub(crate) fn parse(rest: &str) -> Self {
        match rest {
            "oidc/auth_url" | "oidc/callback" | "oidc/poll" => Self::OidcFlow,
            rest => Self::Store(StorePath::parse(rest)),
        }
    }

    pub(crate) fn allows(&self, op: Op) -> bool {
        match self {
            Self::Store(path) => path.allows(op),
            Self::OidcFlow => matches!(op, Op::Read | Op::Update),
        }
    }

    pub(crate) fn is_public(&self) -> bool {
        match self {
            Self::Store(path) => path.is_public(),
            Self::OidcFlow => true,
        }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::Store(path) => path.name(),
            Self::OidcFlow => None,
        }
    }

    pub(crate) fn may_create(&self, op: Op) -> Option<&str> {
        match self {
            Self::Store(path) => path.may_create(op),
            Self::OidcFlow => None,
        }
    }
}

/// Serves `path` of a JWT mount (`auth/<mount_path>/...`), which takes `op`.
pub(crate) fn jwt(
    store: &JwtStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    path: &JwtPath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    match path {
        JwtPath::Store(StorePath::Login) => jwt_login(store, tokens, mount_path, p, now),
        JwtPath::Store(path) => serve_store(store, op, path, p),
        JwtPath::OidcFlow => Err(ApiError::bad(
            "the OIDC browser flow is not supported by transitd: log in with a signed JWT at login",
        )),
    }
}

impl StoreApi for JwtSpec {
    fn config_data(ready: &Configured) -> Value {
        config_data(&ready.config)
    }

    fn write_config(store: &JwtStore, p: &Params) -> ApiResult<Reply> {
        write_config(store, p)
    }

    fn role_data(role: &JwtRole) -> Value {
        role_data(role)
    }

    fn write_role(store: &JwtStore, name: &str, p: &Params) -> ApiResult<Reply> {
        write_role(store, name, p)
    }
}

/// OIDC-only and provider fields: refused unless default.
const UNSUPPORTED_CONFIG: [&str; 8] = [
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_response_mode",
    "oidc_response_types",
    "provider_config",
    "override_allowed_server_names",
    "jwks_pairs",
    "skip_jwks_validation",
];

fn string_or_empty(p: &Params, field: &str) -> ApiResult<String> {
    Ok(p.string(field)?.unwrap_or_default())
}

/// A configuration write replaces the whole configuration, as Vault's does.
fn write_config(store: &JwtStore, p: &Params) -> ApiResult<Reply> {
    refuse_unless_default(p, &UNSUPPORTED_CONFIG)?;
    // Vault's default is true; it only matters to the browser flow.
    if p.bool("namespace_in_state")? == Some(false) {
        return Err(unsupported("namespace_in_state"));
    }
    let config = JwtConfig {
        oidc_discovery_url: string_or_empty(p, "oidc_discovery_url")?,
        oidc_discovery_ca_pem: string_or_empty(p, "oidc_discovery_ca_pem")?,
        jwks_url: string_or_empty(p, "jwks_url")?,
        jwks_ca_pem: string_or_empty(p, "jwks_ca_pem")?,
        // Stored trimmed, as Vault shows them.
        jwt_validation_pubkeys: string_list(p, "jwt_validation_pubkeys")?
            .unwrap_or_default()
            .into_iter()
            .map(|k| k.trim().to_owned())
            .collect(),
        bound_issuer: string_or_empty(p, "bound_issuer")?,
        jwt_supported_algs: string_list(p, "jwt_supported_algs")?.unwrap_or_default(),
        default_role: string_or_empty(p, "default_role")?.to_lowercase(),
    };
    let configured = Configured::new(config.clone())?;
    configured.check_reachable()?;
    store.write_config(&config, configured)?;
    Ok(Reply::no_content())
}

fn config_data(c: &JwtConfig) -> Value {
    json!({
        "bound_issuer": c.bound_issuer,
        "default_role": c.default_role,
        "jwks_ca_pem": c.jwks_ca_pem,
        "jwks_url": c.jwks_url,
        "jwt_supported_algs": c.jwt_supported_algs,
        "jwt_validation_pubkeys": c.jwt_validation_pubkeys,
        "namespace_in_state": true,
        "oidc_client_id": "",
        "oidc_discovery_ca_pem": c.oidc_discovery_ca_pem,
        "oidc_discovery_url": c.oidc_discovery_url,
        "oidc_response_mode": "",
        "oidc_response_types": [],
        "override_allowed_server_names": [],
        "provider_config": {},
        "status": "valid",
    })
}

/// Browser-flow and templating fields of a role: refused unless default.
const UNSUPPORTED_ROLE: [&str; 8] = [
    "allowed_redirect_uris",
    "oidc_scopes",
    "verbose_oidc_logging",
    "max_age",
    "oidc_disable_confirmation",
    "poll_interval",
    "oauth2_metadata",
    "token_policies_template_claims",
];

/// Vault's signed duration in seconds: an integer or a Go duration, either
/// possibly negative (-1 disables a leeway).
fn signed_secs(p: &Params, field: &str) -> ApiResult<Option<i64>> {
    let bad = || {
        ApiError::bad(format!(
            "error converting input for field {field:?}: cannot parse value as 'duration'"
        ))
    };
    let Some(raw) = p.raw(field) else {
        return Ok(None);
    };
    let text = crate::request::value_to_string(field, raw)?;
    let text = text.trim();
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let secs = i64::try_from(parse_duration_secs(magnitude).ok_or_else(bad)?).map_err(|_| bad())?;
    Ok(Some(if negative { -secs } else { secs }))
}

fn object_field(p: &Params, field: &str) -> ApiResult<Option<Map<String, Value>>> {
    match p.raw(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        // Vault's map fields also take a string holding a JSON object.
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(Some(m)),
            _ => Err(ApiError::bad(format!("{field} must be a JSON object"))),
        },
        Some(_) => Err(ApiError::bad(format!("{field} must be a JSON object"))),
    }
}

fn write_role(store: &JwtStore, name: &str, p: &Params) -> ApiResult<Reply> {
    refuse_unless_default(p, &UNSUPPORTED_ROLE)?;
    if p.string("callback_mode")?
        .is_some_and(|m| !m.is_empty() && m != "client")
    {
        return Err(unsupported("callback_mode"));
    }
    // A new role without `role_type` is an OIDC role in Vault.
    let role_type = p.string("role_type")?;
    match role_type.as_deref() {
        Some("jwt") => {}
        None | Some("") if store.get_role(name)?.is_some() => {}
        Some("oidc") | None | Some("") => {
            return Err(ApiError::bad(
                "role_type \"oidc\" is not supported by transitd (no browser OIDC flow): set role_type=jwt",
            ));
        }
        Some(other) => return Err(ApiError::bad(format!("invalid 'role_type': {other}"))),
    }
    let patch = TokenPatch::parse(p, false)?;
    let leeways = [
        signed_secs(p, "clock_skew_leeway")?,
        signed_secs(p, "expiration_leeway")?,
        signed_secs(p, "not_before_leeway")?,
    ];
    let bound_audiences = string_list(p, "bound_audiences")?;
    let bound_subject = p.string("bound_subject")?;
    let bound_claims_type = p
        .string("bound_claims_type")?
        .filter(|t| !t.is_empty())
        .map(|t| BoundClaimsType::parse(&t))
        .transpose()?;
    let bound_claims = object_field(p, "bound_claims")?;
    let claim_mappings = object_field(p, "claim_mappings")?
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(ApiError::bad("claim_mappings values must be strings")),
                })
                .collect::<ApiResult<BTreeMap<String, String>>>()
        })
        .transpose()?;
    let user_claim = p.string("user_claim")?;
    let user_claim_json_pointer = p.bool("user_claim_json_pointer")?;
    let groups_claim = p.string("groups_claim")?;
    store.write_role(name, |role| {
        patch.apply(&mut role.token, &mut role.legacy_policies);
        let l = &mut role.leeways;
        for (slot, value) in [&mut l.clock_skew, &mut l.expiration, &mut l.not_before]
            .into_iter()
            .zip(leeways)
        {
            if let Some(v) = value {
                *slot = v;
            }
        }
        if let Some(v) = bound_audiences {
            role.bound_audiences = v;
        }
        if let Some(v) = bound_subject {
            role.bound_subject = v;
        }
        // Vault reads the type on every write (default "string").
        role.bound_claims_type = bound_claims_type.unwrap_or_default();
        if let Some(v) = bound_claims {
            role.bound_claims = Some(v);
        }
        if let Some(v) = claim_mappings {
            role.claim_mappings = Some(v);
        }
        if let Some(v) = user_claim {
            role.user_claim = v;
        }
        if let Some(v) = user_claim_json_pointer {
            role.user_claim_json_pointer = v;
        }
        if let Some(v) = groups_claim {
            role.groups_claim = v;
        }
        Ok(())
    })?;
    Ok(Reply::no_content())
}

fn role_data(role: &JwtRole) -> Value {
    let mut data = token_data(&role.token, role.legacy_policies);
    let Leeways {
        clock_skew,
        expiration,
        not_before,
    } = role.leeways;
    for (k, v) in [
        ("role_type", json!("jwt")),
        ("bound_audiences", json!(role.bound_audiences)),
        ("bound_subject", json!(role.bound_subject)),
        ("bound_claims", json!(role.bound_claims)),
        ("bound_claims_type", json!(role.bound_claims_type.name())),
        ("claim_mappings", json!(role.claim_mappings)),
        ("user_claim", json!(role.user_claim)),
        (
            "user_claim_json_pointer",
            json!(role.user_claim_json_pointer),
        ),
        ("groups_claim", json!(role.groups_claim)),
        ("clock_skew_leeway", json!(clock_skew)),
        ("expiration_leeway", json!(expiration)),
        ("not_before_leeway", json!(not_before)),
        ("allowed_redirect_uris", Value::Null),
        ("oidc_scopes", Value::Null),
        ("oauth2_metadata", Value::Null),
        ("callback_mode", json!("client")),
        ("max_age", json!(0)),
        ("oidc_disable_confirmation", json!(false)),
        ("verbose_oidc_logging", json!(false)),
        ("token_policies_template_claims", json!(false)),
    ] {
        data.insert(k.into(), v);
    }
    Value::Object(data)
}

fn jwt_login(
    store: &JwtStore,
    tokens: &TokenStore,
    mount_path: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let role = p.string("role")?.unwrap_or_default().to_lowercase();
    let token = Zeroizing::new(p.string("jwt")?.unwrap_or_default());
    let login = store.login(&role, &token, now)?;
    let mount = mount(mount_path);
    issue(
        tokens,
        &login.role.token,
        login.metadata,
        display_name(mount, &login.user),
        format!("auth/{mount}/login"),
        now,
    )
}
