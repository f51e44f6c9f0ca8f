//! RSA (aws-lc-rs): PSS and PKCS#1 v1.5 signatures, and RSA-OAEP.

use aws_lc_rs::rsa as lc_rsa;
use aws_lc_rs::signature as lc_sig;
use zeroize::Zeroizing;

use super::{RsaScheme, SaltLength, SignOptions};
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::key_type::KeyType;
use crate::secret::SecretBytes;

pub struct RsaKey {
    key_type: KeyType,
    pub(super) pkcs8: SecretBytes,
    pair: lc_rsa::KeyPair,
    decrypting: lc_rsa::OaepPrivateDecryptingKey,
    encrypting: lc_rsa::OaepPublicEncryptingKey,
    pub(super) public_spki_der: Vec<u8>,
}

impl RsaKey {
    pub(crate) fn generate(key_type: KeyType) -> Result<Self> {
        use aws_lc_rs::encoding::AsDer;
        let size = match key_type {
            KeyType::Rsa2048 => lc_rsa::KeySize::Rsa2048,
            KeyType::Rsa3072 => lc_rsa::KeySize::Rsa3072,
            KeyType::Rsa4096 => lc_rsa::KeySize::Rsa4096,
            other => return Err(Error::SigningNotSupported(other)),
        };
        let pair = lc_rsa::KeyPair::generate(size).map_err(|_| Error::Crypto)?;
        let pkcs8 = pair.as_der().map_err(|_| Error::Crypto)?;
        Self::from_pkcs8(key_type, SecretBytes::from_slice(pkcs8.as_ref()))
    }

    pub fn from_pkcs8(key_type: KeyType, pkcs8: SecretBytes) -> Result<Self> {
        use aws_lc_rs::encoding::AsDer;
        let bad = |_| Error::CorruptKeyring("rsa private key");
        let pair = lc_rsa::KeyPair::from_pkcs8(pkcs8.expose()).map_err(bad)?;
        if Some(pair.public_modulus_len() * 8) != key_type.rsa_bits() {
            return Err(Error::CorruptKeyring(
                "rsa key size does not match its type",
            ));
        }
        let private = lc_rsa::PrivateDecryptingKey::from_pkcs8(pkcs8.expose()).map_err(bad)?;
        let public = private.public_key();
        let public_spki_der = public
            .as_der()
            .map_err(|_| Error::Crypto)?
            .as_ref()
            .to_vec();
        let encrypting = lc_rsa::OaepPublicEncryptingKey::new(public).map_err(|_| Error::Crypto)?;
        let decrypting =
            lc_rsa::OaepPrivateDecryptingKey::new(private).map_err(|_| Error::Crypto)?;
        Ok(Self {
            key_type,
            pkcs8,
            pair,
            decrypting,
            encrypting,
            public_spki_der,
        })
    }

    pub fn pkcs8(&self) -> &SecretBytes {
        &self.pkcs8
    }

    pub fn public_spki_der(&self) -> &[u8] {
        &self.public_spki_der
    }

    /// RSA-OAEP with SHA-256 and MGF1-SHA-256, empty label (OpenBao's choice).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let alg = &lc_rsa::OAEP_SHA256_MGF1SHA256;
        if plaintext.len() > self.encrypting.max_plaintext_size(alg) {
            return Err(Error::PlaintextTooLong);
        }
        let mut out = vec![0u8; self.encrypting.ciphertext_size()];
        let len = self
            .encrypting
            .encrypt(alg, plaintext, &mut out, None)
            .map_err(|_| Error::Crypto)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.decrypt_oaep(&lc_rsa::OAEP_SHA256_MGF1SHA256, ciphertext)
    }

    /// RSA-OAEP decryption with `alg` (BYOK's `hash_function`), empty label.
    pub(crate) fn decrypt_oaep(
        &self,
        alg: &'static lc_rsa::OaepAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
        let len = self
            .decrypting
            .decrypt(alg, ciphertext, &mut out, None)
            .map_err(|_| Error::DecryptionFailed)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    pub(super) fn sign(&self, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>> {
        let hash = rsa_hash(opts, self.key_type)?;
        let encoding =
            rsa_signing_encoding(hash, opts, self.key_type, self.pair.public_modulus_len())?;
        let digest_alg = lc_digest(hash);
        let digest = if opts.prehashed {
            aws_lc_rs::digest::Digest::import_less_safe(input, digest_alg)
                .map_err(|_| Error::InvalidPrehashedInput)?
        } else {
            aws_lc_rs::digest::digest(digest_alg, input)
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign_digest(encoding, &digest, &mut sig)
            .map_err(|_| Error::Crypto)?;
        Ok(sig)
    }
}

/// The hashes aws-lc-rs can sign RSA with; anything else is refused with a clear error.
fn rsa_hash(opts: &SignOptions, key_type: KeyType) -> Result<HashAlgorithm> {
    match opts.hash {
        Some(h @ (HashAlgorithm::Sha2_256 | HashAlgorithm::Sha2_384 | HashAlgorithm::Sha2_512)) => {
            Ok(h)
        }
        Some(other) => Err(Error::HashNotSupportedForKey {
            hash: other.name(),
            key_type,
        }),
        None => Err(Error::HashNotSupportedForKey {
            hash: "none",
            key_type,
        }),
    }
}

fn lc_digest(hash: HashAlgorithm) -> &'static aws_lc_rs::digest::Algorithm {
    match hash {
        HashAlgorithm::Sha2_384 => &aws_lc_rs::digest::SHA384,
        HashAlgorithm::Sha2_512 => &aws_lc_rs::digest::SHA512,
        _ => &aws_lc_rs::digest::SHA256,
    }
}

/// The largest PSS salt for a modulus of `modulus_len` bytes and a digest of `hash_len`.
fn max_salt(modulus_len: usize, hash_len: usize) -> usize {
    modulus_len.saturating_sub(hash_len + 2)
}

fn rsa_signing_encoding(
    hash: HashAlgorithm,
    opts: &SignOptions,
    key_type: KeyType,
    modulus_len: usize,
) -> Result<&'static lc_sig::RsaSignatureEncoding> {
    use lc_sig::RsaPssSaltLength::{Digest, Max};
    if opts.rsa_scheme == RsaScheme::Pkcs1v15 {
        return Ok(match hash {
            HashAlgorithm::Sha2_384 => &lc_sig::RSA_PKCS1_SHA384,
            HashAlgorithm::Sha2_512 => &lc_sig::RSA_PKCS1_SHA512,
            _ => &lc_sig::RSA_PKCS1_SHA256,
        });
    }
    let salt = match opts.salt_length {
        SaltLength::Auto => Max,
        SaltLength::Hash => Digest,
        SaltLength::Bytes(n) if usize::from(n) == hash.output_len() => Digest,
        SaltLength::Bytes(n) if usize::from(n) == max_salt(modulus_len, hash.output_len()) => Max,
        SaltLength::Bytes(n) if usize::from(n) > max_salt(modulus_len, hash.output_len()) => {
            return Err(Error::SaltLengthOutOfRange(i64::from(n)));
        }
        SaltLength::Bytes(n) => {
            let _ = key_type;
            return Err(Error::UnsupportedSaltLength(n));
        }
    };
    Ok(match (hash, salt) {
        (HashAlgorithm::Sha2_384, Max) => {
            &const { lc_sig::RSA_PSS_SHA384.with_pss_salt_length(Max) }
        }
        (HashAlgorithm::Sha2_512, Max) => {
            &const { lc_sig::RSA_PSS_SHA512.with_pss_salt_length(Max) }
        }
        (_, Max) => &const { lc_sig::RSA_PSS_SHA256.with_pss_salt_length(Max) },
        (HashAlgorithm::Sha2_384, _) => &lc_sig::RSA_PSS_SHA384,
        (HashAlgorithm::Sha2_512, _) => &lc_sig::RSA_PSS_SHA512,
        (_, _) => &lc_sig::RSA_PSS_SHA256,
    })
}

pub(super) fn rsa_verify(
    spki_der: &[u8],
    input: &[u8],
    sig: &[u8],
    opts: &SignOptions,
) -> Result<bool> {
    use lc_sig::RsaPssSaltLength::{Custom, Digest, Max};
    let pkcs1 = spki_to_pkcs1(spki_der)?;
    let public =
        lc_rsa::PublicKey::from_der(&pkcs1).map_err(|_| Error::CorruptKeyring("rsa public key"))?;
    let key_type = match public.modulus_len() * 8 {
        3072 => KeyType::Rsa3072,
        4096 => KeyType::Rsa4096,
        _ => KeyType::Rsa2048,
    };
    let hash = rsa_hash(opts, key_type)?;
    let digest_alg = lc_digest(hash);
    // "auto" accepts OpenBao's own (maximum) salt and the common digest-length salt.
    let salts: &[lc_sig::RsaPssSaltLength] = match (opts.rsa_scheme, opts.salt_length) {
        (RsaScheme::Pkcs1v15, _) => &[Digest],
        (RsaScheme::Pss, SaltLength::Auto) => &[Max, Digest],
        (RsaScheme::Pss, SaltLength::Hash) => &[Digest],
        (RsaScheme::Pss, SaltLength::Bytes(n)) if usize::from(n) == hash.output_len() => &[Digest],
        (RsaScheme::Pss, SaltLength::Bytes(_)) => &[Max],
    };
    if !opts.prehashed {
        // Over the message, any explicit salt length can be checked exactly.
        let public = lc_rsa::PublicKey::from_der(&pkcs1)
            .map_err(|_| Error::CorruptKeyring("rsa public key"))?;
        let components = lc_rsa::PublicKeyComponents::<Vec<u8>>::from(&public);
        let salts: &[lc_sig::RsaPssSaltLength] = match opts.salt_length {
            SaltLength::Bytes(n) if opts.rsa_scheme == RsaScheme::Pss => &[Custom(n)],
            _ => salts,
        };
        let ok = salts.iter().any(|salt| {
            let params = rsa_verify_params(opts.rsa_scheme, hash, *salt);
            components.verify(&params, input, sig).is_ok()
        });
        return Ok(ok);
    }
    if let (RsaScheme::Pss, SaltLength::Bytes(n)) = (opts.rsa_scheme, opts.salt_length) {
        let modulus_len = sig.len();
        if usize::from(n) != hash.output_len()
            && usize::from(n) != max_salt(modulus_len, hash.output_len())
        {
            return Err(Error::UnsupportedSaltLength(n));
        }
    }
    let digest = aws_lc_rs::digest::Digest::import_less_safe(input, digest_alg)
        .map_err(|_| Error::InvalidPrehashedInput)?;
    let ok = salts.iter().any(|salt| {
        let params = rsa_verify_static(opts.rsa_scheme, hash, *salt);
        lc_sig::UnparsedPublicKey::new(params, &pkcs1)
            .verify_digest(&digest, sig)
            .is_ok()
    });
    Ok(ok)
}

fn rsa_verify_params(
    scheme: RsaScheme,
    hash: HashAlgorithm,
    salt: lc_sig::RsaPssSaltLength,
) -> lc_sig::RsaParameters {
    let base = match (scheme, hash) {
        (RsaScheme::Pkcs1v15, HashAlgorithm::Sha2_384) => lc_sig::RSA_PKCS1_2048_8192_SHA384,
        (RsaScheme::Pkcs1v15, HashAlgorithm::Sha2_512) => lc_sig::RSA_PKCS1_2048_8192_SHA512,
        (RsaScheme::Pkcs1v15, _) => lc_sig::RSA_PKCS1_2048_8192_SHA256,
        (RsaScheme::Pss, HashAlgorithm::Sha2_384) => lc_sig::RSA_PSS_2048_8192_SHA384,
        (RsaScheme::Pss, HashAlgorithm::Sha2_512) => lc_sig::RSA_PSS_2048_8192_SHA512,
        (RsaScheme::Pss, _) => lc_sig::RSA_PSS_2048_8192_SHA256,
    };
    base.with_pss_salt_length(salt)
}

/// The same parameters as `'static` items, which digest verification requires.
fn rsa_verify_static(
    scheme: RsaScheme,
    hash: HashAlgorithm,
    salt: lc_sig::RsaPssSaltLength,
) -> &'static lc_sig::RsaParameters {
    use lc_sig::RsaPssSaltLength::Max;
    let max = salt == Max;
    match (scheme, hash, max) {
        (RsaScheme::Pkcs1v15, HashAlgorithm::Sha2_384, _) => &lc_sig::RSA_PKCS1_2048_8192_SHA384,
        (RsaScheme::Pkcs1v15, HashAlgorithm::Sha2_512, _) => &lc_sig::RSA_PKCS1_2048_8192_SHA512,
        (RsaScheme::Pkcs1v15, _, _) => &lc_sig::RSA_PKCS1_2048_8192_SHA256,
        (RsaScheme::Pss, HashAlgorithm::Sha2_384, true) => {
            &const { lc_sig::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(Max) }
        }
        (RsaScheme::Pss, HashAlgorithm::Sha2_512, true) => {
            &const { lc_sig::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(Max) }
        }
        (RsaScheme::Pss, _, true) => {
            &const { lc_sig::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(Max) }
        }
        (RsaScheme::Pss, HashAlgorithm::Sha2_384, false) => &lc_sig::RSA_PSS_2048_8192_SHA384,
        (RsaScheme::Pss, HashAlgorithm::Sha2_512, false) => &lc_sig::RSA_PSS_2048_8192_SHA512,
        (RsaScheme::Pss, _, false) => &lc_sig::RSA_PSS_2048_8192_SHA256,
    }
}

/// The PKCS#1 RSAPublicKey inside an X.509 SubjectPublicKeyInfo.
fn spki_to_pkcs1(spki_der: &[u8]) -> Result<Vec<u8>> {
    let info = spki::SubjectPublicKeyInfoRef::try_from(spki_der)
        .map_err(|_| Error::CorruptKeyring("rsa public key"))?;
    Ok(info.subject_public_key.raw_bytes().to_vec())
}
