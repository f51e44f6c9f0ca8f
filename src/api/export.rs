//! `export/:type/:name[/:version]`, `backup/:name`, `restore[/:name]`.

use serde_json::{Map, Value, json};
use transit_keys::Error as KeyError;
use transit_keys::backup;
use transit_keys::export::{ExportFormat, ExportType, parse_version_selector};

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;

const CERTIFICATE_CHAIN: &str = "certificate-chain";

/// `latest`, `N` or `vN`. Negative numbers are below every minimum decryption
/// version, which is how OpenBao reports them.
pub(super) fn version_selector(text: &str, latest: u32) -> ApiResult<Option<u32>> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    if digits.parse::<i64>().is_ok_and(|n| n < 0) {
        return Err(KeyError::ExportVersionBelowMinimum.into());
    }
    Ok(parse_version_selector(text, latest)?)
}

pub fn export(
    ctx: &Ctx<'_>,
    kind: &str,
    name: &str,
    version: Option<&str>,
    p: &Params,
) -> ApiResult<Reply> {
    let export_type = match kind {
        CERTIFICATE_CHAIN => None,
        other => Some(other.parse::<ExportType>()?),
    };
    let format: ExportFormat = p.str_or("format", "")?.parse()?;
    let ring = ctx.mount.key(name)?.ok_or(ApiError::NotFound)?;
    let selected = version
        .map(|text| version_selector(text, ring.latest_version()))
        .transpose()?
        .flatten();
    let Some(export_type) = export_type else {
        // Certificate chains cannot be imported into transitd, so there is never one.
        return Err(ApiError::bad(if ring.key_type().supports_signing() {
            "selected key version does not have a certificate chain imported"
        } else {
            "certificate chain not supported for keys that do not support signing"
        }));
    };
    let keys: Map<String, Value> = ring
        .export(export_type, format, selected)?
        .iter()
        .map(|(n, text)| (n.to_string(), json!(text.as_str())))
        .collect();
    Ok(Reply::data(json!({
        "name": ring.name(),
        "type": ring.key_type().name(),
        "keys": keys,
    })))
}

/// A plaintext backup in OpenBao's format. Taking it stamps `backup_info` on the
/// key (and in the blob), so the stamp is persisted with the backup.
pub fn backup(ctx: &Ctx<'_>, name: &str, _p: &Params) -> ApiResult<Reply> {
    // Read first: what is counted after this read is not in the backup.
    let counts = match ctx.mount.key(name)? {
        Some(ring) => ctx.mount.encryption_counts(&ring)?.versions,
        None => Default::default(),
    };
    let blob = ctx.mount.update(name, |current| {
        let mut ring = current
            .ok_or_else(|| ApiError::bad(format!("key {name:?} not found")))?
            .clone();
        ring.mark_backed_up(ctx.now);
        let blob = backup::backup_counted(&ring, &counts)?;
        Ok::<_, ApiError>((Some(ring), blob))
    })?;
    Ok(Reply::data(json!({ "backup": blob.as_str() })))
}

/// Restore a backup under the URL's name, else the body's `name` (which OpenBao
/// ignores), else the name inside the backup.
pub fn restore(ctx: &Ctx<'_>, url_name: Option<&str>, p: &Params) -> ApiResult<Reply> {
    let blob = p
        .string("backup")?
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::bad("'backup' must be supplied"))?;
    let force = p.bool("force")?.unwrap_or(false);
    let body_name = p.string("name")?.filter(|n| !n.is_empty());
    let name = url_name.map(str::to_owned).or(body_name);
    if name.as_deref().is_some_and(|n| n.contains('/')) {
        return Err(ApiError::bad("key names cannot be paths"));
    }
    let (mut ring, counts) = backup::restore_counted(&blob, name.as_deref())?;
    ring.mark_restored(ctx.now);
    let name = ring.name().to_owned();
    ctx.mount.update(&name, |current| {
        match current {
            Some(_) if !force => {
                return Err(ApiError::bad(format!("key {name:?} already exists")));
            }
            // Overwriting would put it back in service without
            // `soft-delete-restore`, a right `restore` alone does not carry.
            Some(existing) if existing.soft_deleted() => {
                return Err(transit_keys::Error::SoftDeleted.into());
            }
            _ => {}
        }
        // Before the key, and idempotent when this runs again: a restored
        // key never counts less than its backup knew, nor than its material
        // has counted under any other name (the count follows the material).
        ctx.mount.raise_encryption_counts(&ring, &counts)?;
        Ok((Some(ring.clone()), ()))
    })?;
    Ok(Reply::no_content())
}
