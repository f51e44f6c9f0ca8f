//! Barrier key rotation (`sys/rotate`, `sys/key-status`): old entries stay
//! readable, new writes use the new term, across restarts, on every node of a
//! PostgreSQL cluster, and through kill -9 at any moment of a rotation; and
//! root token generation (`sys/generate-root*`): the OTP flow, its refusals,
//! its audit, and kill -9 in the middle of it.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use crate::cluster::{Cluster, PROPAGATION_WAIT, database_lock, within};
use crate::crash::kill_9_during;
use crate::node::{Node, Site};

fn term(node: &Node, root: &str) -> u64 {
    let (status, body) = node.call("GET", "sys/key-status", Some(root), None);
    assert_eq!(status, 200, "{body}");
    body["data"]["term"].as_u64().unwrap()
}

fn encrypt(node: &Node, root: &str, key: &str) -> String {
    let (status, body) = node.call(
        "POST",
        &format!("transit/encrypt/{key}"),
        Some(root),
        Some(json!({ "plaintext": "aGVsbG8=" })),
    );
    assert_eq!(status, 200, "{body}");
    body["data"]["ciphertext"].as_str().unwrap().to_owned()
}

fn decrypts(node: &Node, root: &str, key: &str, ciphertext: &str) {
    let (status, body) = node.call(
        "POST",
        &format!("transit/decrypt/{key}"),
        Some(root),
        Some(json!({ "ciphertext": ciphertext })),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["plaintext"], json!("aGVsbG8="));
}

fn create(node: &Node, root: &str, key: &str) {
    let (status, body) = node.call("POST", &format!("transit/keys/{key}"), Some(root), None);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn rotate_adds_a_term_and_old_entries_stay_readable_across_a_restart() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);

    let (status, body) = node.call("GET", "sys/key-status", Some(&root), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["term"], json!(1));
    let installed = body["data"]["install_time"].as_str().unwrap();
    // RFC 3339 in UTC, this year or later.
    assert!(
        installed.starts_with("20") && installed.ends_with('Z'),
        "{body}"
    );
    assert!(body["data"]["encryptions"].as_u64().is_some(), "{body}");

    create(&node, &root, "before");
    let old = encrypt(&node, &root, "before");
    // Only a write rotates.
    let (status, _) = node.call("GET", "sys/rotate", Some(&root), None);
    assert_eq!(status, 405);
    let (status, body) = node.call("POST", "sys/rotate", Some(&root), None);
    assert_eq!(status, 204, "{body}");
    assert_eq!(term(&node, &root), 2);
    let (_, body) = node.call("GET", "sys/key-status", Some(&root), None);
    assert_eq!(body["data"]["encryptions"], json!(0), "{body}");
    create(&node, &root, "after");
    let (_, body) = node.call("GET", "sys/key-status", Some(&root), None);
    assert!(body["data"]["encryptions"].as_u64().unwrap() > 0, "{body}");
    let new = encrypt(&node, &root, "after");
    decrypts(&node, &root, "before", &old);

    // A token without sudo is refused.
    let (status, body) = node.call(
        "POST",
        "sys/policies/acl/rotator",
        Some(&root),
        Some(json!({ "policy": "path \"sys/rotate\" { capabilities = [\"update\"] }" })),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = node.call(
        "POST",
        "auth/token/create",
        Some(&root),
        Some(json!({ "policies": ["rotator"] })),
    );
    assert_eq!(status, 200, "{body}");
    let weak = body["auth"]["client_token"].as_str().unwrap().to_owned();
    let (status, _) = node.call("POST", "sys/rotate", Some(&weak), None);
    assert_eq!(status, 403);
    assert_eq!(term(&node, &root), 2);

    node.stop();
    let node = site.start();
    node.unseal(&keys);
    assert_eq!(term(&node, &root), 2);
    decrypts(&node, &root, "before", &old);
    decrypts(&node, &root, "after", &new);
    let (status, _) = node.call("POST", "sys/rotate", Some(&root), None);
    assert_eq!(status, 204);
    assert_eq!(term(&node, &root), 3);
    // Sealed: 503 as every unsealed-only path.
    let (status, _) = node.call("POST", "sys/seal", Some(&root), None);
    assert_eq!(status, 204);
    let (status, _) = node.call("GET", "sys/key-status", Some(&root), None);
    assert_eq!(status, 503);
}

#[test]
fn a_rotation_on_one_node_reaches_the_others() {
    let _db = database_lock();
    let c = Cluster::start(2);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    create(a, &c.root, "old");
    let old = encrypt(a, &c.root, "old");
    assert_eq!(c.call(1, "POST", "sys/rotate", None).0, 204);
    assert_eq!(term(b, &c.root), 2);
    let waited = within(PROPAGATION_WAIT, "new barrier term", || {
        term(a, &c.root) == 2
    });
    println!("rotation seen by the other node after {waited:?}");
    // Entries written by either node under the new term read on both.
    create(a, &c.root, "from-a");
    create(b, &c.root, "from-b");
    for (node, key) in [(a, "from-b"), (b, "from-a")] {
        within(PROPAGATION_WAIT, "key from the other node", || {
            node.call("GET", &format!("transit/keys/{key}"), Some(&c.root), None)
                .0
                == 200
        });
        let ciphertext = encrypt(node, &c.root, key);
        decrypts(node, &c.root, key, &ciphertext);
    }
    decrypts(b, &c.root, "old", &old);
}

/// kill -9 while rotations run: after each restart the shares unseal, the
/// term is at least the last acknowledged one, and everything reads back.
#[test]
fn kill_9_during_rotations_leaves_old_or_new_keyring() {
    const CYCLES: u64 = 12;
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    drop(node);
    let acked_term = Mutex::new(1u64);
    let mut written: Vec<(String, String)> = Vec::new();
    for cycle in 0..CYCLES {
        let node = site.start();
        node.unseal(&keys);
        // Every acknowledged rotation is there; at most the one in flight
        // at the kill was committed without its answer.
        let now = term(&node, &root);
        let mut acked = acked_term.lock().unwrap();
        assert!(
            *acked <= now && now <= *acked + 1,
            "term {now}, acked {acked}"
        );
        *acked = now;
        drop(acked);
        for (key, ciphertext) in &written {
            decrypts(&node, &root, key, ciphertext);
        }
        let key = format!("k{cycle}");
        create(&node, &root, &key);
        written.push((key.clone(), encrypt(&node, &root, &key)));
        let kill_after = Duration::from_millis(20 + cycle * 17 % 150);
        kill_9_during(&node, kill_after, |stop| {
            while !stop.load(Ordering::Relaxed) {
                match node.try_call("sys/rotate", &root, json!({})) {
                    Some((204, _)) => *acked_term.lock().unwrap() += 1,
                    Some((status, body)) => panic!("rotate answered {status}: {body}"),
                    None => return,
                }
            }
        });
        drop(node);
    }
    let node = site.start();
    node.unseal(&keys);
    let acked = *acked_term.lock().unwrap();
    let now = term(&node, &root);
    assert!(
        now >= acked && now <= acked + 1,
        "term {now}, acked {acked}"
    );
    for (key, ciphertext) in &written {
        decrypts(&node, &root, key, ciphertext);
    }
    assert!(
        acked > CYCLES,
        "too few rotations ({acked}) to mean anything"
    );
    println!("rotate crash test: {CYCLES} kill -9 cycles, {acked} rotations acknowledged");
}

/// Undo the OTP encoding (what `bao operator generate-root -decode` does).
pub(crate) fn decode_token(encoded: &str, otp: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded)
        .unwrap();
    assert_eq!(bytes.len(), otp.len());
    bytes
        .iter()
        .zip(otp.bytes())
        .map(|(b, o)| char::from(b ^ o))
        .collect()
}

#[test]
fn generate_root_with_an_otp_issues_a_working_root_token() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(3, 2);
    node.unseal(&keys[..2]);
    let audit_path = site.dir.path().join("audit.log");
    let (code, body) = node.call(
        "POST",
        "sys/audit/file",
        Some(&root),
        Some(
            json!({ "type": "file", "options": { "file_path": audit_path.display().to_string() } }),
        ),
    );
    assert_eq!(code, 204, "{body}");
    let status = |node: &Node| node.call("GET", "sys/generate-root/attempt", None, None);

    let (code, body) = status(&node);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["started"], json!(false));
    assert_eq!(body["required"], json!(2));
    assert_eq!(body["otp_length"], json!(26));
    // No attempt: a share is refused.
    let update = |key: &str, nonce: &str| {
        node.call(
            "POST",
            "sys/generate-root/update",
            None,
            Some(json!({ "key": key, "nonce": nonce })),
        )
    };
    let (code, body) = update(&keys[0], "none");
    assert_eq!(code, 400, "{body}");

    // Started without an OTP: the server makes one and shows it once.
    let (code, body) = node.call("PUT", "sys/generate-root/attempt", None, Some(json!({})));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["started"], json!(true));
    let otp = body["otp"].as_str().unwrap().to_owned();
    assert_eq!(otp.len(), 26);
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let (_, body) = status(&node);
    assert_eq!(body["otp"], json!(""), "the OTP is shown once");
    assert_eq!(body["nonce"], json!(nonce));
    // A second start is refused; the first stands until cancelled.
    let (code, _) = node.call("PUT", "sys/generate-root/attempt", None, Some(json!({})));
    assert_eq!(code, 400);
    assert_eq!(status(&node).1["nonce"], json!(nonce));
    let (code, _) = node.call("DELETE", "sys/generate-root/attempt", None, None);
    assert_eq!(code, 204);
    assert_eq!(status(&node).1["started"], json!(false));
    // A PGP key is not supported: refused, not ignored.
    let (code, body) = node.call(
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({ "pgp_key": "mQENBF..." })),
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&node).1["started"], json!(false));
    let (code, body) = node.call(
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({ "otp": "too-short" })),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = node.call(
        "PUT",
        "sys/generate-root/attempt",
        None,
        Some(json!({ "otp": otp })),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["otp"], json!(""), "the caller's OTP is not echoed");
    let nonce = body["nonce"].as_str().unwrap().to_owned();

    // Wrong nonce, bad share, duplicate share: 400 and no progress.
    let (code, body) = update(&keys[0], "wrong-nonce");
    assert_eq!(code, 400, "{body}");
    let (code, body) = update("not a share", &nonce);
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&node).1["progress"], json!(0));
    let (code, body) = update(&keys[0], &nonce);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["progress"], json!(1));
    assert_eq!(body["complete"], json!(false));
    let (code, body) = update(&keys[0], &nonce);
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&node).1["progress"], json!(1));

    let (code, body) = update(&keys[2], &nonce);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["complete"], json!(true));
    assert_eq!(body["progress"], json!(2));
    let encoded = body["encoded_root_token"].as_str().unwrap().to_owned();
    assert_eq!(body["encoded_token"], json!(encoded));
    let new_root = decode_token(&encoded, &otp);
    assert_ne!(new_root, root);
    assert_eq!(
        status(&node).1["started"],
        json!(false),
        "the attempt ended"
    );

    let (code, body) = node.call("GET", "auth/token/lookup-self", Some(&new_root), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["policies"], json!(["root"]));
    // Root: sudo paths work with it.
    let (code, _) = node.call("POST", "sys/rotate", Some(&new_root), None);
    assert_eq!(code, 204);

    // Shares of another server rebuild another key: refused, nothing issued.
    let other = Site::new("disable_mlock = true");
    let other_node = other.start();
    let (other_keys, _) = other_node.init(3, 2);
    let (_, body) = node.call("PUT", "sys/generate-root/attempt", None, Some(json!({})));
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert_eq!(update(&other_keys[0], &nonce).0, 200);
    let (code, body) = update(&other_keys[1], &nonce);
    assert_eq!(code, 400, "{body}");
    assert_eq!(status(&node).1["progress"], json!(0));

    // OpenBao's paths (what the bao CLI calls): a token, the body under `data`.
    assert_eq!(
        node.call("DELETE", "sys/generate-root/attempt", None, None)
            .0,
        204
    );
    let (code, _) = node.call("GET", "sys/generate-root-token/attempt", None, None);
    assert_eq!(code, 403);
    let (code, body) = node.call(
        "PUT",
        "sys/generate-root-token/attempt",
        Some(&new_root),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["started"], json!(true));
    assert_eq!(body["data"]["otp"].as_str().unwrap().len(), 26);
    let (_, body) = status(&node);
    assert_eq!(body["started"], json!(true), "one attempt, either path");
    let (code, _) = node.call(
        "DELETE",
        "sys/generate-root-token/attempt",
        Some(&new_root),
        None,
    );
    assert_eq!(code, 204);
    let (code, _) = node.call("POST", "sys/rotate/keyring", Some(&new_root), None);
    assert_eq!(code, 204);

    // The shares, the OTP and the token reach the audit log only HMACed.
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit.contains("sys/generate-root/update"), "not audited");
    for secret in [&keys[0], &keys[2], &otp, &new_root, &encoded] {
        assert!(
            !audit.contains(secret.as_str()),
            "{secret} in the audit log"
        );
    }

    let sealed = node.call("POST", "sys/seal", Some(&root), None);
    assert_eq!(sealed.0, 204);
    assert_eq!(status(&node).0, 503);
}

#[test]
fn generate_root_is_refused_without_recovery_keys() {
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("unseal.key");
    std::fs::write(&key_file, [42u8; 32]).unwrap();
    let site = Site::new(&format!(
        "disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{}\"\n}}",
        key_file.display()
    ));
    let node = site.start();
    // Vault's check: an auto seal takes no unseal share counts.
    let (code, body) = node.call("PUT", "sys/init", None, Some(json!({"secret_shares": 1})));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string()
            .contains("not applicable to seal type static"),
        "{body}"
    );
    // No recovery keys asked for: as a store from before recovery keys.
    let (code, body) = node.call("PUT", "sys/init", None, Some(json!({})));
    assert_eq!(code, 200, "{body}");
    assert!(body.get("recovery_keys").is_none(), "{body}");
    let (code, body) = node.call("PUT", "sys/generate-root/attempt", None, Some(json!({})));
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("recovery keys"), "{body}");
    let (code, _) = node.call("GET", "sys/generate-root/attempt", None, None);
    assert_eq!(code, 400);
}

/// kill -9 in the middle of root generation, and right after a token was
/// issued: the attempt (memory only) is gone, the shares still unseal, and a
/// token that was returned works after the restart.
#[test]
fn kill_9_during_root_generation_leaves_a_usable_server() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(3, 2);
    node.unseal(&keys[..2]);
    let start = |node: &Node| {
        let (code, body) = node.call("PUT", "sys/generate-root/attempt", None, Some(json!({})));
        assert_eq!(code, 200, "{body}");
        (
            body["nonce"].as_str().unwrap().to_owned(),
            body["otp"].as_str().unwrap().to_owned(),
        )
    };
    let share = |node: &Node, key: &str, nonce: &str| {
        let (code, body) = node.call(
            "PUT",
            "sys/generate-root/update",
            None,
            Some(json!({ "key": key, "nonce": nonce })),
        );
        assert_eq!(code, 200, "{body}");
        body
    };
    let (nonce, _) = start(&node);
    share(&node, &keys[0], &nonce);
    node.kill9();

    let node = site.start();
    node.unseal(&keys[1..]);
    let (_, body) = node.call("GET", "sys/generate-root/attempt", None, None);
    assert_eq!(body["started"], json!(false), "{body}");
    let (nonce, otp) = start(&node);
    share(&node, &keys[1], &nonce);
    let done = share(&node, &keys[2], &nonce);
    let new_root = decode_token(done["encoded_token"].as_str().unwrap(), &otp);
    node.kill9();

    let node = site.start();
    node.unseal(&keys[..2]);
    for token in [&root, &new_root] {
        let (code, body) = node.call("GET", "auth/token/lookup-self", Some(token), None);
        assert_eq!(code, 200, "{body}");
    }
}
