//! Encryption with a keyring: encrypt, decrypt, rewrap and data keys, with
//! the AEAD versions (derived and convergent ones included) and RSA-OAEP.

use super::{CryptoParams, Keyring, Sealed};
use crate::aead::{self, AeadKey};
use crate::derive::{ConvergentKeys, derive};
use crate::envelope::{self, ParseError};
use crate::error::{Error, Result};
use crate::secret::{SecretBytes, SecretVec};
use crate::sign::SigningKey;
use crate::version::{KeyVersion, Material};

impl Keyring {
    fn require_context<'a>(&self, params: &CryptoParams<'a>) -> Result<Option<&'a [u8]>> {
        if !self.derived {
            return Ok(None);
        }
        match params.context {
            Some(ctx) if !ctx.is_empty() => Ok(Some(ctx)),
            _ => Err(Error::MissingContext),
        }
    }

    fn check_aad(&self, params: &CryptoParams<'_>) -> Result<()> {
        match params.associated_data {
            Some(aad) if !aad.is_empty() && !self.key_type.is_aead() => {
                Err(Error::AssociatedDataNotSupported(self.key_type))
            }
            _ => Ok(()),
        }
    }

    pub fn encrypt(&self, plaintext: &[u8], params: &CryptoParams<'_>) -> Result<Sealed> {
        self.in_service()?;
        if !self.key_type.supports_encryption() {
            return Err(Error::EncryptionNotSupported(self.key_type));
        }
        self.check_aad(params)?;
        let context = self.require_context(params)?;
        let version = self.encryption_version(params.key_version)?;
        let payload = self.seal_with(
            version,
            context,
            params.associated_data.unwrap_or_default(),
            plaintext,
        )?;
        Ok(Sealed {
            text: envelope::encode(version.number, &payload),
            key_version: version.number,
        })
    }

    fn seal_with(
        &self,
        version: &KeyVersion,
        context: Option<&[u8]>,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        match &version.material {
            Material::Aead {
                cipher: Some(cipher),
                ..
            } => cipher.seal_random(aad, plaintext),
            Material::Aead { key, cipher: None } => {
                let context = context.ok_or(Error::MissingContext)?;
                let enc_len = key.len();
                let nonce_len = aead::nonce_len(self.key_type);
                if self.convergent {
                    check_convergent_version(version)?;
                    let keys = ConvergentKeys::derive(self.kdf, key.expose(), context, enc_len)?;
                    let cipher = AeadKey::new(self.key_type, keys.encryption_key.expose())?;
                    cipher.seal(&keys.nonce(plaintext, aad, nonce_len), aad, plaintext)
                } else {
                    let derived = derive(self.kdf, key.expose(), context, enc_len)?;
                    AeadKey::new(self.key_type, derived.expose())?.seal_random(aad, plaintext)
                }
            }
            Material::Signing(SigningKey::Rsa(rsa)) => rsa.encrypt(plaintext),
            Material::Public(_) if self.key_type.is_rsa() => Err(Error::PrivateKeyMissing),
            _ => Err(Error::EncryptionNotSupported(self.key_type)),
        }
    }

    pub fn decrypt(&self, ciphertext: &str, params: &CryptoParams<'_>) -> Result<SecretVec> {
        self.in_service()?;
        if !self.key_type.supports_decryption() {
            return Err(Error::DecryptionNotSupported(self.key_type));
        }
        self.check_aad(params)?;
        let context = self.require_context(params)?;
        let parsed = envelope::parse(ciphertext).map_err(|e| match e {
            ParseError::NoPrefix => Error::CiphertextNoPrefix,
            ParseError::WrongFields => Error::CiphertextWrongFields,
            ParseError::BadVersion => Error::CiphertextBadVersion,
        })?;
        let version = self.checked_version(
            parsed.version,
            Error::CiphertextVersionTooNew,
            Error::VersionTooOld,
        )?;
        if self.convergent {
            check_convergent_version(version)?;
        }
        let payload = envelope::decode_standard(parsed.body).ok_or(Error::CiphertextBadBase64)?;
        let aad = params.associated_data.unwrap_or_default();
        match &version.material {
            Material::Aead {
                cipher: Some(cipher),
                ..
            } => cipher.open(&payload, aad),
            Material::Aead { key, cipher: None } => {
                let context = context.ok_or(Error::MissingContext)?;
                let derived = derive(self.kdf, key.expose(), context, key.len())?;
                AeadKey::new(self.key_type, derived.expose())?.open(&payload, aad)
            }
            Material::Signing(SigningKey::Rsa(rsa)) => rsa.decrypt(&payload),
            Material::Public(_) if self.key_type.is_rsa() => Err(Error::PrivateKeyMissing),
            _ => Err(Error::DecryptionNotSupported(self.key_type)),
        }
    }

    /// Decrypt and encrypt again under `params.key_version` (0 = latest), without
    /// the plaintext leaving this call. Unlike OpenBao, associated data is honoured.
    pub fn rewrap(&self, ciphertext: &str, params: &CryptoParams<'_>) -> Result<Sealed> {
        self.in_service()?;
        let plaintext = self.decrypt(
            ciphertext,
            &CryptoParams {
                key_version: 0,
                ..*params
            },
        )?;
        self.encrypt(&plaintext, params)
    }

    /// A fresh random data key of `bits` bits, wrapped under this keyring.
    pub fn datakey(&self, bits: u32, params: &CryptoParams<'_>) -> Result<(SecretVec, Sealed)> {
        self.in_service()?;
        let len = match bits {
            128 | 256 | 512 => bits as usize / 8,
            _ => return Err(Error::InvalidBitLength),
        };
        let key = SecretBytes::random(len)?;
        let sealed = self.encrypt(key.expose(), params)?;
        Ok((SecretVec::new(key.expose().to_vec()), sealed))
    }
}

fn check_convergent_version(version: &KeyVersion) -> Result<()> {
    match version.convergent_version {
        3 => Ok(()),
        n => Err(Error::UnsupportedConvergentVersion(n)),
    }
}
