//! The lookup key: an HMAC key that names stored entries and finds tokens.

use super::barrier::SecretKey;

/// HMAC-SHA256 under the lookup key, hex: how names appear in storage paths,
/// and how a presented token is found (on every request: the key schedule is
/// prepared once, as for the transit HMAC keys).
pub(crate) struct LookupKey {
    hmac: ring::hmac::Key,
}

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupKey(redacted)")
    }
}

impl LookupKey {
    /// The raw key (zeroizing) is dropped once the key schedule is built.
    pub(crate) fn new(raw: SecretKey) -> Self {
        Self {
            hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, raw.expose()),
        }
    }

    pub(crate) fn digest(&self, value: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.hmac, value.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// HMAC of key material, hex: names its encryption count
    /// (`state/usage.rs`) without storing a plain hash of a key, which would
    /// let anyone holding a guess confirm it. Domain-separated from names.
    pub(crate) fn material_name(&self, material: &[u8]) -> String {
        let mut ctx = ring::hmac::Context::with_key(&self.hmac);
        ctx.update(b"transit key material\0");
        ctx.update(material);
        hex::encode(ctx.sign().as_ref())
    }

    pub(crate) fn name(&self, value: &str) -> String {
        hex::encode(self.digest(value))
    }
}
