//! The options of `sign`/`verify`, parsed from their transit names.

use core::str::FromStr;

use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;

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

#[cfg(test)]
mod tests {
    use super::*;

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
