//! `keys`, `keys/:name`, `keys/:name/{config,rotate,trim}`.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use transit_keys::key_type::Curve;
use transit_keys::{ConfigChange, CreateOptions, KeyType, Keyring};

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::storage::StoreError;

pub fn list(ctx: &Ctx<'_>, p: &Params) -> ApiResult<Reply> {
    let after = p.string("after")?.unwrap_or_default();
    let limit = p.int("limit")?.unwrap_or(0);
    let names: Vec<String> = ctx
        .mount
        .key_names()?
        .into_iter()
        .filter(|n| after.is_empty() || n.as_str() > after.as_str())
        .take(if limit > 0 {
            limit as usize
        } else {
            usize::MAX
        })
        .collect();
    if names.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": names })))
}

pub fn read(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let ring = ctx.mount.key(name)?.ok_or(ApiError::NotFound)?;
    let context = p
        .base64("context")
        .map_err(|_| ApiError::bad("failed to base64-decode context"))?;
    let mut body = key_body(&ring, context.as_deref())?;
    let mut warnings = Vec::new();
    if ring.key_type().supports_encryption() {
        // Read from storage; in an outage the rest of the read still answers.
        match ctx.mount.encryption_counts(&ring) {
            Ok(counts) => body["encryption_counts"] = json!(counts.versions),
            Err(StoreError::Unavailable(_)) => {
                warnings.push("encryption_counts left out: storage is unavailable".to_owned());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut reply = Reply::data(body);
    reply.warnings = warnings;
    Ok(reply)
}

/// Create (or, when it exists, return unchanged: Vault's upsert semantics).
pub fn create(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let key_type: KeyType = p.str_or("type", "aes256-gcm96")?.parse()?;
    let opts = CreateOptions {
        derived: p.bool("derived")?.unwrap_or(false),
        convergent_encryption: p.bool("convergent_encryption")?.unwrap_or(false),
        exportable: p.bool("exportable")?.unwrap_or(false),
        allow_plaintext_backup: p.bool("allow_plaintext_backup")?.unwrap_or(false),
        auto_rotate_period_secs: p.duration_secs("auto_rotate_period")?.unwrap_or(0),
        key_size: match p.int("key_size")?.unwrap_or(0) {
            n if n < 0 => return Err(ApiError::bad(format!("invalid key_size {n}"))),
            n => n as u64,
        },
    };
    let limit = ConfigChange {
        max_encryptions_per_version: p.int("max_encryptions_per_version")?,
        ..ConfigChange::default()
    };
    let context = p
        .base64("context")
        .map_err(|_| ApiError::bad("failed to base64-decode context"))?;
    // An existing key is answered as it is, without a storage write.
    if let Some(existing) = ctx.mount.key(name)? {
        let mut reply = Reply::data(key_body(&existing, context.as_deref())?);
        if limit.max_encryptions_per_version.is_some() {
            // Ours, so not ignored without a word as Vault's create options are.
            reply.warnings.push(
                "the key exists: max_encryptions_per_version was not applied; set it through keys/:name/config"
                    .to_owned(),
            );
        }
        return Ok(reply);
    }
    let ring = ctx.mount.update(name, |current| match current {
        Some(existing) => Ok::<_, ApiError>((Some(existing.clone()), existing.clone())),
        None => {
            let mut ring = Keyring::create(name, key_type, &opts, ctx.now)?;
            ring.configure(&limit)?;
            Ok((Some(ring.clone()), ring))
        }
    })?;
    Ok(Reply::data(key_body(&ring, context.as_deref())?))
}

pub fn delete(ctx: &Ctx<'_>, name: &str) -> ApiResult<Reply> {
    ctx.mount.update(name, |current| match current {
        None => Err(ApiError::bad(format!(
            "error deleting policy {name}: could not delete key; not found"
        ))),
        Some(ring) if !ring.deletion_allowed() => Err(ApiError::bad(format!(
            "error deleting policy {name}: deletion is not allowed for this key"
        ))),
        Some(_) => Ok((None, ())),
    })?;
    Ok(Reply::no_content())
}

/// Apply `change` to an existing key and answer with the key's new body.
fn modify(
    ctx: &Ctx<'_>,
    name: &str,
    missing: impl Fn() -> ApiError,
    change: impl Fn(&mut Keyring) -> ApiResult<Vec<String>>,
) -> ApiResult<Reply> {
    let (ring, warnings) = ctx.mount.update(name, |current| {
        let mut ring = current.ok_or_else(&missing)?.clone();
        let warnings = change(&mut ring)?;
        Ok::<_, ApiError>((Some(ring.clone()), (ring, warnings)))
    })?;
    let mut reply = Reply::data(key_body(&ring, None)?);
    reply.warnings = warnings;
    Ok(reply)
}

pub fn configure(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let change = ConfigChange {
        min_decryption_version: p.int("min_decryption_version")?,
        min_encryption_version: p.int("min_encryption_version")?,
        deletion_allowed: p.bool("deletion_allowed")?,
        exportable: p.bool("exportable")?,
        allow_plaintext_backup: p.bool("allow_plaintext_backup")?,
        auto_rotate_period_secs: p.duration_secs("auto_rotate_period")?,
        max_encryptions_per_version: p.int("max_encryptions_per_version")?,
    };
    modify(
        ctx,
        name,
        || ApiError::bad(format!("no existing key named {name} could be found")),
        |ring| Ok(ring.configure(&change)?),
    )
}

pub fn rotate(ctx: &Ctx<'_>, name: &str, _p: &Params) -> ApiResult<Reply> {
    let now = ctx.now;
    modify(
        ctx,
        name,
        || ApiError::bad("key not found"),
        |ring| {
            ring.rotate(now)?;
            Ok(Vec::new())
        },
    )
}

pub fn trim(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    // OpenBao checks the key before the parameter.
    if ctx.mount.key(name)?.is_none() {
        return Err(ApiError::bad("invalid key name"));
    }
    let min = p
        .int("min_available_version")?
        .ok_or_else(|| ApiError::bad("missing min_available_version"))?;
    modify(
        ctx,
        name,
        || ApiError::bad("invalid key name"),
        |ring| {
            ring.trim(min)?;
            Ok(Vec::new())
        },
    )
}

/// `DELETE keys/:name/soft-delete` (`deleted`) and `keys/:name/soft-delete-restore`:
/// the key's body, with a warning when it was already so. A missing key is
/// a 204, as in OpenBao.
pub fn soft_delete(ctx: &Ctx<'_>, name: &str, deleted: bool) -> ApiResult<Reply> {
    let changed = ctx.mount.update(name, |current| match current {
        None => Ok::<_, ApiError>((None, None)),
        Some(ring) => {
            let mut next = ring.clone();
            let changed = next.set_soft_deleted(deleted);
            Ok((Some(next.clone()), Some((next, changed))))
        }
    })?;
    let Some((ring, changed)) = changed else {
        return Ok(Reply::no_content());
    };
    let mut reply = Reply::data(key_body(&ring, None)?);
    if !changed {
        reply.warnings.push(
            if deleted {
                "key was already marked as soft deleted"
            } else {
                "key was already restored"
            }
            .to_owned(),
        );
    }
    Ok(reply)
}

/// Go's RFC 3339 with nanoseconds (trailing zeros dropped).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn public_key_name(t: KeyType) -> &'static str {
    match t.curve() {
        Some(Curve::P256) => "P-256",
        Some(Curve::P384) => "P-384",
        Some(Curve::P521) => "P-521",
        None => t.name(),
    }
}

/// The `data` of a key read, field for field as OpenBao returns it.
pub fn key_body(ring: &Keyring, context: Option<&[u8]>) -> ApiResult<Value> {
    let t = ring.key_type();
    let mut d = Map::new();
    d.insert(
        "allow_plaintext_backup".into(),
        json!(ring.allow_plaintext_backup()),
    );
    d.insert(
        "auto_rotate_period".into(),
        json!(ring.auto_rotate_period_secs()),
    );
    d.insert("deletion_allowed".into(), json!(ring.deletion_allowed()));
    d.insert("derived".into(), json!(ring.derived()));
    d.insert("exportable".into(), json!(ring.exportable()));
    d.insert("imported_key".into(), json!(ring.imported()));
    if ring.imported() {
        d.insert(
            "imported_key_allow_rotation".into(),
            json!(ring.allow_imported_key_rotation()),
        );
    }
    if t != KeyType::Hmac {
        let mut keys = Map::new();
        for info in ring.version_infos(context)? {
            let entry = match info.public_key {
                Some(public_key) => json!({
                    "certificate_chain": "",
                    "creation_time": rfc3339(info.created),
                    "name": public_key_name(t),
                    "public_key": public_key,
                }),
                None => json!(info.created.unix_timestamp()),
            };
            keys.insert(info.number.to_string(), entry);
        }
        d.insert("keys".into(), Value::Object(keys));
    } else {
        d.insert("key_size".into(), json!(ring.key_size()));
    }
    d.insert("latest_version".into(), json!(ring.latest_version()));
    if let Some(limit) = ring.max_encryptions_per_version() {
        d.insert("max_encryptions_per_version".into(), json!(limit));
    }
    d.insert(
        "min_available_version".into(),
        json!(ring.min_available_version()),
    );
    d.insert(
        "min_decryption_version".into(),
        json!(ring.min_decryption_version()),
    );
    d.insert(
        "min_encryption_version".into(),
        json!(ring.min_encryption_version()),
    );
    d.insert("name".into(), json!(ring.name()));
    d.insert("soft_deleted".into(), json!(ring.soft_deleted()));
    d.insert("supports_decryption".into(), json!(t.supports_decryption()));
    d.insert("supports_derivation".into(), json!(t.supports_derivation()));
    d.insert("supports_encryption".into(), json!(t.supports_encryption()));
    d.insert("supports_signing".into(), json!(t.supports_signing()));
    d.insert("type".into(), json!(t.name()));
    if ring.derived() {
        d.insert("kdf".into(), json!(ring.kdf().name()));
        if ring.kdf() == transit_keys::derive::Kdf::CounterHmacSha256 {
            d.insert("kdf_mode".into(), json!(ring.kdf().name()));
        }
        d.insert(
            "convergent_encryption".into(),
            json!(ring.convergent_encryption()),
        );
        if ring.convergent_encryption() {
            d.insert("convergent_encryption_version".into(), json!(-1));
        }
    }
    for (field, stamp) in [
        ("backup_info", ring.backup_info()),
        ("restore_info", ring.restore_info()),
    ] {
        if let Some(s) = stamp {
            d.insert(
                field.into(),
                json!({ "time": rfc3339(s.time), "version": s.version }),
            );
        }
    }
    Ok(Value::Object(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_like_go() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_795_471_670_850_896_930).unwrap();
        assert_eq!(rfc3339(t), "2026-11-23T22:07:50.85089693Z");
        let whole = OffsetDateTime::from_unix_timestamp(1_795_471_670).unwrap();
        assert_eq!(rfc3339(whole), "2026-11-23T22:07:50Z");
    }
}
