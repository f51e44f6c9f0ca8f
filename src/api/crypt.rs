//! `encrypt`, `decrypt`, `rewrap` and `datakey`, single and batched.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use transit_keys::{CreateOptions, CryptoParams, KeyType, Keyring};

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, encode_b64};
use crate::response::Reply;

/// The per-request inputs shared by one item of encrypt/decrypt/rewrap.
struct Item {
    context: Option<Vec<u8>>,
    aad: Option<Vec<u8>>,
    key_version: i64,
    reference: String,
}

impl Item {
    fn from(p: &Params) -> ApiResult<Self> {
        Ok(Self {
            context: p.base64("context")?,
            aad: p.base64("associated_data")?,
            key_version: p.int("key_version")?.unwrap_or(0),
            reference: p.string("reference")?.unwrap_or_default(),
        })
    }

    fn params(&self) -> CryptoParams<'_> {
        CryptoParams {
            context: self.context.as_deref(),
            associated_data: self.aad.as_deref(),
            key_version: self.key_version,
        }
    }
}

/// The items of `batch_input`, or `None` for a single-item request.
pub fn batch_input(ctx: &Ctx<'_>, p: &Params) -> ApiResult<Option<Vec<Params>>> {
    let Some(raw) = p.raw("batch_input") else {
        return Ok(None);
    };
    let Value::Array(items) = raw else {
        return Err(ApiError::bad("batch_input must be an array of objects"));
    };
    if items.is_empty() {
        return Err(ApiError::bad("missing batch input to process"));
    }
    let limit = ctx.state.limits.max_batch_items;
    if items.len() > limit {
        return Err(ApiError::bad(format!(
            "batch_input has {} items; the limit is {limit}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::Object(map) => Ok(Params::from_map(map.clone())),
            _ => Err(ApiError::bad("batch_input items must be JSON objects")),
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `context` must be on every item or on none.
fn check_contexts(items: &[Params]) -> ApiResult<()> {
    let with = items.iter().filter(|i| i.has("context")).count();
    if with != 0 && with != items.len() {
        return Err(ApiError::bad(
            "context should be set either in all the request blocks or in none",
        ));
    }
    Ok(())
}

/// Status of a batch with failed items: 400, or the caller's override when at
/// least one item succeeded (encrypt and decrypt only, as in OpenBao).
fn batch_reply(
    results: Vec<Value>,
    failed: usize,
    p: &Params,
    honour_override: bool,
) -> ApiResult<Reply> {
    let total = results.len();
    let mut reply = Reply::data(json!({ "batch_results": results }));
    if failed == 0 || !honour_override {
        return Ok(reply);
    }
    reply.status = Some(StatusCode::BAD_REQUEST);
    if let Some(code) = p.int("partial_failure_response_code")? {
        match u16::try_from(code)
            .ok()
            .filter(|c| (1..=599).contains(c))
            .and_then(|c| StatusCode::from_u16(c).ok())
        {
            Some(status) if failed < total => reply.status = Some(status),
            Some(_) => {}
            None => {
                reply = reply.warn(
                    "invalid HTTP response code override from partial_failure_response_code, reverting to 400",
                );
            }
        }
    }
    Ok(reply)
}

pub(super) fn item_error(e: ApiError, reference: &str, extra: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in extra {
        m.insert((*k).to_owned(), v.clone());
    }
    m.insert(
        "error".into(),
        json!(e.messages().first().cloned().unwrap_or_default()),
    );
    m.insert("reference".into(), json!(reference));
    Value::Object(m)
}

/// The key for encryption, created on first use unless `disable_upsert` is set.
fn key_for_encrypt(
    ctx: &Ctx<'_>,
    name: &str,
    p: &Params,
    derived: bool,
) -> ApiResult<Arc<Keyring>> {
    let key_type = p.string("type")?;
    let convergent = p.bool("convergent_encryption")?.unwrap_or(false);
    if let Some(ring) = ctx.mount.key(name)? {
        return Ok(ring);
    }
    if ctx.mount.config()?.disable_upsert {
        return Err(ApiError::bad("encryption key not found"));
    }
    let key_type: KeyType = key_type.as_deref().unwrap_or("aes256-gcm96").parse()?;
    if !key_type.is_aead() {
        return Err(ApiError::bad(format!(
            "key type {key_type} not supported for this operation"
        )));
    }
    if convergent && !derived {
        return Err(ApiError::bad(
            "convergent encryption requires derivation to be enabled, so context is required",
        ));
    }
    let opts = CreateOptions {
        derived,
        convergent_encryption: convergent,
        ..CreateOptions::default()
    };
    ctx.mount.update(name, |current| match current {
        Some(existing) => Ok((Some(existing.clone()), ())),
        None => Ok((Some(Keyring::create(name, key_type, &opts, ctx.now)?), ())),
    })?;
    ctx.mount
        .key(name)?
        .ok_or_else(|| ApiError::Internal("key vanished after creation".into()))
}

/// Decryption failures in OpenBao's words for the cipher family (the same text
/// for every cause: a wrong tag, key or nonce look alike).
fn decrypt_error(ring: &Keyring, e: transit_keys::Error) -> ApiError {
    match (e, ring.key_type()) {
        (
            transit_keys::Error::DecryptionFailed,
            KeyType::ChaCha20Poly1305 | KeyType::XChaCha20Poly1305,
        ) => ApiError::bad("chacha20poly1305: message authentication failed"),
        (e, _) => e.into(),
    }
}

fn existing_key(ctx: &Ctx<'_>, name: &str) -> ApiResult<Arc<Keyring>> {
    ctx.mount
        .key(name)?
        .ok_or_else(|| ApiError::bad("encryption key not found"))
}

pub fn encrypt(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    if let Some(items) = &batch {
        check_contexts(items)?;
    }
    let derived = match &batch {
        Some(items) => items.first().is_some_and(|i| i.has("context")),
        None => p.has("context"),
    };
    let _ = p.has("partial_failure_response_code");
    let Some(items) = batch else {
        let plaintext = p
            .base64("plaintext")?
            .ok_or_else(|| ApiError::bad("missing plaintext to encrypt"))?;
        let item = Item::from(p)?;
        let ring = key_for_encrypt(ctx, name, p, derived)?;
        let sealed = ring.encrypt(&plaintext, &item.params())?;
        return Ok(Reply::data(
            json!({ "ciphertext": sealed.text, "key_version": sealed.key_version }),
        ));
    };
    // Single-item fields next to `batch_input` are known, just unused (no warning).
    let _ = (
        p.has("plaintext"),
        p.has("context"),
        p.has("associated_data"),
        p.has("key_version"),
        p.has("reference"),
    );
    let ring = key_for_encrypt(ctx, name, p, derived)?;
    let mut failed = 0;
    let results = items
        .iter()
        .map(|ip| {
            let one = || -> ApiResult<Value> {
                let item = Item::from(ip)?;
                let plaintext = ip.base64("plaintext")?.ok_or_else(|| ApiError::bad("missing plaintext to encrypt"))?;
                let sealed = ring.encrypt(&plaintext, &item.params())?;
                Ok(json!({ "ciphertext": sealed.text, "key_version": sealed.key_version, "reference": item.reference }))
            };
            one().unwrap_or_else(|e| {
                failed += 1;
                item_error(e, &reference(ip), &[])
            })
        })
        .collect();
    batch_reply(results, failed, p, true)
}

fn reference(p: &Params) -> String {
    p.string("reference").ok().flatten().unwrap_or_default()
}

pub fn decrypt(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    let _ = p.has("partial_failure_response_code");
    let Some(items) = batch else {
        let ciphertext = p.string("ciphertext")?.filter(|c| !c.is_empty());
        let ciphertext =
            ciphertext.ok_or_else(|| ApiError::bad("missing ciphertext to decrypt"))?;
        let item = Item::from(p)?;
        let ring = existing_key(ctx, name)?;
        let plaintext = ring
            .decrypt(&ciphertext, &item.params())
            .map_err(|e| decrypt_error(&ring, e))?;
        return Ok(Reply::data(json!({ "plaintext": encode_b64(&plaintext) })));
    };
    check_contexts(&items)?;
    let ring = existing_key(ctx, name)?;
    let mut failed = 0;
    let results = items
        .iter()
        .map(|ip| {
            let one = || -> ApiResult<Value> {
                let item = Item::from(ip)?;
                let ciphertext = ip.string("ciphertext")?.filter(|c| !c.is_empty());
                let ciphertext =
                    ciphertext.ok_or_else(|| ApiError::bad("missing ciphertext to decrypt"))?;
                let plaintext = ring
                    .decrypt(&ciphertext, &item.params())
                    .map_err(|e| decrypt_error(&ring, e))?;
                Ok(json!({ "plaintext": encode_b64(&plaintext), "reference": item.reference }))
            };
            one().unwrap_or_else(|e| {
                failed += 1;
                item_error(e, &reference(ip), &[("plaintext", json!(""))])
            })
        })
        .collect();
    batch_reply(results, failed, p, true)
}

/// Re-encrypt under the latest (or a chosen) version. Unlike OpenBao, honours
/// `associated_data`, so AAD-bound ciphertexts can be rewrapped too.
pub fn rewrap(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    let Some(items) = batch else {
        let ciphertext = p.string("ciphertext")?.filter(|c| !c.is_empty());
        let ciphertext =
            ciphertext.ok_or_else(|| ApiError::bad("missing ciphertext to decrypt"))?;
        let item = Item::from(p)?;
        let ring = existing_key(ctx, name)?;
        let sealed = ring.rewrap(&ciphertext, &item.params())?;
        return Ok(Reply::data(
            json!({ "ciphertext": sealed.text, "key_version": sealed.key_version }),
        ));
    };
    check_contexts(&items)?;
    let ring = existing_key(ctx, name)?;
    let results = items
        .iter()
        .map(|ip| {
            let one = || -> ApiResult<Value> {
                let item = Item::from(ip)?;
                let ciphertext = ip.string("ciphertext")?.filter(|c| !c.is_empty());
                let ciphertext = ciphertext.ok_or_else(|| ApiError::bad("missing ciphertext to decrypt"))?;
                let sealed = ring.rewrap(&ciphertext, &item.params())?;
                Ok(json!({ "ciphertext": sealed.text, "key_version": sealed.key_version, "reference": item.reference }))
            };
            one().unwrap_or_else(|e| item_error(e, &reference(ip), &[]))
        })
        .collect();
    batch_reply(results, 0, p, false)
}

pub fn datakey(ctx: &Ctx<'_>, kind: &str, name: &str, p: &Params) -> ApiResult<Reply> {
    let with_plaintext = match kind {
        "plaintext" => true,
        "wrapped" => false,
        _ => {
            return Err(ApiError::bad(
                "Invalid path, must be 'plaintext' or 'wrapped'",
            ));
        }
    };
    let item = Item::from(p)?;
    let bits = p.int("bits")?.unwrap_or(256);
    let bits = u32::try_from(bits).map_err(|_| ApiError::bad("invalid bit length"))?;
    let ring = existing_key(ctx, name)?;
    let (plaintext, sealed) = ring.datakey(bits, &item.params())?;
    let mut data = json!({ "ciphertext": sealed.text, "key_version": sealed.key_version });
    if with_plaintext {
        data["plaintext"] = json!(encode_b64(&plaintext));
    }
    Ok(Reply::data(data))
}
