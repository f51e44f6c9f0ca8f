//! Hash algorithms by their transit names, and one-shot digests.

use core::str::FromStr;

use sha2::Digest as _;

use crate::error::Error;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    Sha1,
    Sha2_224,
    Sha2_256,
    Sha2_384,
    Sha2_512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl HashAlgorithm {
    pub const ALL: [HashAlgorithm; 9] = [
        Self::Sha1,
        Self::Sha2_224,
        Self::Sha2_256,
        Self::Sha2_384,
        Self::Sha2_512,
        Self::Sha3_224,
        Self::Sha3_256,
        Self::Sha3_384,
        Self::Sha3_512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha2_224 => "sha2-224",
            Self::Sha2_256 => "sha2-256",
            Self::Sha2_384 => "sha2-384",
            Self::Sha2_512 => "sha2-512",
            Self::Sha3_224 => "sha3-224",
            Self::Sha3_256 => "sha3-256",
            Self::Sha3_384 => "sha3-384",
            Self::Sha3_512 => "sha3-512",
        }
    }

    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha2_224 | Self::Sha3_224 => 28,
            Self::Sha2_256 | Self::Sha3_256 => 32,
            Self::Sha2_384 | Self::Sha3_384 => 48,
            Self::Sha2_512 | Self::Sha3_512 => 64,
        }
    }

    /// ring where it has the function (it is the faster), RustCrypto otherwise.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use ring::digest as rd;
        let ring_alg = match self {
            Self::Sha1 => Some(&rd::SHA1_FOR_LEGACY_USE_ONLY),
            Self::Sha2_256 => Some(&rd::SHA256),
            Self::Sha2_384 => Some(&rd::SHA384),
            Self::Sha2_512 => Some(&rd::SHA512),
            _ => None,
        };
        if let Some(alg) = ring_alg {
            return rd::digest(alg, data).as_ref().to_vec();
        }
        match self {
            Self::Sha2_224 => sha2::Sha224::digest(data).to_vec(),
            Self::Sha3_224 => sha3::Sha3_224::digest(data).to_vec(),
            Self::Sha3_256 => sha3::Sha3_256::digest(data).to_vec(),
            Self::Sha3_384 => sha3::Sha3_384::digest(data).to_vec(),
            Self::Sha3_512 => sha3::Sha3_512::digest(data).to_vec(),
            // Handled by ring above.
            Self::Sha1 | Self::Sha2_256 | Self::Sha2_384 | Self::Sha2_512 => unreachable!(),
        }
    }
}

impl FromStr for HashAlgorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|h| h.name() == s)
            .ok_or_else(|| Error::InvalidHashAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_have_their_lengths() {
        for h in HashAlgorithm::ALL {
            assert_eq!(h.digest(b"abc").len(), h.output_len(), "{}", h.name());
            assert_eq!(h.name().parse::<HashAlgorithm>(), Ok(h));
        }
        assert_eq!(
            hex(&HashAlgorithm::Sha2_256.digest(b"hello")),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            hex(&HashAlgorithm::Sha3_256.digest(b"")),
            "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
