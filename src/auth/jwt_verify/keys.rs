//! Where verification keys come from: PEM public keys given in the
//! configuration ([`StaticKeys`]), or a JWKS fetched over HTTPS, directly or
//! through OIDC discovery ([`RemoteKeys`]).
//!
//! A remote key set is cached. It is fetched again when a token names a `kid`
//! it does not hold (the issuer rotated its keys) or when it is an hour old,
//! but at most once every [`MIN_REFRESH`] however many tokens ask, so a flood
//! of made-up `kid`s cannot hammer the issuer. The fetch runs without any
//! lock held: other logins go on with the cached keys meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

use super::JwtError;
use super::fetch::Https;

/// At most one fetch of a key set per this interval.
pub const MIN_REFRESH: Duration = Duration::from_secs(2);
/// A key set older than this is fetched again (so removed keys stop working).
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// A source of candidate keys for a token whose header names `kid`.
pub trait KeySource: Send + Sync + std::fmt::Debug {
    fn candidates(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, JwtError>;
}

/// Public keys from the configuration (Vault's `jwt_validation_pubkeys`):
/// every one is tried, whatever `kid` the token names.
#[derive(Clone)]
pub struct StaticKeys(Vec<DecodingKey>);

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticKeys({} keys)", self.0.len())
    }
}

/// One PEM public key (RSA, EC or Ed25519).
fn pem_key(pem: &str) -> Option<DecodingKey> {
    let bytes = pem.trim().as_bytes();
    DecodingKey::from_rsa_pem(bytes)
        .or_else(|_| DecodingKey::from_ec_pem(bytes))
        .or_else(|_| DecodingKey::from_ed_pem(bytes))
        .ok()
}

impl StaticKeys {
    pub fn from_pems(pems: &[String]) -> Result<Self, String> {
        let keys = pems
            .iter()
            .map(|pem| {
                pem_key(pem).ok_or_else(|| {
                    "error parsing public key: data does not contain any valid public keys"
                        .to_owned()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(keys))
    }
}

impl KeySource for StaticKeys {
    fn candidates(&self, _kid: Option<&str>) -> Result<Vec<DecodingKey>, JwtError> {
        Ok(self.0.clone())
    }
}

/// Where a remote key set is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// A JWKS document at this URL.
    Jwks(String),
    /// An OIDC issuer: its discovery document names the JWKS.
    Discovery(String),
}

#[derive(Default)]
struct Cache {
    keys: Vec<(Option<String>, DecodingKey)>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    /// Why the last attempt failed, while no keys are held.
    failure: Option<String>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("keys", &self.keys.len())
            .field("fetched", &self.fetched)
            .finish_non_exhaustive()
    }
}

impl Cache {
    fn matching(&self, kid: Option<&str>) -> Vec<DecodingKey> {
        self.keys
            .iter()
            .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
            .map(|(_, key)| key.clone())
            .collect()
    }
}

/// A JWKS fetched over HTTPS and cached.
#[derive(Debug)]
pub struct RemoteKeys {
    published: Published,
    https: Https,
    cache: Mutex<Cache>,
}

impl RemoteKeys {
    /// `ca_pem`: the CA bundle to trust (empty: the public web roots).
    pub fn new(published: Published, ca_pem: &str) -> Result<Self, String> {
        Ok(Self {
            published,
            https: Https::new(ca_pem)?,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// Fetch the key set now (a configuration write checks it can).
    pub fn fetch(&self) -> Result<Vec<(Option<String>, DecodingKey)>, String> {
        let jwks_url = match &self.published {
            Published::Jwks(url) => url.clone(),
            Published::Discovery(issuer) => self.discover(issuer)?,
        };
        let doc = self.https.get_json(&jwks_url)?;
        let set: JwkSet = serde_json::from_value(doc)
            .map_err(|e| format!("fetching keys: invalid JWKS from {jwks_url:?}: {e}"))?;
        // Keys of kinds the crate cannot use (symmetric, unknown curves) are
        // skipped, as go-jose skips them; an empty result is an error.
        let keys: Vec<_> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                DecodingKey::from_jwk(jwk)
                    .ok()
                    .filter(|key| key.family() != jsonwebtoken::AlgorithmFamily::Hmac)
                    .map(|key| (jwk.common.key_id.clone(), key))
            })
            .collect();
        if keys.is_empty() {
            return Err(format!("fetching keys: no usable key in {jwks_url:?}"));
        }
        Ok(keys)
    }

    /// The JWKS URL of an OIDC issuer, whose discovery document must name
    /// the issuer exactly as configured (as go-oidc checks).
    fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.https.get_json(&url)?;
        let named = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if named != issuer {
            return Err(format!(
                "oidc: issuer did not match the issuer returned by provider, expected {issuer:?} got {named:?}"
            ));
        }
        let jwks = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| "oidc: discovery document has no jwks_uri".to_owned())?;
        super::fetch::https_url("jwks_uri", jwks)?;
        Ok(jwks.to_owned())
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Cache>, JwtError> {
        self.cache
            .lock()
            .map_err(|_| JwtError::Unavailable("key cache poisoned".to_owned()))
    }
}

impl KeySource for RemoteKeys {
    fn candidates(&self, kid: Option<&str>) -> Result<Vec<DecodingKey>, JwtError> {
        let held = {
            let mut cache = self.lock()?;
            let held = cache.matching(kid);
            let fresh = cache.fetched.is_some_and(|t| t.elapsed() < MAX_AGE);
            if !held.is_empty() && fresh {
                return Ok(held);
            }
            if cache.attempted.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
                // Rate-limited: what is held, or why there is nothing.
                return match &cache.failure {
                    Some(why) if held.is_empty() => Err(JwtError::Unavailable(why.clone())),
                    _ => Ok(held),
                };
            }
            cache.attempted = Some(Instant::now());
            held
        };
        let fetched = self.fetch();
        let mut cache = self.lock()?;
        match fetched {
            Ok(keys) => {
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
                cache.failure = None;
                Ok(cache.matching(kid))
            }
            // Stale keys still serve while the issuer is unreachable.
            Err(_) if !held.is_empty() => Ok(held),
            Err(why) => {
                let why = format!("error verifying token signature: {why}");
                if cache.keys.is_empty() {
                    cache.failure = Some(why.clone());
                }
                Err(JwtError::Unavailable(why))
            }
        }
    }
}
