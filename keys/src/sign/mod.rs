//! Signing keys of every signing type, and the options of `sign`/`verify`.
//!
//! Sources: ring for the ECDSA combinations it offers (P-256 with SHA-256,
//! P-384 with SHA-384, over the raw message); RustCrypto for every other ECDSA
//! combination (P-521, other hashes, prehashed input) and for ML-DSA;
//! aws-lc-rs for Ed25519 (its s2n-bignum code signs 2.7x faster than ring's
//! here; RFC 8032 signatures are deterministic, so the bytes are the same)
//! and for RSA, because ring cannot decrypt OAEP or sign a digest and
//! the `rsa` crate's private-key operations are open to the Marvin timing
//! attack.
//!
//! One submodule per family (`ed25519`, `ecdsa`, `rsa`, `mldsa`) holds its
//! keys and their sign and verify; `options` parses the options; this module
//! dispatches over the families and encodes public keys.

use core::fmt;

use aws_lc_rs::signature as lc_sig;

use crate::error::{Error, Result};
use crate::key_type::{Curve, KeyType, MlDsaLevel};
use crate::secret::{SecretBytes, redacted_debug};

mod ecdsa;
mod ed25519;
mod mldsa;
mod options;
mod rsa;

pub use self::ecdsa::EcdsaKey;
pub(crate) use self::ecdsa::RingRng;
use self::ecdsa::ecdsa_verify;
pub use self::ed25519::Ed25519Key;
pub use self::mldsa::MlDsaKey;
use self::mldsa::mldsa_verify;
pub use self::options::{Marshaling, RsaScheme, SaltLength, SignOptions};
pub use self::rsa::RsaKey;
use self::rsa::rsa_verify;

redacted_debug!(Ed25519Key, EcdsaKey, RsaKey, MlDsaKey);

/// The private half of one version of a signing key, ready to use.
// Lives behind `Arc<KeyVersion>`; variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum SigningKey {
    Ed25519(Ed25519Key),
    Ecdsa(EcdsaKey),
    Rsa(RsaKey),
    MlDsa(MlDsaKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Ed25519(_) => "ed25519",
            Self::Ecdsa(k) => match k.curve {
                Curve::P256 => "ecdsa-p256",
                Curve::P384 => "ecdsa-p384",
                Curve::P521 => "ecdsa-p521",
            },
            Self::Rsa(_) => "rsa",
            Self::MlDsa(_) => "mldsa",
        };
        write!(f, "SigningKey({kind}, [REDACTED])")
    }
}

impl SigningKey {
    /// A fresh key of a signing type.
    pub fn generate(key_type: KeyType) -> Result<Self> {
        match key_type {
            KeyType::Ed25519 => Ok(Self::Ed25519(Ed25519Key::from_seed(SecretBytes::random(
                32,
            )?)?)),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
                let curve = key_type.curve().ok_or(Error::Crypto)?;
                Ok(Self::Ecdsa(EcdsaKey::generate(curve)?))
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                Ok(Self::Rsa(RsaKey::generate(key_type)?))
            }
            KeyType::MlDsa44 | KeyType::MlDsa65 | KeyType::MlDsa87 => {
                let level = key_type.mldsa_level().ok_or(Error::Crypto)?;
                Ok(Self::MlDsa(MlDsaKey::from_seed(
                    level,
                    SecretBytes::random(32)?,
                )?))
            }
            other => Err(Error::SigningNotSupported(other)),
        }
    }

    /// The raw private encoding we store: Ed25519 and ML-DSA seed, ECDSA scalar,
    /// RSA PKCS#8 DER.
    pub fn private_bytes(&self) -> &SecretBytes {
        match self {
            Self::Ed25519(k) => &k.seed,
            Self::Ecdsa(k) => &k.scalar,
            Self::Rsa(k) => &k.pkcs8,
            Self::MlDsa(k) => &k.seed,
        }
    }

    pub fn from_private_bytes(key_type: KeyType, bytes: SecretBytes) -> Result<Self> {
        match key_type {
            KeyType::Ed25519 => Ok(Self::Ed25519(Ed25519Key::from_seed(bytes)?)),
            KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
                let curve = key_type.curve().ok_or(Error::Crypto)?;
                Ok(Self::Ecdsa(EcdsaKey::from_scalar(curve, bytes)?))
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                Ok(Self::Rsa(RsaKey::from_pkcs8(key_type, bytes)?))
            }
            KeyType::MlDsa44 | KeyType::MlDsa65 | KeyType::MlDsa87 => {
                let level = key_type.mldsa_level().ok_or(Error::Crypto)?;
                Ok(Self::MlDsa(MlDsaKey::from_seed(level, bytes)?))
            }
            other => Err(Error::SigningNotSupported(other)),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Ed25519(k) => PublicKey::Ed25519(k.public_key()),
            Self::Ecdsa(k) => PublicKey::Ecdsa {
                curve: k.curve,
                sec1: k.public_sec1.clone(),
            },
            Self::Rsa(k) => PublicKey::Rsa {
                spki_der: k.public_spki_der.clone(),
            },
            Self::MlDsa(k) => PublicKey::MlDsa {
                level: k.level,
                raw: k.public.clone(),
            },
        }
    }

    /// The raw signature bytes (before `vault:vN:` and base64).
    pub fn sign(&self, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>> {
        match self {
            Self::Ed25519(k) => Ok(k.pair.sign(input).as_ref().to_vec()),
            Self::Ecdsa(k) => k.sign(input, opts),
            Self::Rsa(k) => k.sign(input, opts),
            Self::MlDsa(k) => k.sign(input),
        }
    }

    pub fn verify(&self, input: &[u8], signature: &[u8], opts: &SignOptions) -> Result<bool> {
        self.public_key().verify(input, signature, opts)
    }
}

/// The public half of a signing key version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// SEC1 uncompressed point.
    Ecdsa {
        curve: Curve,
        sec1: Vec<u8>,
    },
    /// X.509 SubjectPublicKeyInfo DER.
    Rsa {
        spki_der: Vec<u8>,
    },
    MlDsa {
        level: MlDsaLevel,
        raw: Vec<u8>,
    },
}

impl PublicKey {
    pub fn verify(&self, input: &[u8], signature: &[u8], opts: &SignOptions) -> Result<bool> {
        match self {
            Self::Ed25519(public) => Ok(lc_sig::UnparsedPublicKey::new(&lc_sig::ED25519, public)
                .verify(input, signature)
                .is_ok()),
            Self::Ecdsa { curve, sec1 } => ecdsa_verify(*curve, sec1, input, signature, opts),
            Self::Rsa { spki_der } => rsa_verify(spki_der, input, signature, opts),
            Self::MlDsa { level, raw } => mldsa_verify(*level, raw, input, signature),
        }
    }

    /// The key as held: raw (Ed25519, ML-DSA), a SEC1 point (ECDSA) or SPKI DER (RSA).
    pub fn raw_bytes(&self) -> &[u8] {
        match self {
            Self::Ed25519(raw) => raw,
            Self::Ecdsa { sec1, .. } => sec1,
            Self::Rsa { spki_der } => spki_der,
            Self::MlDsa { raw, .. } => raw,
        }
    }

    /// X.509 SubjectPublicKeyInfo DER (what PEM export and `der` format carry).
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        use pkcs8::EncodePublicKey;
        let doc = match self {
            Self::Ed25519(raw) => {
                let info = spki::SubjectPublicKeyInfoRef {
                    algorithm: spki::AlgorithmIdentifierRef {
                        oid: ED25519_OID,
                        parameters: None,
                    },
                    subject_public_key: der::asn1::BitStringRef::from_bytes(raw)
                        .map_err(|_| Error::Crypto)?,
                };
                return der::Encode::to_der(&info).map_err(|_| Error::Crypto);
            }
            Self::Ecdsa { curve, sec1 } => match curve {
                Curve::P256 => p256::PublicKey::from_sec1_bytes(sec1)
                    .map_err(|_| Error::Crypto)?
                    .to_public_key_der(),
                Curve::P384 => p384::PublicKey::from_sec1_bytes(sec1)
                    .map_err(|_| Error::Crypto)?
                    .to_public_key_der(),
                Curve::P521 => p521::PublicKey::from_sec1_bytes(sec1)
                    .map_err(|_| Error::Crypto)?
                    .to_public_key_der(),
            },
            Self::Rsa { spki_der } => return Ok(spki_der.clone()),
            Self::MlDsa { level, raw } => {
                let info = spki::SubjectPublicKeyInfoRef {
                    algorithm: spki::AlgorithmIdentifierRef {
                        oid: mldsa_oid(*level),
                        parameters: None,
                    },
                    subject_public_key: der::asn1::BitStringRef::from_bytes(raw)
                        .map_err(|_| Error::Crypto)?,
                };
                return der::Encode::to_der(&info).map_err(|_| Error::Crypto);
            }
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|_| Error::Crypto)
    }

    /// The public key of a `key_type` key in X.509 SubjectPublicKeyInfo DER
    /// (BYOK `public_key`), checked to be a key of that type and size.
    pub fn from_spki_der(key_type: KeyType, der: &[u8]) -> Result<Self> {
        use pkcs8::DecodePublicKey;
        let bad = Error::InvalidPublicKey;
        let type_mismatch = || bad("not a public key of this key type");
        if let Some(bits) = key_type.rsa_bits() {
            use aws_lc_rs::encoding::AsDer;
            let key =
                aws_lc_rs::rsa::PublicEncryptingKey::from_der(der).map_err(|_| type_mismatch())?;
            if key.key_size_bits() != bits {
                return Err(bad("RSA key size does not match the key type"));
            }
            let spki_der = key.as_der().map_err(|_| Error::Crypto)?.as_ref().to_vec();
            return Ok(Self::Rsa { spki_der });
        }
        if let Some(curve) = key_type.curve() {
            let sec1 = match curve {
                Curve::P256 => p256::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map(|k| k.to_sec1_point(false).as_bytes().to_vec()),
                Curve::P384 => p384::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map(|k| k.to_sec1_point(false).as_bytes().to_vec()),
                Curve::P521 => p521::ecdsa::VerifyingKey::from_public_key_der(der)
                    .map(|k| k.to_sec1_point(false).as_bytes().to_vec()),
            }
            .map_err(|_| type_mismatch())?;
            return Ok(Self::Ecdsa { curve, sec1 });
        }
        if key_type == KeyType::Ed25519 {
            use der::Decode;
            let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|_| type_mismatch())?;
            if info.algorithm.oid != ED25519_OID {
                return Err(type_mismatch());
            }
            let raw: [u8; 32] = info
                .subject_public_key
                .as_bytes()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(type_mismatch)?;
            return Ok(Self::Ed25519(raw));
        }
        Err(Error::PublicImportNotSupported)
    }

    /// PEM "PUBLIC KEY" with a trailing newline, as OpenBao shows ECDSA/RSA keys.
    pub fn to_pem(&self) -> Result<String> {
        let der = self.to_spki_der()?;
        pem_rfc7468_encode("PUBLIC KEY", &der)
    }
}

pub(crate) const ED25519_OID: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.101.112");

pub(crate) fn mldsa_oid(level: MlDsaLevel) -> der::asn1::ObjectIdentifier {
    match level {
        MlDsaLevel::L44 => der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17"),
        MlDsaLevel::L65 => der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18"),
        MlDsaLevel::L87 => der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19"),
    }
}

pub(crate) fn pem_rfc7468_encode(label: &str, der: &[u8]) -> Result<String> {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der).map_err(|_| Error::Crypto)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::HashAlgorithm;

    #[test]
    fn every_signing_type_round_trips() {
        let cases = [
            (KeyType::Ed25519, SignOptions::default()),
            (KeyType::EcdsaP256, SignOptions::default()),
            (KeyType::EcdsaP384, SignOptions::default()),
            (KeyType::EcdsaP521, SignOptions::default()),
            (
                KeyType::EcdsaP256,
                SignOptions {
                    marshaling: Marshaling::Jws,
                    ..SignOptions::default()
                },
            ),
            (
                KeyType::EcdsaP384,
                SignOptions {
                    hash: Some(HashAlgorithm::Sha3_512),
                    ..SignOptions::default()
                },
            ),
            (KeyType::Rsa2048, SignOptions::default()),
            (
                KeyType::Rsa2048,
                SignOptions {
                    rsa_scheme: RsaScheme::Pkcs1v15,
                    ..SignOptions::default()
                },
            ),
            (
                KeyType::Rsa2048,
                SignOptions {
                    salt_length: SaltLength::Hash,
                    ..SignOptions::default()
                },
            ),
            (KeyType::MlDsa44, SignOptions::default()),
        ];
        for (t, opts) in cases {
            let key = SigningKey::generate(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            let sig = key
                .sign(b"message", &opts)
                .unwrap_or_else(|e| panic!("{t} {opts:?}: {e}"));
            assert!(key.verify(b"message", &sig, &opts).unwrap(), "{t} {opts:?}");
            assert!(
                !key.verify(b"massage", &sig, &opts).unwrap(),
                "{t} {opts:?}"
            );
            let reloaded =
                SigningKey::from_private_bytes(t, key.private_bytes().duplicate()).unwrap();
            assert_eq!(reloaded.public_key(), key.public_key());
            assert!(reloaded.verify(b"message", &sig, &opts).unwrap());
        }
    }
}

#[cfg(test)]
mod prehash_edge_cases {
    use super::*;

    #[test]
    fn empty_and_odd_prehashed_inputs_never_panic() {
        for t in [
            KeyType::EcdsaP256,
            KeyType::EcdsaP384,
            KeyType::EcdsaP521,
            KeyType::Rsa2048,
        ] {
            let key = SigningKey::generate(t).unwrap();
            let opts = SignOptions {
                prehashed: true,
                ..SignOptions::default()
            };
            for len in [0usize, 1, 7, 20, 31, 32, 33, 64, 65, 200] {
                let input = vec![0xab; len];
                if let Ok(sig) = key.sign(&input, &opts) {
                    assert!(key.verify(&input, &sig, &opts).unwrap(), "{t} len {len}");
                }
                let _ = key.verify(&input, &[0u8; 64], &opts);
            }
        }
    }
}
