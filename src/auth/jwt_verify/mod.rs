//! The one home for verifying JWTs, used by every login method that takes one
//! (`auth/jwt`; `auth/kubernetes`, which without `pem_keys` checks the claims
//! of a token only the API server can verify: [`unverified`]).
//!
//! Signatures are checked by the `jsonwebtoken` crate (aws-lc-rs backend),
//! never by hand. What is ours is the policy around it, as Vault's
//! (`hashicorp/cap/jwt`) applies it:
//! * the token's size is bounded before anything is decoded ([`MAX_JWT_BYTES`]);
//! * its `alg` must be one the configuration allows (never `none`, never an
//!   HMAC: no allowed list may hold one, so a public key can never be used as
//!   an HMAC secret), and a key is only tried with an algorithm of its own
//!   family;
//! * the time claims with Vault's leeways ([`Leeways`]), the numeric ones
//!   strictly numbers (a string `exp` is refused, not ignored);
//! * `iss`, `sub` and `aud` against what the caller expects.
//!
//! Where the keys come from is [`keys`]; fetching them over HTTPS is [`fetch`].

pub mod fetch;
pub mod keys;

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use keys::{KeySource, RemoteKeys, StaticKeys};

/// The largest JWT accepted, in bytes. Kubernetes service-account tokens are
/// about 1 KiB and OIDC ID tokens rarely above 4 KiB; a login is
/// unauthenticated, so nothing larger is decoded.
pub const MAX_JWT_BYTES: usize = 16 * 1024;

/// A token's claims, as JSON.
pub type Claims = Map<String, Value>;

/// Why a token was refused: it could not be verified (malformed, too
/// large, a disallowed algorithm, no key that verifies its signature), its
/// verified claims were refused, or its keys could not be fetched (the
/// issuer is down or answered garbage). Never a token in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("{0}")]
    Unverified(String),
    #[error("{0}")]
    Claims(String),
    #[error("{0}")]
    Unavailable(String),
}

impl JwtError {
    fn unverified(message: impl Into<String>) -> Self {
        Self::Unverified(message.into())
    }

    fn claims(message: impl Into<String>) -> Self {
        Self::Claims(message.into())
    }
}

const NO_KEY: &str =
    "error verifying token signature: no known key successfully validated the token signature";

/// The signing algorithms Vault allows for JWT logins (`cap/jwt`'s list):
/// asymmetric only.
pub const SUPPORTED_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// An algorithm by its JOSE name, if Vault allows it for logins. (`ES512` is
/// in Vault's list but not in the crate's: refused as unsupported.)
pub fn parse_alg(name: &str) -> Option<Algorithm> {
    SUPPORTED_ALGS
        .into_iter()
        .find(|alg| format!("{alg:?}") == name)
}

/// A role's leeways as Vault stores them, in seconds: 0 means Vault's default
/// (60 s of clock skew; 150 s for a missing `exp` or `nbf`), -1 none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leeways {
    pub clock_skew: i64,
    pub expiration: i64,
    pub not_before: i64,
}

impl Leeways {
    fn effective(value: i64, default: i64) -> i64 {
        match value {
            0 => default,
            v if v < 0 => 0,
            v => v,
        }
    }
}

/// What a verified token must say.
#[derive(Debug, Default)]
pub struct Expected<'a> {
    /// Allowed `alg` values; empty: [`SUPPORTED_ALGS`].
    pub algorithms: &'a [Algorithm],
    /// Required `iss`, if not empty.
    pub issuer: &'a str,
    /// Required `sub`, if not empty.
    pub subject: &'a str,
    /// `aud` must hold one of these, if any.
    pub audiences: &'a [String],
    pub leeways: Leeways,
    /// Accept a token without any of `iat`, `nbf`, `exp` (Kubernetes'
    /// legacy service-account tokens have none).
    pub allow_missing_times: bool,
}

/// Verify `token` with a key of `keys` and check its claims against
/// `expected` at `now` (Unix seconds). Returns every claim.
pub fn verify(
    token: &str,
    keys: &dyn KeySource,
    expected: &Expected<'_>,
    now: i64,
) -> Result<Claims, JwtError> {
    bound_size(token)?;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| JwtError::unverified(format!("error verifying token signature: {e}")))?;
    let allowed = if expected.algorithms.is_empty() {
        &SUPPORTED_ALGS[..]
    } else {
        expected.algorithms
    };
    if !allowed.contains(&header.alg) {
        return Err(JwtError::unverified(NO_KEY));
    }
    let mut validation = Validation::new(header.alg);
    // Claims are checked below, with Vault's rules.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let candidates = keys.candidates(header.kid.as_deref())?;
    let claims = candidates
        .iter()
        .filter(|key| key.family() == header.alg.family())
        .find_map(|key| jsonwebtoken::decode::<Claims>(token, key, &validation).ok())
        .ok_or_else(|| JwtError::unverified(NO_KEY))?
        .claims;
    check_claims(claims, expected, now)
}

/// Check the claims of `token` against `expected` WITHOUT verifying its
/// signature: only for a caller that has the token confirmed by whoever
/// issued it (Kubernetes' TokenReview), as Vault does without `pem_keys`.
pub fn unverified(token: &str, expected: &Expected<'_>, now: i64) -> Result<Claims, JwtError> {
    bound_size(token)?;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
        .map_err(|e| JwtError::unverified(format!("error parsing token: {e}")))?
        .claims;
    check_claims(claims, expected, now)
}

fn bound_size(token: &str) -> Result<(), JwtError> {
    if token.len() > MAX_JWT_BYTES {
        return Err(JwtError::unverified(format!(
            "token is larger than {MAX_JWT_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_claims(claims: Claims, expected: &Expected<'_>, now: i64) -> Result<Claims, JwtError> {
    check_times(&claims, expected.leeways, expected.allow_missing_times, now)?;
    check_strings(&claims, expected)?;
    Ok(claims)
}

/// The largest numeric date taken (2^53 s, the last integer a JSON number
/// holds exactly): a larger one, such as `1e300`, would saturate to a date
/// that never comes.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// A numeric date claim: absent, or a number (a string is refused, as Vault does).
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.abs() <= MAX_NUMERIC_DATE)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| JwtError::claims(format!("invalid {name} claim"))),
        Some(_) => Err(JwtError::claims(format!(
            "expected number value to unmarshal NumericDate ({name})"
        ))),
    }
}

/// Vault's time rules: one of `iat`, `nbf`, `exp` is required; a missing
/// `exp` is the later of `iat` and `nbf` plus the expiration leeway, a
/// missing `nbf` is `iat`, else `exp` less the not-before leeway; both are
/// then checked with the clock-skew leeway.
fn check_times(
    claims: &Claims,
    leeways: Leeways,
    allow_missing: bool,
    now: i64,
) -> Result<(), JwtError> {
    let iat = numeric_date(claims, "iat")?;
    let nbf = numeric_date(claims, "nbf")?;
    let exp = numeric_date(claims, "exp")?;
    if iat.is_none() && nbf.is_none() && exp.is_none() {
        if allow_missing {
            return Ok(());
        }
        return Err(JwtError::claims(
            "no issued at (iat), not before (nbf), or expiration time (exp) claims in token",
        ));
    }
    let skew = Leeways::effective(leeways.clock_skew, 60);
    let exp_leeway = Leeways::effective(leeways.expiration, 150);
    let nbf_leeway = Leeways::effective(leeways.not_before, 150);
    let exp = exp.unwrap_or_else(|| iat.max(nbf).unwrap_or_default().saturating_add(exp_leeway));
    let nbf = nbf
        .or(iat)
        .unwrap_or_else(|| exp.saturating_sub(nbf_leeway));
    if now > exp.saturating_add(skew) {
        return Err(JwtError::claims(
            "invalid expiration time (exp) claim: token is expired",
        ));
    }
    if now < nbf.saturating_sub(skew) {
        return Err(JwtError::claims(
            "invalid not before (nbf) claim: token not yet valid",
        ));
    }
    Ok(())
}

fn string_claim<'c>(claims: &'c Claims, name: &str) -> Result<Option<&'c str>, JwtError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::claims(format!(
            "invalid {name} claim: not a string"
        ))),
    }
}

/// The `aud` claim as a list (a single string is a list of one).
pub fn audiences(claims: &Claims) -> Result<Vec<&str>, JwtError> {
    match claims.get("aud") {
        // `"aud": null` is refused, as OpenBao does: absent and null differ.
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| JwtError::claims("invalid aud claim: not a string"))
            })
            .collect(),
        Some(_) => Err(JwtError::claims("invalid aud claim: not a string")),
    }
}

fn check_strings(claims: &Claims, expected: &Expected<'_>) -> Result<(), JwtError> {
    let iss = string_claim(claims, "iss")?;
    let sub = string_claim(claims, "sub")?;
    let aud = audiences(claims)?;
    if !expected.issuer.is_empty() && iss != Some(expected.issuer) {
        return Err(JwtError::claims("invalid issuer (iss) claim"));
    }
    if !expected.subject.is_empty() && sub != Some(expected.subject) {
        return Err(JwtError::claims("invalid subject (sub) claim"));
    }
    if !expected.audiences.is_empty()
        && !expected
            .audiences
            .iter()
            .any(|want| aud.contains(&want.as_str()))
    {
        return Err(JwtError::claims(
            "invalid audience (aud) claim: audience claim does not match any expected audience",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
