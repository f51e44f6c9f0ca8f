//! One version of a key: its material, ready to use, and its per-version HMAC key.

use core::fmt;

use time::OffsetDateTime;

use crate::aead::AeadKey;
use crate::error::{Error, Result};
use crate::key_type::KeyType;
use crate::secret::{SecretBytes, redacted_debug};

redacted_debug!(Material);
use crate::sign::{PublicKey, SigningKey};

/// The secret of a version, by family of key type.
pub enum Material {
    /// An AEAD key. `cipher` is absent for derived keyrings, whose base key is
    /// only ever used as derivation input.
    Aead {
        key: SecretBytes,
        cipher: Option<AeadKey>,
    },
    /// The key of an `hmac` keyring (also its HMAC key).
    Hmac(SecretBytes),
    Signing(SigningKey),
    /// Only the public half of a signing key (imported with `public_key`):
    /// verifies, never signs or decrypts, until its private half is imported.
    Public(PublicKey),
}

pub struct KeyVersion {
    pub(crate) number: u32,
    pub(crate) created: OffsetDateTime,
    pub(crate) material: Material,
    /// Every version of every type carries an independent HMAC key (for `hmac`
    /// keyrings it is the key itself).
    pub(crate) hmac_key: SecretBytes,
    /// `hmac_key` prepared for HMAC-SHA256, the default algorithm (saves the key
    /// setup on every request).
    pub(crate) hmac_sha256: ring::hmac::Key,
    /// 3 for versions of convergent keyrings, else 0.
    pub(crate) convergent_version: u32,
}

impl fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVersion")
            .field("number", &self.number)
            .field("created", &self.created)
            .field("convergent_version", &self.convergent_version)
            .finish_non_exhaustive()
    }
}

impl KeyVersion {
    /// Fresh random material for `key_type`.
    pub(crate) fn generate(
        key_type: KeyType,
        number: u32,
        created: OffsetDateTime,
        derived: bool,
        convergent: bool,
        hmac_key_size: usize,
    ) -> Result<Self> {
        let material = match key_type {
            t if t.is_aead() => {
                let len = t.symmetric_key_len().ok_or(Error::Crypto)?;
                Material::aead(t, SecretBytes::random(len)?, derived)?
            }
            KeyType::Hmac => Material::Hmac(SecretBytes::random(hmac_key_size)?),
            t => Material::Signing(SigningKey::generate(t)?),
        };
        Self::assemble(number, created, material, None, convergent)
    }

    /// Put a version together; `hmac_key` is generated when not given.
    pub(crate) fn assemble(
        number: u32,
        created: OffsetDateTime,
        material: Material,
        hmac_key: Option<SecretBytes>,
        convergent: bool,
    ) -> Result<Self> {
        let hmac_key = match (&material, hmac_key) {
            (Material::Hmac(key), _) => key.duplicate(),
            (_, Some(k)) => k,
            (_, None) => SecretBytes::random(32)?,
        };
        let hmac_sha256 = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, hmac_key.expose());
        Ok(Self {
            number,
            created,
            material,
            hmac_key,
            hmac_sha256,
            convergent_version: if convergent { 3 } else { 0 },
        })
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    pub fn created(&self) -> OffsetDateTime {
        self.created
    }

    pub fn material(&self) -> &Material {
        &self.material
    }

    /// The bytes that identify this version's key material, borrowed (never
    /// copied): the secret key, or the public key of a public-only version.
    /// The server counts encryptions per material by an HMAC of these, so a
    /// copy of the key under another name shares one count.
    pub fn material_for_fingerprint(&self) -> &[u8] {
        match &self.material {
            Material::Aead { key, .. } | Material::Hmac(key) => key.expose(),
            Material::Signing(key) => key.private_bytes().expose(),
            Material::Public(key) => key.raw_bytes(),
        }
    }

    pub fn hmac_key(&self) -> &SecretBytes {
        &self.hmac_key
    }

    pub fn convergent_version(&self) -> u32 {
        self.convergent_version
    }
}

impl Material {
    pub(crate) fn aead(key_type: KeyType, key: SecretBytes, derived: bool) -> Result<Self> {
        if Some(key.len()) != key_type.symmetric_key_len() {
            return Err(Error::CorruptKeyring(
                "symmetric key length does not match its type",
            ));
        }
        let cipher = if derived {
            None
        } else {
            Some(AeadKey::new(key_type, key.expose())?)
        };
        Ok(Self::Aead { key, cipher })
    }

    /// The key bytes as OpenBao keeps them in `key` (Ed25519: seed || public key),
    /// for derivation, export and backup. `None` for ECDSA, RSA.
    pub(crate) fn openbao_key_bytes(&self) -> Option<SecretBytes> {
        match self {
            Self::Aead { key, .. } | Self::Hmac(key) => Some(key.duplicate()),
            Self::Signing(SigningKey::Ed25519(k)) => {
                let mut bytes = Vec::with_capacity(64);
                bytes.extend_from_slice(k.seed().expose());
                bytes.extend_from_slice(&k.public_key());
                Some(SecretBytes::new(bytes))
            }
            Self::Signing(k @ SigningKey::MlDsa(_)) => Some(k.private_bytes().duplicate()),
            Self::Signing(_) | Self::Public(_) => None,
        }
    }

    /// The private bytes our own storage format keeps; `None` for a
    /// public-only version.
    pub(crate) fn private_bytes(&self) -> Option<&SecretBytes> {
        match self {
            Self::Aead { key, .. } | Self::Hmac(key) => Some(key),
            Self::Signing(k) => Some(k.private_bytes()),
            Self::Public(_) => None,
        }
    }

    /// The public key of a signing version (complete or public-only).
    pub(crate) fn public_key(&self) -> Option<PublicKey> {
        match self {
            Self::Signing(k) => Some(k.public_key()),
            Self::Public(public) => Some(public.clone()),
            Self::Aead { .. } | Self::Hmac(_) => None,
        }
    }

    pub(crate) fn from_private_bytes(
        key_type: KeyType,
        bytes: SecretBytes,
        derived: bool,
    ) -> Result<Self> {
        match key_type {
            t if t.is_aead() => Self::aead(t, bytes, derived),
            KeyType::Hmac => {
                if !(32..=512).contains(&bytes.len()) {
                    return Err(Error::CorruptKeyring("hmac key length"));
                }
                Ok(Self::Hmac(bytes))
            }
            t => Ok(Self::Signing(SigningKey::from_private_bytes(t, bytes)?)),
        }
    }
}
