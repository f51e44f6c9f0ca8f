//! `seal "transit"`: auto-unseal by another server's transit key, against a
//! real OpenBao 2.7.2 (`bao server -dev`) and against a second transitd as
//! the unsealer. Init, restart, remote key rotation (and its old version
//! made undecryptable, which only a rewrapped copy survives), refusals that
//! stop the server, an unsealer that is down at start, token renewal, TLS.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use transitd_test_support::{Client, DevServer, b64, free_port};

use crate::node::{BIN, Node, Site};

const SEAL_KEY: &str = "autounseal";
/// What OpenBao's documentation says the seal's token needs.
const SEAL_POLICY: &str = "path \"transit/encrypt/autounseal\" { capabilities = [\"update\"] }\n\
     path \"transit/decrypt/autounseal\" { capabilities = [\"update\"] }\n";

/// The unsealer's API with its root token.
pub(crate) struct Unsealer {
    pub(crate) api: Client,
}

impl Unsealer {
    pub(crate) fn new(addr: &str, root: &str) -> Self {
        Self {
            api: Client::new(addr, Some(root)),
        }
    }

    pub(crate) fn write(&self, path: &str, body: Value) -> Value {
        let reply = self.api.write(path, body).unwrap();
        assert!(
            reply.status < 300,
            "{path}: {} {}",
            reply.status,
            reply.body
        );
        reply.body
    }

    /// The seal's key and a policy allowing just encrypt and decrypt with it.
    pub(crate) fn prepare(&self) {
        self.write(&format!("transit/keys/{SEAL_KEY}"), json!({}));
        self.write(
            "sys/policies/acl/autounseal",
            json!({ "policy": SEAL_POLICY }),
        );
    }

    /// An orphan token under the seal's policy, living `ttl`.
    pub(crate) fn token(&self, ttl: &str) -> String {
        let body = self.write(
            "auth/token/create-orphan",
            json!({ "policies": ["autounseal"], "ttl": ttl }),
        );
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    }

    /// Whether `token` is still alive on the unsealer.
    fn token_lives(&self, token: &str) -> bool {
        let reply = self
            .api
            .write("auth/token/lookup", json!({ "token": token }))
            .unwrap();
        reply.status == 200 && reply.body["data"]["ttl"].as_u64().unwrap_or(0) > 0
    }
}

pub(crate) fn seal_stanza(address: &str, token: &str, extra: &str) -> String {
    format!(
        "disable_mlock = true\nseal \"transit\" {{\n  address = \"{address}\"\n  token = \"{token}\"\n  \
         mount_path = \"transit/\"\n  key_name = \"{SEAL_KEY}\"\n{extra}}}\n"
    )
}

pub(crate) fn seal_status(node: &Node) -> Value {
    node.call("GET", "sys/seal-status", None, None).1
}

pub(crate) fn wait_unsealed(node: &Node, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let status = seal_status(node);
        if status["sealed"] == json!(false) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "still sealed after {within:?}: {status}\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_log(node: &Node, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !node.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "{text:?} not logged within {within:?}:\n{}",
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start the site's server, which must stop by itself with an error; its log.
pub(crate) fn start_expecting_exit(site: &Site) -> String {
    let log = site.dir.path().join("failed-start.log");
    let out = fs::File::create(&log).unwrap();
    let mut child = Command::new(BIN)
        .args(["server", &format!("-config={}", site.config().display())])
        .current_dir(site.dir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "the server did not stop:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "exited successfully:\n{text}");
    text
}

/// A key on the server under test and a ciphertext made with it.
pub(crate) fn encrypt_something(node: &Node, root: &str) -> String {
    let (code, body) = node.call("POST", "transit/keys/app", Some(root), None);
    assert!(code < 300, "{body}");
    let (code, body) = node.call(
        "POST",
        "transit/encrypt/app",
        Some(root),
        Some(json!({ "plaintext": b64(b"kept across restarts") })),
    );
    assert_eq!(code, 200, "{body}");
    body["data"]["ciphertext"].as_str().unwrap().to_owned()
}

pub(crate) fn assert_decrypts(node: &Node, root: &str, ciphertext: &str) {
    let (code, body) = node.call(
        "POST",
        "transit/decrypt/app",
        Some(root),
        Some(json!({ "ciphertext": ciphertext })),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["data"]["plaintext"],
        json!(b64(b"kept across restarts"))
    );
}

fn restart(site: &Site, node: Node) -> Node {
    node.stop();
    let node = site.start();
    wait_unsealed(&node, Duration::from_secs(30));
    node
}

#[test]
fn openbao_unseals_it_across_restarts_and_remote_key_rotation() {
    let bao = DevServer::openbao();
    let unsealer = Unsealer::new(bao.client().addr(), "root");
    unsealer.prepare();
    let token = unsealer.token("1h");
    let site = Site::new(&seal_stanza(bao.client().addr(), &token, ""));
    let node = site.start();
    let status = seal_status(&node);
    assert_eq!(status["type"], "transit", "{status}");
    assert_eq!(status["initialized"], false, "{status}");
    assert_eq!(status["sealed"], true, "{status}");

    let (keys, root) = node.init(1, 1);
    assert!(keys.is_empty(), "an auto seal hands out no unseal keys");
    let status = seal_status(&node);
    assert_eq!(status["sealed"], false, "{status}");
    assert_eq!(status["recovery_seal"], true, "{status}");
    let ciphertext = encrypt_something(&node, &root);
    // Only the remote ciphertext is stored, never the root key in the clear.
    let stored = String::from_utf8_lossy(&site.raw_storage()).into_owned();
    assert!(
        stored.contains("\"seal\":\"transit\""),
        "no envelope stored"
    );
    assert!(stored.contains("vault:v1:"), "no remote ciphertext stored");

    let node = restart(&site, node);
    assert_decrypts(&node, &root, &ciphertext);

    // Rotate the remote key: the next start rewraps the root key with v2...
    unsealer.write(&format!("transit/keys/{SEAL_KEY}/rotate"), json!({}));
    let node = restart(&site, node);
    assert!(
        node.log_text().contains("root key rewrapped"),
        "{}",
        node.log_text()
    );
    // ...so it still unseals once v1 may no longer decrypt.
    unsealer.write(
        &format!("transit/keys/{SEAL_KEY}/config"),
        json!({ "min_decryption_version": 2 }),
    );
    let node = restart(&site, node);
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();

    // Another key named in the config: refused before any call, server stops.
    let config = fs::read_to_string(site.config()).unwrap();
    let other = config.replace(
        &format!("key_name = \"{SEAL_KEY}\""),
        "key_name = \"other\"",
    );
    fs::write(site.config(), &other).unwrap();
    let log = start_expecting_exit(&site);
    assert!(
        log.contains("the root key was wrapped by transit key \"autounseal\""),
        "{log}"
    );
    assert!(!log.contains(&token), "the token reached the log:\n{log}");
    fs::write(site.config(), &config).unwrap();

    // A revoked token: the unsealer says so, and so does the server as it stops.
    unsealer.write("auth/token/revoke", json!({ "token": token }));
    let log = start_expecting_exit(&site);
    assert!(log.contains("permission denied"), "{log}");
    assert!(log.contains("auto-unseal"), "{log}");
}

#[test]
fn the_unsealers_token_is_renewed_unless_told_not_to() {
    let bao = DevServer::openbao();
    let unsealer = Unsealer::new(bao.client().addr(), "root");
    unsealer.prepare();
    let renewed = unsealer.token("4s");
    let left_alone = unsealer.token("4s");
    // The sites hold the logs: they live as long as the nodes.
    let sites = [
        Site::new(&seal_stanza(bao.client().addr(), &renewed, "")),
        Site::new(&seal_stanza(
            bao.client().addr(),
            &left_alone,
            "  disable_renewal = \"true\"\n",
        )),
        Site::new(&seal_stanza(bao.client().addr(), "root", "")),
    ];
    let [node, not_renewing, root_token] = [0, 1, 2].map(|i| sites[i].start());
    std::thread::sleep(Duration::from_secs(9));
    assert!(
        unsealer.token_lives(&renewed),
        "a 4 s token outlived 9 s only if renewed:\n{}",
        node.log_text()
    );
    assert!(
        !unsealer.token_lives(&left_alone),
        "disable_renewal: the token should have expired"
    );
    let renewals = node
        .log_text()
        .matches("renewed the transit seal's token")
        .count();
    assert!(renewals >= 3, "{renewals} renewals:\n{}", node.log_text());
    wait_for_log(&root_token, "not renewing it", Duration::from_secs(10));
    assert!(
        !node.log_text().contains(&renewed),
        "the token reached the log"
    );
    assert!(!not_renewing.log_text().contains("renewed the transit"));
}

/// The unsealer: a transitd that unseals itself with a static key, so it
/// can be stopped and started again with its transit keys.
pub(crate) fn transitd_unsealer(extra: &str) -> (Site, Node, Unsealer) {
    let site = Site::new("");
    let key_file = site.dir.path().join("unseal.key");
    fs::write(&key_file, [7u8; 32]).unwrap();
    let config = fs::read_to_string(site.config()).unwrap();
    fs::write(
        site.config(),
        format!(
            "{config}disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{}\"\n}}\n{extra}",
            key_file.display()
        ),
    )
    .unwrap();
    let node = site.start();
    let (_, root) = node.init(1, 1);
    let unsealer = Unsealer::new(&site.addr(), &root);
    unsealer.prepare();
    (site, node, unsealer)
}

#[test]
fn transitd_as_the_unsealer_down_at_start_then_back() {
    let (unsealer_site, unsealer_node, unsealer) = transitd_unsealer("");
    let token = unsealer.token("1h");
    let site = Site::new(&seal_stanza(&unsealer_site.addr(), &token, ""));
    let node = site.start();
    let (_, root) = node.init(1, 1);
    let ciphertext = encrypt_something(&node, &root);
    let node = restart(&site, node);
    node.stop();

    unsealer_node.stop();
    let node = site.start();
    wait_for_log(&node, "unsealer did not answer", Duration::from_secs(10));
    let status = seal_status(&node);
    assert_eq!(status["type"], "transit", "{status}");
    assert_eq!(status["initialized"], true, "{status}");
    assert_eq!(status["sealed"], true, "{status}");
    assert_eq!(status["recovery_seal"], true, "{status}");
    assert_eq!(status["recovery_seal_type"], "shamir", "{status}");
    let (code, _) = node.call("POST", "transit/decrypt/app", Some(&root), Some(json!({})));
    assert_eq!(code, 503, "sealed: nothing is served");
    let (code, body) = node.call(
        "POST",
        "sys/unseal",
        None,
        Some(json!({ "key": hex::encode([1u8; 33]) })),
    );
    assert_eq!(code, 400, "an auto seal takes no shares: {body}");

    // An init while the unsealer is down fails and leaves nothing behind...
    let fresh_site = Site::new(&seal_stanza(&unsealer_site.addr(), &token, ""));
    let fresh = fresh_site.start();
    let (code, body) = fresh.call("POST", "sys/init", None, Some(json!({})));
    assert_eq!(code, 500, "{body}");
    assert_eq!(seal_status(&fresh)["initialized"], false);

    // The unsealer comes back: the same process unseals, no restart.
    let _unsealer_node = unsealer_site.start();
    wait_unsealed(&node, Duration::from_secs(30));
    assert_decrypts(&node, &root, &ciphertext);
    // ...and the init can simply be tried again.
    fresh.init(1, 1);
    assert_eq!(seal_status(&fresh)["sealed"], false);
}

#[test]
fn tls_to_a_transitd_unsealer_with_its_ca_and_server_name() {
    let certs = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    // Only a name, no IP: the address alone (127.0.0.1) would not verify.
    let cert = rcgen::CertificateParams::new(vec!["unsealer.test".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let d = certs.path().display();
    fs::write(certs.path().join("ca.pem"), ca.pem()).unwrap();
    fs::write(certs.path().join("cert.pem"), cert.pem()).unwrap();
    fs::write(certs.path().join("key.pem"), key.serialize_pem()).unwrap();
    let tls_port = free_port();
    let (_unsealer_site, _unsealer_node, unsealer) = transitd_unsealer(&format!(
        "listener \"tcp\" {{\n  address = \"127.0.0.1:{tls_port}\"\n  tls_cert_file = \"{d}/cert.pem\"\n  tls_key_file = \"{d}/key.pem\"\n}}\n"
    ));
    let token = unsealer.token("1h");
    let address = format!("https://127.0.0.1:{tls_port}");
    let site = Site::new(&seal_stanza(
        &address,
        &token,
        &format!("  tls_ca_cert = \"{d}/ca.pem\"\n  tls_server_name = \"unsealer.test\"\n"),
    ));
    let node = site.start();
    let (_, root) = node.init(1, 1);
    let ciphertext = encrypt_something(&node, &root);
    let node = restart(&site, node);
    assert_decrypts(&node, &root, &ciphertext);
    node.stop();

    // Without the CA the unsealer is not trusted: sealed, and the log says why.
    let config = fs::read_to_string(site.config()).unwrap();
    fs::write(
        site.config(),
        config.replace(&format!("  tls_ca_cert = \"{d}/ca.pem\"\n"), ""),
    )
    .unwrap();
    let node = site.start();
    wait_for_log(&node, "unsealer did not answer", Duration::from_secs(10));
    assert!(
        node.log_text().to_lowercase().contains("certificate"),
        "{}",
        node.log_text()
    );
    assert_eq!(seal_status(&node)["sealed"], true);
}
