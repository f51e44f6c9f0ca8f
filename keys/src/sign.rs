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

use core::fmt;
use core::str::FromStr;

use aws_lc_rs::rsa as lc_rsa;
use aws_lc_rs::signature as lc_sig;
use aws_lc_rs::signature::KeyPair as _;
use ring::signature as rs;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::key_type::{Curve, KeyType, MlDsaLevel};
use crate::secret::{SecretBytes, fill_random, redacted_debug};

redacted_debug!(Ed25519Key, EcdsaKey, RsaKey, MlDsaKey);

// ---------------------------------------------------------------------------
// Options

/// How a signature is written out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Marshaling {
    /// ASN.1 DER for ECDSA, the raw signature for the other types; standard base64.
    #[default]
    Asn1,
    /// Fixed-width `r || s` for ECDSA; unpadded base64url.
    Jws,
}

impl FromStr for Marshaling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "asn1" => Ok(Self::Asn1),
            "jws" => Ok(Self::Jws),
            other => Err(Error::InvalidMarshaling(other.to_owned())),
        }
    }
}

/// RSA-PSS salt length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SaltLength {
    /// The maximum when signing; detected when verifying.
    #[default]
    Auto,
    /// The digest length.
    Hash,
    Bytes(u16),
}

impl FromStr for SaltLength {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "auto" => Ok(Self::Auto),
            "hash" => Ok(Self::Hash),
            other => {
                let n: i64 = other
                    .parse()
                    .map_err(|_| Error::InvalidSaltLength(other.to_owned()))?;
                u16::try_from(n)
                    .map(Self::Bytes)
                    .map_err(|_| Error::SaltLengthOutOfRange(n))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RsaScheme {
    #[default]
    Pss,
    Pkcs1v15,
}

impl FromStr for RsaScheme {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" | "pss" => Ok(Self::Pss),
            "pkcs1v15" => Ok(Self::Pkcs1v15),
            other => Err(Error::UnsupportedSignatureAlgorithm(other.to_owned())),
        }
    }
}

/// The options of one sign or verify call, parsed from their transit names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignOptions {
    /// `None` is transit's `hash_algorithm=none` (raw PKCS#1 v1.5 over a digest).
    pub hash: Option<HashAlgorithm>,
    pub prehashed: bool,
    pub rsa_scheme: RsaScheme,
    pub salt_length: SaltLength,
    pub marshaling: Marshaling,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            hash: Some(HashAlgorithm::Sha2_256),
            prehashed: false,
            rsa_scheme: RsaScheme::Pss,
            salt_length: SaltLength::Auto,
            marshaling: Marshaling::Asn1,
        }
    }
}

impl SignOptions {
    /// Parse the string options as the API receives them (empty means default).
    pub fn parse(
        hash_algorithm: &str,
        prehashed: bool,
        signature_algorithm: &str,
        salt_length: &str,
        marshaling_algorithm: &str,
    ) -> Result<Self> {
        let hash = match hash_algorithm {
            "" => Some(HashAlgorithm::Sha2_256),
            "none" => None,
            name => Some(name.parse()?),
        };
        let marshaling = marshaling_algorithm.parse()?;
        let salt_length = salt_length.parse()?;
        let rsa_scheme = signature_algorithm.parse()?;
        if hash.is_none() && !(prehashed && rsa_scheme == RsaScheme::Pkcs1v15) {
            return Err(Error::HashNoneRequirements);
        }
        Ok(Self {
            hash,
            prehashed,
            rsa_scheme,
            salt_length,
            marshaling,
        })
    }
}

// ---------------------------------------------------------------------------
// Keys

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

// ---------------------------------------------------------------------------
// Ed25519

pub struct Ed25519Key {
    seed: SecretBytes,
    pair: lc_sig::Ed25519KeyPair,
}

impl Ed25519Key {
    pub fn from_seed(seed: SecretBytes) -> Result<Self> {
        let pair = lc_sig::Ed25519KeyPair::from_seed_unchecked(seed.expose())
            .map_err(|_| Error::CorruptKeyring("ed25519 seed"))?;
        Ok(Self { seed, pair })
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    pub fn seed(&self) -> &SecretBytes {
        &self.seed
    }
}

// ---------------------------------------------------------------------------
// ECDSA

enum RcEcdsa {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

pub struct EcdsaKey {
    curve: Curve,
    scalar: SecretBytes,
    public_sec1: Vec<u8>,
    /// ring's signer, for the (curve, hash) pair ring supports.
    ring: Option<rs::EcdsaKeyPair>,
    rust_crypto: RcEcdsa,
}

impl EcdsaKey {
    fn generate(curve: Curve) -> Result<Self> {
        let mut rng = RingRng;
        let scalar = match curve {
            Curve::P256 => SecretBytes::from_slice(
                &<p256::ecdsa::SigningKey as ecdsa::elliptic_curve::Generate>::generate_from_rng(
                    &mut rng,
                )
                .to_bytes(),
            ),
            Curve::P384 => SecretBytes::from_slice(
                &<p384::ecdsa::SigningKey as ecdsa::elliptic_curve::Generate>::generate_from_rng(
                    &mut rng,
                )
                .to_bytes(),
            ),
            Curve::P521 => SecretBytes::from_slice(
                &<p521::ecdsa::SigningKey as ecdsa::elliptic_curve::Generate>::generate_from_rng(
                    &mut rng,
                )
                .to_bytes(),
            ),
        };
        Self::from_scalar(curve, scalar)
    }

    pub fn from_scalar(curve: Curve, scalar: SecretBytes) -> Result<Self> {
        let bad = |_| Error::CorruptKeyring("ecdsa private scalar");
        let (rust_crypto, public_sec1) = match curve {
            Curve::P256 => {
                let k = p256::ecdsa::SigningKey::from_slice(scalar.expose()).map_err(bad)?;
                let public = k.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                (RcEcdsa::P256(k), public)
            }
            Curve::P384 => {
                let k = p384::ecdsa::SigningKey::from_slice(scalar.expose()).map_err(bad)?;
                let public = k.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                (RcEcdsa::P384(k), public)
            }
            Curve::P521 => {
                let k = p521::ecdsa::SigningKey::from_slice(scalar.expose()).map_err(bad)?;
                let public = k.verifying_key().to_sec1_point(false).as_bytes().to_vec();
                (RcEcdsa::P521(k), public)
            }
        };
        let ring_alg = match curve {
            Curve::P256 => Some(&rs::ECDSA_P256_SHA256_FIXED_SIGNING),
            Curve::P384 => Some(&rs::ECDSA_P384_SHA384_FIXED_SIGNING),
            Curve::P521 => None,
        };
        let ring = match ring_alg {
            Some(alg) => Some(
                rs::EcdsaKeyPair::from_private_key_and_public_key(
                    alg,
                    scalar.expose(),
                    &public_sec1,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|_| Error::CorruptKeyring("ecdsa key pair"))?,
            ),
            None => None,
        };
        // Keep the scalar at its fixed width (imports may carry leading zeros trimmed).
        Ok(Self {
            curve,
            scalar,
            public_sec1,
            ring,
            rust_crypto,
        })
    }

    pub fn curve(&self) -> Curve {
        self.curve
    }

    pub fn public_sec1(&self) -> &[u8] {
        &self.public_sec1
    }

    fn ring_hash(&self) -> HashAlgorithm {
        match self.curve {
            Curve::P384 => HashAlgorithm::Sha2_384,
            _ => HashAlgorithm::Sha2_256,
        }
    }

    fn sign(&self, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>> {
        let hash = opts.hash.ok_or(Error::HashNotSupportedForKey {
            hash: "none",
            key_type: ecdsa_key_type(self.curve),
        })?;
        let fixed: Vec<u8> = match &self.ring {
            Some(pair) if !opts.prehashed && hash == self.ring_hash() => pair
                .sign(&ring::rand::SystemRandom::new(), input)
                .map_err(|_| Error::Crypto)?
                .as_ref()
                .to_vec(),
            _ => {
                let digest;
                let z = if opts.prehashed {
                    input
                } else {
                    digest = hash.digest(input);
                    &digest
                };
                self.sign_prehash_fixed(z)?
            }
        };
        match opts.marshaling {
            Marshaling::Jws => Ok(fixed),
            Marshaling::Asn1 => fixed_to_der(self.curve, &fixed),
        }
    }

    /// Hedged RFC 6979 signing over a digest: fresh randomness mixed in, as Go does.
    fn sign_prehash_fixed(&self, z: &[u8]) -> Result<Vec<u8>> {
        use ecdsa::signature::hazmat::RandomizedPrehashSigner;
        // RFC 6979's nonce derivation asserts a non-empty digest (found by fuzzing).
        if z.is_empty() {
            return Err(Error::InvalidPrehashedInput);
        }
        let mut rng = RingRng;
        let invalid = |_| Error::InvalidPrehashedInput;
        Ok(match &self.rust_crypto {
            RcEcdsa::P256(k) => {
                let s: p256::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut rng, z).map_err(invalid)?;
                s.to_bytes().to_vec()
            }
            RcEcdsa::P384(k) => {
                let s: p384::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut rng, z).map_err(invalid)?;
                s.to_bytes().to_vec()
            }
            RcEcdsa::P521(k) => {
                let s: p521::ecdsa::Signature =
                    k.sign_prehash_with_rng(&mut rng, z).map_err(invalid)?;
                s.to_bytes().to_vec()
            }
        })
    }
}

fn ecdsa_key_type(curve: Curve) -> KeyType {
    match curve {
        Curve::P256 => KeyType::EcdsaP256,
        Curve::P384 => KeyType::EcdsaP384,
        Curve::P521 => KeyType::EcdsaP521,
    }
}

/// RustCrypto wants a `rand_core` RNG; this one draws from ring's `SystemRandom`.
pub(crate) struct RingRng;

impl rand_core::TryRng for RingRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> core::result::Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> core::result::Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> core::result::Result<(), Self::Error> {
        // The OS CSPRNG failing is not recoverable; a signature without fresh
        // randomness must not be produced.
        #[allow(clippy::expect_used)]
        fill_random(dst).expect("operating system CSPRNG failed");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for RingRng {}

fn fixed_to_der(curve: Curve, fixed: &[u8]) -> Result<Vec<u8>> {
    let bad = |_| Error::Crypto;
    Ok(match curve {
        Curve::P256 => p256::ecdsa::Signature::from_slice(fixed)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        Curve::P384 => p384::ecdsa::Signature::from_slice(fixed)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
        Curve::P521 => p521::ecdsa::Signature::from_slice(fixed)
            .map_err(bad)?
            .to_der()
            .as_bytes()
            .to_vec(),
    })
}

fn ecdsa_verify(
    curve: Curve,
    sec1: &[u8],
    input: &[u8],
    sig: &[u8],
    opts: &SignOptions,
) -> Result<bool> {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let hash = opts.hash.ok_or(Error::HashNotSupportedForKey {
        hash: "none",
        key_type: ecdsa_key_type(curve),
    })?;
    // ring verifies the common combinations several times faster than RustCrypto.
    let ring_alg: Option<&'static rs::EcdsaVerificationAlgorithm> =
        match (opts.prehashed, curve, hash) {
            (false, Curve::P256, HashAlgorithm::Sha2_256) => Some(&rs::ECDSA_P256_SHA256_ASN1),
            (false, Curve::P256, HashAlgorithm::Sha2_384) => Some(&rs::ECDSA_P256_SHA384_ASN1),
            (false, Curve::P384, HashAlgorithm::Sha2_256) => Some(&rs::ECDSA_P384_SHA256_ASN1),
            (false, Curve::P384, HashAlgorithm::Sha2_384) => Some(&rs::ECDSA_P384_SHA384_ASN1),
            _ => None,
        };
    let digest;
    let z = if opts.prehashed || ring_alg.is_some() {
        input
    } else {
        digest = hash.digest(input);
        &digest
    };
    if opts.prehashed && z.is_empty() {
        return Err(Error::InvalidPrehashedInput);
    }
    let bad_key = |_| Error::CorruptKeyring("ecdsa public key");
    macro_rules! verify_with {
        ($curve:ident) => {{
            // Parse with RustCrypto either way: a malformed signature is an error,
            // a well-formed wrong one is `false`.
            let parsed = match opts.marshaling {
                Marshaling::Asn1 => $curve::ecdsa::Signature::from_der(sig),
                Marshaling::Jws => $curve::ecdsa::Signature::from_slice(sig),
            }
            .map_err(|_| Error::SignatureMalformed)?;
            if let Some(alg) = ring_alg {
                let der = parsed.to_der();
                return Ok(rs::UnparsedPublicKey::new(alg, sec1)
                    .verify(z, der.as_bytes())
                    .is_ok());
            }
            let key = $curve::ecdsa::VerifyingKey::from_sec1_bytes(sec1).map_err(bad_key)?;
            Ok(key.verify_prehash(z, &parsed).is_ok())
        }};
    }
    match curve {
        Curve::P256 => verify_with!(p256),
        Curve::P384 => verify_with!(p384),
        Curve::P521 => verify_with!(p521),
    }
}

// ---------------------------------------------------------------------------
// RSA (aws-lc-rs)

pub struct RsaKey {
    key_type: KeyType,
    pkcs8: SecretBytes,
    pair: lc_rsa::KeyPair,
    decrypting: lc_rsa::OaepPrivateDecryptingKey,
    encrypting: lc_rsa::OaepPublicEncryptingKey,
    public_spki_der: Vec<u8>,
}

impl RsaKey {
    fn generate(key_type: KeyType) -> Result<Self> {
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
        let mut out = Zeroizing::new(vec![0u8; self.decrypting.min_output_size()]);
        let len = self
            .decrypting
            .decrypt(&lc_rsa::OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, None)
            .map_err(|_| Error::DecryptionFailed)?
            .len();
        out.truncate(len);
        Ok(out)
    }

    fn sign(&self, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>> {
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

fn rsa_verify(spki_der: &[u8], input: &[u8], sig: &[u8], opts: &SignOptions) -> Result<bool> {
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

// ---------------------------------------------------------------------------
// ML-DSA (RustCrypto, FIPS 204; pure ML-DSA, hedged, empty context: as OpenBao)

enum MlDsaSigner {
    L44(Box<ml_dsa::SigningKey<ml_dsa::MlDsa44>>),
    L65(Box<ml_dsa::SigningKey<ml_dsa::MlDsa65>>),
    L87(Box<ml_dsa::SigningKey<ml_dsa::MlDsa87>>),
}

pub struct MlDsaKey {
    level: MlDsaLevel,
    seed: SecretBytes,
    public: Vec<u8>,
    signer: MlDsaSigner,
}

impl MlDsaKey {
    pub fn from_seed(level: MlDsaLevel, seed: SecretBytes) -> Result<Self> {
        let xi = ml_dsa::B32::try_from(seed.expose())
            .map_err(|_| Error::CorruptKeyring("ml-dsa seed"))?;
        let (signer, public) = match level {
            MlDsaLevel::L44 => {
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(&xi);
                let public = k.expanded_key().verifying_key().encode().to_vec();
                (MlDsaSigner::L44(Box::new(k)), public)
            }
            MlDsaLevel::L65 => {
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&xi);
                let public = k.expanded_key().verifying_key().encode().to_vec();
                (MlDsaSigner::L65(Box::new(k)), public)
            }
            MlDsaLevel::L87 => {
                let k = ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_seed(&xi);
                let public = k.expanded_key().verifying_key().encode().to_vec();
                (MlDsaSigner::L87(Box::new(k)), public)
            }
        };
        Ok(Self {
            level,
            seed,
            public,
            signer,
        })
    }

    pub fn level(&self) -> MlDsaLevel {
        self.level
    }

    pub fn public_raw(&self) -> &[u8] {
        &self.public
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>> {
        let mut rng = RingRng;
        let fail = |_| Error::Crypto;
        Ok(match &self.signer {
            MlDsaSigner::L44(k) => k
                .expanded_key()
                .sign_randomized(input, &[], &mut rng)
                .map_err(fail)?
                .encode()
                .to_vec(),
            MlDsaSigner::L65(k) => k
                .expanded_key()
                .sign_randomized(input, &[], &mut rng)
                .map_err(fail)?
                .encode()
                .to_vec(),
            MlDsaSigner::L87(k) => k
                .expanded_key()
                .sign_randomized(input, &[], &mut rng)
                .map_err(fail)?
                .encode()
                .to_vec(),
        })
    }
}

fn mldsa_verify(level: MlDsaLevel, raw: &[u8], input: &[u8], sig: &[u8]) -> Result<bool> {
    macro_rules! verify_with {
        ($p:ty) => {{
            let enc = ml_dsa::EncodedVerifyingKey::<$p>::try_from(raw)
                .map_err(|_| Error::CorruptKeyring("ml-dsa public key"))?;
            let key = ml_dsa::VerifyingKey::<$p>::decode(&enc);
            let Ok(sig) = ml_dsa::Signature::<$p>::try_from(sig) else {
                return Ok(false);
            };
            Ok(key.verify_with_context(input, &[], &sig))
        }};
    }
    match level {
        MlDsaLevel::L44 => verify_with!(ml_dsa::MlDsa44),
        MlDsaLevel::L65 => verify_with!(ml_dsa::MlDsa65),
        MlDsaLevel::L87 => verify_with!(ml_dsa::MlDsa87),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn option_parsing_matches_openbao() {
        assert_eq!(
            SignOptions::parse("md5", false, "", "", ""),
            Err(Error::InvalidHashAlgorithm("md5".into()))
        );
        assert_eq!(
            SignOptions::parse("", false, "", "", "der"),
            Err(Error::InvalidMarshaling("der".into()))
        );
        assert_eq!(
            SignOptions::parse("none", false, "", "", ""),
            Err(Error::HashNoneRequirements)
        );
        assert_eq!(
            SignOptions::parse("", false, "", "abc", ""),
            Err(Error::InvalidSaltLength("abc".into()))
        );
        assert_eq!(
            SignOptions::parse("", false, "foo", "", ""),
            Err(Error::UnsupportedSignatureAlgorithm("foo".into()))
        );
        assert!(SignOptions::parse("none", true, "pkcs1v15", "", "").is_ok());
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
