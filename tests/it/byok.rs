//! BYOK: `wrapping_key`, `keys/:name/import`, `import_version` and
//! `byok-export`, in process (every type, the public half, rotation, the one
//! error of malformed input), across restarts (one wrapping key per mount),
//! and against OpenBao 2.7.2 both ways.

use std::path::Path;

use serde_json::{Value, json};
use transit_keys::byok::{OaepHash, wrap_for_pem};
use transitd_test_support::{Client, DevServer};

use crate::node::Site;
use crate::support::{TestApp, b64};

const DATA: &[u8] = b"bring your own key";

/// The types OpenBao imports (every one but ML-DSA), RSA-4096 aside: its
/// generation alone takes seconds in a debug build.
const TYPES: &[&str] = &[
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "xchacha20-poly1305",
    "hmac",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "rsa-2048",
    "rsa-3072",
];

/// What a key made of `DATA`, to be checked with the same key imported elsewhere.
enum Made {
    Ciphertext(String),
    Signature(String),
    Hmac(String),
}

impl Made {
    /// The same bytes under another version number (a key imported alone
    /// becomes version 1 wherever it came from).
    fn renumbered(&self, from: u32, to: u32) -> Self {
        let (old, new) = (format!("vault:v{from}:"), format!("vault:v{to}:"));
        let swap = |s: &String| s.replacen(&old, &new, 1);
        match self {
            Self::Ciphertext(c) => Self::Ciphertext(swap(c)),
            Self::Signature(s) => Self::Signature(swap(s)),
            Self::Hmac(h) => Self::Hmac(swap(h)),
        }
    }
}

fn is_aead(t: &str) -> bool {
    t.starts_with("aes") || t.contains("chacha")
}

fn made_by(t: &str, reply: &Value) -> Made {
    let d = &reply["data"];
    if is_aead(t) {
        Made::Ciphertext(d["ciphertext"].as_str().unwrap().to_owned())
    } else if t == "hmac" {
        Made::Hmac(d["hmac"].as_str().unwrap().to_owned())
    } else {
        Made::Signature(d["signature"].as_str().unwrap().to_owned())
    }
}

/// The request that makes something of `DATA` with a key of type `t`.
fn make_request(mount: &str, name: &str, t: &str) -> (String, Value) {
    let op = if is_aead(t) {
        "encrypt"
    } else if t == "hmac" {
        "hmac"
    } else {
        "sign"
    };
    (
        format!("{mount}/{op}/{name}"),
        json!({ "plaintext": b64(DATA), "input": b64(DATA) }),
    )
}

/// The request that checks `made` with key `name`, and what its answer must hold.
fn check_request(mount: &str, name: &str, made: &Made) -> (String, Value, &'static str, Value) {
    match made {
        Made::Ciphertext(c) => (
            format!("{mount}/decrypt/{name}"),
            json!({ "ciphertext": c }),
            "plaintext",
            json!(b64(DATA)),
        ),
        Made::Signature(s) => (
            format!("{mount}/verify/{name}"),
            json!({ "input": b64(DATA), "signature": s }),
            "valid",
            json!(true),
        ),
        Made::Hmac(h) => (
            format!("{mount}/hmac/{name}"),
            json!({ "input": b64(DATA) }),
            "hmac",
            json!(h),
        ),
    }
}

// ---------------------------------------------------------------------------
// In process

/// The key material of exportable key `name` as an importer wraps it: raw for
/// AEAD and HMAC keys, PKCS#8 DER for signing keys.
async fn material(app: &TestApp, name: &str, t: &str) -> Vec<u8> {
    let path = if is_aead(t) {
        format!("transit/export/encryption-key/{name}/1")
    } else if t == "hmac" {
        format!("transit/export/hmac-key/{name}/1")
    } else {
        format!("transit/export/signing-key/{name}/1?format=der")
    };
    let reply = app.read(&path).await.ok();
    let text = reply.data()["keys"]["1"].as_str().unwrap().to_owned();
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

async fn wrapping_pem(app: &TestApp, mount: &str) -> String {
    app.read(&format!("{mount}/wrapping_key")).await.ok().data()["public_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn make(app: &TestApp, name: &str, t: &str) -> Made {
    let (path, body) = make_request("transit", name, t);
    made_by(t, &app.write(&path, body).await.ok().body)
}

async fn check(app: &TestApp, name: &str, made: &Made) {
    let (path, body, field, want) = check_request("transit", name, made);
    let reply = app.write(&path, body).await.ok();
    assert_eq!(reply.data()[field], want, "{path}");
}

async fn exportable(app: &TestApp, name: &str, t: &str) {
    app.write(
        &format!("transit/keys/{name}"),
        json!({ "type": t, "exportable": true }),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn every_type_imports_and_serves_what_the_original_made() {
    let app = TestApp::new();
    let pem = wrapping_pem(&app, "transit").await;
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    for (i, t) in TYPES.iter().enumerate() {
        let src = format!("src-{t}");
        exportable(&app, &src, t).await;
        let made = make(&app, &src, t).await;
        // Every hash OpenBao's CLI may use, in turn.
        let hash = ["SHA1", "SHA256", "SHA384", "SHA512"][i % 4];
        let wrapped =
            wrap_for_pem(&pem, hash.parse().unwrap(), &material(&app, &src, t).await).unwrap();
        let imp = format!("imp-{t}");
        app.write(
            &format!("transit/keys/{imp}/import"),
            json!({ "type": t, "ciphertext": wrapped, "hash_function": hash }),
        )
        .await
        .expect(204);
        let read = app.read(&format!("transit/keys/{imp}")).await.ok();
        assert_eq!(read.data()["imported_key"], json!(true), "{t}");
        assert_eq!(read.data()["type"], json!(t));
        assert_eq!(read.data()["latest_version"], json!(1));
        check(&app, &imp, &made).await;
    }
}

#[tokio::test]
async fn import_version_and_rotation_follow_allow_rotation() {
    let app = TestApp::new();
    let pem = wrapping_pem(&app, "transit").await;
    let wrapped = |key: &[u8]| wrap_for_pem(&pem, OaepHash::Sha256, key).unwrap();
    app.write(
        "transit/keys/fixed/import",
        json!({ "ciphertext": wrapped(&[1; 32]) }),
    )
    .await
    .expect(204);
    let err = app
        .write("transit/keys/fixed/rotate", json!({}))
        .await
        .expect(400)
        .error();
    assert_eq!(
        err,
        "imported key fixed does not allow rotation within Vault"
    );
    app.write(
        "transit/keys/fixed/import_version",
        json!({ "ciphertext": wrapped(&[2; 32]) }),
    )
    .await
    .expect(204);
    let read = app.read("transit/keys/fixed").await.ok();
    assert_eq!(read.data()["latest_version"], json!(2));
    assert_eq!(read.data()["imported_key_allow_rotation"], json!(false));
    // Version 2 is the second key: what an export of it says.
    app.write("transit/keys/fixed/config", json!({ "exportable": true }))
        .await
        .expect(200);
    let exported = app.read("transit/export/encryption-key/fixed/2").await.ok();
    assert_eq!(exported.data()["keys"]["2"], json!(b64(&[2; 32])));
    // An automatic rotation period needs allow_rotation.
    let err = app
        .write(
            "transit/keys/auto/import",
            json!({ "ciphertext": wrapped(&[3; 32]), "auto_rotate_period": "2h" }),
        )
        .await
        .expect(400)
        .error();
    assert_eq!(
        err,
        "allow_rotation must be set to true if auto-rotation is enabled"
    );
    app.write(
        "transit/keys/free/import",
        json!({ "ciphertext": wrapped(&[3; 32]), "allow_rotation": true, "auto_rotate_period": "2h" }),
    )
    .await
    .expect(204);
    app.write("transit/keys/free/rotate", json!({}))
        .await
        .expect(200);
    // Rotated by transitd: its own key now, as in OpenBao.
    let err = app
        .write(
            "transit/keys/free/import_version",
            json!({ "ciphertext": wrapped(&[4; 32]) }),
        )
        .await
        .expect(400)
        .error();
    assert_eq!(
        err,
        "the import_version endpoint can only be used with an imported key"
    );
}

#[tokio::test]
async fn a_public_half_verifies_but_does_not_sign_until_its_private_half_comes() {
    let app = TestApp::new();
    let pem = wrapping_pem(&app, "transit").await;
    exportable(&app, "src", "ecdsa-p256").await;
    let made = make(&app, "src", "ecdsa-p256").await;
    let public = app.read("transit/keys/src").await.ok().data()["keys"]["1"]["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    app.write(
        "transit/keys/half/import",
        json!({ "type": "ecdsa-p256", "public_key": public }),
    )
    .await
    .expect(204);
    check(&app, "half", &made).await;
    let shown = app.read("transit/keys/half").await.ok().data()["keys"]["1"]["public_key"].clone();
    assert_eq!(shown, json!(public));
    let err = app
        .write("transit/sign/half", json!({ "input": b64(DATA) }))
        .await
        .expect(400)
        .error();
    assert_eq!(
        err,
        "requested version for signing does not contain a private part"
    );
    // Another key's private half does not fill version 1; its own does.
    let wrapped_private = |name: &'static str| {
        let app = &app;
        let pem = pem.clone();
        async move {
            wrap_for_pem(
                &pem,
                OaepHash::Sha256,
                &material(app, name, "ecdsa-p256").await,
            )
            .unwrap()
        }
    };
    exportable(&app, "other", "ecdsa-p256").await;
    let err = app
        .write(
            "transit/keys/half/import_version",
            json!({ "ciphertext": wrapped_private("other").await, "version": 1 }),
        )
        .await
        .expect(400)
        .error();
    assert_eq!(err, "cannot import key, key pair does not match");
    app.write(
        "transit/keys/half/import_version",
        json!({ "ciphertext": wrapped_private("src").await, "version": 1 }),
    )
    .await
    .expect(204);
    let read = app.read("transit/keys/half").await.ok();
    assert_eq!(read.data()["latest_version"], json!(1));
    app.write("transit/sign/half", json!({ "input": b64(DATA) }))
        .await
        .expect(200);
    let err = app
        .write(
            "transit/keys/half/import_version",
            json!({ "ciphertext": wrapped_private("src").await, "version": 1 }),
        )
        .await
        .expect(400)
        .error();
    assert_eq!(err, "private key imported, key version cannot be updated");
}

/// Every malformed or mismatched input: one 400 with one text, and nothing stored.
#[tokio::test]
async fn malformed_wrapped_input_gets_one_error_and_changes_nothing() {
    use base64::Engine as _;
    let std = base64::engine::general_purpose::STANDARD;
    let app = TestApp::new();
    let pem = wrapping_pem(&app, "transit").await;
    let good = wrap_for_pem(&pem, OaepHash::Sha256, &[9; 32]).unwrap();
    let raw = std.decode(&good).unwrap();
    let flip = |at: usize| {
        let mut bytes = raw.clone();
        bytes[at] ^= 0x40;
        std.encode(bytes)
    };
    // Wrapped for another mount's wrapping key.
    app.write("sys/mounts/other", json!({ "type": "transit" }))
        .await
        .expect(204);
    let other_pem = wrapping_pem(&app, "other").await;
    let cases: Vec<(&str, Value)> = vec![
        ("not base64", json!({ "ciphertext": "%%%" })),
        (
            "only the OAEP block",
            json!({ "ciphertext": std.encode(&raw[..512]) }),
        ),
        (
            "cut short",
            json!({ "ciphertext": std.encode(&raw[..530]) }),
        ),
        ("OAEP byte flipped", json!({ "ciphertext": flip(100) })),
        (
            "KWP byte flipped",
            json!({ "ciphertext": flip(raw.len() - 3) }),
        ),
        (
            "wrong hash",
            json!({ "ciphertext": good, "hash_function": "SHA512" }),
        ),
        (
            "wrong type",
            json!({ "ciphertext": good, "type": "aes128-gcm96" }),
        ),
        (
            "not PKCS#8",
            json!({ "ciphertext": good, "type": "ed25519" }),
        ),
        (
            "another wrapping key",
            json!({ "ciphertext": wrap_for_pem(&other_pem, OaepHash::Sha256, &[9; 32]).unwrap() }),
        ),
        (
            "hmac key too short",
            json!({ "ciphertext": wrap_for_pem(&pem, OaepHash::Sha256, &[9; 16]).unwrap(), "type": "hmac" }),
        ),
    ];
    let mut texts = std::collections::BTreeSet::new();
    for (label, body) in &cases {
        let reply = app.write("transit/keys/k/import", body.clone()).await;
        assert_eq!(reply.status, 400, "{label}: {:?}", reply.body);
        texts.insert(reply.error());
        app.read("transit/keys/k").await.expect(404);
    }
    assert_eq!(texts.len(), 1, "{texts:?}");
    let text = texts.into_iter().next().unwrap();
    assert!(!text.contains("OAEP") && !text.contains("KWP"), "{text}");
    // import_version: the same text, and the key stays as it was.
    app.write("transit/keys/k/import", json!({ "ciphertext": good }))
        .await
        .expect(204);
    for (label, body) in &cases {
        if body.get("type").is_some() {
            continue;
        }
        let reply = app
            .write("transit/keys/k/import_version", body.clone())
            .await;
        assert_eq!(reply.status, 400, "{label}");
        assert_eq!(reply.error(), text, "{label}");
    }
    let read = app.read("transit/keys/k").await.ok();
    assert_eq!(read.data()["latest_version"], json!(1));
}

#[tokio::test]
async fn refusals() {
    let app = TestApp::new();
    let pem = wrapping_pem(&app, "transit").await;
    let wrapped = wrap_for_pem(&pem, OaepHash::Sha256, &[5; 32]).unwrap();
    app.write("transit/keys/plain", json!({})).await.expect(200);
    app.write("transit/keys/ec", json!({ "type": "ecdsa-p256" }))
        .await
        .expect(200);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "transit/keys/plain/import",
            json!({ "ciphertext": wrapped }),
            "the import path cannot be used with an existing key; use import-version to rotate an existing imported key",
        ),
        (
            "transit/keys/new/import",
            json!({ "ciphertext": wrapped, "convergent_encryption": true }),
            "import cannot be used on keys with convergent encryption enabled",
        ),
        (
            "transit/keys/new/import",
            json!({ "ciphertext": wrapped, "type": "mldsa-65" }),
            "import is not supported for keys of type mldsa-65",
        ),
        (
            "transit/keys/new/import",
            json!({ "ciphertext": wrapped, "hash_function": "SHA224" }),
            "hash_function SHA224 is not supported by transitd; use SHA1, SHA256, SHA384 or SHA512",
        ),
        (
            "transit/keys/new/import",
            json!({ "ciphertext": wrapped, "hash_function": "MD5" }),
            "unknown hash function: MD5",
        ),
        (
            "transit/keys/new/import",
            json!({ "ciphertext": wrapped, "public_key": pem }),
            "only one of the following fields, ciphertext and public_key, can be set",
        ),
        (
            "transit/keys/new/import",
            json!({ "public_key": pem }),
            "provided type does not support public_key import",
        ),
        (
            "transit/keys/new/import",
            json!({ "public_key": pem, "type": "ecdsa-p256" }),
            "error parsing public key: not a public key of this key type",
        ),
        (
            "transit/keys/new/import_version",
            json!({ "ciphertext": wrapped }),
            "no key found with name new; to import a new key, use the import/ endpoint",
        ),
        (
            "transit/keys/plain/import_version",
            json!({ "ciphertext": wrapped }),
            "the import_version endpoint can only be used with an imported key",
        ),
    ];
    for (path, body, want) in cases {
        let reply = app.write(path, body.clone()).await;
        assert_eq!(reply.status, 400, "{path} {body}: {:?}", reply.body);
        assert_eq!(reply.error(), want, "{path} {body}");
    }
    app.read("transit/keys/new").await.expect(404);
    for (path, want) in [
        (
            "transit/byok-export/nope/plain",
            "no such destination key to export to",
        ),
        (
            "transit/byok-export/ec/nope",
            "no such source key for export",
        ),
        ("transit/byok-export/ec/plain", "key is not exportable"),
    ] {
        let reply = app.read(path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.error(), want, "{path}");
    }
    app.write("transit/keys/plain/config", json!({ "exportable": true }))
        .await
        .expect(200);
    let reply = app.read("transit/byok-export/ec/plain").await.expect(400);
    assert!(
        reply.error().contains("must be a rsa key"),
        "{}",
        reply.error()
    );
    // Only `read` on the wrapping key; `update` (not `create`) to import.
    let token = app
        .token_with_policy(
            "importer",
            r#"path "transit/wrapping_key" { capabilities = ["read"] }
               path "transit/keys/mine/import" { capabilities = ["update"] }"#,
        )
        .await;
    let importer = app.as_token(Some(&token));
    importer.read("transit/wrapping_key").await.expect(200);
    importer
        .write("transit/keys/mine/import", json!({ "ciphertext": wrapped }))
        .await
        .expect(204);
    importer
        .write(
            "transit/keys/mine/import_version",
            json!({ "ciphertext": wrapped }),
        )
        .await
        .expect(403);
    importer
        .read("transit/byok-export/ec/plain")
        .await
        .expect(403);
}

#[tokio::test]
async fn concurrent_first_requests_get_one_wrapping_key_per_mount() {
    let app = TestApp::new();
    app.write("sys/mounts/second", json!({ "type": "transit" }))
        .await
        .expect(204);
    let (a, b, c, d) = tokio::join!(
        wrapping_pem(&app, "transit"),
        wrapping_pem(&app, "transit"),
        wrapping_pem(&app, "transit"),
        wrapping_pem(&app, "second"),
    );
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_ne!(a, d, "one wrapping key per mount");
    assert_eq!(wrapping_pem(&app, "transit").await, a);
}

#[test]
fn the_wrapping_key_survives_a_restart_is_stored_sealed_and_imports_are_audited_hmaced() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    // `transit/` is mounted at init.
    let pem = |node: &crate::node::Node| {
        let (status, body) = node.call("GET", "transit/wrapping_key", Some(&root), None);
        assert_eq!(status, 200, "{body}");
        body["data"]["public_key"].as_str().unwrap().to_owned()
    };
    let first = pem(&node);
    // The audit log holds an import's ciphertext (key material) HMACed only.
    let audit_path = site.dir.path().join("audit.log");
    let (status, body) = node.call(
        "POST",
        "sys/audit/file",
        Some(&root),
        Some(
            json!({ "type": "file", "options": { "file_path": audit_path.display().to_string() } }),
        ),
    );
    assert_eq!(status, 204, "{body}");
    let wrapped = wrap_for_pem(&first, OaepHash::Sha256, &[7; 32]).unwrap();
    let (status, body) = node.call(
        "POST",
        "transit/keys/audited/import",
        Some(&root),
        Some(json!({ "ciphertext": wrapped })),
    );
    assert_eq!(status, 204, "{body}");
    node.stop();
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit.contains("transit/keys/audited/import"), "{audit}");
    assert!(
        !audit.contains(&wrapped[..40]),
        "ciphertext in clear in the audit log"
    );
    assert!(audit.contains(r#""ciphertext":"hmac-sha256:"#), "{audit}");
    let node = site.start();
    node.unseal(&keys);
    assert_eq!(pem(&node), first);
    node.stop();
    // Neither the public key's nor any private key's bytes are on disk in clear.
    let disk = site.raw_storage();
    let body: String = first.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let modulus = &der[40..80];
    assert!(
        !disk.windows(modulus.len()).any(|w| w == modulus),
        "the wrapping key's modulus is stored in clear"
    );
}

// ---------------------------------------------------------------------------
// Across servers: OpenBao 2.7.2 and transitd, both ways, and between two
// mounts of one transitd.

fn read_ok(c: &Client, path: &str) -> Value {
    let r = c.read(path).unwrap();
    assert_eq!(r.status, 200, "{path}: {:?}", r.body);
    r.body
}

fn write_expect(c: &Client, path: &str, body: Value, status: u16) -> Value {
    let r = c.write(path, body).unwrap();
    assert_eq!(r.status, status, "{path}: {:?}", r.body);
    r.body
}

/// Every type goes from (`from`, `from_mount`) to (`to`, `to_mount`) by
/// `byok-export` and `import`, and serves what the original made.
fn move_keys(from: &Client, from_mount: &str, to: &Client, to_mount: &str, tag: &str) {
    let pem = read_ok(to, &format!("{to_mount}/wrapping_key"))["data"]["public_key"].clone();
    let dest = format!("dest-{tag}");
    write_expect(
        from,
        &format!("{from_mount}/keys/{dest}/import"),
        json!({ "type": "rsa-4096", "public_key": pem }),
        204,
    );
    for t in TYPES {
        let src = format!("src-{tag}-{t}");
        let mut body = json!({ "type": t, "exportable": true });
        if *t == "hmac" {
            body["key_size"] = json!(32);
        }
        write_expect(from, &format!("{from_mount}/keys/{src}"), body, 200);
        write_expect(
            from,
            &format!("{from_mount}/keys/{src}/rotate"),
            json!({}),
            200,
        );
        let (path, body) = make_request(from_mount, &src, t);
        let made = made_by(t, &write_expect(from, &path, body, 200));
        let exported = read_ok(from, &format!("{from_mount}/byok-export/{dest}/{src}"));
        assert_eq!(exported["data"]["type"], json!(t));
        let keys = exported["data"]["keys"].as_object().unwrap();
        assert_eq!(keys.len(), 2, "{tag} {t}: every version");
        let imp = format!("imp-{tag}-{t}");
        write_expect(
            to,
            &format!("{to_mount}/keys/{imp}/import"),
            json!({ "type": t, "ciphertext": keys["1"] }),
            204,
        );
        write_expect(
            to,
            &format!("{to_mount}/keys/{imp}/import_version"),
            json!({ "ciphertext": keys["2"] }),
            204,
        );
        let (path, body, field, want) = check_request(to_mount, &imp, &made);
        let got = write_expect(to, &path, body, 200);
        assert_eq!(got["data"][field], want, "{tag} {t}");
        // One version by itself, with another hash.
        let one = read_ok(
            from,
            &format!("{from_mount}/byok-export/{dest}/{src}/latest?hash=SHA512"),
        );
        write_expect(
            to,
            &format!("{to_mount}/keys/{imp}-latest/import"),
            json!({ "type": t, "ciphertext": one["data"]["keys"]["2"], "hash_function": "SHA512" }),
            204,
        );
        let (path, body, field, want) =
            check_request(to_mount, &format!("{imp}-latest"), &made.renumbered(2, 1));
        let got = write_expect(to, &path, body, 200);
        assert_eq!(got["data"][field], want, "{tag} {t} latest");
    }
}

#[test]
fn keys_move_between_openbao_and_transitd_both_ways() {
    let openbao = DevServer::openbao();
    let transitd = DevServer::start("transitd", Path::new(env!("CARGO_BIN_EXE_transitd")), &[]);
    let (o, t) = (openbao.client(), transitd.client());
    move_keys(o, "transit", t, "transit", "from-openbao");
    move_keys(t, "transit", o, "transit", "from-transitd");
    write_expect(t, "sys/mounts/second", json!({ "type": "transit" }), 204);
    move_keys(t, "transit", t, "second", "between-mounts");
}
