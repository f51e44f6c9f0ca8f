//! How to enable a device ([`DeviceConfig`]), and new salts and signing keys
//! for it: what the audit store keeps per device and the devices open with.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use zeroize::Zeroize;

use super::device::CheckpointStore;
use super::error::AuditError;

/// How to enable a device.
///
/// `kind` is `file` (options `file_path` or `path`: a file, or `stdout`) or
/// `stdout`. Other options, Vault's where they exist: `hmac_accessor`
/// (default true), `log_raw` (default false), `mode` (octal, default `0600`,
/// executable bits dropped, `0000` keeps an existing file's mode), `format`
/// (only `json`), `checkpoint_interval` (entries between checkpoints, default
/// 1000), `durability` (`fsync`, the default, or `background`) and, with
/// `background`, `sync_interval` (1ms to 1s, default 100ms). `prefix` and
/// `file_path=discard` are refused.
///
/// `salt` keys the HMAC of hashed values (Vault keeps a UUID string per
/// device; its bytes are the key). `signing_key` is an Ed25519 private key as
/// PKCS#8 (v1 or v2); keep it per device and stable across restarts, since a
/// file's header names the key that must sign all its checkpoints. Both are
/// wiped when the config is dropped.
#[derive(Clone, Default)]
pub struct DeviceConfig {
    pub kind: String,
    pub options: BTreeMap<String, String>,
    pub salt: Vec<u8>,
    pub signing_key: Vec<u8>,
    /// Where a file device keeps a copy of its latest checkpoint that the
    /// file must reach when it is opened (the audit store's sealed copy).
    pub checkpoints: Option<Arc<dyn CheckpointStore>>,
}

impl fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("kind", &self.kind)
            .field("options", &self.options)
            .field("salt", &"<redacted>")
            .field("signing_key", &"<redacted>")
            .field("checkpoints", &self.checkpoints)
            .finish()
    }
}

impl Drop for DeviceConfig {
    fn drop(&mut self) {
        self.salt.zeroize();
        self.signing_key.zeroize();
    }
}

/// A new Ed25519 signing key, PKCS#8 v2, for [`DeviceConfig::signing_key`].
pub fn generate_signing_key() -> Result<Vec<u8>, AuditError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| AuditError::Config("no randomness for a signing key".to_owned()))
}

/// A new salt in Vault's form: a random UUID string's bytes.
pub fn generate_salt() -> Vec<u8> {
    uuid::Uuid::new_v4().to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_redacts_secrets() {
        // `DeviceConfig` wipes itself on drop, so no `..Default::default()`.
        let mut c = DeviceConfig::default();
        c.kind = "file".to_owned();
        c.salt = b"secret-salt".to_vec();
        assert!(!format!("{c:?}").contains("secret-salt"));
    }
}
