//! Seal migration between Shamir, the static seal and the transit seal, as
//! OpenBao does it: the configuration names the new seal, and the old one
//! (unless it is Shamir) in a second stanza marked `disabled = "true"`. The
//! server then starts sealed; `sys/unseal` with `migrate: true` takes the
//! old seal's shares (Shamir unseal keys, or the recovery keys of an auto
//! seal) and, at the threshold, switches the seal.
//!
//! The switch is one compare-and-swap of `core/seal-config`: the new type,
//! the root key as the new seal protects it (sealed by the old unseal key's
//! successor, or wrapped by the new auto seal in `wrapped_root_key`) and the
//! share counts change together, so a crash leaves the old seal working or
//! the new one. The root key and the barrier keyring never change: nodes
//! still unsealed keep serving, and data needs no rewriting. As OpenBao:
//! Shamir → auto, the unseal keys become the recovery keys; auto → Shamir,
//! the recovery keys become the unseal keys; auto → auto, the recovery keys
//! stay.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::barrier::{Barrier, SecretKey};
use super::{Seal, SealConfig, SealError, SealKind, SealResult, stored_keys, wrong_key};
use crate::storage::blocking;
use crate::storage::layout::ROOT_KEY as ROOT_KEY_PATH;

/// Where the stored seal stands against the configured one(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Stored and configured seals agree; no old seal is configured.
    None,
    /// The store still has the old seal: unseal with `migrate` to switch.
    Pending,
    /// The store has the new seal but the disabled stanza is still there.
    Completed,
}

/// OpenBao's rules (`adjustForSealMigration`): which configured seals with
/// which stored seal type mean which migration. Anything else is refused
/// before the server serves, so no unseal can half apply it.
pub fn phase(
    stored: &SealConfig,
    configured: &SealKind,
    old: Option<&SealKind>,
) -> SealResult<Phase> {
    let (stored, new) = (stored.kind.as_str(), configured.name());
    let Some(old) = old else {
        return match () {
            () if stored == new => Ok(Phase::None),
            () if stored == "shamir" => Ok(Phase::Pending),
            () if new == "shamir" => Err(refused(format!(
                "cannot seal migrate from {stored:?} to Shamir, no disabled seal in configuration"
            ))),
            () => Err(refused(format!(
                "cannot seal migrate from {stored:?} to {new:?}, no disabled seal in configuration"
            ))),
        };
    };
    if old.name() == new {
        return Err(refused(format!(
            "the disabled seal and the configured seal are both {new:?}: transitd migrates \
             between seal types only (rotate a static key with previous_key instead)"
        )));
    }
    match () {
        () if stored == old.name() => Ok(Phase::Pending),
        () if stored == new => Ok(Phase::Completed),
        () => Err(refused(format!(
            "storage has the {stored:?} seal, but the configuration migrates from {:?} to {new:?}",
            old.name()
        ))),
    }
}

/// Refused at start: the server must not serve under a seal it cannot use.
fn refused(message: String) -> SealError {
    SealError::Failed(message)
}

/// OpenBao's two refusals of an unseal's `migrate` flag: set where no
/// migration is configured (`phase` `None`: not initialized), asked even of
/// an unsealed server; missing while a migration is pending.
pub fn check_migrate_flag(phase: Option<Phase>, migrate: bool) -> SealResult<()> {
    match phase {
        None | Some(Phase::None) if migrate => Err(SealError::Invalid(
            "can't perform a seal migration, no migration seal found".to_owned(),
        )),
        Some(Phase::Pending) if !migrate => Err(SealError::Invalid(
            "migrate option not provided and seal migration is pending".to_owned(),
        )),
        _ => Ok(()),
    }
}

/// How many shares an unseal takes in `phase`, or Vault's refusal.
pub fn unseal_threshold(
    stored: &SealConfig,
    configured: &SealKind,
    phase: Phase,
    migrate: bool,
) -> SealResult<u64> {
    check_migrate_flag(Some(phase), migrate)?;
    match phase {
        Phase::None if configured.is_auto() => Err(SealError::Invalid(format!(
            "this server unseals itself with its {} seal",
            configured.name()
        ))),
        // Pending from an auto seal or Completed to one: its recovery shares.
        _ => stored_keys::authorizing_threshold(stored),
    }
}

impl Seal {
    /// The threshold of `from`'s shares was met: open the barrier with the
    /// old seal, check what the shares rebuilt, then switch to this seal in
    /// one compare-and-swap of `raw` (the seal configuration as read).
    pub(super) fn migrate(
        &self,
        from: &SealKind,
        config: &SealConfig,
        raw: &[u8],
        combined: SecretKey,
    ) -> SealResult<Barrier> {
        let shares_key = SecretKey::from_slice(combined.expose()).ok_or_else(wrong_key)?;
        let (barrier, root) = if from.is_auto() {
            let (root, _) = from.unwrap(&self.wrapped_root_key(config)?)?;
            let copy = SecretKey::from_slice(root.expose()).ok_or_else(wrong_key)?;
            let barrier = self.open_barrier(root)?;
            if !stored_keys::authorizes(config, &barrier, combined)? {
                return Err(wrong_key());
            }
            (barrier, copy)
        } else {
            if config.stored_root_key.is_none() {
                return Err(SealError::Invalid(
                    "this store's unseal shares rebuild the root key itself (it predates \
                     unseal keys): rekey once, then migrate, so the shares that become \
                     recovery keys do not reveal the root key"
                        .to_owned(),
                ));
            }
            let root = stored_keys::root_key(config, combined)?;
            let copy = SecretKey::from_slice(root.expose()).ok_or_else(wrong_key)?;
            (self.open_barrier(root)?, copy)
        };
        let after = self.migrated_config(from, config, &barrier, &root, &shares_key)?;
        crate::crash_point::here("migrate-before-switch");
        super::replace_config(self.storage.as_ref(), raw, &after)?;
        crate::crash_point::here("migrate-after-switch");
        tracing::info!(
            from = from.name(),
            to = self.kind.name(),
            "seal migration completed"
        );
        self.remove_stale_root_key(&after);
        Ok(barrier)
    }

    /// The seal configuration after the switch.
    fn migrated_config(
        &self,
        from: &SealKind,
        config: &SealConfig,
        barrier: &Barrier,
        root: &SecretKey,
        shares_key: &SecretKey,
    ) -> SealResult<SealConfig> {
        let to = &self.kind;
        if !to.is_auto() {
            // Auto → Shamir: the recovery key becomes the unseal key.
            let bare = SealConfig {
                kind: to.name().to_owned(),
                recovery_shares: 0,
                recovery_threshold: 0,
                recovery_key: None,
                wrapped_root_key: None,
                ..config.clone()
            };
            let (n, t) = (config.recovery_shares, config.recovery_threshold);
            return stored_keys::with_unseal_key(&bare, barrier, shares_key, n, t);
        }
        let wrapped = STANDARD.encode(to.wrap(root)?);
        let bare = SealConfig {
            kind: to.name().to_owned(),
            secret_shares: 0,
            secret_threshold: 0,
            stored_root_key: None,
            wrapped_root_key: Some(wrapped),
            ..config.clone()
        };
        if from.is_auto() {
            // Auto → auto: the recovery keys stay.
            return Ok(bare);
        }
        // Shamir → auto: the unseal key becomes the recovery key.
        let (n, t) = (config.secret_shares, config.secret_threshold);
        stored_keys::with_recovery_key(&bare, barrier, shares_key, n, t)
    }

    /// After a switch `core/root-key` holds the root key wrapped by a seal
    /// no longer in use; nothing reads it (`wrapped_root_key` takes
    /// precedence, Shamir ignores it), and it goes so a retired key cannot
    /// open it later. A crash before this leaves it until the next unseal.
    pub(super) fn remove_stale_root_key(&self, config: &SealConfig) {
        if config.kind != "shamir" && config.wrapped_root_key.is_none() {
            return; // `core/root-key` is the live wrapping
        }
        let removed = blocking(|| match self.storage.get(ROOT_KEY_PATH)? {
            Some(_) => self.storage.delete(ROOT_KEY_PATH),
            None => Ok(()),
        });
        if let Err(e) = removed {
            tracing::warn!(error = %e, "the retired seal's wrapped root key was not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::static_key::StaticSeal;
    use crate::seal::{InitParams, read_config};
    use crate::storage::{MemoryStorage, Storage};
    use std::sync::Arc;

    fn static_kind(id: &str) -> SealKind {
        let key = hex::encode([7u8; 32]);
        SealKind::Static(StaticSeal::from_config(id, &key, None, None).unwrap())
    }

    fn hexes(shares: &[zeroize::Zeroizing<Vec<u8>>]) -> Vec<String> {
        shares.iter().map(hex::encode).collect()
    }

    #[test]
    fn phases_follow_openbaos_rules() {
        let stored = |kind: &str| SealConfig {
            kind: kind.to_owned(),
            secret_shares: 1,
            secret_threshold: 1,
            stored_root_key: None,
            recovery_shares: 0,
            recovery_threshold: 0,
            recovery_key: None,
            wrapped_root_key: None,
        };
        let shamir = SealKind::Shamir;
        let st = static_kind("a");
        assert_eq!(
            phase(&stored("shamir"), &shamir, None).unwrap(),
            Phase::None
        );
        assert_eq!(phase(&stored("shamir"), &st, None).unwrap(), Phase::Pending);
        let e = phase(&stored("static"), &shamir, None).unwrap_err();
        assert!(e.to_string().contains("to Shamir, no disabled seal"), "{e}");
        assert_eq!(
            phase(&stored("static"), &shamir, Some(&st)).unwrap(),
            Phase::Pending
        );
        assert_eq!(
            phase(&stored("shamir"), &shamir, Some(&st)).unwrap(),
            Phase::Completed
        );
        assert!(phase(&stored("transit"), &shamir, Some(&st)).is_err());
        assert!(phase(&stored("static"), &st, Some(&static_kind("b"))).is_err());
    }

    #[test]
    fn shamir_to_static_and_back_turns_unseal_keys_into_recovery_keys_and_back() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let shamir = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let init = shamir.initialize(InitParams::shares(3, 2)).unwrap();
        shamir.commit_init(&init.config).unwrap();
        init.barrier.put("x", b"v").unwrap();
        let keys = hexes(&init.shares);

        let to_static = Seal::new(Arc::clone(&storage), static_kind("k"));
        assert_eq!(to_static.migration_phase().unwrap(), Some(Phase::Pending));
        let e = to_static.submit_share(&keys[0], false).unwrap_err();
        assert!(e.to_string().contains("migrate option not provided"), "{e}");
        assert!(to_static.submit_share(&keys[0], true).unwrap().is_none());
        let barrier = to_static.submit_share(&keys[2], true).unwrap().unwrap();
        assert_eq!(barrier.get("x").unwrap().unwrap().as_slice(), b"v");
        let config = read_config(storage.as_ref()).unwrap().unwrap();
        assert_eq!(
            (
                config.kind.as_str(),
                config.recovery_shares,
                config.recovery_threshold
            ),
            ("static", 3, 2)
        );
        // The new seal unseals itself; the old shares are recovery keys now.
        let again = Seal::new(Arc::clone(&storage), static_kind("k"));
        assert_eq!(again.migration_phase().unwrap(), Some(Phase::None));
        assert_eq!(
            again
                .auto_unseal()
                .unwrap()
                .get("x")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"v"
        );
        assert!(again.submit_share(&keys[0], false).is_err());
        let authorized = stored_keys::authorizes(
            &config,
            &barrier,
            super::super::combine_shares(&init.shares[..2], 2).unwrap(),
        );
        assert!(authorized.unwrap());

        // Back to Shamir: the static stanza disabled, the recovery keys unseal.
        let back =
            Seal::new(Arc::clone(&storage), SealKind::Shamir).with_old_seal(Some(static_kind("k")));
        assert_eq!(back.migration_phase().unwrap(), Some(Phase::Pending));
        let wrong = hex::encode([9u8; 33]);
        back.submit_share(&keys[1], true).unwrap();
        assert!(
            back.submit_share(&wrong, true).is_err(),
            "wrong shares are refused"
        );
        assert_eq!(
            read_config(storage.as_ref()).unwrap().unwrap().kind,
            "static"
        );
        back.submit_share(&keys[1], true).unwrap();
        back.submit_share(&keys[2], true).unwrap().unwrap();
        assert!(storage.get(ROOT_KEY_PATH).unwrap().is_none());
        // Completed with the stanza still there: plain unseal with the keys.
        assert_eq!(back.migration_phase().unwrap(), Some(Phase::Completed));
        back.submit_share(&keys[0], false).unwrap();
        let reopened = back.submit_share(&keys[1], false).unwrap().unwrap();
        assert_eq!(reopened.get("x").unwrap().unwrap().as_slice(), b"v");
        // Without any old stanza Shamir just unseals.
        let plain = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        plain.submit_share(&keys[0], false).unwrap();
        assert!(plain.submit_share(&keys[2], false).unwrap().is_some());
        let e = plain.submit_share(&keys[0], true).unwrap_err();
        assert!(e.to_string().contains("no migration seal found"), "{e}");
    }

    #[test]
    fn two_nodes_migrating_at_once_switch_once() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let shamir = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let init = shamir.initialize(InitParams::shares(1, 1)).unwrap();
        shamir.commit_init(&init.config).unwrap();
        let key = hex::encode(&init.shares[0]);
        let a = Seal::new(Arc::clone(&storage), static_kind("a"));
        let (config, raw) = super::super::read_config_raw(storage.as_ref()).unwrap();
        a.submit_share(&key, true).unwrap().unwrap();
        // B read the Shamir configuration before A switched: its swap loses.
        let b = Seal::new(Arc::clone(&storage), static_kind("b"));
        let combined = super::super::combine_shares(&init.shares, 1).unwrap();
        let e = b
            .migrate(&SealKind::Shamir, &config, &raw, combined)
            .unwrap_err();
        assert!(e.to_string().contains("changed meanwhile"), "{e}");
        assert!(
            Seal::new(Arc::clone(&storage), static_kind("a"))
                .auto_unseal()
                .is_ok()
        );
    }
}
