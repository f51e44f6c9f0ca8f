//! Seal migration, as OpenBao does it: the old auto seal's stanza marked
//! `disabled = "true"` (none for Shamir), `sys/unseal` with `migrate: true`
//! and the old seal's unseal or recovery keys. Every direction among
//! Shamir, static and transit (a second transitd, and OpenBao 2.7.2, as the
//! unsealer), data readable after each, old credentials refused after,
//! refusals, and kill -9 on either side of the switch.

use std::fs;
use std::time::Duration;

use serde_json::{Value, json};
use transitd_test_support::DevServer;

use crate::node::{Node, Site};
use crate::transit_seal::{
    Unsealer, assert_decrypts, encrypt_something, seal_status, start_expecting_exit,
    transitd_unsealer, wait_unsealed,
};

/// A site whose seal stanzas the test rewrites between starts.
struct MigrationSite {
    site: Site,
    base: String,
    static_key: String,
}

impl MigrationSite {
    fn new() -> Self {
        let site = Site::new("disable_mlock = true\n");
        let base = fs::read_to_string(site.config()).unwrap();
        let key_file = site.dir.path().join("static.key");
        fs::write(&key_file, [5u8; 32]).unwrap();
        let static_key = format!("file://{}", key_file.display());
        Self {
            site,
            base,
            static_key,
        }
    }

    /// The configuration with these seal stanzas (none: Shamir).
    fn seals(&self, stanzas: &[String]) -> &Self {
        fs::write(
            self.site.config(),
            format!("{}{}", self.base, stanzas.concat()),
        )
        .unwrap();
        self
    }

    fn static_stanza(&self, disabled: bool) -> String {
        format!(
            "seal \"static\" {{\n  disabled = \"{disabled}\"\n  current_key_id = \"k1\"\n  current_key = \"{}\"\n}}\n",
            self.static_key
        )
    }

    fn start(&self) -> Node {
        self.site.start()
    }
}

fn transit_stanza(address: &str, token: &str, disabled: bool) -> String {
    format!(
        "seal \"transit\" {{\n  disabled = \"{disabled}\"\n  address = \"{address}\"\n  token = \"{token}\"\n  \
         mount_path = \"transit/\"\n  key_name = \"autounseal\"\n}}\n"
    )
}

/// `sys/unseal` with one key, `migrate` as given: (status, body).
fn unseal_call(node: &Node, key: &str, migrate: bool) -> (u16, Value) {
    node.call(
        "POST",
        "sys/unseal",
        None,
        Some(json!({ "key": key, "migrate": migrate })),
    )
}

/// Enter `keys` with `migrate: true`; the server must end unsealed.
fn migrate_with(node: &Node, keys: &[String]) -> Value {
    let mut last = Value::Null;
    for key in keys {
        let (code, body) = unseal_call(node, key, true);
        assert_eq!(code, 200, "{body}\n{}", node.log_text());
        last = body;
    }
    assert_eq!(last["sealed"], false, "{last}");
    last
}

/// A migration is pending: sealed, `migration: true`, the new type, and
/// the counts of the shares to enter.
fn assert_pending(node: &Node, new_type: &str, t: u64, n: u64) {
    let status = seal_status(node);
    assert_eq!(status["migration"], true, "{status}");
    assert_eq!(status["sealed"], true, "{status}");
    assert_eq!(status["type"], new_type, "{status}");
    assert_eq!(
        (status["t"].as_u64(), status["n"].as_u64()),
        (Some(t), Some(n)),
        "{status}"
    );
}

/// Unseal without `migrate` is OpenBao's refusal (a 400; OpenBao 2.7.2 answers 500); a wrong key among the
/// threshold is refused; nothing switched.
fn assert_refusals(node: &Node, right: &str) {
    let (code, body) = unseal_call(node, right, false);
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errors"][0],
        "migrate option not provided and seal migration is pending"
    );
    let (code, body) = unseal_call(node, right, true);
    assert_eq!(code, 200, "{body}");
    let (code, body) = unseal_call(node, &hex::encode([9u8; 33]), true);
    assert_eq!(code, 400, "a wrong key: {body}");
    assert_eq!(seal_status(node)["migration"], true);
}

/// `sys/init` under an auto seal with recovery shares: (recovery keys, root).
fn init_auto(node: &Node, shares: u64, threshold: u64) -> (Vec<String>, String) {
    let (code, body) = node.call(
        "POST",
        "sys/init",
        None,
        Some(json!({ "recovery_shares": shares, "recovery_threshold": threshold })),
    );
    assert_eq!(code, 200, "{body}");
    let keys = body["recovery_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    (keys, body["root_token"].as_str().unwrap().to_owned())
}

/// Shamir → `to` (an auto seal's stanza) → Shamir, checking each side.
fn shamir_to_auto_and_back(m: &MigrationSite, to_type: &str, to: &str, to_disabled: &str) {
    m.seals(&[]);
    let node = m.start();
    let (keys, root) = node.init(3, 2);
    node.unseal(&keys[..2]);
    let ciphertext = encrypt_something(&node, &root);
    node.stop();

    // Shamir → auto: only the new stanza; storage says Shamir.
    m.seals(&[to.to_owned()]);
    let node = m.start();
    assert_pending(&node, to_type, 2, 3);
    assert_refusals(&node, &keys[0]);
    let status = migrate_with(&node, &keys[..2]);
    assert_eq!(status["migration"], false, "{status}");
    assert_eq!(status["recovery_seal"], true, "{status}");
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();
    // It unseals itself now; the old unseal keys unseal nothing...
    let node = m.start();
    let status = wait_unsealed(&node, Duration::from_secs(30));
    assert_eq!(
        (status["t"].as_u64(), status["n"].as_u64()),
        (Some(2), Some(3)),
        "{status}"
    );
    assert_decrypts(&node, &root, &ciphertext);
    node.call("POST", "sys/seal", Some(&root), None);
    let (code, body) = unseal_call(&node, &keys[0], false);
    assert_eq!(code, 400, "unseal keys no longer unseal: {body}");
    let (code, body) = unseal_call(&node, &keys[0], true);
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errors"][0],
        "can't perform a seal migration, no migration seal found"
    );
    node.stop();

    // ...they are the recovery keys, which take it back to Shamir.
    m.seals(&[to_disabled.to_owned()]);
    let node = m.start();
    assert_pending(&node, "shamir", 2, 3);
    assert_refusals(&node, &keys[2]);
    let status = migrate_with(&node, &keys[1..]);
    assert_eq!(status["recovery_seal"], false, "{status}");
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();
    // The disabled stanza still there: no migration, plain unseal, as OpenBao.
    let node = m.start();
    let status = seal_status(&node);
    assert_eq!(
        (status["migration"].clone(), status["sealed"].clone()),
        (json!(false), json!(true)),
        "{status}"
    );
    node.unseal(&[keys[0].clone(), keys[2].clone()]);
    node.stop();
    // The old auto seal alone no longer unseals: it would be a new migration.
    m.seals(&[to.to_owned()]);
    let node = m.start();
    std::thread::sleep(Duration::from_millis(500));
    assert_pending(&node, to_type, 2, 3);
    node.stop();
    m.seals(&[]);
    let node = m.start();
    node.unseal(&keys[..2]);
    assert_decrypts(&node, &root, &ciphertext);
}

#[test]
fn shamir_to_static_and_back() {
    let m = MigrationSite::new();
    let (to, back) = (m.static_stanza(false), m.static_stanza(true));
    shamir_to_auto_and_back(&m, "static", &to, &back);
}

#[test]
fn shamir_to_transit_and_back_with_a_transitd_unsealer() {
    let (unsealer_site, _unsealer_node, unsealer) = transitd_unsealer("");
    let token = unsealer.token("1h");
    let m = MigrationSite::new();
    let to = transit_stanza(&unsealer_site.addr(), &token, false);
    let back = transit_stanza(&unsealer_site.addr(), &token, true);
    shamir_to_auto_and_back(&m, "transit", &to, &back);
}

/// Static → transit (OpenBao 2.7.2 as the unsealer) → static: auto to auto,
/// the recovery keys authorize and stay.
#[test]
fn static_to_transit_on_openbao_and_back() {
    let bao = DevServer::openbao();
    let unsealer = Unsealer::new(bao.client().addr(), "root");
    unsealer.prepare();
    let token = unsealer.token("1h");
    let m = MigrationSite::new();
    let transit = |disabled| transit_stanza(bao.client().addr(), &token, disabled);
    m.seals(&[m.static_stanza(false)]);
    let node = m.start();
    let (recovery, root) = init_auto(&node, 3, 2);
    let ciphertext = encrypt_something(&node, &root);
    node.stop();

    m.seals(&[m.static_stanza(true), transit(false)]);
    let node = m.start();
    assert_pending(&node, "transit", 2, 3);
    assert_refusals(&node, &recovery[0]);
    migrate_with(&node, &recovery[..2]);
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();
    // Done, the disabled stanza still there: sealed, no migration, and the
    // recovery keys unseal without -migrate, as OpenBao.
    let node = m.start();
    std::thread::sleep(Duration::from_millis(500));
    let status = seal_status(&node);
    assert_eq!(
        (status["migration"].clone(), status["sealed"].clone()),
        (json!(false), json!(true)),
        "{status}"
    );
    node.unseal(&recovery[1..]);
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();
    m.seals(&[transit(false)]);
    let node = m.start();
    wait_unsealed(&node, Duration::from_secs(30));
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();
    // The old static key alone is refused: storage says transit.
    m.seals(&[m.static_stanza(false)]);
    let log = start_expecting_exit(&m.site);
    assert!(
        log.contains(
            "cannot seal migrate from \"transit\" to \"static\", no disabled seal in configuration"
        ),
        "{log}"
    );

    m.seals(&[transit(true), m.static_stanza(false)]);
    let node = m.start();
    assert_pending(&node, "static", 2, 3);
    migrate_with(&node, &recovery[1..]);
    node.stop();
    m.seals(&[m.static_stanza(false)]);
    let node = m.start();
    wait_unsealed(&node, Duration::from_secs(30));
    assert_decrypts(&node, &root, &ciphertext);
    // The recovery keys still authorize (a root generation starts with them).
    let (code, body) = node.call("POST", "sys/generate-root/attempt", None, Some(json!({})));
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["required"], 2, "{body}");
}

/// Transit (a transitd unsealer) → static, the other auto → auto direction.
#[test]
fn transit_to_static_with_a_transitd_unsealer() {
    let (unsealer_site, _unsealer_node, unsealer) = transitd_unsealer("");
    let token = unsealer.token("1h");
    let m = MigrationSite::new();
    let transit = |disabled| transit_stanza(&unsealer_site.addr(), &token, disabled);
    m.seals(&[transit(false)]);
    let node = m.start();
    let (recovery, root) = init_auto(&node, 1, 1);
    let ciphertext = encrypt_something(&node, &root);
    node.stop();
    m.seals(&[transit(true), m.static_stanza(false)]);
    let node = m.start();
    assert_pending(&node, "static", 1, 1);
    migrate_with(&node, &recovery);
    node.stop();
    m.seals(&[m.static_stanza(false)]);
    let node = m.start();
    wait_unsealed(&node, Duration::from_secs(30));
    assert_decrypts(&node, &root, &ciphertext);
}

/// The configuration rules that refuse to start, as OpenBao's words.
#[test]
fn impossible_seal_combinations_refuse_to_start() {
    let m = MigrationSite::new();
    m.seals(&[m.static_stanza(false)]);
    let node = m.start();
    init_auto(&node, 1, 1);
    node.stop();
    m.seals(&[]);
    let log = start_expecting_exit(&m.site);
    assert!(
        log.contains(
            "cannot seal migrate from \"static\" to Shamir, no disabled seal in configuration"
        ),
        "{log}"
    );
    m.seals(&["seal \"shamir\" {\n  disabled = \"true\"\n}\n".to_owned()]);
    let log = start_expecting_exit(&m.site);
    assert!(log.contains("Shamir seals cannot be set disabled"), "{log}");
    m.seals(&[m.static_stanza(true), m.static_stanza(true)]);
    let log = start_expecting_exit(&m.site);
    assert!(log.contains("second disabled seal block"), "{log}");
}

/// kill -9 just before and just after the switch: before, the old setup
/// (and the migration) still unseal; after, the new one does.
#[test]
fn kill_9_at_the_switch_leaves_the_old_seal_or_the_new() {
    let m = MigrationSite::new();
    let node = m.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let ciphertext = encrypt_something(&node, &root);
    node.stop();

    m.seals(&[m.static_stanza(false)]);
    let node = m.site.start_crashing_at("migrate-before-switch");
    let _ = node
        .client()
        .write("sys/unseal", json!({ "key": keys[0], "migrate": true }));
    node.wait_killed();
    m.seals(&[]);
    let node = m.start();
    node.unseal(&keys);
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();

    m.seals(&[m.static_stanza(false)]);
    let node = m.site.start_crashing_at("migrate-after-switch");
    assert_pending(&node, "static", 1, 1);
    let _ = node
        .client()
        .write("sys/unseal", json!({ "key": keys[0], "migrate": true }));
    node.wait_killed();
    let node = m.start();
    wait_unsealed(&node, Duration::from_secs(30));
    assert_decrypts(&node, &root, &ciphertext);
    // The new seal's wrapping travelled with the switch.
    let stored = String::from_utf8_lossy(&m.site.raw_storage()).into_owned();
    assert!(
        stored.contains("wrapped_root_key"),
        "the switch stored the new wrapping"
    );
}

/// Two nodes on one PostgreSQL database: one migrates Shamir → static while
/// the other stays unsealed under Shamir. The root key does not change, so
/// the other keeps serving; restarted with the old configuration it refuses
/// to start (it would serve under a seal the store no longer has), and with
/// the new one it unseals itself.
#[test]
fn migrating_one_postgresql_node_leaves_the_other_serving_then_refusing_the_old_seal() {
    use crate::cluster::{PG_URL, Schema, database_lock};
    let _db = database_lock();
    let schema = Schema::new();
    let storage = format!(
        "storage \"postgresql\" {{\n  connection_url = \"{PG_URL}\"\n  schema = \"{}\"\n}}",
        schema.0
    );
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("static.key");
    fs::write(&key_file, [4u8; 32]).unwrap();
    let stanza = format!(
        "seal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{}\"\n}}\n",
        key_file.display()
    );
    let site_a = Site::with_storage(&storage, "disable_mlock = true");
    let site_b = Site::with_storage(&storage, "disable_mlock = true");
    let a = site_a.start();
    let (keys, root) = a.init(1, 1);
    a.unseal(&keys);
    let b = site_b.start();
    b.unseal(&keys);
    let ciphertext = encrypt_something(&a, &root);
    a.stop();

    let shamir_config = fs::read_to_string(site_a.config()).unwrap();
    fs::write(site_a.config(), format!("{shamir_config}{stanza}")).unwrap();
    let a = site_a.start();
    assert_pending(&a, "static", 1, 1);
    migrate_with(&a, &keys);
    assert_decrypts(&b, &root, &ciphertext);
    let (code, body) = b.call(
        "POST",
        "transit/encrypt/app",
        Some(&root),
        Some(json!({ "plaintext": "aGk=" })),
    );
    assert_eq!(code, 200, "the other node still serves: {body}");
    b.stop();

    let log = start_expecting_exit(&site_b);
    assert!(
        log.contains(
            "cannot seal migrate from \"static\" to Shamir, no disabled seal in configuration"
        ),
        "{log}"
    );
    let b_config = fs::read_to_string(site_b.config()).unwrap();
    fs::write(site_b.config(), format!("{b_config}{stanza}")).unwrap();
    let b = site_b.start();
    wait_unsealed(&b, Duration::from_secs(30));
    assert_decrypts(&b, &root, &ciphertext);
}
