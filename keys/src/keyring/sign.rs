//! Signatures with a keyring: sign and verify with a version's signing key,
//! or with the Ed25519 key derived from a context.

use super::{Keyring, Signature};
use crate::derive::derive;
use crate::envelope::{self, ParseError};
use crate::error::{Error, Result};
use crate::sign::{Ed25519Key, Marshaling, PublicKey, SignOptions, SigningKey};
use crate::version::{KeyVersion, Material};

impl Keyring {
    pub(super) fn derived_ed25519(
        &self,
        version: &KeyVersion,
        context: &[u8],
    ) -> Result<Ed25519Key> {
        let base = version.material.openbao_key_bytes().ok_or(Error::Crypto)?;
        let seed = derive(self.kdf, base.expose(), context, 32)?;
        Ed25519Key::from_seed(seed)
    }

    fn signing_key<'v>(&self, version: &'v KeyVersion) -> Result<&'v SigningKey> {
        match &version.material {
            Material::Signing(k) => Ok(k),
            Material::Public(_) => Err(Error::SignPrivateMissing),
            _ => Err(Error::SigningNotSupported(self.key_type)),
        }
    }

    pub fn sign(
        &self,
        input: &[u8],
        context: Option<&[u8]>,
        key_version: i64,
        opts: &SignOptions,
    ) -> Result<Signature> {
        self.in_service()?;
        if !self.key_type.supports_signing() {
            return Err(Error::SigningNotSupported(self.key_type));
        }
        let n = match key_version {
            0 => self.latest_version,
            n if n > i64::from(self.latest_version) => return Err(Error::SignVersionTooHigh),
            n if n < 0
                || (self.min_encryption_version > 0
                    && n < i64::from(self.min_encryption_version)) =>
            {
                return Err(Error::SignVersionTooOld);
            }
            n => n as u32,
        };
        let version = self.usable_version(n)?;
        let key = self.signing_key(version)?;
        let (raw, public_key) = if self.derived {
            let ctx = context
                .filter(|c| !c.is_empty())
                .ok_or(Error::MissingContext)?;
            let derived = self.derived_ed25519(version, ctx)?;
            let derived = SigningKey::Ed25519(derived);
            let raw = derived.sign(input, opts)?;
            let PublicKey::Ed25519(public) = derived.public_key() else {
                return Err(Error::Crypto);
            };
            (raw, Some(public))
        } else {
            (key.sign(input, opts)?, None)
        };
        let text = match opts.marshaling {
            Marshaling::Asn1 => envelope::encode(n, &raw),
            Marshaling::Jws => envelope::encode_url_safe(n, &raw),
        };
        Ok(Signature {
            text,
            key_version: n,
            public_key,
        })
    }

    pub fn verify(
        &self,
        input: &[u8],
        signature: &str,
        context: Option<&[u8]>,
        opts: &SignOptions,
    ) -> Result<bool> {
        self.in_service()?;
        if !self.key_type.supports_signing() {
            return Err(Error::SigningNotSupported(self.key_type));
        }
        let parsed = envelope::parse_raw(signature).map_err(|e| match e {
            ParseError::NoPrefix => Error::SignatureNoPrefix,
            ParseError::WrongFields => Error::SignatureWrongFields,
            ParseError::BadVersion => Error::SignatureBadVersion,
        })?;
        let version = self.checked_version(
            parsed.version,
            Error::SignatureVersionTooNew,
            Error::VersionTooOld,
        )?;
        let raw = match opts.marshaling {
            Marshaling::Asn1 => envelope::decode_standard(parsed.body),
            Marshaling::Jws => envelope::decode_url_safe(parsed.body),
        }
        .ok_or(Error::SignatureBadBase64)?;
        if self.derived {
            self.signing_key(version)?;
            let ctx = context
                .filter(|c| !c.is_empty())
                .ok_or(Error::MissingContext)?;
            return SigningKey::Ed25519(self.derived_ed25519(version, ctx)?)
                .verify(input, &raw, opts);
        }
        // A public-only version verifies too.
        let public = version
            .material
            .public_key()
            .ok_or(Error::SigningNotSupported(self.key_type))?;
        public.verify(input, &raw, opts)
    }
}
