//! `transitd rewrap` against a real transitd and a real OpenBao: every
//! shape (lines, CSV, JSON Lines) comes back in its shape with every
//! ciphertext rewrapped; an interrupted run resumes without writing a record
//! twice; refused items are reported and kept; a refused request stops.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use transitd_test_support::{Client, DevServer, ROOT_TOKEN, b64};

const BIN: &str = env!("CARGO_BIN_EXE_transitd");

fn transitd() -> DevServer {
    DevServer::start("transitd", Path::new(BIN), &[])
}

fn rewrap(server: &DevServer, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("rewrap")
        .args(args)
        .env("VAULT_ADDR", server.client().addr())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .output()
        .expect("run transitd rewrap")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run was refused before it began (exit 1), saying `why`.
fn refused(out: &Output, why: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(stderr(out).contains(why), "{}", stderr(out));
}

/// `batch_input` items through `path`, 200 a request (OpenBao refuses more
/// than 1,000 strings): each result's `field`, in order.
fn batch(c: &Client, path: &str, items: Vec<Value>, field: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in items.chunks(200) {
        let reply = c.write(path, json!({ "batch_input": chunk })).unwrap().ok();
        out.extend(
            reply.data()["batch_results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[field].as_str().unwrap_or("").to_owned()),
        );
    }
    out
}

/// One item per value, `{name: value}` plus `context` when given.
fn items(name: &str, values: &[impl AsRef<str>], context: Option<&str>) -> Vec<Value> {
    values
        .iter()
        .map(|v| match context {
            Some(ctx) => json!({ name: v.as_ref(), "context": ctx }),
            None => json!({ name: v.as_ref() }),
        })
        .collect()
}

fn encrypt(c: &Client, key: &str, plaintexts: &[String], context: Option<&str>) -> Vec<String> {
    let path = format!("transit/encrypt/{key}");
    batch(
        c,
        &path,
        items("plaintext", plaintexts, context),
        "ciphertext",
    )
}

fn decrypt(c: &Client, key: &str, cts: &[&str], context: Option<&str>) -> Vec<String> {
    let path = format!("transit/decrypt/{key}");
    batch(c, &path, items("ciphertext", cts, context), "plaintext")
}

fn plaintexts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| b64(format!("secret {i}").as_bytes()))
        .collect()
}

fn setup(server: &DevServer, key: &str, body: Value) {
    server
        .client()
        .write(&format!("transit/keys/{key}"), body)
        .unwrap()
        .expect(200);
}

fn rotate(server: &DevServer, key: &str) {
    let r = server
        .client()
        .write(&format!("transit/keys/{key}/rotate"), json!({}))
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Write `text` to `dir/in.<ext>`, rewrap it into `dir/out.<ext>` with
/// `flags`, and expect success: the output's path and the summary.
fn rewrap_ok(
    server: &DevServer,
    dir: &Path,
    ext: &str,
    text: &str,
    flags: &[&str],
) -> (std::path::PathBuf, String) {
    let (input, output) = (
        dir.join(format!("in.{ext}")),
        dir.join(format!("out.{ext}")),
    );
    std::fs::write(&input, text).unwrap();
    let mut args = flags.to_vec();
    args.extend([input.to_str().unwrap(), output.to_str().unwrap()]);
    let out = rewrap(server, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    (output, stderr(&out))
}

/// Lines (with a blank line kept), CSV (a derived key's context column, a
/// quoted field with a comma and a newline) and JSON Lines (field order and
/// other values kept), against `server`.
fn every_shape(server: &DevServer) {
    let dir = tempfile::tempdir().unwrap();
    let c = server.client();
    setup(server, "k", json!({}));
    setup(server, "d", json!({ "derived": true }));
    let plain = plaintexts(530);
    let cts = encrypt(c, "k", &plain, None);
    let ctx = b64(b"tenant-7");
    let derived = encrypt(c, "d", &plain[..40], Some(&ctx));
    rotate(server, "k");
    rotate(server, "d");

    // Lines.
    let mut text: String = cts.iter().map(|ct| format!("{ct}\n")).collect();
    text.insert(0, '\n');
    let (output, summary) = rewrap_ok(
        server,
        dir.path(),
        "txt",
        &text,
        &["-key=k", "-batch=100", "-concurrency=3"],
    );
    assert!(summary.contains("530 rewrapped, 0 kept"), "{summary}");
    let written = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = written.split('\n').collect();
    assert_eq!(
        lines.len(),
        532,
        "a blank line, 530 ciphertexts, the final newline"
    );
    assert_eq!(lines[0], "");
    assert!(lines[1..531].iter().all(|l| l.starts_with("vault:v2:")));
    assert_eq!(decrypt(c, "k", &lines[1..531], None), plain);

    // CSV with a context column.
    let mut csv_text = String::from("id,ciphertext,context,note\n");
    for (i, ct) in derived.iter().enumerate() {
        csv_text.push_str(&format!("{i},{ct},{ctx},\"a, b\nc {i}\"\n"));
    }
    let (output, _) = rewrap_ok(
        server,
        dir.path(),
        "csv",
        &csv_text,
        &["-key=d", "-context-field=context", "-batch=7"],
    );
    let mut rows = csv::Reader::from_path(&output).unwrap();
    assert_eq!(
        rows.headers().unwrap(),
        vec!["id", "ciphertext", "context", "note"]
    );
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 40);
    assert_eq!(&rows[3][3], "a, b\nc 3");
    let new: Vec<&str> = rows.iter().map(|r| r.get(1).unwrap()).collect();
    assert!(new.iter().all(|ct| ct.starts_with("vault:v2:")));
    assert_eq!(decrypt(c, "d", &new, Some(&ctx)), plain[..40]);

    // JSON Lines, the ciphertext under another name.
    let jsonl: String = cts[..30]
        .iter()
        .enumerate()
        .map(|(i, ct)| format!("{{\"zeta\":{i},\"ct\":\"{ct}\",\"alpha\":[1, 2]}}\n"))
        .collect();
    let (output, _) = rewrap_ok(
        server,
        dir.path(),
        "jsonl",
        &jsonl,
        &["-key=k", "-field=ct"],
    );
    let written = std::fs::read_to_string(&output).unwrap();
    let first = written.lines().next().unwrap();
    assert!(
        first.starts_with("{\"zeta\":0,\"ct\":\"vault:v2:"),
        "{first}"
    );
    assert!(first.ends_with("\",\"alpha\":[1, 2]}"), "{first}");
    let new: Vec<String> = written
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["ct"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let new: Vec<&str> = new.iter().map(String::as_str).collect();
    assert_eq!(decrypt(c, "k", &new, None), plain[..30]);
}

#[test]
fn every_shape_against_transitd() {
    every_shape(&transitd());
}

#[test]
fn every_shape_against_openbao() {
    every_shape(&DevServer::openbao());
}

/// An interrupted run (its last record torn) resumes after the records
/// already written: they are kept byte for byte, the rest is appended.
#[test]
fn an_interrupted_run_resumes_without_writing_a_record_twice() {
    let server = transitd();
    let c = server.client();
    let dir = tempfile::tempdir().unwrap();
    setup(&server, "k", json!({}));
    let plain = plaintexts(300);
    let cts = encrypt(c, "k", &plain, None);
    rotate(&server, "k");
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        cts.iter().map(|ct| format!("{ct}\n")).collect::<String>(),
    )
    .unwrap();
    let first = dir.path().join("first.txt");
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), first.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let done = std::fs::read_to_string(&first).unwrap();
    // As a crash would leave it: the run's record, 120 records and part of
    // the next.
    let cut = done.match_indices('\n').nth(119).unwrap().0 + 1;
    let output = dir.path().join("out.txt");
    std::fs::write(&output, &done[..cut + 20]).unwrap();
    std::fs::copy(
        dir.path().join("first.txt.rewrap"),
        dir.path().join("out.txt.rewrap"),
    )
    .unwrap();
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), output.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming: 120 of 300"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("180 rewrapped"), "{}", stderr(&out));
    let resumed = std::fs::read_to_string(&output).unwrap();
    assert_eq!(
        &resumed[..cut],
        &done[..cut],
        "the records already written are kept"
    );
    let lines: Vec<&str> = resumed.lines().collect();
    assert_eq!(lines.len(), 300);
    assert_eq!(decrypt(c, "k", &lines, None), plain);
    // A finished output: a rerun has nothing to do.
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), output.to_str().unwrap()],
    );
    assert!(
        out.status.success() && stderr(&out).contains("0 records written"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), resumed);
}

/// An output the command did not write for this input (another file's
/// data, or the input itself) is never taken for a run to resume.
#[test]
fn an_output_it_did_not_write_is_refused() {
    let server = transitd();
    let c = server.client();
    let dir = tempfile::tempdir().unwrap();
    setup(&server, "k", json!({}));
    let cts = encrypt(c, "k", &plaintexts(3), None);
    rotate(&server, "k");
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        cts.iter().map(|ct| format!("{ct}\n")).collect::<String>(),
    )
    .unwrap();
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), input.to_str().unwrap()],
    );
    refused(&out, "another file than the input");
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "garbage-from-another-run\n").unwrap();
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), other.to_str().unwrap()],
    );
    refused(&out, "already holds data");
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "garbage-from-another-run\n"
    );
    // Another key into an output this command began: refused too.
    let output = dir.path().join("out.txt");
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), output.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = rewrap(
        &server,
        &["-key=j", input.to_str().unwrap(), output.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// Items the server refuses keep their ciphertext and are reported by
/// record number (exit 1); a request the server refuses stops the run (exit 2).
#[test]
fn refused_items_are_reported_and_a_refused_request_stops() {
    let server = transitd();
    let c = server.client();
    let dir = tempfile::tempdir().unwrap();
    setup(&server, "k", json!({}));
    let mut cts = encrypt(c, "k", &plaintexts(10), None);
    cts[3] = "vault:v1:AAAA".to_owned();
    cts[7] = "not a ciphertext".to_owned();
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        cts.iter().map(|ct| format!("{ct}\n")).collect::<String>(),
    )
    .unwrap();
    let output = dir.path().join("out.txt");
    let out = rewrap(
        &server,
        &["-key=k", input.to_str().unwrap(), output.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let errors = std::fs::read_to_string(dir.path().join("out.txt.errors")).unwrap();
    let numbers: Vec<&str> = errors
        .lines()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(numbers, ["record 4", "record 8"], "{errors}");
    let lines: Vec<String> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(
        (lines[3].as_str(), lines[7].as_str()),
        ("vault:v1:AAAA", "not a ciphertext")
    );

    let other = dir.path().join("other.txt");
    let out = rewrap(
        &server,
        &[
            "-key=missing",
            input.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stopped: POST transit/rewrap/missing: HTTP 400"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "");
}

/// A stop with many batches still to send ends the run (no thread left
/// waiting for a batch nobody takes), within a bounded wait.
#[test]
fn a_stop_with_batches_left_ends_the_run() {
    let server = transitd();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let lines: String = (0..2000).map(|i| format!("vault:v1:line{i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let output = dir.path().join("out.txt");
    let mut child = Command::new(BIN)
        .args(["rewrap", "-key=missing", "-batch=5", "-concurrency=2"])
        .args([&input, &output])
        .env("VAULT_ADDR", server.client().addr())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("transitd rewrap did not stop");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2));
}
