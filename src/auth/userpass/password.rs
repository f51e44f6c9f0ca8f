//! argon2id password hashes (PHC strings).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::internal;
use crate::storage::{StoreError, StoreResult};

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh argon2id hash of `password` with a random 16-byte salt, as a PHC
/// string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
pub(super) fn hash_password(params: &Params, password: &str) -> StoreResult<Zeroizing<String>> {
    let mut salt = [0u8; 16];
    transit_keys::secret::fill_random(&mut salt)
        .map_err(|_| StoreError::Internal("random number generator failed".to_owned()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| internal("argon2 salt", e))?;
    let hash = argon2id(params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| internal("argon2 hash", e))?;
    Ok(Zeroizing::new(hash.to_string()))
}

/// Whether `password` matches the PHC string `hash` (verified with the
/// parameters recorded in the hash; the final comparison is constant-time).
pub(super) fn verify_password(hash: &str, password: &str) -> StoreResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| internal("stored password hash", e))?;
    match argon2id(Params::default()).verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(internal("argon2 verify", e)),
    }
}
