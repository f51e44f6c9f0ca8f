//! The key-less endpoints of a mount: `random`, `hash`, and its settings
//! `cache-config` and `config/keys`.

use serde_json::json;
use transit_keys::HashAlgorithm;
use transit_keys::secret::SecretBytes;

use super::hmac::decode_input;
use super::{Ctx, Op};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, encode_b64};
use crate::response::Reply;

/// Most bytes one `random` call returns.
pub const MAX_RANDOM_BYTES: i64 = 128 * 1024;
const SOURCES: [&str; 3] = ["platform", "seal", "all"];

/// `random[/:source][/:bytes]`; a lone segment is a source when it names one.
pub fn random(segments: &[&str], p: &Params) -> ApiResult<Reply> {
    let (url_source, url_bytes) = match segments {
        [] => (None, None),
        [one] if SOURCES.contains(one) => (Some(*one), None),
        [one] => (None, Some(*one)),
        [source, bytes] => (Some(*source), Some(*bytes)),
        _ => return Err(ApiError::UnsupportedPath),
    };
    let body_bytes = p.int("bytes")?;
    let body_source = p.string("source")?;
    let body_url_bytes = p.string("urlbytes")?;
    let format = p.str_or("format", "base64")?;
    let bytes = match url_bytes.map(str::to_owned).or(body_url_bytes) {
        Some(text) => text.parse::<i64>().map_err(|_| {
            ApiError::bad(format!(
                "error parsing url-set byte count: strconv.Atoi: parsing {text:?}: invalid syntax"
            ))
        })?,
        None => body_bytes.unwrap_or(32),
    };
    if bytes < 1 {
        return Err(ApiError::bad("'bytes' cannot be less than 1"));
    }
    if bytes > MAX_RANDOM_BYTES {
        return Err(ApiError::bad("'bytes' should be less than 131072"));
    }
    let source = url_source
        .map(str::to_owned)
        .or(body_source)
        .unwrap_or_else(|| "platform".to_owned());
    if !SOURCES.contains(&source.as_str()) {
        return Err(ApiError::bad(format!(
            "unsupported entropy source {source:?}; must be \"platform\" or \"seal\", or \"all\""
        )));
    }
    if format != "base64" && format != "hex" {
        return Err(ApiError::bad(format!(
            "unsupported encoding format {format:?}; must be \"hex\" or \"base64\""
        )));
    }
    // `bytes` is within 1..=MAX_RANDOM_BYTES, so the conversion cannot fail.
    let len = usize::try_from(bytes).map_err(|_| ApiError::Internal("byte count".into()))?;
    let random = SecretBytes::random(len)?;
    let text = match &*format {
        "hex" => hex::encode(random.expose()),
        _ => encode_b64(random.expose()),
    };
    let reply = Reply::data(json!({ "random_bytes": text }));
    // There is no seal entropy to mix in: "all" is the platform source, and
    // "seal" says so, in OpenBao's words.
    Ok(if source == "seal" {
        reply.warn("no seal/entropy augmentation available, using platform entropy source")
    } else {
        reply
    })
}

/// `hash[/:algorithm]`: a digest of `input`, hex (default) or base64.
pub fn hash(url_alg: Option<&str>, p: &Params) -> ApiResult<Reply> {
    let input = p
        .string("input")?
        .ok_or_else(|| ApiError::bad("input missing"))?;
    let input = decode_input(&input)?;
    let format = p.str_or("format", "hex")?;
    let body_alg = p.str_or("algorithm", "sha2-256")?;
    let body_url_alg = p.string("urlalgorithm")?.filter(|a| !a.is_empty());
    let name = url_alg
        .map(str::to_owned)
        .or(body_url_alg)
        .unwrap_or_else(|| body_alg.into_owned());
    if format != "hex" && format != "base64" {
        return Err(ApiError::bad(format!(
            "unsupported encoding format {format}; must be \"hex\" or \"base64\""
        )));
    }
    let algorithm = name
        .parse::<HashAlgorithm>()
        .ok()
        .filter(|a| *a != HashAlgorithm::Sha1)
        .ok_or_else(|| ApiError::bad(format!("unsupported algorithm {name}")))?;
    let sum = algorithm.digest(&input);
    let sum = match &*format {
        "hex" => hex::encode(sum),
        _ => encode_b64(&sum),
    };
    Ok(Reply::data(json!({ "sum": sum })))
}

/// `cache-config`: the keyring cache size (0 = unlimited, else at least 10).
/// Every key is cached in transitd, so the value is kept and reported only.
pub fn cache_config(ctx: &Ctx<'_>, op: Op, p: &Params) -> ApiResult<Reply> {
    let mut config = ctx.mount.config()?;
    if op == Op::Update {
        let size = p.int("size")?.unwrap_or(0);
        if size != 0 && size < 10 {
            return Err(ApiError::bad(
                "size must be 0 or a value greater or equal to 10",
            ));
        }
        config = ctx.mount.update_config(|c| c.cache_size = size as u64)?;
    }
    Ok(Reply::data(json!({ "size": config.cache_size })))
}

/// `config/keys`: `disable_upsert`. A write without the field turns it off, as
/// in OpenBao.
pub fn config_keys(ctx: &Ctx<'_>, op: Op, p: &Params) -> ApiResult<Reply> {
    let mut config = ctx.mount.config()?;
    if op == Op::Update {
        let disable = p.bool("disable_upsert")?.unwrap_or(false);
        config = ctx.mount.update_config(|c| c.disable_upsert = disable)?;
    }
    Ok(Reply::data(
        json!({ "disable_upsert": config.disable_upsert }),
    ))
}
