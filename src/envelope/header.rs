//! The envelope header, version 1 (all integers big-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 8 | magic `TDENV\r\n\x1a` (the CR LF and ^Z catch text-mode mangling) |
//! | 1 | format version, 1 |
//! | 1 | algorithm, 1: AES-256-GCM under STREAM BE32 ([`super::stream`]) |
//! | 4 | chunk size: plaintext bytes in every chunk but the last |
//! | 7 | random nonce prefix |
//! | 1 + n | mount, n ≤ 255 bytes of UTF-8 |
//! | 1 + n | key name, n ≤ 255 bytes of UTF-8 |
//! | 2 + n | wrapped data key (`vault:vN:...`), n ≤ [`MAX_WRAPPED_LEN`] |
//!
//! Everything before the wrapped key is the associated data of every
//! chunk, so changing any of it fails the first chunk. The wrapped key is
//! left out so that `envelope rewrap` can replace it without touching the
//! chunks; it is bound all the same, by the data key it unwraps to: any
//! other data key fails the first chunk's tag.

use std::io::Read;

use super::EnvelopeError;
use super::stream::NONCE_PREFIX_LEN;

pub const MAGIC: [u8; 8] = *b"TDENV\r\n\x1a";
pub const VERSION: u8 = 1;
pub const ALGORITHM_AES256GCM_STREAM_BE32: u8 = 1;
pub const MIN_CHUNK_SIZE: u32 = 4 * 1024;
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
pub const DEFAULT_CHUNK_SIZE: u32 = 1024 * 1024;
/// Room for an RSA-4096 key's wrapping (684 base64 characters) with its
/// prefix, several times over; bounds what a hostile header can make us
/// allocate and send.
pub const MAX_WRAPPED_LEN: usize = 4096;
const MAX_NAME_LEN: usize = u8::MAX as usize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub chunk_size: u32,
    pub nonce_prefix: [u8; NONCE_PREFIX_LEN],
    pub mount: String,
    pub key: String,
    pub wrapped_key: String,
}

fn bad(what: impl Into<String>) -> EnvelopeError {
    EnvelopeError::Header(what.into())
}

impl Header {
    /// A header for a new envelope; refuses what [`Header::read`] would.
    pub fn new(
        chunk_size: u32,
        nonce_prefix: [u8; NONCE_PREFIX_LEN],
        mount: &str,
        key: &str,
        wrapped_key: &str,
    ) -> Result<Self, EnvelopeError> {
        check_chunk_size(chunk_size)?;
        check_name("mount", mount.as_bytes())?;
        check_name("key name", key.as_bytes())?;
        check_wrapped(wrapped_key.as_bytes())?;
        Ok(Self {
            chunk_size,
            nonce_prefix,
            mount: mount.to_owned(),
            key: key.to_owned(),
            wrapped_key: wrapped_key.to_owned(),
        })
    }

    /// The bytes every chunk authenticates: all but the wrapped key.
    pub fn authenticated_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.mount.len() + self.key.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(ALGORITHM_AES256GCM_STREAM_BE32);
        out.extend_from_slice(&self.chunk_size.to_be_bytes());
        out.extend_from_slice(&self.nonce_prefix);
        for name in [&self.mount, &self.key] {
            // Lengths were checked by `new`/`read` (at most 255).
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
        }
        out
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.authenticated_bytes();
        // At most MAX_WRAPPED_LEN, checked by `new`/`read`.
        out.extend_from_slice(&(self.wrapped_key.len() as u16).to_be_bytes());
        out.extend_from_slice(self.wrapped_key.as_bytes());
        out
    }

    /// Read exactly one header from the front of `input`, checking each
    /// field as it comes (nothing longer than its bound is read).
    pub fn read(input: &mut impl Read) -> Result<Self, EnvelopeError> {
        let mut fixed = [0u8; 8 + 1 + 1 + 4 + NONCE_PREFIX_LEN];
        read_exact(input, &mut fixed)?;
        let (magic, rest) = fixed.split_at(8);
        if magic != MAGIC {
            return Err(bad("wrong magic bytes"));
        }
        if rest[0] != VERSION {
            return Err(bad(format!(
                "format version {} (this transitd reads version {VERSION})",
                rest[0]
            )));
        }
        if rest[1] != ALGORITHM_AES256GCM_STREAM_BE32 {
            return Err(bad(format!("unknown algorithm {}", rest[1])));
        }
        let chunk_size = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
        check_chunk_size(chunk_size)?;
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&rest[6..]);
        let mount = read_name(input, "mount")?;
        let key = read_name(input, "key name")?;
        let mut len = [0u8; 2];
        read_exact(input, &mut len)?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_WRAPPED_LEN {
            return Err(bad(format!(
                "wrapped key of {len} bytes (at most {MAX_WRAPPED_LEN})"
            )));
        }
        let mut wrapped = vec![0u8; len];
        read_exact(input, &mut wrapped)?;
        check_wrapped(&wrapped)?;
        Ok(Self {
            chunk_size,
            nonce_prefix,
            mount,
            key,
            wrapped_key: String::from_utf8(wrapped).map_err(|_| bad("wrapped key"))?,
        })
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> Result<(), EnvelopeError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => bad("the header is cut short"),
        _ => EnvelopeError::Read(e),
    })
}

fn read_name(input: &mut impl Read, what: &str) -> Result<String, EnvelopeError> {
    let mut len = [0u8; 1];
    read_exact(input, &mut len)?;
    let mut name = vec![0u8; usize::from(len[0])];
    read_exact(input, &mut name)?;
    check_name(what, &name)?;
    String::from_utf8(name).map_err(|_| bad(format!("{what} is not UTF-8")))
}

fn check_chunk_size(size: u32) -> Result<(), EnvelopeError> {
    if (MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&size) {
        Ok(())
    } else {
        Err(bad(format!(
            "chunk size {size} (must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes)"
        )))
    }
}

/// Mount and key names go into request paths: printable, no `/` in a key,
/// no path tricks.
fn check_name(what: &str, name: &[u8]) -> Result<(), EnvelopeError> {
    let text = std::str::from_utf8(name).map_err(|_| bad(format!("{what} is not UTF-8")))?;
    let slash_ok = what == "mount";
    let valid = !text.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !text.chars().any(char::is_control)
        && (slash_ok || !text.contains('/'))
        && !text
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if valid {
        Ok(())
    } else {
        Err(bad(format!("invalid {what} {text:?}")))
    }
}

/// A transit ciphertext: `vault:v<digits>:` then printable ASCII.
fn check_wrapped(wrapped: &[u8]) -> Result<(), EnvelopeError> {
    let valid = wrapped.len() <= MAX_WRAPPED_LEN
        && wrapped.iter().all(u8::is_ascii_graphic)
        && wrapped.strip_prefix(b"vault:v").is_some_and(|rest| {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            digits > 0 && rest.get(digits) == Some(&b':')
        });
    if valid {
        Ok(())
    } else {
        Err(bad("the wrapped key is not a transit ciphertext"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header::new(
            DEFAULT_CHUNK_SIZE,
            [7; NONCE_PREFIX_LEN],
            "transit",
            "files",
            "vault:v1:abc+/=",
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_reads_only_itself() {
        let h = sample();
        let mut bytes = h.encode();
        bytes.extend_from_slice(b"chunk data");
        let mut input = bytes.as_slice();
        assert_eq!(Header::read(&mut input).unwrap(), h);
        assert_eq!(input, b"chunk data");
        assert!(h.encode().starts_with(&h.authenticated_bytes()));
    }

    #[test]
    fn every_cut_is_refused() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            let err = Header::read(&mut &bytes[..cut]).unwrap_err();
            assert!(err.to_string().contains("cut short"), "{cut}: {err}");
        }
    }

    #[test]
    fn bad_fields_are_refused() {
        let good = sample().encode();
        let with = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            Header::read(&mut b.as_slice()).unwrap_err().to_string()
        };
        assert!(with(0, b'X').contains("magic"));
        assert!(with(8, 2).contains("version 2"));
        assert!(with(9, 9).contains("algorithm 9"));
        assert!(with(10, 0xff).contains("chunk size"));
        assert!(with(21, 0).contains("invalid mount"));
        let wrapped_at = good.len() - "vault:v1:abc+/=".len();
        assert!(with(wrapped_at, b'V').contains("not a transit ciphertext"));
        let mut long = sample().authenticated_bytes();
        long.extend_from_slice(&u16::MAX.to_be_bytes());
        let err = Header::read(&mut long.as_slice()).unwrap_err().to_string();
        assert!(err.contains("at most 4096"), "{err}");
        for name in ["", "a/b", "..", "x\n"] {
            assert!(
                Header::new(DEFAULT_CHUNK_SIZE, [0; 7], "transit", name, "vault:v1:x").is_err()
            );
        }
        assert!(Header::new(DEFAULT_CHUNK_SIZE, [0; 7], "a//b", "k", "vault:v1:x").is_err());
        assert!(
            Header::new(
                DEFAULT_CHUNK_SIZE,
                [0; 7],
                "team/transit",
                "k",
                "vault:v12:x"
            )
            .is_ok()
        );
        assert!(Header::new(DEFAULT_CHUNK_SIZE, [0; 7], "t", "k", "vault:v:x").is_err());
        assert!(Header::new(MIN_CHUNK_SIZE - 1, [0; 7], "t", "k", "vault:v1:x").is_err());
    }
}
