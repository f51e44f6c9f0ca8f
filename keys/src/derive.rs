//! Per-context key derivation and convergent nonces, as the transit engine does them.
//!
//! * `Hkdf` (kdf 1, every derived key created since Vault 0.8): HKDF-SHA256 with
//!   the version key as IKM, no salt and the context as info.
//! * `CounterHmacSha256` (kdf 0, legacy): one round of the SP 800-108 counter-mode
//!   PRF, HMAC-SHA256(key, BE32(0) || context || BE32(256)), 32 bytes. Kept only
//!   so keys restored from old backups still decrypt.

use ring::hkdf;

use crate::error::{Error, Result};
use crate::secret::{SecretBytes, redacted_debug};

redacted_debug!(ConvergentKeys);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kdf {
    CounterHmacSha256,
    Hkdf,
}

impl Kdf {
    pub fn code(self) -> u32 {
        match self {
            Self::CounterHmacSha256 => 0,
            Self::Hkdf => 1,
        }
    }

    pub fn from_code(code: u64) -> Option<Self> {
        match code {
            0 => Some(Self::CounterHmacSha256),
            1 => Some(Self::Hkdf),
            _ => None,
        }
    }

    /// The name shown in a key read.
    pub fn name(self) -> &'static str {
        match self {
            Self::CounterHmacSha256 => "hmac-sha256-counter",
            Self::Hkdf => "hkdf_sha256",
        }
    }
}

struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// `len` bytes of key derived from `key` for `context`.
pub fn derive(kdf: Kdf, key: &[u8], context: &[u8], len: usize) -> Result<SecretBytes> {
    if context.is_empty() {
        return Err(Error::MissingContext);
    }
    match kdf {
        Kdf::Hkdf => {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &[]).extract(key);
            let info = [context];
            let okm = prk.expand(&info, OutLen(len)).map_err(|_| Error::Crypto)?;
            let mut out = vec![0u8; len];
            okm.fill(&mut out).map_err(|_| Error::Crypto)?;
            Ok(SecretBytes::new(out))
        }
        Kdf::CounterHmacSha256 => {
            let out = counter_mode(key, context);
            // The legacy PRF yields 32 bytes; a longer request cannot be met.
            if len > out.len() {
                return Err(Error::CorruptKeyring(
                    "legacy kdf cannot derive a key this long",
                ));
            }
            Ok(SecretBytes::from_slice(&out[..len]))
        }
    }
}

fn counter_mode(key: &[u8], context: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut input = Vec::with_capacity(context.len() + 8);
    input.extend_from_slice(&0u32.to_be_bytes());
    input.extend_from_slice(context);
    input.extend_from_slice(&256u32.to_be_bytes());
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), &input);
    zeroize::Zeroizing::new(tag.as_ref().to_vec())
}

/// Convergent encryption, version 3: the derived key is `enc_len + 32` bytes, split
/// into an encryption key and an HMAC key that turns the plaintext into the nonce.
pub struct ConvergentKeys {
    pub encryption_key: SecretBytes,
    hmac_key: SecretBytes,
}

impl ConvergentKeys {
    pub fn derive(kdf: Kdf, key: &[u8], context: &[u8], enc_len: usize) -> Result<Self> {
        let all = derive(kdf, key, context, enc_len + 32)?;
        let (enc, mac) = all.expose().split_at(enc_len);
        Ok(Self {
            encryption_key: SecretBytes::from_slice(enc),
            hmac_key: SecretBytes::from_slice(mac),
        })
    }

    /// The nonce for `plaintext` (and `aad`, when given).
    ///
    /// Without associated data this is OpenBao's nonce, byte for byte:
    /// HMAC-SHA256(hmac_key, plaintext) truncated. OpenBao leaves the associated
    /// data out, so one plaintext under two AADs reuses a nonce; we bind the AAD in
    /// (length-prefixed, under a distinct label) so that cannot happen. The nonce
    /// travels in the ciphertext, so OpenBao still decrypts what we produce.
    pub fn nonce(&self, plaintext: &[u8], aad: &[u8], nonce_len: usize) -> Vec<u8> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.hmac_key.expose());
        let tag = if aad.is_empty() {
            ring::hmac::sign(&key, plaintext)
        } else {
            let mut ctx = ring::hmac::Context::with_key(&key);
            ctx.update(b"transitd convergent nonce with associated data\0");
            ctx.update(&(aad.len() as u64).to_be_bytes());
            ctx.update(aad);
            ctx.update(plaintext);
            ctx.sign()
        };
        tag.as_ref()[..nonce_len].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_is_a_stream() {
        // Decryption asks for fewer bytes than convergent encryption; both must agree.
        let short = derive(Kdf::Hkdf, b"k", b"ctx", 32).unwrap();
        let long = derive(Kdf::Hkdf, b"k", b"ctx", 64).unwrap();
        assert_eq!(short.expose(), &long.expose()[..32]);
        assert_ne!(
            short.expose(),
            derive(Kdf::Hkdf, b"k", b"ctx2", 32).unwrap().expose()
        );
        assert_eq!(
            derive(Kdf::Hkdf, b"k", b"", 32).unwrap_err(),
            Error::MissingContext
        );
    }

    #[test]
    fn aad_changes_the_convergent_nonce() {
        let keys = ConvergentKeys::derive(Kdf::Hkdf, &[1u8; 32], b"ctx", 32).unwrap();
        let plain = keys.nonce(b"pt", b"", 12);
        assert_eq!(plain, keys.nonce(b"pt", b"", 12));
        assert_ne!(plain, keys.nonce(b"pt", b"a", 12));
        assert_ne!(keys.nonce(b"pt", b"a", 12), keys.nonce(b"pt", b"b", 12));
    }
}
