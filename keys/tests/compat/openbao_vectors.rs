//! Vectors recorded from a real OpenBao 2.7.2 (`keys/tests/data/record_vectors.py`):
//! every backup restores into a `Keyring`, every ciphertext decrypts, every HMAC and
//! deterministic output (convergent ciphertexts, Ed25519 signatures) is equal byte
//! for byte, and every signature verifies.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use transit_keys::backup;
use transit_keys::export::{ExportFormat, ExportType};
use transit_keys::sign::SignOptions;
use transit_keys::{CryptoParams, Error, HashAlgorithm, KeyType, Keyring};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/openbao-2.7.2")
}

fn load(file: &str) -> Value {
    let text =
        std::fs::read_to_string(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn bytes(v: &Value, field: &str) -> Option<Vec<u8>> {
    v.get(field).and_then(Value::as_str).map(|s| {
        STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("{field}: {e}"))
    })
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

fn restore(doc: &Value) -> Keyring {
    backup::restore(text(doc, "backup"), None)
        .unwrap_or_else(|e| panic!("{}: restore: {e}", text(doc, "key_type")))
}

fn vector_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(data_dir())
        .expect("vector directory")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json") && n != "refused.json" && n != "trimmed.json")
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "expected the recorded vector files, found {files:?}"
    );
    files
}

#[derive(Default, Debug)]
struct Counts {
    decrypted: usize,
    convergent_equal: usize,
    hmacs_equal: usize,
    signatures_verified: usize,
    signatures_equal: usize,
    public_keys_equal: usize,
    exports_equal: usize,
    /// RSA signatures over hashes aws-lc-rs cannot do (SHA-1, SHA-224, SHA-3, none).
    rsa_hash_unsupported: usize,
}

#[test]
fn openbao_vectors() {
    let mut counts = Counts::default();
    for file in vector_files() {
        let doc = load(&file);
        let ring = restore(&doc);
        check_ciphertexts(&file, &doc, &ring, &mut counts);
        check_hmacs(&file, &doc, &ring, &mut counts);
        check_signatures(&file, &doc, &ring, &mut counts);
        check_read(&file, &doc, &ring, &mut counts);
        check_exports(&file, &doc, &ring, &mut counts);
    }
    println!("openbao vectors: {counts:?}");
    assert!(counts.decrypted >= 300, "{counts:?}");
    assert!(counts.convergent_equal >= 40, "{counts:?}");
    assert!(counts.hmacs_equal >= 800, "{counts:?}");
    assert!(counts.signatures_verified >= 300, "{counts:?}");
    assert!(counts.signatures_equal >= 20, "{counts:?}");
    assert!(counts.public_keys_equal >= 25, "{counts:?}");
    assert!(counts.exports_equal >= 150, "{counts:?}");
}

fn check_ciphertexts(file: &str, doc: &Value, ring: &Keyring, counts: &mut Counts) {
    let convergent = ring.convergent_encryption();
    let items = doc["ciphertexts"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(doc["datakeys"].as_array().into_iter().flatten());
    for c in items {
        if c.get("error").is_some() {
            continue;
        }
        let context = bytes(c, "context");
        let aad = bytes(c, "associated_data");
        let version = c["key_version"].as_i64().unwrap_or(0);
        let params = CryptoParams {
            context: context.as_deref(),
            associated_data: aad.as_deref(),
            key_version: version,
        };
        let plaintext = bytes(c, "plaintext").unwrap_or_default();
        let ciphertext = text(c, "ciphertext");
        let got = ring
            .decrypt(ciphertext, &params)
            .unwrap_or_else(|e| panic!("{file}: decrypt {c}: {e}"));
        assert_eq!(&got[..], &plaintext[..], "{file}: {c}");
        counts.decrypted += 1;
        if convergent && aad.is_none() {
            let ours = ring
                .encrypt(&plaintext, &params)
                .unwrap_or_else(|e| panic!("{file}: encrypt {c}: {e}"));
            assert_eq!(
                ours.text, ciphertext,
                "{file}: convergent output differs from OpenBao's"
            );
            counts.convergent_equal += 1;
        }
    }
}

fn check_hmacs(file: &str, doc: &Value, ring: &Keyring, counts: &mut Counts) {
    for h in doc["hmacs"].as_array().into_iter().flatten() {
        let alg: HashAlgorithm = text(h, "algorithm")
            .parse()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let input = bytes(h, "input").unwrap_or_default();
        let version = h["key_version"].as_i64().unwrap_or(0);
        let ours = ring
            .hmac(&input, alg, version)
            .unwrap_or_else(|e| panic!("{file}: hmac {h}: {e}"));
        assert_eq!(ours.text, text(h, "hmac"), "{file}: {h}");
        assert_eq!(
            ring.verify_hmac(&input, text(h, "hmac"), alg),
            Ok(true),
            "{file}: {h}"
        );
        counts.hmacs_equal += 1;
    }
}

fn options(s: &Value) -> SignOptions {
    SignOptions::parse(
        text(s, "hash_algorithm"),
        s["prehashed"].as_bool().unwrap_or(false),
        text(s, "signature_algorithm"),
        text(s, "salt_length"),
        text(s, "marshaling_algorithm"),
    )
    .unwrap_or_else(|e| panic!("options of {s}: {e}"))
}

fn check_signatures(file: &str, doc: &Value, ring: &Keyring, counts: &mut Counts) {
    let deterministic = ring.key_type() == KeyType::Ed25519;
    for s in doc["signatures"].as_array().into_iter().flatten() {
        if s.get("error").is_some() {
            continue;
        }
        let opts = options(s);
        let input = bytes(s, "input").unwrap_or_default();
        let context = bytes(s, "context");
        let signature = text(s, "signature");
        match ring.verify(&input, signature, context.as_deref(), &opts) {
            Ok(valid) => assert!(valid, "{file}: OpenBao's signature does not verify: {s}"),
            Err(Error::HashNotSupportedForKey { .. }) if ring.key_type().is_rsa() => {
                counts.rsa_hash_unsupported += 1;
                continue;
            }
            Err(e) => panic!("{file}: verify {s}: {e}"),
        }
        counts.signatures_verified += 1;
        if deterministic {
            let version = s["key_version"].as_i64().unwrap_or(0);
            let ours = ring
                .sign(&input, context.as_deref(), version, &opts)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                ours.text, signature,
                "{file}: ed25519 signature differs: {s}"
            );
            if let Some(public) = bytes(s, "public_key") {
                assert_eq!(
                    ours.public_key.map(|p| p.to_vec()),
                    Some(public),
                    "{file}: {s}"
                );
            }
            counts.signatures_equal += 1;
        }
    }
}

/// The per-version public keys a key read shows (PEM, or base64 raw).
fn check_read(file: &str, doc: &Value, ring: &Keyring, counts: &mut Counts) {
    let mut reads = vec![(None, &doc["read"])];
    for r in doc["read_with_context"].as_array().into_iter().flatten() {
        reads.push((bytes(r, "context"), &r["read"]));
    }
    for (context, read) in reads {
        let Some(keys) = read["keys"].as_object() else {
            continue;
        };
        let infos = ring
            .version_infos(context.as_deref())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(infos.len(), keys.len(), "{file}: versions listed");
        for info in infos {
            let theirs = &keys[&info.number.to_string()];
            match (&info.public_key, theirs) {
                (Some(ours), Value::Object(entry)) => {
                    assert_eq!(
                        ours,
                        text(theirs, "public_key"),
                        "{file}: v{} public key",
                        info.number
                    );
                    let _ = entry;
                    counts.public_keys_equal += 1;
                }
                (None, Value::Number(created)) => {
                    assert_eq!(
                        Some(info.created.unix_timestamp()),
                        created.as_i64(),
                        "{file}: creation time"
                    );
                }
                other => panic!("{file}: read shape differs: {other:?}"),
            }
        }
    }
}

/// Every export OpenBao produced, ours must equal byte for byte.
fn check_exports(file: &str, doc: &Value, ring: &Keyring, counts: &mut Counts) {
    let Some(exports) = doc["export"].as_object() else {
        return;
    };
    for (export_type, by_format) in exports {
        let Ok(t) = export_type.parse::<ExportType>() else {
            continue;
        };
        for (format, result) in by_format.as_object().into_iter().flatten() {
            let format: ExportFormat = if format == "default" {
                ExportFormat::Default
            } else {
                format.parse().unwrap()
            };
            let ours = ring.export(t, format, None);
            match (result.get("error"), ours) {
                (Some(_), Err(_)) => {}
                (Some(err), Ok(_)) => panic!(
                    "{file}: {export_type}/{format:?}: OpenBao refused ({err}) but we exported"
                ),
                (None, Err(e)) => panic!("{file}: {export_type}/{format:?}: {e}"),
                (None, Ok(ours)) => {
                    let theirs = result.as_object().unwrap();
                    assert_eq!(ours.len(), theirs.len(), "{file}: {export_type}/{format:?}");
                    for (n, text) in ours {
                        assert_eq!(
                            text.as_str(),
                            theirs[&n.to_string()].as_str().unwrap(),
                            "{file}: {export_type}/{format:?} v{n}"
                        );
                        counts.exports_equal += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn trimmed_keyring_keeps_only_available_versions() {
    let doc = load("trimmed.json");
    let ring = restore(&doc);
    assert_eq!(ring.min_available_version(), 2);
    assert!(ring.version(1).is_none());
    for c in doc["ciphertexts"].as_array().into_iter().flatten() {
        let result = ring.decrypt(text(c, "ciphertext"), &CryptoParams::default());
        if c["key_version"].as_i64() == Some(1) {
            assert_eq!(result.unwrap_err(), Error::VersionTooOld);
        } else {
            assert_eq!(
                result.unwrap()[..],
                bytes(c, "plaintext").unwrap_or_default()[..]
            );
        }
    }
}
