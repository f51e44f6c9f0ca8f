//! Where a device's chain starts: a new header (and a first checkpoint) on
//! a new file or stream, or the chain of an existing file resumed.
//!
//! Reopening an existing file resumes its chain: the header must carry this
//! device's public key, the last chained line must chain from the one before
//! it, a checkpoint after it must be validly signed and match it, and the
//! sidecar must be validly signed and must not be ahead of (or disagree with)
//! the file's end. An incomplete last line, the trace of a crash in the middle
//! of a write that nobody was told succeeded, is cut off. Any other
//! disagreement refuses to open the device: run `transitd audit verify`, then
//! move the file and its sidecar aside to start a new log. Only the head and
//! tail are read; a full check of the middle is `verify`'s job.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use time::OffsetDateTime;

use super::sidecar::{sidecar_path, write_atomically};
use super::sink::{FileSink, Sink};
use super::writer::ChainState;
use crate::audit::chain::{self, Chain, Checkpoint, Fields};
use crate::audit::error::AuditError;

/// A header line is far shorter; a first line longer than this is not one.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// A header with a fresh random nonce and a checkpoint of it.
pub(super) fn new_chain(key: &Ed25519KeyPair) -> Result<(Vec<u8>, ChainState), AuditError> {
    let mut nonce = [0u8; 32];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| AuditError::Config("no randomness for the header nonce".to_owned()))?;
    let now = OffsetDateTime::now_utc();
    let body = chain::header_body(key, &nonce, now);
    let chain_value = chain::link(&chain::GENESIS, &body);
    let mut bytes = chain::seal(&body, &chain_value);
    bytes.extend_from_slice(&chain::checkpoint_line(key, 0, &chain_value, now));
    Ok((
        bytes,
        ChainState {
            seq: 0,
            chain: chain_value,
            last_checkpoint: 0,
        },
    ))
}

/// Opens `path` for appending and works out where its chain stands.
pub(super) fn open_file(
    path: &Path,
    mode: Option<u32>,
    key: &Ed25519KeyPair,
) -> Result<(FileSink, ChainState), AuditError> {
    let target = path.display().to_string();
    let io_err = |what: &str, e: io::Error| AuditError::Io {
        target: target.clone(),
        message: format!("{what}: {e}"),
    };
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode.unwrap_or(0o600))
        .open(path)
        .map_err(|e| io_err("cannot open for appending", e))?;
    let meta = file.metadata().map_err(|e| io_err("cannot stat", e))?;
    if !meta.is_file() {
        return Err(AuditError::Config(format!(
            "{target} is not a regular file (use file_path=stdout for a stream)"
        )));
    }
    let sidecar_mode = mode.unwrap_or(0o600);
    if existed && let Some(m) = mode {
        file.set_permissions(Permissions::from_mode(m))
            .map_err(|e| io_err("cannot set mode", e))?;
    }
    let mut sink = FileSink {
        file,
        len: meta.len(),
        sidecar: sidecar_path(path),
        mode: sidecar_mode,
    };
    let state = resume(&mut sink, key, &target).map_err(|e| match e {
        ResumeError::Io(what, e) => io_err(&what, e),
        ResumeError::Tampered(message) => AuditError::Tampered {
            target: target.clone(),
            message,
        },
        ResumeError::KeyMismatch => AuditError::Tampered {
            target: target.clone(),
            message: "the file's header names another signing key (rotate the file to change keys)"
                .to_owned(),
        },
    })?;
    Ok((sink, state))
}

enum ResumeError {
    Io(String, io::Error),
    Tampered(String),
    KeyMismatch,
}

fn rio(what: &str) -> impl FnOnce(io::Error) -> ResumeError + '_ {
    move |e| ResumeError::Io(what.to_owned(), e)
}

/// The line that ends just before `end` (which follows a `\n`, or is the
/// file's end after the last `\n`): its start offset and bytes without `\n`.
fn line_before(file: &File, end: u64) -> io::Result<(u64, Vec<u8>)> {
    // `end - 1` is the line's own '\n'.
    let stop = end.saturating_sub(1);
    let mut start = stop;
    let mut chunk = vec![0u8; 8192];
    loop {
        if start == 0 {
            break;
        }
        let from = start.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(start - from).unwrap_or(chunk.len());
        file.read_exact_at(&mut chunk[..n], from)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            start = from + i as u64 + 1;
            break;
        }
        start = from;
    }
    let mut line = vec![0u8; usize::try_from(stop - start).map_err(io::Error::other)?];
    file.read_exact_at(&mut line, start)?;
    Ok((start, line))
}

/// Offset just past the last `\n` at or before `len`, if any.
fn end_of_last_line(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut pos = len;
    let mut chunk = vec![0u8; 8192];
    while pos > 0 {
        let from = pos.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(pos - from).unwrap_or(chunk.len());
        file.read_exact_at(&mut chunk[..n], from)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(from + i as u64 + 1));
        }
        pos = from;
    }
    Ok(None)
}

/// A chained line read back: its seq, chain value and body.
struct Chained {
    seq: u64,
    chain: Chain,
    body: Vec<u8>,
}

fn parse_chained(line: &[u8], what: &str) -> Result<(Fields, Chained), ResumeError> {
    let bad = || ResumeError::Tampered(format!("{what} is not a well-formed chained line"));
    let fields = Fields::parse(line).ok_or_else(bad)?;
    let (body, chain_value) = chain::split(line).ok_or_else(bad)?;
    let seq = fields.seq.ok_or_else(bad)?;
    if fields.chain_value() != Some(chain_value) {
        return Err(bad());
    }
    Ok((
        fields,
        Chained {
            seq,
            chain: chain_value,
            body,
        },
    ))
}

fn resume(
    sink: &mut FileSink,
    key: &Ed25519KeyPair,
    target: &str,
) -> Result<ChainState, ResumeError> {
    let public_key = key.public_key().as_ref().to_vec();
    let mut len = sink.len;
    if len > 0 {
        match end_of_last_line(&sink.file, len).map_err(rio("cannot read"))? {
            Some(end) if end == len => {}
            Some(end) => {
                tracing::warn!(
                    device = %target,
                    bytes = len - end,
                    "audit log ends in an incomplete line (a write interrupted by a crash, never acknowledged); cutting it off"
                );
                sink.file
                    .set_len(end)
                    .map_err(rio("cannot cut off the incomplete line"))?;
                sink.file.sync_data().map_err(rio("cannot sync"))?;
                len = end;
            }
            None if len <= MAX_HEADER_BYTES => {
                tracing::warn!(device = %target, "audit log holds only an incomplete header; starting it again");
                sink.file
                    .set_len(0)
                    .map_err(rio("cannot cut off the incomplete header"))?;
                len = 0;
            }
            None => {
                return Err(ResumeError::Tampered(
                    "the file holds no complete line".to_owned(),
                ));
            }
        }
        sink.len = len;
    }
    if len == 0 {
        // A sidecar past seq 0 next to an empty (or recreated) file means a
        // log with entries was emptied or deleted: keep the evidence.
        match fs::read(&sink.sidecar) {
            Ok(bytes) => match Checkpoint::parse(&bytes) {
                Some(cp) if cp.seq == 0 => {}
                Some(cp) => {
                    return Err(ResumeError::Tampered(format!(
                        "the file is empty but its checkpoint sidecar records seq {}: \
                         the log was emptied or deleted",
                        cp.seq
                    )));
                }
                None => {
                    return Err(ResumeError::Tampered(
                        "the file is empty and its checkpoint sidecar is malformed".to_owned(),
                    ));
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ResumeError::Io(
                    "cannot read the checkpoint sidecar".to_owned(),
                    e,
                ));
            }
        }
        let (bytes, state) = new_chain(key).map_err(|e| ResumeError::Tampered(e.to_string()))?;
        sink.append(&bytes)
            .map_err(rio("cannot write the header"))?;
        if let Some(cp) = bytes.split_inclusive(|&b| b == b'\n').nth(1) {
            write_atomically(&sink.sidecar, cp, sink.mode)
                .map_err(rio("cannot write the checkpoint sidecar"))?;
        }
        return Ok(state);
    }

    // Header: first line.
    let mut head = vec![0u8; usize::try_from(len.min(MAX_HEADER_BYTES)).unwrap_or(0)];
    sink.file
        .read_exact_at(&mut head, 0)
        .map_err(rio("cannot read the header"))?;
    let header_line = head
        .split(|&b| b == b'\n')
        .next()
        .filter(|_| head.contains(&b'\n'))
        .ok_or_else(|| ResumeError::Tampered("the first line is not a header".to_owned()))?;
    let (fields, header) = parse_chained(header_line, "the header")?;
    if !fields.is_header() || header.seq != 0 || fields.version != Some(chain::FORMAT_VERSION) {
        return Err(ResumeError::Tampered(
            "the first line is not a version 1 header".to_owned(),
        ));
    }
    if fields.public_key_bytes().as_deref() != Some(public_key.as_slice()) {
        return Err(ResumeError::KeyMismatch);
    }
    if chain::link(&chain::GENESIS, &header.body) != header.chain {
        return Err(ResumeError::Tampered(
            "the header does not match its chain value".to_owned(),
        ));
    }

    // Tail: trailing checkpoint lines, the last chained line and the one before it.
    let mut pos = len;
    let mut trailing_checkpoint: Option<Checkpoint> = None;
    let mut last: Option<Chained> = None;
    let mut before_last: Option<Chained> = None;
    while pos > 0 {
        let (start, line) = line_before(&sink.file, pos).map_err(rio("cannot read the tail"))?;
        pos = start;
        let fields = Fields::parse(&line).ok_or_else(|| {
            ResumeError::Tampered(format!("the line at byte {start} is not valid JSON"))
        })?;
        if fields.is_checkpoint() {
            if last.is_none() && trailing_checkpoint.is_none() {
                trailing_checkpoint = Some(Checkpoint::parse(&line).ok_or_else(|| {
                    ResumeError::Tampered(format!("the checkpoint at byte {start} is malformed"))
                })?);
            }
            continue;
        }
        let (_, chained) = parse_chained(&line, &format!("the line at byte {start}"))?;
        if last.is_none() {
            let is_header = start == 0;
            last = Some(chained);
            if is_header {
                break;
            }
        } else {
            before_last = Some(chained);
            break;
        }
    }
    let last = last.ok_or_else(|| ResumeError::Tampered("no chained line found".to_owned()))?;
    if let Some(prev) = &before_last
        && (last.seq != prev.seq + 1 || chain::link(&prev.chain, &last.body) != last.chain)
    {
        return Err(ResumeError::Tampered(format!(
            "the last entry (seq {}) does not chain from the one before it (seq {})",
            last.seq, prev.seq
        )));
    }
    if let Some(cp) = &trailing_checkpoint
        && (cp.seq != last.seq || cp.chain != last.chain || !cp.signature_ok(&public_key))
    {
        return Err(ResumeError::Tampered(format!(
            "the final checkpoint (seq {}) does not match the last entry (seq {}) or is not validly signed",
            cp.seq, last.seq
        )));
    }
    let sidecar = match fs::read(&sink.sidecar) {
        Ok(bytes) => Some(Checkpoint::parse(&bytes).ok_or_else(|| {
            ResumeError::Tampered("the checkpoint sidecar is malformed".to_owned())
        })?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ResumeError::Io(
                "cannot read the checkpoint sidecar".to_owned(),
                e,
            ));
        }
    };
    if let Some(cp) = &sidecar {
        if !cp.signature_ok(&public_key) {
            return Err(ResumeError::Tampered(
                "the checkpoint sidecar is not validly signed".to_owned(),
            ));
        }
        if cp.seq > last.seq {
            return Err(ResumeError::Tampered(format!(
                "truncated: the file ends at seq {} but the signed checkpoint covers seq {}",
                last.seq, cp.seq
            )));
        }
        if cp.seq == last.seq && cp.chain != last.chain {
            return Err(ResumeError::Tampered(format!(
                "the chain at seq {} differs from the signed checkpoint",
                cp.seq
            )));
        }
    }
    if trailing_checkpoint.is_none() {
        tracing::warn!(
            device = %target,
            seq = last.seq,
            "audit log has no final checkpoint: the previous writer did not stop cleanly"
        );
    }
    let last_checkpoint = if trailing_checkpoint.is_some() {
        last.seq
    } else {
        sidecar.map_or(0, |cp| cp.seq)
    };
    Ok(ChainState {
        seq: last.seq,
        chain: last.chain,
        last_checkpoint,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::audit::FileDevice;
    use crate::audit::device::tests::{entry_seqs, file_config, record};
    use crate::audit::generate_signing_key;
    use crate::audit::verify::{VerifyReport, verify_file};

    #[test]
    fn new_file_has_header_checkpoint_and_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.close().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("{\"type\":\"header\",\"version\":1,\"public_key\":\""));
        assert!(lines[0].contains("\"seq\":0,\"chain\":\""));
        assert!(lines[1].starts_with("{\"type\":\"checkpoint\",\"seq\":0,"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(sidecar_path(&path)).unwrap(),
            format!("{}\n", lines[1])
        );
        assert!(matches!(
            verify_file(&path, Some(dev.public_key())),
            VerifyReport::Ok(_)
        ));
    }

    #[tokio::test]
    async fn resume_after_reopen_continues_seq_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 4)).unwrap();
        for i in 0..10 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        let dev = FileDevice::open(file_config(&path, &key, 4)).unwrap();
        for i in 10..15 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), (1..=15).collect::<Vec<u64>>());
        match verify_file(&path, Some(dev.public_key())) {
            VerifyReport::Ok(s) => {
                assert_eq!(s.last_seq, 15);
                assert_eq!(s.sidecar_seq, Some(15));
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn resume_after_crash_cuts_incomplete_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        // A crash mid-write: half a line after the final checkpoint, and the
        // writer never got to write a checkpoint for it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2024-01-01T00:00:00Z\",\"type\":\"req")
            .unwrap();
        drop(f);
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.log(&record(3)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), vec![1, 2, 3, 4]);
        assert!(matches!(verify_file(&path, None), VerifyReport::Ok(_)));
    }

    #[tokio::test]
    async fn reopen_refuses_other_key_and_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..5 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);

        let other = generate_signing_key().unwrap();
        let err = FileDevice::open(file_config(&path, &other, 1000)).unwrap_err();
        assert!(matches!(err, AuditError::Tampered { .. }), "{err}");

        // Drop the last entry and the final checkpoint, keep the sidecar.
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        fs::write(&path, format!("{}\n", lines[..lines.len() - 2].join("\n"))).unwrap();
        let err = FileDevice::open(file_config(&path, &key, 1000)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");

        // Deleted (or emptied) file, sidecar left behind.
        fs::remove_file(&path).unwrap();
        let err = FileDevice::open(file_config(&path, &key, 1000)).unwrap_err();
        assert!(err.to_string().contains("emptied or deleted"), "{err}");
    }
}
