//! An audit device that cannot write (a full disk): data operations fail
//! closed, the operator can still seal and remove the broken device when
//! another device records that, and the failure is reported in
//! `sys/health`, `sys/audit` and once in the server log.
//!
//! The broken device is a `stdout` device whose pipe the test closes: every
//! write then fails (EPIPE), and a stream cannot take a failed write back,
//! so it stays failing, as a device on a full disk does until space is
//! freed. (A file device refuses `/dev/full`, which is no regular file; the
//! unit tests of the broker and the audit hook inject ENOSPC-like failures
//! into file-like sinks.)

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use crate::node::{BIN, Node, Site};

/// An unsealed node whose stdout is a pipe the test holds, with a
/// `stdout` audit device at `out/` writing into it, and its server log in
/// a file.
struct Piped {
    site: Site,
    node: Node,
    stdout: BufReader<ChildStdout>,
    server_log: PathBuf,
    root: String,
}

impl Piped {
    fn start() -> Self {
        let site = Site::new("disable_mlock = true");
        let first = site.start();
        let (keys, root) = first.init(1, 1);
        first.kill9();
        let server_log = site.dir.path().join("piped-server.log");
        let mut child = Command::new(BIN)
            .args(["server", &format!("-config={}", site.config().display())])
            .current_dir(site.dir.path())
            .stdout(Stdio::piped())
            .stderr(File::create(&server_log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("listening"), "{line}");
        let node = Node::attach(child, &site.addr());
        node.unseal(&keys);
        let (status, body) = node.call(
            "POST",
            "sys/audit/out",
            Some(&root),
            Some(json!({ "type": "stdout" })),
        );
        assert_eq!(status, 204, "{body}");
        Self {
            site,
            node,
            stdout,
            server_log,
            root,
        }
    }

    /// Closes the pipe: every later write of `out/` fails.
    fn break_stdout(self) -> (Site, Node, PathBuf, String) {
        drop(self.stdout);
        (self.site, self.node, self.server_log, self.root)
    }
}

fn failing_count(node: &Node) -> Value {
    let (status, health) = node.call("GET", "sys/health", None, None);
    assert_eq!(status, 200, "{health}");
    health
        .get("audit_devices_failing")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Two devices, one broken: requests succeed (the other records them),
/// the broken one is reported, and root removes it: a success, on record
/// in the working device. The server log says once that it fails, however
/// many requests it failed.
#[test]
fn a_broken_device_is_reported_and_removed_while_another_records() {
    let piped = Piped::start();
    let (node, r) = (&piped.node, Some(piped.root.as_str()));
    let audit_log = piped.site.dir.path().join("audit.log");
    let (status, body) = node.call(
        "POST",
        "sys/audit/file",
        r,
        Some(
            json!({ "type": "file", "options": { "file_path": audit_log.display().to_string() } }),
        ),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(failing_count(node), Value::Null);

    let (_site, node, server_log, root) = piped.break_stdout();
    let (node, r) = (&node, Some(root.as_str()));
    for i in 0..3 {
        let (status, body) = node.call("POST", &format!("transit/keys/k{i}"), r, Some(json!({})));
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(failing_count(node), json!(1));
    let (status, listed) = node.call("GET", "sys/audit", r, None);
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed["data"]["out/"]["failing"]["error"].is_string(),
        "{listed}"
    );
    assert!(listed["data"]["file/"].get("failing").is_none(), "{listed}");

    let (status, body) = node.call("DELETE", "sys/audit/out", r, None);
    assert_eq!(status, 200, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("was failing"),
        "{body}"
    );
    assert_eq!(failing_count(node), Value::Null);
    let recorded = std::fs::read_to_string(&audit_log).unwrap();
    let removal = recorded
        .lines()
        .filter(|l| {
            l.contains("\"path\":\"sys/audit/out\"") && l.contains("\"operation\":\"delete\"")
        })
        .count();
    assert_eq!(removal, 2, "the removal's request and response entries");
    let server = std::fs::read_to_string(&server_log).unwrap();
    assert_eq!(
        server.matches("audit device failing").count(),
        1,
        "{server}"
    );
}

/// The only device broken: every data operation fails closed, and so does
/// removing that device (it would go unrecorded); sealing is served, with
/// a warning that it is not on record.
#[test]
fn with_no_device_able_to_record_only_sealing_is_served() {
    let (_site, node, server_log, root) = Piped::start().break_stdout();
    let (node, r) = (&node, Some(root.as_str()));

    let (status, body) = node.call("POST", "transit/keys/k", r, Some(json!({})));
    assert_eq!(status, 500, "{body}");
    let (status, body) = node.call("DELETE", "sys/audit/out", r, None);
    assert_eq!(status, 500, "{body}");
    assert_eq!(failing_count(node), json!(1));

    let (status, body) = node.call("POST", "sys/seal", r, None);
    assert_eq!(status, 200, "{body}");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("no audit device could record"),
        "{warning}"
    );
    let (_, seal) = node.call("GET", "sys/seal-status", None, None);
    assert_eq!(seal["sealed"], json!(true), "{seal}");
    let server = std::fs::read_to_string(&server_log).unwrap();
    assert!(server.contains("served all the same"), "{server}");
}
