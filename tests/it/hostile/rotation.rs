//! Audit files rotated, renamed or deleted under a running server: entries
//! are never acknowledged into a file nobody can find, and the files verify
//! as one chain.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::node::{BIN, Node, Site};

/// A started, unsealed node with a file audit device at `audit.log`.
pub(super) fn audited_node() -> (Site, Node, Vec<String>, String, PathBuf) {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let log = site.dir.path().join("audit.log");
    let (status, body) = node.call(
        "POST",
        "sys/audit/file",
        Some(&root),
        Some(json!({ "type": "file", "options": { "file_path": log.display().to_string() } })),
    );
    assert_eq!(status, 204, "{body}");
    (site, node, keys, root, log)
}

/// Some audited requests.
pub(super) fn requests(node: &Node, root: &str, n: usize) {
    for _ in 0..n {
        let (status, body) = node.call("GET", "auth/token/lookup-self", Some(root), None);
        assert_eq!(status, 200, "{body}");
    }
}

/// `transitd audit verify ARGS...`: exit status and output.
pub(super) fn verify(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("audit")
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Polls (a bounded wait for an event) until `what` holds.
pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// logrotate's default (`create`): rename, create an empty file, SIGHUP.
/// The server follows at once; old and new verify as one chain.
#[test]
fn sighup_rotation_yields_files_that_verify_as_one_chain() {
    let (_site, node, _keys, root, log) = audited_node();
    requests(&node, &root, 5);
    let rotated = log.with_extension("log.1");
    fs::rename(&log, &rotated).unwrap();
    fs::write(&log, b"").unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &node.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the new file's header", || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("\"prev_chain\":\""))
    });
    requests(&node, &root, 3);
    let server_log = node.log_text();
    node.stop();
    assert!(
        server_log.contains("the chain continues in the file now at its path"),
        "{server_log}"
    );
    let (code, out) = verify(&[&path_arg(&rotated), &path_arg(&log)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 files in one chain"), "{out}");
    // The new file alone says what it does not hold.
    let (code, out) = verify(&[&path_arg(&log)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("continues an earlier one"), "{out}");
}

/// The audit file deleted while the server runs: the next request is
/// recorded in a new file at the path (not in the unlinked one), which
/// continues the chain, and the server log says so.
#[test]
fn deleted_audit_file_is_detected_and_replaced() {
    let (_site, node, _keys, root, log) = audited_node();
    requests(&node, &root, 3);
    fs::remove_file(&log).unwrap();
    requests(&node, &root, 1);
    let text = fs::read_to_string(&log).expect("no audit file at the path after the deletion");
    assert!(text.contains("\"prev_chain\":\""), "{text}");
    assert!(text.contains("auth/token/lookup-self"), "{text}");
    let server_log = node.log_text();
    node.stop();
    assert!(
        server_log.contains("audit file renamed, deleted, replaced or cut short"),
        "{server_log}"
    );
    let (code, out) = verify(&[&path_arg(&log)]);
    assert_eq!(code, 0, "{out}");
}
