//! The snapshot file: a fixed header, then the content (a SQLite database
//! file holding only what was on disk: sealed entries and the seal's plain
//! configuration).
//!
//! Header, 70 bytes, integers big-endian:
//! * `transitd-snapshot\n` (18 bytes): tells a snapshot from anything else;
//! * format version, u16 (1);
//! * content kind, u16 (1: a SQLite database file);
//! * content length, u64: a cut file is told from a damaged one;
//! * creation time, u64 Unix seconds;
//! * SHA-256 over the 38 bytes above, then the content: any changed byte,
//!   header or content, is refused, and so is anything after the content.
//!
//! The checksum detects damage (a bad disk, a cut copy), not tampering:
//! whoever can rewrite the file can recompute it. A forged entry is caught
//! later, by the barrier's authenticated encryption bound to each path.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 18] = b"transitd-snapshot\n";
pub const FORMAT_VERSION: u16 = 1;
/// The content is a SQLite database file.
pub const KIND_SQLITE: u16 = 1;
/// Magic, version, kind, length, time: what the checksum covers before the content.
const FIELDS_LEN: usize = 18 + 2 + 2 + 8 + 8;
pub const HEADER_LEN: usize = FIELDS_LEN + 32;

/// What the header says about the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    pub content_len: u64,
    pub created_unix: u64,
    pub sha256: [u8; 32],
}

impl Header {
    /// The header of `content`, `content_len` bytes long, read once to hash it.
    pub fn of(
        kind: u16,
        content: &mut impl Read,
        content_len: u64,
        created_unix: u64,
    ) -> io::Result<Self> {
        let mut hasher = Sha256::new();
        hasher.update(fields(kind, content_len, created_unix));
        let read = io::copy(&mut content.take(content_len), &mut HashWriter(&mut hasher))?;
        if read != content_len {
            return Err(io::Error::other(format!(
                "content shrank while being read ({read} of {content_len} bytes)"
            )));
        }
        Ok(Self {
            kind,
            content_len,
            created_unix,
            sha256: hasher.finalize().into(),
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..FIELDS_LEN].copy_from_slice(&fields(self.kind, self.content_len, self.created_unix));
        out[FIELDS_LEN..].copy_from_slice(&self.sha256);
        out
    }
}

fn fields(kind: u16, content_len: u64, created_unix: u64) -> [u8; FIELDS_LEN] {
    let mut out = [0u8; FIELDS_LEN];
    out[..18].copy_from_slice(MAGIC);
    out[18..20].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    out[20..22].copy_from_slice(&kind.to_be_bytes());
    out[22..30].copy_from_slice(&content_len.to_be_bytes());
    out[30..38].copy_from_slice(&created_unix.to_be_bytes());
    out
}

/// Read a snapshot from `input`, copying its content to `out` as it goes,
/// and check it whole: header, length, checksum, nothing after the content.
/// On `Err`, `out` may hold part of the content: the caller discards it.
pub fn read_verified(input: &mut impl Read, out: &mut impl Write) -> Result<Header, String> {
    let mut head = [0u8; HEADER_LEN];
    read_exact_or(
        input,
        &mut head,
        "truncated snapshot: the header is cut short",
    )?;
    if &head[..18] != MAGIC {
        return Err("not a transitd snapshot (wrong magic)".to_owned());
    }
    let u16_at = |i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let version = u16_at(18);
    if version != FORMAT_VERSION {
        return Err(format!(
            "snapshot format version {version} is not supported (this transitd reads {FORMAT_VERSION})"
        ));
    }
    let kind = u16_at(20);
    if kind != KIND_SQLITE {
        return Err(format!(
            "snapshot content kind {kind} is not supported (1: SQLite)"
        ));
    }
    let content_len = u64_at(22);
    let created_unix = u64_at(30);
    let mut hasher = Sha256::new();
    hasher.update(&head[..FIELDS_LEN]);
    let mut both = Tee(&mut hasher, out);
    let copied = io::copy(&mut input.take(content_len), &mut both)
        .map_err(|e| format!("cannot read the snapshot: {e}"))?;
    if copied != content_len {
        return Err(format!(
            "truncated snapshot: {copied} of {content_len} content bytes"
        ));
    }
    let mut extra = [0u8; 1];
    if input
        .read(&mut extra)
        .map_err(|e| format!("cannot read the snapshot: {e}"))?
        != 0
    {
        return Err("damaged snapshot: bytes after the content".to_owned());
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest[..] != head[FIELDS_LEN..] {
        return Err("damaged snapshot: the SHA-256 checksum does not match".to_owned());
    }
    Ok(Header {
        kind,
        content_len,
        created_unix,
        sha256: digest,
    })
}

fn read_exact_or(input: &mut impl Read, buf: &mut [u8], short: &str) -> Result<(), String> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => short.to_owned(),
        _ => format!("cannot read the snapshot: {e}"),
    })
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes what it writes on to the inner writer.
struct Tee<'a, W>(&'a mut Sha256, &'a mut W);

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.1.write(buf)?;
        self.0.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.1.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot_of(content: &[u8]) -> Vec<u8> {
        let h = Header::of(KIND_SQLITE, &mut &content[..], content.len() as u64, 7).unwrap();
        let mut file = h.to_bytes().to_vec();
        file.extend_from_slice(content);
        file
    }

    fn verify(file: &[u8]) -> Result<(Header, Vec<u8>), String> {
        let mut out = Vec::new();
        read_verified(&mut &file[..], &mut out).map(|h| (h, out))
    }

    #[test]
    fn round_trip() {
        let file = snapshot_of(b"sealed bytes");
        assert_eq!(&file[..18], MAGIC);
        let (h, content) = verify(&file).unwrap();
        assert_eq!(content, b"sealed bytes");
        assert_eq!(
            (h.kind, h.content_len, h.created_unix),
            (KIND_SQLITE, 12, 7)
        );
    }

    #[test]
    fn every_damage_is_refused() {
        let file = snapshot_of(b"sealed bytes");
        // Any single flipped byte, in the header or the content.
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad).is_err(), "byte {i} flipped was accepted");
        }
        for cut in 0..file.len() {
            let e = verify(&file[..cut]).unwrap_err();
            assert!(e.starts_with("truncated snapshot"), "cut at {cut}: {e}");
        }
        let mut longer = file.clone();
        longer.push(0);
        assert!(verify(&longer).unwrap_err().contains("bytes after"));
        let mut wrong = file.clone();
        wrong[..6].copy_from_slice(b"SQLite");
        assert!(verify(&wrong).unwrap_err().contains("wrong magic"));
        let mut newer = file;
        newer[19] = 2;
        assert!(verify(&newer).unwrap_err().contains("format version 2"));
    }
}
