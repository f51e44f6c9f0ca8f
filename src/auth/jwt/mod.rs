//! The JWT login method, as Vault's `auth/jwt` serves non-browser logins:
//! one configuration (where the issuer's keys come from, the issuer to
//! expect, the allowed algorithms), roles that bind claims, and `login`
//! with a signed JWT. The browser OIDC flow is not served.
//!
//! Stored by `auth/method_store.rs`. The key source (static keys, or a
//! cached JWKS) is rebuilt from the configuration on every node, never
//! stored: a node fetches the JWKS itself when a login needs it.
//!
//! Verification itself is `auth::jwt_verify`'s; this module decides which
//! keys and which expectations apply, and what the role's bindings require.

mod claims;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::jwt_verify::keys::Published;
use super::jwt_verify::{self, Expected, JwtError, KeySource, Leeways, RemoteKeys, StaticKeys};
use super::method_store::{MethodStore, Spec};
use super::userpass::TokenParams;
use crate::storage::{StoreError, StoreResult};

pub use claims::BoundClaimsType;

/// The method's configuration, as stored and as `config` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JwtConfig {
    pub oidc_discovery_url: String,
    pub oidc_discovery_ca_pem: String,
    pub jwks_url: String,
    pub jwks_ca_pem: String,
    pub jwt_validation_pubkeys: Vec<String>,
    pub bound_issuer: String,
    pub jwt_supported_algs: Vec<String>,
    pub default_role: String,
}

impl JwtConfig {
    /// Vault's checks of a configuration, and the key source it makes. No
    /// network: [`Configured::check_reachable`] is the write's extra check.
    fn key_source(&self) -> StoreResult<Arc<dyn KeySource>> {
        let sources = [
            !self.jwt_validation_pubkeys.is_empty(),
            !self.jwks_url.is_empty(),
            !self.oidc_discovery_url.is_empty(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(StoreError::invalid(
                "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set",
            ));
        }
        for alg in &self.jwt_supported_algs {
            if jwt_verify::parse_alg(alg).is_none() {
                return Err(StoreError::invalid(format!(
                    "invalid jwt_supported_algs: unsupported signing algorithm {alg:?}"
                )));
            }
        }
        if !self.jwt_validation_pubkeys.is_empty() {
            let keys =
                StaticKeys::from_pems(&self.jwt_validation_pubkeys).map_err(StoreError::invalid)?;
            return Ok(Arc::new(keys));
        }
        let (published, ca, field) = if self.jwks_url.is_empty() {
            (
                Published::Discovery(self.oidc_discovery_url.clone()),
                &self.oidc_discovery_ca_pem,
                "oidc_discovery_url",
            )
        } else {
            (
                Published::Jwks(self.jwks_url.clone()),
                &self.jwks_ca_pem,
                "jwks_url",
            )
        };
        let url = match &published {
            Published::Jwks(u) | Published::Discovery(u) => u,
        };
        jwt_verify::fetch::https_url(field, url).map_err(StoreError::invalid)?;
        if url.contains("/.well-known/") {
            return Err(StoreError::invalid(format!(
                "'{field}' contains '.well-known' component"
            )));
        }
        Ok(Arc::new(
            RemoteKeys::new(published, ca).map_err(StoreError::invalid)?,
        ))
    }

    fn algorithms(&self) -> Vec<jsonwebtoken::Algorithm> {
        self.jwt_supported_algs
            .iter()
            .filter_map(|a| jwt_verify::parse_alg(a))
            .collect()
    }
}

/// A configuration with the keys it names.
#[derive(Debug)]
pub struct Configured {
    pub config: JwtConfig,
    keys: Arc<dyn KeySource>,
    algorithms: Vec<jsonwebtoken::Algorithm>,
}

impl Configured {
    pub fn new(config: JwtConfig) -> StoreResult<Self> {
        let keys = config.key_source()?;
        let algorithms = config.algorithms();
        Ok(Self {
            config,
            keys,
            algorithms,
        })
    }

    /// Fetch the remote keys once (Vault checks a JWKS or discovery URL when
    /// the configuration is written). Blocking, with the fetch's deadlines.
    pub fn check_reachable(&self) -> StoreResult<()> {
        let published = if self.config.jwks_url.is_empty() {
            if self.config.oidc_discovery_url.is_empty() {
                return Ok(());
            }
            Published::Discovery(self.config.oidc_discovery_url.clone())
        } else {
            Published::Jwks(self.config.jwks_url.clone())
        };
        let (ca, what) = match published {
            Published::Jwks(_) => (&self.config.jwks_ca_pem, "error checking jwks URL"),
            Published::Discovery(_) => (
                &self.config.oidc_discovery_ca_pem,
                "error checking oidc discovery URL",
            ),
        };
        RemoteKeys::new(published, ca)
            .and_then(|r| r.fetch().map(|_| ()))
            .map_err(|e| StoreError::invalid(format!("{what}: {e}")))
    }
}

/// A role, as stored and as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JwtRole {
    /// Lowercased, as Vault stores role names.
    pub name: String,
    pub bound_audiences: Vec<String>,
    pub bound_subject: String,
    pub bound_claims: Option<Map<String, Value>>,
    pub bound_claims_type: BoundClaimsType,
    pub user_claim: String,
    pub user_claim_json_pointer: bool,
    pub groups_claim: String,
    pub claim_mappings: Option<BTreeMap<String, String>>,
    pub leeways: Leeways,
    #[serde(flatten)]
    pub token: TokenParams,
    #[serde(default)]
    pub legacy_policies: bool,
}

/// Metadata keys the method sets itself.
const RESERVED_METADATA: [&str; 1] = ["role"];

impl JwtRole {
    pub fn blank(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            bound_audiences: Vec::new(),
            bound_subject: String::new(),
            bound_claims: None,
            bound_claims_type: BoundClaimsType::String,
            user_claim: String::new(),
            user_claim_json_pointer: false,
            groups_claim: String::new(),
            claim_mappings: None,
            leeways: Leeways::default(),
            token: TokenParams::default(),
            legacy_policies: false,
        }
    }

    /// Vault's checks of a role write (in its order).
    pub fn validate(&self) -> StoreResult<()> {
        if let Some(bound) = &self.bound_claims {
            claims::validate_bound(bound, self.bound_claims_type)?;
        }
        if let Some(mappings) = &self.claim_mappings {
            let mut targets = std::collections::BTreeSet::new();
            for target in mappings.values() {
                if RESERVED_METADATA.contains(&target.as_str()) {
                    return Err(StoreError::invalid(format!(
                        "metadata key {target:?} is reserved and may not be a mapping destination"
                    )));
                }
                if !targets.insert(target) {
                    return Err(StoreError::invalid(format!(
                        "multiple keys are mapped to metadata key {target:?}"
                    )));
                }
            }
        }
        if self.user_claim.is_empty() {
            return Err(StoreError::invalid(
                "a user claim must be defined on the role",
            ));
        }
        if self.bound_audiences.is_empty()
            && self.bound_subject.is_empty()
            && self.bound_claims.as_ref().is_none_or(Map::is_empty)
        {
            return Err(StoreError::invalid(
                "must have at least one bound constraint when creating/updating a role",
            ));
        }
        if self.token.token_max_ttl > 0 && self.token.token_ttl > self.token.token_max_ttl {
            return Err(StoreError::invalid(
                "ttl should not be greater than max ttl",
            ));
        }
        Ok(())
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct JwtLogin {
    pub role: JwtRole,
    /// The user claim's value (the token's display name).
    pub user: String,
    pub metadata: BTreeMap<String, String>,
}

/// The JWT method's configuration and roles (`auth/method_store.rs`).
#[derive(Debug)]
pub struct JwtSpec;

impl Spec for JwtSpec {
    type Config = JwtConfig;
    type Ready = Configured;
    type Role = JwtRole;

    fn ready(config: JwtConfig) -> StoreResult<Configured> {
        Configured::new(config)
    }

    fn role_name(role: &JwtRole) -> &str {
        &role.name
    }

    fn blank_role(name: &str) -> JwtRole {
        JwtRole::blank(name)
    }

    fn rename_role(role: &mut JwtRole, name: &str) {
        name.clone_into(&mut role.name);
    }

    fn validate_role(role: &JwtRole) -> StoreResult<()> {
        role.validate()
    }
}

pub type JwtStore = MethodStore<JwtSpec>;

fn login_error(message: impl Into<String>) -> StoreError {
    StoreError::invalid(message)
}

impl MethodStore<JwtSpec> {
    /// Vault's login: the role (or the default role), the token verified
    /// with the configured keys and the role's expectations, then the role's
    /// bindings. May block (a JWKS fetch): off the async workers. No lock is
    /// held while the token is verified.
    pub fn login(&self, role_name: &str, jwt: &str, now: i64) -> StoreResult<JwtLogin> {
        let configured = self
            .config()?
            .ok_or_else(|| login_error("could not load configuration"))?;
        let role_name = if role_name.is_empty() {
            configured.config.default_role.to_lowercase()
        } else {
            role_name.to_owned()
        };
        if role_name.is_empty() {
            return Err(login_error("missing role"));
        }
        let role = self
            .get_role(&role_name)?
            .ok_or_else(|| login_error(format!("role {role_name:?} could not be found")))?;
        if jwt.is_empty() {
            return Err(login_error("missing token"));
        }
        let expected = Expected {
            algorithms: &configured.algorithms,
            issuer: &configured.config.bound_issuer,
            subject: &role.bound_subject,
            audiences: &role.bound_audiences,
            leeways: role.leeways,
            allow_missing_times: false,
        };
        let claims = jwt_verify::verify(jwt, configured.keys.as_ref(), &expected, now).map_err(
            |e| match e {
                JwtError::Unverified(m) | JwtError::Claims(m) | JwtError::Unavailable(m) => {
                    login_error(format!("error validating token: {m}"))
                }
            },
        )?;
        let claims = Value::Object(claims);
        claims::login(role, &claims).map_err(login_error)
    }
}
