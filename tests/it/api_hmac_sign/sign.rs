//! sign and verify through the router: ECDSA, errors, batches, derived Ed25519.

use serde_json::{Value, json};

use super::{HELLO, key, s};
use crate::support::TestApp;

#[tokio::test]
async fn sign_and_verify_ecdsa() {
    let app = TestApp::new();
    key(&app, "ec", json!({"type": "ecdsa-p256"})).await;
    let res = app
        .write("transit/sign/ec", json!({"input": HELLO}))
        .await
        .ok();
    assert_eq!(res.data()["key_version"], 1);
    assert!(res.data().get("public_key").is_none());
    let sig = s(&res.data()["signature"]);
    assert!(sig.starts_with("vault:v1:ME"), "{sig}");
    let verify = |body: Value| app.write("transit/verify/ec", body);
    let ok = verify(json!({"input": HELLO, "signature": sig})).await.ok();
    assert_eq!(ok.data(), &json!({"valid": true}));
    let wrong = verify(json!({"input": "eA==", "signature": sig}))
        .await
        .ok();
    assert_eq!(wrong.data(), &json!({"valid": false}));
    // `key_version` is no field of verify: warned about, not an error.
    let warned = verify(json!({"input": HELLO, "signature": sig, "key_version": 1}))
        .await
        .ok();
    assert_eq!(
        warned.body["warnings"][0],
        "Endpoint ignored these unrecognized parameters: [key_version]"
    );
    // Another hash: a different digest, so not valid.
    let other = verify(json!({"input": HELLO, "signature": sig, "hash_algorithm": "sha2-512"}))
        .await
        .ok();
    assert_eq!(other.data()["valid"], false);

    // JWS marshaling: base64url, and only verifiable as JWS.
    let jws = s(&app
        .write(
            "transit/sign/ec",
            json!({"input": HELLO, "marshaling_algorithm": "jws"}),
        )
        .await
        .ok()
        .data()["signature"]);
    assert!(!jws.contains('=') && !jws.contains('+') && !jws.contains('/'));
    let ok = verify(json!({"input": HELLO, "signature": jws, "marshaling_algorithm": "jws"}))
        .await
        .ok();
    assert_eq!(ok.data()["valid"], true);

    // Hash from the URL, then hash_algorithm, then algorithm.
    for (path, body) in [
        (
            "transit/sign/ec/sha2-384",
            json!({"input": HELLO, "hash_algorithm": "sha2-256"}),
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "hash_algorithm": "sha2-384"}),
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "algorithm": "sha2-384"}),
        ),
    ] {
        let sig = s(&app.write(path, body).await.ok().data()["signature"]);
        let v384 = app
            .write(
                "transit/verify/ec/sha2-384",
                json!({"input": HELLO, "signature": sig}),
            )
            .await
            .ok();
        assert_eq!(v384.data()["valid"], true, "{path}");
    }

    // Prehashed: the input is the SHA-256 digest of "hello".
    let digest = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=";
    let pre = s(&app
        .write(
            "transit/sign/ec",
            json!({"input": digest, "prehashed": true}),
        )
        .await
        .ok()
        .data()["signature"]);
    let ok = verify(json!({"input": HELLO, "signature": pre})).await.ok();
    assert_eq!(ok.data()["valid"], true);

    // No input signs the empty message.
    let empty = s(&app.write("transit/sign/ec", json!({})).await.ok().data()["signature"]);
    let ok = verify(json!({"input": "", "signature": empty})).await.ok();
    assert_eq!(ok.data()["valid"], true);
}

#[tokio::test]
async fn sign_and_verify_errors() {
    let app = TestApp::new();
    key(&app, "ec", json!({"type": "ecdsa-p256"})).await;
    key(&app, "rsa", json!({"type": "rsa-2048"})).await;
    key(&app, "aes", json!({})).await;
    let sign_cases = [
        (
            "transit/sign/ec",
            json!({"input": HELLO, "hash_algorithm": "md5"}),
            "invalid hash algorithm \"md5\"",
        ),
        (
            "transit/sign/ec/md5",
            json!({"input": HELLO}),
            "invalid hash algorithm \"md5\"",
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "marshaling_algorithm": "der"}),
            "invalid marshaling type \"der\"",
        ),
        (
            "transit/sign/rsa",
            json!({"input": HELLO, "hash_algorithm": "none"}),
            "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15",
        ),
        (
            "transit/sign/rsa",
            json!({"input": HELLO, "salt_length": "abc"}),
            "salt length neither 'auto', 'hash', nor an int: abc",
        ),
        (
            "transit/sign/rsa",
            json!({"input": HELLO, "signature_algorithm": "foo"}),
            "unsupported rsa signature algorithm foo",
        ),
        (
            "transit/sign/aes",
            json!({"input": HELLO}),
            "key type aes256-gcm96 does not support signing",
        ),
        (
            "transit/sign/nokey",
            json!({"input": HELLO}),
            "signing key not found",
        ),
        (
            "transit/sign/ec",
            json!({"input": "%%"}),
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "key_version": 5}),
            "requested version for signing is higher than the latest key version",
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "key_version": -1}),
            "requested version for signing is negative",
        ),
        (
            "transit/sign/ec",
            json!({"input": HELLO, "context": "%%"}),
            "failed to base64-decode context",
        ),
    ];
    for (path, body, message) in sign_cases {
        let res = app.write(path, body.clone()).await.expect(400);
        assert_eq!(res.error(), message, "{path} {body}");
    }
    let sig = s(&app
        .write("transit/sign/ec", json!({"input": HELLO}))
        .await
        .ok()
        .data()["signature"]);
    let jws = s(&app
        .write(
            "transit/sign/ec",
            json!({"input": HELLO, "marshaling_algorithm": "jws"}),
        )
        .await
        .ok()
        .data()["signature"]);
    let verify_cases = [
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": "junk"}),
            "invalid signature: no prefix",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": ""}),
            "invalid signature: no prefix",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": "vault:v7:AAAA"}),
            "invalid signature: version is too new",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": "vault:v1:%%"}),
            "invalid base64 signature value",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": jws}),
            "invalid base64 signature value",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": "vault:v1:AAAA"}),
            "supplied signature is invalid",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": sig, "marshaling_algorithm": "x"}),
            "invalid marshaling type \"x\"",
        ),
        (
            "transit/verify/ec",
            json!({"input": HELLO, "signature": sig, "context": "%%"}),
            "failed to base64-decode context",
        ),
        (
            "transit/verify/nokey",
            json!({"input": HELLO, "signature": sig}),
            "signature verification key not found",
        ),
        (
            "transit/verify/aes",
            json!({"input": HELLO, "signature": sig}),
            "key type aes256-gcm96 does not support verification",
        ),
    ];
    for (path, body, message) in verify_cases {
        let res = app.write(path, body.clone()).await.expect(400);
        assert_eq!(res.error(), message, "{path} {body}");
    }
    app.read("transit/sign/ec").await.expect(405);
}

#[tokio::test]
async fn sign_and_verify_batches() {
    let app = TestApp::new();
    key(&app, "ec", json!({"type": "ecdsa-p256"})).await;
    let res = app
        .write(
            "transit/sign/ec",
            json!({"batch_input": [
                {"input": HELLO, "reference": "a"},
                {"input": "%%", "reference": "b"},
                {"input": HELLO},
            ]}),
        )
        .await
        .expect(200);
    let r = res.data()["batch_results"].as_array().unwrap().clone();
    assert_eq!(r[0]["key_version"], 1);
    assert_eq!(r[0]["reference"], "a");
    assert_eq!(
        r[1],
        json!({"key_version": 0, "error": "unable to decode input as base64: illegal base64 data at input byte 0", "reference": "b"})
    );
    assert_eq!(r[2]["reference"], "");
    // The request's key_version applies to each item, failing item by item.
    let res = app
        .write(
            "transit/sign/ec",
            json!({"batch_input": [{"input": HELLO, "reference": "x"}], "key_version": 5}),
        )
        .await
        .expect(200);
    assert_eq!(
        res.data()["batch_results"][0],
        json!({"key_version": 0, "error": "requested version for signing is higher than the latest key version", "reference": "x"})
    );
    // Signature batches always show `valid`, false included.
    let sig = r[0]["signature"].clone();
    let res = app
        .write(
            "transit/verify/ec",
            json!({"batch_input": [
                {"input": HELLO, "signature": sig, "reference": "a"},
                {"input": "eg==", "signature": sig, "reference": "b"},
                {"input": HELLO, "signature": "junk", "reference": "c"},
                {"signature": sig, "reference": "d"},
                // An item with both is a signature item.
                {"input": HELLO, "signature": sig, "hmac": "vault:v1:AAAA", "reference": "e"},
            ]}),
        )
        .await
        .expect(200);
    assert_eq!(
        res.data()["batch_results"],
        json!([
            {"valid": true, "reference": "a"},
            {"valid": false, "reference": "b"},
            {"valid": false, "error": "invalid signature: no prefix", "reference": "c"},
            {"valid": false, "error": "missing input", "reference": "d"},
            {"valid": true, "reference": "e"},
        ])
    );
    let res = app
        .write(
            "transit/sign/nokey",
            json!({"batch_input": [{"input": HELLO}]}),
        )
        .await
        .expect(400);
    assert_eq!(res.error(), "signing key not found");
}

#[tokio::test]
async fn derived_ed25519() {
    let app = TestApp::new();
    key(&app, "ed", json!({"type": "ed25519", "derived": true})).await;
    let res = app
        .write(
            "transit/sign/ed",
            json!({"input": HELLO, "context": "Y3R4MQ=="}),
        )
        .await
        .ok();
    let public = s(&res.data()["public_key"]);
    assert_eq!(public.len(), 44);
    let sig = s(&res.data()["signature"]);
    // Ed25519 is deterministic: the same context signs the same way.
    let again = app
        .write(
            "transit/sign/ed",
            json!({"input": HELLO, "context": "Y3R4MQ=="}),
        )
        .await
        .ok();
    assert_eq!(again.data()["signature"], json!(sig));
    let ok = app
        .write(
            "transit/verify/ed",
            json!({"input": HELLO, "signature": sig, "context": "Y3R4MQ=="}),
        )
        .await
        .ok();
    assert_eq!(ok.data()["valid"], true);
    let other = app
        .write(
            "transit/verify/ed",
            json!({"input": HELLO, "signature": sig, "context": "Y3R4Mg=="}),
        )
        .await
        .ok();
    assert_eq!(other.data()["valid"], false);
    let missing = "error deriving key: missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key";
    let res = app
        .write("transit/sign/ed", json!({"input": HELLO}))
        .await
        .expect(400);
    assert_eq!(res.error(), missing);
    let res = app
        .write(
            "transit/verify/ed",
            json!({"input": HELLO, "signature": sig}),
        )
        .await
        .expect(400);
    assert_eq!(res.error(), missing);

    // In a batch the derived key is named `publickey`; contexts may be mixed.
    let res = app
        .write(
            "transit/sign/ed",
            json!({"batch_input": [
                {"input": HELLO, "context": "Y3R4MQ==", "reference": "1"},
                {"input": HELLO, "reference": "2"},
            ]}),
        )
        .await
        .expect(200);
    let r = &res.data()["batch_results"];
    assert_eq!(r[0]["publickey"], json!(public));
    assert_eq!(r[0]["signature"], json!(sig));
    assert!(r[0].get("public_key").is_none());
    assert_eq!(
        r[1],
        json!({"key_version": 0, "error": missing, "reference": "2"})
    );
    let res = app
        .write(
            "transit/verify/ed",
            json!({"batch_input": [{"input": HELLO, "signature": sig, "reference": "n"}]}),
        )
        .await
        .ok();
    assert_eq!(
        res.data()["batch_results"][0],
        json!({"valid": false, "error": missing, "reference": "n"})
    );
}
