//! HMAC with a keyring: computing and verifying `vault:vN:` HMACs.

use super::{Keyring, Sealed};
use crate::envelope::{self, ParseError};
use crate::error::{Error, Result};
use crate::hash::HashAlgorithm;
use crate::version::KeyVersion;

impl Keyring {
    fn hmac_version(&self, requested: i64) -> Result<&KeyVersion> {
        let n = match requested {
            0 => i64::from(self.latest_version),
            n => n,
        };
        if self.min_encryption_version > 0 && n < i64::from(self.min_encryption_version) {
            return Err(Error::HmacVersionTooOld);
        }
        if n < 0 {
            return Err(Error::HmacVersionNegative);
        }
        if n > i64::from(self.latest_version) {
            return Err(Error::HmacVersionMissing(self.latest_version));
        }
        self.usable_version(n as u32)
    }

    pub fn hmac(&self, input: &[u8], algorithm: HashAlgorithm, key_version: i64) -> Result<Sealed> {
        self.in_service()?;
        let version = self.hmac_version(key_version)?;
        let mac = match algorithm {
            HashAlgorithm::Sha2_256 => ring::hmac::sign(&version.hmac_sha256, input)
                .as_ref()
                .to_vec(),
            other => crate::hmac::compute(other, version.hmac_key.expose(), input),
        };
        Ok(Sealed {
            text: envelope::encode(version.number, &mac),
            key_version: version.number,
        })
    }

    pub fn verify_hmac(&self, input: &[u8], hmac: &str, algorithm: HashAlgorithm) -> Result<bool> {
        self.in_service()?;
        let parsed = envelope::parse_raw(hmac).map_err(|e| match e {
            ParseError::NoPrefix => Error::HmacNoPrefix,
            ParseError::WrongFields => Error::HmacWrongFields,
            ParseError::BadVersion => Error::HmacBadVersion,
        })?;
        let presented = envelope::decode_standard(parsed.body).ok_or(Error::HmacBadBase64)?;
        let version = self.checked_version(
            parsed.version,
            Error::HmacVersionTooNew,
            Error::HmacVerifyVersionTooOld,
        )?;
        Ok(match algorithm {
            // ring's verify compares in constant time.
            HashAlgorithm::Sha2_256 => {
                ring::hmac::verify(&version.hmac_sha256, input, &presented).is_ok()
            }
            other => crate::hmac::verify(other, version.hmac_key.expose(), input, &presented),
        })
    }
}
