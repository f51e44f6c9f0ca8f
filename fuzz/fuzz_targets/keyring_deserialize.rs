//! Arbitrary bytes as a stored keyring: `Keyring::from_stored_bytes` must never
//! panic, and whatever it accepts must serialize back to bytes that parse to
//! the same keyring (the storage format is a fixed point after one round).
#![no_main]

use libfuzzer_sys::fuzz_target;
use transit_keys::Keyring;

fuzz_target!(|data: &[u8]| {
    let Ok(ring) = Keyring::from_stored_bytes(data) else {
        return;
    };
    let stored = ring.to_stored_bytes().expect("a parsed keyring serializes");
    let again = Keyring::from_stored_bytes(&stored).expect("our own output parses");
    assert_eq!(&*again.to_stored_bytes().expect("serializes"), &*stored);
});
