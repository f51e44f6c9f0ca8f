//! The only owner of the `vault:v{N}:{base64}` string format shared by
//! ciphertexts, HMACs and signatures.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const PREFIX: &str = "vault:v";

/// Why a `vault:vN:...` string could not be taken apart. Callers map this to the
/// error family of what they parse (ciphertext, HMAC or signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    NoPrefix,
    WrongFields,
    BadVersion,
}

/// A parsed envelope: the version it names and its still-encoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// May be negative or zero: callers report that as "too old".
    pub version: i64,
    pub body: &'a str,
}

/// Parse a ciphertext: version 0 is read as 1, as Vault has always done.
pub fn parse(s: &str) -> Result<Envelope<'_>, ParseError> {
    let e = parse_raw(s)?;
    Ok(Envelope {
        version: if e.version == 0 { 1 } else { e.version },
        body: e.body,
    })
}

/// Parse an HMAC or signature: the version exactly as written.
pub fn parse_raw(s: &str) -> Result<Envelope<'_>, ParseError> {
    let rest = s.strip_prefix(PREFIX).ok_or(ParseError::NoPrefix)?;
    let (version, body) = rest.split_once(':').ok_or(ParseError::WrongFields)?;
    if body.contains(':') {
        return Err(ParseError::WrongFields);
    }
    let version: i64 = parse_decimal(version).ok_or(ParseError::BadVersion)?;
    Ok(Envelope { version, body })
}

/// Decimal integers as Go's `strconv.Atoi` reads them (optional sign, digits only).
fn parse_decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `vault:v{version}:{standard base64 of payload}`.
pub fn encode(version: u32, payload: &[u8]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 11 + payload.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    push_u32(&mut out, version);
    out.push(':');
    base64_simd::STANDARD.encode_append(payload, &mut out);
    out
}

/// `vault:v{version}:{unpadded base64url}`, the JWS marshaling of signatures.
pub fn encode_url_safe(version: u32, payload: &[u8]) -> String {
    let mut out = String::with_capacity(PREFIX.len() + 11 + payload.len().div_ceil(3) * 4);
    out.push_str(PREFIX);
    push_u32(&mut out, version);
    out.push(':');
    URL_SAFE_NO_PAD.encode_string(payload, &mut out);
    out
}

fn push_u32(out: &mut String, v: u32) {
    use core::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

/// Strict standard base64 (padding required); SIMD, as it dominates large payloads.
pub fn decode_standard(body: &str) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(body.as_bytes()).ok()
}

pub fn decode_url_safe(body: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_openbao() {
        assert_eq!(parse("garbage"), Err(ParseError::NoPrefix));
        assert_eq!(parse("vault:v1"), Err(ParseError::WrongFields));
        assert_eq!(parse("vault:v1:a:b"), Err(ParseError::WrongFields));
        assert_eq!(parse("vault:vX:AAAA"), Err(ParseError::BadVersion));
        assert_eq!(parse("vault:v:AAAA"), Err(ParseError::BadVersion));
        assert_eq!(parse("vault:v1 :AAAA"), Err(ParseError::BadVersion));
        assert_eq!(
            parse("vault:v0:AAAA"),
            Ok(Envelope {
                version: 1,
                body: "AAAA"
            })
        );
        assert_eq!(
            parse_raw("vault:v0:AAAA"),
            Ok(Envelope {
                version: 0,
                body: "AAAA"
            })
        );
        assert_eq!(
            parse("vault:v-1:AAAA"),
            Ok(Envelope {
                version: -1,
                body: "AAAA"
            })
        );
        assert_eq!(
            parse("vault:v12:"),
            Ok(Envelope {
                version: 12,
                body: ""
            })
        );
        assert_eq!(
            parse("vault:v99999999999999999999:x"),
            Err(ParseError::BadVersion)
        );
    }

    #[test]
    fn encodes() {
        assert_eq!(encode(3, b"hi"), "vault:v3:aGk=");
        assert_eq!(encode_url_safe(3, &[0xfb, 0xff]), "vault:v3:-_8");
        let e = parse("vault:v3:aGk=").unwrap();
        assert_eq!(decode_standard(e.body).unwrap(), b"hi");
    }
}
