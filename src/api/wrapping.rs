//! Response wrapping in the pipeline (`X-Vault-Wrap-TTL`: a reply becomes
//! `wrap_info`) and `sys/wrapping/{wrap,lookup,unwrap,rewrap}`. The stored
//! replies and their single use are `auth/wrapping.rs`'s.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::keys::rfc3339;
use super::{Op, off_workers};
use crate::auth::token::TokenId;
use crate::auth::wrapping::{WrappedReply, Wrapping};
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

/// The wrapping token a request names: `token` in the body, else the token
/// it presents. True when it came from the body (the pipeline has not spent
/// its use).
fn named_token(
    unsealed: &Unsealed,
    presented: Option<&str>,
    p: &Params,
) -> ApiResult<(TokenId, bool)> {
    let body = p.string("token")?.filter(|t| !t.is_empty());
    match (body, presented) {
        (Some(token), presented) if Some(token.as_str()) != presented => {
            let token = zeroize::Zeroizing::new(token);
            Ok((unsealed.tokens.id_of(&token), true))
        }
        (_, Some(presented)) => Ok((unsealed.tokens.id_of(presented), false)),
        (_, None) => Err(not_valid()),
    }
}

/// `sys/wrapping/lookup`, served without a token.
pub(crate) fn lookup(
    unsealed: &Unsealed,
    presented: Option<&str>,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let (id, _) = named_token(unsealed, presented, p)?;
    let wrapped = unsealed.wraps.peek(&id, now)?.ok_or_else(not_valid)?;
    Ok(Reply::data(json!({
        "creation_path": wrapped.creation_path,
        "creation_time": wrapped.creation_time,
        "creation_ttl": wrapped.ttl_secs,
    })))
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
            let (id, from_body) = named_token(unsealed, Some(presented), p)?;
            let wrapped = unsealed.wraps.take(&id, now)?.ok_or_else(not_valid)?;
            // A token presented spent its one use (and is gone) already.
            if from_body {
                unsealed.tokens.revoke(&id)?;
            }
            Ok(Reply {
                data: wrapped.data,
                auth: wrapped.auth,
                warnings: wrapped.warnings,
                ..Reply::default()
            })
        }
        WrappingPath::Rewrap => {
            let (id, from_body) = named_token(unsealed, Some(presented), p)?;
            let old = unsealed.wraps.peek(&id, now)?.ok_or_else(not_valid)?;
            let wrapped_accessor = accessor_of(old.auth.as_ref());
            let fresh = WrappedReply {
                creation_time: rfc3339(OffsetDateTime::now_utc()),
                ..old
            };
            let new = unsealed.wraps.wrap(&unsealed.tokens, fresh, now)?;
            // The new wrapping counts only if the old one was still there to
            // take: of two rewraps, or a rewrap and an unwrap, one wins.
            if unsealed.wraps.take(&id, now)?.is_none() {
                let new_id = unsealed.tokens.id_of(&new.token);
                unsealed.wraps.take(&new_id, now)?;
                unsealed.tokens.revoke(&new_id)?;
                return Err(not_valid());
            }
            if from_body {
                unsealed.tokens.revoke(&id)?;
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
    ttl: Option<u64>,
    result: ApiResult<(Reply, Vec<String>)>,
) -> ApiResult<(Reply, Vec<String>)> {
    let Some(ttl_secs) = ttl else {
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
