//! A real server from a config file: persistence, seal/unseal, static
//! auto-unseal, encryption at rest, process hygiene, TLS, config errors, CLI.

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use transitd_test_support::free_port;

use crate::node::{BIN, Site};
use transitd_test_support::Client;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn keys_survive_restarts_sealed_at_rest_and_need_the_shares() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (status, health) = node.call("GET", "sys/health", None, None);
    assert_eq!((status, health["initialized"].clone()), (501, json!(false)));
    let (status, _) = node.call(
        "POST",
        "sys/init",
        None,
        Some(json!({"secret_shares": 3, "secret_threshold": 5})),
    );
    assert_eq!(status, 400);
    let (keys, root) = node.init(5, 3);
    assert_eq!(keys.len(), 5);
    assert!(keys.iter().all(|k| k.len() == 66));
    assert!(root.starts_with("s.") && root.len() == 26);

    // Sealed: crypto and everything authenticated answers 503, whatever the token.
    let (status, body) = node.call(
        "POST",
        "transit/encrypt/k",
        Some(&root),
        Some(json!({"plaintext": "aGk="})),
    );
    assert_eq!(
        (status, body),
        (503, json!({"errors": ["Vault is sealed"]}))
    );
    let (status, body) = node.call(
        "POST",
        "sys/init",
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    );
    assert_eq!(
        (status, body),
        (400, json!({"errors": ["Vault is already initialized"]}))
    );

    // Progress, a duplicate share, reset, then the threshold.
    let (_, s) = node.call("POST", "sys/unseal", None, Some(json!({"key": keys[0]})));
    assert_eq!(
        (s["progress"].clone(), s["sealed"].clone()),
        (json!(1), json!(true))
    );
    assert!(!s["nonce"].as_str().unwrap().is_empty());
    let (_, s) = node.call("POST", "sys/unseal", None, Some(json!({"key": keys[0]})));
    assert_eq!(s["progress"], json!(1));
    let (_, s) = node.call("POST", "sys/unseal", None, Some(json!({"reset": true})));
    assert_eq!(
        (s["progress"].clone(), s["nonce"].clone()),
        (json!(0), json!(""))
    );
    let (status, body) = node.call("POST", "sys/unseal", None, Some(json!({"key": "zzz"})));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"errors": ["'key' must be a valid hex or base64 string"]})
        )
    );
    let status = node.unseal(&keys[..3]);
    assert_eq!(status["t"], json!(3));
    assert_eq!(status["storage_type"], json!("sqlite"));

    // An exportable key whose bytes we can look for on disk afterwards.
    let name = "payroll-q4-bonus-key";
    let (status, _) = node.call(
        "POST",
        &format!("transit/keys/{name}"),
        Some(&root),
        Some(json!({"exportable": true})),
    );
    assert_eq!(status, 200);
    let (status, _) = node.call(
        "POST",
        &format!("transit/keys/{name}/rotate"),
        Some(&root),
        None,
    );
    assert_eq!(status, 200);
    let plaintext = STANDARD.encode(b"the plaintext of record");
    let (_, enc) = node.call(
        "POST",
        &format!("transit/encrypt/{name}"),
        Some(&root),
        Some(json!({"plaintext": plaintext})),
    );
    let ciphertext = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert!(ciphertext.starts_with("vault:v2:"));
    let (_, export) = node.call(
        "GET",
        &format!("transit/export/encryption-key/{name}"),
        Some(&root),
        None,
    );
    let exported = export["data"]["keys"].clone();
    let key_bytes: Vec<Vec<u8>> = ["1", "2"]
        .iter()
        .map(|v| STANDARD.decode(exported[v].as_str().unwrap()).unwrap())
        .collect();
    let (status, _) = node.call(
        "POST",
        "sys/mounts/other",
        Some(&root),
        Some(json!({"type": "transit"})),
    );
    assert_eq!(status, 204);
    let (status, _) = node.call(
        "POST",
        "other/config/keys",
        Some(&root),
        Some(json!({"disable_upsert": true})),
    );
    assert_eq!(status, 200);
    node.stop();

    // Nothing secret on disk in clear: not the key bytes, names, token or plaintext.
    let raw = site.raw_storage();
    assert!(raw.len() > 4096);
    for (what, needle) in [
        ("key version 1", key_bytes[0].as_slice()),
        ("key version 2", key_bytes[1].as_slice()),
        (
            "key version 1 (base64)",
            exported["1"].as_str().unwrap().as_bytes(),
        ),
        ("key name", name.as_bytes()),
        ("root token", root.as_bytes()),
        ("mount path", b"other".as_slice()),
    ] {
        assert!(
            !contains(&raw, needle),
            "{what} found in clear in the database"
        );
    }
    // The database holds only ciphertext: the key entries are there, but sealed.
    assert!(contains(&raw, b"logical/"));

    // Restart: sealed again, the shares (another subset) bring everything back.
    let node = site.start();
    let (status, _) = node.call("GET", "sys/health", None, None);
    assert_eq!(status, 503);
    let (status, _) = node.call(
        "POST",
        "transit/decrypt/x",
        Some(&root),
        Some(json!({"ciphertext": ciphertext})),
    );
    assert_eq!(status, 503);
    node.unseal(&keys[2..5]);
    let (status, dec) = node.call(
        "POST",
        &format!("transit/decrypt/{name}"),
        Some(&root),
        Some(json!({"ciphertext": ciphertext})),
    );
    assert_eq!(
        (status, dec["data"]["plaintext"].clone()),
        (200, json!(plaintext))
    );
    let (_, export) = node.call(
        "GET",
        &format!("transit/export/encryption-key/{name}"),
        Some(&root),
        None,
    );
    assert_eq!(export["data"]["keys"], exported);
    let (_, cfg) = node.call("GET", "other/config/keys", Some(&root), None);
    assert_eq!(cfg["data"]["disable_upsert"], json!(true));

    // Seal through the API: keys are dropped, crypto is refused, shares bring it back.
    let (status, _) = node.call("POST", "sys/seal", Some("not-a-token"), None);
    assert_eq!(status, 403);
    let (status, _) = node.call("POST", "sys/seal", Some(&root), None);
    assert_eq!(status, 204);
    let (status, _) = node.call(
        "POST",
        &format!("transit/decrypt/{name}"),
        Some(&root),
        Some(json!({"ciphertext": ciphertext})),
    );
    assert_eq!(status, 503);
    let (_, s) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(s["sealed"], json!(true));
    node.unseal(&[keys[4].clone(), keys[0].clone(), keys[3].clone()]);
    let (status, _) = node.call(
        "POST",
        &format!("transit/decrypt/{name}"),
        Some(&root),
        Some(json!({"ciphertext": ciphertext})),
    );
    assert_eq!(status, 200);

    // Deleting a mount removes its entries from storage.
    let (status, _) = node.call("DELETE", "sys/mounts/other", Some(&root), None);
    assert_eq!(status, 204);
    node.kill9();
    let node = site.start();
    node.unseal(&keys[..3]);
    let (_, mounts) = node.call("GET", "sys/mounts", Some(&root), None);
    assert!(mounts["data"].get("other/").is_none());
    assert!(mounts["data"].get("transit/").is_some());
}

#[test]
fn wrong_shares_are_refused_and_reset_progress() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, _) = node.init(3, 2);
    let other = Site::new("disable_mlock = true");
    let other_node = other.start();
    let (foreign, _) = other_node.init(3, 2);
    node.call("POST", "sys/unseal", None, Some(json!({"key": keys[0]})));
    let (status, body) = node.call("POST", "sys/unseal", None, Some(json!({"key": foreign[1]})));
    assert_eq!(status, 400, "{body}");
    let (_, s) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (s["sealed"].clone(), s["progress"].clone()),
        (json!(true), json!(0))
    );
    node.unseal(&keys[1..3]);
}

#[test]
fn static_seal_unseals_itself_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("unseal.key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let seal = format!(
        "disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"2026-11\"\n  current_key = \"file://{}\"\n}}",
        key_file.display()
    );
    let site = Site::new(&seal);
    let node = site.start();
    let (keys, root) = node.init(5, 3);
    assert!(keys.is_empty());
    let (_, s) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(
        (
            s["type"].clone(),
            s["sealed"].clone(),
            s["recovery_seal"].clone()
        ),
        (json!("static"), json!(false), json!(true))
    );
    let (_, enc) = node.call(
        "POST",
        "transit/encrypt/app",
        Some(&root),
        Some(json!({"plaintext": "aGk="})),
    );
    let ct = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
    node.kill9();

    let node = site.start();
    let (status, dec) = node.call(
        "POST",
        "transit/decrypt/app",
        Some(&root),
        Some(json!({"ciphertext": ct})),
    );
    assert_eq!(
        (status, dec["data"]["plaintext"].clone()),
        (200, json!("aGk="))
    );
    // Already unsealed: a share changes nothing (OpenBao answers the status).
    let (status, s) = node.call(
        "POST",
        "sys/unseal",
        None,
        Some(json!({"key": hex::encode([1u8; 33])})),
    );
    assert_eq!((status, s["sealed"].clone()), (200, json!(false)));
    node.stop();

    // The wrong static key: the server refuses to start, saying why.
    std::fs::write(&key_file, [8u8; 32]).unwrap();
    let out = Command::new(BIN)
        .args(["server", &format!("-config={}", site.config().display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not open the stored root key"),
        "{stderr}"
    );
}

#[test]
fn core_dumps_disabled_and_memory_locked() {
    let site = Site::new("");
    let node = site.start();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", node.pid())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid())).unwrap();
    let locked = transitd::hygiene::parse_vmlck(&status).unwrap();
    assert!(locked > 1 << 20, "VmLck is {locked} bytes");
    // Pages are locked as they are touched (MCL_ONFAULT): the allocator's
    // reserved arena (1 GiB with mimalloc) must not become resident.
    let resident_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        resident_kib < 256 * 1024,
        "VmRSS is {resident_kib} KiB with {locked} bytes locked"
    );
}

#[test]
fn config_errors_stop_the_start_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.hcl");
    std::fs::write(
        &path,
        "storage \"sqlite\" {\n  path = \"/tmp/x.db\"\n}\nlistener \"tcp\" {\n  adress = \"127.0.0.1:1\"\n}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", &format!("-config={}", path.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.hcl:5") && stderr.contains("adress"),
        "{stderr}"
    );
}

#[test]
fn serves_tls_and_reloads_the_certificate_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let make = |tag: &str| {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.path().join(format!("ca-{tag}.pem")), ca.pem()).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (cert, key) = make("a");
    let (cert_b, key_b) = make("b");
    std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key).unwrap();
    let port = free_port();
    let config = dir.path().join("tls.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\ndisable_mlock = true\nlistener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{d}/cert.pem\"\n  tls_key_file = \"{d}/key.pem\"\n}}\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["server", &format!("-config={}", config.display())])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let https = |ca: &str| -> Result<u16, String> {
        let pem = std::fs::read(dir.path().join(format!("ca-{ca}.pem"))).unwrap();
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .get(format!("https://127.0.0.1:{port}/v1/sys/seal-status"))
            .call()
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    };
    let mut ready = false;
    for _ in 0..300 {
        if https("a") == Ok(200) {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert!(ready, "no TLS answer");
        assert!(https("b").is_err());
        // Plain HTTP to the TLS port gets no answer.
        assert!(
            Client::new(format!("http://127.0.0.1:{port}"), None)
                .read("sys/seal-status")
                .is_err()
        );
        std::fs::write(dir.path().join("cert.pem"), &cert_b).unwrap();
        std::fs::write(dir.path().join("key.pem"), &key_b).unwrap();
        Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .unwrap();
        let mut switched = false;
        for _ in 0..150 {
            if https("b") == Ok(200) {
                switched = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(switched, "the new certificate was not served after SIGHUP");
        assert!(https("a").is_err());
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn operator_cli_inits_unseals_seals_and_reports_status() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let cli = |args: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("VAULT_ADDR", &node.addr)
            .env_remove("BAO_ADDR")
            .env("HOME", site.dir.path());
        match token {
            Some(t) => cmd.env("VAULT_TOKEN", t),
            None => cmd.env_remove("VAULT_TOKEN").env_remove("BAO_TOKEN"),
        };
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = cli(&["operator", "init", "-status"], None);
    assert_eq!((code, out.trim()), (2, "Vault is not initialized"));
    let (code, out, err) = cli(
        &[
            "operator",
            "init",
            "-key-shares=3",
            "-key-threshold=2",
            "-format=json",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let init: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<String> = init["unseal_keys_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = init["root_token"].as_str().unwrap().to_owned();
    assert_eq!(
        (keys.len(), init["unseal_threshold"].clone()),
        (3, json!(2))
    );

    let (code, out, _) = cli(&["status"], None);
    assert_eq!(code, 2);
    assert!(
        out.contains("Sealed             true") && out.contains("Unseal Progress    0/2"),
        "{out}"
    );
    let (code, out, _) = cli(&["operator", "unseal", &keys[1]], None);
    assert_eq!(code, 0);
    assert!(out.contains("Unseal Progress    1/2"), "{out}");
    let (code, _, err) = cli(&["operator", "unseal", "not-a-key"], None);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("Error unsealing: Error making API request.") && err.contains("Code: 400"),
        "{err}"
    );
    let (code, out, _) = cli(&["operator", "unseal", &keys[2]], None);
    assert_eq!(code, 0);
    let sealed_row = out.lines().find(|l| l.starts_with("Sealed ")).unwrap();
    assert!(sealed_row.ends_with(" false"), "{out}");
    let (code, out, _) = cli(&["status"], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Cluster ID"), "{out}");

    let (code, _, err) = cli(&["operator", "seal"], Some("bogus"));
    assert_eq!(code, 2);
    assert!(err.contains("Code: 403"), "{err}");
    let (code, out, _) = cli(&["operator", "seal"], Some(&root));
    assert_eq!((code, out.trim()), (0, "Success! Vault is sealed."));
    let (code, _, _) = cli(&["status"], None);
    assert_eq!(code, 2);
}
