//! Kubernetes: `config`, roles and `login` (OpenBao's `credential/kubernetes`).

use super::store_paths::{StoreApi, StorePath, serve_store};
use super::*;
use crate::auth::kubernetes::{
    AliasNameSource, KubeConfig, KubeLoginError, KubeReady, KubeRole, KubeSpec, KubeStore,
};

/// Serves `path` of a Kubernetes mount (`auth/<mount_path>/...`), which takes `op`.
/// The document's description of a Kubernetes mount's paths
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
    ]
};

const CONFIG_FIELDS: &[Field] = &[
    f("kubernetes_host", Ty::Str),
    f("kubernetes_ca_cert", Ty::Str),
    f("token_reviewer_jwt", Ty::Str),
    f("pem_keys", Ty::Strings),
    f("issuer", Ty::Str),
    f("disable_iss_validation", Ty::Bool),
    f("disable_local_ca_jwt", Ty::Bool),
];
const ROLE_FIELDS: &[Field] = &[
    f("audience", Ty::Str),
    f("alias_name_source", Ty::Str),
    f("bound_cidrs", Ty::Strings),
    f("bound_service_account_names", Ty::Strings),
    f("bound_service_account_namespaces", Ty::Strings),
    f("bound_service_account_namespace_selector", Ty::Str),
    f("num_uses", Ty::Int),
];
const LOGIN_FIELDS: &[Field] = &[f("role", Ty::Str).required(), f("jwt", Ty::Str).required()];

pub(crate) fn kubernetes(
    store: &KubeStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    path: &StorePath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    match path {
        StorePath::Login => kube_login(store, tokens, mount_path, p, now),
        path => serve_store(store, op, path, p),
    }
}

impl StoreApi for KubeSpec {
    fn config_data(ready: &KubeReady) -> Value {
        config_data(&ready.config)
    }

    fn write_config(store: &KubeStore, p: &Params) -> ApiResult<Reply> {
        write_config(store, p)
    }

    fn role_data(role: &KubeRole) -> Value {
        role_data(role)
    }

    fn write_role(store: &KubeStore, name: &str, p: &Params) -> ApiResult<Reply> {
        write_role(store, name, p)
    }
}

/// A configuration write replaces the whole configuration.
fn write_config(store: &KubeStore, p: &Params) -> ApiResult<Reply> {
    let text = |field: &str| -> ApiResult<String> { Ok(p.string(field)?.unwrap_or_default()) };
    let config = KubeConfig {
        kubernetes_host: text("kubernetes_host")?,
        kubernetes_ca_cert: text("kubernetes_ca_cert")?,
        token_reviewer_jwt: text("token_reviewer_jwt")?,
        pem_keys: string_list(p, "pem_keys")?
            .unwrap_or_default()
            .into_iter()
            .map(|k| k.trim().to_owned())
            .collect(),
        issuer: text("issuer")?,
        disable_iss_validation: p.bool("disable_iss_validation")?.unwrap_or(true),
        disable_local_ca_jwt: p.bool("disable_local_ca_jwt")?.unwrap_or(false),
    };
    let ready = KubeReady::new(config.clone())?;
    store.write_config(&config, ready)?;
    Ok(Reply::no_content())
}

fn config_data(c: &KubeConfig) -> Value {
    json!({
        "disable_iss_validation": c.disable_iss_validation,
        "disable_local_ca_jwt": c.disable_local_ca_jwt,
        "issuer": c.issuer,
        "kubernetes_ca_cert": c.kubernetes_ca_cert,
        "kubernetes_host": c.kubernetes_host,
        "pem_keys": c.pem_keys,
        "token_reviewer_jwt_set": !c.token_reviewer_jwt.is_empty(),
    })
}

fn write_role(store: &KubeStore, name: &str, p: &Params) -> ApiResult<Reply> {
    refuse_unless_default(p, &["bound_service_account_namespace_selector"])?;
    refuse_list(p, "bound_cidrs")?;
    let mut patch = TokenPatch::parse(p, true)?;
    // Vault's deprecated `num_uses`, as its `token_num_uses`.
    if patch.num_uses.is_none() {
        patch.num_uses = non_negative(p, "num_uses")?;
    }
    let names = string_list(p, "bound_service_account_names")?;
    let namespaces = string_list(p, "bound_service_account_namespaces")?;
    let audience = p.string("audience")?;
    let alias = p
        .string("alias_name_source")?
        .map(|s| AliasNameSource::parse(&s))
        .transpose()?;
    store.write_role(name, |role| {
        patch.apply(&mut role.token, &mut role.legacy_policies);
        if let Some(v) = names {
            role.bound_service_account_names = v;
        }
        if let Some(v) = namespaces {
            role.bound_service_account_namespaces = v;
        }
        if let Some(v) = audience {
            role.audience = v;
        }
        if let Some(v) = alias {
            role.alias_name_source = v;
        }
        Ok(())
    })?;
    Ok(Reply::no_content())
}

fn role_data(role: &KubeRole) -> Value {
    let mut data = token_data(&role.token, role.legacy_policies);
    for (k, v) in [
        ("alias_name_source", json!(role.alias_name_source.name())),
        ("audience", json!(role.audience)),
        (
            "bound_service_account_names",
            json!(role.bound_service_account_names),
        ),
        ("bound_service_account_namespace_selector", json!("")),
        (
            "bound_service_account_namespaces",
            json!(role.bound_service_account_namespaces),
        ),
    ] {
        data.insert(k.into(), v);
    }
    Value::Object(data)
}

fn kube_login(
    store: &KubeStore,
    tokens: &TokenStore,
    mount_path: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let role = p.string("role")?.unwrap_or_default().to_lowercase();
    let token = Zeroizing::new(p.string("jwt")?.unwrap_or_default());
    let login = match store.login(&role, &token, now) {
        Ok(login) => login,
        Err(KubeLoginError::BadRequest(m)) => return Err(ApiError::bad(m)),
        Err(KubeLoginError::Forbidden(None)) => return Err(ApiError::PermissionDenied),
        Err(KubeLoginError::Forbidden(Some(m))) => {
            return Ok(Reply::bare(json!({ "errors": [m] }), StatusCode::FORBIDDEN));
        }
    };
    let mount = mount(mount_path);
    let display = format!("{}-{}", login.account.namespace, login.account.name);
    issue(
        tokens,
        &login.role.token,
        login.metadata,
        display_name(mount, &display),
        format!("auth/{mount}/login"),
        now,
    )
}
