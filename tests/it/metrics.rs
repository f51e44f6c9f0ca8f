//! `sys/metrics` on real server processes (each its own process: the
//! counters are per process), and a real Prometheus scraping one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use transitd_test_support::{Client, free_port};

use crate::node::{Node, Site};

const TELEMETRY: &str =
    "telemetry {\n  prometheus_retention_time = \"30s\"\n  disable_hostname = true\n}\n";

const ENCRYPTS: &str =
    r#"transitd_operations{kind="encrypt",key_type="aes256-gcm96",outcome="success"}"#;

/// An initialized, unsealed node; its root token.
fn unsealed(site: &Site) -> (Node, String) {
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    (node, root)
}

fn metrics_text(client: &Client, token: Option<&str>) -> (u16, String) {
    let reply = client
        .as_token(token)
        .read("sys/metrics?format=prometheus")
        .unwrap();
    let text = match reply.body {
        Value::String(text) => text,
        other => other.to_string(),
    };
    (reply.status, text)
}

/// The value of the series `series` (name and labels, exactly as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

fn encrypt(node: &Node, token: &str, n: usize) {
    for _ in 0..n {
        let (status, body) = node.call(
            "POST",
            "transit/encrypt/app",
            Some(token),
            Some(json!({ "plaintext": "aGVsbG8=" })),
        );
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn metrics_need_read_on_sys_metrics_and_count_each_encrypt() {
    let site = Site::new(TELEMETRY);
    let (node, root) = unsealed(&site);
    let client = node.client();

    // No token, or a token without `read` on sys/metrics: refused.
    assert_eq!(metrics_text(client, None).0, 403);
    let policy = |name: &str, hcl: &str| {
        let (status, body) = node.call(
            "POST",
            &format!("sys/policies/acl/{name}"),
            Some(&root),
            Some(json!({ "policy": hcl })),
        );
        assert_eq!(status, 204, "{body}");
        let (status, body) = node.call(
            "POST",
            "auth/token/create",
            Some(&root),
            Some(json!({ "policies": [name] })),
        );
        assert_eq!(status, 200, "{body}");
        body["auth"]["client_token"].as_str().unwrap().to_owned()
    };
    let reader = policy(
        "metrics",
        "path \"sys/metrics\" { capabilities = [\"read\"] }",
    );
    let other = policy(
        "other",
        "path \"transit/*\" { capabilities = [\"update\"] }",
    );
    assert_eq!(metrics_text(client, Some(&other)).0, 403);

    // Vault's forms and errors.
    let (status, text) = metrics_text(client, Some(&reader));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("vault_core_unsealed{cluster="), "{text}");
    assert!(
        text.contains("# TYPE vault_core_handle_request summary"),
        "{text}"
    );
    let json_form = client.as_token(Some(&reader)).read("sys/metrics").unwrap();
    assert_eq!(json_form.status, 200);
    for field in ["Timestamp", "Gauges", "Counters", "Samples", "Points"] {
        assert!(
            !json_form.body[field].is_null(),
            "{field}: {}",
            json_form.body
        );
    }
    // Without `format`, Prometheus' own `Accept` header asks for its form.
    let scraper_accept =
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    for (accept, prometheus) in [
        (scraper_accept, true),
        ("text/plain, prometheus/telemetry", true),
        ("application/json", false),
    ] {
        let reply = client
            .as_token(Some(&reader))
            .with_header("Accept", accept)
            .read("sys/metrics")
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.body.is_string(),
            prometheus,
            "{accept}: {}",
            reply.body
        );
    }
    let unknown = client
        .as_token(Some(&reader))
        .read("sys/metrics?format=xx")
        .unwrap();
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body, json!("metric response format \"xx\" unknown"));

    // Exactly N encrypts move the counter by N.
    encrypt(&node, &root, 1); // creates the key (upsert)
    let before = sample(&metrics_text(client, Some(&reader)).1, ENCRYPTS);
    encrypt(&node, &root, 7);
    let after = sample(&metrics_text(client, Some(&reader)).1, ENCRYPTS);
    assert_eq!(after - before, 7.0);
    // A failed decrypt counts as a failure of its key type.
    let (status, _) = node.call(
        "POST",
        "transit/decrypt/app",
        Some(&root),
        Some(json!({ "ciphertext": "vault:v1:AAAA" })),
    );
    assert_eq!(status, 400);
    let text = metrics_text(client, Some(&reader)).1;
    let failed = r#"transitd_operations{kind="decrypt",key_type="aes256-gcm96",outcome="failure"}"#;
    assert_eq!(sample(&text, failed), 1.0);
    // Vault's route timers, per mount and operation (the upsert created).
    assert_eq!(sample(&text, "vault_route_create_transit__count"), 1.0);
    assert_eq!(sample(&text, "vault_route_update_transit__count"), 8.0);
    // No key name is ever a label.
    assert!(!text.contains("\"app\""), "{text}");
}

#[test]
fn prometheus_without_a_retention_is_refused_as_vault_refuses_it() {
    let site = Site::new("");
    let (node, root) = unsealed(&site);
    let (status, text) = metrics_text(node.client(), Some(&root));
    assert_eq!((status, text.as_str()), (400, "prometheus is not enabled"));
    let json_form = node
        .client()
        .as_token(Some(&root))
        .read("sys/metrics")
        .unwrap();
    assert_eq!(json_form.status, 200, "{}", json_form.body);
}

#[test]
fn unauthenticated_metrics_access_opens_that_listener_only() {
    let open_port = free_port();
    let site = Site::new(&format!(
        "{TELEMETRY}listener \"tcp\" {{\n  address = \"127.0.0.1:{open_port}\"\n  tls_disable = true\n  telemetry {{\n    unauthenticated_metrics_access = true\n  }}\n}}\n"
    ));
    let node = site.start();
    let open = Client::new(format!("http://127.0.0.1:{open_port}"), None);
    // Served while sealed, without a token, on the open listener only.
    let (status, text) = metrics_text(&open, None);
    assert_eq!(status, 200, "{text}");
    let sealed = text
        .lines()
        .find(|l| l.starts_with("vault_core_unsealed{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(sealed.ends_with(" 0"), "{sealed}");
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    assert_eq!(metrics_text(node.client(), None).0, 403);
    // Nothing else opens up on that listener.
    let mounts = open.read("sys/mounts").unwrap();
    assert_eq!(mounts.status, 403, "{}", mounts.body);

    // Served unaudited there (as Vault does), audited with a token elsewhere.
    let log = site.dir.path().join("audit.log");
    let (status, body) = node.call(
        "POST",
        "sys/audit/file",
        Some(&root),
        Some(json!({ "type": "file", "options": { "file_path": log.display().to_string() } })),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(metrics_text(&open, None).0, 200);
    assert_eq!(metrics_text(node.client(), Some(&root)).0, 200);
    let entries = |text: &str| text.matches("\"path\":\"sys/metrics\"").count();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if entries(&text) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The token's request and response; none for the open listener's.
    assert_eq!(entries(&text), 2, "{text}");
}

/// The Prometheus server binary: `$PROMETHEUS_BIN`, `prometheus` on the
/// PATH, or Debian's. Missing is a failure (scripts/test-all.sh installs it).
fn prometheus_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("PROMETHEUS_BIN") {
        return PathBuf::from(bin);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("prometheus"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| Some(PathBuf::from("/usr/bin/prometheus")).filter(|p| p.is_file()))
        .expect(
            "prometheus is not installed: apt-get install -y prometheus (scripts/test-all.sh does)",
        )
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus' answer to `query` (the first sample's value), `None` until
/// it has one.
fn query(prometheus: &Client, query: &str) -> Option<f64> {
    let encoded: String = url_encode(query);
    let reply = prometheus
        .send(
            "GET",
            &format!("/api/v1/query?query={encoded}"),
            None,
            None,
            None,
        )
        .ok()?;
    let value = reply.body["data"]["result"][0]["value"][1].as_str()?;
    value.parse().ok()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_the_counters() {
    let bin = prometheus_bin();
    let site = Site::new(TELEMETRY);
    let (node, root) = unsealed(&site);
    // A token that may read the metrics and nothing else.
    let (status, body) = node.call(
        "POST",
        "sys/policies/acl/scraper",
        Some(&root),
        Some(json!({ "policy": "path \"sys/metrics\" { capabilities = [\"read\"] }" })),
    );
    assert_eq!(status, 204, "{body}");
    let (_, body) = node.call(
        "POST",
        "auth/token/create",
        Some(&root),
        Some(json!({ "policies": ["scraper"] })),
    );
    let scraper = body["auth"]["client_token"].as_str().unwrap().to_owned();

    let dir = site.dir.path();
    let target = node.addr.trim_start_matches("http://");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: transitd\n    metrics_path: /v1/sys/metrics\n\
         \x20   params:\n      format: ['prometheus']\n\
         \x20   authorization:\n      credentials: '{scraper}'\n\
         \x20   static_configs:\n      - targets: ['{target}']\n"
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let _prometheus = Prometheus(child);
    let prometheus = Client::new(format!("http://127.0.0.1:{port}"), None);

    const N: usize = 5;
    encrypt(&node, &root, N);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        last = query(&prometheus, ENCRYPTS);
        if last == Some(N as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert_eq!(last, Some(N as f64), "prometheus log:\n{log}");
    // The scrape itself is healthy (`up` is 1).
    assert_eq!(query(&prometheus, "up{job=\"transitd\"}"), Some(1.0));
}
