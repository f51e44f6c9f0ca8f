//! Arbitrary strings as ciphertexts: parsing and decryption must never panic,
//! whatever the keyring (plain, derived, convergent). Byte 0 picks the request
//! options; the rest, as UTF-8, is the ciphertext. The same bytes then go
//! through encrypt -> decrypt as plaintext, which must round-trip (and encrypt
//! deterministically under the convergent keyring).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use transit_keys::envelope;
use transit_keys::{CryptoParams, Keyring};
use transit_keys_fuzz::{AES256, CHACHA20_DERIVED, CONTEXT, XCHACHA_CONVERGENT};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let context = match flags & 3 {
        0 => Some(CONTEXT),
        1 => None,
        2 => Some(&b""[..]),
        _ => Some(&b"other-context"[..]),
    };
    let associated_data = (flags & 4 != 0).then_some(&b"fuzz-aad"[..]);
    let params = CryptoParams {
        context,
        associated_data,
        key_version: i64::from(flags >> 3) - 2,
    };
    let rings: [&Keyring; 3] = [&AES256, &CHACHA20_DERIVED, &XCHACHA_CONVERGENT];

    if let Ok(text) = std::str::from_utf8(rest) {
        check_envelope(text);
        for ring in rings {
            let _ = ring.decrypt(text, &params);
            let _ = ring.rewrap(text, &params);
        }
    }

    for ring in rings {
        let Ok(sealed) = ring.encrypt(rest, &params) else {
            continue;
        };
        let decrypt_params = CryptoParams {
            key_version: 0,
            ..params
        };
        match ring.decrypt(&sealed.text, &decrypt_params) {
            Ok(plain) => assert_eq!(&plain[..], rest, "{ring:?}: round trip changed the data"),
            Err(e) => panic!("{ring:?}: own ciphertext does not decrypt: {e}"),
        }
        if ring.convergent_encryption() {
            let again = ring.encrypt(rest, &params).ok();
            assert_eq!(
                again.as_ref(),
                Some(&sealed),
                "convergent encryption is not deterministic"
            );
        }
    }
});

/// A parsed envelope re-encodes to one that parses to the same version and
/// payload, and the envelope's (SIMD) base64 agrees with the `base64` crate's
/// strict standard engine both ways.
fn check_envelope(text: &str) {
    let _ = envelope::parse(text);
    let Ok(parsed) = envelope::parse_raw(text) else {
        return;
    };
    let reference = STANDARD.decode(parsed.body).ok();
    assert_eq!(
        envelope::decode_standard(parsed.body),
        reference,
        "envelope base64 and the base64 crate disagree on {:?}",
        parsed.body
    );
    if let Some(payload) = &reference {
        let encoded = envelope::encode(7, payload);
        assert_eq!(
            encoded.strip_prefix("vault:v7:"),
            Some(&*STANDARD.encode(payload))
        );
    }
    let (Ok(version), Some(payload)) = (
        u32::try_from(parsed.version),
        envelope::decode_standard(parsed.body),
    ) else {
        return;
    };
    let encoded = envelope::encode(version, &payload);
    let reparsed = envelope::parse_raw(&encoded);
    assert_eq!(reparsed.map(|e| e.version), Ok(i64::from(version)));
    let body = reparsed.map(|e| e.body).unwrap_or_default();
    assert_eq!(
        envelope::decode_standard(body).as_deref(),
        Some(&payload[..])
    );
}
