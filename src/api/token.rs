//! `auth/token/*`: Vault's token endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::keys::rfc3339;
use super::{Op, names};
use crate::auth::Caller;
use crate::auth::token::{TokenEntry, TokenId, TokenRequest, TokenStore};
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;

/// One `auth/token/` path. Which operations each takes and which needs
/// `sudo` is said here only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenPath {
    Create,
    CreateOrphan,
    LookupSelf,
    Lookup,
    LookupAccessor,
    RenewSelf,
    Renew,
    RevokeSelf,
    Revoke,
    RevokeAccessor,
    /// No token endpoint here (404 once authorized).
    Unknown,
}

impl TokenPath {
    pub(crate) fn parse(rest: &str) -> Self {
        use TokenPath as T;
        match rest {
            "create" => T::Create,
            "create-orphan" => T::CreateOrphan,
            "lookup-self" => T::LookupSelf,
            "lookup" => T::Lookup,
            "lookup-accessor" => T::LookupAccessor,
            "renew-self" => T::RenewSelf,
            "renew" => T::Renew,
            "revoke-self" => T::RevokeSelf,
            "revoke" => T::Revoke,
            "revoke-accessor" => T::RevokeAccessor,
            _ => T::Unknown,
        }
    }

    /// The operations it takes (any other is 405).
    pub(crate) fn allows(self, op: Op) -> bool {
        use TokenPath as T;
        match self {
            T::LookupSelf | T::Lookup => matches!(op, Op::Read | Op::Update),
            T::Create
            | T::CreateOrphan
            | T::LookupAccessor
            | T::RenewSelf
            | T::Renew
            | T::RevokeSelf
            | T::Revoke
            | T::RevokeAccessor => op == Op::Update,
            T::Unknown => true,
        }
    }

    /// Whether it needs `sudo` besides the operation's capability.
    pub(crate) fn needs_sudo(self) -> bool {
        self == Self::CreateOrphan
    }
}

/// Serves `path`, which takes the request's operation ([`TokenPath::allows`]).
pub(crate) fn serve(
    tokens: &TokenStore,
    caller: &Caller,
    presented: &str,
    path: TokenPath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    use TokenPath as T;
    match path {
        T::Create => create(tokens, caller, p, now, false),
        T::CreateOrphan => create(tokens, caller, p, now, true),
        T::LookupSelf => Ok(Reply::data(lookup_body(
            &caller.entry,
            Some(presented),
            now,
        ))),
        T::Lookup => {
            let token = required(p, "token")?;
            let (_, entry) = tokens.lookup(&token, now)?.ok_or_else(bad_token)?;
            Ok(Reply::data(lookup_body(&entry, Some(&token), now)))
        }
        T::LookupAccessor => {
            let (_, entry) = by_accessor(tokens, p, now)?;
            Ok(Reply::data(lookup_body(&entry, None, now)))
        }
        T::RenewSelf => renew(tokens, &caller.id, p, now),
        T::Renew => {
            let token = required(p, "token")?;
            let (id, _) = tokens.lookup(&token, now)?.ok_or_else(bad_token)?;
            renew(tokens, &id, p, now)
        }
        T::RevokeSelf => {
            tokens.revoke(&caller.id)?;
            Ok(Reply::no_content())
        }
        T::Revoke => {
            let token = required(p, "token")?;
            if let Some((id, _)) = tokens.lookup(&token, now)? {
                tokens.revoke(&id)?;
            }
            Ok(Reply::no_content())
        }
        T::RevokeAccessor => {
            let (id, _) = by_accessor(tokens, p, now)?;
            tokens.revoke(&id)?;
            Ok(Reply::no_content())
        }
        T::Unknown => Err(ApiError::UnsupportedPath),
    }
}

fn bad_token() -> ApiError {
    ApiError::bad("bad token")
}

fn required(p: &Params, field: &str) -> ApiResult<zeroize::Zeroizing<String>> {
    p.string(field)?
        .filter(|s| !s.is_empty())
        .map(zeroize::Zeroizing::new)
        .ok_or_else(|| ApiError::bad(format!("missing {field}")))
}

fn by_accessor(tokens: &TokenStore, p: &Params, now: i64) -> ApiResult<(TokenId, Arc<TokenEntry>)> {
    let accessor = required(p, "accessor")?;
    tokens
        .by_accessor(&accessor)?
        .filter(|(_, e)| !e.expired(now))
        .ok_or_else(|| ApiError::bad("invalid accessor"))
}

/// A list parameter given as a JSON array or a comma-separated string.
pub fn string_list(p: &Params, field: &str) -> ApiResult<Option<Vec<String>>> {
    let list = match p.raw(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad(format!("{field} must be a list of strings")))
            })
            .collect::<ApiResult<Vec<_>>>()?,
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_owned()).collect(),
        Some(_) => return Err(ApiError::bad(format!("{field} must be a list of strings"))),
    };
    let mut list: Vec<String> = list.into_iter().filter(|s| !s.is_empty()).collect();
    list.sort();
    list.dedup();
    Ok(Some(list))
}

fn create(
    tokens: &TokenStore,
    caller: &Caller,
    p: &Params,
    now: i64,
    orphan_path: bool,
) -> ApiResult<Reply> {
    let parent = &caller.entry;
    if let Some(t) = p.string("type")?
        && t != "service"
        && t != "default"
    {
        return Err(ApiError::bad(format!(
            "token type {t:?} is not supported by transitd"
        )));
    }
    // The CLI sends `period` as zero when it is not set.
    if p.duration_secs("period")?.unwrap_or(0) != 0 {
        return Err(ApiError::bad("period is not supported by transitd"));
    }
    for unsupported in ["id", "entity_alias", "role_name"] {
        if p.raw(unsupported).is_some_and(|v| !v.is_null() && v != "") {
            return Err(ApiError::bad(format!(
                "{unsupported} is not supported by transitd"
            )));
        }
    }
    let no_parent = orphan_path || p.bool("no_parent")?.unwrap_or(false);
    if no_parent && !orphan_path && !parent.is_root() {
        return Err(ApiError::bad(
            "root or sudo privileges required to create orphan token",
        ));
    }
    let mut policies = string_list(p, "policies")?
        .map(names::policy_list)
        .unwrap_or_else(|| {
            parent
                .policies
                .iter()
                .filter(|p| *p != "default")
                .cloned()
                .collect()
        });
    // A child never gets more than its parent (root may grant anything).
    if !parent.is_root() {
        if let Some(extra) = policies
            .iter()
            .find(|p| *p != "default" && !parent.policies.contains(p))
        {
            return Err(ApiError::bad(format!(
                "child policies must be subset of parent: {extra:?} is not a policy of the parent"
            )));
        }
        if policies.iter().any(|p| p == "root") {
            return Err(ApiError::bad(
                "root policy cannot be granted by a non-root token",
            ));
        }
    }
    // As in Vault: `default` is added only where the parent has it.
    let parent_has_default = parent.is_root() || parent.policies.iter().any(|p| p == "default");
    if parent_has_default
        && !p.bool("no_default_policy")?.unwrap_or(false)
        && !policies.iter().any(|x| x == "root" || x == "default")
    {
        policies.push("default".to_owned());
        policies.sort();
    }
    let mut meta = BTreeMap::new();
    match p.raw("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = v
                    .as_str()
                    .ok_or_else(|| ApiError::bad("meta values must be strings"))?;
                meta.insert(k.clone(), v.to_owned());
            }
        }
        Some(_) => return Err(ApiError::bad("meta must be a map of strings")),
    }
    let num_uses = p.int("num_uses")?.unwrap_or(0);
    let num_uses =
        u64::try_from(num_uses).map_err(|_| ApiError::bad("number of uses cannot be negative"))?;
    let display = p.string("display_name")?.unwrap_or_default();
    let display_name = if display.is_empty() {
        "token".to_owned()
    } else {
        format!("token-{display}")
    };
    let ttl_secs = p.duration_secs("ttl")?.unwrap_or(0);
    let explicit_max_ttl_secs = p.duration_secs("explicit_max_ttl")?.unwrap_or(0);
    // A child cannot outlive its parent.
    let ttl_secs = match (parent.expire_time, no_parent) {
        (Some(_), false) => {
            let left = parent.ttl_left(now).max(1);
            if ttl_secs == 0 {
                left.min(crate::auth::token::MAX_TTL_SECS)
            } else {
                ttl_secs.min(left)
            }
        }
        _ => ttl_secs,
    };
    let request = TokenRequest {
        policies,
        meta,
        display_name,
        num_uses,
        ttl_secs,
        explicit_max_ttl_secs,
        renewable: p.bool("renewable")?.unwrap_or(true),
        parent: (!no_parent).then_some(caller.id),
        path: if orphan_path {
            "auth/token/create-orphan"
        } else {
            "auth/token/create"
        }
        .to_owned(),
    };
    let issued = tokens.create(request, None, now)?;
    Ok(Reply::auth(auth_block(
        &issued.entry,
        Some(&issued.token),
        now,
    )))
}

fn renew(tokens: &TokenStore, id: &TokenId, p: &Params, now: i64) -> ApiResult<Reply> {
    let increment = p.duration_secs("increment")?;
    let entry = tokens.renew(id, increment, now)?;
    Ok(Reply::auth(auth_block(&entry, None, now)))
}

/// The `auth` block of a reply that issues or renews a token.
pub fn auth_block(entry: &TokenEntry, token: Option<&str>, now: i64) -> Value {
    let token_policies: Vec<&String> = entry.policies.iter().collect();
    json!({
        "client_token": token.unwrap_or(""),
        "accessor": entry.accessor,
        "policies": token_policies,
        "token_policies": token_policies,
        "metadata": if entry.meta.is_empty() { Value::Null } else { json!(entry.meta) },
        "lease_duration": entry.ttl_left(now),
        "renewable": entry.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": entry.parent.is_none(),
        "mfa_requirement": null,
        "num_uses": entry.num_uses,
    })
}

/// The `data` of the lookup endpoints, as Vault's.
pub fn lookup_body(entry: &TokenEntry, token: Option<&str>, now: i64) -> Value {
    let time = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .map(rfc3339)
            .unwrap_or_default()
    };
    json!({
        "accessor": entry.accessor,
        "creation_time": entry.creation_time,
        "creation_ttl": entry.ttl_secs,
        "display_name": entry.display_name,
        "entity_id": "",
        "expire_time": entry.expire_time.map(time),
        "explicit_max_ttl": entry.explicit_max_ttl_secs,
        "id": token.unwrap_or(""),
        "issue_time": time(entry.creation_time),
        "meta": if entry.meta.is_empty() { Value::Null } else { json!(entry.meta) },
        "num_uses": entry.num_uses,
        "orphan": entry.parent.is_none(),
        "path": entry.path,
        "policies": entry.policies,
        "renewable": entry.renewable,
        "ttl": entry.ttl_left(now),
        "type": "service",
    })
}
