//! Property tests of the version rules: any sequence of rotations, configuration
//! changes and trims keeps the invariants, failed changes change nothing, and
//! every ciphertext keeps decrypting exactly while its version is allowed.

use proptest::prelude::*;
use time::OffsetDateTime;
use transit_keys::{ConfigChange, CreateOptions, CryptoParams, Error, KeyType, Keyring};

#[derive(Clone, Debug)]
enum Op {
    Rotate,
    MinDecryption(i64),
    MinEncryption(i64),
    Trim(i64),
    Encrypt(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Rotate),
        2 => (-1i64..8).prop_map(Op::MinDecryption),
        2 => (-1i64..8).prop_map(Op::MinEncryption),
        1 => (-1i64..8).prop_map(Op::Trim),
        3 => (-1i64..8).prop_map(Op::Encrypt),
    ]
}

fn check_invariants(k: &Keyring) {
    let (latest, dec, enc, avail) = (
        k.latest_version(),
        k.min_decryption_version(),
        k.min_encryption_version(),
        k.min_available_version(),
    );
    assert!(latest >= 1);
    assert!(dec >= 1 && dec <= latest, "{k:?}");
    assert!(enc == 0 || (enc >= dec && enc <= latest), "{k:?}");
    assert!(avail <= dec, "{k:?}");
    for n in 1..=latest {
        assert_eq!(
            k.version(n).is_some(),
            n >= avail.max(1),
            "version {n} of {k:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn version_rules_hold(ops in proptest::collection::vec(op(), 1..40)) {
        let now = OffsetDateTime::from_unix_timestamp(1_795_471_584).unwrap();
        let mut k = Keyring::create("p", KeyType::Aes128Gcm96, &CreateOptions::default(), now).unwrap();
        let params = CryptoParams::default();
        let mut sealed: Vec<(u32, String)> = Vec::new();
        for op in ops {
            let before = k.to_stored_bytes().unwrap();
            let result = match op {
                Op::Rotate => k.rotate(now).map(|_| ()),
                Op::MinDecryption(v) => {
                    k.configure(&ConfigChange { min_decryption_version: Some(v), ..Default::default() }).map(|_| ())
                }
                Op::MinEncryption(v) => {
                    k.configure(&ConfigChange { min_encryption_version: Some(v), ..Default::default() }).map(|_| ())
                }
                Op::Trim(v) => k.trim(v),
                Op::Encrypt(v) => k
                    .encrypt(b"payload", &CryptoParams { key_version: v, ..params })
                    .map(|s| sealed.push((s.key_version, s.text))),
            };
            if result.is_err() {
                // A refused change leaves the keyring exactly as it was.
                prop_assert_eq!(&*before, &*k.to_stored_bytes().unwrap());
            }
            check_invariants(&k);
            for (version, text) in &sealed {
                match k.decrypt(text, &params) {
                    Ok(plain) => {
                        prop_assert!(*version >= k.min_decryption_version());
                        prop_assert_eq!(&plain[..], b"payload");
                    }
                    Err(e) => {
                        prop_assert!(*version < k.min_decryption_version());
                        prop_assert_eq!(e, Error::VersionTooOld);
                    }
                }
            }
            // Storage round trip keeps everything.
            let again = Keyring::from_stored_bytes(&k.to_stored_bytes().unwrap()).unwrap();
            prop_assert_eq!(&*again.to_stored_bytes().unwrap(), &*k.to_stored_bytes().unwrap());
        }
    }
}
