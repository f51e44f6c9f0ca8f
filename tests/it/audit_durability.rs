//! The file audit device's `durability` option on real server processes:
//! enabling it and refusing bad values, background syncs within
//! `sync_interval` (seen in the metrics), and `transitd audit verify` after
//! a kill -9 under load and after a simulated power loss.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::{BIN, Node, Site};

const TELEMETRY: &str =
    "telemetry {\n  prometheus_retention_time = \"60s\"\n  disable_hostname = true\n}\n";

fn unsealed(site: &Site) -> (Node, Vec<String>, String) {
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    (node, keys, root)
}

fn enable(node: &Node, root: &str, path: &str, options: Value) -> (u16, Value) {
    node.call(
        "POST",
        &format!("sys/audit/{path}"),
        Some(root),
        Some(json!({ "type": "file", "options": options })),
    )
}

/// `transitd audit verify FILE`: exit code and output.
fn verify(file: &Path) -> (i32, String) {
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

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn metrics_text(node: &Node, root: &str) -> String {
    let reply = node
        .client()
        .as_token(Some(root))
        .read("sys/metrics?format=prometheus")
        .unwrap();
    match reply.body {
        Value::String(text) => text,
        other => panic!("{other}"),
    }
}

#[test]
fn durability_options_are_checked_at_enable() {
    let site = Site::new("disable_mlock = true");
    let (node, _, root) = unsealed(&site);
    let file = |name: &str| site.dir.path().join(name).display().to_string();
    for (options, message) in [
        (
            json!({ "file_path": file("a.log"), "durability": "sometimes" }),
            "durability: \\\"sometimes\\\" is not",
        ),
        (
            json!({ "file_path": file("b.log"), "sync_interval": "100ms" }),
            "sync_interval applies only with durability=background",
        ),
        (
            json!({ "file_path": file("c.log"), "durability": "fsync", "sync_interval": "10ms" }),
            "sync_interval applies only with durability=background",
        ),
        (
            json!({ "file_path": file("d.log"), "durability": "background", "sync_interval": "5s" }),
            "is not a duration from 1ms to 1s",
        ),
        (
            json!({ "file_path": file("e.log"), "durability": "background", "sync_interval": "0" }),
            "is not a duration from 1ms to 1s",
        ),
        (
            json!({ "file_path": "stdout", "durability": "background" }),
            "apply to a file, not to stdout",
        ),
    ] {
        let (status, body) = enable(&node, &root, "bad", options.clone());
        assert_eq!(status, 400, "{options}: {body}");
        assert!(body.to_string().contains(message), "{options}: {body}");
    }
    // Nothing was enabled, and no file was created.
    let (_, table) = node.call("GET", "sys/audit", Some(&root), None);
    assert!(table["bad/"].is_null(), "{table}");
    assert!(!Path::new(&file("d.log")).exists());

    let options = json!({
        "file_path": file("bg.log"),
        "durability": "background",
        "sync_interval": "20ms",
    });
    assert_eq!(enable(&node, &root, "bg", options.clone()).0, 204);
    let fsync = json!({ "file_path": file("fsync.log"), "durability": "fsync" });
    assert_eq!(enable(&node, &root, "fsync", fsync).0, 204);
    let (_, table) = node.call("GET", "sys/audit", Some(&root), None);
    assert_eq!(table["bg/"]["options"], options, "{table}");
    let (status, _) = node.call("POST", "transit/keys/k", Some(&root), None);
    assert_eq!(status, 200);
    node.stop();
    for log in ["bg.log", "fsync.log"] {
        let (code, out) = verify(&site.dir.path().join(log));
        assert_eq!(code, 0, "{log}: {out}");
    }
}

/// Background syncs come on their own (a checkpoint after every entry, so
/// no idle checkpoint batch writes later), each within `sync_interval` of
/// the write plus the sync's own time (and, on this shared machine, the
/// scheduler's: the bound is loose, the interval is 20 ms).
#[test]
fn background_syncs_follow_writes_within_the_interval() {
    let site = Site::new(&format!("disable_mlock = true\n{TELEMETRY}"));
    let (node, _, root) = unsealed(&site);
    let options = json!({
        "file_path": site.dir.path().join("audit.log").display().to_string(),
        "durability": "background",
        "sync_interval": "20ms",
        "checkpoint_interval": "1",
    });
    assert_eq!(enable(&node, &root, "file", options).0, 204);
    let count = "transitd_audit_sync_lag_seconds_count";
    let before = sample(&metrics_text(&node, &root), count).unwrap_or(0.0);
    for i in 0..20 {
        let (status, body) = node.call("POST", &format!("transit/keys/k{i}"), Some(&root), None);
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics_text(&node, &root);
        if sample(&text, count).unwrap_or(0.0) > before || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(sample(&text, count).unwrap_or(0.0) > before, "{text}");
    let max = sample(&text, "transitd_audit_sync_lag_seconds{quantile=\"1\"}").unwrap();
    assert!(max < 1.0, "a background sync came {max} s after its write");
    node.stop();
}

/// The line the sidecar names ends here in the file: the least a power
/// loss can leave (the sidecar only names synced lines).
fn end_of_sidecar_line(log: &Path) -> usize {
    let sidecar = std::fs::read(transitd::audit::sidecar_path(log)).unwrap();
    let bytes = std::fs::read(log).unwrap();
    let at = bytes
        .windows(sidecar.len())
        .position(|w| w == sidecar.as_slice())
        .expect("the sidecar's checkpoint line is in the file");
    at + sidecar.len()
}

fn response_entries(log: &Path, path: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "response" && v["request"]["path"] == path)
        .count()
}

/// kill -9 under load loses nothing acknowledged (the page cache outlives
/// the process), and the log verifies; then a power loss, simulated by
/// cutting the file back to the least that was synced: the log still
/// verifies (an honestly shorter log) and the server opens it again.
#[test]
fn kill9_and_power_loss_in_background_mode_leave_a_log_that_verifies() {
    let site = Site::new("disable_mlock = true");
    let (node, keys, root) = unsealed(&site);
    let log: PathBuf = site.dir.path().join("audit.log");
    let options = json!({
        "file_path": log.display().to_string(),
        "durability": "background",
        "sync_interval": "50ms",
        "checkpoint_interval": "25",
    });
    assert_eq!(enable(&node, &root, "file", options).0, 204);
    assert_eq!(
        node.call("POST", "transit/keys/load", Some(&root), None).0,
        200
    );
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({ "plaintext": "aGVsbG8=" });
                    match node.try_call("transit/encrypt/load", &root, body) {
                        Some((200, _)) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        Some((status, body)) => panic!("encrypt answered {status}: {body}"),
                        None => return,
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        let pid = node.pid().to_string();
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success());
        stop.store(true, Ordering::Relaxed);
    });
    node.kill9();
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked > 0);
    let logged = response_entries(&log, "transit/encrypt/load");
    assert!(
        logged >= acked,
        "{acked} encrypts answered, {logged} logged"
    );
    let (code, out) = verify(&log);
    assert_eq!(code, 0, "after kill -9: {out}");

    // Power loss: only what a sync covered is left, at least up to the
    // checkpoint the sidecar (and the sealed anchor) names.
    let keep = end_of_sidecar_line(&log);
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(keep as u64).unwrap();
    drop(file);
    let (code, out) = verify(&log);
    assert_eq!(code, 0, "after the power loss: {out}");
    let node = site.start();
    node.unseal(&keys);
    let (status, body) = node.call(
        "POST",
        "transit/encrypt/load",
        Some(&root),
        Some(json!({ "plaintext": "aGVsbG8=" })),
    );
    assert_eq!(status, 200, "the device did not open again: {body}");
    node.stop();
    let (code, out) = verify(&log);
    assert_eq!(code, 0, "after the restart: {out}");
}
