//! ring (`AeadKey`) against RustCrypto (`aead::rust_crypto`) for every AEAD type:
//! with key, nonce, associated data and plaintext from the fuzz input, both must
//! seal to the same bytes, and on mutated ciphertexts both must agree on
//! success or failure, on the error, and on the plaintext.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use transit_keys::KeyType;
use transit_keys::aead::{self, AeadKey, TAG_LEN, rust_crypto};

const TYPES: [KeyType; 4] = [
    KeyType::Aes128Gcm96,
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::XChaCha20Poly1305,
];

fuzz_target!(|data: &[u8]| {
    let _ = run(Unstructured::new(data));
});

fn run(mut u: Unstructured<'_>) -> Result<()> {
    let t = *u.choose(&TYPES)?;
    let Some(key_len) = t.symmetric_key_len() else {
        return Ok(());
    };
    let key = u.bytes(key_len)?;
    let nonce = u.bytes(aead::nonce_len(t))?;
    let aad: &[u8] = u.arbitrary()?;
    let mutations: Vec<(u8, u16, u8)> = u.arbitrary()?;
    let plaintext = u.take_rest();

    let ring = match AeadKey::new(t, key) {
        Ok(k) => k,
        Err(e) => panic!("{t}: AeadKey::new with a {key_len}-byte key: {e}"),
    };
    let sealed = ring.seal(nonce, aad, plaintext);
    let sealed_rc = rust_crypto::seal(t, key, nonce, aad, plaintext);
    assert_eq!(
        sealed, sealed_rc,
        "{t}: ring and RustCrypto seal differently"
    );
    let Ok(sealed) = sealed else {
        return Ok(());
    };
    assert_eq!(sealed.len(), nonce.len() + plaintext.len() + TAG_LEN);
    assert_eq!(&sealed[..nonce.len()], nonce);

    // The untouched ciphertext opens to the plaintext with both.
    check_open(t, &ring, key, &sealed, aad, Some(plaintext));

    // Mutations: flip a bit, truncate, extend, swap two bytes, or change the
    // associated data. Both must agree; a real change must not authenticate.
    let mut longer_aad = aad.to_vec();
    for (kind, at, value) in mutations.into_iter().take(8) {
        let mut ct = sealed.clone();
        let mut this_aad = aad;
        let pos = usize::from(at) % ct.len();
        match kind % 5 {
            0 => ct[pos] ^= 1 << (value % 8),
            1 => ct.truncate(pos),
            2 => ct.push(value),
            3 => {
                longer_aad.push(value);
                this_aad = &longer_aad[..];
            }
            _ => {
                let other = usize::from(value) % ct.len();
                ct.swap(pos, other);
            }
        }
        let unchanged = ct == sealed && this_aad == aad;
        let outcome = check_open(t, &ring, key, &ct, this_aad, unchanged.then_some(plaintext));
        assert!(
            unchanged || !outcome,
            "{t}: a changed ciphertext authenticates"
        );
    }
    Ok(())
}

/// Opens with both; they must agree. With `expected`, both must give exactly it.
/// Returns whether they opened it.
fn check_open(
    t: KeyType,
    ring: &AeadKey,
    key: &[u8],
    ct: &[u8],
    aad: &[u8],
    expected: Option<&[u8]>,
) -> bool {
    let a = ring.open(ct, aad);
    let b = rust_crypto::open(t, key, ct, aad);
    match (&a, &b) {
        (Ok(pa), Ok(pb)) => assert_eq!(
            &pa[..],
            &pb[..],
            "{t}: the two open to different plaintexts"
        ),
        (Err(ea), Err(eb)) => assert_eq!(ea, eb, "{t}: the two fail differently"),
        _ => panic!(
            "{t}: ring {:?} but RustCrypto {:?}",
            a.as_ref().map(|p| p.len()),
            b.as_ref().map(|p| p.len())
        ),
    }
    if let Some(plaintext) = expected {
        match &a {
            Ok(p) => assert_eq!(&p[..], plaintext, "{t}: round trip changed the data"),
            Err(e) => panic!("{t}: own ciphertext does not open: {e}"),
        }
    }
    a.is_ok()
}
