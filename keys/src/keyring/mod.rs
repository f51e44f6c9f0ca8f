//! `Keyring`: the versions of one named key and every rule around them.
//!
//! Version numbers follow the transit engine: versions start at 1 and only grow;
//! `min_decryption_version` hides older versions from decryption (they stay
//! stored until trimmed); `min_encryption_version` (0 = latest) bounds the
//! versions callers may pick for new ciphertexts; `min_available_version` is the
//! trim point below which material is gone for good.
//!
//! A `Keyring` is cheap to clone (versions are shared), so callers change a copy
//! and publish it only once it is valid and persisted.
//!
//! This module holds the keyring, its lifecycle (create, rotate, configure,
//! trim) and which version an operation may use; the operations are in
//! `crypt` (encrypt, decrypt, rewrap, data keys), `hmac` and `sign`.

use std::collections::BTreeMap;
use std::sync::Arc;

use core::fmt;
use time::OffsetDateTime;

use crate::derive::Kdf;
use crate::error::{Error, Result};
use crate::key_type::KeyType;
use crate::sign::PublicKey;
use crate::version::KeyVersion;

mod crypt;
mod hmac;
mod sign;

/// Longest key name we accept (names become storage paths and log fields).
pub const MAX_NAME_LEN: usize = 512;
/// The shortest non-zero automatic rotation period, in seconds.
pub const MIN_AUTO_ROTATE_SECS: u64 = 3600;

/// When and at which version a backup or restore happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionStamp {
    pub time: OffsetDateTime,
    pub version: u32,
}

/// Options of a new keyring.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    pub derived: bool,
    pub convergent_encryption: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_period_secs: u64,
    /// HMAC keyrings only: key length in bytes (32..=512); 0 means 32.
    pub key_size: u64,
}

/// A configuration change; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigChange {
    pub min_decryption_version: Option<i64>,
    pub min_encryption_version: Option<i64>,
    pub deletion_allowed: Option<bool>,
    pub exportable: Option<bool>,
    pub allow_plaintext_backup: Option<bool>,
    pub auto_rotate_period_secs: Option<u64>,
    /// A version's encryption limit, at most the type's safe bound.
    pub max_encryptions_per_version: Option<i64>,
}

/// Per-request inputs of encrypt, decrypt, rewrap and datakey.
#[derive(Clone, Copy, Debug, Default)]
pub struct CryptoParams<'a> {
    pub context: Option<&'a [u8]>,
    pub associated_data: Option<&'a [u8]>,
    /// 0 means the latest version.
    pub key_version: i64,
}

/// A ciphertext (or HMAC, or signature) string and the version that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub text: String,
    pub key_version: u32,
}

/// A signature, with the derived public key when the keyring is derived Ed25519.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub text: String,
    pub key_version: u32,
    pub public_key: Option<[u8; 32]>,
}

/// What a key read shows of one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub number: u32,
    pub created: OffsetDateTime,
    /// For signing types: the public key (PEM for ECDSA/RSA, base64 raw for
    /// Ed25519/ML-DSA; empty for derived Ed25519 without a context).
    pub public_key: Option<String>,
}

#[derive(Clone)]
pub struct Keyring {
    pub(crate) name: String,
    pub(crate) key_type: KeyType,
    pub(crate) derived: bool,
    pub(crate) kdf: Kdf,
    pub(crate) convergent: bool,
    pub(crate) exportable: bool,
    pub(crate) allow_plaintext_backup: bool,
    pub(crate) deletion_allowed: bool,
    pub(crate) auto_rotate_period_secs: u64,
    /// Set lower than the type's bound by configuration; `None`: the bound.
    pub(crate) max_encryptions: Option<u64>,
    pub(crate) min_decryption_version: u32,
    pub(crate) min_encryption_version: u32,
    pub(crate) min_available_version: u32,
    pub(crate) latest_version: u32,
    pub(crate) key_size: u32,
    pub(crate) imported: bool,
    pub(crate) allow_imported_key_rotation: bool,
    /// Soft-deleted (OpenBao 2.x): kept, readable and configurable, but
    /// serves nothing and does not rotate until restored.
    pub(crate) soft_deleted: bool,
    pub(crate) backup_info: Option<VersionStamp>,
    pub(crate) restore_info: Option<VersionStamp>,
    /// Every version still available (`>= min_available_version`).
    pub(crate) versions: BTreeMap<u32, Arc<KeyVersion>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("name", &self.name)
            .field("type", &self.key_type)
            .field("derived", &self.derived)
            .field("convergent", &self.convergent)
            .field("exportable", &self.exportable)
            .field("latest_version", &self.latest_version)
            .field("min_decryption_version", &self.min_decryption_version)
            .field("min_encryption_version", &self.min_encryption_version)
            .field("min_available_version", &self.min_available_version)
            .finish_non_exhaustive()
    }
}

pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.contains('/')
        || name.chars().any(char::is_control)
    {
        return Err(Error::InvalidKeyName);
    }
    Ok(())
}

fn check_auto_rotate(secs: u64) -> Result<()> {
    if secs != 0 && secs < MIN_AUTO_ROTATE_SECS {
        return Err(Error::AutoRotatePeriodTooShort);
    }
    Ok(())
}

/// A configured encryption limit: positive, and never above the type's bound.
pub(crate) fn check_encryption_limit(key_type: KeyType, limit: i64) -> Result<u64> {
    if !key_type.supports_encryption() {
        return Err(Error::EncryptionLimitNotValid(key_type));
    }
    let limit = u64::try_from(limit)
        .ok()
        .filter(|l| *l > 0)
        .ok_or(Error::EncryptionLimitNotPositive)?;
    match key_type.encryption_bound() {
        Some(bound) if limit > bound => Err(Error::EncryptionLimitAboveBound { bound, key_type }),
        _ => Ok(limit),
    }
}

impl Keyring {
    // ------------------------------------------------------------------
    // Lifecycle

    /// A new keyring with version 1.
    pub fn create(
        name: &str,
        key_type: KeyType,
        opts: &CreateOptions,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let mut ring = Self::create_empty(name, key_type, opts)?;
        ring.rotate(now)?;
        Ok(ring)
    }

    /// A keyring without versions yet, its options checked (creation and import).
    pub(crate) fn create_empty(
        name: &str,
        key_type: KeyType,
        opts: &CreateOptions,
    ) -> Result<Self> {
        validate_name(name)?;
        if opts.convergent_encryption && !opts.derived {
            return Err(Error::ConvergentRequiresDerivation);
        }
        if opts.derived && !key_type.supports_derivation() {
            return Err(Error::DerivationNotSupported(key_type));
        }
        if opts.convergent_encryption && !key_type.supports_convergent() {
            return Err(Error::ConvergentNotSupported(key_type));
        }
        let key_size = match (key_type, opts.key_size) {
            (KeyType::Hmac, 0) => 32,
            (KeyType::Hmac, n @ 32..=512) => n as u32,
            (KeyType::Hmac, n) => return Err(Error::InvalidKeySize(n)),
            (_, 0) => 0,
            (t, _) => return Err(Error::KeySizeNotValid(t)),
        };
        check_auto_rotate(opts.auto_rotate_period_secs)?;
        Ok(Self {
            name: name.to_owned(),
            key_type,
            derived: opts.derived,
            kdf: Kdf::Hkdf,
            convergent: opts.convergent_encryption,
            exportable: opts.exportable,
            allow_plaintext_backup: opts.allow_plaintext_backup,
            deletion_allowed: false,
            auto_rotate_period_secs: opts.auto_rotate_period_secs,
            max_encryptions: None,
            min_decryption_version: 1,
            min_encryption_version: 0,
            min_available_version: 0,
            latest_version: 0,
            key_size,
            imported: false,
            allow_imported_key_rotation: false,
            soft_deleted: false,
            backup_info: None,
            restore_info: None,
            versions: BTreeMap::new(),
        })
    }

    /// Add a version and make it the latest.
    pub fn rotate(&mut self, now: OffsetDateTime) -> Result<u32> {
        self.in_service()?;
        if self.imported && !self.allow_imported_key_rotation {
            return Err(Error::ImportedKeyNoRotation(self.name.clone()));
        }
        let number = self
            .latest_version
            .checked_add(1)
            .ok_or(Error::TooManyVersions)?;
        let version = KeyVersion::generate(
            self.key_type,
            number,
            now,
            self.derived,
            self.convergent,
            self.key_size as usize,
        )?;
        self.versions.insert(number, Arc::new(version));
        self.latest_version = number;
        self.imported = false;
        Ok(number)
    }

    /// Apply a configuration change atomically; returns warnings to show.
    pub fn configure(&mut self, change: &ConfigChange) -> Result<Vec<String>> {
        let mut next = self.clone();
        let mut warnings = Vec::new();
        if let Some(v) = change.min_decryption_version {
            if v < 0 {
                return Err(Error::NegativeMinDecryption);
            }
            let v = if v == 0 {
                warnings.push(
                    "since Vault 0.3 (prior to the OpenBao fork), transit key numbering starts at 1; forcing minimum to 1"
                        .to_owned(),
                );
                1
            } else {
                v
            };
            if v > i64::from(self.latest_version) {
                return Err(Error::MinDecryptionAboveLatest {
                    requested: v,
                    latest: self.latest_version,
                });
            }
            next.min_decryption_version = v as u32;
        }
        if let Some(v) = change.min_encryption_version {
            if v < 0 {
                return Err(Error::NegativeMinEncryption);
            }
            if v > i64::from(self.latest_version) {
                return Err(Error::MinEncryptionAboveLatest {
                    requested: v,
                    latest: self.latest_version,
                });
            }
            next.min_encryption_version = v as u32;
        }
        if next.min_encryption_version > 0
            && next.min_encryption_version < next.min_decryption_version
        {
            return Err(Error::MinEncryptionBelowMinDecryption {
                encryption: next.min_encryption_version,
                decryption: next.min_decryption_version,
            });
        }
        if next.min_decryption_version < next.min_available_version {
            return Err(Error::MinDecryptionBelowMinAvailable);
        }
        if next.min_available_version > 0
            && next.min_encryption_version > 0
            && next.min_encryption_version < next.min_available_version
        {
            return Err(Error::MinEncryptionBelowMinAvailable);
        }
        if let Some(d) = change.deletion_allowed {
            next.deletion_allowed = d;
        }
        // Exportability and plaintext backup are one-way switches.
        if change.exportable == Some(true) {
            next.exportable = true;
        }
        if change.allow_plaintext_backup == Some(true) {
            next.allow_plaintext_backup = true;
        }
        if let Some(secs) = change.auto_rotate_period_secs {
            check_auto_rotate(secs)?;
            next.auto_rotate_period_secs = secs;
        }
        if let Some(limit) = change.max_encryptions_per_version {
            next.max_encryptions = Some(check_encryption_limit(self.key_type, limit)?);
        }
        *self = next;
        Ok(warnings)
    }

    /// Delete the material of every version below `min_available`, for good.
    pub fn trim(&mut self, min_available: i64) -> Result<()> {
        if min_available < 0 {
            return Err(Error::TrimNegative);
        }
        if min_available < i64::from(self.min_available_version) {
            return Err(Error::TrimDecrement);
        }
        if self.min_encryption_version == 0 {
            return Err(Error::TrimNeedsMinEncryption);
        }
        if min_available > i64::from(self.min_encryption_version) {
            return Err(Error::TrimAboveMinEncryption);
        }
        if min_available > i64::from(self.min_decryption_version) {
            return Err(Error::TrimAboveMinDecryption);
        }
        if min_available == 0 {
            return Err(Error::TrimNotPositive);
        }
        let min_available = min_available as u32;
        self.versions.retain(|&n, _| n >= min_available);
        self.min_available_version = min_available;
        Ok(())
    }

    // ------------------------------------------------------------------
    // Read-only accessors

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }
    pub fn derived(&self) -> bool {
        self.derived
    }
    pub fn kdf(&self) -> Kdf {
        self.kdf
    }
    pub fn convergent_encryption(&self) -> bool {
        self.convergent
    }
    pub fn exportable(&self) -> bool {
        self.exportable
    }
    pub fn allow_plaintext_backup(&self) -> bool {
        self.allow_plaintext_backup
    }
    pub fn deletion_allowed(&self) -> bool {
        self.deletion_allowed
    }
    pub fn auto_rotate_period_secs(&self) -> u64 {
        self.auto_rotate_period_secs
    }
    /// How many encryptions each version may make: the configured limit,
    /// else the type's safe bound; `None`: unlimited.
    pub fn max_encryptions_per_version(&self) -> Option<u64> {
        self.max_encryptions.or(self.key_type.encryption_bound())
    }
    /// Whether a new version can be added (not an imported key that forbids it).
    pub fn can_rotate(&self) -> bool {
        !self.soft_deleted && (!self.imported || self.allow_imported_key_rotation)
    }
    /// The version an encryption with `requested` (0 = latest) would use.
    pub fn encryption_version_number(&self, requested: i64) -> Result<u32> {
        Ok(self.encryption_version(requested)?.number)
    }
    pub fn latest_version(&self) -> u32 {
        self.latest_version
    }
    pub fn min_decryption_version(&self) -> u32 {
        self.min_decryption_version
    }
    pub fn min_encryption_version(&self) -> u32 {
        self.min_encryption_version
    }
    pub fn min_available_version(&self) -> u32 {
        self.min_available_version
    }
    /// HMAC keyrings: key length in bytes; 0 otherwise.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }
    pub fn imported(&self) -> bool {
        self.imported
    }
    pub fn soft_deleted(&self) -> bool {
        self.soft_deleted
    }

    /// Mark soft-deleted (`true`) or restore it; returns whether that
    /// changed anything.
    pub fn set_soft_deleted(&mut self, deleted: bool) -> bool {
        std::mem::replace(&mut self.soft_deleted, deleted) != deleted
    }

    /// The one check every use of the key makes first: a soft-deleted key
    /// serves nothing (encrypt, decrypt, rewrap, data keys, HMAC, sign,
    /// verify, export, backup) and does not rotate.
    pub(crate) fn in_service(&self) -> Result<()> {
        if self.soft_deleted {
            return Err(Error::SoftDeleted);
        }
        Ok(())
    }
    pub fn allow_imported_key_rotation(&self) -> bool {
        self.allow_imported_key_rotation
    }
    pub fn backup_info(&self) -> Option<VersionStamp> {
        self.backup_info
    }
    pub fn restore_info(&self) -> Option<VersionStamp> {
        self.restore_info
    }
    pub fn version(&self, n: u32) -> Option<&KeyVersion> {
        self.versions.get(&n).map(|v| &**v)
    }
    /// When the latest version was created (for automatic rotation).
    pub fn latest_created(&self) -> Option<OffsetDateTime> {
        self.version(self.latest_version).map(KeyVersion::created)
    }
    /// True when `auto_rotate_period` has passed since the latest version
    /// (never for a soft-deleted key, nor for an imported key without
    /// `allow_rotation`, as OpenBao).
    pub fn rotation_due(&self, now: OffsetDateTime) -> bool {
        match (self.auto_rotate_period_secs, self.latest_created()) {
            _ if self.soft_deleted => false,
            _ if self.imported && !self.allow_imported_key_rotation => false,
            (0, _) | (_, None) => false,
            (period, Some(created)) => (now - created).whole_seconds() >= period as i64,
        }
    }

    /// Record that this keyring was restored from a backup.
    pub fn mark_restored(&mut self, now: OffsetDateTime) {
        self.restore_info = Some(VersionStamp {
            time: now,
            version: self.latest_version,
        });
    }

    /// Record that a backup was taken.
    pub fn mark_backed_up(&mut self, now: OffsetDateTime) {
        self.backup_info = Some(VersionStamp {
            time: now,
            version: self.latest_version,
        });
    }

    /// What a key read lists: versions from `min_decryption_version` to latest.
    pub fn version_infos(&self, context: Option<&[u8]>) -> Result<Vec<VersionInfo>> {
        self.versions
            .range(self.min_decryption_version..)
            .map(|(&number, v)| {
                let public_key = match v.material.public_key() {
                    Some(public) => Some(self.display_public_key(public, v, context)?),
                    None => None,
                };
                Ok(VersionInfo {
                    number,
                    created: v.created,
                    public_key,
                })
            })
            .collect()
    }

    fn display_public_key(
        &self,
        public: PublicKey,
        v: &KeyVersion,
        context: Option<&[u8]>,
    ) -> Result<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        Ok(match public {
            PublicKey::Ed25519(_) if self.derived => match context {
                Some(ctx) if !ctx.is_empty() => {
                    STANDARD.encode(self.derived_ed25519(v, ctx)?.public_key())
                }
                _ => String::new(),
            },
            PublicKey::Ed25519(raw) => STANDARD.encode(raw),
            PublicKey::MlDsa { raw, .. } => STANDARD.encode(raw),
            public @ (PublicKey::Ecdsa { .. } | PublicKey::Rsa { .. }) => public.to_pem()?,
        })
    }

    // ------------------------------------------------------------------
    // Version selection

    /// The version a new ciphertext (or data key) uses.
    fn encryption_version(&self, requested: i64) -> Result<&KeyVersion> {
        let n = match requested {
            0 => self.latest_version,
            n if n < 0 => return Err(Error::EncryptVersionNegative),
            n if n > i64::from(self.latest_version) => return Err(Error::EncryptVersionTooHigh),
            n if self.min_encryption_version > 0 && n < i64::from(self.min_encryption_version) => {
                return Err(Error::EncryptVersionTooOld);
            }
            n => n as u32,
        };
        self.usable_version(n)
    }

    /// A version at or above `min_decryption_version` that still has material.
    fn usable_version(&self, n: u32) -> Result<&KeyVersion> {
        if n < self.min_decryption_version {
            return Err(Error::NoSuchKeyVersion);
        }
        self.version(n).ok_or(Error::NoSuchKeyVersion)
    }

    /// The version named by a ciphertext or signature being checked.
    fn checked_version(&self, version: i64, too_new: Error, too_old: Error) -> Result<&KeyVersion> {
        if version > i64::from(self.latest_version) {
            return Err(too_new);
        }
        if version < i64::from(self.min_decryption_version.max(1)) {
            return Err(too_old);
        }
        self.usable_version(version as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_471_584).unwrap()
    }

    fn ring(t: KeyType) -> Keyring {
        Keyring::create("k", t, &CreateOptions::default(), now()).unwrap()
    }

    #[test]
    fn encrypt_decrypt_rotate_and_retire() {
        let mut k = ring(KeyType::Aes256Gcm96);
        let p = CryptoParams::default();
        let v1 = k.encrypt(b"hello", &p).unwrap();
        assert!(v1.text.starts_with("vault:v1:"));
        k.rotate(now()).unwrap();
        let v2 = k.encrypt(b"hello", &p).unwrap();
        assert_eq!(v2.key_version, 2);
        assert_eq!(&k.decrypt(&v1.text, &p).unwrap()[..], b"hello");
        let rewrapped = k.rewrap(&v1.text, &p).unwrap();
        assert_eq!(rewrapped.key_version, 2);
        k.configure(&ConfigChange {
            min_decryption_version: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(k.decrypt(&v1.text, &p).unwrap_err(), Error::VersionTooOld);
        assert_eq!(&k.decrypt(&rewrapped.text, &p).unwrap()[..], b"hello");
        assert_eq!(
            k.decrypt("vault:v3:AAAA", &p).unwrap_err(),
            Error::CiphertextVersionTooNew
        );
    }

    #[test]
    fn config_rules() {
        let mut k = ring(KeyType::Aes256Gcm96);
        k.rotate(now()).unwrap();
        k.rotate(now()).unwrap();
        let set = |dec: Option<i64>, enc: Option<i64>| ConfigChange {
            min_decryption_version: dec,
            min_encryption_version: enc,
            ..Default::default()
        };
        assert_eq!(
            k.configure(&set(Some(9), None)).unwrap_err(),
            Error::MinDecryptionAboveLatest {
                requested: 9,
                latest: 3
            }
        );
        assert_eq!(
            k.configure(&set(Some(-1), None)).unwrap_err(),
            Error::NegativeMinDecryption
        );
        k.configure(&set(Some(2), None)).unwrap();
        assert_eq!(
            k.configure(&set(None, Some(1))).unwrap_err(),
            Error::MinEncryptionBelowMinDecryption {
                encryption: 1,
                decryption: 2
            }
        );
        assert_eq!(k.configure(&set(Some(0), None)).unwrap().len(), 1);
        assert_eq!(k.min_decryption_version(), 1);
    }

    #[test]
    fn trim_rules() {
        let mut k = ring(KeyType::Aes256Gcm96);
        for _ in 0..3 {
            k.rotate(now()).unwrap();
        }
        assert_eq!(k.trim(2).unwrap_err(), Error::TrimNeedsMinEncryption);
        k.configure(&ConfigChange {
            min_decryption_version: Some(2),
            min_encryption_version: Some(3),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(k.trim(3).unwrap_err(), Error::TrimAboveMinDecryption);
        k.trim(2).unwrap();
        assert!(k.version(1).is_none());
        assert_eq!(k.trim(1).unwrap_err(), Error::TrimDecrement);
        assert_eq!(
            k.configure(&ConfigChange {
                min_decryption_version: Some(1),
                ..Default::default()
            })
            .unwrap_err(),
            Error::MinDecryptionBelowMinAvailable
        );
    }

    #[test]
    fn encryption_limits_default_to_the_type_bound_and_only_go_lower() {
        let limit = |n| ConfigChange {
            max_encryptions_per_version: Some(n),
            ..Default::default()
        };
        for t in [
            KeyType::Aes128Gcm96,
            KeyType::Aes256Gcm96,
            KeyType::ChaCha20Poly1305,
        ] {
            let mut k = ring(t);
            assert_eq!(k.max_encryptions_per_version(), Some(1 << 32));
            for bad in [0, -1, (1 << 32) + 1] {
                assert!(k.configure(&limit(bad)).is_err(), "{t} {bad}");
                assert_eq!(k.max_encryptions_per_version(), Some(1 << 32));
            }
            k.configure(&limit(1 << 32)).unwrap();
            k.configure(&limit(10)).unwrap();
            assert_eq!(k.max_encryptions_per_version(), Some(10));
            let back = Keyring::from_stored_bytes(&k.to_stored_bytes().unwrap()).unwrap();
            assert_eq!(back.max_encryptions_per_version(), Some(10));
        }
        // No nonce bound: unlimited unless configured.
        let mut k = ring(KeyType::XChaCha20Poly1305);
        assert_eq!(k.max_encryptions_per_version(), None);
        k.configure(&limit(1 << 40)).unwrap();
        assert_eq!(k.max_encryptions_per_version(), Some(1 << 40));
        assert_eq!(ring(KeyType::Rsa2048).max_encryptions_per_version(), None);
        // Types that do not encrypt have nothing to limit.
        assert_eq!(
            ring(KeyType::Ed25519).configure(&limit(5)).unwrap_err(),
            Error::EncryptionLimitNotValid(KeyType::Ed25519)
        );
    }
}
