//! `encrypt`, `decrypt`, `rewrap` and `datakey`, single and batched.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use transit_keys::{CreateOptions, CryptoParams, KeyType, Keyring};

use super::Ctx;
use super::batch::{Work, batch_input, batch_results, check_cost, item_error};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, encode_b64};
use crate::response::Reply;

/// The per-request inputs shared by one item of encrypt/decrypt/rewrap.
struct Item {
    context: Option<Vec<u8>>,
    aad: Option<Vec<u8>>,
    key_version: i64,
}

impl Item {
    fn from(p: &Params) -> ApiResult<Self> {
        Ok(Self {
            context: p.base64("context")?,
            aad: p.base64("associated_data")?,
            key_version: p.int("key_version")?.unwrap_or(0),
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
    let mut reply = Reply::data(batch_results(results));
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

/// The key for encryption, created on first use unless `disable_upsert` is
/// set; `batch` items must fit the batch budget with it, checked before the
/// key is created.
fn key_for_encrypt(
    ctx: &Ctx<'_>,
    name: &str,
    p: &Params,
    derived: bool,
    batch: Option<usize>,
) -> ApiResult<Arc<Keyring>> {
    let key_type = p.string("type")?;
    let convergent = p.bool("convergent_encryption")?.unwrap_or(false);
    let affordable = |key_type| match batch {
        Some(items) => check_cost(ctx, key_type, Work::Encrypt, items),
        None => Ok(()),
    };
    if let Some(ring) = ctx.mount.key(name)? {
        affordable(ring.key_type())?;
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
    affordable(key_type)?;
    let opts = CreateOptions {
        derived,
        convergent_encryption: convergent,
        ..CreateOptions::default()
    };
    ctx.mount.update(name, |current| match current {
        Some(existing) => Ok::<_, ApiError>((Some(existing.clone()), ())),
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

pub(crate) const KEY_NOT_FOUND: &str = "encryption key not found";

/// The key for making something new with its latest version (a data key):
/// read from storage first if this node has not heard of it yet.
fn existing_key(ctx: &Ctx<'_>, name: &str) -> ApiResult<Arc<Keyring>> {
    key_for_reading(ctx, name, std::iter::empty(), KEY_NOT_FOUND)
}

/// The key to read `versioned` inputs (ciphertexts, signatures, HMACs:
/// `vault:vN:...`) with: read again from storage first when this node's copy
/// is missing or older than the newest version named (another node rotated or
/// created it a moment ago), so a valid input never fails on a stale cache.
pub(crate) fn key_for_reading<'a>(
    ctx: &Ctx<'_>,
    name: &str,
    versioned: impl Iterator<Item = &'a str>,
    missing: &str,
) -> ApiResult<Arc<Keyring>> {
    let newest = versioned
        .filter_map(|c| transit_keys::envelope::parse(c).ok())
        .map(|e| e.version)
        .max()
        .unwrap_or(1);
    ctx.mount
        .key_for_version(name, newest)?
        .ok_or_else(|| ApiError::bad(missing))
}

fn item_ciphertexts(items: &[Params]) -> Vec<String> {
    items
        .iter()
        .filter_map(|ip| {
            ip.raw("ciphertext")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

type Fields = Map<String, Value>;

/// Run `one` over every item; failed items become `{error, reference}` plus
/// `on_error` (OpenBao keeps `"plaintext": ""` on failed decrypt items).
fn run_items(
    items: &[Params],
    on_error: &[(&str, Value)],
    one: impl Fn(&Params) -> ApiResult<Fields>,
) -> (Vec<Value>, usize) {
    let mut failed = 0;
    let results = items
        .iter()
        .map(|ip| match one(ip) {
            Ok(mut fields) => {
                fields.insert("reference".into(), Value::String(reference(ip)));
                Value::Object(fields)
            }
            Err(e) => {
                failed += 1;
                item_error(e, &reference(ip), on_error)
            }
        })
        .collect();
    (results, failed)
}

fn sealed_fields(sealed: transit_keys::Sealed) -> Fields {
    let mut m = Map::new();
    m.insert("ciphertext".into(), Value::String(sealed.text));
    m.insert("key_version".into(), Value::from(sealed.key_version));
    m
}

fn ciphertext_of(ip: &Params) -> ApiResult<String> {
    ip.string("ciphertext")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("missing ciphertext to decrypt"))
}

/// Make a ciphertext with `make` and count it (`Mount::count_encryption`)
/// before it is released. When the latest version was at its limit and the
/// key rotated for it, the first ciphertext is dropped unseen and made again
/// with the new version.
fn counted<T>(
    ctx: &Ctx<'_>,
    ring: &Keyring,
    item: &Item,
    make: impl Fn(&Keyring) -> transit_keys::Result<T>,
    version_of: impl Fn(&T) -> u32,
) -> ApiResult<T> {
    let latest_asked = item.key_version == 0;
    let made = make(ring)?;
    let Some(fresh) = ctx
        .mount
        .count_encryption(ring, version_of(&made), latest_asked)?
    else {
        return Ok(made);
    };
    let made = make(&fresh)?;
    match ctx
        .mount
        .count_encryption(&fresh, version_of(&made), latest_asked)?
    {
        None => Ok(made),
        Some(_) => Err(ApiError::bad(
            "the key's new version reached its encryption limit at once; try again",
        )),
    }
}

/// [`counted`] for a ciphertext, as a reply's fields.
fn counted_fields(
    ctx: &Ctx<'_>,
    ring: &Keyring,
    item: &Item,
    make: impl Fn(&Keyring) -> transit_keys::Result<transit_keys::Sealed>,
) -> ApiResult<Fields> {
    let sealed = counted(ctx, ring, item, make, |s| s.key_version)?;
    Ok(sealed_fields(sealed))
}

fn encrypt_one(ctx: &Ctx<'_>, ring: &Keyring, ip: &Params) -> ApiResult<Fields> {
    let item = Item::from(ip)?;
    let plaintext = ip
        .base64("plaintext")?
        .ok_or_else(|| ApiError::bad("missing plaintext to encrypt"))?;
    counted_fields(ctx, ring, &item, |r| r.encrypt(&plaintext, &item.params()))
}

fn decrypt_one(ring: &Keyring, ip: &Params) -> ApiResult<Fields> {
    let item = Item::from(ip)?;
    let plaintext = ring
        .decrypt(&ciphertext_of(ip)?, &item.params())
        .map_err(|e| decrypt_error(ring, e))?;
    let mut m = Map::new();
    m.insert("plaintext".into(), Value::String(encode_b64(&plaintext)));
    Ok(m)
}

fn rewrap_one(ctx: &Ctx<'_>, ring: &Keyring, ip: &Params) -> ApiResult<Fields> {
    let item = Item::from(ip)?;
    let ciphertext = ciphertext_of(ip)?;
    counted_fields(ctx, ring, &item, |r| r.rewrap(&ciphertext, &item.params()))
}

pub fn encrypt(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    let _ = p.has("partial_failure_response_code");
    let Some(items) = batch else {
        let derived = p.has("context");
        let ring = key_for_encrypt(ctx, name, p, derived, None)?;
        return Ok(Reply::data(Value::Object(encrypt_one(ctx, &ring, p)?)));
    };
    check_contexts(&items)?;
    // Single-item fields next to `batch_input` are known, just unused (no warning).
    let _ = (
        p.has("plaintext"),
        p.has("context"),
        p.has("associated_data"),
        p.has("key_version"),
        p.has("reference"),
    );
    let derived = items.first().is_some_and(|i| i.has("context"));
    let ring = key_for_encrypt(ctx, name, p, derived, Some(items.len()))?;
    let (results, failed) = run_items(&items, &[], |ip| encrypt_one(ctx, &ring, ip));
    batch_reply(results, failed, p, true)
}

fn reference(p: &Params) -> String {
    p.string("reference").ok().flatten().unwrap_or_default()
}

pub fn decrypt(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    let _ = p.has("partial_failure_response_code");
    let Some(items) = batch else {
        let ciphertext = p.raw("ciphertext").and_then(Value::as_str);
        let ring = key_for_reading(ctx, name, ciphertext.into_iter(), KEY_NOT_FOUND)?;
        return Ok(Reply::data(Value::Object(decrypt_one(&ring, p)?)));
    };
    check_contexts(&items)?;
    let cts = item_ciphertexts(&items);
    let ring = key_for_reading(ctx, name, cts.iter().map(String::as_str), KEY_NOT_FOUND)?;
    check_cost(ctx, ring.key_type(), Work::Decrypt, items.len())?;
    let (results, failed) = run_items(&items, &[("plaintext", json!(""))], |ip| {
        decrypt_one(&ring, ip)
    });
    batch_reply(results, failed, p, true)
}

/// Re-encrypt under the latest (or a chosen) version. Unlike OpenBao, honours
/// `associated_data`, so AAD-bound ciphertexts can be rewrapped too. Batches
/// answer 200 with per-item errors (no partial_failure_response_code), as OpenBao.
pub fn rewrap(ctx: &Ctx<'_>, name: &str, p: &Params) -> ApiResult<Reply> {
    let batch = batch_input(ctx, p)?;
    let Some(items) = batch else {
        let ciphertext = p.raw("ciphertext").and_then(Value::as_str);
        let ring = key_for_reading(ctx, name, ciphertext.into_iter(), KEY_NOT_FOUND)?;
        return Ok(Reply::data(Value::Object(rewrap_one(ctx, &ring, p)?)));
    };
    check_contexts(&items)?;
    let cts = item_ciphertexts(&items);
    let ring = key_for_reading(ctx, name, cts.iter().map(String::as_str), KEY_NOT_FOUND)?;
    check_cost(ctx, ring.key_type(), Work::Rewrap, items.len())?;
    let (results, _) = run_items(&items, &[], |ip| rewrap_one(ctx, &ring, ip));
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
    let (plaintext, sealed) = counted(
        ctx,
        &ring,
        &item,
        |r| r.datakey(bits, &item.params()),
        |(_, sealed)| sealed.key_version,
    )?;
    let mut data = json!({ "ciphertext": sealed.text, "key_version": sealed.key_version });
    if with_plaintext {
        data["plaintext"] = json!(encode_b64(&plaintext));
    }
    Ok(Reply::data(data))
}
