//! Config files as Vault users have them: a well-known tutorial's JSON file
//! (`backend`, `tls_disable = 1`) on PostgreSQL, and structured server logs
//! (`log_format = "json"`, `VAULT_LOG_FORMAT`, `-log-format`).
//! PostgreSQL must be there (127.0.0.1:5432): the test fails, never skips.

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use transitd_test_support::{b64, free_port};

use crate::node::{BIN, Node, Site};

/// The file of a well-known Vault tutorial, byte for byte.
const TUTORIAL: &str = r#"{
  "backend": {"postgresql": {"connection_url": "postgres://vault:vault@storage-backend:5432/vault?sslmode=disable"}},
  "listener": {"tcp": {"address": "0.0.0.0:8200", "tls_disable": 1}}
}
"#;

/// A fresh database (the tutorial's storage is the default schema of its
/// own database; `snapshot.rs` dumps and restores a whole one), dropped when
/// the test ends.
pub(crate) struct Database(pub String);

/// Run `sql` on the `test` database; fails the test when PostgreSQL is absent.
pub(crate) fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql must be installed: PostgreSQL is needed by this test");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Database {
    pub(crate) fn new() -> Self {
        let name = format!("tutorial_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self(name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

#[test]
fn the_vault_tutorial_json_file_starts_on_postgresql() {
    let database = Database::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Only the URL (to the local database) and the port change.
    let config = TUTORIAL
        .replace(
            "postgres://vault:vault@storage-backend:5432/vault?sslmode=disable",
            &format!(
                "postgres://postgres@127.0.0.1:5432/{}?sslmode=disable",
                database.0
            ),
        )
        .replace("0.0.0.0:8200", &format!("0.0.0.0:{port}"));
    assert_ne!(config, TUTORIAL);
    let path = dir.path().join("config.json");
    fs::write(&path, &config).unwrap();

    let node = Node::start(&path, &format!("http://127.0.0.1:{port}"), dir.path());
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let (status, sealed) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(status, 200);
    assert_eq!(sealed["storage_type"], json!("postgresql"), "{sealed}");
    let plaintext = b64(b"from the tutorial");
    let (status, body) = node.call(
        "POST",
        "transit/encrypt/tutorial",
        Some(&root),
        Some(json!({"plaintext": plaintext})),
    );
    assert_eq!(status, 200, "{body}");
    let ciphertext = body["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    let (status, body) = node.call(
        "POST",
        "transit/decrypt/tutorial",
        Some(&root),
        Some(json!({"ciphertext": ciphertext})),
    );
    assert_eq!(
        (status, &body["data"]["plaintext"]),
        (200, &json!(plaintext))
    );

    // The old block name works, and the log says it is old.
    let log = node.log_text();
    assert!(
        log.contains(
            "config.json: backend.postgresql: \"backend\" is the deprecated name of \"storage\""
        ),
        "{log}"
    );
    assert!(
        !log.contains("postgres://postgres@"),
        "the URL is not logged: {log}"
    );
    node.stop();
}

/// Starts `transitd server` with `args` and `env`, stderr to its own file;
/// waits for `sys/seal-status` on `addr`, stops it with SIGTERM and returns
/// stderr.
fn stderr_of_a_run(
    args: &[&str],
    env: &[(&str, &str)],
    addr: &str,
    dir: &std::path::Path,
) -> String {
    let err_path = dir.join("stderr.log");
    let mut cmd = Command::new(BIN);
    cmd.arg("server")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("BAO_") || k.starts_with("VAULT_") || k == "RUST_LOG" {
            cmd.env_remove(&*k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let node = Node::attach(child, addr);
    // Something to log: a refused request is logged at debug only, so a
    // clean stop is the line every run has.
    let (status, _) = node.call("GET", "sys/health", None, None);
    assert!(status == 200 || status == 501, "{status}");
    node.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(&err_path).unwrap();
        if text.contains("shutting down") || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_every_line_is_json(stderr: &str, expect: &str) {
    let mut lines = 0;
    for line in stderr.lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{stderr}"));
        assert!(entry["level"].is_string(), "{line}");
        assert!(entry["timestamp"].is_string(), "{line}");
        assert!(entry["fields"]["message"].is_string(), "{line}");
        lines += 1;
    }
    assert!(lines >= 1, "no log line at all");
    assert!(
        stderr.lines().any(|l| {
            serde_json::from_str::<Value>(l).unwrap()["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(expect))
        }),
        "no line says {expect:?}:\n{stderr}"
    );
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    // From the config file, with a warning that must be JSON too.
    let site = Site::new("disable_mlock = true\nlog_format = \"json\"");
    let stderr = stderr_of_a_run(
        &[&format!("-config={}", site.config().display())],
        &[],
        &site.addr(),
        site.dir.path(),
    );
    assert_every_line_is_json(&stderr, "disable_mlock is set");
    assert_every_line_is_json(&stderr, "shutting down");

    // From Vault's variable, in dev mode.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let stderr = stderr_of_a_run(
        &["-dev", &format!("-dev-listen-address={addr}")],
        &[("VAULT_LOG_FORMAT", "json")],
        &format!("http://{addr}"),
        dir.path(),
    );
    assert_every_line_is_json(&stderr, "shutting down");

    // The flag wins over the file: standard lines are not JSON.
    let stderr = stderr_of_a_run(
        &[
            &format!("-config={}", site.config().display()),
            "-log-format=standard",
        ],
        &[],
        &site.addr(),
        site.dir.path(),
    );
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(
        stderr
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_err()),
        "{stderr}"
    );
}

#[test]
fn an_unknown_log_format_stops_the_start() {
    let site = Site::new("disable_mlock = true");
    let config = format!("-config={}", site.config().display());
    let refused = |flag: Option<&str>, env: Option<&str>, expect: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["server", &config])
            .args(flag)
            .env_remove("VAULT_LOG_FORMAT")
            .env_remove("BAO_LOG_FORMAT");
        if let Some(value) = env {
            cmd.env("VAULT_LOG_FORMAT", value);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{stderr}");
    };
    refused(
        Some("-log-format=logfmt"),
        None,
        "invalid -log-format \"logfmt\" (known: standard, json)",
    );
    refused(None, Some("yaml"), "invalid VAULT_LOG_FORMAT \"yaml\"");
}
