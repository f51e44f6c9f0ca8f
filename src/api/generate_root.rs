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

/// Vault's status body; `otp` only in the reply that made it.
fn status_body(status: &RootGenerationStatus, otp: &str) -> Value {
    let encoded = status.encoded_token.clone().unwrap_or_default();
    json!({
        "nonce": status.nonce.clone().unwrap_or_default(),
        "started": status.nonce.is_some(),
        "progress": status.progress,
        "required": status.required,
        "complete": status.encoded_token.is_some(),
        "encoded_token": encoded,
        "encoded_root_token": encoded,
        "pgp_fingerprint": "",
        "otp": otp,
        "otp_length": OTP_LEN,
    })
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
        (false, Op::Read) => ok(status_body(&unsealed.root_generation_status()?, "")),
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
            ok(status_body(
                &status,
                made.as_ref().map(|m| m.as_str()).unwrap_or_default(),
            ))
        }
        (true, _) => {
            let key = p.string("key")?.unwrap_or_default();
            if key.is_empty() {
                return Err(ApiError::bad(
                    "'key' must be specified in request body as JSON",
                ));
            }
            let nonce = p.string("nonce")?.unwrap_or_default();
            ok(status_body(
                &unsealed.root_generation_update(&key, &nonce)?,
                "",
            ))
        }
    }
}
