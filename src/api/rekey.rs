//! Vault's `sys/rekey/*` (unseal shares) and `sys/rekey-recovery-key/*`
//! (recovery shares): no token, as in Vault (the current shares are the
//! authority), bare bodies, 503 while sealed. Audited like every path that
//! needs the keys, so shares reach the audit log only HMACed. The flow
//! itself: `seal/rekey.rs`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Op;
use super::sys::{RekeyStep, RekeyTarget, encode_shares};
use super::unsupported::refuse_unless_default;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::seal::read_config_raw;
use crate::seal::rekey::{Rekey, Request};
use crate::state::Unsealed;
use crate::storage::blocking;

fn ok(body: Value) -> ApiResult<Reply> {
    Ok(Reply::bare(body, StatusCode::OK))
}

/// `init`'s status body (Vault's `RekeyStatusResponse`).
fn status(unsealed: &Unsealed, rekey: &Rekey) -> ApiResult<Value> {
    let (config, _) = blocking(|| read_config_raw(unsealed.barrier().storage().as_ref()))?;
    let required = rekey.required(&config)?;
    let s = rekey.status()?;
    let mut body = json!({
        "nonce": s.nonce,
        "started": s.started,
        "t": s.threshold,
        "n": s.shares,
        "progress": s.progress,
        "required": required,
        "pgp_fingerprints": null,
        "backup": false,
        "verification_required": s.verification_required,
    });
    if let Some(nonce) = s.verification_nonce {
        body["verification_nonce"] = json!(nonce);
    }
    Ok(body)
}

/// `verify`'s status body.
fn verify_status(rekey: &Rekey) -> ApiResult<Value> {
    let s = rekey.verify_status()?;
    Ok(json!({
        "nonce": s.nonce,
        "started": s.started,
        "t": s.threshold,
        "n": s.shares,
        "progress": s.progress,
    }))
}

/// The share a `PUT update`/`PUT verify` carries, with Vault's words when absent.
fn key_and_nonce(p: &Params) -> ApiResult<(String, String)> {
    let key = p.string("key")?.unwrap_or_default();
    if key.is_empty() {
        return Err(ApiError::bad(
            "'key' must be specified in request body as JSON",
        ));
    }
    Ok((key, p.string("nonce")?.unwrap_or_default()))
}

/// Serves a [`super::sys::SysPath::Rekey`] path.
pub(crate) fn serve(
    unsealed: &Unsealed,
    op: Op,
    target: RekeyTarget,
    step: RekeyStep,
    p: &Params,
) -> ApiResult<Reply> {
    let rekey = unsealed.rekey(target);
    let barrier = unsealed.barrier();
    match (step, op) {
        (RekeyStep::Init, Op::Read) => ok(status(unsealed, rekey)?),
        (RekeyStep::Init, Op::Delete) => {
            rekey.cancel();
            Ok(Reply::no_content())
        }
        (RekeyStep::Init, _) => {
            // New shares encrypted to PGP keys (and their backup) are not offered.
            refuse_unless_default(p, &["pgp_keys", "backup"])?;
            let count = |field: &str| -> ApiResult<u64> {
                Ok(u64::try_from(p.int(field)?.unwrap_or(0)).unwrap_or(0))
            };
            let request = Request {
                shares: count("secret_shares")?,
                threshold: count("secret_threshold")?,
                require_verification: p.bool("require_verification")?.unwrap_or(false),
            };
            let (config, _) = blocking(|| read_config_raw(barrier.storage().as_ref()))?;
            rekey.start(&config, request)?;
            ok(status(unsealed, rekey)?)
        }
        (RekeyStep::Update, _) => {
            let (key, nonce) = key_and_nonce(p)?;
            let Some(done) = blocking(|| rekey.update(barrier, &key, &nonce))? else {
                return ok(status(unsealed, rekey)?);
            };
            let (keys, keys_base64) = encode_shares(&done.shares);
            let mut body = json!({
                "nonce": nonce,
                "complete": true,
                "keys": keys,
                "keys_base64": keys_base64,
                "pgp_fingerprints": null,
                "backup": false,
                "verification_required": done.verification_nonce.is_some(),
            });
            if let Some(verification) = done.verification_nonce {
                body["verification_nonce"] = json!(verification);
            }
            ok(body)
        }
        (RekeyStep::Verify, Op::Read) => ok(verify_status(rekey)?),
        (RekeyStep::Verify, Op::Delete) => {
            rekey.restart_verification();
            ok(verify_status(rekey)?)
        }
        (RekeyStep::Verify, _) => {
            let (key, nonce) = key_and_nonce(p)?;
            match blocking(|| rekey.verify(barrier, &key, &nonce))? {
                Some(nonce) => ok(json!({ "nonce": nonce, "complete": true })),
                None => ok(verify_status(rekey)?),
            }
        }
    }
}
