//! BYOK: `wrapping_key`, `keys/:name/import`, `keys/:name/import_version`
//! and `byok-export/:destination/:source[/:version]`. The wrapping and the
//! key rules are in `transit_keys::byok`; this is the HTTP side.

use serde_json::{Map, Value, json};
use std::sync::Arc;

use transit_keys::byok::{ImportOptions, ImportedKey, OaepHash, WrappingKey, importable};
use transit_keys::{KeyType, Keyring};

use super::Ctx;
use super::export::version_selector;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;

/// `GET wrapping_key`: the mount's wrapping key, made on first use.
pub fn wrapping_key(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let key = ctx.mount.wrapping_key()?;
    Ok(Reply::data(json!({ "public_key": key.public_pem() })))
}

/// The key a request imports: `ciphertext` (the private key, wrapped for
/// this mount's wrapping key) or else `public_key` (its public half, PEM).
/// Both given: refused (OpenBao means to refuse it, but its check reads a
/// misspelt field and ignores `public_key`).
fn imported_key(
    ctx: &Ctx<'_>,
    p: &Params,
    key_type: KeyType,
    derived: bool,
) -> ApiResult<ImportedKey> {
    let ciphertext = p.string("ciphertext")?.filter(|c| !c.is_empty());
    let public = p.string("public_key")?.filter(|k| !k.is_empty());
    let ciphertext = match (ciphertext, public) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "only one of the following fields, ciphertext and public_key, can be set",
            ));
        }
        (None, public) => {
            return Ok(ImportedKey::public(
                key_type,
                derived,
                &public.unwrap_or_default(),
            )?);
        }
        (Some(ciphertext), None) => ciphertext,
    };
    let hash: OaepHash = p.str_or("hash_function", "SHA256")?.parse()?;
    let wrapping: Arc<WrappingKey> = ctx.mount.wrapping_key()?;
    Ok(wrapping.unwrap_key(&ciphertext, hash, key_type)?)
}

/// `POST keys/:name/import`: a new key from wrapped material.
pub fn import(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    if p.has("convergent_encryption") {
        return Err(ApiError::bad(
            "import cannot be used on keys with convergent encryption enabled",
        ));
    }
    let opts = ImportOptions {
        derived: p.bool("derived")?.unwrap_or(false),
        exportable: p.bool("exportable")?.unwrap_or(false),
        allow_plaintext_backup: p.bool("allow_plaintext_backup")?.unwrap_or(false),
        auto_rotate_period_secs: p.duration_secs("auto_rotate_period")?.unwrap_or(0),
        allow_rotation: p.bool("allow_rotation")?.unwrap_or(false),
    };
    if opts.auto_rotate_period_secs > 0 && !opts.allow_rotation {
        return Err(transit_keys::Error::ImportAutoRotateNeedsRotation.into());
    }
    let type_name = p.str_or("type", "aes256-gcm96")?.to_lowercase();
    let key_type: KeyType = type_name
        .parse()
        .map_err(|_| ApiError::bad(format!("unknown key type: {type_name}")))?;
    if !importable(key_type) {
        return Err(transit_keys::Error::ImportTypeNotSupported(key_type).into());
    }
    // As OpenBao reads it: only for a derived key's public key in a read,
    // which an import does not answer with.
    p.base64("context")
        .map_err(|_| ApiError::bad("failed to base64-decode context"))?;
    let exists = || {
        ApiError::bad(
            "the import path cannot be used with an existing key; use import-version to rotate an existing imported key",
        )
    };
    if ctx.mount.key(name)?.is_some() {
        return Err(exists());
    }
    let key = imported_key(ctx, p, key_type, opts.derived)?;
    let ring = Keyring::import(name, &key, &opts, ctx.now)?;
    ctx.mount.update(name, |current| match current {
        Some(_) => Err(exists()),
        None => Ok((Some(ring.clone()), ())),
    })?;
    Ok(Reply::no_content())
}

/// `POST keys/:name/import_version`: a new version of an imported key.
pub fn import_version(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let missing = || {
        ApiError::bad(format!(
            "no key found with name {name}; to import a new key, use the import/ endpoint"
        ))
    };
    let ring = ctx.mount.key(name)?.ok_or_else(missing)?;
    ring.accepts_imported_versions()?;
    let key = imported_key(ctx, p, ring.key_type(), ring.derived())?;
    let version = p.int("version")?;
    ctx.mount.update(name, |current| {
        let mut next = current.ok_or_else(missing)?.clone();
        match version {
            Some(version) => next.import_private_for_version(version, &key)?,
            None => {
                next.import_version(&key, ctx.now)?;
            }
        }
        Ok::<_, ApiError>((Some(next), ()))
    })?;
    Ok(Reply::no_content())
}

/// `GET byok-export/:destination/:source[/:version]`.
pub fn byok_export(
    ctx: &Ctx<'_>,
    destination: &str,
    source: &str,
    version: Option<&str>,
    p: &Params,
) -> ApiResult<Reply> {
    let dst = ctx
        .mount
        .key(destination)?
        .ok_or_else(|| ApiError::bad("no such destination key to export to"))?;
    let src = ctx
        .mount
        .key(source)?
        .ok_or_else(|| ApiError::bad("no such source key for export"))?;
    let hash: OaepHash = p.str_or("hash", "SHA256")?.parse()?;
    let selected = version
        .map(|text| version_selector(text, src.latest_version()))
        .transpose()?
        .flatten();
    let keys: Map<String, Value> = src
        .byok_export(&dst, hash, selected)?
        .into_iter()
        .map(|(n, text)| (n.to_string(), Value::String(text)))
        .collect();
    Ok(Reply::data(json!({
        "name": src.name(),
        "type": src.key_type().name(),
        "keys": keys,
    })))
}
