//! ML-DSA (RustCrypto, FIPS 204; pure ML-DSA, hedged, empty context: as OpenBao).

use super::RingRng;
use crate::error::{Error, Result};
use crate::key_type::MlDsaLevel;
use crate::secret::SecretBytes;

enum MlDsaSigner {
    L44(Box<ml_dsa::SigningKey<ml_dsa::MlDsa44>>),
    L65(Box<ml_dsa::SigningKey<ml_dsa::MlDsa65>>),
    L87(Box<ml_dsa::SigningKey<ml_dsa::MlDsa87>>),
}

pub struct MlDsaKey {
    pub(super) level: MlDsaLevel,
    pub(super) seed: SecretBytes,
    pub(super) public: Vec<u8>,
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

    pub(super) fn sign(&self, input: &[u8]) -> Result<Vec<u8>> {
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

pub(super) fn mldsa_verify(
    level: MlDsaLevel,
    raw: &[u8],
    input: &[u8],
    sig: &[u8],
) -> Result<bool> {
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
