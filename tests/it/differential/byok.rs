//! Script: BYOK (`wrapping_key`, `keys/:name/import`, `import_version`,
//! `byok-export`), mostly its refusals. Each server imports what the script
//! wraps for that server's own wrapping key (`Script::set`).

use serde_json::{Value, json};
use transit_keys::byok::{OaepHash, wrap_for_pem};
use transitd_test_support::b64;

use super::harness::{Script, Vars};
use super::key;

/// A P-256 public key (`openssl genpkey`), the same on both servers.
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+PsiNpOHb1UUmoeY2GzlLyjrnnfx
puglITNj8FLU8UPEbcyzXIxer6Zd7oIsH5wdaydemlFqfBI6GzSRNe63jg==
-----END PUBLIC KEY-----
";

/// `material` wrapped for this server's wrapping key (`${wrap_pem}`).
fn wrapped(material: &'static [u8], hash: OaepHash) -> impl Fn(&Vars) -> Value {
    move |vars| {
        let pem = vars["wrap_pem"].as_str().expect("wrapping key saved");
        json!(wrap_for_pem(pem, hash, material).expect("wraps"))
    }
}

pub(super) fn byok(s: &mut Script<'_>) {
    s.section("byok");
    s.get("wrapping key", "transit/wrapping_key")
        .save("wrap_pem", "/data/public_key")
        .go();
    s.get("wrapping key again", "transit/wrapping_key")
        .save("wrap_pem_again", "/data/public_key")
        .go();
    s.check("the wrapping key is made once", |v| {
        json!(v["wrap_pem"] == v["wrap_pem_again"])
    });
    s.set("aes_1", wrapped(&[0x11; 32], OaepHash::Sha256));
    s.set("aes_2", wrapped(&[0x22; 32], OaepHash::Sha256));
    s.set("aes_sha1", wrapped(&[0x33; 32], OaepHash::Sha1));

    s.post(
        "import aes256",
        "transit/keys/byok-aes/import",
        json!({"ciphertext": "${aes_1}", "exportable": true}),
    )
    .go();
    s.get("read the imported key", "transit/keys/byok-aes").go();
    s.get(
        "export the imported key",
        "transit/export/encryption-key/byok-aes",
    )
    .go();
    s.post(
        "rotate without allow_rotation",
        "transit/keys/byok-aes/rotate",
        json!({}),
    )
    .go();
    s.post(
        "import_version",
        "transit/keys/byok-aes/import_version",
        json!({"ciphertext": "${aes_2}"}),
    )
    .go();
    s.get("read after import_version", "transit/keys/byok-aes")
        .go();
    s.post(
        "import with SHA1",
        "transit/keys/byok-sha1/import",
        json!({"ciphertext": "${aes_sha1}", "hash_function": "sha1", "allow_rotation": true, "auto_rotate_period": "2h"}),
    )
    .go();
    s.get("read the rotatable key", "transit/keys/byok-sha1")
        .go();
    s.post(
        "rotate with allow_rotation",
        "transit/keys/byok-sha1/rotate",
        json!({}),
    )
    .go();
    s.post(
        "import_version after a rotation",
        "transit/keys/byok-sha1/import_version",
        json!({"ciphertext": "${aes_sha1}", "hash_function": "SHA1"}),
    )
    .go();

    for (label, body) in [
        (
            "import over an existing key",
            json!({"ciphertext": "${aes_1}"}),
        ),
        (
            "import convergent",
            json!({"ciphertext": "${aes_1}", "convergent_encryption": true}),
        ),
        (
            "import auto_rotate without allow_rotation",
            json!({"ciphertext": "${aes_1}", "auto_rotate_period": "2h"}),
        ),
        (
            "import unknown type",
            json!({"ciphertext": "${aes_1}", "type": "bogus"}),
        ),
        (
            "import mldsa",
            json!({"ciphertext": "${aes_1}", "type": "mldsa-65"}),
        ),
        (
            "import unknown hash",
            json!({"ciphertext": "${aes_1}", "hash_function": "MD5"}),
        ),
        ("import without ciphertext", json!({})),
        (
            "import short ciphertext",
            json!({"ciphertext": b64(&[0; 16])}),
        ),
        (
            "import garbage ciphertext",
            json!({"ciphertext": b64(&[0; 600])}),
        ),
        ("import non-base64 ciphertext", json!({"ciphertext": "%%%"})),
        (
            "import with the wrong hash",
            json!({"ciphertext": "${aes_1}", "hash_function": "SHA512"}),
        ),
        (
            "import with the wrong type",
            json!({"ciphertext": "${aes_1}", "type": "aes128-gcm96"}),
        ),
        (
            "import an AES key as ed25519",
            json!({"ciphertext": "${aes_1}", "type": "ed25519"}),
        ),
    ] {
        let path = if label == "import over an existing key" {
            "transit/keys/byok-aes/import"
        } else {
            "transit/keys/byok-new/import"
        };
        s.post(label, path, body).go();
    }
    s.get("nothing was created", "transit/keys/byok-new").go();
    s.post(
        "import_version of a missing key",
        "transit/keys/byok-new/import_version",
        json!({"ciphertext": "${aes_1}"}),
    )
    .go();
    s.post(
        "import_version of a generated key",
        &format!("transit/keys/{}/import_version", key("aes256-gcm96")),
        json!({"ciphertext": "${aes_1}"}),
    )
    .go();
    s.post(
        "import_version with the wrong hash",
        "transit/keys/byok-aes/import_version",
        json!({"ciphertext": "${aes_1}", "hash_function": "SHA384"}),
    )
    .go();

    // The public half alone.
    s.post(
        "import an ecdsa public key",
        "transit/keys/byok-ec/import",
        json!({"type": "ecdsa-p256", "public_key": EC_PUBLIC}),
    )
    .go();
    s.get("read the public-only key", "transit/keys/byok-ec")
        .go();
    s.post(
        "sign with the public-only key",
        "transit/sign/byok-ec",
        json!({"input": b64(b"x")}),
    )
    .go();
    s.post(
        "import_version a public key into a public-only version",
        "transit/keys/byok-ec/import_version",
        json!({"public_key": EC_PUBLIC, "version": 1}),
    )
    .go();
    s.post(
        "import_version at a missing version",
        "transit/keys/byok-ec/import_version",
        json!({"public_key": EC_PUBLIC, "version": 7}),
    )
    .go();
    s.post(
        "import a public key as aes",
        "transit/keys/byok-new/import",
        json!({"public_key": EC_PUBLIC}),
    )
    .go();
    s.post(
        "import a P-256 public key as rsa",
        "transit/keys/byok-new/import",
        json!({"type": "rsa-2048", "public_key": EC_PUBLIC}),
    )
    .go();
    s.post(
        "import a public key that is no PEM",
        "transit/keys/byok-new/import",
        json!({"type": "ecdsa-p256", "public_key": "nope"}),
    )
    .go();

    // byok-export.
    s.post(
        "import the wrapping key as a destination",
        "transit/keys/byok-dest/import",
        json!({"type": "rsa-4096", "public_key": "${wrap_pem}"}),
    )
    .go();
    for (label, path) in [
        (
            "byok-export every version",
            "transit/byok-export/byok-dest/byok-aes".to_owned(),
        ),
        (
            "byok-export latest",
            "transit/byok-export/byok-dest/byok-aes/latest".to_owned(),
        ),
        (
            "byok-export v1",
            "transit/byok-export/byok-dest/byok-aes/v1".to_owned(),
        ),
        (
            "byok-export a missing version",
            "transit/byok-export/byok-dest/byok-aes/9".to_owned(),
        ),
        (
            "byok-export a bad version",
            "transit/byok-export/byok-dest/byok-aes/x".to_owned(),
        ),
        (
            "byok-export a missing destination",
            "transit/byok-export/nokey/byok-aes".to_owned(),
        ),
        (
            "byok-export a missing source",
            "transit/byok-export/byok-dest/nokey".to_owned(),
        ),
        (
            "byok-export a key that is not exportable",
            format!("transit/byok-export/byok-dest/{}", key("aes256-gcm96")),
        ),
        (
            "byok-export to an ecdsa destination",
            "transit/byok-export/byok-ec/byok-aes".to_owned(),
        ),
        (
            "byok-export with an unknown hash",
            "transit/byok-export/byok-dest/byok-aes?hash=MD5".to_owned(),
        ),
    ] {
        s.get(label, &path).go();
    }
    // What each server exported for itself imports back.
    s.get(
        "byok-export for re-import",
        "transit/byok-export/byok-dest/byok-aes/1",
    )
    .save("exported_1", "/data/keys/1")
    .go();
    s.post(
        "import what was exported",
        "transit/keys/byok-back/import",
        json!({"ciphertext": "${exported_1}", "exportable": true}),
    )
    .go();
    s.get(
        "the re-imported key is the original",
        "transit/export/encryption-key/byok-back",
    )
    .go();
}
