//! `hmac/:name[/:algorithm]` and the HMAC half of `verify/:name[/:algorithm]`.
//!
//! As in OpenBao, a batch shares the request's `algorithm` and `key_version`:
//! items carry only `input` (and `hmac` when verifying) and `reference`. A bad
//! version fails the whole request; a bad item fails only its own result, and
//! the reply is 200 either way.

use serde_json::{Map, Value, json};
use transit_keys::{Error as KeyError, HashAlgorithm};

use super::Ctx;
use super::batch::{Work, batch_input, batch_results, check_cost, item_error, result_fields};
use super::crypt::{KEY_NOT_FOUND, key_for_reading};
use crate::error::{ApiError, ApiResult};
use crate::request::{Params, decode_b64};
use crate::response::Reply;

/// The `reference` of a batch item, echoed on every result (empty when absent).
pub(super) fn reference(item: &Params) -> String {
    item.string("reference").ok().flatten().unwrap_or_default()
}

/// A standard-base64 `input`, with the transit engine's error text.
pub(super) fn decode_input(text: &str) -> ApiResult<Vec<u8>> {
    decode_b64(text).map_err(|e| ApiError::bad(format!("unable to decode input as base64: {e}")))
}

/// A batch item's `input`: required (a single request may omit it), base64.
pub(super) fn item_input(item: &Params) -> ApiResult<Vec<u8>> {
    let input = item
        .string("input")?
        .ok_or_else(|| ApiError::bad("missing input"))?;
    decode_input(&input)
}

/// The algorithm named in the URL, or else in the body's `urlalgorithm` (which
/// OpenBao also accepts on the short path).
pub(super) fn url_algorithm(url: Option<&str>, p: &Params) -> ApiResult<Option<String>> {
    let body = p.string("urlalgorithm")?;
    Ok(url.map(str::to_owned).or(body))
}

/// The hash of an HMAC. `none` is refused here (OpenBao would panic on it), and
/// the message names the algorithm (OpenBao prints `'\x00'`).
fn generate_algorithm(name: &str) -> ApiResult<HashAlgorithm> {
    name.parse()
        .map_err(|_| ApiError::bad(format!("unsupported algorithm {name:?}")))
}

/// The hash of an HMAC verification: URL, `hash_algorithm`, `algorithm`, sha2-256.
fn verify_algorithm(url: Option<String>, p: &Params) -> ApiResult<HashAlgorithm> {
    let hash_algorithm = p.string("hash_algorithm")?.filter(|s| !s.is_empty());
    let algorithm = p.string("algorithm")?.filter(|s| !s.is_empty());
    let name = url
        .or(hash_algorithm)
        .or(algorithm)
        .unwrap_or_else(|| "sha2-256".to_owned());
    name.parse()
        .map_err(|_| ApiError::bad(format!("invalid hash algorithm {name:?}")))
}

pub fn hmac(ctx: &Ctx<'_>, name: &str, url_alg: Option<&str>, p: &Params) -> ApiResult<Reply> {
    let url = url_algorithm(url_alg, p)?;
    let body_alg = p.string("algorithm")?;
    let algorithm =
        generate_algorithm(url.as_deref().or(body_alg.as_deref()).unwrap_or("sha2-256"))?;
    let key_version = p.int("key_version")?.unwrap_or(0);
    let batch = batch_input(ctx, p)?;
    let single_input = p.string("input")?;
    let ring = key_for_reading(ctx, name, std::iter::empty(), KEY_NOT_FOUND)?;
    // Version errors belong to the whole request (OpenBao resolves the version
    // before reading any input): check it once with an empty message.
    ring.hmac(&[], algorithm, key_version)?;
    let one = |input: Option<String>| -> ApiResult<String> {
        let input = input.ok_or_else(|| ApiError::bad("missing input for HMAC"))?;
        let input = decode_input(&input)?;
        Ok(ring.hmac(&input, algorithm, key_version)?.text)
    };
    let Some(items) = batch else {
        return Ok(Reply::data(json!({ "hmac": one(single_input)? })));
    };
    check_cost(ctx, ring.key_type(), Work::Hmac, items.len())?;
    let results = items
        .iter()
        .map(|item| {
            let reference = reference(item);
            match item.string("input").and_then(&one) {
                Ok(mac) => Value::Object(result_fields([
                    ("hmac", Value::String(mac)),
                    ("reference", Value::String(reference)),
                ])),
                Err(e) => item_error(e, &reference, &[]),
            }
        })
        .collect::<Vec<_>>();
    Ok(Reply::data(batch_results(results)))
}

/// HMAC verification; `verify` (in sign.rs) routes here when the request
/// carries `hmac` rather than `signature`. `batch` is the parsed `batch_input`.
pub fn verify(
    ctx: &Ctx<'_>,
    name: &str,
    url: Option<String>,
    p: &Params,
    batch: Option<Vec<Params>>,
) -> ApiResult<Reply> {
    let algorithm = verify_algorithm(url, p)?;
    let macs = versioned_fields(p, batch.as_deref(), "hmac");
    let ring = key_for_reading(ctx, name, macs.iter().map(String::as_str), KEY_NOT_FOUND)?;
    let one = |input: &[u8], mac: &str| -> ApiResult<bool> {
        ring.verify_hmac(input, mac, algorithm)
            .map_err(|e| verify_error(e, mac))
    };
    let Some(items) = batch else {
        // A single request without `input` verifies the empty message.
        let input = decode_input(&p.string("input")?.unwrap_or_default())?;
        let mac = p.string("hmac")?.unwrap_or_default();
        return Ok(Reply::data(json!({ "valid": one(&input, &mac)? })));
    };
    check_cost(ctx, ring.key_type(), Work::Hmac, items.len())?;
    let results = items
        .iter()
        .map(|item| {
            let reference = reference(item);
            let result = (|| {
                let mac = item.string("hmac")?.unwrap_or_default();
                one(&item_input(item)?, &mac)
            })();
            match result {
                // OpenBao's `omitempty`: a false `valid` is left out.
                Ok(valid) => {
                    let mut m = Map::new();
                    if valid {
                        m.insert("valid".into(), json!(true));
                    }
                    m.insert("reference".into(), json!(reference));
                    Value::Object(m)
                }
                Err(e) => item_error(e, &reference, &[]),
            }
        })
        .collect::<Vec<_>>();
    Ok(Reply::data(batch_results(results)))
}

/// The keyring's error, with Go's base64 diagnostic added as OpenBao words it.
/// The `field` of a single request or of every batch item (the versioned
/// strings a verification reads: `vault:vN:...`).
pub(crate) fn versioned_fields(p: &Params, batch: Option<&[Params]>, field: &str) -> Vec<String> {
    match batch {
        Some(items) => items
            .iter()
            .filter_map(|item| item.string(field).ok().flatten())
            .collect(),
        None => p.string(field).ok().flatten().into_iter().collect(),
    }
}

fn verify_error(e: KeyError, mac: &str) -> ApiError {
    if e == KeyError::HmacBadBase64
        && let Ok(parsed) = transit_keys::envelope::parse_raw(mac)
        && let Err(ApiError::BadRequest(detail)) = decode_b64(parsed.body)
    {
        return ApiError::bad(format!("{e}: {detail}"));
    }
    e.into()
}
