//! Checking an audit log: `transitd audit verify [-public-key=B64]
//! [-checkpoint=SEQ:HEX] FILE...`.
//!
//! A log is one file, or several files in order (rotated: `audit.log.1
//! audit.log`), each file's header naming the `seq` and chain where the one
//! before it ended. One pass over each file recomputes the chain from its
//! header, checks every checkpoint line's signature and position, then
//! compares the file with the signed checkpoint in its `<FILE>.checkpoint`
//! (if there is one) and with the checkpoint the server keeps in sealed
//! storage (`-checkpoint`, if given). The first problem found is reported
//! with its file, line number and what it looks like:
//!
//! * same `seq` as expected but the chain does not match: the line was edited
//!   (or the line before it was edited and its chain recomputed);
//! * a `seq` gap: lines removed, unless the missing `seq` turns up further on
//!   (lines reordered) or the next line carries the expected `seq + 1` (this
//!   line's `seq` edited);
//! * a `seq` already seen: an inserted line (an exact copy, or not);
//! * a checkpoint line whose signature fails, or that does not repeat the
//!   `seq`/chain of the line before it;
//! * the sidecar's or the server's checkpoint beyond the end of the log
//!   (truncated, or rolled back to an earlier state), or disagreeing with the
//!   chain at its `seq`;
//! * a file that does not continue the one given before it, or a gap between
//!   them (a missing file);
//! * a header key other than the pinned one (or, after the first file, than
//!   the first file's).
//!
//! Entries after the last signed point (a checkpoint line, the sidecar, or
//! the server's checkpoint) are reported as unsigned: anyone who can write
//! the file can drop or rewrite those without a trace. The writer signs a
//! checkpoint within about a second of every entry, so only a crash (or a
//! copy taken while the server runs) leaves any.
//!
//! Without a pinned key the header's own key is trusted, so a log rewritten
//! end to end with another key, sidecar included, passes; pin the key (kept
//! elsewhere) to catch that. An incomplete last line (a write in progress, or
//! cut short by a crash) is ignored and noted.
//!
//! The command line around it (flags, output, exit status) is `cli`'s, which
//! depends on this module and never the other way round.

use std::path::{Path, PathBuf};

use super::chain::{Chain, Checkpoint};

mod file;
mod lines;
mod report;
mod source;
#[cfg(test)]
pub(crate) mod tests;

pub use report::{TamperKind, Tampering, Verified, VerifyReport};
pub use source::{FileSource, LogSource, MemorySource};

use file::{Expected, check_file};
use report::tampered;

/// A checkpoint known from elsewhere (the server's sealed copy): the log
/// must reach `seq` and have `chain` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownCheckpoint {
    pub seq: u64,
    pub chain: Chain,
}

impl KnownCheckpoint {
    /// `SEQ:HEX` (what `sys/audit-checkpoint/:path` answers as `seq` and
    /// `chain`).
    pub fn parse(text: &str) -> Option<Self> {
        let (seq, chain_hex) = text.trim().split_once(':')?;
        let mut chain = [0u8; 32];
        hex::decode_to_slice(chain_hex, &mut chain).ok()?;
        Some(Self {
            seq: seq.parse().ok()?,
            chain,
        })
    }
}

/// What the log must agree with beyond itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct Expect<'a> {
    /// The raw 32-byte Ed25519 key every header must name.
    pub public_key: Option<&'a [u8]>,
    /// The server's latest checkpoint for this device on this node.
    pub checkpoint: Option<KnownCheckpoint>,
}

/// Checks the log at `path` (and its sidecar `<path>.checkpoint`, if any).
/// With `pinned_public_key` (raw 32 bytes) the header must name that key.
pub fn verify_file(path: &Path, pinned_public_key: Option<&[u8]>) -> VerifyReport {
    verify_files(
        &[path.to_path_buf()],
        &Expect {
            public_key: pinned_public_key,
            checkpoint: None,
        },
    )
}

/// Checks the files of one log, oldest first, as one chain.
pub fn verify_files(paths: &[PathBuf], expect: &Expect<'_>) -> VerifyReport {
    let sources: Vec<FileSource<'_>> = paths.iter().map(|p| FileSource(p)).collect();
    let refs: Vec<&dyn LogSource> = sources.iter().map(|s| s as &dyn LogSource).collect();
    verify_sources(&refs, expect)
}

/// Checks the files of one log, oldest first, as one chain, wherever their
/// bytes come from.
pub fn verify_sources(sources: &[&dyn LogSource], expect: &Expect<'_>) -> VerifyReport {
    let many = sources.len() > 1;
    let name_it = |report: VerifyReport, source: &dyn LogSource| match report {
        VerifyReport::Tampered(mut t) if many => {
            t.file = Some(source.name());
            VerifyReport::Tampered(t)
        }
        other => other,
    };
    let mut previous: Option<file::FileSummary> = None;
    let mut first_start = None;
    let mut lines = 0u64;
    let mut checkpoints = 0u64;
    let mut server_checked = false;
    let mut notes = Vec::new();
    let mut previous_name = String::new();
    for source in sources {
        let key = expect
            .public_key
            .map(<[u8]>::to_vec)
            .or_else(|| previous.as_ref().map(|p| p.key.clone()));
        let expected = Expected {
            key: key.as_deref(),
            key_name: if expect.public_key.is_some() {
                "pinned"
            } else if previous.is_some() {
                "first file's"
            } else {
                "header's"
            },
            previous: previous.as_ref().map(|p| {
                (
                    super::chain::Start {
                        seq: p.last_seq,
                        chain: p.last_chain,
                    },
                    previous_name.clone(),
                )
            }),
            server: expect.checkpoint,
        };
        let summary = match check_file(*source, &expected) {
            Ok(s) => s,
            Err(report) => return name_it(report, *source),
        };
        first_start.get_or_insert(summary.start);
        lines += summary.lines;
        checkpoints += summary.checkpoints;
        server_checked |= summary.server_checked;
        let prefix = if many {
            format!("{}: ", source.name())
        } else {
            String::new()
        };
        notes.extend(summary.notes.iter().map(|n| format!("{prefix}{n}")));
        previous_name = source.name();
        previous = Some(summary);
    }
    let (Some(last), Some(first_start)) = (previous, first_start) else {
        return VerifyReport::Error("no file to check".to_owned());
    };
    if last.sidecar_seq.is_none() && !server_checked {
        notes.push(format!(
            "no checkpoint sidecar{}: truncation at the end cannot be detected",
            if many { " for the last file" } else { "" }
        ));
    }
    let mut last_signed = last.last_signed;
    if let Some(server) = expect.checkpoint {
        if server.seq > last.last_seq {
            return tampered(
                None,
                TamperKind::Truncated,
                format!(
                    "the log ends at seq {} but the server's checkpoint is at seq {}: {} entries missing at \
                     the end (cut off, or the files rolled back to an earlier state)",
                    last.last_seq,
                    server.seq,
                    server.seq - last.last_seq
                ),
            );
        }
        if server.seq < first_start.seq {
            notes.push(format!(
                "the server's checkpoint (seq {}) is in an earlier file than those given: not compared",
                server.seq
            ));
        } else if server_checked {
            last_signed = last_signed.max(server.seq);
        }
    }
    if !first_start.is_genesis() {
        notes.push(format!(
            "the first file continues an earlier one: entries up to seq {} are not in the files given",
            first_start.seq
        ));
    }
    VerifyReport::Ok(Box::new(Verified {
        lines,
        first_seq: first_start.seq,
        last_seq: last.last_seq,
        checkpoints,
        files: sources.len() as u64,
        last_signed_seq: last_signed,
        sidecar_seq: last.sidecar_seq,
        server_checkpoint: expect.checkpoint.filter(|_| server_checked).map(|c| c.seq),
        public_key: last.key,
        notes,
    }))
}

/// A source's sidecar, parsed: `Err` is the report when it is not a
/// checkpoint line or cannot be read.
fn read_sidecar(source: &dyn LogSource) -> Result<Option<Checkpoint>, VerifyReport> {
    match source.sidecar() {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => match Checkpoint::parse(&bytes) {
            Some(cp) => Ok(Some(cp)),
            None => Err(tampered(
                None,
                TamperKind::Edited,
                format!("{} is not a valid checkpoint line", source.sidecar_name()),
            )),
        },
        Err(e) => Err(VerifyReport::Error(format!(
            "cannot read {}: {e}",
            source.sidecar_name()
        ))),
    }
}
