//! Where a device's chain starts: a new header (and a first checkpoint) on
//! a new file or stream, or the chain of an existing file resumed.
//!
//! Reopening an existing file resumes its chain: the header must carry this
//! device's public key, the last chained line must chain from the one before
//! it, a checkpoint after it must be validly signed and match it, and the
//! sidecar must be validly signed and must not be ahead of (or disagree with)
//! the file's end. So must the *anchor*: the checkpoint the server keeps in
//! sealed storage for this device on this node (or, when the writer follows a
//! rotated file, where its chain stood). A file that does not reach it was
//! cut back or rolled back, sidecar and all: the device refuses to open
//! (fail closed, loudly), since resuming would bury the loss under new
//! entries. An incomplete last line, the trace of a crash in the middle
//! of a write that nobody was told succeeded, is cut off. Any other
//! disagreement refuses to open the device: run `transitd audit verify`, then
//! move the file aside; the new file then continues the chain from the
//! anchor, so the gap stays visible to `verify`. Only the head and tail (and,
//! when the anchor lags the end, the lines back to it) are read; a full check
//! of the middle is `verify`'s job.
//!
//! A missing or empty file continues from the newest of the anchor and the
//! sidecar (when there is either): its header names that `seq` and chain, and
//! the server log says so. That is log rotation done while the server was
//! stopped; it is also what deleting the file looks like, which is why the
//! header keeps the evidence.

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
use crate::audit::chain::{self, Chain, Checkpoint, Fields, Start};
use crate::audit::error::AuditError;

/// A header line is far shorter; a first line longer than this is not one.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// A header with a fresh random nonce, continuing from `start`, and a
/// checkpoint of it.
pub(super) fn new_chain(
    key: &Ed25519KeyPair,
    start: &Start,
) -> Result<(Vec<u8>, ChainState), AuditError> {
    let mut nonce = [0u8; 32];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| AuditError::Config("no randomness for the header nonce".to_owned()))?;
    let now = OffsetDateTime::now_utc();
    let body = chain::header_body(key, &nonce, now, start);
    let chain_value = chain::link(&start.chain, &body);
    let mut bytes = chain::seal(&body, &chain_value);
    bytes.extend_from_slice(&chain::checkpoint_line(key, start.seq, &chain_value, now));
    Ok((
        bytes,
        ChainState {
            seq: start.seq,
            chain: chain_value,
            last_checkpoint: start.seq,
        },
    ))
}

/// Opens `path` for appending and works out where its chain stands; the
/// file must reach `anchor` (or, empty, continues from it).
pub(super) fn open_file(
    path: &Path,
    mode: Option<u32>,
    key: &Ed25519KeyPair,
    anchor: Option<Start>,
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
        path: path.to_path_buf(),
        open_mode: mode,
        file,
        len: meta.len(),
        sidecar: sidecar_path(path),
        mode: sidecar_mode,
    };
    let state = resume(&mut sink, key, &target, anchor).map_err(|e| match e {
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

/// The sidecar's checkpoint, which must be validly signed with this key.
fn read_sidecar(path: &Path, public_key: &[u8]) -> Result<Option<Checkpoint>, ResumeError> {
    let cp = match fs::read(path) {
        Ok(bytes) => Checkpoint::parse(&bytes).ok_or_else(|| {
            ResumeError::Tampered("the checkpoint sidecar is malformed".to_owned())
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ResumeError::Io(
                "cannot read the checkpoint sidecar".to_owned(),
                e,
            ));
        }
    };
    if !cp.signature_ok(public_key) {
        return Err(ResumeError::Tampered(
            "the checkpoint sidecar is not validly signed".to_owned(),
        ));
    }
    Ok(Some(cp))
}

/// The chain value of the chained line `seq`, read backwards from `len`.
fn chain_at(file: &File, len: u64, seq: u64) -> io::Result<Option<Chain>> {
    let mut pos = len;
    while pos > 0 {
        let (start, line) = line_before(file, pos)?;
        pos = start;
        let Some(fields) = Fields::parse(&line) else {
            return Ok(None);
        };
        if fields.is_checkpoint() {
            continue;
        }
        match fields.seq {
            Some(s) if s == seq => return Ok(chain::split(&line).map(|(_, c)| c)),
            Some(s) if s > seq && !fields.is_header() => {}
            _ => return Ok(None),
        }
    }
    Ok(None)
}

fn resume(
    sink: &mut FileSink,
    key: &Ed25519KeyPair,
    target: &str,
    anchor: Option<Start>,
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
    let sidecar = read_sidecar(&sink.sidecar, &public_key)?;
    if len == 0 {
        // Continue from the newest signed point known: the file was rotated
        // or deleted (the header keeps the evidence), or it is new.
        let from = [
            anchor,
            sidecar.as_ref().map(|cp| Start {
                seq: cp.seq,
                chain: cp.chain,
            }),
        ]
        .into_iter()
        .flatten()
        .max_by_key(|s| s.seq)
        .unwrap_or(Start::GENESIS);
        if !from.is_genesis() {
            tracing::warn!(
                device = %target,
                seq = from.seq,
                "audit file missing or empty where a log stood: starting a file that continues its chain from seq {} (keep the earlier file to verify both)",
                from.seq
            );
        }
        let (bytes, state) =
            new_chain(key, &from).map_err(|e| ResumeError::Tampered(e.to_string()))?;
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
    let start = fields.start().filter(|_| fields.is_header());
    let Some(start) = start.filter(|_| fields.version == Some(chain::FORMAT_VERSION)) else {
        return Err(ResumeError::Tampered(
            "the first line is not a version 1 header".to_owned(),
        ));
    };
    if fields.public_key_bytes().as_deref() != Some(public_key.as_slice()) {
        return Err(ResumeError::KeyMismatch);
    }
    if chain::link(&start.chain, &header.body) != header.chain {
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
        && (prev.seq.checked_add(1) != Some(last.seq)
            || chain::link(&prev.chain, &last.body) != last.chain)
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
    // The header's point may be recorded by its chain or the one before it.
    let header_chains = [start.chain, header.chain];
    let reaches = |point: &Start| -> Result<bool, ResumeError> {
        if point.seq > last.seq || point.seq < start.seq {
            return Ok(point.seq < start.seq);
        }
        if point.seq == last.seq && point.seq != start.seq {
            return Ok(point.chain == last.chain);
        }
        if point.seq == start.seq {
            return Ok(header_chains.contains(&point.chain));
        }
        let found =
            chain_at(&sink.file, len, point.seq).map_err(rio("cannot read back to the anchor"))?;
        Ok(found == Some(point.chain))
    };
    if let Some(cp) = &sidecar {
        let point = Start {
            seq: cp.seq,
            chain: cp.chain,
        };
        if cp.seq > last.seq {
            return Err(ResumeError::Tampered(format!(
                "truncated: the file ends at seq {} but the signed checkpoint covers seq {}",
                last.seq, cp.seq
            )));
        }
        if !reaches(&point)? {
            return Err(ResumeError::Tampered(format!(
                "the chain at seq {} differs from the signed checkpoint",
                cp.seq
            )));
        }
    }
    if let Some(point) = &anchor {
        if point.seq > last.seq {
            return Err(ResumeError::Tampered(format!(
                "rolled back: the file ends at seq {} but the server's sealed checkpoint for this device \
                 is at seq {} (the file was cut back or replaced by an older copy, sidecar and all)",
                last.seq, point.seq
            )));
        }
        if !reaches(point)? {
            return Err(ResumeError::Tampered(format!(
                "the chain at seq {} differs from the server's sealed checkpoint: the file was rewritten",
                point.seq
            )));
        }
        if point.seq < start.seq {
            tracing::warn!(
                device = %target,
                anchor = point.seq,
                starts_after = start.seq,
                "the server's sealed checkpoint is older than this audit file; compared nothing"
            );
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
        sidecar.map_or(start.seq, |cp| cp.seq.max(start.seq))
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
    use crate::audit::device::CheckpointStore;
    use crate::audit::device::tests::{MemoryAnchor, entry_seqs, file_config, record};
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
    }

    /// A file deleted (or rotated away) while the server was stopped: the
    /// new file continues the chain from the sidecar's signed checkpoint, so
    /// the old file is still needed (and checked) by `verify`.
    #[tokio::test]
    async fn deleted_file_continues_from_the_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let old = dir.path().join("audit.log.1");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..5 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        fs::rename(&path, &old).unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.log(&record(5)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), vec![6]);
        let header = fs::read_to_string(&path).unwrap();
        assert!(header.starts_with("{\"type\":\"header\""), "{header}");
        assert!(
            header.lines().next().unwrap().contains("\"prev_chain\":\""),
            "{header}"
        );
        let both =
            crate::audit::verify::verify_files(&[old.clone(), path.clone()], &Default::default());
        assert!(
            matches!(&both, VerifyReport::Ok(v) if v.files == 2 && v.first_seq == 0 && v.last_seq == 6),
            "{both}"
        );
        let alone = verify_file(&path, None);
        assert!(
            alone
                .to_string()
                .contains("entries up to seq 5 are not in the files given"),
            "{alone}"
        );
    }

    /// The file and its sidecar rolled back together to an earlier, genuine
    /// state: only the server's sealed copy of the latest checkpoint (the
    /// anchor) shows it, and the device then refuses to open.
    #[tokio::test]
    async fn rollback_with_sidecar_is_refused_against_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let anchor = MemoryAnchor::shared();
        let open = |anchored: bool| {
            let mut config = file_config(&path, &key, 1000);
            if anchored {
                config.checkpoints = Some(anchor.clone() as std::sync::Arc<dyn CheckpointStore>);
            }
            FileDevice::open(config)
        };
        let dev = open(true).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        let saved = (
            fs::read(&path).unwrap(),
            fs::read(sidecar_path(&path)).unwrap(),
        );
        let dev = open(true).unwrap();
        for i in 3..8 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        assert_eq!(anchor.load().unwrap().map(|s| s.seq), Some(8));
        fs::write(&path, &saved.0).unwrap();
        fs::write(sidecar_path(&path), &saved.1).unwrap();
        // What a server without the sealed copy sees: a consistent log.
        assert!(verify_file(&path, None).is_ok());
        let err = open(true).unwrap_err();
        assert!(err.to_string().contains("rolled back"), "{err}");
        // A chain rewritten at the anchor's seq is refused too.
        let start = anchor.load().unwrap().unwrap();
        anchor.save(3, &[9; 32]).unwrap();
        let err = open(true).unwrap_err();
        assert!(
            err.to_string()
                .contains("differs from the server's sealed checkpoint"),
            "{err}"
        );
        anchor.save(start.seq, &start.chain).unwrap();
        // Without the anchor the rolled-back file would be resumed.
        open(false).unwrap().close().unwrap();
    }
}
