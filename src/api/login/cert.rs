//! TLS certificates: `config`, `certs/:name` and `login` (OpenBao's
//! `credential/cert`). The login takes the client certificate of the
//! request's connection; every failure answers 400 with Vault's text.

use super::store_paths::{StoreApi, StorePath, serve_store};
use super::*;
use crate::auth::cert::{CertEntry, CertLoginError, CertSpec, CertStore, NO_CLIENT_CERT};
use crate::serve::ClientTls;

/// The OCSP and CRL settings of an entry: revocation checking is not built,
/// so only their defaults are taken.
const REVOCATION_FIELDS: &[&str] = &[
    "ocsp_enabled",
    "ocsp_ca_certificates",
    "ocsp_servers_override",
    "ocsp_fail_open",
    "ocsp_query_all_servers",
];

/// The document's description of a TLS certificate mount's paths
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
            "certs",
            &[OpDoc::new(List, "list-roles", Data).with(LIST_FIELDS)],
        ),
        p(
            "certs/{name}",
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
    f("disable_binding", Ty::Bool),
    f("enable_identity_alias_metadata", Ty::Bool),
    f("ocsp_cache_size", Ty::Int),
];
const ROLE_FIELDS: &[Field] = &[
    f("certificate", Ty::Str),
    f("display_name", Ty::Str),
    f("allowed_names", Ty::Strings),
    f("allowed_common_names", Ty::Strings),
    f("allowed_dns_sans", Ty::Strings),
    f("allowed_email_sans", Ty::Strings),
    f("allowed_uri_sans", Ty::Strings),
    f("allowed_organizational_units", Ty::Strings),
    f("allowed_metadata_extensions", Ty::Strings),
    f("required_extensions", Ty::Strings),
    f("bound_cidrs", Ty::Strings),
    f("lease", Ty::Duration),
    f("ocsp_enabled", Ty::Bool),
    f("ocsp_ca_certificates", Ty::Str),
    f("ocsp_servers_override", Ty::Strings),
    f("ocsp_fail_open", Ty::Bool),
    f("ocsp_query_all_servers", Ty::Bool),
];
const LOGIN_FIELDS: &[Field] = &[f("name", Ty::Str).later()];

/// Serves `path` of a cert mount (`auth/<mount_path>/...`), which takes `op`;
/// `client` is the TLS side of the request's connection.
#[allow(clippy::too_many_arguments)]
pub(crate) fn cert(
    store: &CertStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    path: &StorePath,
    p: &Params,
    client: &ClientTls,
    now: i64,
) -> ApiResult<Reply> {
    match (path, op) {
        (StorePath::Login, _) => cert_login(store, tokens, mount_path, p, client, now),
        // Nothing is stored: Vault's defaults, always.
        (StorePath::Config, Op::Read) => Ok(Reply::data(config_data())),
        (path, op) => serve_store(store, op, path, p),
    }
}

/// A list field as OpenBao shows it: `null` when empty (never set).
fn list(values: &[String]) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        json!(values)
    }
}

fn config_data() -> Value {
    json!({
        "disable_binding": false,
        "enable_identity_alias_metadata": false,
        // What OpenBao shows until a size is written.
        "ocsp_cache_size": 0,
    })
}

impl StoreApi for CertSpec {
    fn config_data((): &()) -> Value {
        config_data()
    }

    /// Only Vault's defaults: transitd has no identity aliases, no OCSP, and
    /// renewals do not re-present the certificate (`disable_binding` would
    /// change nothing it does).
    fn write_config(_store: &CertStore, p: &Params) -> ApiResult<Reply> {
        refuse_unless_default(
            p,
            &[
                "disable_binding",
                "enable_identity_alias_metadata",
                "ocsp_cache_size",
            ],
        )?;
        Ok(Reply::no_content())
    }

    fn role_data(entry: &CertEntry) -> Value {
        let mut data = token_data(&entry.token, entry.legacy_policies);
        for (k, v) in [
            ("certificate", json!(entry.certificate)),
            ("display_name", json!(entry.display_name)),
            ("allowed_names", list(&entry.allowed_names)),
            ("allowed_common_names", list(&entry.allowed_common_names)),
            ("allowed_dns_sans", list(&entry.allowed_dns_sans)),
            ("allowed_email_sans", list(&entry.allowed_email_sans)),
            ("allowed_uri_sans", list(&entry.allowed_uri_sans)),
            (
                "allowed_organizational_units",
                list(&entry.allowed_organizational_units),
            ),
            ("required_extensions", list(&entry.required_extensions)),
            (
                "allowed_metadata_extensions",
                list(&entry.allowed_metadata_extensions),
            ),
            ("ocsp_ca_certificates", json!("")),
            ("ocsp_enabled", json!(false)),
            ("ocsp_servers_override", Value::Null),
            ("ocsp_fail_open", json!(false)),
            ("ocsp_query_all_servers", json!(false)),
        ] {
            data.insert(k.into(), v);
        }
        // Echoed only when given under their old names, as OpenBao does.
        for (k, v) in [("ttl", entry.legacy_ttl), ("max_ttl", entry.legacy_max_ttl)] {
            if v > 0 {
                data.insert(k.into(), json!(v));
            }
        }
        Value::Object(data)
    }

    fn write_role(store: &CertStore, name: &str, p: &Params) -> ApiResult<Reply> {
        refuse_unless_default(p, REVOCATION_FIELDS)?;
        refuse_list(p, "bound_cidrs")?;
        let mut patch = TokenPatch::parse(p, true)?;
        // Vault's oldest TTL field, when neither newer one is given.
        if patch.ttl.is_none() {
            patch.ttl = non_negative(p, "lease")?;
        }
        // The old names, remembered to be shown back (the newer win).
        let legacy_ttl = match p.has("token_ttl") {
            true => Some(0),
            false => p.duration_secs("ttl")?.or(non_negative(p, "lease")?),
        };
        let legacy_max_ttl = match p.has("token_max_ttl") {
            true => Some(0),
            false => p.duration_secs("max_ttl")?,
        };
        let certificate = p.string("certificate")?;
        let display_name = p.string("display_name")?;
        let mut lists = Vec::new();
        for field in [
            "allowed_names",
            "allowed_common_names",
            "allowed_dns_sans",
            "allowed_email_sans",
            "allowed_uri_sans",
            "allowed_organizational_units",
            "required_extensions",
            "allowed_metadata_extensions",
        ] {
            lists.push((field, string_list(p, field)?));
        }
        store.write_role(name, |entry| {
            patch.apply(&mut entry.token, &mut entry.legacy_policies);
            if let Some(v) = legacy_ttl {
                entry.legacy_ttl = v;
            }
            if let Some(v) = legacy_max_ttl {
                entry.legacy_max_ttl = v;
            }
            if let Some(v) = &certificate {
                v.clone_into(&mut entry.certificate);
            }
            if let Some(v) = &display_name {
                v.clone_into(&mut entry.display_name);
            }
            for (field, value) in &lists {
                let Some(value) = value else { continue };
                let target = match *field {
                    "allowed_names" => &mut entry.allowed_names,
                    "allowed_common_names" => &mut entry.allowed_common_names,
                    "allowed_dns_sans" => &mut entry.allowed_dns_sans,
                    "allowed_email_sans" => &mut entry.allowed_email_sans,
                    "allowed_uri_sans" => &mut entry.allowed_uri_sans,
                    "allowed_organizational_units" => &mut entry.allowed_organizational_units,
                    "required_extensions" => &mut entry.required_extensions,
                    _ => &mut entry.allowed_metadata_extensions,
                };
                target.clone_from(value);
            }
            Ok(())
        })?;
        Ok(Reply::no_content())
    }
}

fn cert_login(
    store: &CertStore,
    tokens: &TokenStore,
    mount_path: &str,
    p: &Params,
    client: &ClientTls,
    now: i64,
) -> ApiResult<Reply> {
    // Plain HTTP has no certificate either (OpenBao's answer for both).
    let ClientTls::Tls(chain) = client else {
        return Err(ApiError::bad(NO_CLIENT_CERT));
    };
    // An invalid name names no entry: nothing trusts the certificate.
    let name = p
        .string("name")?
        .filter(|n| !n.is_empty())
        .map(|name| names::role(&name).unwrap_or_default());
    let login = match store.login(name.as_deref(), chain, now) {
        Ok(login) => login,
        Err(CertLoginError::Refused(why)) => return Err(ApiError::bad(why)),
        Err(CertLoginError::Store(e)) => return Err(e.into()),
    };
    let mount = mount(mount_path);
    issue(
        tokens,
        &login.entry.token,
        login.metadata,
        display_name(mount, &login.entry.display_name),
        format!("auth/{mount}/login"),
        now,
    )
}
