//! Root token generation with a one-time pad: Vault's `sys/generate-root/*`
//! (no token: the shares are the authority; body bare) and OpenBao's
//! `sys/generate-root-token/*` (a token allowed on the path; body under
//! `data`; what the `bao` CLI calls). Both need the keys (503 while sealed)
//! and are audited, so the shares, the OTP and the encoded token reach the
//! audit log only HMACed. The flow itself: `seal/generate_root.rs`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Op;
use super::sys::SysPath;
use super::unsupported::refuse_unless_default;
use crate::error::{ApiError, ApiResult};
use crate::request::Params;
use crate::response::Reply;
use crate::seal::generate_root::OTP_LEN;
use crate::state::{RootGenerationStatus, Unsealed};

/// Which reply a body is for.
enum Shown<'a> {
    /// The attempt's status; `otp` only in the reply that made it.
    Status { otp: &'a str },
    /// The reply to a share.
    Update,
}

/// The attempt's state as each path family shows it: Vault's bare body has
/// every field, always; OpenBao's `data` has a status's `otp` fields (and
/// the nonce once started) or an update's nonce and `encoded_token`.
fn body(status: &RootGenerationStatus, shown: Shown<'_>, with_token: bool) -> Value {
    let encoded = status.encoded_token.clone().unwrap_or_default();
    let nonce = status.nonce.clone().unwrap_or_default();
    let mut body = json!({
        "started": status.nonce.is_some(),
        "complete": status.encoded_token.is_some(),
        "progress": status.progress,
        "required": status.required,
    });
    let otp = match shown {
        Shown::Status { otp } => Some(otp),
        Shown::Update => None,
    };
    if !with_token {
        body["nonce"] = json!(nonce);
        body["pgp_fingerprint"] = json!("");
        body["encoded_token"] = json!(encoded);
        body["encoded_root_token"] = json!(encoded);
        body["otp"] = json!(otp.unwrap_or_default());
        body["otp_length"] = json!(OTP_LEN);
        return body;
    }
    match otp {
        Some(otp) => {
            body["otp"] = json!(otp);
            body["otp_length"] = json!(OTP_LEN);
            if status.nonce.is_some() {
                body["nonce"] = json!(nonce);
                body["pgp_fingerprint"] = json!("");
            }
        }
        None => {
            body["nonce"] = json!(nonce);
            body["encoded_token"] = json!(encoded);
            body["pgp_fingerprint"] = json!("");
        }
    }
    body
}

/// Serves a [`SysPath::GenerateRoot`] path.
pub(crate) fn serve(unsealed: &Unsealed, op: Op, path: &SysPath, p: &Params) -> ApiResult<Reply> {
    let SysPath::GenerateRoot { update, with_token } = *path else {
        return Err(ApiError::UnsupportedPath);
    };
    let ok = |body| {
        Ok(if with_token {
            Reply::data(body)
        } else {
            Reply::bare(body, StatusCode::OK)
        })
    };
    match (update, op) {
        (false, Op::Read) => ok(body(
            &unsealed.root_generation_status()?,
            Shown::Status { otp: "" },
            with_token,
        )),
        (false, Op::Delete) => {
            unsealed.cancel_root_generation();
            Ok(Reply::no_content())
        }
        (false, _) => {
            // A root token encrypted to a PGP key is not offered.
            refuse_unless_default(p, &["pgp_key"])?;
            let otp = p
                .string("otp")?
                .filter(|o| !o.is_empty())
                .map(zeroize::Zeroizing::new);
            let made = unsealed.start_root_generation(otp)?;
            let status = unsealed.root_generation_status()?;
            let otp = made.as_ref().map(|m| m.as_str()).unwrap_or_default();
            ok(body(&status, Shown::Status { otp }, with_token))
        }
        (true, _) => {
            let key = p.string("key")?.unwrap_or_default();
            let nonce = p.string("nonce")?.unwrap_or_default();
            // Each family's own words for a missing field.
            if with_token && nonce.is_empty() {
                return Err(ApiError::bad("nonce is required"));
            }
            if key.is_empty() {
                return Err(ApiError::bad(if with_token {
                    "key is required"
                } else {
                    "'key' must be specified in request body as JSON"
                }));
            }
            let status = unsealed.root_generation_update(&key, &nonce)?;
            ok(body(&status, Shown::Update, with_token))
        }
    }
}
