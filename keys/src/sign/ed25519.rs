//! Ed25519 (aws-lc-rs).

use aws_lc_rs::signature as lc_sig;
use aws_lc_rs::signature::KeyPair as _;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

pub struct Ed25519Key {
    pub(super) seed: SecretBytes,
    pub(super) pair: lc_sig::Ed25519KeyPair,
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
