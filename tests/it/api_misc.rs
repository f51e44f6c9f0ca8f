//! random, hash, cache-config, config/keys, export, backup and restore.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{TestApp, b64};

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn random_bytes() {
    let app = TestApp::new();
    let res = app.write("transit/random", json!({})).await.ok();
    assert_eq!(unb64(&res.data()["random_bytes"]).len(), 32);
    assert_eq!(res.body["warnings"], Value::Null);
    let res = app.write("transit/random/16", json!({})).await.ok();
    assert_eq!(unb64(&res.data()["random_bytes"]).len(), 16);
    // The URL's count wins over the body's.
    let res = app
        .write("transit/random/16", json!({"bytes": 8}))
        .await
        .ok();
    assert_eq!(unb64(&res.data()["random_bytes"]).len(), 16);
    let res = app
        .write("transit/random", json!({"bytes": "8"}))
        .await
        .ok();
    assert_eq!(unb64(&res.data()["random_bytes"]).len(), 8);
    let res = app
        .write("transit/random/seal/8", json!({"format": "hex"}))
        .await
        .ok();
    let hex = res.data()["random_bytes"].as_str().unwrap().to_owned();
    assert_eq!(hex.len(), 16);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        res.body["warnings"],
        json!(["no seal/entropy augmentation available, using platform entropy source"])
    );
    for path in ["transit/random/all", "transit/random/platform"] {
        let res = app.write(path, json!({"bytes": 8})).await.ok();
        assert_eq!(unb64(&res.data()["random_bytes"]).len(), 8);
        assert_eq!(res.body["warnings"], Value::Null);
    }
    let res = app
        .write("transit/random", json!({"source": "seal"}))
        .await
        .ok();
    assert!(res.body["warnings"].is_array());
    let max = app.write("transit/random/131072", json!({})).await.ok();
    assert_eq!(unb64(&max.data()["random_bytes"]).len(), 131_072);
    // Two draws differ.
    let a = app.write("transit/random", json!({})).await.ok();
    let b = app.write("transit/random", json!({})).await.ok();
    assert_ne!(a.data()["random_bytes"], b.data()["random_bytes"]);
}

#[tokio::test]
async fn random_errors() {
    let app = TestApp::new();
    let cases = [
        (
            "transit/random",
            json!({"bytes": 0}),
            "'bytes' cannot be less than 1",
        ),
        (
            "transit/random/0",
            json!({}),
            "'bytes' cannot be less than 1",
        ),
        (
            "transit/random/-1",
            json!({}),
            "'bytes' cannot be less than 1",
        ),
        (
            "transit/random",
            json!({"bytes": 200_000}),
            "'bytes' should be less than 131072",
        ),
        (
            "transit/random/131073",
            json!({}),
            "'bytes' should be less than 131072",
        ),
        (
            "transit/random",
            json!({"format": "raw"}),
            "unsupported encoding format \"raw\"; must be \"hex\" or \"base64\"",
        ),
        (
            "transit/random/foo",
            json!({}),
            "error parsing url-set byte count: strconv.Atoi: parsing \"foo\": invalid syntax",
        ),
        (
            "transit/random/seal/foo",
            json!({}),
            "error parsing url-set byte count: strconv.Atoi: parsing \"foo\": invalid syntax",
        ),
        (
            "transit/random/bogus/8",
            json!({}),
            "unsupported entropy source \"bogus\"; must be \"platform\" or \"seal\", or \"all\"",
        ),
        (
            "transit/random",
            json!({"bytes": "abc"}),
            "error converting input for field \"bytes\": cannot parse value as 'int'",
        ),
    ];
    for (path, body, message) in cases {
        let res = app.write(path, body.clone()).await.expect(400);
        assert_eq!(res.error(), message, "{path} {body}");
    }
    app.read("transit/random").await.expect(405);
    app.write("transit/random/all/8/9", json!({}))
        .await
        .expect(404);
}

#[tokio::test]
async fn hash_sums() {
    let app = TestApp::new();
    let hello = b64(b"hello");
    let res = app
        .write("transit/hash", json!({"input": hello}))
        .await
        .ok();
    assert_eq!(
        res.data()["sum"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    // Values recorded from OpenBao 2.7.2.
    let res = app
        .write(
            "transit/hash/sha3-512",
            json!({"input": hello, "format": "base64"}),
        )
        .await
        .ok();
    assert_eq!(
        res.data()["sum"],
        "ddUnw2jy7+hI7Pawc6NnZ4AIBenu8rGFfV+YTwNutt+JHXX3LZsVRRjBzViDUobR2po43ro96YtaU+XteKhJdg=="
    );
    let res = app
        .write(
            "transit/hash",
            json!({"input": hello, "algorithm": "sha2-512"}),
        )
        .await
        .ok();
    assert_eq!(
        res.data()["sum"],
        "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
    );
    let res = app
        .write(
            "transit/hash",
            json!({"input": hello, "format": "base64", "algorithm": "sha2-224"}),
        )
        .await
        .ok();
    assert_eq!(
        res.data()["sum"],
        "6gmunMZ2jFD87pA+0FRVblv8g0eQfxJZiqJBkw=="
    );
    // The URL's algorithm wins.
    let res = app
        .write(
            "transit/hash/sha2-512",
            json!({"input": hello, "algorithm": "sha2-256"}),
        )
        .await
        .ok();
    assert_eq!(res.data()["sum"].as_str().unwrap().len(), 128);
    for (alg, hex_len) in [
        ("sha2-384", 96),
        ("sha3-224", 56),
        ("sha3-256", 64),
        ("sha3-384", 96),
    ] {
        let res = app
            .write(&format!("transit/hash/{alg}"), json!({"input": hello}))
            .await
            .ok();
        assert_eq!(res.data()["sum"].as_str().unwrap().len(), hex_len, "{alg}");
    }
    let empty = app.write("transit/hash", json!({"input": ""})).await.ok();
    assert_eq!(
        empty.data()["sum"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[tokio::test]
async fn hash_errors() {
    let app = TestApp::new();
    let hello = b64(b"hello");
    let cases = [
        (
            "transit/hash",
            json!({"input": hello, "algorithm": "md5"}),
            "unsupported algorithm md5",
        ),
        (
            "transit/hash",
            json!({"input": hello, "algorithm": "sha1"}),
            "unsupported algorithm sha1",
        ),
        (
            "transit/hash/sha1",
            json!({"input": hello}),
            "unsupported algorithm sha1",
        ),
        (
            "transit/hash",
            json!({"input": hello, "algorithm": "none"}),
            "unsupported algorithm none",
        ),
        (
            "transit/hash",
            json!({"input": "%%"}),
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
        ("transit/hash", json!({}), "input missing"),
        (
            "transit/hash",
            json!({"input": hello, "format": "raw"}),
            "unsupported encoding format raw; must be \"hex\" or \"base64\"",
        ),
    ];
    for (path, body, message) in cases {
        let res = app.write(path, body.clone()).await.expect(400);
        assert_eq!(res.error(), message, "{path} {body}");
    }
    app.read("transit/hash").await.expect(405);
}

#[tokio::test]
async fn config_keys_disables_upsert() {
    let app = TestApp::new();
    let res = app.read("transit/config/keys").await.ok();
    assert_eq!(res.data(), &json!({"disable_upsert": false}));
    let res = app
        .write("transit/config/keys", json!({"disable_upsert": true}))
        .await
        .ok();
    assert_eq!(res.data(), &json!({"disable_upsert": true}));
    assert_eq!(
        app.read("transit/config/keys").await.ok().data()["disable_upsert"],
        true
    );
    let res = app
        .write("transit/encrypt/new", json!({"plaintext": b64(b"x")}))
        .await
        .expect(400);
    assert_eq!(res.error(), "encryption key not found");
    // A write without the field turns it off again, as in OpenBao.
    let res = app.write("transit/config/keys", json!({})).await.ok();
    assert_eq!(res.data(), &json!({"disable_upsert": false}));
    app.write("transit/encrypt/new", json!({"plaintext": b64(b"x")}))
        .await
        .ok();
    let res = app
        .write("transit/config/keys", json!({"disable_upsert": "x"}))
        .await
        .expect(400);
    assert!(res.error().contains("disable_upsert"), "{}", res.error());
    app.call("DELETE", "transit/config/keys", Value::Null)
        .await
        .expect(405);
    app.read("transit/config").await.expect(404);
}

#[tokio::test]
async fn cache_config() {
    let app = TestApp::new();
    assert_eq!(
        app.read("transit/cache-config").await.ok().data(),
        &json!({"size": 0})
    );
    for size in [5, 1, 9, -1] {
        let res = app
            .write("transit/cache-config", json!({"size": size}))
            .await
            .expect(400);
        assert_eq!(
            res.error(),
            "size must be 0 or a value greater or equal to 10"
        );
    }
    let res = app
        .write("transit/cache-config", json!({"size": 20}))
        .await
        .ok();
    assert_eq!(res.data(), &json!({"size": 20}));
    assert_eq!(
        app.read("transit/cache-config").await.ok().data(),
        &json!({"size": 20})
    );
    // The two settings are independent.
    app.write("transit/config/keys", json!({"disable_upsert": true}))
        .await
        .ok();
    assert_eq!(
        app.read("transit/cache-config").await.ok().data()["size"],
        20
    );
    let res = app.write("transit/cache-config", json!({})).await.ok();
    assert_eq!(res.data(), &json!({"size": 0}));
    assert_eq!(
        app.read("transit/config/keys").await.ok().data()["disable_upsert"],
        true
    );
    app.write("transit/cache-config", json!({"size": "abc"}))
        .await
        .expect(400);
    app.call("DELETE", "transit/cache-config", Value::Null)
        .await
        .expect(405);
}

#[tokio::test]
async fn export_keys() {
    let app = TestApp::new();
    app.write("transit/keys/plain", json!({})).await.ok();
    let res = app
        .read("transit/export/encryption-key/plain")
        .await
        .expect(400);
    assert_eq!(res.error(), "private key material is not exportable");

    app.write(
        "transit/keys/aes",
        json!({"type": "aes128-gcm96", "exportable": true}),
    )
    .await
    .ok();
    let res = app.read("transit/export/encryption-key/aes").await.ok();
    assert_eq!(res.data()["name"], "aes");
    assert_eq!(res.data()["type"], "aes128-gcm96");
    let key1 = res.data()["keys"]["1"].clone();
    assert_eq!(unb64(&key1).len(), 16);
    for path in [
        "transit/export/encryption-key/aes/latest",
        "transit/export/encryption-key/aes/v1",
        "transit/export/encryption-key/aes/1?format=raw",
    ] {
        let res = app.read(path).await.ok();
        assert_eq!(res.data()["keys"], json!({"1": key1}), "{path}");
    }
    let hmac = app.read("transit/export/hmac-key/aes").await.ok();
    assert_eq!(unb64(&hmac.data()["keys"]["1"]).len(), 32);
    assert_ne!(hmac.data()["keys"]["1"], key1);

    // The key really is the one in use: encrypt here, decrypt with the export.
    app.write("transit/keys/aes/rotate", json!({})).await.ok();
    let res = app.read("transit/export/encryption-key/aes").await.ok();
    assert_eq!(
        res.data()["keys"].as_object().unwrap().len(),
        2,
        "every version"
    );
    let res = app
        .read("transit/export/encryption-key/aes/latest")
        .await
        .ok();
    assert!(res.data()["keys"].get("2").is_some());

    let errors = [
        (
            "transit/export/encryption-key/aes/7",
            400,
            "version does not exist or cannot be found",
        ),
        (
            "transit/export/encryption-key/aes/abc",
            400,
            "invalid key version",
        ),
        (
            "transit/export/bogus/aes",
            400,
            "invalid export type: bogus",
        ),
        (
            "transit/export/bogus/nokey",
            400,
            "invalid export type: bogus",
        ),
        (
            "transit/export/encryption-key/aes?format=xml",
            400,
            "invalid format: xml",
        ),
        (
            "transit/export/encryption-key/nokey?format=xml",
            400,
            "invalid format: xml",
        ),
        (
            "transit/export/signing-key/aes",
            400,
            "signing not supported for the key",
        ),
    ];
    for (path, status, message) in errors {
        let res = app.read(path).await.expect(status);
        assert_eq!(res.error(), message, "{path}");
    }
    // der/pem for symmetric keys, public keys of symmetric keys: clear 400s.
    for path in [
        "transit/export/encryption-key/aes?format=pem",
        "transit/export/hmac-key/aes/1?format=der",
        "transit/export/public-key/aes",
        "transit/export/certificate-chain/aes",
    ] {
        let res = app.read(path).await.expect(400);
        assert!(!res.error().is_empty(), "{path}");
    }
    let res = app
        .read("transit/export/encryption-key/nokey")
        .await
        .expect(404);
    assert_eq!(res.body, json!({"errors": []}));
    app.write("transit/export/encryption-key/aes", json!({}))
        .await
        .expect(405);
    app.read("transit/export/encryption-key").await.expect(404);

    // Versions below min_decryption_version are refused, however written.
    app.write(
        "transit/keys/aes/config",
        json!({"min_decryption_version": 2}),
    )
    .await
    .ok();
    for version in ["1", "v1", "0", "-1"] {
        let res = app
            .read(&format!("transit/export/encryption-key/aes/{version}"))
            .await
            .expect(400);
        assert_eq!(
            res.error(),
            "version for export is below minimum decryption version",
            "{version}"
        );
    }
    let res = app.read("transit/export/encryption-key/aes").await.ok();
    assert_eq!(res.data()["keys"].as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn export_signing_and_public_keys() {
    let app = TestApp::new();
    app.write("transit/keys/ec", json!({"type": "ecdsa-p256"}))
        .await
        .ok();
    // Public keys leave without `exportable`.
    let res = app.read("transit/export/public-key/ec").await.ok();
    let pem = res.data()["keys"]["1"].as_str().unwrap().to_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PUBLIC KEY-----"), "{pem}");
    let res = app.read("transit/export/signing-key/ec").await.expect(400);
    assert_eq!(res.error(), "private key material is not exportable");
    let res = app
        .read("transit/export/certificate-chain/ec")
        .await
        .expect(400);
    assert_eq!(
        res.error(),
        "selected key version does not have a certificate chain imported"
    );

    app.write(
        "transit/keys/ed",
        json!({"type": "ed25519", "exportable": true}),
    )
    .await
    .ok();
    let public = app.read("transit/export/public-key/ed").await.ok();
    let read = app.read("transit/keys/ed").await.ok();
    assert_eq!(
        public.data()["keys"]["1"],
        read.data()["keys"]["1"]["public_key"]
    );
    let private = app.read("transit/export/signing-key/ed").await.ok();
    let bytes = unb64(&private.data()["keys"]["1"]);
    assert_eq!(bytes.len(), 64, "Go's seed || public key");
    assert_eq!(bytes[32..], unb64(&public.data()["keys"]["1"])[..]);
    let pem = app
        .read("transit/export/signing-key/ed?format=pem")
        .await
        .ok();
    assert!(
        pem.data()["keys"]["1"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let res = app
        .read("transit/export/encryption-key/ed")
        .await
        .expect(400);
    assert_eq!(res.error(), "encryption not supported for the key");
}

#[tokio::test]
async fn openbao_exports_match() {
    let app = TestApp::new();
    for file in [
        "aes256-gcm96",
        "ecdsa-p256",
        "ed25519",
        "hmac-32",
        "rsa-2048",
    ] {
        let path = format!(
            "{}/keys/tests/data/openbao-2.7.2/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        app.write(
            &format!("transit/restore/{file}"),
            json!({"backup": v["backup"]}),
        )
        .await
        .expect(204);
        for (export_type, formats) in v["export"].as_object().unwrap() {
            for (format, expected) in formats.as_object().unwrap() {
                let query = if format == "default" {
                    String::new()
                } else {
                    format!("?format={format}")
                };
                let res = app
                    .read(&format!("transit/export/{export_type}/{file}{query}"))
                    .await;
                if expected.get("error").is_some() {
                    // OpenBao refused (400 or 500): a 400 here.
                    res.expect(400);
                } else {
                    let res = res.ok();
                    assert_eq!(
                        &res.data()["keys"],
                        expected,
                        "{file} {export_type} {format}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn backup_and_restore() {
    let app = TestApp::new();
    app.write("transit/keys/plain", json!({})).await.ok();
    let res = app.read("transit/backup/plain").await.expect(400);
    assert_eq!(res.error(), "exporting is disallowed on the policy");
    app.write("transit/keys/half", json!({"exportable": true}))
        .await
        .ok();
    let res = app.read("transit/backup/half").await.expect(400);
    assert_eq!(res.error(), "plaintext backup is disallowed on the policy");
    let res = app.read("transit/backup/nokey").await.expect(400);
    assert_eq!(res.error(), "key \"nokey\" not found");
    // A refused backup leaves no stamp.
    assert!(
        app.read("transit/keys/half")
            .await
            .ok()
            .data()
            .get("backup_info")
            .is_none()
    );

    app.write(
        "transit/keys/bk",
        json!({"exportable": true, "allow_plaintext_backup": true}),
    )
    .await
    .ok();
    app.write("transit/keys/bk/rotate", json!({})).await.ok();
    let ct = app
        .write(
            "transit/encrypt/bk",
            json!({"plaintext": b64(b"hello world")}),
        )
        .await
        .ok()
        .data()["ciphertext"]
        .clone();
    let res = app.read("transit/backup/bk").await.ok();
    let blob = res.data()["backup"].clone();
    let json_doc: Value = serde_json::from_slice(&unb64(&blob)).unwrap();
    assert_eq!(json_doc["policy"]["name"], "bk");
    assert_eq!(json_doc["policy"]["backup_info"]["version"], 2);
    let read = app.read("transit/keys/bk").await.ok();
    assert_eq!(read.data()["backup_info"]["version"], 2);
    assert!(read.data().get("restore_info").is_none());
    app.write("transit/backup/bk", json!({})).await.expect(405);

    let res = app
        .write("transit/restore", json!({"backup": blob}))
        .await
        .expect(400);
    assert_eq!(res.error(), "key \"bk\" already exists");
    app.write("transit/restore/bk2", json!({"backup": blob}))
        .await
        .expect(204);
    let read = app.read("transit/keys/bk2").await.ok();
    assert_eq!(read.data()["name"], "bk2");
    assert_eq!(read.data()["latest_version"], 2);
    assert_eq!(read.data()["backup_info"]["version"], 2);
    assert_eq!(read.data()["restore_info"]["version"], 2);
    let pt = app
        .write("transit/decrypt/bk2", json!({"ciphertext": ct}))
        .await
        .ok();
    assert_eq!(pt.data()["plaintext"], b64(b"hello world"));

    // force overwrites; the body's `name` renames on the bare path.
    app.write("transit/keys/bk/rotate", json!({})).await.ok();
    app.write("transit/restore", json!({"backup": blob, "force": true}))
        .await
        .expect(204);
    assert_eq!(
        app.read("transit/keys/bk").await.ok().data()["latest_version"],
        2
    );
    app.write("transit/restore", json!({"backup": blob, "name": "bk3"}))
        .await
        .expect(204);
    app.read("transit/keys/bk3").await.ok();
    // On the named path, the URL's name wins.
    app.write(
        "transit/restore/bk4",
        json!({"backup": blob, "name": "other"}),
    )
    .await
    .expect(204);
    app.read("transit/keys/bk4").await.ok();
    app.read("transit/keys/other").await.expect(404);
}

#[tokio::test]
async fn restore_errors() {
    let app = TestApp::new();
    let cases = [
        (json!({}), "'backup' must be supplied"),
        (json!({"backup": ""}), "'backup' must be supplied"),
        (
            json!({"backup": b64(b"{}"), "name": "a/b"}),
            "key names cannot be paths",
        ),
    ];
    for (body, message) in cases {
        let res = app.write("transit/restore", body).await.expect(400);
        assert_eq!(res.error(), message);
    }
    // Bad blobs are 400s, never a dropped connection (OpenBao panics on `{}`).
    for blob in [
        "!!!".to_owned(),
        b64(b"{}"),
        b64(b"{\"policy\": null}"),
        b64(b"not json"),
        b64(b"{\"policy\": {\"name\": \"x\", \"type\": 99, \"latest_version\": 1}}"),
    ] {
        let res = app
            .write("transit/restore/x", json!({"backup": blob}))
            .await
            .expect(400);
        assert!(res.error().starts_with("invalid backup"), "{}", res.error());
    }
    app.read("transit/keys/x").await.expect(404);
    let res = app
        .write("transit/restore", json!({"backup": "x", "force": "maybe"}))
        .await
        .expect(400);
    assert!(res.error().contains("force"), "{}", res.error());
    app.read("transit/restore").await.expect(405);
}
