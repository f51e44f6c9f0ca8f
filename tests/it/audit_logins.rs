//! A real server with audit on: logins (userpass, AppRole), least privilege,
//! the tamper-evident log and `transitd audit verify`, fail-closed auditing,
//! and operational logs free of secrets.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::node::{BIN, Node, Site};

fn verify(file: &std::path::Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify", &file.display().to_string()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn token_of(reply: &Value) -> String {
    reply["auth"]["client_token"].as_str().unwrap().to_owned()
}

#[test]
fn logins_policies_and_a_tamper_evident_audit_log() {
    let site = Site::new("disable_mlock = true\nlog_level = \"trace\"");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let r = Some(root.as_str());
    let audit_path = site.dir.path().join("audit.log");
    let (status, body) = node.call(
        "POST",
        "sys/audit/file",
        r,
        Some(
            json!({ "type": "file", "options": { "file_path": audit_path.display().to_string() } }),
        ),
    );
    assert_eq!(status, 204, "{body}");

    // Policy, userpass user, AppRole role.
    let web = r#"path "transit/encrypt/web-*" { capabilities = ["update"] }"#;
    assert_eq!(
        node.call(
            "POST",
            "sys/policies/acl/web",
            r,
            Some(json!({ "policy": web }))
        )
        .0,
        204
    );
    assert_eq!(
        node.call(
            "POST",
            "sys/auth/userpass",
            r,
            Some(json!({ "type": "userpass" }))
        )
        .0,
        204
    );
    assert_eq!(
        node.call(
            "POST",
            "sys/auth/approle",
            r,
            Some(json!({ "type": "approle" }))
        )
        .0,
        204
    );
    let password = "correct horse battery staple 42";
    let (status, body) = node.call(
        "POST",
        "auth/userpass/users/alice",
        r,
        Some(json!({ "password": password, "token_policies": "web" })),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = node.call(
        "POST",
        "auth/approle/role/ci",
        r,
        Some(json!({ "token_policies": ["web"], "secret_id_num_uses": 2, "secret_id_ttl": "10m" })),
    );
    assert_eq!(status, 204, "{body}");
    let role_id = node.call("GET", "auth/approle/role/ci/role-id", r, None).1["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = node
        .call("POST", "auth/approle/role/ci/secret-id", r, Some(json!({})))
        .1["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = node.call("POST", "transit/keys/web-1", r, Some(json!({})));
    assert_eq!(status, 200);
    let (status, export_key) = node.call(
        "POST",
        "transit/keys/secret-export",
        r,
        Some(json!({ "exportable": true })),
    );
    assert_eq!(status, 200, "{export_key}");
    let exported = node
        .call(
            "GET",
            "transit/export/encryption-key/secret-export",
            r,
            None,
        )
        .1["data"]["keys"]["1"]
        .as_str()
        .unwrap()
        .to_owned();

    // Logins.
    let (status, _) = node.call(
        "POST",
        "auth/userpass/login/alice",
        None,
        Some(json!({ "password": "wrong" })),
    );
    assert_eq!(status, 400);
    let (status, _) = node.call(
        "POST",
        "auth/userpass/login/nobody",
        None,
        Some(json!({ "password": "wrong" })),
    );
    assert_eq!(status, 400);
    let (status, login) = node.call(
        "POST",
        "auth/userpass/login/alice",
        None,
        Some(json!({ "password": password })),
    );
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["auth"]["policies"], json!(["default", "web"]));
    let alice = token_of(&login);
    let (status, login) = node.call(
        "POST",
        "auth/approle/login",
        None,
        Some(json!({ "role_id": role_id, "secret_id": secret_id })),
    );
    assert_eq!(status, 200, "{login}");
    let ci = token_of(&login);

    // Least privilege, for both.
    let plaintext = STANDARD.encode(b"the audited plaintext");
    let mut ciphertext = String::new();
    for t in [&alice, &ci] {
        let (status, enc) = node.call(
            "POST",
            "transit/encrypt/web-1",
            Some(t),
            Some(json!({ "plaintext": plaintext })),
        );
        assert_eq!(status, 200, "{enc}");
        ciphertext = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
        let (status, _) = node.call(
            "POST",
            "transit/decrypt/web-1",
            Some(t),
            Some(json!({ "ciphertext": ciphertext })),
        );
        assert_eq!(status, 403);
        let (status, _) = node.call("POST", "transit/keys/web-1/rotate", Some(t), None);
        assert_eq!(status, 403);
    }
    let bogus = Some("s.not-a-real-token-0000000");
    let (status, _) = node.call("POST", "transit/encrypt/web-1", bogus, Some(json!({})));
    assert_eq!(status, 403);
    let (_, hashed) = node.call(
        "POST",
        "sys/audit-hash/file",
        r,
        Some(json!({ "input": root })),
    );
    let root_hash = hashed["data"]["hash"].as_str().unwrap().to_owned();
    assert!(root_hash.starts_with("hmac-sha256:"));
    node.stop();

    // The log: every request on record, secrets only as HMACs.
    let log = std::fs::read_to_string(&audit_path).unwrap();
    assert!(
        log.contains(&root_hash),
        "the root token's HMAC is searchable"
    );
    assert!(log.contains("\"path\":\"transit/encrypt/web-1\""));
    assert!(log.contains("\"error\":\"1 error occurred:\\n\\t* permission denied\\n\\n\""));
    assert!(
        log.contains("\"error\":\"permission denied\""),
        "unknown token not on record"
    );
    assert!(!log.contains("s.not-a-real-token"));
    let server_log: String = std::fs::read_dir(site.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("server-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        server_log.contains("TRACE") || server_log.contains("DEBUG") || server_log.contains("INFO"),
        "the server logged nothing?"
    );
    for (what, secret) in [
        ("root token", root.as_str()),
        ("alice's token", alice.as_str()),
        ("AppRole token", ci.as_str()),
        ("password", password),
        ("secret_id", secret_id.as_str()),
        ("role_id", role_id.as_str()),
        ("plaintext", plaintext.as_str()),
        ("ciphertext", ciphertext.as_str()),
        ("exported key", exported.as_str()),
        ("unseal key", keys[0].as_str()),
    ] {
        assert!(!log.contains(secret), "{what} in the audit log in clear");
        assert!(!server_log.contains(secret), "{what} in the server log");
    }

    // Tamper evidence.
    let (code, out) = verify(&audit_path);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 20);
    let tamper = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let mut copy: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        edit(&mut copy);
        let path = site.dir.path().join(name);
        std::fs::write(&path, copy.join("\n") + "\n").unwrap();
        std::fs::copy(sidecar(&audit_path), sidecar(&path)).unwrap();
        let (code, out) = verify(&path);
        assert_eq!(code, 2, "{name} not caught: {out}");
        out
    };
    let out = tamper("edited.log", &|l| {
        l[10] = l[10].replacen("update", "read", 1)
    });
    assert!(out.contains("line 11"), "{out}");
    tamper("deleted.log", &|l| {
        l.remove(12);
    });
    tamper("swapped.log", &|l| l.swap(13, 14));
    tamper("truncated.log", &|l| l.truncate(l.len() - 3));
}

fn sidecar(path: &std::path::Path) -> std::path::PathBuf {
    transitd::audit::sidecar_path(path)
}

/// The only audit device stops working: every request fails, and nothing is
/// done (the key the failed request asked for does not exist afterwards).
#[test]
fn fails_closed_when_no_device_can_record() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.kill9();

    // stdout is a pipe we can close under the server.
    let mut child = Command::new(BIN)
        .args(["server", &format!("-config={}", site.config().display())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("listening"), "{first}");
    let node = Node::attach(child, &site.addr());
    node.unseal(&keys);
    let r = Some(root.as_str());
    assert_eq!(
        node.call(
            "POST",
            "sys/audit/out",
            r,
            Some(json!({ "type": "stdout" }))
        )
        .0,
        204
    );
    assert_eq!(
        node.call("POST", "transit/keys/before", r, Some(json!({})))
            .0,
        200
    );
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = node.call("POST", "transit/keys/after", r, Some(json!({})));
        if status == 500 {
            assert_eq!(body, json!({ "errors": ["internal error"] }));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes kept succeeding with a dead audit device"
        );
        // The first write may still fit in the pipe's buffer: delete and retry.
        node.call("DELETE", "transit/keys/after", r, None);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = node.call(
        "POST",
        "transit/encrypt/before",
        r,
        Some(json!({ "plaintext": "aGk=" })),
    );
    assert_eq!(status, 500);
    node.kill9();

    // After a restart the device writes again (stdout is a file now): the
    // refused creation never happened.
    let node = site.start();
    node.unseal(&keys);
    let (status, _) = node.call("GET", "transit/keys/after", r, None);
    assert_eq!(status, 404);
    let (status, _) = node.call("GET", "transit/keys/before", r, None);
    assert_eq!(status, 200);
}
