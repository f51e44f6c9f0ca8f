//! The key types of the transit engine and what each can do.

use core::fmt;
use core::str::FromStr;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum KeyType {
    Aes128Gcm96,
    Aes256Gcm96,
    ChaCha20Poly1305,
    XChaCha20Poly1305,
    Hmac,
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    MlDsa44,
    MlDsa65,
    MlDsa87,
}

/// The curves of the ECDSA key types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

/// The parameter sets of the ML-DSA key types (FIPS 204).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlDsaLevel {
    L44,
    L65,
    L87,
}

impl KeyType {
    pub const ALL: [KeyType; 15] = [
        Self::Aes128Gcm96,
        Self::Aes256Gcm96,
        Self::ChaCha20Poly1305,
        Self::XChaCha20Poly1305,
        Self::Hmac,
        Self::Ed25519,
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::EcdsaP521,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::MlDsa44,
        Self::MlDsa65,
        Self::MlDsa87,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Aes128Gcm96 => "aes128-gcm96",
            Self::Aes256Gcm96 => "aes256-gcm96",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::XChaCha20Poly1305 => "xchacha20-poly1305",
            Self::Hmac => "hmac",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::EcdsaP521 => "ecdsa-p521",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::MlDsa44 => "mldsa-44",
            Self::MlDsa65 => "mldsa-65",
            Self::MlDsa87 => "mldsa-87",
        }
    }

    /// True for the AEAD types (the ones that take associated data and derivation).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            Self::Aes128Gcm96
                | Self::Aes256Gcm96
                | Self::ChaCha20Poly1305
                | Self::XChaCha20Poly1305
        )
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    pub fn curve(self) -> Option<Curve> {
        match self {
            Self::EcdsaP256 => Some(Curve::P256),
            Self::EcdsaP384 => Some(Curve::P384),
            Self::EcdsaP521 => Some(Curve::P521),
            _ => None,
        }
    }

    pub fn mldsa_level(self) -> Option<MlDsaLevel> {
        match self {
            Self::MlDsa44 => Some(MlDsaLevel::L44),
            Self::MlDsa65 => Some(MlDsaLevel::L65),
            Self::MlDsa87 => Some(MlDsaLevel::L87),
            _ => None,
        }
    }

    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    pub fn supports_encryption(self) -> bool {
        self.is_aead() || self.is_rsa()
    }

    /// How many encryptions one version may make before random nonces risk
    /// repeating: 2^32 for the 96-bit random nonces of AES-GCM and
    /// ChaCha20-Poly1305 (NIST SP 800-38D, 8.3). `None` where no such bound
    /// applies: XChaCha20-Poly1305's 192-bit nonces (a collision needs far
    /// more messages than any server makes), RSA-OAEP (no key-wide nonce
    /// state), and types that do not encrypt.
    pub fn encryption_bound(self) -> Option<u64> {
        match self {
            Self::Aes128Gcm96 | Self::Aes256Gcm96 | Self::ChaCha20Poly1305 => Some(1 << 32),
            _ => None,
        }
    }

    pub fn supports_decryption(self) -> bool {
        self.supports_encryption()
    }

    pub fn supports_signing(self) -> bool {
        matches!(
            self,
            Self::Ed25519
                | Self::EcdsaP256
                | Self::EcdsaP384
                | Self::EcdsaP521
                | Self::Rsa2048
                | Self::Rsa3072
                | Self::Rsa4096
                | Self::MlDsa44
                | Self::MlDsa65
                | Self::MlDsa87
        )
    }

    pub fn supports_derivation(self) -> bool {
        self.is_aead() || self == Self::Ed25519
    }

    pub fn supports_convergent(self) -> bool {
        self.is_aead()
    }

    /// Asymmetric types report public keys per version in a key read.
    pub fn is_asymmetric(self) -> bool {
        self.supports_signing()
    }

    /// Length of the symmetric key, for the types that have one.
    pub fn symmetric_key_len(self) -> Option<usize> {
        match self {
            Self::Aes128Gcm96 => Some(16),
            Self::Aes256Gcm96 | Self::ChaCha20Poly1305 | Self::XChaCha20Poly1305 => Some(32),
            _ => None,
        }
    }

    /// The key type number used in OpenBao's backup format.
    pub fn openbao_code(self) -> u32 {
        match self {
            Self::Aes256Gcm96 => 0,
            Self::EcdsaP256 => 1,
            Self::Ed25519 => 2,
            Self::Rsa2048 => 3,
            Self::Rsa4096 => 4,
            Self::ChaCha20Poly1305 => 5,
            Self::EcdsaP384 => 6,
            Self::EcdsaP521 => 7,
            Self::Aes128Gcm96 => 8,
            Self::Rsa3072 => 9,
            Self::Hmac => 10,
            Self::XChaCha20Poly1305 => 11,
            Self::MlDsa44 => 12,
            Self::MlDsa65 => 13,
            Self::MlDsa87 => 14,
        }
    }

    pub fn from_openbao_code(code: u64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| u64::from(t.openbao_code()) == code)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| Error::UnknownKeyType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in KeyType::ALL {
            assert_eq!(t.name().parse::<KeyType>(), Ok(t));
            assert_eq!(
                KeyType::from_openbao_code(u64::from(t.openbao_code())),
                Some(t)
            );
        }
        assert_eq!(
            "aes512".parse::<KeyType>(),
            Err(Error::UnknownKeyType("aes512".into()))
        );
    }
}
