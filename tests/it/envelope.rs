//! `transitd envelope` against a real transitd and a real OpenBao: files
//! round-trip at every chunk boundary, through files and through pipes;
//! every kind of tampering is refused with no output left under the final
//! name; rewrap after a rotation changes only the header; the server's
//! refusals (old version, wrong key) come through; a multi-GiB stream
//! runs in bounded memory.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::json;
use transitd_test_support::{DevServer, ROOT_TOKEN};

const BIN: &str = env!("CARGO_BIN_EXE_transitd");
const CHUNK: usize = 4096;
/// magic, version, algorithm, chunk size, nonce prefix, `transit`, `files`
const AUTHENTICATED_LEN: usize = 8 + 1 + 1 + 4 + 7 + 1 + 7 + 1 + 5;

fn transitd() -> DevServer {
    DevServer::start("transitd", Path::new(BIN), &[])
}

fn envelope(server: &DevServer, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .arg("envelope")
        .args(args)
        .env("VAULT_ADDR", server.client().addr())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run transitd envelope");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.unwrap_or_default().to_vec();
    let feeder = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// Refused with exit code 1 and `why` on stderr.
fn refused(out: &Output, why: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    assert!(
        stderr(out).contains(why),
        "wanted {why:?} in: {}",
        stderr(out)
    );
}

fn write_key(server: &DevServer, path: &str, body: serde_json::Value) {
    let r = server.client().write(path, body).unwrap();
    assert!((200..300).contains(&r.status), "{path}: {:?}", r.body);
}

fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Encrypt `plain` (written to `dir/name.in`) into `dir/name.env`.
fn seal_file(server: &DevServer, dir: &Path, name: &str, plain: &[u8], flags: &[&str]) -> PathBuf {
    let (input, output) = (
        dir.join(format!("{name}.in")),
        dir.join(format!("{name}.env")),
    );
    std::fs::write(&input, plain).unwrap();
    let mut args = vec!["encrypt"];
    args.extend_from_slice(flags);
    args.extend([path_str(&input), path_str(&output)]);
    ok(envelope(server, &args, None));
    output
}

fn open_file(server: &DevServer, envelope_path: &Path, out: &Path) -> Output {
    envelope(
        server,
        &["decrypt", path_str(envelope_path), path_str(out)],
        None,
    )
}

/// Files hold only what the test put there: no temporary output left over.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn round_trips(server: &DevServer) {
    let dir = tempfile::tempdir().unwrap();
    write_key(server, "transit/keys/files", json!({}));
    let chunk = CHUNK.to_string();
    let small = ["-key=files", "-chunk-size", chunk.as_str()];
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * 1024 * 1024 + 5] {
        let plain = payload(len);
        let sealed = seal_file(server, dir.path(), &format!("p{len}"), &plain, &small);
        let back = dir.path().join(format!("p{len}.out"));
        ok(open_file(server, &sealed, &back));
        assert!(std::fs::read(&back).unwrap() == plain, "{len} bytes");
        let header = std::fs::read(&sealed).unwrap();
        assert!(header.windows(9).any(|w| w == b"vault:v1:"), "{len}");
    }
    // Several MiB with the default 1 MiB chunks, through stdin and stdout.
    let plain = payload(5 * 1024 * 1024 + 77);
    let sealed = ok(envelope(
        server,
        &["encrypt", "-key=files", "-", "-"],
        Some(&plain),
    ))
    .stdout;
    let back = ok(envelope(server, &["decrypt", "-", "-"], Some(&sealed))).stdout;
    assert!(back == plain);
    // Encrypting the same input twice gives different files (new data key
    // and nonce prefix each time).
    let again = ok(envelope(
        server,
        &["encrypt", "-key=files", "-", "-"],
        Some(&plain),
    ))
    .stdout;
    assert_ne!(sealed[..100], again[..100]);
}

#[test]
fn round_trips_at_every_boundary_against_transitd() {
    round_trips(&transitd());
}

#[test]
fn round_trips_at_every_boundary_against_openbao() {
    round_trips(&DevServer::openbao());
}

#[test]
fn every_tampering_is_refused_and_leaves_no_output() {
    let server = transitd();
    let dir = tempfile::tempdir().unwrap();
    write_key(&server, "transit/keys/files", json!({}));
    let chunk = CHUNK.to_string();
    let flags = ["-key=files", "-chunk-size", chunk.as_str()];
    let plain = payload(4 * CHUNK + 100);
    let sealed_path = seal_file(&server, dir.path(), "a", &plain, &flags);
    let sealed = std::fs::read(&sealed_path).unwrap();
    let other = std::fs::read(seal_file(&server, dir.path(), "b", &plain, &flags)).unwrap();
    let body = sealed.len() - (4 * (CHUNK + 16) + 116);
    let at = |i: usize| body + i * (CHUNK + 16);
    let spliced = |parts: &[&[u8]]| parts.concat();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "cut at a chunk boundary",
            sealed[..at(3)].to_vec(),
            "final chunk (2)",
        ),
        (
            "cut mid-chunk",
            sealed[..at(3) + 99].to_vec(),
            "final chunk (3)",
        ),
        ("header only", sealed[..body].to_vec(), "final chunk (0)"),
        (
            "cut in the header",
            sealed[..body - 3].to_vec(),
            "header is cut short",
        ),
        (
            "bytes appended",
            spliced(&[&sealed, b"extra"]),
            "final chunk (4)",
        ),
        (
            "last chunk repeated",
            spliced(&[&sealed, &sealed[at(4)..]]),
            "does not authenticate",
        ),
        (
            "chunks swapped",
            spliced(&[
                &sealed[..at(0)],
                &sealed[at(1)..at(2)],
                &sealed[at(0)..at(1)],
                &sealed[at(2)..],
            ]),
            "chunk 0 does not authenticate",
        ),
        (
            "a chunk duplicated",
            spliced(&[&sealed[..at(2)], &sealed[at(1)..at(2)], &sealed[at(3)..]]),
            "chunk 2 does not authenticate",
        ),
        (
            "a chunk dropped",
            spliced(&[&sealed[..at(1)], &sealed[at(2)..]]),
            "does not authenticate",
        ),
        (
            "a ciphertext bit flipped",
            {
                let mut t = sealed.clone();
                t[at(2) + 7] ^= 4;
                t
            },
            "chunk 2 does not authenticate",
        ),
        (
            "the chunk size changed",
            {
                let mut t = sealed.clone();
                t[12] ^= 0x20;
                t
            },
            "chunk 0 does not authenticate",
        ),
        (
            "the nonce prefix changed",
            {
                let mut t = sealed.clone();
                t[15] ^= 1;
                t
            },
            "chunk 0 does not authenticate",
        ),
        (
            "another envelope's wrapped key",
            spliced(&[
                &sealed[..AUTHENTICATED_LEN],
                &other[AUTHENTICATED_LEN..body],
                &sealed[body..],
            ]),
            "chunk 0 does not authenticate",
        ),
        (
            "the format version changed",
            {
                let mut t = sealed.clone();
                t[8] = 2;
                t
            },
            "format version 2",
        ),
    ];
    for (what, bytes, why) in cases {
        let input = dir.path().join("tampered.env");
        std::fs::write(&input, &bytes).unwrap();
        let before = files_in(dir.path());
        let out_path = dir.path().join("tampered.out");
        let out = open_file(&server, &input, &out_path);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(why),
            "{what}: wanted {why:?} in {}",
            stderr(&out)
        );
        assert_eq!(files_in(dir.path()), before, "{what}: output left behind");
        // Through a pipe: a nonzero exit, and only authenticated chunks out.
        let piped = envelope(&server, &["decrypt", "-", "-"], Some(&bytes));
        assert_eq!(piped.status.code(), Some(1), "{what} (piped)");
        assert!(
            plain.starts_with(&piped.stdout),
            "{what}: unauthenticated output"
        );
    }
    // The header names another existing key (same length): its decrypt of
    // the wrapped key fails at the server.
    write_key(&server, "transit/keys/fileZ", json!({}));
    let mut renamed = sealed.clone();
    renamed[AUTHENTICATED_LEN - 1] = b'Z';
    let input = dir.path().join("renamed.env");
    std::fs::write(&input, &renamed).unwrap();
    let out = open_file(&server, &input, &dir.path().join("renamed.out"));
    refused(&out, "transit/decrypt/fileZ");
    assert!(!dir.path().join("renamed.out").exists());
}

fn rewrap_after_rotation(server: &DevServer) {
    let dir = tempfile::tempdir().unwrap();
    write_key(server, "transit/keys/files", json!({}));
    let plain = payload(3 * CHUNK + 1);
    let chunk = CHUNK.to_string();
    let flags = ["-key=files", "-chunk-size", chunk.as_str()];
    let rewrapped = seal_file(server, dir.path(), "new", &plain, &flags);
    let left_old = seal_file(server, dir.path(), "old", &plain, &flags);
    let before = std::fs::read(&rewrapped).unwrap();
    write_key(server, "transit/keys/files/rotate", json!({}));

    let out = ok(envelope(server, &["rewrap", path_str(&rewrapped)], None));
    assert!(stderr(&out).contains("from v1 to v2"), "{}", stderr(&out));
    let after = std::fs::read(&rewrapped).unwrap();
    let body = 4 * 16 + plain.len();
    assert_eq!(before[..AUTHENTICATED_LEN], after[..AUTHENTICATED_LEN]);
    assert_eq!(before[before.len() - body..], after[after.len() - body..]);
    assert!(after.windows(9).any(|w| w == b"vault:v2:"));
    // Again: already at the latest version, the file is left alone.
    let again = ok(envelope(server, &["rewrap", path_str(&rewrapped)], None));
    assert!(
        stderr(&again).contains("already wrapped by v2"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&rewrapped).unwrap(), after);

    write_key(
        server,
        "transit/keys/files/config",
        json!({ "min_decryption_version": 2 }),
    );
    let back = dir.path().join("new.out");
    ok(open_file(server, &rewrapped, &back));
    assert!(std::fs::read(&back).unwrap() == plain);
    let refused_out = dir.path().join("old.out");
    let out = open_file(server, &left_old, &refused_out);
    refused(
        &out,
        "ciphertext or signature version is disallowed by policy (too old)",
    );
    assert!(!refused_out.exists());
    // Rewrapping the old one is refused the same way: v1 is past unwrapping.
    let out = envelope(server, &["rewrap", path_str(&left_old)], None);
    refused(&out, "disallowed by policy");
}

#[test]
fn rewrap_after_rotation_against_transitd() {
    rewrap_after_rotation(&transitd());
}

#[test]
fn rewrap_after_rotation_against_openbao() {
    rewrap_after_rotation(&DevServer::openbao());
}

#[test]
fn refusals_before_and_from_the_server() {
    let server = transitd();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"plain text, not an envelope").unwrap();
    let out = dir.path().join("out");
    let run = |args: &[&str]| envelope(&server, args, None);
    refused(
        &run(&["encrypt", "-key=missing", path_str(&input), path_str(&out)]),
        "encryption key not found",
    );
    refused(
        &run(&["encrypt", path_str(&input), path_str(&out)]),
        "-key is required",
    );
    refused(
        &run(&[
            "encrypt",
            "-key=k",
            "-chunk-size=100",
            path_str(&input),
            path_str(&out),
        ]),
        "chunk size 100",
    );
    refused(
        &run(&[
            "encrypt",
            "-key=k",
            "-context=x",
            path_str(&input),
            path_str(&out),
        ]),
        "unknown flag -context",
    );
    refused(
        &run(&["decrypt", "-key=k", path_str(&input), path_str(&out)]),
        "unknown flag -key",
    );
    refused(
        &run(&["decrypt", path_str(&input), path_str(&out)]),
        "wrong magic bytes",
    );
    assert_eq!(files_in(dir.path()), ["in"]);
}

/// Peak resident memory of `pid` so far, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// 3 GiB of zeros through `encrypt - - | decrypt - -`: it all comes back,
/// and neither process grows past a fixed bound (4 MiB chunk buffers and
/// the program itself), sampled from /proc while they run.
#[test]
fn a_multi_gib_stream_runs_in_bounded_memory() {
    const TOTAL: u64 = 3 << 30;
    let server = transitd();
    write_key(&server, "transit/keys/files", json!({}));
    let spawn = |args: &[&str], stdin: Stdio| {
        Command::new(BIN)
            .arg("envelope")
            .args(args)
            .env("VAULT_ADDR", server.client().addr())
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut enc = spawn(&["encrypt", "-key=files", "-", "-"], Stdio::piped());
    let mut dec = spawn(
        &["decrypt", "-", "-"],
        Stdio::from(enc.stdout.take().unwrap()),
    );
    let mut feed = enc.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(TOTAL >> 20) {
            feed.write_all(&zeros).unwrap();
        }
    });
    let pids = [enc.id(), dec.id()];
    let sampler = std::thread::spawn(move || {
        let mut peaks = [0u64; 2];
        loop {
            let mut alive = false;
            for (peak, pid) in peaks.iter_mut().zip(pids) {
                if let Some(kib) = peak_rss_kib(pid) {
                    *peak = (*peak).max(kib);
                    alive = true;
                }
            }
            if !alive {
                return peaks;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut out = dec.stdout.take().unwrap();
    let (mut total, mut buf, zeros) = (0u64, vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n] == zeros[..n]);
        total += n as u64;
    }
    feeder.join().unwrap();
    assert!(enc.wait().unwrap().success());
    assert!(dec.wait().unwrap().success());
    let peaks = sampler.join().unwrap();
    assert_eq!(total, TOTAL);
    eprintln!("peak RSS KiB: encrypt {}, decrypt {}", peaks[0], peaks[1]);
    for (what, kib) in ["encrypt", "decrypt"].iter().zip(peaks) {
        assert!(kib > 0 && kib < 48 * 1024, "{what}: peak RSS {kib} KiB");
    }
}
