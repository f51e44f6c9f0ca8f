//! Rekey (`sys/rekey/*`, `sys/rekey-recovery-key/*`) against a real server:
//! new shares replace the old ones and every key and ciphertext stays; the
//! verification flow keeps the old shares until the new ones come back;
//! recovery keys under the static seal authorize root generation and are
//! rekeyed; and kill -9 at the points inside rotate, rekey and root
//! generation leaves the old state or the new one, never neither.

use serde_json::{Value, json};

use crate::barrier_ops::decode_token;
use crate::node::{Node, Site};

fn put(node: &Node, path: &str, body: Value) -> (u16, Value) {
    node.call("PUT", path, None, Some(body))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn encrypt(node: &Node, root: &str) -> String {
    let (code, body) = node.call(
        "POST",
        "transit/encrypt/k",
        Some(root),
        Some(json!({"plaintext": "aGVsbG8="})),
    );
    assert_eq!(code, 200, "{body}");
    body["data"]["ciphertext"].as_str().unwrap().to_owned()
}

fn decrypts(node: &Node, root: &str, ciphertext: &str) {
    let (code, body) = node.call(
        "POST",
        "transit/decrypt/k",
        Some(root),
        Some(json!({ "ciphertext": ciphertext })),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["plaintext"], "aGVsbG8=");
}

/// Whether `keys` unseal the (sealed) node; a failure resets the attempt.
fn unseals_with(node: &Node, keys: &[String]) -> bool {
    for key in keys {
        let (code, body) = put(node, "sys/unseal", json!({ "key": key }));
        if code != 200 {
            put(node, "sys/unseal", json!({ "reset": true }));
            return false;
        }
        if body["sealed"] == json!(false) {
            return true;
        }
    }
    put(node, "sys/unseal", json!({ "reset": true }));
    false
}

/// Start a rekey of `family` (`rekey` or `rekey-recovery-key`) and enter
/// `keys`; the last reply.
fn rekey(node: &Node, family: &str, keys: &[String], n: u64, t: u64, verify: bool) -> Value {
    let (code, body) = put(
        node,
        &format!("sys/{family}/init"),
        json!({"secret_shares": n, "secret_threshold": t, "require_verification": verify}),
    );
    assert_eq!(code, 200, "{body}");
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let mut last = Value::Null;
    for key in keys {
        let (code, body) = put(
            node,
            &format!("sys/{family}/update"),
            json!({"key": key, "nonce": nonce}),
        );
        assert_eq!(code, 200, "{body}");
        last = body;
    }
    last
}

/// A root token from `keys` through `sys/generate-root/*`, or the refusal.
fn generate_root(node: &Node, keys: &[String]) -> Result<String, Value> {
    node.call("DELETE", "sys/generate-root/attempt", None, None);
    let (code, body) = put(node, "sys/generate-root/attempt", json!({}));
    assert_eq!(code, 200, "{body}");
    let (nonce, otp) = (
        body["nonce"].clone(),
        body["otp"].as_str().unwrap().to_owned(),
    );
    for key in keys {
        let (code, body) = put(
            node,
            "sys/generate-root/update",
            json!({"key": key, "nonce": nonce}),
        );
        if code != 200 {
            return Err(body);
        }
        if body["complete"] == json!(true) {
            return Ok(decode_token(body["encoded_token"].as_str().unwrap(), &otp));
        }
    }
    Err(Value::Null)
}

/// A Shamir node with key `k` and one ciphertext: (site, keys, root, ciphertext).
fn shamir_site(n: u64, t: u64) -> (Site, Vec<String>, String, String) {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(n, t);
    node.unseal(&keys);
    let (code, body) = node.call("POST", "transit/keys/k", Some(&root), None);
    assert!(code == 200 || code == 204, "{body}");
    let ciphertext = encrypt(&node, &root);
    node.kill9();
    (site, keys, root, ciphertext)
}

fn static_site() -> (Site, tempfile::TempDir) {
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("unseal.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let site = Site::new(&format!(
        "disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{}\"\n}}",
        key_file.display()
    ));
    (site, key_dir)
}

#[test]
fn rekey_replaces_the_unseal_shares_and_keeps_every_key() {
    let (site, old, root, ciphertext) = shamir_site(3, 2);
    let node = site.start();
    let (code, _) = node.call("GET", "sys/rekey/init", None, None);
    assert_eq!(code, 503, "sealed");
    node.unseal(&old[..2]);
    let (code, body) = node.call("GET", "sys/rekey/init", None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["started"], json!(false));
    assert_eq!(body["required"], json!(2));
    for refused in [json!({"pgp_keys": ["x"]}), json!({"backup": true})] {
        let mut asked = json!({"secret_shares": 5, "secret_threshold": 3});
        asked
            .as_object_mut()
            .unwrap()
            .extend(refused.as_object().unwrap().clone());
        let (code, body) = put(&node, "sys/rekey/init", asked);
        assert_eq!(code, 400, "{body}");
        assert!(body.to_string().contains("not supported"), "{body}");
    }
    let (code, body) = put(
        &node,
        "sys/rekey/init",
        json!({"secret_shares": 5, "secret_threshold": 1}),
    );
    assert_eq!(code, 400, "{body}");

    let (code, body) = put(
        &node,
        "sys/rekey/init",
        json!({"secret_shares": 5, "secret_threshold": 3}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        (
            body["started"].clone(),
            body["t"].clone(),
            body["n"].clone()
        ),
        (json!(true), json!(3), json!(5))
    );
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    let (code, body) = put(
        &node,
        "sys/rekey/init",
        json!({"secret_shares": 5, "secret_threshold": 3}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.to_string().contains("rekey already in progress"),
        "{body}"
    );
    let (code, body) = put(
        &node,
        "sys/rekey/update",
        json!({"key": old[0], "nonce": "wrong"}),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("incorrect nonce"), "{body}");
    let (code, body) = put(&node, "sys/rekey/update", json!({"nonce": nonce}));
    assert_eq!(code, 400, "{body}");
    let (code, body) = put(
        &node,
        "sys/rekey/update",
        json!({"key": old[0], "nonce": nonce}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["progress"], json!(1));
    let (code, body) = put(
        &node,
        "sys/rekey/update",
        json!({"key": old[2], "nonce": nonce}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["complete"], json!(true), "{body}");
    assert_eq!(body["verification_required"], json!(false));
    assert_eq!(body["nonce"], json!(nonce));
    let new = strings(&body["keys"]);
    assert_eq!(new.len(), 5);
    assert_eq!(strings(&body["keys_base64"]).len(), 5);
    let (_, status) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (status["t"].clone(), status["n"].clone()),
        (json!(3), json!(5))
    );

    // Old shares stop working for new unseals; the new ones open everything.
    assert_eq!(node.call("POST", "sys/seal", Some(&root), None).0, 204);
    assert!(!unseals_with(&node, &old));
    assert!(unseals_with(&node, &new[2..]));
    decrypts(&node, &root, &ciphertext);
    node.kill9();
    let node = site.start();
    assert!(!unseals_with(&node, &old[..2]));
    assert!(unseals_with(&node, &new[..3]));
    decrypts(&node, &root, &ciphertext);
    // Cancel ends an attempt.
    put(
        &node,
        "sys/rekey/init",
        json!({"secret_shares": 1, "secret_threshold": 1}),
    );
    assert_eq!(node.call("DELETE", "sys/rekey/init", None, None).0, 204);
    assert_eq!(
        node.call("GET", "sys/rekey/init", None, None).1["started"],
        json!(false)
    );
}

#[test]
fn verification_keeps_the_old_shares_until_the_new_ones_come_back() {
    let (site, old, root, ciphertext) = shamir_site(1, 1);
    let node = site.start();
    node.unseal(&old);
    let audit_path = site.dir.path().join("audit.log");
    let (code, body) = node.call(
        "PUT",
        "sys/audit/file",
        Some(&root),
        Some(json!({"type": "file", "options": {"file_path": audit_path.display().to_string()}})),
    );
    assert_eq!(code, 204, "{body}");
    let done = rekey(&node, "rekey", &old, 3, 2, true);
    assert_eq!(done["verification_required"], json!(true), "{done}");
    let new = strings(&done["keys"]);
    let verification = done["verification_nonce"].as_str().unwrap().to_owned();
    let (_, status) = node.call("GET", "sys/rekey/verify", None, None);
    assert_eq!(status["started"], json!(true), "{status}");
    assert_eq!(status["nonce"], json!(verification));
    let (code, body) = put(
        &node,
        "sys/rekey/update",
        json!({"key": old[0], "nonce": done["nonce"]}),
    );
    assert_eq!(code, 400);
    assert!(
        body.to_string().contains("verification must be performed"),
        "{body}"
    );
    // Not yet in effect: the old share is what the stored config takes.
    let (_, status) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(status["n"], json!(1));
    // A wrong pair fails and starts verification over with a new nonce.
    // 33 bytes that are no share of the new key.
    let other = hex::encode([0x5au8; 33]);
    put(
        &node,
        "sys/rekey/verify",
        json!({"key": new[0], "nonce": verification}),
    );
    let (code, body) = put(
        &node,
        "sys/rekey/verify",
        json!({"key": other, "nonce": verification}),
    );
    assert_eq!(code, 400, "{body}");
    let (_, status) = node.call("GET", "sys/rekey/verify", None, None);
    let verification = status["nonce"].as_str().unwrap().to_owned();
    assert_eq!(status["progress"], json!(0));
    put(
        &node,
        "sys/rekey/verify",
        json!({"key": new[1], "nonce": verification}),
    );
    let (code, body) = put(
        &node,
        "sys/rekey/verify",
        json!({"key": new[2], "nonce": verification}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["complete"], json!(true), "{body}");
    // Old and new shares reach the audit log only HMACed.
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    assert!(audit.contains("sys/rekey/verify"), "not audited");
    let b64 = strings(&done["keys_base64"]);
    for secret in old.iter().chain(&new).chain(&b64) {
        assert!(
            !audit.contains(secret.as_str()),
            "{secret} in the audit log"
        );
    }
    node.kill9();
    let node = site.start();
    assert!(!unseals_with(&node, &old));
    assert!(unseals_with(&node, &new[..2]));
    decrypts(&node, &root, &ciphertext);
}

#[test]
fn recovery_keys_under_the_static_seal_authorize_root_generation_and_are_rekeyed() {
    let (site, _key_dir) = static_site();
    let node = site.start();
    let (code, body) = put(
        &node,
        "sys/init",
        json!({"recovery_shares": 3, "recovery_threshold": 1}),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = put(
        &node,
        "sys/init",
        json!({"recovery_shares": 3, "recovery_threshold": 2}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(strings(&body["keys"]).len(), 0);
    let recovery = strings(&body["recovery_keys"]);
    assert_eq!(recovery.len(), 3);
    assert_eq!(strings(&body["recovery_keys_base64"]).len(), 3);
    let (_, status) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (status["t"].clone(), status["n"].clone()),
        (json!(2), json!(3)),
        "{status}"
    );
    assert_eq!(status["recovery_seal"], json!(true));
    // No unseal shares to rekey under an auto seal.
    let (code, body) = put(
        &node,
        "sys/rekey/init",
        json!({"secret_shares": 1, "secret_threshold": 1}),
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = node.call("GET", "sys/rekey-recovery-key/init", None, None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["required"], json!(2));

    let token = generate_root(&node, &recovery[1..]).expect("recovery keys authorize");
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&token), None)
            .0,
        200
    );
    // A wrong recovery share set is refused.
    let wrong = generate_root(&node, &[recovery[0].clone(), hex::encode([9u8; 33])]);
    assert!(wrong.is_err());

    let done = rekey(&node, "rekey-recovery-key", &recovery[..2], 1, 1, false);
    assert_eq!(done["complete"], json!(true), "{done}");
    let new = strings(&done["keys"]);
    assert_eq!(new.len(), 1);
    let (_, status) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (status["t"].clone(), status["n"].clone()),
        (json!(1), json!(1))
    );
    assert!(
        generate_root(&node, &recovery[..2]).is_err(),
        "old recovery keys still work"
    );
    node.kill9();
    let node = site.start();
    let token = generate_root(&node, &new).expect("new recovery key authorizes");
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&token), None)
            .0,
        200
    );
    // Shamir stores refuse recovery rekeying, as Vault.
    let (site, keys, _, _) = shamir_site(1, 1);
    let node = site.start();
    node.unseal(&keys);
    let (code, body) = node.call("GET", "sys/rekey-recovery-key/init", None, None);
    assert_eq!(code, 400, "{body}");
}

/// Start a node armed at `point`, run `operation` (whose reply is lost when
/// the point is reached), and wait for the process to die there.
fn crash_during(site: &Site, point: &str, unseal: &[String], operation: impl FnOnce(&Node)) {
    let node = site.start_crashing_at(point);
    if !unseal.is_empty() {
        node.unseal(unseal);
    }
    operation(&node);
    node.wait_killed();
}

#[test]
fn kill_9_inside_each_barrier_operation_leaves_the_old_or_the_new_state() {
    let (site, keys, root, ciphertext) = shamir_site(3, 2);
    let term = |node: &Node| {
        node.call("GET", "sys/key-status", Some(&root), None).1["data"]["term"]
            .as_u64()
            .unwrap()
    };

    // sys/rotate: before its compare-and-swap the old term stays, after it the new one.
    crash_during(&site, "rotate-before-commit", &keys[..2], |node| {
        let _ = node
            .client()
            .as_token(Some(&root))
            .write("sys/rotate", json!({}));
    });
    let node = site.start();
    node.unseal(&keys[..2]);
    assert_eq!(term(&node), 1);
    decrypts(&node, &root, &ciphertext);
    node.kill9();
    crash_during(&site, "rotate-after-commit", &keys[..2], |node| {
        let _ = node
            .client()
            .as_token(Some(&root))
            .write("sys/rotate", json!({}));
    });
    let node = site.start();
    node.unseal(&keys[..2]);
    assert_eq!(term(&node), 2);
    decrypts(&node, &root, &ciphertext);
    let after_rotate = encrypt(&node, &root);
    node.kill9();

    // Rekey, killed before the switch: the old shares unseal.
    crash_during(&site, "rekey-before-commit", &keys[..2], |node| {
        let (code, body) = put(
            node,
            "sys/rekey/init",
            json!({"secret_shares": 1, "secret_threshold": 1}),
        );
        assert_eq!(code, 200, "{body}");
        let nonce = body["nonce"].clone();
        put(
            node,
            "sys/rekey/update",
            json!({"key": keys[0], "nonce": nonce}),
        );
        let lost = node
            .client()
            .write("sys/rekey/update", json!({"key": keys[1], "nonce": nonce}));
        assert!(lost.is_err(), "{lost:?}");
    });
    let node = site.start();
    assert!(unseals_with(&node, &keys[1..]));
    decrypts(&node, &root, &after_rotate);
    node.kill9();

    // Rekey with verification, killed right after the switch: the client
    // already holds the new shares (from update), and they unseal.
    let mut new = Vec::new();
    crash_during(&site, "rekey-after-commit", &keys[..2], |node| {
        let done = rekey(node, "rekey", &keys[..2], 3, 2, true);
        new = strings(&done["keys"]);
        let nonce = done["verification_nonce"].clone();
        put(
            node,
            "sys/rekey/verify",
            json!({"key": new[0], "nonce": nonce}),
        );
        let lost = node
            .client()
            .write("sys/rekey/verify", json!({"key": new[1], "nonce": nonce}));
        assert!(lost.is_err(), "{lost:?}");
    });
    let node = site.start();
    assert!(!unseals_with(&node, &keys[..2]));
    assert!(unseals_with(&node, &new[1..]));
    decrypts(&node, &root, &ciphertext);
    decrypts(&node, &root, &after_rotate);
    node.kill9();

    // Root generation, killed after the token is stored but before it is
    // returned: the shares still unseal, the old root token works, and a
    // new attempt succeeds.
    crash_during(&site, "generate-root-after-token", &new[..2], |node| {
        let (_, body) = put(node, "sys/generate-root/attempt", json!({}));
        let nonce = body["nonce"].clone();
        put(
            node,
            "sys/generate-root/update",
            json!({"key": new[0], "nonce": nonce}),
        );
        let lost = node.client().write(
            "sys/generate-root/update",
            json!({"key": new[2], "nonce": nonce}),
        );
        assert!(lost.is_err(), "{lost:?}");
    });
    let node = site.start();
    node.unseal(&new[..2]);
    assert_eq!(
        node.call("GET", "auth/token/lookup-self", Some(&root), None)
            .0,
        200
    );
    let token = generate_root(&node, &new[..2]).expect("root generation after the crash");
    decrypts(&node, &token, &ciphertext);
}

#[test]
fn kill_9_inside_a_recovery_rekey_leaves_the_old_or_the_new_recovery_keys() {
    let (site, _key_dir) = static_site();
    let node = site.start();
    let (code, body) = put(
        &node,
        "sys/init",
        json!({"recovery_shares": 2, "recovery_threshold": 2}),
    );
    assert_eq!(code, 200, "{body}");
    let old = strings(&body["recovery_keys"]);
    let root = body["root_token"].as_str().unwrap().to_owned();
    node.call("POST", "transit/keys/k", Some(&root), None);
    let ciphertext = encrypt(&node, &root);
    node.kill9();

    crash_during(&site, "rekey-before-commit", &[], |node| {
        let (_, body) = put(
            node,
            "sys/rekey-recovery-key/init",
            json!({"secret_shares": 1, "secret_threshold": 1}),
        );
        let nonce = body["nonce"].clone();
        put(
            node,
            "sys/rekey-recovery-key/update",
            json!({"key": old[0], "nonce": nonce}),
        );
        let lost = node.client().write(
            "sys/rekey-recovery-key/update",
            json!({"key": old[1], "nonce": nonce}),
        );
        assert!(lost.is_err(), "{lost:?}");
    });
    let node = site.start();
    assert!(
        generate_root(&node, &old).is_ok(),
        "old recovery keys after a crash before the switch"
    );
    node.kill9();

    let mut new = Vec::new();
    crash_during(&site, "rekey-after-commit", &[], |node| {
        let done = rekey(node, "rekey-recovery-key", &old, 1, 1, true);
        new = strings(&done["keys"]);
        let lost = node.client().write(
            "sys/rekey-recovery-key/verify",
            json!({"key": new[0], "nonce": done["verification_nonce"]}),
        );
        assert!(lost.is_err(), "{lost:?}");
    });
    let node = site.start();
    assert!(generate_root(&node, &old).is_err());
    let token =
        generate_root(&node, &new).expect("new recovery key after a crash after the switch");
    decrypts(&node, &token, &ciphertext);
}

/// Two Shamir nodes on one PostgreSQL database: a rekey on one leaves the
/// other serving (the root key it holds does not change), and from then on
/// every node unseals with the new shares only.
#[test]
fn a_rekey_on_one_cluster_node_leaves_the_others_serving() {
    use crate::cluster::{PG_URL, Schema, database_lock};
    let _db = database_lock();
    let schema = Schema::new();
    let storage = format!(
        "storage \"postgresql\" {{\n  connection_url = \"{PG_URL}\"\n  schema = \"{}\"\n}}",
        schema.0
    );
    let (site_a, site_b) = (
        Site::with_storage(&storage, "disable_mlock = true"),
        Site::with_storage(&storage, "disable_mlock = true"),
    );
    let a = site_a.start();
    let (old, root) = a.init(3, 2);
    a.unseal(&old[..2]);
    let b = site_b.start();
    b.unseal(&old[1..]);
    let (code, body) = a.call("POST", "transit/keys/k", Some(&root), None);
    assert!(code == 200 || code == 204, "{body}");
    let ciphertext = encrypt(&a, &root);

    let done = rekey(&a, "rekey", &old[..2], 2, 2, false);
    let new = strings(&done["keys"]);
    // B still serves, reads A's writes and writes for A.
    decrypts(&b, &root, &ciphertext);
    let from_b = encrypt(&b, &root);
    decrypts(&a, &root, &from_b);
    let (_, status) = b.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (status["t"].clone(), status["n"].clone()),
        (json!(2), json!(2))
    );

    b.kill9();
    let b = site_b.start();
    assert!(!unseals_with(&b, &old[..2]));
    assert!(unseals_with(&b, &new));
    decrypts(&b, &root, &ciphertext);
    decrypts(&b, &root, &from_b);
}
