//! Key bytes in memory: zeroized on drop, never printed, never cloned by accident.

use core::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Secret bytes (a key, a seed, an HMAC key). No `Clone`, no `Serialize`, and a
/// `Debug` that shows only the length.
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes.into_boxed_slice())
    }

    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec().into_boxed_slice())
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> Result<Self> {
        let mut bytes = vec![0u8; len];
        fill_random(&mut bytes)?;
        Ok(Self::new(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// An explicit copy, for the few places (derivation, export) that need one.
    pub(crate) fn duplicate(&self) -> Self {
        Self::from_slice(&self.0)
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

/// `Debug` for types that hold key material: the type name and nothing else.
macro_rules! redacted_debug {
    ($($ty:ty),+ $(,)?) => {$(
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($ty), "([REDACTED])"))
            }
        }
    )+};
}
pub(crate) use redacted_debug;

/// Plaintext or exported key text handed back to the caller: zeroized when dropped.
pub type SecretVec = Zeroizing<Vec<u8>>;
pub type SecretString = Zeroizing<String>;

/// Fill `out` from the operating system's CSPRNG (ring's `SystemRandom`): for key
/// material, which is long-lived and generated rarely.
pub fn fill_random(out: &mut [u8]) -> Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::Crypto)
}

/// Fill `out` with a fresh nonce from `rand`'s thread-local CSPRNG (ChaCha12 from
/// RustCrypto's `chacha20`, seeded and periodically reseeded from the OS). A
/// system call per nonce (~0.5 µs here) would cost more than encrypting a small
/// message; this costs ~10 ns.
pub fn fill_nonce(out: &mut [u8]) {
    use rand::Rng as _;
    rand::rng().fill_bytes(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_bytes() {
        let s = SecretBytes::from_slice(b"super secret key material");
        let shown = format!("{s:?}");
        assert_eq!(shown, "SecretBytes([REDACTED; 25])");
    }

    #[test]
    fn random_is_random() {
        let a = SecretBytes::random(32).unwrap();
        let b = SecretBytes::random(32).unwrap();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.len(), 32);
    }
}
