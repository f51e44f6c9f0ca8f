//! The byte-level line scheme shared by the writer ([`super::device`]) and the
//! checker ([`super::verify`]).
//!
//! A chained line (the header and every entry) is a JSON object whose last two
//! members are `"seq":N` and `"chain":"<64 hex>"`, followed by `\n`. Its *body*
//! is the same object without the chain member: the line's bytes up to (not
//! including) `,"chain":"`, plus the closing `}`. The chain value is
//! `SHA-256(previous chain as 32 raw bytes || body)`; the header's previous
//! chain is 32 zero bytes. Working on the exact bytes written (never on a
//! re-serialisation) keeps the check independent of JSON key order, number
//! formatting and escaping.
//!
//! Checkpoint lines are not chained: they repeat the `seq` and `chain` of the
//! chained line just before them and carry an Ed25519 signature over
//! `seq (u64, big-endian) || chain (32 raw bytes)`.
//!
//! A log may span several files (rotation, or a file that vanished): the
//! header of a continuation file carries `"prev_chain":"<hex>"` and, as its
//! `seq`, the last `seq` of the file before it; its previous chain is that
//! `prev_chain` instead of zeros, and its entries go on from `seq + 1`. A
//! first header has no `prev_chain` and `seq` 0. Either way the header's
//! checkpoint (right after it) signs `seq` and the header's chain, so the
//! link to the previous file is signed too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::digest;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use serde::Deserialize;
use time::OffsetDateTime;

use super::format::{hex_encode_into, rfc3339_nano};

/// Version written in, and required from, the header line.
pub const FORMAT_VERSION: u64 = 1;

/// A chain value: SHA-256 output.
pub type Chain = [u8; 32];

/// The "previous chain" of the header line.
pub const GENESIS: Chain = [0; 32];

/// Suffix marker that precedes the hex chain value at the end of a line.
const CHAIN_MARKER: &[u8] = b",\"chain\":\"";

/// `SHA-256(prev || body)`.
pub fn link(prev: &Chain, body: &[u8]) -> Chain {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(body);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Appends `"seq":N` as the last member of a serialised JSON object (bytes
/// ending in `}`), giving the body that the chain covers. `None` when `object`
/// is not shaped like an object.
pub fn body_with_seq(object: &[u8], seq: u64) -> Option<Vec<u8>> {
    let inner = object.strip_suffix(b"}")?;
    if !object.starts_with(b"{") {
        return None;
    }
    let mut body = Vec::with_capacity(object.len() + 32);
    body.extend_from_slice(inner);
    if inner.len() > 1 {
        body.push(b',');
    }
    body.extend_from_slice(b"\"seq\":");
    body.extend_from_slice(seq.to_string().as_bytes());
    body.push(b'}');
    Some(body)
}

/// The full line (with `\n`) for a body and its chain value.
pub fn seal(body: &[u8], chain: &Chain) -> Vec<u8> {
    let inner = body.strip_suffix(b"}").unwrap_or(body);
    let mut line = Vec::with_capacity(body.len() + CHAIN_MARKER.len() + 67);
    line.extend_from_slice(inner);
    push_chain_member(&mut line, chain);
    line
}

/// `,"chain":"<hex>"}` and the newline.
fn push_chain_member(line: &mut Vec<u8>, chain: &Chain) {
    line.extend_from_slice(CHAIN_MARKER);
    let mut hex = [0u8; 64];
    hex_encode_into(chain, &mut hex);
    line.extend_from_slice(&hex);
    line.extend_from_slice(b"\"}\n");
}

/// Decimal digits of `n`, without `format!`.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is a single digit.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Whether `object` is shaped like a serialised JSON object (what
/// [`append_entry`] takes).
pub fn is_object(object: &[u8]) -> bool {
    object.starts_with(b"{") && object.ends_with(b"}") && object.len() >= 2
}

/// Appends to `out` the sealed line (with `\n`) of the entry `object` (a
/// serialised JSON object) numbered `seq` and chained from `prev`, and
/// returns its chain value: what [`body_with_seq`], [`link`] and [`seal`] do,
/// built in place in one buffer. `None` (and nothing appended) when `object`
/// is not shaped like an object.
pub fn append_entry(out: &mut Vec<u8>, object: &[u8], seq: u64, prev: &Chain) -> Option<Chain> {
    is_object(object).then(|| append_object(out, object, seq, prev))
}

/// [`append_entry`] for an `object` already known to pass [`is_object`].
pub fn append_object(out: &mut Vec<u8>, object: &[u8], seq: u64, prev: &Chain) -> Chain {
    let inner = object.strip_suffix(b"}").unwrap_or(object);
    let start = out.len();
    out.reserve(object.len() + 30 + CHAIN_MARKER.len() + 67);
    out.extend_from_slice(inner);
    if inner.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(b"\"seq\":");
    push_decimal(out, seq);
    out.push(b'}');
    let chain = link(prev, &out[start..]);
    out.pop();
    push_chain_member(out, &chain);
    chain
}

/// Splits a chained line (without its `\n`) into its body and the chain value
/// written at its end. `None` when the line does not end in a well-formed
/// chain member.
pub fn split(line: &[u8]) -> Option<(Vec<u8>, Chain)> {
    let rest = line.strip_suffix(b"\"}")?;
    let hex_start = rest.len().checked_sub(64)?;
    let marker_start = hex_start.checked_sub(CHAIN_MARKER.len())?;
    if &rest[marker_start..hex_start] != CHAIN_MARKER {
        return None;
    }
    let mut chain = [0u8; 32];
    hex::decode_to_slice(&rest[hex_start..], &mut chain).ok()?;
    let mut body = Vec::with_capacity(marker_start + 1);
    body.extend_from_slice(&line[..marker_start]);
    body.push(b'}');
    Some((body, chain))
}

/// The 40 bytes a checkpoint signature covers.
pub fn checkpoint_message(seq: u64, chain: &Chain) -> [u8; 40] {
    let mut msg = [0u8; 40];
    msg[..8].copy_from_slice(&seq.to_be_bytes());
    msg[8..].copy_from_slice(chain);
    msg
}

/// A signed checkpoint line (with `\n`) for the chained line `seq`/`chain`.
pub fn checkpoint_line(
    key: &Ed25519KeyPair,
    seq: u64,
    chain: &Chain,
    now: OffsetDateTime,
) -> Vec<u8> {
    let signature = key.sign(&checkpoint_message(seq, chain));
    // Hex, base64 and RFC 3339 text need no JSON escaping.
    let mut out = format!(
        "{{\"type\":\"checkpoint\",\"seq\":{seq},\"chain\":\"{}\",\"time\":\"{}\",\"signature\":\"{}\"}}",
        hex::encode(chain),
        rfc3339_nano(now),
        B64.encode(signature.as_ref()),
    )
    .into_bytes();
    out.push(b'\n');
    out
}

/// Checks a checkpoint signature with a raw 32-byte Ed25519 public key.
pub fn checkpoint_signature_ok(
    public_key: &[u8],
    seq: u64,
    chain: &Chain,
    signature_b64: &str,
) -> bool {
    let Ok(sig) = B64.decode(signature_b64) else {
        return false;
    };
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(&checkpoint_message(seq, chain), &sig)
        .is_ok()
}

/// Where a file's chain starts: the `seq` and chain of the line before its
/// header (the last line of the previous file), or [`Start::GENESIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub seq: u64,
    pub chain: Chain,
}

impl Start {
    /// A first file: nothing before it.
    pub const GENESIS: Self = Self {
        seq: 0,
        chain: GENESIS,
    };

    pub fn is_genesis(&self) -> bool {
        *self == Self::GENESIS
    }
}

/// The header's body (without the chain member): `"seq":0` for a first file,
/// `"prev_chain":"<hex>","seq":N` for a file continuing a previous one.
pub fn header_body(
    key: &Ed25519KeyPair,
    nonce: &[u8; 32],
    now: OffsetDateTime,
    start: &Start,
) -> Vec<u8> {
    let prev = if start.is_genesis() {
        String::new()
    } else {
        format!(",\"prev_chain\":\"{}\"", hex::encode(start.chain))
    };
    format!(
        "{{\"type\":\"header\",\"version\":{FORMAT_VERSION},\"public_key\":\"{}\",\"nonce\":\"{}\",\"time\":\"{}\"{prev},\"seq\":{}}}",
        B64.encode(key.public_key().as_ref()),
        hex::encode(nonce),
        rfc3339_nano(now),
        start.seq,
    )
    .into_bytes()
}

/// The top-level members the checker and the resume logic look at; every
/// other member is covered by the chain but not interpreted.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub chain: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub public_key: Option<String>,
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub prev_chain: Option<String>,
}

impl Fields {
    pub fn parse(line: &[u8]) -> Option<Self> {
        serde_json::from_slice(line).ok()
    }

    pub fn is_header(&self) -> bool {
        self.kind.as_deref() == Some("header")
    }

    pub fn is_checkpoint(&self) -> bool {
        self.kind.as_deref() == Some("checkpoint")
    }

    /// The `chain` member decoded, when present and well formed.
    pub fn chain_value(&self) -> Option<Chain> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(self.chain.as_deref()?, &mut out).ok()?;
        Some(out)
    }

    /// A header's [`Start`]: `None` when `prev_chain` is malformed, or
    /// absent with a `seq` other than 0.
    pub fn start(&self) -> Option<Start> {
        let seq = self.seq?;
        match self.prev_chain.as_deref() {
            None => (seq == 0).then_some(Start::GENESIS),
            Some(hex_chain) => {
                let mut chain = [0u8; 32];
                hex::decode_to_slice(hex_chain, &mut chain).ok()?;
                Some(Start { seq, chain })
            }
        }
    }

    /// The header's public key, decoded.
    pub fn public_key_bytes(&self) -> Option<Vec<u8>> {
        B64.decode(self.public_key.as_deref()?).ok()
    }
}

/// A checkpoint as read back from a line or the sidecar file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: u64,
    pub chain: Chain,
    pub signature: String,
}

impl Checkpoint {
    /// Parses a checkpoint line (without or with its trailing `\n`).
    pub fn parse(line: &[u8]) -> Option<Self> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let fields = Fields::parse(line)?;
        if !fields.is_checkpoint() {
            return None;
        }
        Some(Self {
            seq: fields.seq?,
            chain: fields.chain_value()?,
            signature: fields.signature?,
        })
    }

    pub fn signature_ok(&self, public_key: &[u8]) -> bool {
        checkpoint_signature_ok(public_key, self.seq, &self.chain, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_split_round_trip() {
        let body = body_with_seq(br#"{"type":"request","x":"a}"}"#, 7).unwrap();
        assert_eq!(body, br#"{"type":"request","x":"a}","seq":7}"#);
        let chain = link(&GENESIS, &body);
        let line = seal(&body, &chain);
        assert!(line.ends_with(b"\"}\n"));
        let (b2, c2) = split(line.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(b2, body);
        assert_eq!(c2, chain);
        let fields = Fields::parse(&line).unwrap();
        assert_eq!(fields.seq, Some(7));
        assert_eq!(fields.chain_value(), Some(chain));
    }

    #[test]
    fn append_entry_equals_body_with_seq_link_and_seal() {
        let prev = link(&GENESIS, b"{}");
        for (object, seq) in [
            (&br#"{"type":"request","x":"a}"}"#[..], 7u64),
            (br#"{}"#, 1),
            (br#"{"a":1}"#, 0),
            (br#"{"a":"\u00e9\n"}"#, u64::MAX),
            (br#"{"nested":{"k":[1,2,{"z":null}]}}"#, 1_000_000_007),
        ] {
            let body = body_with_seq(object, seq).unwrap();
            let chain = link(&prev, &body);
            let mut out = b"previous line\n".to_vec();
            assert_eq!(append_entry(&mut out, object, seq, &prev), Some(chain));
            let mut expected = b"previous line\n".to_vec();
            expected.extend_from_slice(&seal(&body, &chain));
            assert_eq!(out, expected);
        }
        let mut out = b"x".to_vec();
        for bad in [&b"[1]"[..], b"", b"{", b"}", b"\"{}\""] {
            assert_eq!(append_entry(&mut out, bad, 1, &prev), None);
            assert_eq!(out, b"x");
        }
    }

    #[test]
    fn split_rejects_lines_without_chain() {
        assert!(split(br#"{"seq":1}"#).is_none());
        assert!(split(br#"{"seq":1,"chain":"zz"}"#).is_none());
        let bad = format!("{{\"seq\":1,\"chain\":\"{}\"}}", "g".repeat(64));
        assert!(split(bad.as_bytes()).is_none());
    }

    #[test]
    fn checkpoint_line_signs_seq_and_chain() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let chain = link(&GENESIS, b"{}");
        let line = checkpoint_line(&key, 42, &chain, OffsetDateTime::UNIX_EPOCH);
        let text = std::str::from_utf8(&line).unwrap();
        assert!(
            text.starts_with("{\"type\":\"checkpoint\",\"seq\":42,\"chain\":\""),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        let cp = Checkpoint::parse(&line).unwrap();
        assert_eq!(cp.seq, 42);
        assert!(cp.signature_ok(key.public_key().as_ref()));
        let other = Checkpoint { seq: 43, ..cp };
        assert!(!other.signature_ok(key.public_key().as_ref()));
    }
}
