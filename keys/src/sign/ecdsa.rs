//! ECDSA: ring for the (curve, hash) pairs it offers, RustCrypto for the rest;
//! and [`RingRng`], the randomness RustCrypto's signers (ML-DSA's too) draw from.

use ring::signature as rs;

use super::{Marshaling, SignOptions};
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::key_type::{Curve, KeyType};
use crate::secret::{SecretBytes, fill_random};

enum RcEcdsa {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

pub struct EcdsaKey {
    pub(super) curve: Curve,
    pub(super) scalar: SecretBytes,
    pub(super) public_sec1: Vec<u8>,
    /// ring's signer, for the (curve, hash) pair ring supports.
    ring: Option<rs::EcdsaKeyPair>,
    rust_crypto: RcEcdsa,
}

impl EcdsaKey {
    pub(super) fn generate(curve: Curve) -> Result<Self> {
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

    pub(super) fn sign(&self, input: &[u8], opts: &SignOptions) -> Result<Vec<u8>> {
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

pub(super) fn ecdsa_verify(
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
