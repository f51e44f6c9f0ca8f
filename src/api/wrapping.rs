//! Response wrapping in the pipeline (`X-Vault-Wrap-TTL`: a reply becomes
//! `wrap_info`) and `sys/wrapping/{wrap,lookup,unwrap,rewrap}`. The stored
//! replies and their single use are `auth/wrapping.rs`'s.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::keys::rfc3339;
use super::{Op, off_workers};
use std::time::Duration;

use zeroize::Zeroizing;

use super::route::Route;
use crate::auth::token::TokenId;
use crate::auth::wrapping::{WrappedReply, Wrapping, is_wrapping_token};
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::state::Unsealed;

/// One `sys/wrapping/` endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WrappingPath {
    Wrap,
    Lookup,
    Unwrap,
    Rewrap,
}

impl WrappingPath {
    pub(crate) fn parse(rest: &str) -> Option<Self> {
        Some(match rest {
            "wrap" => Self::Wrap,
            "lookup" => Self::Lookup,
            "unwrap" => Self::Unwrap,
            "rewrap" => Self::Rewrap,
            _ => return None,
        })
    }

    pub(crate) fn allows(self, op: Op) -> bool {
        match self {
            Self::Lookup => matches!(op, Op::Read | Op::Update),
            Self::Wrap | Self::Unwrap | Self::Rewrap => op == Op::Update,
        }
    }

    /// Lookup needs no token, as in OpenBao: it tells the holder of a
    /// wrapping token what it holds without spending its one use.
    pub(crate) fn is_public(self) -> bool {
        self == Self::Lookup
    }
}

fn not_valid() -> ApiError {
    ApiError::bad("wrapping token is not valid or does not exist")
}

/// Where the wrapping token a request names came from.
enum Named {
    /// `token` in the body: live when checked, its one use not yet spent.
    Body(TokenId),
    /// The token the request presents: the pipeline has authenticated it
    /// and spent its one use already.
    Presented(TokenId),
}

/// The id of `token` if it is a live wrapping token: a revoked or expired
/// one, or any other token, names no reply.
fn live_wrapping_token(unsealed: &Unsealed, token: &str, now: i64) -> ApiResult<TokenId> {
    match unsealed.tokens.lookup(token, now)? {
        Some((id, entry)) if is_wrapping_token(&entry) => Ok(id),
        _ => Err(not_valid()),
    }
}

/// The body's `token`, unless empty or the one presented.
fn body_token(p: &Params, presented: Option<&str>) -> ApiResult<Option<Zeroizing<String>>> {
    Ok(p.string("token")?
        .filter(|t| !t.is_empty() && Some(t.as_str()) != presented)
        .map(Zeroizing::new))
}

/// The wrapping token an authorized request names: `token` in the body,
/// else the token it presents.
fn named_token(unsealed: &Unsealed, presented: &str, p: &Params, now: i64) -> ApiResult<Named> {
    Ok(match body_token(p, Some(presented))? {
        Some(token) => Named::Body(live_wrapping_token(unsealed, &token, now)?),
        None => Named::Presented(unsealed.tokens.id_of(presented)),
    })
}

/// Spend a body token's one use after its reply was taken: of callers
/// racing (a revocation, another unwrap on any node) only the one whose
/// compare-and-swap removes the token may hand the reply out. A loser's
/// reply is dropped (the token it belonged to is gone). A presented token
/// was spent by the pipeline.
fn spent(unsealed: &Unsealed, named: &Named) -> ApiResult<bool> {
    Ok(match named {
        Named::Body(id) => unsealed.tokens.use_once(id)?,
        Named::Presented(_) => true,
    })
}

impl Named {
    fn id(&self) -> &TokenId {
        match self {
            Self::Body(id) | Self::Presented(id) => id,
        }
    }
}

/// `sys/wrapping/lookup`, served without a token (and never wrapped:
/// [`refuse_public_wrapping`]).
pub(crate) fn lookup(
    unsealed: &Unsealed,
    presented: Option<&str>,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let body = body_token(p, presented)?;
    let token = body.as_deref().map(String::as_str).or(presented);
    let id = live_wrapping_token(unsealed, token.ok_or_else(not_valid)?, now)?;
    let wrapped = unsealed.wraps.peek(&id, now)?.ok_or_else(not_valid)?;
    Ok(Reply::data(json!({
        "creation_path": wrapped.creation_path,
        "creation_time": wrapped.creation_time,
        "creation_ttl": wrapped.ttl_secs,
    })))
}

/// A public route's reply is wrapped only for a login (a token won by
/// real authentication, as wrapped logins work in OpenBao). Wrapping the
/// lookup's would let anyone holding one wrapping token mint new ones
/// without limit (OpenBao does; we refuse). Checked before the body is read.
pub(crate) fn refuse_public_wrapping(route: &Route, wrap_ttl: Option<Duration>) -> ApiResult<()> {
    if wrap_ttl.is_some() && !matches!(route, Route::Login { .. }) {
        return Err(ApiError::bad(
            "X-Vault-Wrap-TTL: replies of requests that need no token are not wrapped, except logins",
        ));
    }
    Ok(())
}

/// `wrap`, `unwrap` and `rewrap`, for an authorized caller. `wrapping`:
/// whether the request asked for its reply to be wrapped.
pub(crate) fn serve(
    unsealed: &Unsealed,
    presented: &str,
    path: WrappingPath,
    p: &Params,
    wrapping: bool,
    now: i64,
) -> ApiResult<Reply> {
    match path {
        WrappingPath::Lookup => lookup(unsealed, Some(presented), p, now),
        WrappingPath::Wrap => {
            if !wrapping {
                return Err(ApiError::bad(
                    "endpoint requires response wrapping to be used",
                ));
            }
            // Every field is the data (and so read).
            let data = p.to_value();
            if let Value::Object(fields) = &data {
                fields.keys().for_each(|k| {
                    p.raw(k);
                });
            }
            Ok(Reply::data(data))
        }
        WrappingPath::Unwrap => {
            let named = named_token(unsealed, presented, p, now)?;
            // Taken first, then the token spent: a crash in between loses
            // the reply, never hands it out twice.
            let wrapped = unsealed
                .wraps
                .take(named.id(), now)?
                .ok_or_else(not_valid)?;
            if !spent(unsealed, &named)? {
                return Err(not_valid());
            }
            Ok(Reply {
                data: wrapped.data,
                auth: wrapped.auth,
                warnings: wrapped.warnings,
                ..Reply::default()
            })
        }
        WrappingPath::Rewrap => {
            let named = named_token(unsealed, presented, p, now)?;
            let old = unsealed
                .wraps
                .peek(named.id(), now)?
                .ok_or_else(not_valid)?;
            let wrapped_accessor = accessor_of(old.auth.as_ref());
            let fresh = WrappedReply {
                creation_time: rfc3339(OffsetDateTime::now_utc()),
                ..old
            };
            let new = unsealed.wraps.wrap(&unsealed.tokens, fresh, now)?;
            // The new wrapping counts only if the old one was still there to
            // take and its token to spend: of two rewraps, or a rewrap and an
            // unwrap or a revocation, one wins. Revoking the new token
            // deletes its reply.
            let won = unsealed.wraps.take(named.id(), now)?.is_some() && spent(unsealed, &named)?;
            if !won {
                unsealed.tokens.revoke(&unsealed.tokens.id_of(&new.token))?;
                return Err(not_valid());
            }
            Ok(Reply {
                wrap_info: Some(wrap_info(&new, wrapped_accessor)),
                ..Reply::default()
            })
        }
    }
}

/// The accessor of the token a wrapped `auth` block issued.
fn accessor_of(auth: Option<&Value>) -> Option<String> {
    auth.and_then(|a| a["accessor"].as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
}

fn wrap_info(wrapping: &Wrapping, wrapped_accessor: Option<String>) -> Value {
    let mut info = Map::from_iter([
        ("token".to_owned(), json!(wrapping.token.as_str())),
        ("accessor".to_owned(), json!(wrapping.accessor)),
        ("ttl".to_owned(), json!(wrapping.reply.ttl_secs)),
        (
            "creation_time".to_owned(),
            json!(wrapping.reply.creation_time),
        ),
        (
            "creation_path".to_owned(),
            json!(wrapping.reply.creation_path),
        ),
    ]);
    if let Some(accessor) = wrapped_accessor {
        info.insert("wrapped_accessor".to_owned(), json!(accessor));
    }
    Value::Object(info)
}

/// The pipeline's wrapping step: with `ttl` asked, a successful reply that
/// carries data or `auth` is stored behind a new wrapping token and
/// answered as `wrap_info`. The reply keeps its data for the audit log
/// (which hashes it); it is never sent ([`Reply::into_response_with`]).
pub(crate) async fn wrap_result(
    unsealed: &Arc<Unsealed>,
    creation_path: String,
    ttl: Option<Duration>,
    result: ApiResult<(Reply, Vec<String>)>,
) -> ApiResult<(Reply, Vec<String>)> {
    // The policy bounds compared the whole duration; the token lives
    // whole seconds (as in OpenBao: 60.5s gives 60).
    let Some(ttl_secs) = ttl.map(|t| t.as_secs()) else {
        return result;
    };
    let (reply, unrecognized) = result?;
    // A batch with failed items (400 or the caller's status) is wrapped too,
    // as OpenBao does: its other items carry secrets. Bare replies are
    // errors here (the sealed-time ones never get this far).
    let carries = reply.data.is_some() || reply.auth.is_some();
    if !carries || reply.no_content || reply.bare || reply.wrap_info.is_some() {
        return Ok((reply, unrecognized));
    }
    let unsealed = Arc::clone(unsealed);
    off_workers(move || {
        let now = OffsetDateTime::now_utc();
        let stored = WrappedReply {
            creation_path,
            creation_time: rfc3339(now),
            ttl_secs,
            expire_time: 0,
            data: reply.data.clone(),
            auth: reply.auth.clone(),
            warnings: reply.warnings.clone(),
        };
        let wrapping = unsealed
            .wraps
            .wrap(&unsealed.tokens, stored, now.unix_timestamp())?;
        let info = wrap_info(&wrapping, accessor_of(reply.auth.as_ref()));
        Ok((
            Reply {
                wrap_info: Some(info),
                warnings: Vec::new(),
                status: None,
                ..reply
            },
            unrecognized,
        ))
    })
    .await
}
