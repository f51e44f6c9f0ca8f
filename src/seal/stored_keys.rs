//! What unseals the root key, and what proves a caller holds the shares: the
//! one home for both.
//!
//! Shamir: the shares rebuild an *unseal key*, and the root key is kept in
//! `core/seal-config` sealed by it (`stored_root_key`). A rekey replaces the
//! unseal key and its shares; the root key, which `core/keyring` is sealed by
//! and which every unsealed cluster node holds, never changes. A store made
//! before unseal keys existed has no `stored_root_key`: its shares rebuild
//! the root key itself until its first rekey converts it.
//!
//! Auto seals (any seal that unwraps the root key itself): optional
//! *recovery keys*. Their shares rebuild a recovery key that is kept in the
//! seal configuration sealed by the barrier, so only an unsealed node can
//! check one. They authorize root generation and their own rekey; they never
//! unseal. A store without one (initialized with `recovery_shares` 0, or
//! before transitd kept recovery keys) cannot generate a root token.
//!
//! Counts and keys share the one `core/seal-config` entry, so one
//! compare-and-swap switches the shares, their threshold and the key they
//! rebuild together: a crash leaves the old shares working or the new ones.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::barrier::{Barrier, BarrierError, SecretKey, open_entry};
use super::{SealConfig, SealError, SealResult, failed, shamir, wrong_key};
use crate::storage::layout::SEAL_CONFIG;

/// What the sealed root key is bound to (a copy elsewhere does not open).
const ROOT_KEY_BINDING: &str = SEAL_CONFIG;
/// What the sealed recovery key is bound to.
const RECOVERY_KEY_BINDING: &str = "core/recovery-key";

/// A fresh random key and its shares, shown once.
pub struct NewKey {
    pub key: SecretKey,
    pub shares: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewKey(..)")
    }
}

/// A new key split `shares`/`threshold` ways (Vault's rules, else 400).
pub fn new_key(shares: u64, threshold: u64) -> SealResult<NewKey> {
    shamir::check_params(shares, threshold).map_err(SealError::Invalid)?;
    let key = SecretKey::random().map_err(failed)?;
    let shares = shamir::split(key.expose(), shares, threshold).map_err(failed)?;
    Ok(NewKey { key, shares })
}

/// Whether the store's seal is Shamir (else an auto seal).
pub fn is_shamir(config: &SealConfig) -> bool {
    config.kind == "shamir"
}

/// The root key, from the key the unseal shares rebuilt; a wrong
/// combination is Vault's 400.
pub fn root_key(config: &SealConfig, combined: SecretKey) -> SealResult<SecretKey> {
    let Some(stored) = &config.stored_root_key else {
        // A store from before unseal keys: the shares are the root key.
        return Ok(combined);
    };
    let sealed = STANDARD
        .decode(stored)
        .map_err(|e| failed(format!("the stored root key is unreadable: {e}")))?;
    let root = match open_entry(&combined, ROOT_KEY_BINDING, &sealed) {
        Ok(root) => root,
        Err(BarrierError::Open(_)) => return Err(wrong_key()),
        Err(e) => return Err(failed(e)),
    };
    SecretKey::from_slice(&root).ok_or_else(|| failed("the stored root key has a wrong length"))
}

/// `config` with the shares of `key` unsealing the barrier's (unchanged)
/// root key.
pub fn with_unseal_key(
    config: &SealConfig,
    barrier: &Barrier,
    key: &SecretKey,
    shares: u64,
    threshold: u64,
) -> SealResult<SealConfig> {
    let sealed = barrier
        .root_sealed_by(key, ROOT_KEY_BINDING)
        .map_err(failed)?;
    Ok(SealConfig {
        secret_shares: shares,
        secret_threshold: threshold,
        stored_root_key: Some(STANDARD.encode(sealed)),
        ..config.clone()
    })
}

/// `config` with the shares of `key` as the recovery keys.
pub fn with_recovery_key(
    config: &SealConfig,
    barrier: &Barrier,
    key: &SecretKey,
    shares: u64,
    threshold: u64,
) -> SealResult<SealConfig> {
    let sealed = barrier
        .seal(RECOVERY_KEY_BINDING, key.expose())
        .map_err(failed)?;
    Ok(SealConfig {
        recovery_shares: shares,
        recovery_threshold: threshold,
        recovery_key: Some(STANDARD.encode(sealed)),
        ..config.clone()
    })
}

/// The threshold of the shares that prove authority over this store: the
/// unseal shares (Shamir) or the recovery shares (auto seals).
pub fn authorizing_threshold(config: &SealConfig) -> SealResult<u64> {
    if is_shamir(config) {
        return Ok(config.secret_threshold);
    }
    if config.recovery_key.is_none() || config.recovery_threshold == 0 {
        return Err(SealError::Invalid(format!(
            "this operation takes recovery keys with the {} seal, and this store has none \
             (it was initialized without recovery_shares, or before transitd kept recovery keys)",
            config.kind
        )));
    }
    Ok(config.recovery_threshold)
}

/// Whether `combined`, rebuilt from shares, is the key those shares must
/// rebuild ([`authorizing_threshold`]'s shares). Constant time.
pub fn authorizes(config: &SealConfig, barrier: &Barrier, combined: SecretKey) -> SealResult<bool> {
    if is_shamir(config) {
        return match root_key(config, combined) {
            Ok(root) => Ok(barrier.is_root_key(&root)),
            Err(SealError::Invalid(_)) => Ok(false),
            Err(e) => Err(e),
        };
    }
    authorizing_threshold(config)?;
    let stored = config.recovery_key.as_deref().unwrap_or_default();
    let sealed = STANDARD
        .decode(stored)
        .map_err(|e| failed(format!("the stored recovery key is unreadable: {e}")))?;
    let key = barrier
        .open(RECOVERY_KEY_BINDING, &sealed)
        .map_err(failed)?;
    Ok(bool::from(key.as_slice().ct_eq(combined.expose())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::BarrierKeyring;
    use crate::storage::MemoryStorage;
    use std::sync::Arc;

    fn config(kind: &str) -> SealConfig {
        SealConfig {
            kind: kind.to_owned(),
            secret_shares: 1,
            secret_threshold: 1,
            stored_root_key: None,
            recovery_shares: 0,
            recovery_threshold: 0,
            recovery_key: None,
            wrapped_root_key: None,
        }
    }

    fn barrier(root: &SecretKey) -> Barrier {
        let copy = SecretKey::from_slice(root.expose()).unwrap();
        Barrier::new(
            Arc::new(MemoryStorage::new()),
            copy,
            BarrierKeyring::generate().unwrap(),
        )
    }

    #[test]
    fn legacy_shares_are_the_root_key_and_stored_ones_unwrap_it() {
        let root = SecretKey::random().unwrap();
        let b = barrier(&root);
        let legacy = config("shamir");
        let same = SecretKey::from_slice(root.expose()).unwrap();
        assert!(authorizes(&legacy, &b, same).unwrap());

        let new = new_key(3, 2).unwrap();
        let stored = with_unseal_key(&legacy, &b, &new.key, 3, 2).unwrap();
        assert_eq!((stored.secret_shares, stored.secret_threshold), (3, 2));
        let unsealed = root_key(&stored, SecretKey::from_slice(new.key.expose()).unwrap());
        assert!(b.is_root_key(&unsealed.unwrap()));
        // The root key no longer opens it: old (legacy) shares stop working.
        let old = SecretKey::from_slice(root.expose()).unwrap();
        assert!(matches!(root_key(&stored, old), Err(SealError::Invalid(_))));
        assert!(!authorizes(&stored, &b, SecretKey::random().unwrap()).unwrap());
    }

    #[test]
    fn recovery_keys_are_checked_by_the_barrier_and_absent_ones_refused() {
        let root = SecretKey::random().unwrap();
        let b = barrier(&root);
        let none = config("static");
        let err = authorizing_threshold(&none).unwrap_err();
        assert!(err.to_string().contains("recovery keys"), "{err}");
        let new = new_key(5, 3).unwrap();
        let with = with_recovery_key(&none, &b, &new.key, 5, 3).unwrap();
        assert_eq!(authorizing_threshold(&with).unwrap(), 3);
        let right = SecretKey::from_slice(new.key.expose()).unwrap();
        assert!(authorizes(&with, &b, right).unwrap());
        assert!(!authorizes(&with, &b, SecretKey::random().unwrap()).unwrap());
        // Another barrier cannot check it.
        let other = barrier(&SecretKey::random().unwrap());
        let right = SecretKey::from_slice(new.key.expose()).unwrap();
        assert!(authorizes(&with, &other, right).is_err());
        assert!(new_key(3, 1).is_err());
    }
}
