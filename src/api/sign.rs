//! `sign/:name[/:hash_algorithm]` and `verify/:name[/:hash_algorithm]`.
//!
//! `verify` serves both signatures and HMACs: a request carrying `signature`
//! is a signature check, one carrying only `hmac` goes to `hmac::verify`.
//! Batches share the request's options and `key_version`; items carry `input`,
//! `context`, `signature`/`hmac` and `reference`, and fail one by one (200).

use serde_json::{Value, json};
use transit_keys::{Error as KeyError, SignOptions};

use super::Ctx;
use super::batch::{Work, batch_input, batch_results, check_cost, item_error, result_fields};
use super::crypt::key_for_reading;
use super::hmac::{self, decode_input, item_input, reference, url_algorithm, versioned_fields};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, decode_b64, encode_b64};
use crate::response::Reply;

fn non_empty(s: &str) -> bool {
    !s.is_empty()
}

/// The options shared by every item: hash (URL, `hash_algorithm`, `algorithm`,
/// sha2-256), `prehashed`, `signature_algorithm`, `salt_length`, marshaling.
fn sign_options(url: Option<String>, p: &Params) -> ApiResult<SignOptions> {
    let hash_algorithm = p.string("hash_algorithm")?.filter(|s| non_empty(s));
    let algorithm = p.string("algorithm")?.filter(|s| non_empty(s));
    let hash = url.or(hash_algorithm).or(algorithm).unwrap_or_default();
    let prehashed = p.bool("prehashed")?.unwrap_or(false);
    let signature_algorithm = p.str_or("signature_algorithm", "")?;
    let salt_length = p.str_or("salt_length", "auto")?.to_lowercase();
    let marshaling = p.str_or("marshaling_algorithm", "asn1")?;
    Ok(SignOptions::parse(
        &hash,
        prehashed,
        &signature_algorithm,
        &salt_length,
        &marshaling,
    )?)
}

fn decode_context(context: Option<String>) -> ApiResult<Option<Vec<u8>>> {
    context
        .map(|c| decode_b64(&c).map_err(|_| ApiError::bad("failed to base64-decode context")))
        .transpose()
}

/// The keyring's error, worded as OpenBao words a derivation failure.
fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::MissingContext => ApiError::bad(format!("error deriving key: {e}")),
        other => other.into(),
    }
}

pub fn sign(ctx: &Ctx<'_>, name: &str, url_alg: Option<&str>, p: &Params) -> ApiResult<Reply> {
    let url = url_algorithm(url_alg, p)?.filter(|s| non_empty(s));
    let opts = sign_options(url, p)?;
    let key_version = p.int("key_version")?.unwrap_or(0);
    let batch = batch_input(ctx, p)?;
    let single_input = p.string("input")?;
    let single_context = p.string("context")?;
    let ring = key_for_reading(ctx, name, std::iter::empty(), "signing key not found")?;
    let key_type = ring.key_type();
    if !key_type.supports_signing() {
        return Err(ApiError::bad(format!(
            "key type {key_type} does not support signing"
        )));
    }
    if key_version < 0 {
        return Err(ApiError::bad("requested version for signing is negative"));
    }
    // A missing `input` signs the empty message, as in OpenBao.
    let one = |input: Option<String>, context: Option<String>| {
        let input = decode_input(&input.unwrap_or_default())?;
        let context = decode_context(context)?;
        ring.sign(&input, context.as_deref(), key_version, &opts)
            .map_err(key_error)
    };
    let Some(items) = batch else {
        let sig = one(single_input, single_context)?;
        let mut data = json!({ "signature": sig.text, "key_version": sig.key_version });
        if let Some(public) = sig.public_key {
            data["public_key"] = json!(encode_b64(&public));
        }
        return Ok(Reply::data(data));
    };
    check_cost(ctx, key_type, Work::Sign, items.len())?;
    let results = items
        .iter()
        .map(|item| {
            let reference = reference(item);
            let result = item
                .string("input")
                .and_then(|input| Ok((input, item.string("context")?)))
                .and_then(|(input, context)| one(input, context));
            match result {
                Ok(sig) => {
                    let mut r = result_fields([
                        ("signature", Value::String(sig.text)),
                        ("key_version", Value::from(sig.key_version)),
                        ("reference", Value::String(reference)),
                    ]);
                    // The batch names the derived key `publickey` (OpenBao's quirk).
                    if let Some(public) = sig.public_key {
                        r.insert("publickey".to_owned(), Value::String(encode_b64(&public)));
                    }
                    Value::Object(r)
                }
                Err(e) => item_error(e, &reference, &[("key_version", json!(0))]),
            }
        })
        .collect::<Vec<_>>();
    Ok(Reply::data(batch_results(results)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Signature,
    Hmac,
}

/// Which kind of check a batch asks for. An item with a `signature` counts as a
/// signature item even if it also has an `hmac` (OpenBao's order).
fn batch_check(items: &[Params]) -> ApiResult<Check> {
    let (mut signatures, mut hmacs) = (0, 0);
    for item in items {
        if item.has("signature") {
            signatures += 1;
        } else if item.has("hmac") {
            hmacs += 1;
        }
    }
    match (signatures, hmacs) {
        (s, _) if s == items.len() => Ok(Check::Signature),
        (_, h) if h == items.len() => Ok(Check::Hmac),
        (s, h) if s > 0 && h > 0 => Err(ApiError::bad(
            "elements of batch_input must all provide 'signature' or all provide 'hmac'",
        )),
        (s, _) if s > 0 => Err(ApiError::bad(
            "some elements of batch_input are missing 'signature'",
        )),
        (_, h) if h > 0 => Err(ApiError::bad(
            "some elements of batch_input are missing 'hmac'",
        )),
        _ => Err(ApiError::bad(
            "no batch_input elements have 'signature' or 'hmac'",
        )),
    }
}

pub fn verify(ctx: &Ctx<'_>, name: &str, url_alg: Option<&str>, p: &Params) -> ApiResult<Reply> {
    let url = url_algorithm(url_alg, p)?.filter(|s| non_empty(s));
    let batch = batch_input(ctx, p)?;
    let has_signature = p.has("signature");
    let has_hmac = p.has("hmac");
    let check = match &batch {
        Some(items) => batch_check(items)?,
        None if has_signature => Check::Signature,
        None if has_hmac => Check::Hmac,
        None => {
            return Err(ApiError::bad(
                "neither a 'signature' nor an 'hmac' were given to verify",
            ));
        }
    };
    match check {
        Check::Signature => verify_signature(ctx, name, url, p, batch),
        Check::Hmac => {
            // Fields of this path that only signatures use: known, so no warning.
            for field in [
                "context",
                "prehashed",
                "signature_algorithm",
                "salt_length",
                "marshaling_algorithm",
            ] {
                let _ = p.has(field);
            }
            hmac::verify(ctx, name, url, p, batch)
        }
    }
}

fn verify_signature(
    ctx: &Ctx<'_>,
    name: &str,
    url: Option<String>,
    p: &Params,
    batch: Option<Vec<Params>>,
) -> ApiResult<Reply> {
    let opts = sign_options(url, p)?;
    let single_input = p.string("input")?;
    let single_signature = p.string("signature")?;
    let single_context = p.string("context")?;
    let signatures = versioned_fields(p, batch.as_deref(), "signature");
    let ring = key_for_reading(
        ctx,
        name,
        signatures.iter().map(String::as_str),
        "signature verification key not found",
    )?;
    let key_type = ring.key_type();
    if !key_type.supports_signing() {
        return Err(ApiError::bad(format!(
            "key type {key_type} does not support verification"
        )));
    }
    let one = |input: &[u8], signature: &str, context: Option<String>| -> ApiResult<bool> {
        let context = decode_context(context)?;
        ring.verify(input, signature, context.as_deref(), &opts)
            .map_err(key_error)
    };
    let Some(items) = batch else {
        let valid = one(
            &decode_input(&single_input.unwrap_or_default())?,
            &single_signature.unwrap_or_default(),
            single_context,
        )?;
        return Ok(Reply::data(json!({ "valid": valid })));
    };
    check_cost(ctx, key_type, Work::Verify, items.len())?;
    let results = items
        .iter()
        .map(|item| {
            let reference = reference(item);
            let result = (|| {
                let signature = item.string("signature")?.unwrap_or_default();
                one(&item_input(item)?, &signature, item.string("context")?)
            })();
            match result {
                // Unlike HMAC verification, a false `valid` is always shown.
                Ok(valid) => Value::Object(result_fields([
                    ("valid", Value::Bool(valid)),
                    ("reference", Value::String(reference)),
                ])),
                Err(e) => item_error(e, &reference, &[("valid", Value::Bool(false))]),
            }
        })
        .collect::<Vec<_>>();
    Ok(Reply::data(batch_results(results)))
}
