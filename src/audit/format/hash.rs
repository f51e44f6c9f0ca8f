//! The salted HMAC of audit values, Vault's `salt.GetIdentifiedHMAC`: the
//! salt bytes are the HMAC-SHA256 key, the value's UTF-8 bytes the message,
//! and the result is written `hmac-sha256:<lowercase hex>` (what
//! `sys/audit-hash` answers). With it: the hex encoder that writes it, and the
//! memo that hashes a request's token and accessor once per device.

use hmac::{KeyInit as _, Mac as _};
use sha2::Sha256;
use zeroize::Zeroize;

/// A device's salt as an HMAC-SHA256 key, its padded key blocks hashed once:
/// each value then costs a copy of that state and its own blocks.
/// RustCrypto's HMAC, about a third faster than ring's on the short strings
/// audit entries hash (118 against 176 ns for 96 bytes here); the tests hold
/// it to ring's output.
#[derive(Clone)]
pub(crate) struct SaltKey(hmac::Hmac<Sha256>);

impl SaltKey {
    pub(crate) fn new(salt: &[u8]) -> Self {
        // HMAC takes keys of any length.
        Self(hmac::Hmac::<Sha256>::new_from_slice(salt).unwrap_or_else(|_| unreachable!()))
    }

    fn tag(&self, bytes: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }
}

/// Length of a hashed value: `hmac-sha256:` and 64 hex digits.
const HASHED_LEN: usize = 12 + 64;

/// One salted HMAC, `hmac-sha256:<64 lowercase hex>`, kept on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Hashed([u8; HASHED_LEN]);

impl Hashed {
    pub(crate) fn of(key: &SaltKey, s: &str) -> Self {
        Self::of_bytes(key, s.as_bytes())
    }

    pub(crate) fn of_bytes(key: &SaltKey, bytes: &[u8]) -> Self {
        let tag = key.tag(bytes);
        let mut out = [0u8; HASHED_LEN];
        out[..12].copy_from_slice(b"hmac-sha256:");
        hex_encode_into(&tag, &mut out[12..]);
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII (a fixed prefix and hex digits).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl serde::Serialize for Hashed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Debug for Hashed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two lowercase hex digits of every byte value.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    table
};

/// Lowercase hex of `bytes` into `out`, which must be exactly twice as long
/// (what `hex::encode` gives, without building a `String` char by char).
pub(crate) fn hex_encode_into(bytes: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), bytes.len() * 2);
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(b)]);
    }
}

/// The Vault-compatible salted HMAC of one value, as `sys/audit-hash` returns
/// it: `hmac-sha256:` followed by the lowercase hex HMAC-SHA256 of `s` keyed
/// with `salt`.
pub fn hash_value(salt: &[u8], s: &str) -> String {
    hash_with(&SaltKey::new(salt), s)
}

pub(crate) fn hash_with(key: &SaltKey, s: &str) -> String {
    Hashed::of(key, s).as_str().to_owned()
}

/// The HMACs of the tokens and accessors one request's entries carry, for
/// one device (one salt): a request's token and accessor appear twice in its
/// request entry and twice again in its response entry, and are hashed once.
/// So is the HMAC of its elided data (`ElidedData`), which both entries
/// carry (a request has at most one).
/// Keyed by the clear value, so a different token (one a login issued) is
/// hashed on its own. The clear values are wiped on drop.
#[derive(Default)]
pub(crate) struct TokenMemo {
    pub(super) entries: Vec<(String, Hashed)>,
    pub(super) elided: Option<Hashed>,
}

impl std::fmt::Debug for TokenMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMemo")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl TokenMemo {
    pub(super) fn get(&mut self, key: &SaltKey, s: &str) -> Hashed {
        if let Some((_, h)) = self.entries.iter().find(|(clear, _)| clear == s) {
            return *h;
        }
        let h = Hashed::of(key, s);
        self.entries.push((s.to_owned(), h));
        h
    }

    pub(super) fn elided(&mut self, key: &SaltKey, json: &[u8]) -> Hashed {
        *self
            .elided
            .get_or_insert_with(|| Hashed::of_bytes(key, json))
    }
}

impl Drop for TokenMemo {
    fn drop(&mut self) {
        for (clear, _) in &mut self.entries {
            clear.zeroize();
        }
    }
}
