//! One file of a log checked: its header (and its link to the file before
//! it), every line's chain and `seq`, every checkpoint's signature and
//! position, and the signed points it must agree with (its sidecar, the
//! server's checkpoint).

use std::io::{self, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::lines::Lines;
use super::report::{TamperKind as K, VerifyReport, tampered};
use super::source::LogSource;
use super::{KnownCheckpoint, read_sidecar};
use crate::audit::chain::{self, Chain, Checkpoint, Fields, Start};

/// What a file that checked out holds.
pub(super) struct FileSummary {
    pub(super) start: Start,
    pub(super) last_seq: u64,
    pub(super) last_chain: Chain,
    pub(super) lines: u64,
    pub(super) checkpoints: u64,
    /// `seq` of the last signed point the file agrees with (a checkpoint
    /// line, its sidecar, or the server's checkpoint).
    pub(super) last_signed: u64,
    pub(super) sidecar_seq: Option<u64>,
    pub(super) key: Vec<u8>,
    /// The server's checkpoint fell in this file (and matched).
    pub(super) server_checked: bool,
    pub(super) notes: Vec<String>,
}

/// What the file must agree with beyond itself.
pub(super) struct Expected<'a> {
    /// The key the header must name: pinned, or the previous file's.
    pub(super) key: Option<&'a [u8]>,
    pub(super) key_name: &'static str,
    /// Where the previous file given ended, and its name.
    pub(super) previous: Option<(Start, String)>,
    pub(super) server: Option<KnownCheckpoint>,
}

/// A signed point (`seq`, chain) the file must reach and agree with.
struct Point {
    seq: u64,
    chain: Chain,
    what: &'static str,
    /// The server's checkpoint (which a later file given may reach), not
    /// this file's sidecar.
    from_server: bool,
}

impl Point {
    /// At a chained line `seq`: `Some(report)` when it disagrees. At the
    /// header, both the chain before it and its own are right (the point
    /// was taken just before or just after the file was started).
    fn check(&self, seq: u64, chains: &[Chain], line: u64) -> Option<VerifyReport> {
        (self.seq == seq && !chains.contains(&self.chain)).then(|| {
            tampered(
                Some(line),
                K::CheckpointMismatch,
                format!(
                    "the chain at seq {seq} is not the one {} records: the log up to here was rewritten",
                    self.what
                ),
            )
        })
    }
}

/// Checks one file; `Err` holds the report that ends the check.
pub(super) fn check_file(
    source: &dyn LogSource,
    expected: &Expected<'_>,
) -> Result<FileSummary, VerifyReport> {
    let io_error =
        |e: io::Error| VerifyReport::Error(format!("cannot read {}: {e}", source.name()));
    let sidecar = read_sidecar(source)?;
    let reader = source.open().map_err(io_error)?;
    check_lines(source, Lines::new(reader), sidecar, expected).map_err(io_error)?
}

fn check_lines(
    source: &dyn LogSource,
    mut lines: Lines<Box<dyn Read + '_>>,
    sidecar: Option<Checkpoint>,
    expected: &Expected<'_>,
) -> io::Result<Result<FileSummary, VerifyReport>> {
    let Some(first) = lines.next_line()? else {
        return Ok(Err(tampered(
            Some(1),
            K::NotAuditLog,
            "empty file: no header".to_owned(),
        )));
    };
    let (key, start, header_chain) = match check_header(&first.bytes, first.complete, expected) {
        Ok(h) => h,
        Err(report) => return Ok(Err(report)),
    };
    let key_name = expected.key_name;
    let mut points = Vec::new();
    let mut notes = Vec::new();
    if let Some(cp) = &sidecar {
        if !cp.signature_ok(&key) {
            return Ok(Err(tampered(
                None,
                K::BadSignature,
                format!(
                    "the signature of {} (seq {}) does not verify with the {key_name} key: the log was \
                     rewritten under another key, or the sidecar was forged",
                    source.sidecar_name(),
                    cp.seq
                ),
            )));
        }
        if cp.seq < start.seq {
            notes.push(format!(
                "{} (seq {}) is older than this file, which starts after seq {}: not compared",
                source.sidecar_name(),
                cp.seq,
                start.seq
            ));
        } else {
            points.push(Point {
                seq: cp.seq,
                chain: cp.chain,
                what: "the signed checkpoint sidecar",
                from_server: false,
            });
        }
    }
    if let Some(server) = &expected.server
        && server.seq >= start.seq
    {
        points.push(Point {
            seq: server.seq,
            chain: server.chain,
            what: "the server's checkpoint",
            from_server: true,
        });
    }
    for point in &points {
        if let Some(report) = point.check(start.seq, &[start.chain, header_chain], 1) {
            return Ok(Err(report));
        }
    }

    let mut prev: Chain = header_chain;
    let mut last_seq = start.seq;
    let mut last_line = 1u64;
    let mut checkpoints = 0u64;
    let mut last_checkpoint = None;
    while let Some(line) = lines.next_line()? {
        let n = line.number;
        if !line.complete {
            notes.push(format!(
                "ignored an incomplete last line {n} (a write in progress, or cut short by a crash)"
            ));
            break;
        }
        let Some(fields) = Fields::parse(&line.bytes) else {
            return Ok(Err(tampered(
                Some(n),
                K::Edited,
                "not valid JSON (the line was edited)".to_owned(),
            )));
        };
        if fields.is_header() {
            return Ok(Err(tampered(
                Some(n),
                K::Inserted,
                "a second header (logs concatenated, or a header inserted)".to_owned(),
            )));
        }
        if fields.is_checkpoint() {
            if let Err(report) = check_checkpoint(&line.bytes, n, &key, key_name, last_seq, &prev) {
                return Ok(Err(report));
            }
            checkpoints += 1;
            last_checkpoint = Some(last_seq);
            last_line = n;
            continue;
        }
        let split = chain::split(&line.bytes);
        let (Some((body, chain_value)), Some(seq)) = (split, fields.seq) else {
            return Ok(Err(tampered(
                Some(n),
                K::Edited,
                "the seq or chain member is missing or malformed (the line was edited)".to_owned(),
            )));
        };
        if fields.chain_value() != Some(chain_value) {
            return Ok(Err(tampered(
                Some(n),
                K::Edited,
                "two different chain members".to_owned(),
            )));
        }
        let Some(expected_seq) = last_seq.checked_add(1) else {
            return Ok(Err(tampered(
                Some(n),
                K::Inserted,
                "an entry after seq 2^64-1".to_owned(),
            )));
        };
        if seq == expected_seq {
            if chain::link(&prev, &body) != chain_value {
                let next = lines.entry_seqs().next();
                if next.as_ref().is_some_and(|(_, s, _)| *s == seq) {
                    return Ok(Err(tampered(
                        Some(n),
                        K::Inserted,
                        format!(
                            "a line claiming seq {seq} that does not chain, followed by the real seq {seq}: inserted"
                        ),
                    )));
                }
                return Ok(Err(tampered(
                    Some(n),
                    K::Edited,
                    format!(
                        "chain broken at seq {seq}: the line does not match its chain value (this line was \
                         edited, or the one before it was edited and its chain recomputed)"
                    ),
                )));
            }
        } else if seq > expected_seq {
            return Ok(Err(gap(&mut lines, n, seq, expected_seq)));
        } else {
            return Ok(Err(seen_before(source, n, seq, &line.bytes)));
        }
        for point in &points {
            if let Some(report) = point.check(seq, &[chain_value], n) {
                return Ok(Err(report));
            }
        }
        prev = chain_value;
        last_seq = seq;
        last_line = n;
    }

    let mut last_signed = last_checkpoint.unwrap_or(start.seq);
    let mut server_checked = false;
    for point in &points {
        if point.seq > last_seq {
            if point.from_server {
                // The next file given may hold it; the caller decides.
                continue;
            }
            return Ok(Err(tampered(
                Some(last_line),
                K::Truncated,
                format!(
                    "truncated after seq {last_seq}: {} covers seq {} ({} entries missing at the end)",
                    point.what,
                    point.seq,
                    point.seq - last_seq
                ),
            )));
        }
        server_checked |= point.from_server;
        last_signed = last_signed.max(point.seq);
    }
    Ok(Ok(FileSummary {
        start,
        last_seq,
        last_chain: prev,
        lines: lines.number,
        checkpoints,
        last_signed,
        sidecar_seq: sidecar.map(|cp| cp.seq),
        key,
        server_checked,
        notes,
    }))
}

/// The header line: a version 1 header naming the expected key, chained
/// from where it says the log stood before it, and (for a file after another
/// one) continuing exactly where that one ended.
fn check_header(
    bytes: &[u8],
    complete: bool,
    expected: &Expected<'_>,
) -> Result<(Vec<u8>, Start, Chain), VerifyReport> {
    let header = Fields::parse(bytes).filter(|f| complete && f.is_header());
    let Some(header) = header else {
        return Err(tampered(
            Some(1),
            K::NotAuditLog,
            "not an audit log header (the header was removed, or this is not a tamper-evident log)"
                .to_owned(),
        ));
    };
    if header.version != Some(chain::FORMAT_VERSION) {
        return Err(tampered(
            Some(1),
            K::NotAuditLog,
            format!("unsupported header version {:?}", header.version),
        ));
    }
    let key = match header.public_key_bytes() {
        Some(k) if k.len() == 32 => k,
        _ => {
            return Err(tampered(
                Some(1),
                K::Edited,
                "the header's public key is malformed".to_owned(),
            ));
        }
    };
    if let Some(wanted) = expected.key
        && wanted != key.as_slice()
    {
        return Err(tampered(
            Some(1),
            K::WrongPublicKey,
            format!(
                "the header's public key {} is not the {} key {} (log rewritten under another key?)",
                B64.encode(&key),
                expected.key_name,
                B64.encode(wanted)
            ),
        ));
    }
    let (Some((body, header_chain)), Some(start)) = (chain::split(bytes), header.start()) else {
        return Err(tampered(
            Some(1),
            K::Edited,
            "the header's seq, prev_chain or chain member is malformed".to_owned(),
        ));
    };
    if chain::link(&start.chain, &body) != header_chain {
        return Err(tampered(
            Some(1),
            K::Edited,
            "the header does not match its chain value".to_owned(),
        ));
    }
    if let Some((end, name)) = &expected.previous {
        if start.seq > end.seq {
            return Err(tampered(
                Some(1),
                K::MissingFile,
                format!(
                    "this file continues from seq {}, but {name} ends at seq {}: a file holding seq {}..{} \
                     is missing between them",
                    start.seq,
                    end.seq,
                    end.seq + 1,
                    start.seq
                ),
            ));
        }
        if start != *end {
            return Err(tampered(
                Some(1),
                K::NotContinuation,
                format!(
                    "this file does not continue {name} (which ends at seq {}; this one starts after seq {} {}): \
                     files out of order, from another log, or {name} was cut or rewritten",
                    end.seq,
                    start.seq,
                    if start.seq == end.seq {
                        "with another chain"
                    } else {
                        ""
                    },
                ),
            ));
        }
    }
    Ok((key, start, header_chain))
}

/// A checkpoint line: signed with the key, and repeating the `seq` and
/// chain of the chained line just before it.
fn check_checkpoint(
    bytes: &[u8],
    n: u64,
    key: &[u8],
    key_name: &str,
    last_seq: u64,
    prev: &Chain,
) -> Result<(), VerifyReport> {
    let Some(cp) = Checkpoint::parse(bytes) else {
        return Err(tampered(
            Some(n),
            K::Edited,
            "malformed checkpoint line".to_owned(),
        ));
    };
    if !cp.signature_ok(key) {
        return Err(tampered(
            Some(n),
            K::BadSignature,
            format!(
                "the checkpoint signature (seq {}) does not verify with the {key_name} key",
                cp.seq
            ),
        ));
    }
    let problem = if cp.seq > last_seq {
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
    } else if cp.chain != *prev {
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
    match problem {
        Some((kind, message)) => Err(tampered(Some(n), kind, message)),
        None => Ok(()),
    }
}

/// Line `n` carries `seq` where `expected` was due: removed, reordered, or a
/// `seq` edited?
fn gap<R: Read>(lines: &mut Lines<R>, n: u64, seq: u64, expected: u64) -> VerifyReport {
    let mut next_seq = None;
    for (m, s, _) in lines.entry_seqs() {
        if next_seq.is_none() {
            next_seq = Some(s);
        }
        if s == expected {
            return tampered(
                Some(n),
                K::Reordered,
                format!(
                    "seq {seq} where seq {expected} was due; seq {expected} comes later, at line {m}: lines reordered"
                ),
            );
        }
    }
    if next_seq == expected.checked_add(1) {
        return tampered(
            Some(n),
            K::Edited,
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
        K::Removed,
        format!(
            "seq {seq} follows seq {}: {missing} line(s) removed ({range})",
            expected - 1
        ),
    )
}

/// Line `n` repeats a `seq` already seen: find where, to say whether it is a
/// verbatim copy.
fn seen_before(source: &dyn LogSource, n: u64, seq: u64, bytes: &[u8]) -> VerifyReport {
    let first = source
        .open()
        .ok()
        .and_then(|r| Lines::new(r).entry_seqs().find(|(_, s, _)| *s == seq));
    let message = match first {
        Some((m, _, original)) if original == bytes => {
            format!("seq {seq} again, an exact copy of line {m}: inserted line")
        }
        Some((m, _, _)) => {
            format!("seq {seq} again (first at line {m}, with different content): inserted line")
        }
        None => format!("seq {seq} again: inserted line"),
    };
    tampered(Some(n), K::Inserted, message)
}
