//! `auth/token/*`: Vault's token endpoints.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::keys::rfc3339;
use super::openapi::{Answer, Field, OpDoc, PathDoc, Ty, f};
use super::{Op, names};
use crate::auth::Caller;
use crate::auth::policy::Capability;
use crate::auth::token::{TokenEntry, TokenId, TokenRequest, TokenStore};
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::Unsealed;

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
    /// Revoke a token, its children made orphans (sudo).
    RevokeOrphan,
    /// `LIST auth/token/accessors` (sudo).
    Accessors,
    /// No token endpoint here (404 once authorized).
    Unknown,
}

/// The document's description of every `auth/token/` path above
/// (`api/openapi.rs`), checked by the route tests.
pub(crate) const DOCS: &[PathDoc] = {
    use crate::api::openapi::plain_path as p;
    use Answer::*;
    use Op::*;
    use Ty::*;
    const CREATE: &[Field] = &[
        f("no_parent", Bool),
        f("policies", Strings),
        f("meta", Object),
        f("no_default_policy", Bool),
        f("renewable", Bool),
        f("ttl", Duration),
        f("lease", Duration),
        f("explicit_max_ttl", Duration),
        f("display_name", Str),
        f("num_uses", Int),
        f("period", Duration),
        f("type", Str).one_of(&["service"]),
        f("id", Str),
        f("role_name", Str),
        f("entity_alias", Str),
    ];
    const TOKEN: &[Field] = &[f("token", Str).required()];
    const ACCESSOR: &[Field] = &[f("accessor", Str).required()];
    &[
        p("create", &[OpDoc::new(Update, "create", Auth).with(CREATE)]),
        p(
            "create-orphan",
            &[OpDoc::new(Update, "create-orphan", Auth).with(CREATE.split_at(1).1)],
        ),
        p(
            "lookup-self",
            &[
                OpDoc::new(Read, "look-up-self", Data),
                OpDoc::new(Update, "look-up-self-update", Data),
            ],
        ),
        p(
            "lookup",
            &[
                OpDoc::new(Read, "look-up", Data).with(&[f("token", Str)]),
                OpDoc::new(Update, "look-up-update", Data).with(TOKEN),
            ],
        ),
        p(
            "lookup-accessor",
            &[OpDoc::new(Update, "look-up-by-accessor", Data).with(ACCESSOR)],
        ),
        p(
            "renew-self",
            &[OpDoc::new(Update, "renew-self", Auth).with(&[f("increment", Duration)])],
        ),
        p(
            "renew",
            &[OpDoc::new(Update, "renew", Auth)
                .with(&[f("token", Str).required(), f("increment", Duration).later()])],
        ),
        p("revoke-self", &[OpDoc::new(Update, "revoke-self", Empty)]),
        p("revoke", &[OpDoc::new(Update, "revoke", Empty).with(TOKEN)]),
        p(
            "revoke-accessor",
            &[OpDoc::new(Update, "revoke-accessor", Empty).with(ACCESSOR)],
        ),
        p(
            "revoke-orphan",
            &[OpDoc::new(Update, "revoke-orphan", Empty).with(TOKEN)],
        ),
        p("accessors", &[OpDoc::new(List, "list-accessors", Data)]),
    ]
};

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
            "revoke-orphan" => T::RevokeOrphan,
            "accessors" => T::Accessors,
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
            | T::RevokeAccessor
            | T::RevokeOrphan => op == Op::Update,
            T::Accessors => op == Op::List,
            T::Unknown => true,
        }
    }

    /// Whether it needs `sudo` besides the operation's capability.
    pub(crate) fn needs_sudo(self) -> bool {
        matches!(
            self,
            Self::CreateOrphan | Self::RevokeOrphan | Self::Accessors
        )
    }
}

/// Serves `path`, which takes the request's operation ([`TokenPath::allows`]).
pub(crate) fn serve(
    unsealed: &Unsealed,
    caller: &Caller,
    presented: &str,
    path: TokenPath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    use TokenPath as T;
    let tokens = &unsealed.tokens;
    match path {
        T::Create => create(unsealed, caller, p, now, false),
        T::CreateOrphan => create(unsealed, caller, p, now, true),
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
        T::RevokeOrphan => {
            let token = p
                .string("token")?
                .filter(|s| !s.is_empty())
                .map(zeroize::Zeroizing::new)
                .ok_or_else(|| ApiError::bad("missing token ID"))?;
            let (id, _) = tokens
                .lookup(&token, now)?
                .ok_or_else(|| ApiError::bad("token to revoke not found"))?;
            tokens.revoke_orphaning_children(&id)?;
            Ok(Reply::no_content())
        }
        T::Accessors => Ok(Reply::data(json!({ "keys": tokens.accessors(now)? }))),
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

/// Which parameters of `auth/token/create` we refuse, and OpenBao's rules
/// for the ones we take (`handleCreateCommon`: no roles, service tokens only).
fn create(
    unsealed: &Unsealed,
    caller: &Caller,
    p: &Params,
    now: i64,
    orphan_path: bool,
) -> ApiResult<Reply> {
    let parent = &caller.entry;
    // Each use of a limited token would otherwise escape its count.
    if parent.num_uses > 0 {
        return Err(ApiError::bad(
            "restricted use token cannot generate child tokens",
        ));
    }
    let sudo = holds_sudo(unsealed, parent, orphan_path)?;
    match p.string("type")?.as_deref() {
        None | Some("" | "service") => {}
        Some("batch") => return Err(ApiError::bad("batch tokens are not supported by transitd")),
        Some(_) => return Err(ApiError::bad("invalid 'token_type' value")),
    }
    let num_uses = p.int("num_uses")?.unwrap_or(0);
    let num_uses =
        u64::try_from(num_uses).map_err(|_| ApiError::bad("number of uses cannot be negative"))?;
    if is_set(p, "entity_alias") {
        return Err(ApiError::bad(
            "'entity_alias' is only allowed in combination with token role",
        ));
    }
    if is_set(p, "role_name") {
        return Err(ApiError::bad("role_name is not supported by transitd"));
    }
    let display_name = display_name(&p.string("display_name")?.unwrap_or_default());
    if is_set(p, "id") {
        return Err(ApiError::bad(if sudo {
            "custom token IDs are not supported by transitd"
        } else {
            "root or sudo privileges required to specify token id"
        }));
    }
    let no_default = p.bool("no_default_policy")?.unwrap_or(false);
    let requested = string_list(p, "policies")?.filter(|list| !list.is_empty());
    let policies = child_policies(requested, parent, sudo, no_default)?;
    let no_parent = orphan_path || p.bool("no_parent")?.unwrap_or(false);
    if no_parent && !sudo {
        return Err(ApiError::bad(
            "root or sudo privileges required to create orphan token",
        ));
    }
    // The CLI sends `period` as zero when it is not set.
    if p.duration_secs("period")?.unwrap_or(0) != 0 {
        return Err(ApiError::bad(if sudo {
            "periodic tokens are not supported by transitd"
        } else {
            "root or sudo privileges required to create periodic token"
        }));
    }
    let meta = meta(p)?;
    // `lease` is the older name of `ttl`.
    let ttl_secs = match p.duration_secs("ttl")? {
        Some(ttl) => ttl,
        None => p.duration_secs("lease")?.unwrap_or(0),
    };
    let explicit_max_ttl_secs = p.duration_secs("explicit_max_ttl")?.unwrap_or(0);
    let never_expires =
        policies.iter().any(|p| p == "root") && ttl_secs == 0 && explicit_max_ttl_secs == 0;
    if never_expires && parent.expire_time.is_some() {
        return Err(ApiError::bad(
            "expiring root tokens cannot create non-expiring root tokens",
        ));
    }
    let request = TokenRequest {
        policies,
        meta,
        display_name,
        num_uses,
        ttl_secs,
        explicit_max_ttl_secs,
        renewable: p.bool("renewable")?.unwrap_or(true),
        parent: (!no_parent).then_some(caller.id),
        path: create_path(orphan_path).to_owned(),
    };
    let issued = unsealed.tokens.create(request, None, now)?;
    let mut reply = Reply::auth(auth_block(&issued.entry, Some(&issued.token), now));
    if let Some((asked, allowed)) = issued.capped {
        reply = reply.warn(format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            human_duration(asked),
            human_duration(allowed)
        ));
    }
    for name in &issued.entry.policies {
        if name != "root" && unsealed.policies.get(name)?.is_none() {
            reply = reply.warn(format!("Policy {name:?} does not exist"));
        }
    }
    Ok(reply)
}

/// `1h30m`, `768h`, `10s`: Go's duration text without its zero parts, as
/// OpenBao's warnings print it.
fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let text: String = [(h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text
    }
}

fn create_path(orphan_path: bool) -> &'static str {
    if orphan_path {
        "auth/token/create-orphan"
    } else {
        "auth/token/create"
    }
}

/// Whether the caller holds `sudo` on the path it creates with: it may then
/// make orphans and grant policies it does not hold (never `root`).
fn holds_sudo(unsealed: &Unsealed, parent: &TokenEntry, orphan_path: bool) -> ApiResult<bool> {
    if parent.is_root() {
        return Ok(true);
    }
    let acl = unsealed.policies.acl(&parent.policies)?;
    Ok(acl.allows(create_path(orphan_path), Capability::Sudo))
}

/// A parameter given with a value (the CLI sends some as empty strings).
fn is_set(p: &Params, field: &str) -> bool {
    p.raw(field).is_some_and(|v| !v.is_null() && v != "")
}

/// `token-<name>`, every character other than ASCII letters, digits and `-`
/// replaced by `-`, one trailing `-` dropped (as OpenBao writes it).
fn display_name(given: &str) -> String {
    if given.is_empty() {
        return "token".to_owned();
    }
    let full: String = format!("token-{given}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    full.strip_suffix('-').map_or(full.clone(), str::to_owned)
}

fn meta(p: &Params) -> ApiResult<BTreeMap<String, String>> {
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
    Ok(meta)
}

/// A policy list as OpenBao sanitises it: canonical names, and `root` alone
/// when it is there; `default` added when asked (never beside `root`).
fn sanitized(list: &[String], add_default: bool) -> Vec<String> {
    let mut list = names::policy_list(list.to_vec());
    if list.iter().any(|p| p == "root") {
        return vec!["root".to_owned()];
    }
    if add_default && !list.iter().any(|p| p == "default") {
        list.push("default".to_owned());
        list.sort();
    }
    list
}

/// The policies of a child token (OpenBao's `resolveTokenPolicies` without
/// roles). None requested: the parent's, with `default` only if the parent
/// has it. Requested by a caller without `sudo`: a subset of the parent's,
/// `default` included only if the parent has it. With `sudo`: any, but
/// `root` only from a root parent. `no_default_policy` removes `default`
/// however it came.
fn child_policies(
    requested: Option<Vec<String>>,
    parent: &TokenEntry,
    sudo: bool,
    no_default: bool,
) -> ApiResult<Vec<String>> {
    let parent_policies = sanitized(&parent.policies, false);
    let parent_has_default = parent_policies.iter().any(|p| p == "default");
    let (policies, add_default) = match requested {
        None => (parent_policies, false),
        Some(requested) if !sudo => {
            let requested = sanitized(&requested, false);
            if !requested.iter().all(|p| parent_policies.contains(p)) {
                return Err(ApiError::bad("child policies must be subset of parent"));
            }
            (requested, !no_default && parent_has_default)
        }
        Some(requested) => (requested, !no_default),
    };
    let mut policies = sanitized(&policies, add_default);
    if no_default {
        policies.retain(|p| p != "default");
    }
    if let Some(internal) = policies.iter().find(|p| *p == "response-wrapping") {
        return Err(ApiError::bad(format!("cannot assign policy {internal:?}")));
    }
    if policies.iter().any(|p| p == "root") && !parent.is_root() {
        return Err(ApiError::bad(
            "root tokens may not be created without parent token being root",
        ));
    }
    Ok(policies)
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
