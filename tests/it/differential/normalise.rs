//! Normalisation: what can be compared between two servers with different keys.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

/// How a field of one step is normalised instead of compared verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Norm {
    /// Random or key-dependent material: its encoding and byte length.
    Opaque,
    /// Random material of variable length (RSA private keys): its encoding only.
    Format,
    /// A base64 backup: decoded, and its JSON reduced to field names, value
    /// types and the values of the deterministic policy fields.
    Backup,
    /// A `vault:vN:` signature in JWS form: base64url without padding (a
    /// payload that happens to have no `-` or `_` would otherwise read as
    /// standard base64).
    Jws,
    /// Only the JSON type (server-specific values such as cluster names, or
    /// a list of every token's accessor).
    Type,
    /// Compared verbatim, overriding the field-name rules (both servers hold
    /// the same key material, e.g. after restoring the same backup).
    Exact,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_rfc3339(s: &str) -> bool {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// `30 len 02 .. 02 ..`: an ASN.1 DER ECDSA signature (its length varies).
fn is_der_ecdsa(b: &[u8]) -> bool {
    fn read_len(b: &[u8], i: &mut usize) -> Option<usize> {
        let first = *b.get(*i)?;
        *i += 1;
        if first < 0x80 {
            return Some(first as usize);
        }
        if first == 0x81 {
            let l = *b.get(*i)? as usize;
            *i += 1;
            return Some(l);
        }
        None
    }
    let mut i = 0;
    if b.first() != Some(&0x30) {
        return false;
    }
    i += 1;
    let Some(total) = read_len(b, &mut i) else {
        return false;
    };
    if i + total != b.len() {
        return false;
    }
    for _ in 0..2 {
        if b.get(i) != Some(&0x02) {
            return false;
        }
        i += 1;
        let Some(l) = read_len(b, &mut i) else {
            return false;
        };
        i += l;
    }
    i == b.len()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The shape of a random/key-dependent string: encoding and (optionally) length.
fn describe(s: &str, with_len: bool) -> String {
    let len = |n: usize| {
        if with_len {
            format!(" {n}B")
        } else {
            String::new()
        }
    };
    if s.is_empty() {
        return String::new();
    }
    if let Some(rest) = s.strip_prefix("vault:v")
        && let Some((version, payload)) = rest.split_once(':')
    {
        return format!("vault:v{version}:{}", describe(payload, with_len));
    }
    if let Some(rest) = s.strip_prefix("-----BEGIN ") {
        let label = rest.split("-----").next().unwrap_or_default();
        let body: String = s
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        let der = STANDARD.decode(body.as_bytes()).map(|d| d.len());
        // RSA private keys vary by a byte or two; public keys and EC keys do not.
        let sized = with_len && !(label.contains("PRIVATE") && label.contains("RSA"));
        let nl = if s.ends_with('\n') { "+nl" } else { "" };
        return match der {
            Ok(n) if sized => format!("<PEM {label} {n}B{nl}>"),
            Ok(_) => format!("<PEM {label}{nl}>"),
            Err(_) => format!("<PEM {label}, bad base64>"),
        };
    }
    if is_hex(s) {
        return format!("<hex{}>", len(s.len() / 2));
    }
    if let Ok(b) = STANDARD.decode(s.as_bytes()) {
        if is_der_ecdsa(&b) {
            return "<b64 DER ECDSA signature>".to_owned();
        }
        return format!("<b64{}>", len(b.len()));
    }
    if let Ok(b) = URL_SAFE_NO_PAD.decode(s.as_bytes()) {
        return format!("<b64url{}>", len(b.len()));
    }
    format!("<text {} chars>", s.chars().count())
}

fn describe_jws(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("vault:v")
        && let Some((version, payload)) = rest.split_once(':')
        && !payload.contains(['+', '/', '='])
        && let Ok(b) = URL_SAFE_NO_PAD.decode(payload.as_bytes())
    {
        return format!("vault:v{version}:<b64url {}B>", b.len());
    }
    format!("<not a JWS signature: {}>", describe(s, true))
}

/// Policy fields of a decoded backup whose values are deterministic.
const BACKUP_EXACT: &[&str] = &[
    "name",
    "derived",
    "kdf",
    "convergent_encryption",
    "exportable",
    "min_decryption_version",
    "min_encryption_version",
    "latest_version",
    "archive_version",
    "archive_min_version",
    "min_available_version",
    "deletion_allowed",
    "convergent_version",
    "type",
    "allow_plaintext_backup",
    "version_template",
    "storage_prefix",
    "auto_rotate_period",
    "Imported",
    "AllowImportedKeyRotation",
    "soft_deleted",
    "version",
];

/// Fields only transitd has, on purpose (README, "Usage limits"): in key
/// reads and in backups. Left out of the comparison; `usage::` tests them.
const OURS_ONLY: [&str; 2] = ["encryption_counts", "max_encryptions_per_version"];

fn skeleton(v: &Value, field: &str) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !OURS_ONLY.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), skeleton(v, k)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| skeleton(v, field)).collect()),
        Value::Null | Value::Bool(_) => v.clone(),
        _ if BACKUP_EXACT.contains(&field) => v.clone(),
        Value::Number(_) => json!("<number>"),
        Value::String(s) if s.starts_with(BIG_NUMBER) => json!("<number>"),
        Value::String(s) if is_rfc3339(s) => json!("<rfc3339>"),
        Value::String(s) => json!(describe(s, false)),
    }
}

const BIG_NUMBER: &str = "#big-number:";

/// Go writes big integers (RSA and EC key parts) as bare JSON numbers, too big
/// for serde_json: turn every run of more than 18 digits outside strings into
/// a string.
fn quote_big_numbers(json: &[u8]) -> String {
    let text = String::from_utf8_lossy(json);
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() > 18 {
            out.push('"');
            out.push_str(BIG_NUMBER);
            out.push_str(digits);
            out.push('"');
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    flush(&mut digits, &mut out);
    out
}

fn pattern_matches(pattern: &str, path: &[String]) -> bool {
    let segs: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    segs.len() == path.len() && segs.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

/// The comparable form of a body. `path` is the JSON path of `v`.
pub(super) fn normalise(v: &Value, path: &mut Vec<String>, norms: &[(String, Norm)]) -> Value {
    if let Some((_, norm)) = norms.iter().find(|(p, _)| pattern_matches(p, path)) {
        return match (norm, v) {
            (Norm::Opaque, Value::String(s)) => json!(describe(s, true)),
            (Norm::Format, Value::String(s)) => json!(describe(s, false)),
            (Norm::Backup, Value::String(s)) => {
                match STANDARD
                    .decode(s.as_bytes())
                    .ok()
                    .and_then(|b| serde_json::from_str::<Value>(&quote_big_numbers(&b)).ok())
                {
                    Some(doc) => skeleton(&doc, ""),
                    None => json!(format!("<not a base64 JSON backup: {}>", describe(s, true))),
                }
            }
            (Norm::Jws, Value::String(s)) => json!(describe_jws(s)),
            (Norm::Type, Value::String(_)) => json!("<string>"),
            (Norm::Type, Value::Number(_)) => json!("<number>"),
            (Norm::Type, Value::Array(_)) => json!("<array>"),
            _ => v.clone(),
        };
    }
    let field = path.last().map(String::as_str).unwrap_or_default();
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in m.iter().filter(|(k, _)| !OURS_ONLY.contains(&k.as_str())) {
                path.push(k.clone());
                let value = match child {
                    // Key versions of a key read (unix seconds, or an object per
                    // version) or of an export (key material).
                    Value::Object(versions) if k == "keys" => {
                        let mut vs = Map::new();
                        for (version, entry) in versions {
                            path.push(version.clone());
                            let norm = norms.iter().any(|(p, _)| pattern_matches(p, path));
                            let entry = match entry {
                                _ if norm => normalise(entry, path, norms),
                                Value::Number(_) => json!("<unix-time>"),
                                Value::String(s) => json!(describe(s, true)),
                                _ => normalise(entry, path, norms),
                            };
                            path.pop();
                            vs.insert(version.clone(), entry);
                        }
                        Value::Object(vs)
                    }
                    _ => normalise(child, path, norms),
                };
                out.insert(k.clone(), value);
                path.pop();
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            let mut out = Vec::new();
            for (i, child) in a.iter().enumerate() {
                path.push(i.to_string());
                out.push(normalise(child, path, norms));
                path.pop();
            }
            Value::Array(out)
        }
        Value::String(s) if field == "request_id" && path.len() == 1 => {
            json!(if is_uuid(s) { "<uuid>" } else { s.as_str() })
        }
        Value::String(s) if (field == "creation_time" || field == "time") && is_rfc3339(s) => {
            json!("<rfc3339>")
        }
        Value::String(s)
            if matches!(
                field,
                "ciphertext" | "hmac" | "signature" | "public_key" | "publickey"
            ) =>
        {
            json!(describe(s, true))
        }
        _ => v.clone(),
    }
}
