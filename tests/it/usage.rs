//! Encryption counts and limits per key version, through the real binary:
//! visible in reads, never going down across restarts and `kill -9`, adding
//! up across nodes on PostgreSQL, rotating a key once near its limit, and
//! refusing what cannot rotate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::node::{Node, Site};

/// The default limit of AES-GCM and ChaCha20-Poly1305 versions.
const BOUND: u64 = 1 << 32;
/// The largest block a node reserves ahead (`state/usage.rs: MAX_BLOCK`).
const MAX_BLOCK: u64 = 1 << 20;

fn started() -> (Site, Node, Vec<String>, String) {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    (site, node, keys, root)
}

fn plaintext() -> String {
    STANDARD.encode("usage")
}

/// The stored count of `version` in a key read (0 when absent).
fn count(node: &Node, root: &str, key: &str, version: u32) -> u64 {
    let (status, body) = node.call("GET", &format!("transit/keys/{key}"), Some(root), None);
    assert_eq!(status, 200, "{body}");
    body["data"]["encryption_counts"][version.to_string()]
        .as_u64()
        .unwrap_or(0)
}

fn post(node: &Node, root: &str, path: &str, body: Value) -> (u16, Value) {
    node.call("POST", path, Some(root), Some(body))
}

/// POST `max_encryptions_per_version` = `limit` to `path` (a create or a config).
fn with_limit(node: &Node, root: &str, path: &str, limit: Value) -> (u16, Value) {
    post(
        node,
        root,
        path,
        json!({ "max_encryptions_per_version": limit }),
    )
}

fn encrypt(node: &Node, root: &str, key: &str) -> (u16, Value) {
    node.call(
        "POST",
        &format!("transit/encrypt/{key}"),
        Some(root),
        Some(json!({ "plaintext": plaintext() })),
    )
}

/// Every way to make a ciphertext (encrypt, a batch, rewrap, datakey); how many
/// ciphertexts were made.
fn every_kind(node: &Node, root: &str, key: &str) -> u64 {
    let (status, body) = encrypt(node, root, key);
    assert_eq!(status, 200, "{body}");
    let ct = body["data"]["ciphertext"].as_str().unwrap().to_owned();
    let batch: Vec<Value> = (0..20)
        .map(|_| json!({ "plaintext": plaintext() }))
        .collect();
    for (path, body) in [
        (
            format!("transit/encrypt/{key}"),
            json!({ "batch_input": batch }),
        ),
        (format!("transit/rewrap/{key}"), json!({ "ciphertext": ct })),
        (format!("transit/datakey/plaintext/{key}"), json!({})),
    ] {
        let (status, reply) = post(node, root, &path, body);
        assert_eq!(status, 200, "{path}: {reply}");
    }
    23
}

#[test]
fn counts_show_in_reads_and_never_go_down_across_restarts_and_kill_9() {
    let (site, node, keys, root) = started();
    assert_eq!(
        node.call("POST", "transit/keys/u", Some(&root), None).0,
        200
    );
    let (_, body) = node.call("GET", "transit/keys/u", Some(&root), None);
    assert_eq!(body["data"]["max_encryptions_per_version"], json!(BOUND));
    assert_eq!(body["data"]["encryption_counts"], json!({}));
    // Decryption, HMAC and signing count nothing; each ciphertext does.
    let mut made = every_kind(&node, &root, "u");
    let first = count(&node, &root, "u", 1);
    assert!(
        first >= made && first <= made + MAX_BLOCK,
        "{first} for {made}"
    );

    node.stop();
    let node = site.start();
    node.unseal(&keys);
    let after_stop = count(&node, &root, "u", 1);
    assert!(
        after_stop >= first,
        "{after_stop} < {first} after a restart"
    );

    // kill -9 while encrypting, a few times: the count never goes below what
    // was acknowledged, nor below what a read showed before.
    let mut node = node;
    let mut seen = after_stop;
    for cycle in 0..4 {
        let acked = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        match node.try_call(
                            "transit/encrypt/u",
                            &root,
                            json!({ "plaintext": plaintext() }),
                        ) {
                            Some((200, _)) => {
                                acked.fetch_add(1, Ordering::SeqCst);
                            }
                            Some((status, body)) => panic!("encrypt answered {status}: {body}"),
                            None => return,
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(200 + 150 * cycle));
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &node.pid().to_string()])
                .status();
            stop.store(true, Ordering::Relaxed);
        });
        made += acked.load(Ordering::SeqCst);
        node = site.start();
        node.unseal(&keys);
        let now = count(&node, &root, "u", 1);
        assert!(
            now >= made,
            "cycle {cycle}: count {now} below the {made} acknowledged"
        );
        assert!(
            now >= seen,
            "cycle {cycle}: count went down from {seen} to {now}"
        );
        seen = now;
    }
    println!("usage: {made} ciphertexts acknowledged across 4 kill -9 cycles, count {seen}");
}

#[test]
fn the_limit_is_validated_and_a_bad_value_changes_nothing() {
    let (_site, node, _, root) = started();
    assert_eq!(
        node.call("POST", "transit/keys/v", Some(&root), None).0,
        200
    );
    for bad in [
        json!(0),
        json!(-5),
        json!(BOUND + 1),
        json!("many"),
        json!(1.5),
    ] {
        let (status, body) = post(
            &node,
            &root,
            "transit/keys/v/config",
            json!({ "max_encryptions_per_version": bad, "deletion_allowed": true }),
        );
        assert_eq!(status, 400, "{bad}: {body}");
        let (_, key) = node.call("GET", "transit/keys/v", Some(&root), None);
        assert_eq!(
            key["data"]["max_encryptions_per_version"],
            json!(BOUND),
            "{bad}"
        );
        assert_eq!(
            key["data"]["deletion_allowed"],
            json!(false),
            "{bad}: half applied"
        );
    }
    let (status, body) = with_limit(&node, &root, "transit/keys/v/config", json!(1000));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["max_encryptions_per_version"], json!(1000));
    // Back up to the bound, never past it.
    let (status, _) = with_limit(&node, &root, "transit/keys/v/config", json!(BOUND));
    assert_eq!(status, 200);
    // At create, too; a refused create creates nothing.
    let (status, body) = with_limit(&node, &root, "transit/keys/w", json!(0));
    assert_eq!(status, 400, "{body}");
    assert_eq!(node.call("GET", "transit/keys/w", Some(&root), None).0, 404);
    let (status, body) = with_limit(&node, &root, "transit/keys/w", json!(50));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["max_encryptions_per_version"], json!(50));
    // Creating it again does not change the limit, and says so.
    let (status, body) = with_limit(&node, &root, "transit/keys/w", json!(40));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["max_encryptions_per_version"], json!(50));
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("not applied"),
        "{body}"
    );
    // Types without a nonce bound show no limit; types that do not encrypt take none.
    let (_, body) = post(
        &node,
        &root,
        "transit/keys/r",
        json!({ "type": "rsa-2048" }),
    );
    assert!(
        body["data"].get("max_encryptions_per_version").is_none(),
        "{body}"
    );
    post(&node, &root, "transit/keys/s", json!({ "type": "ed25519" }));
    let (status, body) = with_limit(&node, &root, "transit/keys/s/config", json!(10));
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("does not encrypt"), "{body}");
}

#[test]
fn an_imported_key_at_its_limit_refuses_encryption_and_counts_nothing() {
    let (_site, node, _, root) = started();
    post(
        &node,
        &root,
        "transit/keys/src",
        json!({ "exportable": true, "allow_plaintext_backup": true }),
    );
    // An imported key without allow_rotation, by restoring an edited backup.
    let (_, backup) = node.call("GET", "transit/backup/src", Some(&root), None);
    let blob = backup["data"]["backup"].as_str().unwrap();
    let mut doc: Value = serde_json::from_slice(&STANDARD.decode(blob).unwrap()).unwrap();
    doc["policy"]["Imported"] = json!(true);
    let blob = STANDARD.encode(serde_json::to_vec(&doc).unwrap());
    let (status, body) = post(
        &node,
        &root,
        "transit/restore/imp",
        json!({ "backup": blob }),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = with_limit(&node, &root, "transit/keys/imp/config", json!(3));
    assert_eq!(status, 200, "{body}");
    for _ in 0..3 {
        assert_eq!(encrypt(&node, &root, "imp").0, 200);
    }
    for _ in 0..2 {
        let (status, body) = encrypt(&node, &root, "imp");
        assert_eq!(status, 400, "{body}");
        assert_eq!(
            body["errors"][0],
            json!(
                "version 1 of key imp has reached its limit of 3 encryptions; the key cannot rotate (an imported key without allow_rotation)"
            )
        );
    }
    assert_eq!(count(&node, &root, "imp", 1), 3, "refusals count nothing");
    let (_, key) = node.call("GET", "transit/keys/imp", Some(&root), None);
    assert_eq!(key["data"]["latest_version"], json!(1));
    // Decryption still works.
    let (_, made) = post(
        &node,
        &root,
        "transit/encrypt/src",
        json!({ "plaintext": plaintext() }),
    );
    let ct = made["data"]["ciphertext"].as_str().unwrap();
    let (status, _) = post(
        &node,
        &root,
        "transit/decrypt/imp",
        json!({ "ciphertext": ct }),
    );
    assert_eq!(status, 200);
}

#[test]
fn an_older_version_at_its_limit_is_refused_and_the_latest_rotates_past_it() {
    let (_site, node, _, root) = started();
    with_limit(&node, &root, "transit/keys/o", json!(4));
    let pinned = |v: u32| {
        post(
            &node,
            &root,
            "transit/encrypt/o",
            json!({ "plaintext": plaintext(), "key_version": v }),
        )
    };
    for _ in 0..4 {
        assert_eq!(pinned(1).0, 200);
    }
    let (status, body) = pinned(1);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string().contains("encrypt with a newer version"),
        "{body}"
    );
    // The latest version is asked for: the key rotates and serves.
    let (status, body) = encrypt(&node, &root, "o");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["key_version"], json!(2));
    assert_eq!(count(&node, &root, "o", 1), 4);
    // A batch item pinned to the exhausted version fails alone.
    let (status, body) = post(
        &node,
        &root,
        "transit/encrypt/o",
        json!({ "batch_input": [
            { "plaintext": plaintext(), "key_version": 1 },
            { "plaintext": plaintext() },
        ] }),
    );
    assert_eq!(status, 400, "{body}");
    let results = &body["data"]["batch_results"];
    assert!(
        results[0]["error"].as_str().unwrap().contains("limit of 4"),
        "{body}"
    );
    assert_eq!(results[1]["key_version"], json!(2), "{body}");
}

#[test]
fn three_nodes_on_postgresql_add_up() {
    let _db = crate::cluster::DATABASE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let c = Cluster::start(3);
    assert_eq!(c.call(0, "POST", "transit/keys/sum", None).0, 200);
    wait_until(|| (0..3).all(|i| c.call(i, "GET", "transit/keys/sum", None).0 == 200));
    let made = AtomicU64::new(0);
    std::thread::scope(|s| {
        for i in 0..3 {
            let (c, made) = (&c, &made);
            s.spawn(move || {
                for round in 0..40 {
                    let batch: Vec<Value> = (0..(round % 7 + 1))
                        .map(|_| json!({ "plaintext": plaintext() }))
                        .collect();
                    let n = batch.len() as u64;
                    let (status, body) = c.call(
                        i,
                        "POST",
                        "transit/encrypt/sum",
                        Some(json!({ "batch_input": batch })),
                    );
                    assert_eq!(status, 200, "{body}");
                    made.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    let made = made.into_inner();
    let (_, body) = c.call(1, "GET", "transit/keys/sum", None);
    let total = body["data"]["encryption_counts"]["1"].as_u64().unwrap();
    println!("usage: 3 nodes made {made} ciphertexts; stored count {total}");
    assert!(total >= made, "{total} < {made}");
    assert!(total <= made + 3 * MAX_BLOCK, "{total} for {made}");
}

#[test]
fn a_small_limit_rotates_the_key_once_across_three_nodes() {
    let _db = crate::cluster::DATABASE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let c = Cluster::start(3);
    let (status, body) = c.call(
        0,
        "POST",
        "transit/keys/small",
        Some(json!({ "max_encryptions_per_version": 160 })),
    );
    assert_eq!(status, 200, "{body}");
    wait_until(|| (0..3).all(|i| c.call(i, "GET", "transit/keys/small", None).0 == 200));
    // 150 encryptions at once from three nodes: past the threshold (140),
    // short of two versions' worth.
    std::thread::scope(|s| {
        for i in 0..3 {
            let c = &c;
            s.spawn(move || {
                for _ in 0..50 {
                    let (status, body) = c.call(
                        i,
                        "POST",
                        "transit/encrypt/small",
                        Some(json!({ "plaintext": plaintext() })),
                    );
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    wait_until(|| {
        (0..3).all(|i| {
            c.call(i, "GET", "transit/keys/small", None).1["data"]["latest_version"] == json!(2)
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..3 {
        let (_, body) = c.call(i, "GET", "transit/keys/small", None);
        assert_eq!(body["data"]["latest_version"], json!(2), "node {i}: {body}");
        let v1 = body["data"]["encryption_counts"]["1"].as_u64().unwrap();
        assert!((140..=160).contains(&v1), "version 1 count {v1}");
    }
}

fn wait_until(mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not seen in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_restored_key_counts_at_least_what_its_backup_knew() {
    let (_site, node, _, root) = started();
    post(
        &node,
        &root,
        "transit/keys/b",
        json!({ "exportable": true, "allow_plaintext_backup": true }),
    );
    every_kind(&node, &root, "b");
    let known = count(&node, &root, "b", 1);
    let (_, backup) = node.call("GET", "transit/backup/b", Some(&root), None);
    let blob = backup["data"]["backup"].as_str().unwrap().to_owned();
    post(
        &node,
        &root,
        "transit/keys/b/config",
        json!({ "deletion_allowed": true }),
    );
    assert_eq!(
        node.call("DELETE", "transit/keys/b", Some(&root), None).0,
        204
    );
    // The material's count outlived the key; the restored key shows it.
    let (status, body) = post(&node, &root, "transit/restore", json!({ "backup": blob }));
    assert_eq!(status, 204, "{body}");
    assert_eq!(count(&node, &root, "b", 1), known);
    // Over a key that counted more since, a forced restore lowers nothing.
    for _ in 0..3 {
        every_kind(&node, &root, "b");
    }
    let more = count(&node, &root, "b", 1);
    assert!(more > known);
    let (status, body) = post(
        &node,
        &root,
        "transit/restore",
        json!({ "backup": blob, "force": true }),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(count(&node, &root, "b", 1), more);
}

#[test]
fn trimmed_versions_leave_the_keys_counts() {
    let (_site, node, _, root) = started();
    post(&node, &root, "transit/keys/t", json!({}));
    encrypt(&node, &root, "t");
    post(&node, &root, "transit/keys/t/rotate", json!({}));
    encrypt(&node, &root, "t");
    assert!(count(&node, &root, "t", 1) > 0 && count(&node, &root, "t", 2) > 0);
    let (status, body) = post(
        &node,
        &root,
        "transit/keys/t/config",
        json!({ "min_decryption_version": 2, "min_encryption_version": 2 }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &node,
        &root,
        "transit/keys/t/trim",
        json!({ "min_available_version": 2 }),
    );
    assert_eq!(status, 200, "{body}");
    let (_, key) = node.call("GET", "transit/keys/t", Some(&root), None);
    let counts = key["data"]["encryption_counts"].as_object().unwrap();
    assert!(counts.get("1").is_none(), "{key}");
    assert!(counts["2"].as_u64().unwrap() > 0, "{key}");
}

/// Counts follow the key material, not the name (review finding: a copy of a
/// key under another name, or the same bytes imported again, started from 0).
mod per_material {
    use serde_json::{Value, json};
    use transit_keys::byok::{OaepHash, wrap_for_pem};

    use crate::support::TestApp;

    const LIMIT: u64 = 5;

    async fn wrapping_pem(app: &TestApp, mount: &str) -> String {
        app.read(&format!("{mount}/wrapping_key")).await.ok().data()["public_key"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Encrypt with `version` of `path`'s key (`None`: the latest).
    async fn encrypt(app: &TestApp, path: &str, version: Option<u32>) -> crate::support::Reply {
        let mut body = json!({ "plaintext": super::plaintext() });
        if let Some(v) = version {
            body["key_version"] = json!(v);
        }
        app.write(path, body).await
    }

    async fn count(app: &TestApp, key: &str, version: u32) -> u64 {
        app.read(key).await.ok().data()["encryption_counts"][version.to_string()]
            .as_u64()
            .unwrap_or(0)
    }

    /// `transit/keys/k`, exportable and backed up at once (count 0), with a
    /// limit of LIMIT, then version 1 spent to the limit; the backup.
    async fn spent_key(app: &TestApp) -> String {
        app.write(
            "transit/keys/k",
            json!({ "exportable": true, "allow_plaintext_backup": true,
                    "max_encryptions_per_version": LIMIT }),
        )
        .await
        .ok();
        let backup = app.read("transit/backup/k").await.ok().data()["backup"]
            .as_str()
            .unwrap()
            .to_owned();
        for _ in 0..LIMIT {
            encrypt(app, "transit/encrypt/k", Some(1)).await.expect(200);
        }
        let refused = encrypt(app, "transit/encrypt/k", Some(1)).await.expect(400);
        assert!(
            refused.error().contains("limit of 5"),
            "{}",
            refused.error()
        );
        backup
    }

    fn refused_at_the_limit(reply: &crate::support::Reply) {
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert!(
            reply
                .error()
                .contains("has reached its limit of 5 encryptions"),
            "{}",
            reply.error()
        );
    }

    #[tokio::test]
    async fn a_restore_under_another_name_continues_the_count() {
        let app = TestApp::new();
        let backup = spent_key(&app).await;
        app.write("transit/restore/k2", json!({ "backup": backup }))
            .await
            .expect(204);
        assert_eq!(count(&app, "transit/keys/k2", 1).await, LIMIT);
        refused_at_the_limit(&encrypt(&app, "transit/encrypt/k2", Some(1)).await);
    }

    #[tokio::test]
    async fn a_delete_and_restore_of_an_older_backup_lowers_nothing() {
        let app = TestApp::new();
        let backup = spent_key(&app).await;
        app.write("transit/keys/k/config", json!({ "deletion_allowed": true }))
            .await
            .ok();
        app.call("DELETE", "transit/keys/k", Value::Null)
            .await
            .expect(204);
        // The backup knew 0; the material had counted LIMIT.
        app.write("transit/restore", json!({ "backup": backup }))
            .await
            .expect(204);
        assert_eq!(count(&app, "transit/keys/k", 1).await, LIMIT);
        refused_at_the_limit(&encrypt(&app, "transit/encrypt/k", Some(1)).await);
    }

    #[tokio::test]
    async fn a_byok_export_imported_under_a_new_name_in_another_mount_continues_the_count() {
        let app = TestApp::new();
        spent_key(&app).await;
        app.write("sys/mounts/second", json!({ "type": "transit" }))
            .await
            .expect(204);
        let pem = wrapping_pem(&app, "second").await;
        app.write(
            "transit/keys/dest/import",
            json!({ "type": "rsa-4096", "public_key": pem }),
        )
        .await
        .expect(204);
        let exported = app.read("transit/byok-export/dest/k").await.ok();
        let wrapped = exported.data()["keys"]["1"].clone();
        app.write("second/keys/copy/import", json!({ "ciphertext": wrapped }))
            .await
            .expect(204);
        assert_eq!(count(&app, "second/keys/copy", 1).await, LIMIT);
        // The limit is the key's own setting (an import gets the default).
        app.write(
            "second/keys/copy/config",
            json!({ "max_encryptions_per_version": LIMIT }),
        )
        .await
        .ok();
        // The latest version: an imported key cannot rotate past it.
        let reply = encrypt(&app, "second/encrypt/copy", None).await;
        refused_at_the_limit(&reply);
        assert!(reply.error().contains("cannot rotate"), "{}", reply.error());
    }

    #[tokio::test]
    async fn import_version_of_a_versions_own_bytes_continues_its_count() {
        let app = TestApp::new();
        let pem = wrapping_pem(&app, "transit").await;
        let wrapped = wrap_for_pem(&pem, OaepHash::Sha256, &[9; 32]).unwrap();
        app.write("transit/keys/imp/import", json!({ "ciphertext": wrapped }))
            .await
            .expect(204);
        app.write(
            "transit/keys/imp/config",
            json!({ "max_encryptions_per_version": LIMIT }),
        )
        .await
        .ok();
        for _ in 0..LIMIT {
            encrypt(&app, "transit/encrypt/imp", None).await.expect(200);
        }
        refused_at_the_limit(&encrypt(&app, "transit/encrypt/imp", None).await);
        // The same bytes again, as version 2.
        let again = wrap_for_pem(&pem, OaepHash::Sha256, &[9; 32]).unwrap();
        app.write(
            "transit/keys/imp/import_version",
            json!({ "ciphertext": again }),
        )
        .await
        .expect(204);
        assert_eq!(count(&app, "transit/keys/imp", 2).await, LIMIT);
        refused_at_the_limit(&encrypt(&app, "transit/encrypt/imp", None).await);
        // Other bytes are other material: a count of their own.
        let other = wrap_for_pem(&pem, OaepHash::Sha256, &[8; 32]).unwrap();
        app.write(
            "transit/keys/imp/import_version",
            json!({ "ciphertext": other }),
        )
        .await
        .expect(204);
        encrypt(&app, "transit/encrypt/imp", None).await.expect(200);
    }
}
