//! The audit log checker on arbitrary files and sequences of files: it never
//! panics, and never calls a log intact when the last checkpoint line of a
//! file does not verify with that file's header key.
//!
//! Input: up to four files separated by the line `--next-file--`; a file's
//! sidecar follows its bytes after a line `--sidecar--`. Seeds are real
//! logs written by a device (`seeds/audit_verify/`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use transitd::audit::chain::{Checkpoint, Fields};
use transitd::audit::verify::{Expect, KnownCheckpoint, LogSource, MemorySource, verify_sources};

const NEXT_FILE: &[u8] = b"--next-file--\n";
const SIDECAR: &[u8] = b"--sidecar--\n";

fn split_on<'a>(bytes: &'a [u8], marker: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = bytes;
    while let Some(i) = rest.windows(marker.len()).position(|w| w == marker) {
        parts.push(&rest[..i]);
        rest = &rest[i + marker.len()..];
    }
    parts.push(rest);
    parts
}

/// The last checkpoint line of `bytes`, and whether its signature verifies
/// with the key of the file's header.
fn last_checkpoint_verifies(bytes: &[u8]) -> Option<bool> {
    let mut lines = bytes.split(|&b| b == b'\n');
    let header = Fields::parse(lines.next()?)?;
    let key = header.public_key_bytes()?;
    let last = bytes
        .split(|&b| b == b'\n')
        .filter_map(Checkpoint::parse)
        .last()?;
    Some(last.signature_ok(&key))
}

fuzz_target!(|data: &[u8]| {
    // The first line may name a server checkpoint (`SEQ:HEX`).
    let (checkpoint, data) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => match std::str::from_utf8(&data[..i])
            .ok()
            .and_then(KnownCheckpoint::parse)
        {
            Some(cp) => (Some(cp), &data[i + 1..]),
            None => (None, data),
        },
        None => (None, data),
    };
    let sources: Vec<MemorySource> = split_on(data, NEXT_FILE)
        .into_iter()
        .take(4)
        .enumerate()
        .map(|(i, part)| {
            let mut halves = split_on(part, SIDECAR).into_iter();
            let bytes = halves.next().unwrap_or_default().to_vec();
            MemorySource {
                name: format!("audit.log.{i}"),
                bytes,
                sidecar: halves.next().map(<[u8]>::to_vec),
            }
        })
        .collect();
    let refs: Vec<&dyn LogSource> = sources.iter().map(|s| s as &dyn LogSource).collect();
    let report = verify_sources(
        &refs,
        &Expect {
            public_key: None,
            checkpoint,
        },
    );
    let _ = report.to_string();
    if report.is_ok() {
        for source in &sources {
            // Only complete lines count: an incomplete last line is ignored.
            let complete = match source.bytes.iter().rposition(|&b| b == b'\n') {
                Some(end) => &source.bytes[..=end],
                None => &[][..],
            };
            assert_ne!(
                last_checkpoint_verifies(complete),
                Some(false),
                "{} passed with a last checkpoint that does not verify",
                source.name
            );
        }
    }
});
