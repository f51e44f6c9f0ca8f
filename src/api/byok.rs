//! BYOK: `wrapping_key`, `keys/:name/import`, `keys/:name/import_version`
//! and `byok-export/:destination/:source[/:version]`. The wrapping and the
//! key rules are in `transit_keys::byok`; this is the HTTP side.

use serde_json::{Map, Value, json};
use transit_keys::byok::{
    ImportOptions, OaepHash, UnwrappedKey, WrappingKey, importable, public_half_importable,
};
use transit_keys::{KeyType, Keyring};

use super::Ctx;
use super::export::version_selector;
use super::unsupported::unsupported;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;

/// `GET wrapping_key`: the mount's wrapping key, made on first use.
pub fn wrapping_key(ctx: &Ctx<'_>) -> ApiResult<Reply> {
    let key = ctx.mount.wrapping_key()?;
    Ok(Reply::data(json!({ "public_key": key.public_pem() })))
}

/// `ciphertext` unwrapped as a key of `key_type`. The `public_key` form
/// (only the public half of an asymmetric key) is not implemented.
fn unwrap(ctx: &Ctx<'_>, p: &Params, key_type: KeyType) -> ApiResult<UnwrappedKey> {
    if p.string("public_key")?.is_some_and(|k| !k.is_empty()) {
        return Err(unsupported("public_key"));
    }
    let hash: OaepHash = p.str_or("hash_function", "SHA256")?.parse()?;
    let ciphertext = p
        .string("ciphertext")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("missing ciphertext"))?;
    let wrapping: std::sync::Arc<WrappingKey> = ctx.mount.wrapping_key()?;
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
    let key_type: KeyType = p.str_or("type", "aes256-gcm96")?.to_lowercase().parse()?;
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
    let key = unwrap(ctx, p, key_type)?;
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
    let in_use = |ring: &Keyring| -> ApiResult<()> {
        if !ring.imported() {
            return Err(transit_keys::Error::ImportVersionNotImported.into());
        }
        if ring.convergent_encryption() {
            return Err(transit_keys::Error::ImportConvergent.into());
        }
        Ok(())
    };
    in_use(&ring)?;
    let key = unwrap(ctx, p, ring.key_type())?;
    if let Some(version) = p.int("version")? {
        // Filling in the private half of a public-only version: transitd
        // holds no public-only versions, so every version is complete.
        let complete = version > 0
            && version <= i64::from(ring.latest_version())
            && ring.version(version as u32).is_some();
        return Err(ApiError::bad(if !complete {
            "no such key version".to_owned()
        } else if !public_half_importable(ring.key_type()) {
            "provided type does not support importing key versions".to_owned()
        } else {
            "private key imported, key version cannot be updated".to_owned()
        }));
    }
    ctx.mount.update(name, |current| {
        let mut next = current.ok_or_else(missing)?.clone();
        in_use(&next)?;
        next.import_version(&key, ctx.now)?;
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
