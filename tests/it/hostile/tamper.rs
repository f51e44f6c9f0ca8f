//! Tampering with the audit log of a real server: rollback of the file and
//! its sidecar together, and entries dropped from the end (chain recomputed)
//! after a crash.

use std::fs;

use serde_json::Value;
use transitd::audit::chain::{self, Fields};
use transitd::audit::sidecar_path;

use super::rotation::{audited_node, requests, verify, wait_until};

/// The `seq` of the last entry in the file and of its sidecar.
fn seqs(log: &std::path::Path) -> (u64, Option<u64>) {
    let last = fs::read_to_string(log)
        .unwrap()
        .lines()
        .rev()
        .filter_map(|l| Fields::parse(l.as_bytes()))
        .filter(|f| !f.is_checkpoint())
        .find_map(|f| f.seq)
        .unwrap();
    let sidecar = fs::read(sidecar_path(log))
        .ok()
        .and_then(|b| chain::Checkpoint::parse(&b))
        .map(|cp| cp.seq);
    (last, sidecar)
}

/// The log and its sidecar put back to an earlier (genuine, signed) state
/// while the server is down: the file alone looks whole, but the server's
/// sealed checkpoint does not agree. The device refuses to open at unseal,
/// loudly, and `verify -checkpoint` reports the rollback.
#[test]
fn rollback_with_its_sidecar_is_refused_at_restart_and_caught_by_verify() {
    let (site, node, keys, root, log) = audited_node();
    requests(&node, &root, 3);
    node.stop();
    let old = (
        fs::read(&log).unwrap(),
        fs::read(sidecar_path(&log)).unwrap(),
    );
    let node = site.start();
    node.unseal(&keys);
    requests(&node, &root, 4);
    let (written, _) = seqs(&log);
    // Within about a second the server's sealed checkpoint covers them.
    let mut body = Value::Null;
    wait_until("the server's checkpoint to cover the requests", || {
        let (status, reply) = node.call("GET", "sys/audit-checkpoint/file", Some(&root), None);
        assert_eq!(status, 200, "{reply}");
        body = reply;
        body["data"]["seq"].as_u64().is_some_and(|s| s >= written)
    });
    let checkpoint = body["data"]["checkpoint"].as_str().unwrap().to_owned();
    let seq = body["data"]["seq"].as_u64().unwrap();
    node.stop();
    let (_, seq_at_stop) = seqs(&log);

    fs::write(&log, &old.0).unwrap();
    fs::write(sidecar_path(&log), &old.1).unwrap();
    let (code, out) = verify(&[&log.display().to_string()]);
    assert_eq!(
        code, 0,
        "the rollback is invisible in the file alone: {out}"
    );

    let node = site.start();
    let (status, body) = node.call(
        "POST",
        "sys/unseal",
        None,
        Some(serde_json::json!({ "key": keys[0] })),
    );
    let sealed = body["sealed"] == Value::Bool(true) || status != 200;
    let server_log = node.log_text();
    node.kill9();
    assert!(sealed, "unsealed onto a rolled-back audit log: {body}");
    assert!(server_log.contains("rolled back"), "{server_log}");

    let (code, out) = verify(&[
        &format!("-checkpoint={checkpoint}"),
        &log.display().to_string(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("server's checkpoint"), "{out}");
    assert!(seq_at_stop.unwrap() >= seq);

    // The way out: move the file aside. The new file continues from the
    // sealed checkpoint, so the entries the rollback removed stay a
    // reported gap between the two files.
    let aside = log.with_extension("log.rolled-back");
    fs::rename(&log, &aside).unwrap();
    fs::remove_file(sidecar_path(&log)).unwrap();
    let node = site.start();
    node.unseal(&keys);
    requests(&node, &root, 1);
    node.stop();
    let (code, out) = verify(&[&aside.display().to_string(), &log.display().to_string()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is missing between them"), "{out}");
}

/// A crash (SIGKILL) after the last request, then the last entries dropped
/// and the chain recomputed, as anyone who can write the file can: the
/// writer had signed them within a second, so `verify` catches it.
#[test]
fn dropped_tail_after_a_crash_is_caught() {
    let (_site, node, _keys, root, log) = audited_node();
    requests(&node, &root, 6);
    let (last, _) = seqs(&log);
    wait_until("a signed checkpoint of the last entry", || {
        seqs(&log).1 == Some(last)
    });
    node.kill9();

    // Keep the header and entries before the last three; drop every
    // checkpoint line after them (they would not verify).
    let text = fs::read_to_string(&log).unwrap();
    let keep: Vec<&str> = text
        .lines()
        .filter(|l| {
            Fields::parse(l.as_bytes())
                .and_then(|f| f.seq)
                .is_some_and(|s| s + 3 <= last)
        })
        .collect();
    fs::write(&log, format!("{}\n", keep.join("\n"))).unwrap();
    let (code, out) = verify(&[&log.display().to_string()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("truncated"), "{out}");
}
