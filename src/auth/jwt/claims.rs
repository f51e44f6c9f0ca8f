//! What a role requires of a verified token's claims, and what it takes from
//! them (Vault's `claims.go` and the end of its `path_login.go`): claim names
//! that start with `/` are JSON pointers; numbers compare as their integer
//! part, as Vault's `getClaim` turns them into strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{JwtLogin, JwtRole};
use crate::auth::glob;
use crate::auth::jwt_verify::audiences;
use crate::storage::{StoreError, StoreResult};

/// How `bound_claims` values compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundClaimsType {
    #[default]
    String,
    Glob,
}

impl BoundClaimsType {
    pub fn parse(name: &str) -> StoreResult<Self> {
        match name {
            "string" => Ok(Self::String),
            "glob" => Ok(Self::Glob),
            other => Err(StoreError::invalid(format!(
                "invalid 'bound_claims_type': {other}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Glob => "glob",
        }
    }
}

/// A claim value as Vault compares it.
#[derive(Debug, PartialEq, Eq)]
enum Scalar<'v> {
    Str(&'v str),
    Bool(bool),
    /// A number, by its integer part (Vault's `strconv.Itoa(int(v))`).
    Num(i64),
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    match v {
        Value::String(s) => Some(Scalar::Str(s)),
        Value::Bool(b) => Some(Scalar::Bool(*b)),
        Value::Number(n) => Some(Scalar::Num(
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        )),
        _ => None,
    }
}

/// A string, bool, number or list of them, as a list (Vault's `normalizeList`).
fn normalize(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(items) => Some(items.iter().collect()),
        Value::String(_) | Value::Bool(_) | Value::Number(_) => Some(vec![v]),
        _ => None,
    }
}

/// Claim `name` of `claims`: a JSON pointer if it starts with `/`.
fn claim<'c>(claims: &'c Value, name: &str) -> Option<&'c Value> {
    let found = if name.starts_with('/') {
        claims.pointer(name)
    } else {
        claims.get(name)
    };
    found.filter(|v| !v.is_null())
}

/// A role write's `bound_claims` check: with globs every value is a string.
pub(super) fn validate_bound(bound: &Map<String, Value>, kind: BoundClaimsType) -> StoreResult<()> {
    if kind != BoundClaimsType::Glob {
        return Ok(());
    }
    for values in bound.values() {
        let list = normalize(values).ok_or_else(|| {
            StoreError::invalid(format!("claim is not a string or list: {values}"))
        })?;
        if let Some(bad) = list.iter().find(|v| !v.is_string()) {
            return Err(StoreError::invalid(format!("claim is not a string: {bad}")));
        }
    }
    Ok(())
}

fn check_bound(role: &JwtRole, claims: &Value) -> Result<(), String> {
    let Some(bound) = &role.bound_claims else {
        return Ok(());
    };
    for (name, expected) in bound {
        let actual = claim(claims, name).ok_or_else(|| format!("claim {name:?} is missing"))?;
        let actual = normalize(actual).ok_or_else(|| {
            format!("received claim is not a string, bool, int or list: {actual}")
        })?;
        let expected = normalize(expected)
            .ok_or_else(|| format!("bound claim is not a string, bool, int or list: {expected}"))?;
        let found = expected.iter().any(|want| {
            actual.iter().any(|got| match role.bound_claims_type {
                BoundClaimsType::Glob => match (want.as_str(), got.as_str()) {
                    (Some(pattern), Some(value)) => glob::matches(pattern, value),
                    _ => false,
                },
                BoundClaimsType::String => scalar(want).is_some() && scalar(want) == scalar(got),
            })
        });
        if !found {
            return Err(format!(
                "claim {name:?} does not match any associated bound claim values"
            ));
        }
    }
    Ok(())
}

/// The checks after verification, in Vault's order, and what the token gets.
pub(super) fn login(role: JwtRole, claims: &Value) -> Result<JwtLogin, String> {
    let object = claims.as_object().cloned().unwrap_or_default();
    let aud = audiences(&object).map_err(|e| e.to_string())?;
    if !aud.is_empty() && role.bound_audiences.is_empty() {
        return Err("audience claim found in JWT but no audiences bound to the role".to_owned());
    }
    let user_value = if role.user_claim_json_pointer {
        claim(claims, &role.user_claim)
    } else {
        claims.get(&role.user_claim).filter(|v| !v.is_null())
    }
    .ok_or_else(|| format!("claim {:?} not found in token", role.user_claim))?;
    let user = user_value
        .as_str()
        .ok_or_else(|| {
            format!(
                "claim {:?} could not be converted to string",
                role.user_claim
            )
        })?
        .to_owned();
    let mut metadata = BTreeMap::new();
    for (source, target) in role.claim_mappings.iter().flatten() {
        if let Some(value) = claim(claims, source) {
            let value = value
                .as_str()
                .ok_or_else(|| format!("error converting claim '{source}' to string"))?;
            metadata.insert(target.clone(), value.to_owned());
        }
    }
    metadata.insert("role".to_owned(), role.name.clone());
    if !role.groups_claim.is_empty() {
        let groups = claim(claims, &role.groups_claim).ok_or_else(|| {
            format!(
                "failed to fetch groups: {:?} claim not found in token",
                role.groups_claim
            )
        })?;
        let list = normalize(groups).ok_or_else(|| {
            format!(
                "{:?} claim could not be converted to string list",
                role.groups_claim
            )
        })?;
        if let Some(bad) = list.iter().find(|g| !g.is_string()) {
            return Err(format!(
                "value {bad} in groups claim could not be parsed as string"
            ));
        }
    }
    check_bound(&role, claims).map_err(|e| format!("error validating claims: {e}"))?;
    Ok(JwtLogin {
        role,
        user,
        metadata,
    })
}
