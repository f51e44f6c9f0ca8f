//! `batch_input`: reading a batch, bounding its work, and answering it.
//!
//! A batch is bounded twice before any item is served: by its number of
//! items (`Limits::max_batch_items`), and by the CPU time its items would
//! take with the key they name (`Limits::max_batch_cpu_micros`), estimated
//! from [`item_micros`]. The count alone would let 100,000 RSA-4096
//! signatures (minutes of CPU) through as readily as 100,000 AES encryptions
//! (a tenth of a second).

use serde_json::{Map, Value, json};
use transit_keys::KeyType;

use super::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;

/// The items of `batch_input`, or `None` for a single-item request.
pub fn batch_input<'p>(ctx: &Ctx<'_>, p: &'p Params<'_>) -> ApiResult<Option<Vec<Params<'p>>>> {
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
            Value::Object(map) => Ok(Params::borrowed(map)),
            _ => Err(ApiError::bad("batch_input items must be JSON objects")),
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Some)
}

/// `{"batch_results": [...]}`, the results moved in (`json!` would serialise
/// a deep copy of every result).
pub fn batch_results(results: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("batch_results".to_owned(), Value::Array(results));
    Value::Object(m)
}

/// One batch result's fields, the values moved in (`json!` copies them).
pub fn result_fields<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

pub fn item_error(e: ApiError, reference: &str, extra: &[(&str, Value)]) -> Value {
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

/// What an item does with its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Encrypt (a public-key operation for RSA keys).
    Encrypt,
    /// Decrypt (a private-key operation for RSA keys).
    Decrypt,
    /// Decrypt, then encrypt.
    Rewrap,
    Sign,
    Verify,
    /// HMAC or HMAC verify: symmetric whatever the key type.
    Hmac,
}

/// An upper estimate of one item's CPU time in microseconds, rounded up
/// from `openssl speed` on a 2-vCPU VM (aws-lc, which serves these
/// operations, is as fast or faster); base64 and JSON included for the
/// symmetric ones. Only the ratios matter much: they decide which batches
/// the budget admits.
pub fn item_micros(key_type: KeyType, work: Work) -> u64 {
    use KeyType as K;
    use Work as W;
    match work {
        W::Hmac => 2,
        W::Rewrap => item_micros(key_type, W::Decrypt) + item_micros(key_type, W::Encrypt),
        W::Encrypt | W::Decrypt | W::Sign | W::Verify => {
            let private = matches!(work, W::Decrypt | W::Sign);
            match key_type {
                K::Rsa2048 if private => 250,
                K::Rsa3072 if private => 1_800,
                K::Rsa4096 if private => 4_000,
                K::Rsa2048 => 20,
                K::Rsa3072 => 40,
                K::Rsa4096 => 60,
                K::Ed25519 if private => 40,
                K::Ed25519 => 100,
                K::EcdsaP256 if private => 25,
                K::EcdsaP256 => 60,
                K::EcdsaP384 if private => 800,
                K::EcdsaP384 => 720,
                K::EcdsaP521 if private => 300,
                K::EcdsaP521 => 500,
                K::MlDsa44 if private => 300,
                K::MlDsa44 => 100,
                K::MlDsa65 if private => 500,
                K::MlDsa65 => 150,
                K::MlDsa87 if private => 700,
                K::MlDsa87 => 250,
                // AEADs and HMAC keys: symmetric.
                _ => 2,
            }
        }
    }
}

/// Refuses a batch of `items` items whose estimated CPU time with this key
/// is over the request's budget: before any item is served, so a refused
/// batch did nothing.
pub fn check_cost(ctx: &Ctx<'_>, key_type: KeyType, work: Work, items: usize) -> ApiResult<()> {
    let per_item = item_micros(key_type, work);
    let budget = ctx.state.limits.max_batch_cpu_micros;
    let allowed = budget / per_item;
    if u64::try_from(items).unwrap_or(u64::MAX) > allowed {
        return Err(ApiError::bad(format!(
            "batch_input has {items} items; with key type {key_type} this operation takes at \
             most {allowed} items per request (split the batch)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Limits;

    #[test]
    fn the_default_budget_admits_full_symmetric_batches_and_few_rsa_4096_signatures() {
        let limits = Limits::default();
        let allowed = |key_type, work| limits.max_batch_cpu_micros / item_micros(key_type, work);
        let full = u64::try_from(limits.max_batch_items).unwrap();
        for work in [Work::Encrypt, Work::Decrypt, Work::Rewrap, Work::Hmac] {
            assert!(allowed(KeyType::Aes256Gcm96, work) >= full, "{work:?}");
        }
        assert!(allowed(KeyType::Hmac, Work::Hmac) >= full);
        assert!(allowed(KeyType::Rsa4096, Work::Sign) <= 1_000);
        assert!(allowed(KeyType::Rsa4096, Work::Hmac) >= full);
        // A private-key operation never costs less than its public half.
        for key_type in [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096] {
            assert!(item_micros(key_type, Work::Decrypt) > item_micros(key_type, Work::Encrypt));
        }
    }
}
