//! hmac and hmac verify through the router: single, batch, errors.

use serde_json::{Value, json};

use super::{HELLO, key, s};
use crate::support::{Reply, TestApp};

#[tokio::test]
async fn hmac_single_and_url_algorithm() {
    let app = TestApp::new();
    key(&app, "k", json!({})).await;
    app.write("transit/keys/k/rotate", json!({})).await.ok();
    let res = app
        .write("transit/hmac/k", json!({"input": HELLO}))
        .await
        .ok();
    let mac = s(&res.data()["hmac"]);
    assert!(mac.starts_with("vault:v2:"), "{mac}");
    assert_eq!(res.body["warnings"], Value::Null);
    // 32-byte SHA-256 MAC.
    assert_eq!(mac.len(), "vault:v2:".len() + 44);

    // The URL algorithm wins over the body's.
    let url = app
        .write(
            "transit/hmac/k/sha2-512",
            json!({"input": HELLO, "algorithm": "sha2-256"}),
        )
        .await
        .ok();
    let body = app
        .write(
            "transit/hmac/k",
            json!({"input": HELLO, "algorithm": "sha2-512"}),
        )
        .await
        .ok();
    assert_eq!(url.data()["hmac"], body.data()["hmac"]);
    assert_eq!(s(&url.data()["hmac"]).len(), "vault:v2:".len() + 88);

    // Older versions may be chosen; the MAC differs per version.
    let v1 = app
        .write("transit/hmac/k", json!({"input": HELLO, "key_version": 1}))
        .await
        .ok();
    assert!(s(&v1.data()["hmac"]).starts_with("vault:v1:"));

    // `hash_algorithm` is not a field of hmac: ignored, with Vault's warning.
    let warned = app
        .write(
            "transit/hmac/k",
            json!({"input": HELLO, "hash_algorithm": "sha2-512"}),
        )
        .await
        .ok();
    assert_eq!(warned.data()["hmac"], res.data()["hmac"]);
    assert_eq!(
        warned.body["warnings"][0],
        "Endpoint ignored these unrecognized parameters: [hash_algorithm]"
    );

    // An empty input is a message like any other.
    app.write("transit/hmac/k", json!({"input": ""})).await.ok();
    // Any key type has an HMAC key.
    key(&app, "ec", json!({"type": "ecdsa-p256"})).await;
    key(&app, "hm", json!({"type": "hmac", "key_size": 64})).await;
    for name in ["ec", "hm"] {
        let r = app
            .write(&format!("transit/hmac/{name}"), json!({"input": HELLO}))
            .await
            .ok();
        assert!(s(&r.data()["hmac"]).starts_with("vault:v1:"));
    }
}

#[tokio::test]
async fn hmac_errors() {
    let app = TestApp::new();
    key(&app, "k", json!({})).await;
    app.write("transit/keys/k/rotate", json!({})).await.ok();
    let cases = [
        (
            "transit/hmac/k",
            json!({"input": HELLO, "algorithm": "md5"}),
            "unsupported algorithm \"md5\"",
        ),
        (
            "transit/hmac/k/md5",
            json!({"input": HELLO}),
            "unsupported algorithm \"md5\"",
        ),
        (
            "transit/hmac/k",
            json!({"input": HELLO, "algorithm": "none"}),
            "unsupported algorithm \"none\"",
        ),
        ("transit/hmac/k", json!({}), "missing input for HMAC"),
        (
            "transit/hmac/k",
            json!({"input": "%%"}),
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
        (
            "transit/hmac/nokey",
            json!({"input": HELLO}),
            "encryption key not found",
        ),
        (
            "transit/hmac/k",
            json!({"input": HELLO, "key_version": 9}),
            "key version does not exist; latest key version is 2",
        ),
        (
            "transit/hmac/k",
            json!({"input": HELLO, "key_version": -1}),
            "key version does not exist (cannot be negative)",
        ),
        (
            "transit/hmac/k",
            json!({"batch_input": []}),
            "missing batch input to process",
        ),
    ];
    for (path, body, message) in cases {
        let res = app.write(path, body).await.expect(400);
        assert_eq!(res.error(), message, "{path}");
    }
    app.write(
        "transit/keys/k/config",
        json!({"min_decryption_version": 2, "min_encryption_version": 2}),
    )
    .await
    .ok();
    let res = app
        .write("transit/hmac/k", json!({"input": HELLO, "key_version": 1}))
        .await
        .expect(400);
    assert_eq!(
        res.error(),
        "cannot generate HMAC: version is too old (disallowed by policy)"
    );
    app.read("transit/hmac/k").await.expect(405);
}

#[tokio::test]
async fn hmac_batch() {
    let app = TestApp::new();
    key(&app, "k", json!({})).await;
    app.write("transit/keys/k/rotate", json!({})).await.ok();
    let single = app
        .write("transit/hmac/k", json!({"input": HELLO}))
        .await
        .ok();
    let res = app
        .write(
            "transit/hmac/k",
            json!({"batch_input": [
                {"input": HELLO, "reference": "a"},
                {"input": "%%", "reference": "b"},
                {"reference": "c"},
                {"input": HELLO},
            ]}),
        )
        .await
        .expect(200);
    let r = &res.data()["batch_results"];
    assert_eq!(
        r[0],
        json!({"hmac": single.data()["hmac"], "reference": "a"})
    );
    assert_eq!(
        r[1],
        json!({"error": "unable to decode input as base64: illegal base64 data at input byte 0", "reference": "b"})
    );
    assert_eq!(
        r[2],
        json!({"error": "missing input for HMAC", "reference": "c"})
    );
    assert_eq!(r[3]["reference"], "");

    // The request's algorithm and key_version apply to every item.
    let res = app
        .write(
            "transit/hmac/k",
            json!({"batch_input": [{"input": HELLO, "key_version": 2, "algorithm": "sha2-256"}],
                   "key_version": 1, "algorithm": "sha2-384"}),
        )
        .await
        .ok();
    let v1 = app
        .write(
            "transit/hmac/k/sha2-384",
            json!({"input": HELLO, "key_version": 1}),
        )
        .await
        .ok();
    assert_eq!(res.data()["batch_results"][0]["hmac"], v1.data()["hmac"]);
    // A bad request-level version fails the whole batch.
    let res = app
        .write(
            "transit/hmac/k",
            json!({"batch_input": [{"input": HELLO}], "key_version": 7}),
        )
        .await
        .expect(400);
    assert_eq!(
        res.error(),
        "key version does not exist; latest key version is 2"
    );
}

#[tokio::test]
async fn hmac_verify() {
    let app = TestApp::new();
    key(&app, "k", json!({})).await;
    app.write("transit/keys/k/rotate", json!({})).await.ok();
    let mac = s(&app
        .write("transit/hmac/k", json!({"input": HELLO}))
        .await
        .ok()
        .data()["hmac"]);
    let mac512 = s(&app
        .write("transit/hmac/k/sha2-512", json!({"input": HELLO}))
        .await
        .ok()
        .data()["hmac"]);
    let verify = |body: Value| app.write("transit/verify/k", body);
    let valid = |res: Reply| res.ok().data()["valid"].clone();
    assert_eq!(
        valid(verify(json!({"input": HELLO, "hmac": mac})).await),
        true
    );
    assert_eq!(
        valid(verify(json!({"input": "b3RoZXI=", "hmac": mac})).await),
        false
    );
    // No input: the empty message (not this one).
    assert_eq!(valid(verify(json!({"hmac": mac})).await), false);
    // Algorithm: URL, else hash_algorithm, else algorithm.
    assert_eq!(
        valid(verify(json!({"input": HELLO, "hmac": mac512})).await),
        false
    );
    for body in [
        json!({"input": HELLO, "hmac": mac512, "hash_algorithm": "sha2-512"}),
        json!({"input": HELLO, "hmac": mac512, "algorithm": "sha2-512"}),
        json!({"input": HELLO, "hmac": mac512, "algorithm": "sha2-256", "hash_algorithm": "sha2-512"}),
    ] {
        assert_eq!(valid(verify(body).await), true);
    }
    let res = app
        .write(
            "transit/verify/k/sha2-512",
            json!({"input": HELLO, "hmac": mac512, "hash_algorithm": "sha2-256"}),
        )
        .await;
    assert_eq!(valid(res), true);

    let cases = [
        (
            json!({"input": HELLO, "hmac": "nope"}),
            "invalid HMAC to verify: no prefix",
        ),
        (
            json!({"input": HELLO, "hmac": "vault:v9:AAAA"}),
            "invalid HMAC: version is too new",
        ),
        (
            json!({"input": HELLO, "hmac": "vault:v1:%%%"}),
            "unable to decode verification HMAC as base64: illegal base64 data at input byte 0",
        ),
        (
            json!({"input": HELLO, "hmac": "vault:vx:AAAA"}),
            "invalid HMAC: version number could not be decoded",
        ),
        (
            json!({"input": "%%", "hmac": mac}),
            "unable to decode input as base64: illegal base64 data at input byte 0",
        ),
        (
            json!({"input": HELLO, "hmac": mac, "hash_algorithm": "bogus"}),
            "invalid hash algorithm \"bogus\"",
        ),
        (
            json!({"input": HELLO}),
            "neither a 'signature' nor an 'hmac' were given to verify",
        ),
        // Both given: the signature path, which an AES key cannot take.
        (
            json!({"input": HELLO, "hmac": mac, "signature": mac}),
            "key type aes256-gcm96 does not support verification",
        ),
    ];
    for (body, message) in cases {
        let res = verify(body).await.expect(400);
        assert_eq!(res.error(), message);
    }
    let res = app
        .write("transit/verify/nokey", json!({"input": HELLO, "hmac": mac}))
        .await
        .expect(400);
    assert_eq!(res.error(), "encryption key not found");

    app.write(
        "transit/keys/k/config",
        json!({"min_decryption_version": 2}),
    )
    .await
    .ok();
    let old = s(&app
        .write("transit/hmac/k", json!({"input": HELLO}))
        .await
        .ok()
        .data()["hmac"])
    .replace("vault:v2:", "vault:v1:");
    let res = verify(json!({"input": HELLO, "hmac": old}))
        .await
        .expect(400);
    assert_eq!(
        res.error(),
        "cannot verify HMAC: version is too old (disallowed by policy)"
    );
    app.read("transit/verify/k").await.expect(405);
}

#[tokio::test]
async fn hmac_verify_batch() {
    let app = TestApp::new();
    key(&app, "k", json!({})).await;
    let mac = s(&app
        .write("transit/hmac/k", json!({"input": HELLO}))
        .await
        .ok()
        .data()["hmac"]);
    let res = app
        .write(
            "transit/verify/k",
            json!({"batch_input": [
                {"input": HELLO, "hmac": mac, "reference": "ok"},
                {"input": "eA==", "hmac": mac, "reference": "bad"},
                {"input": HELLO, "hmac": "vault:v99:AAAA", "reference": "err"},
                {"hmac": mac, "reference": "noinput"},
            ]}),
        )
        .await
        .expect(200);
    // OpenBao's omitempty: `valid:false` is left out of HMAC results.
    assert_eq!(
        res.data()["batch_results"],
        json!([
            {"valid": true, "reference": "ok"},
            {"reference": "bad"},
            {"error": "invalid HMAC: version is too new", "reference": "err"},
            {"error": "missing input", "reference": "noinput"},
        ])
    );
    // The request's hash applies to the items.
    let mac512 = s(&app
        .write("transit/hmac/k/sha2-512", json!({"input": HELLO}))
        .await
        .ok()
        .data()["hmac"]);
    let res = app
        .write(
            "transit/verify/k",
            json!({"batch_input": [{"input": HELLO, "hmac": mac512}], "hash_algorithm": "sha2-512"}),
        )
        .await
        .ok();
    assert_eq!(
        res.data()["batch_results"],
        json!([{"valid": true, "reference": ""}])
    );

    let cases = [
        (
            json!([{"input": HELLO, "hmac": mac}, {"input": HELLO, "signature": mac}]),
            "elements of batch_input must all provide 'signature' or all provide 'hmac'",
        ),
        (
            json!([{"input": HELLO, "hmac": mac}, {"input": HELLO}]),
            "some elements of batch_input are missing 'hmac'",
        ),
        (
            json!([{"input": HELLO, "signature": mac}, {"input": HELLO}]),
            "some elements of batch_input are missing 'signature'",
        ),
        (
            json!([{"input": HELLO}]),
            "no batch_input elements have 'signature' or 'hmac'",
        ),
    ];
    for (items, message) in cases {
        let res = app
            .write("transit/verify/k", json!({"batch_input": items}))
            .await
            .expect(400);
        assert_eq!(res.error(), message);
    }
}
