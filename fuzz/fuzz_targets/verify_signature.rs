//! Arbitrary signatures and inputs against fixed ed25519 (plain and derived),
//! ecdsa-p256, rsa-2048 and mldsa-44 keyrings, with sign options parsed from
//! fuzz bytes. Verification must never panic; when the fuzz bytes ask for it,
//! a fresh signature over the input must verify, and not over a changed input.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use transit_keys::{Keyring, SignOptions};
use transit_keys_fuzz::{CONTEXT, ECDSA_P256, ED25519, ED25519_DERIVED, MLDSA44, RSA2048};

const HASHES: &[&str] = &[
    "", "none", "sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256",
    "sha3-384", "sha3-512", "md5",
];
const SCHEMES: &[&str] = &["", "pss", "pkcs1v15", "PSS"];
const SALTS: &[&str] = &[
    "", "auto", "hash", "0", "20", "32", "48", "64", "190", "222", "478", "65535", "65536", "-1",
    "+32", "x",
];
const MARSHALINGS: &[&str] = &["", "asn1", "jws", "der"];

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let rings: [&Keyring; 5] = [&ED25519, &ED25519_DERIVED, &ECDSA_P256, &RSA2048, &MLDSA44];
    let ring = *u.choose(&rings)?;
    let salt = if u.ratio(1, 4)? {
        u.int_in_range(0..=600u16)?.to_string()
    } else {
        (*u.choose(SALTS)?).to_owned()
    };
    let parsed = SignOptions::parse(
        u.choose(HASHES)?,
        u.arbitrary()?,
        u.choose(SCHEMES)?,
        &salt,
        u.choose(MARSHALINGS)?,
    );
    let context = *u.choose(&[Some(CONTEXT), None, Some(&b""[..]), Some(&b"ctx"[..])])?;
    let round_trip: bool = u.arbitrary()?;
    let signature = match u.int_in_range(0..=3u8)? {
        0 => u.arbitrary::<&str>()?.to_owned(),
        1 => format!("vault:v1:{}", STANDARD.encode(u.arbitrary::<&[u8]>()?)),
        2 => format!(
            "vault:v1:{}",
            URL_SAFE_NO_PAD.encode(u.arbitrary::<&[u8]>()?)
        ),
        _ => format!(
            "vault:v{}:{}",
            u.int_in_range(-2..=3i64)?,
            STANDARD.encode(u.arbitrary::<&[u8]>()?)
        ),
    };
    let input = u.take_rest();
    let Ok(opts) = parsed else {
        return Ok(());
    };

    let _ = ring.verify(input, &signature, context, &opts);

    // regressions/verify_signature/ecdsa-sign-prehashed-empty-input once panicked
    // here (RFC 6979 with an empty digest); keys/src/sign/ecdsa.rs now refuses it.
    if round_trip && let Ok(sig) = ring.sign(input, context, 0, &opts) {
        assert_eq!(
            ring.verify(input, &sig.text, context, &opts),
            Ok(true),
            "{ring:?} {opts:?}: own signature does not verify"
        );
        if let Some((first, rest)) = input.split_first() {
            let mut changed = vec![first ^ 0x01];
            changed.extend_from_slice(rest);
            assert_ne!(
                ring.verify(&changed, &sig.text, context, &opts),
                Ok(true),
                "{ring:?} {opts:?}: signature verifies over a different input"
            );
        }
    }
    Ok(())
}
