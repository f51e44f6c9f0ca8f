//! Fixed keyrings shared by the fuzz targets.
//!
//! Every keyring is restored from a hand-written OpenBao backup with constant
//! key material, so a crashing input reproduces byte for byte in a later run
//! (keyrings made with `Keyring::create` would get fresh random keys each time).
//! The material here is for fuzzing only and protects nothing.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use transit_keys::{Keyring, backup};

/// The context of the derived keyrings.
pub const CONTEXT: &[u8] = b"fuzz-context";

/// A 2048-bit RSA key (`openssl genpkey`), as Go's `rsa.PrivateKey` JSON.
const RSA_2048: &str = include_str!("../fixtures/rsa2048.json");

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `len` distinct constant bytes, one key per `tag`.
fn material(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// The entry of version 1: `body` is the key-specific JSON fields.
fn entry(body: &str) -> String {
    format!(
        r#"{{{body},"hmac_key":"{}","time":"2026-01-01T00:00:00Z","convergent_version":0}}"#,
        b64(&material(0xee, 32))
    )
}

/// A one-version keyring of OpenBao type number `code`, restored from a backup.
fn restore(code: u32, derived: bool, convergent: bool, entry_body: &str) -> Keyring {
    let policy = format!(
        r#"{{"name":"fuzz","keys":{{"1":{entry}}},"derived":{derived},"kdf":1,"convergent_encryption":{convergent},"exportable":true,"min_decryption_version":1,"min_encryption_version":0,"latest_version":1,"convergent_version":{cv},"type":{code},"allow_plaintext_backup":true}}"#,
        entry = entry(entry_body),
        cv = if convergent { -1 } else { 0 },
    );
    let blob = b64(format!(r#"{{"policy":{policy}}}"#).as_bytes());
    match backup::restore(&blob, None) {
        Ok(ring) => ring,
        Err(e) => panic!("fixture keyring of type {code} does not restore: {e}"),
    }
}

fn symmetric(code: u32, tag: u8, derived: bool, convergent: bool) -> Keyring {
    let key = format!(r#""key":"{}""#, b64(&material(tag, 32)));
    restore(code, derived, convergent, &key)
}

fn ed25519_entry() -> String {
    let seed = material(0x25, 32);
    let pair = match ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed) {
        Ok(pair) => pair,
        Err(e) => panic!("ed25519 seed: {e}"),
    };
    let mut full = seed;
    full.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
    format!(r#""key":"{}""#, b64(&full))
}

/// aes256-gcm96, neither derived nor convergent.
pub static AES256: LazyLock<Keyring> = LazyLock::new(|| symmetric(0, 0xa5, false, false));
/// chacha20-poly1305, derived (needs `CONTEXT`).
pub static CHACHA20_DERIVED: LazyLock<Keyring> = LazyLock::new(|| symmetric(5, 0xc2, true, false));
/// xchacha20-poly1305, derived and convergent (version 3).
pub static XCHACHA_CONVERGENT: LazyLock<Keyring> =
    LazyLock::new(|| symmetric(11, 0x3c, true, true));

pub static ED25519: LazyLock<Keyring> =
    LazyLock::new(|| restore(2, false, false, &ed25519_entry()));
/// Derived Ed25519: each context signs with its own key.
pub static ED25519_DERIVED: LazyLock<Keyring> =
    LazyLock::new(|| restore(2, true, false, &ed25519_entry()));
/// ecdsa-p256 with a small constant scalar (any 1 <= d < n is a valid key).
pub static ECDSA_P256: LazyLock<Keyring> = LazyLock::new(|| {
    restore(
        1,
        false,
        false,
        r#""ec_d":73786976294838206464123456789012345678901234567890"#,
    )
});
pub static RSA2048: LazyLock<Keyring> = LazyLock::new(|| {
    restore(
        3,
        false,
        false,
        &format!(r#""rsa_key":{}"#, RSA_2048.trim()),
    )
});
pub static MLDSA44: LazyLock<Keyring> = LazyLock::new(|| {
    restore(
        12,
        false,
        false,
        &format!(r#""key":"{}""#, b64(&material(0x44, 32))),
    )
});

/// A BYOK wrapping key (RSA-4096, `openssl genpkey`, PKCS#8), fixed so that
/// a crashing input of `byok_unwrap` reproduces.
pub static WRAPPING_KEY: LazyLock<transit_keys::byok::WrappingKey> = LazyLock::new(|| {
    let der = STANDARD
        .decode(include_str!("../fixtures/wrapping-rsa4096.pk8.b64").trim())
        .expect("fixture is base64");
    transit_keys::byok::WrappingKey::from_pkcs8(transit_keys::secret::SecretBytes::new(der))
        .expect("fixture is an RSA-4096 key")
});
