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

use std::fs::{self, File};
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::chain::{self, Chain, Checkpoint, Fields};
use super::device::sidecar_path;

mod lines;
mod report;
#[cfg(test)]
pub(crate) mod tests;

pub use report::{TamperKind, Tampering, Verified, VerifyReport};

use lines::Lines;
use report::tampered;

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
