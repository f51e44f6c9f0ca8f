//! ring and RustCrypto, run side by side on random inputs: the same bytes out of
//! every encryption, and the same verdict (and plaintext) on every decryption,
//! including of tampered ciphertexts.

use proptest::prelude::*;
use transit_keys::KeyType;
use transit_keys::aead::{AeadKey, nonce_len, rust_crypto};

const AEADS: [KeyType; 4] = [
    KeyType::Aes128Gcm96,
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::XChaCha20Poly1305,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn implementations_agree(
        which in 0usize..4,
        key in proptest::collection::vec(any::<u8>(), 32),
        nonce in proptest::collection::vec(any::<u8>(), 24),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
        plaintext in proptest::collection::vec(any::<u8>(), 0..300),
        flip in any::<(usize, u8)>(),
    ) {
        let t = AEADS[which];
        let key = &key[..t.symmetric_key_len().unwrap()];
        let nonce = &nonce[..nonce_len(t)];
        let ours = AeadKey::new(t, key).unwrap();
        let sealed = ours.seal(nonce, &aad, &plaintext).unwrap();
        prop_assert_eq!(&sealed, &rust_crypto::seal(t, key, nonce, &aad, &plaintext).unwrap());

        let mut tampered = sealed.clone();
        let (index, mask) = flip;
        let index = index % tampered.len();
        tampered[index] ^= mask;
        for candidate in [&sealed, &tampered] {
            let a = ours.open(candidate, &aad).map(|p| p.to_vec());
            let b = rust_crypto::open(t, key, candidate, &aad).map(|p| p.to_vec());
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(&ours.open(&sealed, &aad).unwrap()[..], &plaintext[..]);
    }
}
