//! Tests of the checker: logs written by a real device, then edited,
//! cut, reordered, extended or rewritten under another key the ways an
//! attacker could, each caught (or, where the scheme cannot catch it, shown
//! to pass) with the line and kind expected.

use std::fs::{self, File};
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

use super::*;
use crate::audit::chain::{self, Fields};
use crate::audit::device::sidecar_path;
use crate::audit::device::tests::{file_config, record};
use crate::audit::{FileDevice, generate_signing_key};

/// A closed log of `entries` entries with a checkpoint every `interval`.
pub(crate) async fn make_log(
    entries: usize,
    interval: u64,
) -> (tempfile::TempDir, PathBuf, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key().unwrap();
    let dev = FileDevice::open(file_config(&path, &key, interval)).unwrap();
    for i in 0..entries {
        dev.log(&record(i)).await.unwrap();
    }
    dev.close().unwrap();
    let public_key = dev.public_key().to_vec();
    (dir, path, key, public_key)
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

/// Index of the line holding entry `seq`.
fn index_of(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            let f = Fields::parse(l.as_bytes()).unwrap();
            !f.is_checkpoint() && !f.is_header() && f.seq == Some(seq)
        })
        .unwrap()
}

fn tamper(report: VerifyReport) -> Tampering {
    match report {
        VerifyReport::Tampered(t) => t,
        other => panic!("expected tampering, got {other}"),
    }
}

#[tokio::test]
async fn good_log_verifies() {
    let (_dir, path, _key, pk) = make_log(50, 10).await;
    let report = verify_file(&path, Some(&pk));
    let VerifyReport::Ok(v) = &report else {
        panic!("{report}");
    };
    assert_eq!(v.last_seq, 50);
    // After the header, at 10, 20, 30, 40, 50 (the final one is not repeated).
    assert_eq!(v.checkpoints, 6);
    assert_eq!(v.lines, 1 + 50 + 6);
    assert_eq!(v.sidecar_seq, Some(50));
    assert!(
        report
            .to_string()
            .starts_with("OK: 57 lines, last seq 50, 6 checkpoints"),
        "{report}"
    );
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test]
async fn edited_line_is_caught() {
    let (_dir, path, _key, _pk) = make_log(30, 100).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 16);
    lines[i] = lines[i].replacen("req-15", "req-99", 1);
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    assert_eq!(
        (t.line, t.kind),
        (Some(i as u64 + 1), TamperKind::Edited),
        "{}",
        t.message
    );
    assert!(
        t.message.contains("chain broken at seq 16"),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn edit_with_recomputed_chain_is_caught_by_next_checkpoint() {
    let (_dir, path, _key, _pk) = make_log(30, 10).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 12);
    lines[i] = lines[i].replacen("req-11", "req-77", 1);
    // Recompute the chain from there on, as someone without the key can.
    let mut prev = chain::split(lines[i - 1].as_bytes()).unwrap().1;
    for line in lines.iter_mut().skip(i) {
        let f = Fields::parse(line.as_bytes()).unwrap();
        if f.is_checkpoint() {
            continue;
        }
        let (body, _) = chain::split(line.as_bytes()).unwrap();
        prev = chain::link(&prev, &body);
        *line = String::from_utf8(chain::seal(&body, &prev))
            .unwrap()
            .trim_end()
            .to_owned();
    }
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    // The checkpoint after seq 20.
    assert_eq!(
        t.line,
        Some(index_of(&lines, 20) as u64 + 2),
        "{}",
        t.message
    );
    assert_eq!(t.kind, TamperKind::Edited, "{}", t.message);
}

#[tokio::test]
async fn deleted_line_is_caught() {
    let (_dir, path, _key, _pk) = make_log(30, 100).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 16);
    lines.remove(i);
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    assert_eq!(
        (t.line, t.kind),
        (Some(i as u64 + 1), TamperKind::Removed),
        "{}",
        t.message
    );
    assert!(t.message.contains("seq 17 follows seq 15"), "{}", t.message);
}

#[tokio::test]
async fn swapped_lines_are_caught() {
    let (_dir, path, _key, _pk) = make_log(30, 100).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 16);
    lines.swap(i, i + 1);
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    assert_eq!(
        (t.line, t.kind),
        (Some(i as u64 + 1), TamperKind::Reordered),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn inserted_copy_is_caught() {
    let (_dir, path, _key, _pk) = make_log(30, 100).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 9);
    let copy = lines[i].clone();
    lines.insert(index_of(&lines, 20) + 1, copy);
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    assert_eq!(t.kind, TamperKind::Inserted, "{}", t.message);
    assert!(
        t.message.contains(&format!("exact copy of line {}", i + 1)),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn truncation_is_caught_against_sidecar() {
    let (_dir, path, _key, pk) = make_log(40, 15).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[..lines.len() - 10]);
    let t = tamper(verify_file(&path, Some(&pk)));
    assert_eq!(t.kind, TamperKind::Truncated, "{}", t.message);
    assert!(
        t.message
            .contains("signed checkpoint sidecar covers seq 40"),
        "{}",
        t.message
    );
}

/// Rewrites the whole log under another key, as an attacker without the
/// device's key would have to; optionally re-signs the sidecar too.
fn rewrite_with_new_key(path: &Path, replace_sidecar: bool) -> Vec<u8> {
    let pkcs8 = generate_signing_key().unwrap();
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let new_pk = key.public_key().as_ref().to_vec();
    let mut prev = chain::GENESIS;
    let mut out = Vec::new();
    let mut last_cp = Vec::new();
    for line in read_lines(path) {
        let f = Fields::parse(line.as_bytes()).unwrap();
        if f.is_checkpoint() {
            let cp = chain::checkpoint_line(
                &key,
                f.seq.unwrap(),
                &prev,
                time::OffsetDateTime::now_utc(),
            );
            last_cp = cp.clone();
            out.push(String::from_utf8(cp).unwrap().trim_end().to_owned());
            continue;
        }
        let (body, _) = chain::split(line.as_bytes()).unwrap();
        let mut body = String::from_utf8(body).unwrap();
        if f.is_header() {
            let old = f.public_key.unwrap();
            body = body.replace(&old, &B64.encode(&new_pk));
        }
        prev = chain::link(&prev, body.as_bytes());
        out.push(
            String::from_utf8(chain::seal(body.as_bytes(), &prev))
                .unwrap()
                .trim_end()
                .to_owned(),
        );
    }
    write_lines(path, &out);
    if replace_sidecar {
        fs::write(sidecar_path(path), last_cp).unwrap();
    }
    new_pk
}

#[tokio::test]
async fn rewritten_chain_with_other_key_fails_old_sidecar_signature() {
    let (_dir, path, _key, _pk) = make_log(20, 5).await;
    rewrite_with_new_key(&path, false);
    let t = tamper(verify_file(&path, None));
    assert_eq!(
        (t.line, t.kind),
        (None, TamperKind::BadSignature),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn rewritten_chain_and_sidecar_caught_only_by_pinned_key() {
    let (_dir, path, _key, pk) = make_log(20, 5).await;
    let new_pk = rewrite_with_new_key(&path, true);
    // Self-consistent: undetectable without a pinned key.
    assert!(verify_file(&path, None).is_ok());
    assert!(verify_file(&path, Some(&new_pk)).is_ok());
    let t = tamper(verify_file(&path, Some(&pk)));
    assert_eq!(
        (t.line, t.kind),
        (Some(1), TamperKind::WrongPublicKey),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn forged_checkpoint_signature_is_caught() {
    let (_dir, path, _key, _pk) = make_log(20, 5).await;
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 10) + 1;
    let f = Fields::parse(lines[i].as_bytes()).unwrap();
    let sig = f.signature.unwrap();
    let mut raw = B64.decode(&sig).unwrap();
    raw[0] ^= 1;
    lines[i] = lines[i].replace(&sig, &B64.encode(raw));
    write_lines(&path, &lines);
    let t = tamper(verify_file(&path, None));
    assert_eq!(
        (t.line, t.kind),
        (Some(i as u64 + 1), TamperKind::BadSignature),
        "{}",
        t.message
    );
}

#[tokio::test]
async fn stdout_style_log_without_sidecar_verifies_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stdout.capture");
    let pkcs8 = generate_signing_key().unwrap();
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let dev = FileDevice::with_sink(
        "stdout".to_owned(),
        Box::new(crate::audit::device::WriterSink(
            File::create(&path).unwrap(),
        )),
        key,
        crate::audit::format::SaltKey::new(b"salt"),
        crate::audit::FormatOptions::default(),
        4,
    )
    .unwrap();
    for i in 0..10 {
        dev.log(&record(i)).await.unwrap();
    }
    dev.close().unwrap();
    assert!(!sidecar_path(&path).exists());
    let report = verify_file(&path, Some(dev.public_key()));
    let VerifyReport::Ok(v) = &report else {
        panic!("{report}");
    };
    assert_eq!((v.last_seq, v.sidecar_seq), (10, None));
    assert!(
        report.to_string().contains("no checkpoint sidecar"),
        "{report}"
    );
    // The chain is still checked.
    let mut lines = read_lines(&path);
    let i = index_of(&lines, 5);
    lines.remove(i);
    write_lines(&path, &lines);
    assert_eq!(tamper(verify_file(&path, None)).kind, TamperKind::Removed);
}

#[tokio::test]
async fn missing_header_and_unreadable_file() {
    let (_dir, path, _key, _pk) = make_log(5, 100).await;
    let lines = read_lines(&path);
    write_lines(&path, &lines[1..]);
    assert_eq!(
        tamper(verify_file(&path, None)).kind,
        TamperKind::NotAuditLog
    );
    let report = verify_file(&path.with_extension("missing"), None);
    assert!(matches!(report, VerifyReport::Error(_)));
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn deeply_nested_data_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key().unwrap();
    let dev = FileDevice::open(file_config(&path, &key, 100)).unwrap();
    let mut rec = record(0);
    let mut data = serde_json::json!("leaf");
    for _ in 0..300 {
        data = serde_json::json!({ "k": [data] });
    }
    rec.request.data = data;
    dev.log(&rec).await.unwrap();
    dev.log(&record(1)).await.unwrap();
    dev.close().unwrap();
    assert!(verify_file(&path, None).is_ok());
    // And the device resumes past it.
    drop(dev);
    let dev = FileDevice::open(file_config(&path, &key, 100)).unwrap();
    dev.log(&rec).await.unwrap();
    dev.close().unwrap();
    assert!(verify_file(&path, None).is_ok());
}

/// Drops the entries `from..=to` of a log, renumbers and rechains the rest
/// and drops every checkpoint line after `from - 1`: what anyone who can
/// write the file can do to unsigned entries.
fn drop_and_rechain(lines: &[String], from: u64, to: u64) -> Vec<String> {
    let removed = to - from + 1;
    let mut out = Vec::new();
    let mut prev = None;
    for line in lines {
        let f = Fields::parse(line.as_bytes()).unwrap();
        let seq = f.seq.unwrap();
        if f.is_checkpoint() {
            if seq < from {
                out.push(line.clone());
            }
            continue;
        }
        if f.is_header() || seq < from {
            prev = Some(chain::split(line.as_bytes()).unwrap().1);
            out.push(line.clone());
            continue;
        }
        if seq <= to {
            continue;
        }
        let (body, _) = chain::split(line.as_bytes()).unwrap();
        let body = String::from_utf8(body).unwrap().replace(
            &format!("\"seq\":{seq}}}"),
            &format!("\"seq\":{}}}", seq - removed),
        );
        let next = chain::link(&prev.unwrap(), body.as_bytes());
        prev = Some(next);
        out.push(
            String::from_utf8(chain::seal(body.as_bytes(), &next))
                .unwrap()
                .trim_end()
                .to_owned(),
        );
    }
    out
}

/// Polls (a bounded wait for an event) until the sidecar names `seq`.
fn wait_for_sidecar(path: &Path, seq: u64) -> Option<Checkpoint> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let cp = fs::read(sidecar_path(path))
            .ok()
            .and_then(|b| Checkpoint::parse(&b));
        if cp.as_ref().is_some_and(|cp| cp.seq == seq) {
            return cp;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

/// The crash case of the review: entries written, the server dies without a
/// clean stop, and someone drops entries from the end, renumbers and
/// rechains. The writer signed a checkpoint within a second of the last
/// entry, so the sidecar (and, rolled back too, the server's copy) catches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_tail_with_recomputed_chain_is_caught_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key().unwrap();
    let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
    for i in 0..10 {
        dev.log(&record(i)).await.unwrap();
    }
    let signed = wait_for_sidecar(&path, 10).expect("the idle entries were never signed");
    // The crash: what is on disk now, before any clean stop.
    let crash = dir.path().join("crash.log");
    fs::copy(&path, &crash).unwrap();
    fs::copy(sidecar_path(&path), sidecar_path(&crash)).unwrap();
    dev.close().unwrap();

    let lines = read_lines(&crash);
    let forged = drop_and_rechain(&lines, 4, 6);
    write_lines(&crash, &forged);
    let t = tamper(verify_file(&crash, None));
    assert_eq!(t.kind, TamperKind::Truncated, "{}", t.message);

    // The sidecar rolled back too (to the genuine seq 0 checkpoint line):
    // the file alone looks whole; the server's checkpoint does not agree.
    fs::write(sidecar_path(&crash), format!("{}\n", forged[1])).unwrap();
    assert!(verify_file(&crash, None).is_ok());
    let server = KnownCheckpoint {
        seq: signed.seq,
        chain: signed.chain,
    };
    let t = tamper(verify_files(
        std::slice::from_ref(&crash),
        &Expect {
            public_key: None,
            checkpoint: Some(server),
        },
    ));
    assert_eq!(t.kind, TamperKind::Truncated, "{}", t.message);
    assert!(
        t.message.contains("server's checkpoint is at seq 10"),
        "{}",
        t.message
    );
}

/// Entries after the last signed point are reported as unsigned (a copy
/// taken mid-second, or a crash), not silently counted as intact.
#[tokio::test]
async fn unsigned_trailing_entries_are_reported() {
    let (_dir, path, _key, pk) = make_log(10, 4).await;
    let mut lines = read_lines(&path);
    // Drop the final checkpoint (seq 10); the sidecar goes back to seq 8.
    lines.pop();
    let at_8 = lines[index_of(&lines, 8) + 1].clone();
    write_lines(&path, &lines);
    fs::write(sidecar_path(&path), format!("{at_8}\n")).unwrap();
    let report = verify_file(&path, Some(&pk));
    assert_eq!(report.unsigned_entries(), Some(2), "{report}");
    assert!(
        report
            .to_string()
            .contains("UNSIGNED: the last 2 entries (seq 9..10)"),
        "{report}"
    );
    assert_eq!(report.exit_code(), 0);
    // A server checkpoint that covers them signs them.
    let (_, chain_10) = chain::split(lines.last().unwrap().as_bytes()).unwrap();
    let covered = verify_files(
        std::slice::from_ref(&path),
        &Expect {
            public_key: Some(&pk),
            checkpoint: Some(KnownCheckpoint {
                seq: 10,
                chain: chain_10,
            }),
        },
    );
    assert_eq!(covered.unsigned_entries(), Some(0), "{covered}");
}

/// The server's checkpoint: reached and equal passes; beyond the end
/// (rolled back) or with another chain fails.
#[tokio::test]
async fn server_checkpoint_must_be_reached_and_equal() {
    let (_dir, path, _key, _pk) = make_log(12, 5).await;
    let lines = read_lines(&path);
    let (_, chain_7) = chain::split(lines[index_of(&lines, 7)].as_bytes()).unwrap();
    let check = |seq, chain| {
        verify_files(
            std::slice::from_ref(&path),
            &Expect {
                public_key: None,
                checkpoint: Some(KnownCheckpoint { seq, chain }),
            },
        )
    };
    assert!(matches!(check(7, chain_7), VerifyReport::Ok(v) if v.server_checkpoint == Some(7)));
    assert_eq!(
        tamper(check(7, [1; 32])).kind,
        TamperKind::CheckpointMismatch
    );
    assert_eq!(tamper(check(13, chain_7)).kind, TamperKind::Truncated);
    assert_eq!(
        KnownCheckpoint::parse(&format!("7:{}", hex::encode(chain_7))),
        Some(KnownCheckpoint {
            seq: 7,
            chain: chain_7
        })
    );
    assert_eq!(KnownCheckpoint::parse("7"), None);
}

/// Three rotated files verify as one chain; with the middle one left out
/// the gap is named.
#[tokio::test]
async fn missing_middle_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let key = generate_signing_key().unwrap();
    let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
    let mut files = Vec::new();
    for round in 0..3 {
        for i in 0..3 {
            dev.log(&record(round * 3 + i)).await.unwrap();
        }
        if round < 2 {
            let rotated = dir.path().join(format!("audit.log.{round}"));
            fs::rename(&path, &rotated).unwrap();
            dev.reopen().await.unwrap();
            files.push(rotated);
        }
    }
    dev.close().unwrap();
    files.push(path);
    let all = verify_files(&files, &Expect::default());
    assert!(
        matches!(&all, VerifyReport::Ok(v) if v.files == 3 && v.last_seq == 9),
        "{all}"
    );
    let t = tamper(verify_files(
        &[files[0].clone(), files[2].clone()],
        &Expect::default(),
    ));
    assert_eq!(t.kind, TamperKind::MissingFile, "{}", t.message);
    assert!(t.message.contains("seq 4..6 is missing"), "{}", t.message);
    assert_eq!(
        t.file.as_deref(),
        Some(files[2].display().to_string().as_str())
    );
}
