use std::io::{Cursor, Write};

use zeroize::Zeroizing;

use super::header::{Header, MIN_CHUNK_SIZE};
use super::stream::{ChunkKey, TAG_LEN};
use super::*;

const CHUNK: usize = MIN_CHUNK_SIZE as usize;

fn header() -> Header {
    Header::new(
        MIN_CHUNK_SIZE,
        [3; 7],
        "transit",
        "files",
        "vault:v1:d3JhcHBlZA==",
    )
    .unwrap()
}

fn key(byte: u8) -> ChunkKey {
    ChunkKey::new(&Zeroizing::new([byte; 32]), header().nonce_prefix)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn seal(plain: &[u8]) -> Vec<u8> {
    let (out, totals) =
        encrypt(&header(), &key(1), Cursor::new(plain.to_vec()), Vec::new()).unwrap();
    assert_eq!(totals.bytes_in, plain.len() as u64);
    assert_eq!(totals.chunks, plain.len().div_ceil(CHUNK).max(1) as u64);
    out
}

/// Read the header off `envelope` and open the rest with `chunk_key`.
fn open_with(envelope: &[u8], chunk_key: &ChunkKey) -> Result<Vec<u8>, EnvelopeError> {
    let mut input = Cursor::new(envelope.to_vec());
    let h = Header::read(&mut input)?;
    decrypt(&h, chunk_key, input, Vec::new()).map(|(plain, _)| plain)
}

fn open(envelope: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    open_with(envelope, &key(1))
}

fn body_start() -> usize {
    header().encode().len()
}

#[test]
fn round_trips_at_every_boundary() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17] {
        let plain = payload(len);
        let sealed = seal(&plain);
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(sealed.len(), body_start() + len + chunks * TAG_LEN, "{len}");
        assert_eq!(open(&sealed).unwrap(), plain, "{len}");
    }
}

fn refused(envelope: &[u8]) -> String {
    open(envelope).unwrap_err().to_string()
}

#[test]
fn every_tampering_is_detected() {
    let plain = payload(3 * CHUNK + 100);
    let sealed = seal(&plain);
    let start = body_start();
    let sealed_chunk = CHUNK + TAG_LEN;
    let chunk_at = |i: usize| start + i * sealed_chunk;

    // A flipped bit anywhere in the body or the authenticated header.
    for at in [0, 8, 9, 12, 16, 22, start, start + 5, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[at] ^= 0x01;
        assert!(open(&t).is_err(), "flip at {at}");
    }
    // The mount or key name changed in the header (still well formed).
    let renamed = sealed_with_header(&sealed, |h| h.key = "filez".into());
    assert!(refused(&renamed).contains("chunk 0 does not authenticate"));
    // Truncated at a chunk boundary, mid-chunk, and down to the header.
    assert!(refused(&sealed[..chunk_at(2)]).contains("final chunk (1)"));
    assert!(refused(&sealed[..chunk_at(2) + 10]).contains("final chunk (2)"));
    assert!(refused(&sealed[..start]).contains("final chunk (0)"));
    // Extended: garbage, or a copy of the last chunk, appended.
    let mut extended = sealed.clone();
    extended.extend_from_slice(b"more");
    assert!(refused(&extended).contains("final chunk (3)"));
    let mut doubled = sealed.clone();
    doubled.extend_from_slice(&sealed[chunk_at(3)..]);
    assert!(open(&doubled).is_err());
    // Two chunks swapped, and one chunk duplicated over the next.
    let mut swapped = sealed.clone();
    swapped[chunk_at(0)..chunk_at(1)].copy_from_slice(&sealed[chunk_at(1)..chunk_at(2)]);
    swapped[chunk_at(1)..chunk_at(2)].copy_from_slice(&sealed[chunk_at(0)..chunk_at(1)]);
    assert!(refused(&swapped).contains("chunk 0 does not authenticate"));
    let mut duplicated = sealed.clone();
    duplicated[chunk_at(1)..chunk_at(2)].copy_from_slice(&sealed[chunk_at(0)..chunk_at(1)]);
    assert!(refused(&duplicated).contains("chunk 1 does not authenticate"));
    // A chunk dropped from the middle.
    let mut dropped = sealed[..chunk_at(1)].to_vec();
    dropped.extend_from_slice(&sealed[chunk_at(2)..]);
    assert!(open(&dropped).is_err());
    // Another data key (a swapped wrapped key unwraps to one).
    let err = open_with(&sealed, &key(2)).unwrap_err().to_string();
    assert!(err.contains("chunk 0 does not authenticate"), "{err}");
}

/// The envelope with its header rewritten by `change` (the chunks kept).
fn sealed_with_header(sealed: &[u8], change: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header();
    change(&mut h);
    let mut out = h.encode();
    out.extend_from_slice(&sealed[body_start()..]);
    out
}

#[test]
fn a_new_wrapped_key_keeps_the_chunks_valid() {
    let plain = payload(CHUNK + 9);
    let sealed = seal(&plain);
    let rewrapped = sealed_with_header(&sealed, |h| h.wrapped_key = "vault:v2:bmV3ZXI=".into());
    assert_eq!(open(&rewrapped).unwrap(), plain);
}

#[test]
fn plaintext_before_a_failure_is_only_authenticated_chunks() {
    let plain = payload(3 * CHUNK);
    let sealed = seal(&plain);
    let mut t = sealed.clone();
    let last = t.len() - 1;
    t[last] ^= 0x80;
    let mut input = Cursor::new(t);
    let h = Header::read(&mut input).unwrap();
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let Err(err) = decrypt(&h, &key(1), input, Shared(written.clone())) else {
        panic!("a changed final chunk decrypted");
    };
    assert!(
        matches!(err, EnvelopeError::FinalChunk { index: 2 }),
        "{err}"
    );
    let got = written.lock().unwrap().clone();
    assert!(
        got.len() <= 2 * CHUNK && plain.starts_with(&got),
        "{}",
        got.len()
    );
}
