//! transitd's own serialized form of a `Keyring`, for storage (the server seals
//! these bytes before they reach disk).
//!
//! JSON with an explicit `schema` number: a release reads every schema up to its
//! own and refuses newer ones rather than guessing. Schema 1 holds each version's
//! private bytes as `SigningKey::private_bytes`/AEAD key/HMAC key in base64.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::derive::Kdf;
use crate::error::{Error, Result};
use crate::key_type::KeyType;
use crate::keyring::{Keyring, VersionStamp, validate_name};
use crate::secret::SecretBytes;
use crate::sign::PublicKey;
use crate::version::{KeyVersion, Material};

pub const SCHEMA: u32 = 1;
/// Largest stored keyring we parse (1,000 RSA-4096 versions fit comfortably).
pub const MAX_STORED_LEN: usize = 64 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKeyring {
    schema: u32,
    name: String,
    key_type: String,
    derived: bool,
    kdf: u32,
    convergent: bool,
    exportable: bool,
    allow_plaintext_backup: bool,
    deletion_allowed: bool,
    auto_rotate_period_secs: u64,
    /// Written only when set, as `soft_deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_encryptions_per_version: Option<u64>,
    min_decryption_version: u32,
    min_encryption_version: u32,
    min_available_version: u32,
    latest_version: u32,
    key_size: u32,
    imported: bool,
    allow_imported_key_rotation: bool,
    /// Written only when set, so that a node of an older version (which
    /// refuses unknown fields) still reads every key that is in service.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    soft_deleted: bool,
    backup_info: Option<StoredStamp>,
    restore_info: Option<StoredStamp>,
    versions: Vec<StoredVersion>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStamp {
    unix_nanos: i128,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredVersion {
    number: u32,
    created_unix_nanos: i128,
    material: Zeroizing<String>,
    /// A public-only version (BYOK `public_key`): its SubjectPublicKeyInfo
    /// DER in base64, `material` empty. Written only when set, as
    /// `soft_deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    hmac_key: Zeroizing<String>,
    convergent_version: u32,
}

fn corrupt(what: &'static str) -> Error {
    Error::CorruptKeyring(what)
}

impl Keyring {
    /// Serialize for storage. The bytes hold key material: seal them before they
    /// leave the process.
    pub fn to_stored_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let stamp = |s: &Option<VersionStamp>| {
            s.map(|s| StoredStamp {
                unix_nanos: s.time.unix_timestamp_nanos(),
                version: s.version,
            })
        };
        let doc = StoredKeyring {
            schema: SCHEMA,
            name: self.name.clone(),
            key_type: self.key_type.name().to_owned(),
            derived: self.derived,
            kdf: self.kdf.code(),
            convergent: self.convergent,
            exportable: self.exportable,
            allow_plaintext_backup: self.allow_plaintext_backup,
            deletion_allowed: self.deletion_allowed,
            auto_rotate_period_secs: self.auto_rotate_period_secs,
            max_encryptions_per_version: self.max_encryptions,
            min_decryption_version: self.min_decryption_version,
            min_encryption_version: self.min_encryption_version,
            min_available_version: self.min_available_version,
            latest_version: self.latest_version,
            key_size: self.key_size,
            imported: self.imported,
            allow_imported_key_rotation: self.allow_imported_key_rotation,
            soft_deleted: self.soft_deleted,
            backup_info: stamp(&self.backup_info),
            restore_info: stamp(&self.restore_info),
            versions: self
                .versions
                .values()
                .map(|v| {
                    let (material, public_key) = match &v.material {
                        Material::Public(public) => {
                            (String::new(), Some(STANDARD.encode(public.to_spki_der()?)))
                        }
                        m => (
                            STANDARD.encode(m.private_bytes().ok_or(Error::Crypto)?.expose()),
                            None,
                        ),
                    };
                    Ok(StoredVersion {
                        number: v.number,
                        created_unix_nanos: v.created.unix_timestamp_nanos(),
                        material: Zeroizing::new(material),
                        public_key,
                        hmac_key: Zeroizing::new(STANDARD.encode(v.hmac_key.expose())),
                        convergent_version: v.convergent_version,
                    })
                })
                .collect::<Result<_>>()?,
        };
        serde_json::to_vec(&doc)
            .map(Zeroizing::new)
            .map_err(|_| Error::Crypto)
    }

    /// Parse what `to_stored_bytes` wrote, checking every invariant again.
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_STORED_LEN {
            return Err(corrupt("stored keyring is too large"));
        }
        #[derive(Deserialize)]
        struct SchemaOnly {
            schema: u32,
        }
        let schema: SchemaOnly =
            serde_json::from_slice(bytes).map_err(|_| corrupt("not a stored keyring"))?;
        if schema.schema != SCHEMA {
            return Err(Error::UnknownSchema(schema.schema));
        }
        let doc: StoredKeyring =
            serde_json::from_slice(bytes).map_err(|_| corrupt("malformed stored keyring"))?;
        validate_name(&doc.name).map_err(|_| corrupt("key name"))?;
        let key_type: KeyType = doc.key_type.parse().map_err(|_| corrupt("key type"))?;
        let kdf = Kdf::from_code(u64::from(doc.kdf)).ok_or(corrupt("kdf"))?;
        let (latest, min_dec, min_enc, min_avail) = (
            doc.latest_version,
            doc.min_decryption_version,
            doc.min_encryption_version,
            doc.min_available_version,
        );
        if latest == 0
            || min_dec == 0
            || min_dec > latest
            || min_enc > latest
            || min_avail > min_dec
        {
            return Err(corrupt("version bounds"));
        }
        if (doc.derived && !key_type.supports_derivation()) || (doc.convergent && !doc.derived) {
            return Err(corrupt("derivation settings"));
        }
        let mut versions = BTreeMap::new();
        for v in &doc.versions {
            if v.number < min_avail.max(1) || v.number > latest || versions.contains_key(&v.number)
            {
                return Err(corrupt("version numbers"));
            }
            let material = SecretBytes::new(
                STANDARD
                    .decode(v.material.as_bytes())
                    .map_err(|_| corrupt("material"))?,
            );
            let hmac_key = SecretBytes::new(
                STANDARD
                    .decode(v.hmac_key.as_bytes())
                    .map_err(|_| corrupt("hmac key"))?,
            );
            let created = OffsetDateTime::from_unix_timestamp_nanos(v.created_unix_nanos)
                .map_err(|_| corrupt("time"))?;
            let material = match &v.public_key {
                Some(public) => {
                    let der = STANDARD
                        .decode(public.as_bytes())
                        .map_err(|_| corrupt("public key"))?;
                    Material::Public(
                        PublicKey::from_spki_der(key_type, &der)
                            .map_err(|_| corrupt("public key"))?,
                    )
                }
                None => Material::from_private_bytes(key_type, material, doc.derived)?,
            };
            let mut version =
                KeyVersion::assemble(v.number, created, material, Some(hmac_key), doc.convergent)?;
            version.convergent_version = v.convergent_version;
            versions.insert(v.number, Arc::new(version));
        }
        // Every version from the trim point (or 1) to the latest must be present.
        let first = min_avail.max(1);
        if versions.len() != (latest - first + 1) as usize {
            return Err(corrupt("missing versions"));
        }
        let stamp = |s: &Option<StoredStamp>| -> Result<Option<VersionStamp>> {
            s.as_ref()
                .map(|s| {
                    Ok(VersionStamp {
                        time: OffsetDateTime::from_unix_timestamp_nanos(s.unix_nanos)
                            .map_err(|_| corrupt("time"))?,
                        version: s.version,
                    })
                })
                .transpose()
        };
        Ok(Keyring {
            name: doc.name,
            key_type,
            derived: doc.derived,
            kdf,
            convergent: doc.convergent,
            exportable: doc.exportable,
            allow_plaintext_backup: doc.allow_plaintext_backup,
            deletion_allowed: doc.deletion_allowed,
            auto_rotate_period_secs: doc.auto_rotate_period_secs,
            max_encryptions: doc.max_encryptions_per_version,
            min_decryption_version: min_dec,
            min_encryption_version: min_enc,
            min_available_version: min_avail,
            latest_version: latest,
            key_size: doc.key_size,
            imported: doc.imported,
            allow_imported_key_rotation: doc.allow_imported_key_rotation,
            soft_deleted: doc.soft_deleted,
            backup_info: stamp(&doc.backup_info)?,
            restore_info: stamp(&doc.restore_info)?,
            versions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{CreateOptions, CryptoParams};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_471_584).unwrap()
    }

    #[test]
    fn round_trips_every_type() {
        for t in KeyType::ALL {
            let mut k = Keyring::create("s", t, &CreateOptions::default(), now()).unwrap();
            k.rotate(now()).unwrap();
            let bytes = k.to_stored_bytes().unwrap();
            let back = Keyring::from_stored_bytes(&bytes).unwrap();
            assert_eq!(&*back.to_stored_bytes().unwrap(), &*bytes, "{t}");
            if t.supports_encryption() {
                let ct = k.encrypt(b"x", &CryptoParams::default()).unwrap();
                assert_eq!(
                    &back.decrypt(&ct.text, &CryptoParams::default()).unwrap()[..],
                    b"x"
                );
            }
        }
    }

    /// Soft deletion is stored only when set (older nodes, which refuse
    /// unknown fields, still read every key in service), survives a reload,
    /// stops every use and automatic rotation, and undoes cleanly.
    #[test]
    fn soft_deletion_is_stored_only_when_set_and_stops_use() {
        let mut k = Keyring::create(
            "s",
            KeyType::Aes256Gcm96,
            &CreateOptions {
                auto_rotate_period_secs: 3600,
                ..CreateOptions::default()
            },
            now(),
        )
        .unwrap();
        let in_service = k.to_stored_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&in_service).contains("soft_deleted"));
        assert!(k.set_soft_deleted(true));
        assert!(!k.set_soft_deleted(true));
        let back = Keyring::from_stored_bytes(&k.to_stored_bytes().unwrap()).unwrap();
        assert!(back.soft_deleted());
        let later = now() + time::Duration::hours(2);
        assert!(!back.rotation_due(later));
        assert_eq!(
            back.encrypt(b"x", &CryptoParams::default()).unwrap_err(),
            Error::SoftDeleted
        );
        assert_eq!(back.clone().rotate(later).unwrap_err(), Error::SoftDeleted);
        assert!(k.set_soft_deleted(false));
        assert!(k.rotation_due(later));
        assert_eq!(&*k.to_stored_bytes().unwrap(), &*in_service);
    }

    #[test]
    fn refuses_future_schema_and_garbage() {
        assert_eq!(
            Keyring::from_stored_bytes(br#"{"schema":2}"#).unwrap_err(),
            Error::UnknownSchema(2)
        );
        assert!(matches!(
            Keyring::from_stored_bytes(b"{}").unwrap_err(),
            Error::CorruptKeyring(_)
        ));
        let k =
            Keyring::create("s", KeyType::Aes256Gcm96, &CreateOptions::default(), now()).unwrap();
        let text = String::from_utf8(k.to_stored_bytes().unwrap().to_vec()).unwrap();
        let broken = text.replace("\"latest_version\":1", "\"latest_version\":2");
        assert!(Keyring::from_stored_bytes(broken.as_bytes()).is_err());
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let k = Keyring::create("s", KeyType::Hmac, &CreateOptions::default(), now()).unwrap();
        let shown = format!("{k:?} {:?}", k.version(1).unwrap());
        let key_b64 = STANDARD.encode(k.version(1).unwrap().hmac_key().expose());
        assert!(!shown.contains(&key_b64));
        assert!(shown.contains("Keyring"));
    }
}
