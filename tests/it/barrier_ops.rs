//! Barrier key rotation (`sys/rotate`, `sys/key-status`): old entries stay
//! readable, new writes use the new term, across restarts, on every node of a
//! PostgreSQL cluster, and through kill -9 at any moment of a rotation.

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
