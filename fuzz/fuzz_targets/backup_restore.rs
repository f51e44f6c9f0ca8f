//! `backup::restore` on arbitrary text, and on the base64 of the raw bytes so
//! the JSON layer gets fuzzed too. A bad blob must be an error, never a panic.
//! A blob that does restore must give a keyring that works: its own ciphertexts,
//! HMACs and signatures check, and its backup restores to the same backup.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use transit_keys::backup::{backup, restore};
use transit_keys::{CryptoParams, HashAlgorithm, Keyring, SignOptions};
use transit_keys_fuzz::CONTEXT;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&STANDARD.encode(data));
});

fn check(blob: &str) {
    let Ok(ring) = restore(blob, None) else {
        return;
    };
    let _ = restore(blob, Some("renamed"));
    exercise(&ring);

    if let Ok(first) = backup(&ring) {
        let again = match restore(&first, None) {
            Ok(r) => r,
            Err(e) => panic!("{ring:?}: its own backup does not restore: {e}"),
        };
        let second = backup(&again).ok();
        assert_eq!(
            second.as_deref().map(String::as_str),
            Some(first.as_str()),
            "{ring:?}: backup -> restore -> backup is not stable"
        );
    }
}

/// Every operation of the key type; whatever succeeds must check back.
fn exercise(ring: &Keyring) {
    let _ = ring.version_infos(None);
    let _ = ring.version_infos(Some(CONTEXT));
    let _ = ring.rotation_due(time::OffsetDateTime::UNIX_EPOCH);

    let input = b"fuzz input";
    let params = CryptoParams {
        context: Some(CONTEXT),
        ..Default::default()
    };
    if let Ok(sealed) = ring.encrypt(input, &params) {
        match ring.decrypt(&sealed.text, &params) {
            Ok(plain) => assert_eq!(&plain[..], input),
            Err(e) => panic!("{ring:?}: own ciphertext does not decrypt: {e}"),
        }
    }
    if let Ok(mac) = ring.hmac(input, HashAlgorithm::Sha2_256, 0) {
        assert_eq!(
            ring.verify_hmac(input, &mac.text, HashAlgorithm::Sha2_256),
            Ok(true),
            "{ring:?}: own HMAC does not verify"
        );
    }
    let opts = SignOptions::default();
    if let Ok(sig) = ring.sign(input, Some(CONTEXT), 0, &opts) {
        assert_eq!(
            ring.verify(input, &sig.text, Some(CONTEXT), &opts),
            Ok(true),
            "{ring:?}: own signature does not verify"
        );
    }
}
