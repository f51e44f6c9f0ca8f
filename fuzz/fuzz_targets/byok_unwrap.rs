//! BYOK imports: whatever the ciphertext, `WrappingKey::unwrap_key` never
//! panics and fails with the one error that tells nothing of which step
//! failed. Byte 0 picks the key type, the OAEP hash and the mode:
//! * 0: the rest, as text, is the `ciphertext` parameter;
//! * 1: the rest, base64-encoded, is (so the RSA-OAEP step is reached);
//! * 2: the rest is key material wrapped for the wrapping key (so AES-KWP
//!   and the material's parse are reached): it unwraps exactly when it is a
//!   key of that type, and never with another hash;
//! * 3: a valid wrapping of a fixed key with one byte changed (byte 1 of the
//!   rest picks the position, byte 2 the change): it never unwraps.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use transit_keys::byok::{OaepHash, wrap_for_pem};
use transit_keys::{Error, KeyType};
use transit_keys_fuzz::WRAPPING_KEY;

const HASHES: [OaepHash; 4] = [
    OaepHash::Sha1,
    OaepHash::Sha256,
    OaepHash::Sha384,
    OaepHash::Sha512,
];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let importable: Vec<KeyType> = KeyType::ALL
        .into_iter()
        .filter(|&t| transit_keys::byok::importable(t))
        .collect();
    let key_type = importable[usize::from(flags >> 4) % importable.len()];
    let hash = HASHES[usize::from(flags >> 2) & 3];
    let other_hash = HASHES[(usize::from(flags >> 2) + 1) & 3];
    let key = &*WRAPPING_KEY;
    let one_error = |r: Result<_, Error>| {
        if let Err(e) = &r {
            assert_eq!(
                *e,
                Error::ImportUnwrapFailed,
                "a second error tells a step apart"
            );
        }
        r
    };
    match flags & 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = one_error(key.unwrap_key(text, hash, key_type));
            }
        }
        1 => {
            let _ = one_error(key.unwrap_key(&STANDARD.encode(rest), hash, key_type));
        }
        2 => {
            let Ok(wrapped) = wrap_for_pem(key.public_pem(), hash, rest) else {
                return;
            };
            let unwrapped = one_error(key.unwrap_key(&wrapped, hash, key_type));
            let expect_ok = match key_type {
                t if t.is_aead() => Some(rest.len()) == t.symmetric_key_len(),
                KeyType::Hmac => (32..=512).contains(&rest.len()),
                // PKCS#8 parsing decides; a random input almost never is one.
                _ => unwrapped.is_ok(),
            };
            assert_eq!(
                unwrapped.is_ok(),
                expect_ok,
                "{key_type}: {} bytes",
                rest.len()
            );
            assert!(one_error(key.unwrap_key(&wrapped, other_hash, key_type)).is_err());
        }
        _ => {
            let (Some(&at), Some(&change)) = (rest.first(), rest.get(1)) else {
                return;
            };
            if change == 0 {
                return;
            }
            let wrapped = wrap_for_pem(key.public_pem(), hash, &[0x5a; 32]).expect("wraps");
            let mut raw = STANDARD.decode(wrapped).expect("base64");
            let at = usize::from(at) * raw.len() / 256;
            raw[at] ^= change;
            let result =
                one_error(key.unwrap_key(&STANDARD.encode(raw), hash, KeyType::Aes256Gcm96));
            assert!(result.is_err(), "a changed wrapping unwrapped (byte {at})");
        }
    }
});
