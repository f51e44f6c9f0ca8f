//! The Kubernetes login method, as Vault's `auth/kubernetes`: a pod logs in
//! with its service-account JWT; the role binds service-account names and
//! namespaces (globs), and the Kubernetes API server confirms the token
//! through its TokenReview API ([`review`]). With `pem_keys` the signature is
//! also verified locally first (as Vault does); without, the claims are read
//! unverified and only the API server's answer makes them trustworthy.
//!
//! Stored by `auth/method_store.rs`; the reviewer JWT is stored sealed like
//! everything else and never shown (`token_reviewer_jwt_set`).
//!
//! Every failure after the role is found answers 403: "permission denied"
//! where Vault hides the reason (a bad signature, any TokenReview failure:
//! its reason goes to the server log, never the JWT), or Vault's message
//! for the bindings and claim checks.

pub mod review;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::glob;
use super::jwt_verify::fetch::{Https, https_url};
use super::jwt_verify::{self, Expected, JwtError, StaticKeys};
use super::method_store::{MethodStore, Spec};
use super::userpass::TokenParams;
use crate::storage::{StoreError, StoreResult};

/// The issuer Vault expects when issuer validation is on and none is set.
pub const DEFAULT_ISSUER: &str = "kubernetes/serviceaccount";

/// The method's configuration, as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeConfig {
    pub kubernetes_host: String,
    pub kubernetes_ca_cert: String,
    /// A bearer token: stored sealed, never shown, never logged.
    pub token_reviewer_jwt: String,
    pub pem_keys: Vec<String>,
    pub issuer: String,
    pub disable_iss_validation: bool,
    pub disable_local_ca_jwt: bool,
}

impl std::fmt::Debug for KubeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeConfig")
            .field("kubernetes_host", &self.kubernetes_host)
            .field(
                "token_reviewer_jwt_set",
                &!self.token_reviewer_jwt.is_empty(),
            )
            .field("pem_keys", &self.pem_keys.len())
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A configuration made usable: the API server's client, the local keys.
#[derive(Debug)]
pub struct KubeReady {
    pub config: KubeConfig,
    https: Https,
    keys: Option<StaticKeys>,
}

impl KubeReady {
    /// Vault's checks (and ours: an `https://` host, a CA that parses).
    pub fn new(config: KubeConfig) -> StoreResult<Self> {
        if config.kubernetes_host.is_empty() {
            return Err(StoreError::invalid("no host provided"));
        }
        if config.disable_local_ca_jwt && config.kubernetes_ca_cert.is_empty() {
            return Err(StoreError::invalid(
                "kubernetes_ca_cert must be given when disable_local_ca_jwt is true",
            ));
        }
        https_url("kubernetes_host", &config.kubernetes_host).map_err(StoreError::invalid)?;
        let keys =
            if config.pem_keys.is_empty() {
                None
            } else {
                Some(StaticKeys::from_pems(&config.pem_keys).map_err(|_| {
                    StoreError::invalid("data does not contain any valid public keys")
                })?)
            };
        let https = Https::new(&config.kubernetes_ca_cert).map_err(StoreError::invalid)?;
        Ok(Self {
            config,
            https,
            keys,
        })
    }
}

/// How a token's alias is named (Vault's `alias_name_source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AliasNameSource {
    #[default]
    #[serde(rename = "serviceaccount_uid")]
    Uid,
    #[serde(rename = "serviceaccount_name")]
    Name,
}

impl AliasNameSource {
    pub fn parse(name: &str) -> StoreResult<Self> {
        match name {
            "" | "serviceaccount_uid" => Ok(Self::Uid),
            "serviceaccount_name" => Ok(Self::Name),
            _ => Err(StoreError::invalid(
                "invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Uid => "serviceaccount_uid",
            Self::Name => "serviceaccount_name",
        }
    }
}

/// A role, as stored and as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeRole {
    pub name: String,
    pub bound_service_account_names: Vec<String>,
    pub bound_service_account_namespaces: Vec<String>,
    pub audience: String,
    pub alias_name_source: AliasNameSource,
    #[serde(flatten)]
    pub token: TokenParams,
    #[serde(default)]
    pub legacy_policies: bool,
}

impl KubeRole {
    fn validate(&self) -> StoreResult<()> {
        if self.bound_service_account_names.is_empty() {
            return Err(StoreError::invalid(
                "\"bound_service_account_names\" can not be empty",
            ));
        }
        if self.bound_service_account_namespaces.is_empty() {
            return Err(StoreError::invalid(
                "\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set",
            ));
        }
        if self.token.token_max_ttl > 0 && self.token.token_ttl > self.token.token_max_ttl {
            return Err(StoreError::invalid(
                "ttl should not be greater than max ttl",
            ));
        }
        Ok(())
    }

    /// Vault's rule: a single `*` binds any; otherwise a glob must match.
    fn binds(list: &[String], value: &str) -> bool {
        list.first().is_some_and(|f| f == "*") || list.iter().any(|p| glob::matches(p, value))
    }
}

/// The Kubernetes method's configuration and roles.
#[derive(Debug)]
pub struct KubeSpec;

impl Spec for KubeSpec {
    type Config = KubeConfig;
    type Ready = KubeReady;
    type Role = KubeRole;

    fn ready(config: KubeConfig) -> StoreResult<KubeReady> {
        KubeReady::new(config)
    }

    fn role_name(role: &KubeRole) -> &str {
        &role.name
    }

    fn blank_role(name: &str) -> KubeRole {
        KubeRole {
            name: name.to_owned(),
            bound_service_account_names: Vec::new(),
            bound_service_account_namespaces: Vec::new(),
            audience: String::new(),
            alias_name_source: AliasNameSource::Uid,
            token: TokenParams::default(),
            legacy_policies: false,
        }
    }

    fn rename_role(role: &mut KubeRole, name: &str) {
        name.clone_into(&mut role.name);
    }

    fn validate_role(role: &KubeRole) -> StoreResult<()> {
        role.validate()
    }
}

pub type KubeStore = MethodStore<KubeSpec>;

/// The service account a token names (legacy secret-based tokens at the
/// top level, projected tokens under `kubernetes.io`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccount {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub secret_name: String,
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

impl ServiceAccount {
    fn from_claims(claims: &Value) -> Self {
        let legacy = |k: &str| text(claims.get(format!("kubernetes.io/serviceaccount/{k}")));
        let mut sa = Self {
            name: legacy("service-account.name"),
            namespace: legacy("namespace"),
            uid: legacy("service-account.uid"),
            secret_name: legacy("secret.name"),
        };
        if let Some(projected) = claims.get("kubernetes.io").filter(|v| v.is_object()) {
            sa.namespace = text(projected.get("namespace"));
            if let Some(account) = projected.get("serviceaccount").filter(|v| v.is_object()) {
                sa.name = text(account.get("name"));
                sa.uid = text(account.get("uid"));
            }
        }
        sa
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct KubeLogin {
    pub role: KubeRole,
    pub account: ServiceAccount,
    pub metadata: BTreeMap<String, String>,
}

/// Why a login failed: a 400 (the request), or a 403 (the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeLoginError {
    BadRequest(String),
    /// `None`: Vault's bare "permission denied".
    Forbidden(Option<String>),
}

impl MethodStore<KubeSpec> {
    /// Vault's login. May block (the TokenReview call, with its deadline):
    /// off the async workers; no lock is held meanwhile.
    pub fn login(&self, role_name: &str, jwt: &str, now: i64) -> Result<KubeLogin, KubeLoginError> {
        use KubeLoginError::{BadRequest, Forbidden};
        let store = |e: StoreError| BadRequest(e.to_string());
        if role_name.is_empty() {
            return Err(BadRequest("missing role".to_owned()));
        }
        if jwt.is_empty() {
            return Err(BadRequest("missing jwt".to_owned()));
        }
        let role = self
            .get_role(role_name)
            .map_err(store)?
            .ok_or_else(|| BadRequest(format!("invalid role name {role_name:?}")))?;
        let ready = self
            .config()
            .map_err(store)?
            .ok_or_else(|| BadRequest("could not load backend configuration".to_owned()))?;
        let config = &ready.config;
        let issuer = match (config.disable_iss_validation, config.issuer.as_str()) {
            (true, _) => "",
            (false, "") => DEFAULT_ISSUER,
            (false, issuer) => issuer,
        };
        let audiences: Vec<String> = Some(role.audience.clone())
            .filter(|a| !a.is_empty())
            .into_iter()
            .collect();
        let expected = Expected {
            issuer,
            audiences: &audiences,
            allow_missing_times: true,
            ..Expected::default()
        };
        let checked = match &ready.keys {
            Some(keys) => jwt_verify::verify(jwt, keys, &expected, now),
            None => jwt_verify::unverified(jwt, &expected, now),
        };
        let claims = match checked {
            Ok(claims) => Value::Object(claims),
            // Vault hides why a token could not be verified.
            Err(JwtError::Unverified(why) | JwtError::Unavailable(why)) => {
                tracing::debug!(reason = %why, "kubernetes login: token not verified");
                return Err(Forbidden(None));
            }
            Err(JwtError::Claims(why)) => return Err(Forbidden(Some(why))),
        };
        let account = ServiceAccount::from_claims(&claims);
        if !KubeRole::binds(&role.bound_service_account_names, &account.name) {
            return Err(Forbidden(Some(
                "service account name not authorized".to_owned(),
            )));
        }
        if !KubeRole::binds(&role.bound_service_account_namespaces, &account.namespace) {
            return Err(Forbidden(Some("namespace not authorized".to_owned())));
        }
        if role.alias_name_source == AliasNameSource::Name
            && (account.name.is_empty() || account.namespace.is_empty())
        {
            return Err(BadRequest(
                "service account namespace and name must be set".to_owned(),
            ));
        }
        if account.uid.is_empty() {
            return Err(BadRequest("could not parse UID from claims".to_owned()));
        }
        // The API server decides: the token is live, and names this account.
        let want_audiences = if audiences.is_empty() {
            jwt_verify::audiences(claims.as_object().unwrap_or(&serde_json::Map::new()))
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned)
                .collect()
        } else {
            audiences
        };
        let reviewed = review::review(&ready.https, config, jwt, &want_audiences).map_err(|why| {
            tracing::warn!(role = %role.name, reason = %why, "kubernetes login: TokenReview refused the token");
            Forbidden(None)
        })?;
        let mismatch = if reviewed.name != account.name {
            Some("JWT names did not match")
        } else if reviewed.uid != account.uid {
            Some("JWT UIDs did not match")
        } else if reviewed.namespace != account.namespace {
            Some("JWT namespaces did not match")
        } else {
            None
        };
        if let Some(why) = mismatch {
            tracing::warn!(role = %role.name, reason = why, "kubernetes login refused");
            return Err(Forbidden(None));
        }
        let metadata = BTreeMap::from([
            ("service_account_uid".to_owned(), account.uid.clone()),
            ("service_account_name".to_owned(), account.name.clone()),
            (
                "service_account_namespace".to_owned(),
                account.namespace.clone(),
            ),
            (
                "service_account_secret_name".to_owned(),
                account.secret_name.clone(),
            ),
            ("role".to_owned(), role.name.clone()),
        ]);
        Ok(KubeLogin {
            role,
            account,
            metadata,
        })
    }
}
