//! BYOK: keys imported wrapped for a mount's RSA wrapping key, and keys
//! exported wrapped for another server's, in the format of the transit
//! engine of Vault and OpenBao (CKM_RSA_AES_KEY_WRAP):
//!
//! `base64( RSA-OAEP(wrapping key, hash, ephemeral AES-256 key)
//!          || AES-KWP(ephemeral key, material) )` (KWP: RFC 5649).
//!
//! The material is the raw key for AEAD and HMAC keys and PKCS#8 DER for
//! RSA, ECDSA and Ed25519 keys. Every failure to unwrap or to read the
//! material is one error ([`Error::ImportUnwrapFailed`]): telling the OAEP
//! padding from the KWP integrity check or the material's parse would hand
//! the caller a decryption oracle against the wrapping key.

use std::collections::BTreeMap;
use std::str::FromStr;

use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa as lc_rsa;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs8::der::Decode;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::export::private_pkcs8;
use crate::key_type::{Curve, KeyType};
use crate::keyring::Keyring;
use crate::secret::SecretBytes;
use crate::sign::{EcdsaKey, Ed25519Key, PublicKey, RsaKey, SigningKey};
use crate::version::{KeyVersion, Material};

/// The OAEP block of an import: the wrapping key is RSA-4096.
pub const WRAPPED_EPHEMERAL_LEN: usize = 512;
const EPHEMERAL_KEY_LEN: usize = 32;
/// Longest `ciphertext` (base64) or `public_key` (PEM) an import reads,
/// checked before anything is decoded: the largest real one, an RSA-4096
/// PKCS#8 key behind the OAEP block, is under 4 KiB.
pub const MAX_IMPORT_TEXT_LEN: usize = 16 * 1024;
/// Bytes KWP adds at most (the integrity block and up to 7 bytes of padding).
const KWP_OVERHEAD: usize = 15;

/// The hash of RSA-OAEP (and of its MGF1), `hash_function` of an import
/// and `hash` of a BYOK export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OaepHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl OaepHash {
    fn algorithm(self) -> &'static lc_rsa::OaepAlgorithm {
        match self {
            Self::Sha1 => &lc_rsa::OAEP_SHA1_MGF1SHA1,
            Self::Sha256 => &lc_rsa::OAEP_SHA256_MGF1SHA256,
            Self::Sha384 => &lc_rsa::OAEP_SHA384_MGF1SHA384,
            Self::Sha512 => &lc_rsa::OAEP_SHA512_MGF1SHA512,
        }
    }
}

impl FromStr for OaepHash {
    type Err = Error;

    /// OpenBao's names, in any case. SHA-224 is one of them, but aws-lc-rs
    /// offers no OAEP with it: refused by name rather than misread.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA384" => Ok(Self::Sha384),
            "SHA512" => Ok(Self::Sha512),
            "SHA224" => Err(Error::OaepHashNotSupported),
            _ => Err(Error::UnknownOaepHash(s.to_owned())),
        }
    }
}

/// A mount's RSA-4096 wrapping key.
pub struct WrappingKey {
    key: RsaKey,
    public_pem: String,
}

crate::secret::redacted_debug!(WrappingKey);

impl WrappingKey {
    /// A fresh RSA-4096 key (about a second of CPU).
    pub fn generate() -> Result<Self> {
        Self::from_key(RsaKey::generate(KeyType::Rsa4096)?)
    }

    /// The key as stored (PKCS#8 DER).
    pub fn from_pkcs8(pkcs8: SecretBytes) -> Result<Self> {
        Self::from_key(
            RsaKey::from_pkcs8(KeyType::Rsa4096, pkcs8)
                .map_err(|_| Error::CorruptKeyring("wrapping key is not an RSA-4096 key"))?,
        )
    }

    fn from_key(key: RsaKey) -> Result<Self> {
        let public_pem = PublicKey::Rsa {
            spki_der: key.public_spki_der().to_vec(),
        }
        .to_pem()?;
        Ok(Self { key, public_pem })
    }

    pub fn pkcs8(&self) -> &SecretBytes {
        self.key.pkcs8()
    }

    /// "PUBLIC KEY" PEM (SubjectPublicKeyInfo), as `wrapping_key` returns it.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The key inside `ciphertext` (base64), checked to be a key of
    /// `key_type`. Every failure is [`Error::ImportUnwrapFailed`].
    pub fn unwrap_key(
        &self,
        ciphertext: &str,
        hash: OaepHash,
        key_type: KeyType,
    ) -> Result<ImportedKey> {
        if ciphertext.len() > MAX_IMPORT_TEXT_LEN {
            return Err(Error::ImportUnwrapFailed);
        }
        let wrapped = Zeroizing::new(STANDARD.decode(ciphertext).map_err(unwrap_failed)?);
        if wrapped.len() <= WRAPPED_EPHEMERAL_LEN {
            return Err(Error::ImportUnwrapFailed);
        }
        let (wrapped_ephemeral, wrapped_key) = wrapped.split_at(WRAPPED_EPHEMERAL_LEN);
        let ephemeral = self
            .key
            .decrypt_oaep(hash.algorithm(), wrapped_ephemeral)
            .map_err(unwrap_failed)?;
        if ephemeral.len() != EPHEMERAL_KEY_LEN {
            return Err(Error::ImportUnwrapFailed);
        }
        let kek = AesKek::new(&AES_256, &ephemeral).map_err(unwrap_failed)?;
        let mut plain = Zeroizing::new(vec![0u8; wrapped_key.len()]);
        let plain = kek
            .unwrap_with_padding(wrapped_key, &mut plain)
            .map_err(unwrap_failed)?;
        let key = ImportedKey {
            key_type,
            half: Half::Private(SecretBytes::from_slice(plain)),
        };
        key.material(false).map_err(unwrap_failed)?;
        Ok(key)
    }
}

/// A key to import: material unwrapped from `ciphertext`, or the public
/// half given as `public_key`, checked to be a key of its type.
pub struct ImportedKey {
    key_type: KeyType,
    half: Half,
}

enum Half {
    Private(SecretBytes),
    Public(PublicKey),
}

crate::secret::redacted_debug!(ImportedKey);

impl ImportedKey {
    /// `public_key`: a PEM SubjectPublicKeyInfo of a `key_type` key.
    pub fn public(key_type: KeyType, derived: bool, pem: &str) -> Result<Self> {
        if !public_half_importable(key_type) {
            return Err(Error::PublicImportNotSupported);
        }
        if derived && key_type == KeyType::Ed25519 {
            // A derived Ed25519 key is an HKDF key, not a key pair.
            return Err(Error::PublicImportDerived);
        }
        if pem.len() > MAX_IMPORT_TEXT_LEN {
            return Err(Error::InvalidPublicKey("longer than any public key"));
        }
        Ok(Self {
            key_type,
            half: Half::Public(PublicKey::from_spki_der(key_type, &pem_der(pem)?)?),
        })
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn is_private(&self) -> bool {
        matches!(self.half, Half::Private(_))
    }

    /// Ready to use (built again for each attempt of a compare-and-swap).
    fn material(&self, derived: bool) -> Result<Material> {
        match &self.half {
            Half::Private(bytes) => imported_material(self.key_type, bytes.expose(), derived),
            Half::Public(public) => Ok(Material::Public(public.clone())),
        }
    }
}

/// Whether keys of this type can be imported by their public half alone
/// (`public_key`), as in OpenBao.
pub fn public_half_importable(key_type: KeyType) -> bool {
    key_type.is_rsa() || key_type.curve().is_some() || key_type == KeyType::Ed25519
}

fn unwrap_failed<E>(_: E) -> Error {
    Error::ImportUnwrapFailed
}

/// Whether keys of this type can be imported (as in OpenBao: not ML-DSA).
pub fn importable(key_type: KeyType) -> bool {
    key_type.mldsa_level().is_none()
}

/// Read unwrapped material as a key of `key_type`: raw bytes for AEAD and
/// HMAC keys, PKCS#8 DER for signing keys.
fn imported_material(key_type: KeyType, bytes: &[u8], derived: bool) -> Result<Material> {
    let bad = || Error::CorruptKeyring("imported key");
    match key_type {
        t if t.is_aead() => Material::aead(t, SecretBytes::from_slice(bytes), derived),
        KeyType::Hmac if (32..=512).contains(&bytes.len()) => {
            Ok(Material::Hmac(SecretBytes::from_slice(bytes)))
        }
        t if t.is_rsa() => Ok(Material::Signing(SigningKey::Rsa(RsaKey::from_pkcs8(
            t,
            SecretBytes::from_slice(bytes),
        )?))),
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
            use pkcs8::DecodePrivateKey;
            let curve = key_type.curve().ok_or(Error::Crypto)?;
            let scalar = match curve {
                Curve::P256 => {
                    p256::SecretKey::from_pkcs8_der(bytes).map(|k| k.to_bytes().to_vec())
                }
                Curve::P384 => {
                    p384::SecretKey::from_pkcs8_der(bytes).map(|k| k.to_bytes().to_vec())
                }
                Curve::P521 => {
                    p521::SecretKey::from_pkcs8_der(bytes).map(|k| k.to_bytes().to_vec())
                }
            }
            .map_err(|_| bad())?;
            let key = EcdsaKey::from_scalar(curve, SecretBytes::new(scalar))?;
            Ok(Material::Signing(SigningKey::Ecdsa(key)))
        }
        KeyType::Ed25519 => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(bytes).map_err(|_| bad())?;
            if info.algorithm.oid != crate::sign::ED25519_OID || info.algorithm.parameters.is_some()
            {
                return Err(bad());
            }
            // RFC 8410: the private key is an OCTET STRING holding the 32-byte seed.
            let seed = <&der::asn1::OctetStringRef>::from_der(info.private_key.as_bytes())
                .map_err(|_| bad())?;
            if seed.as_bytes().len() != 32 {
                return Err(bad());
            }
            let key = Ed25519Key::from_seed(SecretBytes::from_slice(seed.as_bytes()))?;
            Ok(Material::Signing(SigningKey::Ed25519(key)))
        }
        _ => Err(bad()),
    }
}

/// The DER inside a PEM text (any label, as OpenBao reads `public_key`).
fn pem_der(pem: &str) -> Result<Vec<u8>> {
    pem_rfc7468::decode_vec(pem.trim().as_bytes())
        .map(|(_, der)| der)
        .map_err(|_| Error::InvalidPublicKey("not in PEM format"))
}

/// [`wrap`] for an RSA public key in PEM (what `wrapping_key` answers):
/// what a client such as `bao transit import` does on its side.
pub fn wrap_for_pem(public_pem: &str, hash: OaepHash, material: &[u8]) -> Result<String> {
    wrap(&pem_der(public_pem)?, hash, material)
}

/// Wrap `material` for the RSA public key `spki_der` with a fresh ephemeral key.
pub fn wrap(spki_der: &[u8], hash: OaepHash, material: &[u8]) -> Result<String> {
    let public = lc_rsa::PublicEncryptingKey::from_der(spki_der).map_err(|_| Error::Crypto)?;
    let public = lc_rsa::OaepPublicEncryptingKey::new(public).map_err(|_| Error::Crypto)?;
    let ephemeral = SecretBytes::random(EPHEMERAL_KEY_LEN)?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let oaep_len = public
        .encrypt(hash.algorithm(), ephemeral.expose(), &mut out, None)
        .map_err(|_| Error::Crypto)?
        .len();
    out.truncate(oaep_len);
    let kek = AesKek::new(&AES_256, ephemeral.expose()).map_err(|_| Error::Crypto)?;
    let mut wrapped = vec![0u8; material.len() + KWP_OVERHEAD + 8];
    let wrapped = kek
        .wrap_with_padding(material, &mut wrapped)
        .map_err(|_| Error::Crypto)?;
    out.extend_from_slice(wrapped);
    Ok(STANDARD.encode(out))
}

/// Settings of a key created by import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub derived: bool,
    pub exportable: bool,
    pub allow_plaintext_backup: bool,
    pub auto_rotate_period_secs: u64,
    /// `allow_rotation`: whether transitd may add versions of its own.
    pub allow_rotation: bool,
}

impl Keyring {
    /// A new keyring whose version 1 is `key`.
    pub fn import(
        name: &str,
        key: &ImportedKey,
        opts: &ImportOptions,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let key_type = key.key_type;
        if !importable(key_type) {
            return Err(Error::ImportTypeNotSupported(key_type));
        }
        if opts.auto_rotate_period_secs > 0 && !opts.allow_rotation {
            return Err(Error::ImportAutoRotateNeedsRotation);
        }
        let mut ring = Self::create_empty(
            name,
            key_type,
            &crate::CreateOptions {
                derived: opts.derived,
                exportable: opts.exportable,
                allow_plaintext_backup: opts.allow_plaintext_backup,
                auto_rotate_period_secs: opts.auto_rotate_period_secs,
                ..Default::default()
            },
        )?;
        ring.imported = true;
        ring.allow_imported_key_rotation = opts.allow_rotation;
        ring.add_imported(key, now)?;
        Ok(ring)
    }

    /// `import_version`: `material` becomes a new latest version of a key
    /// that was imported (and not rotated by transitd since).
    /// A private key completes the latest version when that one is
    /// public-only and its public half matches (as OpenBao).
    pub fn import_version(&mut self, key: &ImportedKey, now: OffsetDateTime) -> Result<u32> {
        self.check_import_version(key)?;
        let latest = self.latest_version;
        let latest_public_only = self
            .version(latest)
            .is_some_and(|v| matches!(v.material, Material::Public(_)));
        if latest_public_only && key.is_private() && self.complete_version(latest, key).is_ok() {
            return Ok(latest);
        }
        self.add_imported(key, now)
    }

    /// `import_version` with `version`: the private half of that
    /// public-only version.
    pub fn import_private_for_version(&mut self, version: i64, key: &ImportedKey) -> Result<()> {
        self.check_import_version(key)?;
        let existing = u32::try_from(version)
            .ok()
            .and_then(|n| self.version(n))
            .ok_or(Error::NoSuchKeyVersion)?;
        if !public_half_importable(self.key_type) {
            return Err(Error::VersionImportNotSupported);
        }
        let public_only = matches!(existing.material, Material::Public(_));
        if public_only && !key.is_private() {
            return Err(Error::PublicKeyAlreadySet);
        }
        if !public_only {
            return Err(Error::VersionHasPrivateKey);
        }
        self.complete_version(existing.number, key)
    }

    /// Whether `import_version` may add to this key at all (checked before
    /// anything is unwrapped, and again on the stored key).
    pub fn accepts_imported_versions(&self) -> Result<()> {
        self.in_service()?;
        if !self.imported {
            return Err(Error::ImportVersionNotImported);
        }
        if self.convergent {
            return Err(Error::ImportConvergent);
        }
        Ok(())
    }

    fn check_import_version(&self, key: &ImportedKey) -> Result<()> {
        self.accepts_imported_versions()?;
        if key.key_type != self.key_type {
            return Err(Error::ImportTypeChanged);
        }
        Ok(())
    }

    /// Put the private half `key` into public-only version `number`.
    fn complete_version(&mut self, number: u32, key: &ImportedKey) -> Result<()> {
        let existing = self.version(number).ok_or(Error::NoSuchKeyVersion)?;
        let material = key.material(self.derived)?;
        if material.public_key() != existing.material.public_key() {
            return Err(Error::KeyPairMismatch);
        }
        let version = KeyVersion::assemble(
            number,
            existing.created,
            material,
            Some(existing.hmac_key.duplicate()),
            self.convergent,
        )?;
        self.versions.insert(number, std::sync::Arc::new(version));
        Ok(())
    }

    fn add_imported(&mut self, key: &ImportedKey, now: OffsetDateTime) -> Result<u32> {
        let material = key.material(self.derived)?;
        let number = self
            .latest_version
            .checked_add(1)
            .ok_or(Error::TooManyVersions)?;
        if let Material::Hmac(key) = &material {
            // As OpenBao: an HMAC keyring's size is its latest key's.
            self.key_size = key.len() as u32;
        }
        let version = KeyVersion::assemble(number, now, material, None, self.convergent)?;
        self.versions.insert(number, std::sync::Arc::new(version));
        self.latest_version = number;
        Ok(number)
    }

    /// `byok-export/:destination/:source[/:version]`: each version of this
    /// (exportable) key, or `version` only, wrapped for the latest version
    /// of `destination`, which must be an RSA key.
    pub fn byok_export(
        &self,
        destination: &Keyring,
        hash: OaepHash,
        version: Option<u32>,
    ) -> Result<BTreeMap<u32, String>> {
        destination.in_service()?;
        if !self.exportable {
            return Err(Error::ByokNotExportable);
        }
        self.in_service()?;
        // Usually another server's wrapping key, imported by its public half.
        let spki_der = match destination
            .version(destination.latest_version)
            .and_then(|v| v.material.public_key())
        {
            Some(PublicKey::Rsa { spki_der }) => spki_der,
            _ => return Err(Error::ByokDestinationNotRsa(destination.key_type)),
        };
        if !importable(self.key_type) {
            return Err(Error::ByokExportTypeNotSupported(self.key_type));
        }
        let versions: Vec<&KeyVersion> = match version {
            Some(n) if n < self.min_decryption_version => {
                return Err(Error::ExportVersionBelowMinimum);
            }
            Some(n) => vec![self.version(n).ok_or(Error::ExportVersionMissing)?],
            None => self.versions.values().map(|v| &**v).collect(),
        };
        versions
            .into_iter()
            .map(|v| {
                let material = match v.material() {
                    Material::Aead { key, .. } | Material::Hmac(key) => {
                        Zeroizing::new(key.expose().to_vec())
                    }
                    Material::Signing(key) => private_pkcs8(key)?,
                    Material::Public(_) => return Err(Error::PrivateKeyMissing),
                };
                Ok((v.number(), wrap(&spki_der, hash, &material)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CreateOptions, CryptoParams, HashAlgorithm, SignOptions};
    use std::sync::OnceLock;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_471_584).unwrap()
    }

    /// One RSA-4096 key for every test (generation takes a second).
    fn wrapping() -> &'static WrappingKey {
        static KEY: OnceLock<WrappingKey> = OnceLock::new();
        KEY.get_or_init(|| WrappingKey::generate().unwrap())
    }

    fn wrapping_spki() -> Vec<u8> {
        pem_der(wrapping().public_pem()).unwrap()
    }

    fn exportable(t: KeyType) -> Keyring {
        let opts = CreateOptions {
            exportable: true,
            ..Default::default()
        };
        Keyring::create("src", t, &opts, now()).unwrap()
    }

    /// A wrapping key of the destination's own: an RSA-4096 keyring.
    fn destination() -> Keyring {
        let key = ImportedKey {
            key_type: KeyType::Rsa4096,
            half: Half::Private(wrapping().pkcs8().duplicate()),
        };
        let mut ring = Keyring::import("dst", &key, &ImportOptions::default(), now()).unwrap();
        ring.imported = false;
        ring
    }

    #[test]
    fn every_importable_type_round_trips_through_byok_export_and_import() {
        let dst = destination();
        for t in KeyType::ALL.into_iter().filter(|&t| importable(t)) {
            let src = exportable(t);
            let wrapped = src.byok_export(&dst, OaepHash::Sha256, None).unwrap();
            assert_eq!(wrapped.len(), 1, "{t}");
            let key = wrapping()
                .unwrap_key(&wrapped[&1], OaepHash::Sha256, t)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
            let imported = Keyring::import("imp", &key, &ImportOptions::default(), now()).unwrap();
            assert!(imported.imported());
            let p = CryptoParams::default();
            if t.supports_encryption() && !t.is_rsa() {
                let sealed = src.encrypt(b"data", &p).unwrap();
                assert_eq!(&imported.decrypt(&sealed.text, &p).unwrap()[..], b"data");
            } else if t.supports_signing() {
                let sig = src.sign(b"data", None, 0, &SignOptions::default()).unwrap();
                assert!(
                    imported
                        .verify(b"data", &sig.text, None, &SignOptions::default())
                        .unwrap(),
                    "{t}"
                );
            } else {
                let a = src.hmac(b"data", HashAlgorithm::Sha2_256, 0).unwrap();
                let b = imported.hmac(b"data", HashAlgorithm::Sha2_256, 0).unwrap();
                assert_eq!(a.text, b.text);
            }
        }
    }

    #[test]
    fn every_hash_wraps_and_a_wrong_hash_gives_the_one_error() {
        let key = [7u8; 32];
        for hash in [
            OaepHash::Sha1,
            OaepHash::Sha256,
            OaepHash::Sha384,
            OaepHash::Sha512,
        ] {
            let wrapped = wrap(&wrapping_spki(), hash, &key).unwrap();
            wrapping()
                .unwrap_key(&wrapped, hash, KeyType::Aes256Gcm96)
                .unwrap();
            let other = if hash == OaepHash::Sha1 {
                OaepHash::Sha512
            } else {
                OaepHash::Sha1
            };
            assert_eq!(
                wrapping()
                    .unwrap_key(&wrapped, other, KeyType::Aes256Gcm96)
                    .unwrap_err(),
                Error::ImportUnwrapFailed
            );
        }
        assert_eq!("sha256".parse::<OaepHash>().unwrap(), OaepHash::Sha256);
        assert_eq!(
            "SHA224".parse::<OaepHash>().unwrap_err(),
            Error::OaepHashNotSupported
        );
        assert!(matches!(
            "MD5".parse::<OaepHash>().unwrap_err(),
            Error::UnknownOaepHash(_)
        ));
    }

    #[test]
    fn malformed_input_gives_the_one_error() {
        let good = wrap(&wrapping_spki(), OaepHash::Sha256, &[1u8; 32]).unwrap();
        let raw = STANDARD.decode(&good).unwrap();
        let mut flipped_oaep = raw.clone();
        flipped_oaep[10] ^= 1;
        let mut flipped_kwp = raw.clone();
        *flipped_kwp.last_mut().unwrap() ^= 1;
        let short_key = wrap(&wrapping_spki(), OaepHash::Sha256, &[1u8; 16]).unwrap();
        let not_pkcs8 = wrap(&wrapping_spki(), OaepHash::Sha256, &[1u8; 64]).unwrap();
        let cases: Vec<(String, KeyType)> = vec![
            ("not base64!".into(), KeyType::Aes256Gcm96),
            ("A".repeat(MAX_IMPORT_TEXT_LEN + 4), KeyType::Aes256Gcm96),
            (String::new(), KeyType::Aes256Gcm96),
            (STANDARD.encode(&raw[..512]), KeyType::Aes256Gcm96),
            (STANDARD.encode(&raw[..520]), KeyType::Aes256Gcm96),
            (STANDARD.encode(&flipped_oaep), KeyType::Aes256Gcm96),
            (STANDARD.encode(&flipped_kwp), KeyType::Aes256Gcm96),
            (short_key, KeyType::Aes256Gcm96),
            (good.clone(), KeyType::Aes128Gcm96),
            (good.clone(), KeyType::Ed25519),
            (not_pkcs8, KeyType::EcdsaP256),
            (good, KeyType::Rsa2048),
        ];
        for (text, t) in cases {
            assert_eq!(
                wrapping()
                    .unwrap_key(&text, OaepHash::Sha256, t)
                    .unwrap_err(),
                Error::ImportUnwrapFailed,
                "{t} {text:.40}"
            );
        }
    }

    #[test]
    fn import_rules() {
        let aes = |t: KeyType| ImportedKey {
            key_type: t,
            half: Half::Private(SecretBytes::from_slice(&[3; 32])),
        };
        let material = || aes(KeyType::Aes256Gcm96);
        let t = KeyType::Aes256Gcm96;
        let auto = ImportOptions {
            auto_rotate_period_secs: 7200,
            ..Default::default()
        };
        assert_eq!(
            Keyring::import("k", &material(), &auto, now()).unwrap_err(),
            Error::ImportAutoRotateNeedsRotation
        );
        let mut ring = Keyring::import("k", &material(), &ImportOptions::default(), now()).unwrap();
        assert_eq!(
            ring.rotate(now()).unwrap_err(),
            Error::ImportedKeyNoRotation("k".into())
        );
        assert_eq!(ring.import_version(&material(), now()).unwrap(), 2);
        assert!(ring.imported());
        let mut generated = exportable(t);
        assert_eq!(
            generated.import_version(&material(), now()).unwrap_err(),
            Error::ImportVersionNotImported
        );
        let rotatable = ImportOptions {
            allow_rotation: true,
            ..auto
        };
        // Automatic rotation too: never without allow_rotation, even when a
        // period is configured afterwards.
        let later = now() + time::Duration::days(2);
        let mut fixed =
            Keyring::import("k", &material(), &ImportOptions::default(), now()).unwrap();
        fixed
            .configure(&crate::ConfigChange {
                auto_rotate_period_secs: Some(3600),
                ..Default::default()
            })
            .unwrap();
        assert!(!fixed.rotation_due(later));
        let mut ring = Keyring::import("k", &material(), &rotatable, now()).unwrap();
        assert!(ring.rotation_due(later));
        ring.rotate(now()).unwrap();
        // As OpenBao: once transitd made a version, the key is its own.
        assert!(!ring.imported());
        assert_eq!(
            Keyring::import(
                "k",
                &aes(KeyType::MlDsa44),
                &ImportOptions::default(),
                now()
            )
            .unwrap_err(),
            Error::ImportTypeNotSupported(KeyType::MlDsa44)
        );
        let mut ring = Keyring::import("k", &material(), &ImportOptions::default(), now()).unwrap();
        assert_eq!(
            ring.import_version(&aes(KeyType::ChaCha20Poly1305), now())
                .unwrap_err(),
            Error::ImportTypeChanged
        );
    }

    #[test]
    fn byok_export_refusals() {
        let dst = destination();
        let src =
            Keyring::create("s", KeyType::Aes256Gcm96, &CreateOptions::default(), now()).unwrap();
        assert_eq!(
            src.byok_export(&dst, OaepHash::Sha256, None).unwrap_err(),
            Error::ByokNotExportable
        );
        let src = exportable(KeyType::Aes256Gcm96);
        let not_rsa = exportable(KeyType::EcdsaP256);
        assert_eq!(
            src.byok_export(&not_rsa, OaepHash::Sha256, None)
                .unwrap_err(),
            Error::ByokDestinationNotRsa(KeyType::EcdsaP256)
        );
        assert_eq!(
            src.byok_export(&dst, OaepHash::Sha256, Some(2))
                .unwrap_err(),
            Error::ExportVersionMissing
        );
        assert_eq!(
            exportable(KeyType::MlDsa65)
                .byok_export(&dst, OaepHash::Sha256, None)
                .unwrap_err(),
            Error::ByokExportTypeNotSupported(KeyType::MlDsa65)
        );
    }

    #[test]
    fn a_public_half_verifies_serves_as_destination_and_is_completed_by_its_private_half() {
        let opts = SignOptions::default();
        for t in [KeyType::Rsa2048, KeyType::EcdsaP256, KeyType::Ed25519] {
            let src = exportable(t);
            let pem = src.version_infos(None).unwrap()[0]
                .public_key
                .clone()
                .unwrap();
            let pem = if t == KeyType::Ed25519 {
                // Key reads show Ed25519 keys raw; `public_key` takes PEM.
                let raw: [u8; 32] = STANDARD.decode(&pem).unwrap().try_into().unwrap();
                PublicKey::Ed25519(raw).to_pem().unwrap()
            } else {
                pem
            };
            let public = ImportedKey::public(t, false, &pem).unwrap();
            let mut ring =
                Keyring::import("pub", &public, &ImportOptions::default(), now()).unwrap();
            let sig = src.sign(b"m", None, 0, &opts).unwrap();
            assert!(ring.verify(b"m", &sig.text, None, &opts).unwrap(), "{t}");
            assert_eq!(
                ring.sign(b"m", None, 0, &opts).unwrap_err(),
                Error::SignPrivateMissing
            );
            // Stored and read back as public-only.
            let back = Keyring::from_stored_bytes(&ring.to_stored_bytes().unwrap()).unwrap();
            assert_eq!(
                back.sign(b"m", None, 0, &opts).unwrap_err(),
                Error::SignPrivateMissing
            );
            assert!(back.verify(b"m", &sig.text, None, &opts).unwrap());
            assert_eq!(
                ring.import_private_for_version(1, &public).unwrap_err(),
                Error::PublicKeyAlreadySet
            );
            // Another key's private half does not complete it: a new version.
            let other = private_of(&exportable(t));
            assert_eq!(
                ring.import_private_for_version(1, &other).unwrap_err(),
                Error::KeyPairMismatch
            );
            // Its own does, in place.
            let own = private_of(&src);
            assert_eq!(ring.import_version(&own, now()).unwrap(), 1);
            ring.sign(b"m", None, 1, &opts).unwrap();
            assert_eq!(
                ring.import_private_for_version(1, &own).unwrap_err(),
                Error::VersionHasPrivateKey
            );
            assert_eq!(
                ring.import_private_for_version(7, &own).unwrap_err(),
                Error::NoSuchKeyVersion
            );
        }
        assert_eq!(
            ImportedKey::public(KeyType::Aes256Gcm96, false, "x").unwrap_err(),
            Error::PublicImportNotSupported
        );
        assert_eq!(
            ImportedKey::public(KeyType::Ed25519, true, "x").unwrap_err(),
            Error::PublicImportDerived
        );
        assert_eq!(
            ImportedKey::public(KeyType::Rsa2048, false, "not pem").unwrap_err(),
            Error::InvalidPublicKey("not in PEM format")
        );
        // The wrapping key's PEM is RSA-4096: not a 2048-bit key, not ECDSA.
        assert!(ImportedKey::public(KeyType::Rsa2048, false, wrapping().public_pem()).is_err());
        assert!(ImportedKey::public(KeyType::EcdsaP256, false, wrapping().public_pem()).is_err());
        // As a BYOK destination: what is wrapped for it unwraps with the private key.
        let dst_public =
            ImportedKey::public(KeyType::Rsa4096, false, wrapping().public_pem()).unwrap();
        let dst = Keyring::import("dst", &dst_public, &ImportOptions::default(), now()).unwrap();
        let src = exportable(KeyType::Aes256Gcm96);
        let wrapped = src.byok_export(&dst, OaepHash::Sha512, Some(1)).unwrap();
        wrapping()
            .unwrap_key(&wrapped[&1], OaepHash::Sha512, KeyType::Aes256Gcm96)
            .unwrap();
        // A public-only source has nothing to export.
        let mut public_src = dst.clone();
        public_src.exportable = true;
        assert_eq!(
            public_src
                .byok_export(&dst, OaepHash::Sha256, None)
                .unwrap_err(),
            Error::PrivateKeyMissing
        );
    }

    /// The private half of `ring`'s version 1, as an import would carry it.
    fn private_of(ring: &Keyring) -> ImportedKey {
        let Material::Signing(key) = ring.version(1).unwrap().material() else {
            panic!("not a signing key")
        };
        ImportedKey {
            key_type: ring.key_type(),
            half: Half::Private(SecretBytes::from_slice(&private_pkcs8(key).unwrap())),
        }
    }
}
