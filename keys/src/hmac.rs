//! HMAC over any supported hash, with constant-time verification.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::hash::HashAlgorithm;

/// HMAC-`alg`(key, input). ring for the SHA-1/SHA-2 sizes it has, RustCrypto for
/// SHA-224 and SHA-3 (and, in tests, for all of them as a cross-check).
pub fn compute(alg: HashAlgorithm, key: &[u8], input: &[u8]) -> Vec<u8> {
    use ring::hmac as rh;
    let ring_alg = match alg {
        HashAlgorithm::Sha1 => Some(rh::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        HashAlgorithm::Sha2_256 => Some(rh::HMAC_SHA256),
        HashAlgorithm::Sha2_384 => Some(rh::HMAC_SHA384),
        HashAlgorithm::Sha2_512 => Some(rh::HMAC_SHA512),
        _ => None,
    };
    if let Some(ring_alg) = ring_alg {
        return rh::sign(&rh::Key::new(ring_alg, key), input)
            .as_ref()
            .to_vec();
    }
    rust_crypto(alg, key, input)
}

/// HMAC with a RustCrypto hash (macro, since the digest trait bounds are unwieldy).
macro_rules! rust_crypto_hmac {
    ($digest:ty, $key:expr, $input:expr) => {{
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac =
            <hmac::SimpleHmac<$digest> as KeyInit>::new_from_slice($key).expect("any key length");
        mac.update($input);
        mac.finalize().into_bytes().to_vec()
    }};
}

pub fn rust_crypto(alg: HashAlgorithm, key: &[u8], input: &[u8]) -> Vec<u8> {
    match alg {
        HashAlgorithm::Sha1 => rust_crypto_hmac!(sha1::Sha1, key, input),
        HashAlgorithm::Sha2_224 => rust_crypto_hmac!(sha2::Sha224, key, input),
        HashAlgorithm::Sha2_256 => rust_crypto_hmac!(sha2::Sha256, key, input),
        HashAlgorithm::Sha2_384 => rust_crypto_hmac!(sha2::Sha384, key, input),
        HashAlgorithm::Sha2_512 => rust_crypto_hmac!(sha2::Sha512, key, input),
        HashAlgorithm::Sha3_224 => rust_crypto_hmac!(sha3::Sha3_224, key, input),
        HashAlgorithm::Sha3_256 => rust_crypto_hmac!(sha3::Sha3_256, key, input),
        HashAlgorithm::Sha3_384 => rust_crypto_hmac!(sha3::Sha3_384, key, input),
        HashAlgorithm::Sha3_512 => rust_crypto_hmac!(sha3::Sha3_512, key, input),
    }
}

/// Constant-time comparison of a computed MAC with the one presented.
pub fn verify(alg: HashAlgorithm, key: &[u8], input: &[u8], presented: &[u8]) -> bool {
    let expected = compute(alg, key, input);
    expected.ct_eq(presented).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = compute(
            HashAlgorithm::Sha2_256,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        let hex: String = mac.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(
            HashAlgorithm::Sha2_256,
            b"Jefe",
            b"what do ya want for nothing?",
            &mac
        ));
        assert!(!verify(
            HashAlgorithm::Sha2_256,
            b"Jefe",
            b"what do ya want for nothing!",
            &mac
        ));
        assert!(!verify(HashAlgorithm::Sha2_256, b"Jefe", b"x", &mac[..31]));
    }
}

#[cfg(test)]
mod cross_check {
    use super::*;

    #[test]
    fn ring_and_rust_crypto_agree() {
        for alg in HashAlgorithm::ALL {
            for key_len in [0, 1, 32, 64, 65, 200] {
                let key = vec![0x5a; key_len];
                assert_eq!(
                    compute(alg, &key, b"msg"),
                    rust_crypto(alg, &key, b"msg"),
                    "{}",
                    alg.name()
                );
            }
        }
    }
}
