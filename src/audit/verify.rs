//! Checking an audit log: `transitd audit verify [-public-key=B64] FILE`.
//!
//! One pass over the file recomputes the chain from the header, checks every
//! checkpoint line's signature and position, then compares the end of the
//! file with the signed checkpoint in `<FILE>.checkpoint`. The first problem
//! found is reported with its line number and what it looks like:
//!
//! * same `seq` as expected but the chain does not match: the line was edited
//!   (or the line before it was edited and its chain recomputed);
//! * a `seq` gap: lines removed, unless the missing `seq` turns up further on
//!   (lines reordered) or the next line carries the expected `seq + 1` (this
//!   line's `seq` edited);
//! * a `seq` already seen: an inserted line (an exact copy, or not);
//! * a checkpoint line whose signature fails, or that does not repeat the
//!   `seq`/chain of the line before it;
//! * the sidecar's signed checkpoint beyond the end of the file (truncated),
//!   or disagreeing with the chain at its `seq`;
//! * a header key other than the pinned one.
//!
//! Without a pinned key the header's own key is trusted, so a log rewritten
//! end to end with another key, sidecar included, passes; pin the key (kept
//! elsewhere) to catch that. Without a sidecar (stdout captures) the chain is
//! checked but truncation at the end is not. An incomplete last line (a write
//! in progress, or cut short by a crash) is ignored and noted.
//!
//! The command line around it (flags, output, exit status) is `cli`'s, which
//! depends on this module and never the other way round.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::chain::{self, Chain, Checkpoint, Fields};
use super::device::sidecar_path;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every line chains and every signature verifies.
    Ok(Verified),
    /// The first sign of tampering.
    Tampered(Tampering),
    /// The file could not be read at all.
    Error(String),
}

/// A log that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Complete lines read, header and checkpoints included.
    pub lines: u64,
    /// `seq` of the last entry (0: header only).
    pub last_seq: u64,
    /// Checkpoint lines in the file.
    pub checkpoints: u64,
    /// `seq` of the sidecar's checkpoint, when there is a sidecar.
    pub sidecar_seq: Option<u64>,
    /// The header's (raw 32-byte) public key.
    pub public_key: Vec<u8>,
    /// Things worth knowing that are not tampering.
    pub notes: Vec<String>,
}

/// What kind of tampering was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// No valid header: not a tamper-evident log, or its header was removed.
    NotAuditLog,
    /// A line's content no longer matches the chain.
    Edited,
    /// Entries missing from the middle.
    Removed,
    /// Entries out of order.
    Reordered,
    /// A line that was not written by the device.
    Inserted,
    /// A checkpoint (in the file or the sidecar) whose signature fails.
    BadSignature,
    /// The header's key is not the pinned key.
    WrongPublicKey,
    /// The file ends before the sidecar's checkpoint.
    Truncated,
    /// The chain at the sidecar checkpoint's `seq` is not the signed one.
    CheckpointMismatch,
}

/// Where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    /// 1-based line number, `None` for the sidecar file.
    pub line: Option<u64>,
    pub kind: TamperKind,
    pub message: String,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    /// 0 verified, 2 tampered, 1 unreadable.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Ok(_) => 0,
            Self::Tampered(_) => 2,
            Self::Error(_) => 1,
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(v) => {
                write!(
                    f,
                    "OK: {} lines, last seq {}, {} checkpoints",
                    v.lines, v.last_seq, v.checkpoints
                )?;
                if let Some(s) = v.sidecar_seq {
                    write!(f, ", signed checkpoint at seq {s} matches")?;
                }
                for note in &v.notes {
                    write!(f, "; {note}")?;
                }
                Ok(())
            }
            Self::Tampered(t) => match t.line {
                Some(n) => write!(f, "TAMPERED: line {n}: {}", t.message),
                None => write!(f, "TAMPERED: {}", t.message),
            },
            Self::Error(e) => write!(f, "ERROR: {e}"),
        }
    }
}

fn tampered(line: Option<u64>, kind: TamperKind, message: String) -> VerifyReport {
    VerifyReport::Tampered(Tampering {
        line,
        kind,
        message,
    })
}

/// Reads `\n`-terminated lines, counting them.
struct Lines<R> {
    reader: BufReader<R>,
    number: u64,
}

/// One line: its number, bytes without `\n`, and whether it had a `\n`.
struct Line {
    number: u64,
    bytes: Vec<u8>,
    complete: bool,
}

impl<R: io::Read> Lines<R> {
    fn new(inner: R) -> Self {
        Self {
            reader: BufReader::with_capacity(256 * 1024, inner),
            number: 0,
        }
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        if self.reader.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        Ok(Some(Line {
            number: self.number,
            bytes,
            complete,
        }))
    }

    /// The remaining entry lines as (line number, seq), skipping anything
    /// that is not a chained entry.
    fn entry_seqs(&mut self) -> impl Iterator<Item = (u64, u64, Vec<u8>)> + '_ {
        std::iter::from_fn(move || {
            loop {
                let line = self.next_line().ok()??;
                let Some(fields) = Fields::parse(&line.bytes) else {
                    continue;
                };
                if fields.is_checkpoint() || fields.is_header() {
                    continue;
                }
                if let Some(seq) = fields.seq {
                    return Some((line.number, seq, line.bytes));
                }
            }
        })
    }
}

/// Checks the log at `path` (and its sidecar `<path>.checkpoint`, if any).
/// With `pinned_public_key` (raw 32 bytes) the header must name that key.
pub fn verify_file(path: &Path, pinned_public_key: Option<&[u8]>) -> VerifyReport {
    // The sidecar first: the device replaces it only after the file holds
    // its checkpoint, so reading it first never races ahead of the file.
    let sidecar = match fs::read(sidecar_path(path)) {
        Ok(bytes) => match Checkpoint::parse(&bytes) {
            Some(cp) => Some(cp),
            None => {
                return tampered(
                    None,
                    TamperKind::Edited,
                    format!(
                        "{} is not a valid checkpoint line",
                        sidecar_path(path).display()
                    ),
                );
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return VerifyReport::Error(format!(
                "cannot read {}: {e}",
                sidecar_path(path).display()
            ));
        }
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return VerifyReport::Error(format!("cannot read {}: {e}", path.display())),
    };
    match check(path, Lines::new(file), sidecar, pinned_public_key) {
        Ok(report) => report,
        Err(e) => VerifyReport::Error(format!("cannot read {}: {e}", path.display())),
    }
}

fn check(
    path: &Path,
    mut lines: Lines<File>,
    sidecar: Option<Checkpoint>,
    pinned: Option<&[u8]>,
) -> io::Result<VerifyReport> {
    use TamperKind as K;

    // Header.
    let Some(first) = lines.next_line()? else {
        return Ok(tampered(
            Some(1),
            K::NotAuditLog,
            "empty file: no header".to_owned(),
        ));
    };
    let header = Fields::parse(&first.bytes).filter(|f| first.complete && f.is_header());
    let Some(header) = header else {
        return Ok(tampered(
            Some(1),
            K::NotAuditLog,
            "not an audit log header (the header was removed, or this is not a tamper-evident log)"
                .to_owned(),
        ));
    };
    if header.version != Some(chain::FORMAT_VERSION) {
        return Ok(tampered(
            Some(1),
            K::NotAuditLog,
            format!("unsupported header version {:?}", header.version),
        ));
    }
    let key = match header.public_key_bytes() {
        Some(k) if k.len() == 32 => k,
        _ => {
            return Ok(tampered(
                Some(1),
                K::Edited,
                "the header's public key is malformed".to_owned(),
            ));
        }
    };
    if let Some(pinned) = pinned
        && pinned != key.as_slice()
    {
        return Ok(tampered(
            Some(1),
            K::WrongPublicKey,
            format!(
                "the header's public key {} is not the pinned key {} (log rewritten under another key?)",
                B64.encode(&key),
                B64.encode(pinned)
            ),
        ));
    }
    let Some((body, header_chain)) = chain::split(&first.bytes) else {
        return Ok(tampered(
            Some(1),
            K::Edited,
            "the header's chain member is malformed".to_owned(),
        ));
    };
    if header.seq != Some(0) || chain::link(&chain::GENESIS, &body) != header_chain {
        return Ok(tampered(
            Some(1),
            K::Edited,
            "the header does not match its chain value".to_owned(),
        ));
    }
    let key_name = if pinned.is_some() {
        "pinned"
    } else {
        "header's"
    };
    if let Some(cp) = &sidecar
        && !cp.signature_ok(&key)
    {
        return Ok(tampered(
            None,
            K::BadSignature,
            format!(
                "the signature of {} (seq {}) does not verify with the {key_name} key: the log was \
                 rewritten under another key, or the sidecar was forged",
                sidecar_path(path).display(),
                cp.seq
            ),
        ));
    }

    let mut prev: Chain = header_chain;
    let mut last_seq = 0u64;
    let mut last_line = 1u64;
    let mut checkpoints = 0u64;
    let mut notes = Vec::new();
    let check_sidecar = |seq: u64, chain_value: &Chain, line: u64| -> Option<VerifyReport> {
        let cp = sidecar.as_ref().filter(|cp| cp.seq == seq)?;
        (cp.chain != *chain_value).then(|| {
            tampered(
                Some(line),
                K::CheckpointMismatch,
                format!(
                    "the chain at seq {seq} is not the one the signed checkpoint sidecar records: \
                     the log up to here was rewritten"
                ),
            )
        })
    };
    if let Some(report) = check_sidecar(0, &header_chain, 1) {
        return Ok(report);
    }

    while let Some(line) = lines.next_line()? {
        let n = line.number;
        if !line.complete {
            notes.push(format!(
                "ignored an incomplete last line {n} (a write in progress, or cut short by a crash)"
            ));
            break;
        }
        let Some(fields) = Fields::parse(&line.bytes) else {
            return Ok(tampered(
                Some(n),
                K::Edited,
                "not valid JSON (the line was edited)".to_owned(),
            ));
        };
        if fields.is_header() {
            return Ok(tampered(
                Some(n),
                K::Inserted,
                "a second header (logs concatenated, or a header inserted)".to_owned(),
            ));
        }
        if fields.is_checkpoint() {
            let Some(cp) = Checkpoint::parse(&line.bytes) else {
                return Ok(tampered(
                    Some(n),
                    K::Edited,
                    "malformed checkpoint line".to_owned(),
                ));
            };
            if !cp.signature_ok(&key) {
                return Ok(tampered(
                    Some(n),
                    K::BadSignature,
                    format!(
                        "the checkpoint signature (seq {}) does not verify with the {key_name} key",
                        cp.seq
                    ),
                ));
            }
            let message = if cp.seq > last_seq {
                Some((
                    K::Removed,
                    format!(
                        "the checkpoint for seq {} follows seq {last_seq}: entries {}..{} were removed",
                        cp.seq,
                        last_seq + 1,
                        cp.seq
                    ),
                ))
            } else if cp.seq < last_seq {
                Some((
                    K::Reordered,
                    format!(
                        "the checkpoint for seq {} comes after seq {last_seq} (moved or copied here)",
                        cp.seq
                    ),
                ))
            } else if cp.chain != prev {
                Some((
                    K::Edited,
                    format!(
                        "the signed checkpoint for seq {} disagrees with the chain: lines before it were \
                         edited and their chain recomputed",
                        cp.seq
                    ),
                ))
            } else {
                None
            };
            if let Some((kind, message)) = message {
                return Ok(tampered(Some(n), kind, message));
            }
            checkpoints += 1;
            last_line = n;
            continue;
        }
        let split = chain::split(&line.bytes);
        let (Some((body, chain_value)), Some(seq)) = (split, fields.seq) else {
            return Ok(tampered(
                Some(n),
                K::Edited,
                "the seq or chain member is missing or malformed (the line was edited)".to_owned(),
            ));
        };
        if fields.chain_value() != Some(chain_value) {
            return Ok(tampered(
                Some(n),
                K::Edited,
                "two different chain members".to_owned(),
            ));
        }
        let expected = last_seq + 1;
        if seq == expected {
            if chain::link(&prev, &body) != chain_value {
                let next = lines.entry_seqs().next();
                if next.as_ref().is_some_and(|(_, s, _)| *s == seq) {
                    return Ok(tampered(
                        Some(n),
                        K::Inserted,
                        format!(
                            "a line claiming seq {seq} that does not chain, followed by the real seq {seq}: inserted"
                        ),
                    ));
                }
                return Ok(tampered(
                    Some(n),
                    K::Edited,
                    format!(
                        "chain broken at seq {seq}: the line does not match its chain value (this line was \
                         edited, or the one before it was edited and its chain recomputed)"
                    ),
                ));
            }
        } else if seq > expected {
            return Ok(gap(&mut lines, n, seq, expected));
        } else {
            return Ok(seen_before(path, n, seq, &line.bytes));
        }
        if let Some(report) = check_sidecar(seq, &chain_value, n) {
            return Ok(report);
        }
        prev = chain_value;
        last_seq = seq;
        last_line = n;
    }

    match &sidecar {
        Some(cp) if cp.seq > last_seq => {
            return Ok(tampered(
                Some(last_line),
                K::Truncated,
                format!(
                    "truncated after seq {last_seq}: the signed checkpoint sidecar covers seq {} \
                     ({} entries missing at the end)",
                    cp.seq,
                    cp.seq - last_seq
                ),
            ));
        }
        Some(_) => {}
        None => {
            notes.push("no checkpoint sidecar: truncation at the end cannot be detected".to_owned())
        }
    }
    Ok(VerifyReport::Ok(Verified {
        lines: lines.number,
        last_seq,
        checkpoints,
        sidecar_seq: sidecar.map(|cp| cp.seq),
        public_key: key,
        notes,
    }))
}

/// Line `n` carries `seq` where `expected` was due: removed, reordered, or a
/// `seq` edited?
fn gap(lines: &mut Lines<File>, n: u64, seq: u64, expected: u64) -> VerifyReport {
    let mut next_seq = None;
    for (m, s, _) in lines.entry_seqs() {
        if next_seq.is_none() {
            next_seq = Some(s);
        }
        if s == expected {
            return tampered(
                Some(n),
                TamperKind::Reordered,
                format!(
                    "seq {seq} where seq {expected} was due; seq {expected} comes later, at line {m}: lines reordered"
                ),
            );
        }
    }
    if next_seq == Some(expected + 1) {
        return tampered(
            Some(n),
            TamperKind::Edited,
            format!(
                "seq {seq} where seq {expected} was due, and the next entry is seq {}: this line's seq was edited",
                expected + 1
            ),
        );
    }
    let missing = seq - expected;
    let range = if missing == 1 {
        format!("seq {expected}")
    } else {
        format!("seq {expected}..{}", seq - 1)
    };
    tampered(
        Some(n),
        TamperKind::Removed,
        format!(
            "seq {seq} follows seq {}: {missing} line(s) removed ({range})",
            expected - 1
        ),
    )
}

/// Line `n` repeats a `seq` already seen: find where, to say whether it is a
/// verbatim copy.
fn seen_before(path: &Path, n: u64, seq: u64, bytes: &[u8]) -> VerifyReport {
    let first = File::open(path)
        .ok()
        .and_then(|f| Lines::new(f).entry_seqs().find(|(_, s, _)| *s == seq));
    let message = match first {
        Some((m, _, original)) if original == bytes => {
            format!("seq {seq} again, an exact copy of line {m}: inserted line")
        }
        Some((m, _, _)) => {
            format!("seq {seq} again (first at line {m}, with different content): inserted line")
        }
        None => format!("seq {seq} again: inserted line"),
    };
    tampered(Some(n), TamperKind::Inserted, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;

    use ring::signature::{Ed25519KeyPair, KeyPair as _};

    use super::*;
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
}
