//! The AEAD ciphers of the transit key types, laid out as OpenBao lays them out:
//! `nonce || ciphertext || tag`.
//!
//! ring serves AES-GCM and ChaCha20-Poly1305; RustCrypto serves XChaCha20-Poly1305
//! (ring has no 24-byte-nonce cipher). `rust_crypto` runs the same layout on
//! RustCrypto's AES-GCM and ChaCha20-Poly1305 as an independent second
//! implementation for the differential tests and fuzz target.

use core::fmt;

use chacha20poly1305::aead as aead_rc;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use ring::aead as ra;

use crate::error::{Error, Result};
use crate::key_type::KeyType;
use crate::secret::{SecretVec, fill_nonce};

pub const TAG_LEN: usize = 16;

/// A ready-to-use AEAD key (its schedule computed once, at load).
// Versions live behind `Arc`, so the inline size of the ring variant costs nothing;
// keeping it unboxed saves a pointer chase on every encryption.
#[allow(clippy::large_enum_variant)]
pub enum AeadKey {
    Ring(ra::LessSafeKey),
    XChaCha(Box<chacha20poly1305::XChaCha20Poly1305>),
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey([REDACTED])")
    }
}

/// Nonce length per AEAD type.
pub fn nonce_len(key_type: KeyType) -> usize {
    if key_type == KeyType::XChaCha20Poly1305 {
        24
    } else {
        12
    }
}

impl AeadKey {
    pub fn new(key_type: KeyType, key: &[u8]) -> Result<Self> {
        let ring_alg = match key_type {
            KeyType::Aes128Gcm96 => &ra::AES_128_GCM,
            KeyType::Aes256Gcm96 => &ra::AES_256_GCM,
            KeyType::ChaCha20Poly1305 => &ra::CHACHA20_POLY1305,
            KeyType::XChaCha20Poly1305 => {
                let cipher = chacha20poly1305::XChaCha20Poly1305::new_from_slice(key)
                    .map_err(|_| Error::CorruptKeyring("xchacha20 key length"))?;
                return Ok(Self::XChaCha(Box::new(cipher)));
            }
            _ => return Err(Error::EncryptionNotSupported(key_type)),
        };
        let unbound = ra::UnboundKey::new(ring_alg, key)
            .map_err(|_| Error::CorruptKeyring("AEAD key length"))?;
        Ok(Self::Ring(ra::LessSafeKey::new(unbound)))
    }

    fn nonce_len(&self) -> usize {
        match self {
            Self::Ring(_) => 12,
            Self::XChaCha(_) => 24,
        }
    }

    /// Encrypt under a fresh random nonce.
    pub fn seal_random(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; 24];
        let nonce = &mut nonce[..self.nonce_len()];
        fill_nonce(nonce);
        self.seal(nonce, aad, plaintext)
    }

    /// Encrypt under the given nonce (random, or derived for convergent keys).
    pub fn seal(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        if nonce.len() != self.nonce_len() {
            return Err(Error::Crypto);
        }
        let mut out = Vec::with_capacity(nonce.len() + plaintext.len() + TAG_LEN);
        out.extend_from_slice(nonce);
        out.extend_from_slice(plaintext);
        let body = &mut out[nonce.len()..];
        let tag: [u8; TAG_LEN] = match self {
            Self::Ring(key) => {
                let n = ra::Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Crypto)?;
                let tag = key
                    .seal_in_place_separate_tag(n, ra::Aad::from(aad), body)
                    .map_err(|_| Error::Crypto)?;
                tag.as_ref().try_into().map_err(|_| Error::Crypto)?
            }
            Self::XChaCha(cipher) => rc_seal(cipher.as_ref(), nonce, aad, body)?,
        };
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Decrypt `nonce || ciphertext || tag`. Every failure is the same opaque error.
    pub fn open(&self, payload: &[u8], aad: &[u8]) -> Result<SecretVec> {
        let nonce_len = self.nonce_len();
        if payload.len() < nonce_len + TAG_LEN {
            return Err(Error::CiphertextLength);
        }
        let (nonce, sealed) = payload.split_at(nonce_len);
        let mut buf = SecretVec::new(sealed.to_vec());
        match self {
            Self::Ring(key) => {
                let n = ra::Nonce::try_assume_unique_for_key(nonce)
                    .map_err(|_| Error::DecryptionFailed)?;
                let len = key
                    .open_in_place(n, ra::Aad::from(aad), &mut buf)
                    .map_err(|_| Error::DecryptionFailed)?
                    .len();
                buf.truncate(len);
            }
            Self::XChaCha(cipher) => {
                let len = rc_open(cipher.as_ref(), nonce, aad, &mut buf)?;
                buf.truncate(len);
            }
        }
        Ok(buf)
    }
}

fn rc_seal<C: AeadInOut>(
    cipher: &C,
    nonce: &[u8],
    aad: &[u8],
    body: &mut [u8],
) -> Result<[u8; TAG_LEN]> {
    let nonce = aead_rc::Nonce::<C>::try_from(nonce).map_err(|_| Error::Crypto)?;
    let tag = cipher
        .encrypt_inout_detached(&nonce, aad, body.into())
        .map_err(|_| Error::Crypto)?;
    tag.as_slice().try_into().map_err(|_| Error::Crypto)
}

/// Decrypts in place; returns the plaintext length.
fn rc_open<C: AeadInOut>(cipher: &C, nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<usize> {
    let nonce = aead_rc::Nonce::<C>::try_from(nonce).map_err(|_| Error::DecryptionFailed)?;
    let split = buf
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(Error::CiphertextLength)?;
    let (body, tag) = buf.split_at_mut(split);
    let tag = aead_rc::Tag::<C>::try_from(&*tag).map_err(|_| Error::DecryptionFailed)?;
    cipher
        .decrypt_inout_detached(&nonce, aad, body.into(), &tag)
        .map_err(|_| Error::DecryptionFailed)?;
    Ok(split)
}

/// RustCrypto's AES-GCM and ChaCha20-Poly1305 in the same layout, used only to
/// cross-check ring.
pub mod rust_crypto {
    use super::*;

    pub fn seal(
        key_type: KeyType,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        pt: &[u8],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(nonce.len() + pt.len() + TAG_LEN);
        out.extend_from_slice(nonce);
        out.extend_from_slice(pt);
        let body = &mut out[nonce.len()..];
        let tag = match key_type {
            KeyType::Aes128Gcm96 => rc_seal(&new::<aes_gcm::Aes128Gcm>(key)?, nonce, aad, body)?,
            KeyType::Aes256Gcm96 => rc_seal(&new::<aes_gcm::Aes256Gcm>(key)?, nonce, aad, body)?,
            KeyType::ChaCha20Poly1305 => rc_seal(
                &new::<chacha20poly1305::ChaCha20Poly1305>(key)?,
                nonce,
                aad,
                body,
            )?,
            KeyType::XChaCha20Poly1305 => rc_seal(
                &new::<chacha20poly1305::XChaCha20Poly1305>(key)?,
                nonce,
                aad,
                body,
            )?,
            other => return Err(Error::EncryptionNotSupported(other)),
        };
        out.extend_from_slice(&tag);
        Ok(out)
    }

    pub fn open(key_type: KeyType, key: &[u8], payload: &[u8], aad: &[u8]) -> Result<SecretVec> {
        let nonce_len = nonce_len(key_type);
        if payload.len() < nonce_len + TAG_LEN {
            return Err(Error::CiphertextLength);
        }
        let (nonce, sealed) = payload.split_at(nonce_len);
        let mut buf = SecretVec::new(sealed.to_vec());
        let len = match key_type {
            KeyType::Aes128Gcm96 => {
                rc_open(&new::<aes_gcm::Aes128Gcm>(key)?, nonce, aad, &mut buf)?
            }
            KeyType::Aes256Gcm96 => {
                rc_open(&new::<aes_gcm::Aes256Gcm>(key)?, nonce, aad, &mut buf)?
            }
            KeyType::ChaCha20Poly1305 => rc_open(
                &new::<chacha20poly1305::ChaCha20Poly1305>(key)?,
                nonce,
                aad,
                &mut buf,
            )?,
            KeyType::XChaCha20Poly1305 => rc_open(
                &new::<chacha20poly1305::XChaCha20Poly1305>(key)?,
                nonce,
                aad,
                &mut buf,
            )?,
            other => return Err(Error::DecryptionNotSupported(other)),
        };
        buf.truncate(len);
        Ok(buf)
    }

    fn new<C: KeyInit>(key: &[u8]) -> Result<C> {
        C::new_from_slice(key).map_err(|_| Error::Crypto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_every_type() {
        for t in [
            KeyType::Aes128Gcm96,
            KeyType::Aes256Gcm96,
            KeyType::ChaCha20Poly1305,
            KeyType::XChaCha20Poly1305,
        ] {
            let key = vec![7u8; t.symmetric_key_len().unwrap()];
            let k = AeadKey::new(t, &key).unwrap();
            let ct = k.seal_random(b"aad", b"hello world").unwrap();
            assert_eq!(ct.len(), nonce_len(t) + 11 + TAG_LEN);
            assert_eq!(&k.open(&ct, b"aad").unwrap()[..], b"hello world");
            assert_eq!(k.open(&ct, b"other").unwrap_err(), Error::DecryptionFailed);
            let mut bad = ct.clone();
            *bad.last_mut().unwrap() ^= 1;
            assert_eq!(k.open(&bad, b"aad").unwrap_err(), Error::DecryptionFailed);
            assert_eq!(
                k.open(&ct[..nonce_len(t) + 15], b"aad").unwrap_err(),
                Error::CiphertextLength
            );
            // The second implementation agrees both ways.
            assert_eq!(
                &rust_crypto::open(t, &key, &ct, b"aad").unwrap()[..],
                b"hello world"
            );
            let nonce = &ct[..nonce_len(t)];
            assert_eq!(
                rust_crypto::seal(t, &key, nonce, b"aad", b"hello world").unwrap(),
                ct
            );
        }
    }
}
