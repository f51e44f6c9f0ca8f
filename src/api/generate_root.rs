//! `sys/generate-root/attempt` and `sys/generate-root/update`: Vault's root
//! token generation with a one-time pad. No token is needed (the shares are
//! the authority), the keys are (503 while sealed); requests are audited as
//! every public path is, so the shares, the OTP and the encoded token reach
//! the audit log only HMACed. The flow itself: `seal/generate_root.rs`.

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

pub(crate) fn serve(unsealed: &Unsealed, op: Op, path: &SysPath, p: &Params) -> ApiResult<Reply> {
    let ok = |body| Ok(Reply::bare(body, StatusCode::OK));
    match (path, op) {
        (SysPath::GenerateRootAttempt, Op::Read) => {
            ok(status_body(&unsealed.root_generation_status()?, ""))
        }
        (SysPath::GenerateRootAttempt, Op::Delete) => {
            unsealed.cancel_root_generation();
            Ok(Reply::no_content())
        }
        (SysPath::GenerateRootAttempt, _) => {
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
        (SysPath::GenerateRootUpdate, _) => {
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
        _ => Err(ApiError::UnsupportedPath),
    }
}
