//! Request parameters as the transit API takes them: a JSON object body (or a
//! form-encoded one, or the query string of a GET), with Vault's lenient typing:
//! numbers, booleans and durations may also arrive as strings.
//!
//! Handlers read fields through typed getters; every field a handler reads is
//! remembered, so the reply can warn about the ones it ignored, as Vault does.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::go_syntax;

mod budget;

pub use budget::{
    Budget, Excess, MAX_CONFIGURABLE_DEPTH, MAX_JSON_DEPTH, Meter, parse_json, parse_pairs,
};

/// Up to this many fields, which ones were read is a bit per field (by its
/// place in the sorted map), so reading allocates nothing.
const READ_BITS: usize = 64;

/// A request's fields: shared (a request body, which its audit entries
/// write from the same map the handler reads instead of a copy of every
/// batch item) or borrowed (one item of a batch, read in place inside the
/// request's own `batch_input`).
#[derive(Debug)]
enum Fields<'a> {
    Shared(Arc<Map<String, Value>>),
    Borrowed(&'a Map<String, Value>),
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Self::Shared(Arc::default())
    }
}

impl std::ops::Deref for Fields<'_> {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Shared(map) => map,
            Self::Borrowed(map) => map,
        }
    }
}

impl Fields<'_> {
    /// The map to change: copied first if borrowed, or if an audit entry
    /// still holds it (the entry keeps the fields as received).
    fn to_mut(&mut self) -> &mut Map<String, Value> {
        if let Self::Borrowed(map) = *self {
            *self = Self::Shared(Arc::new(map.clone()));
        }
        match self {
            Self::Shared(map) => Arc::make_mut(map),
            // Made shared just above.
            Self::Borrowed(_) => unreachable!(),
        }
    }
}

/// The fields are owned (a request body) or borrowed (one item of a batch,
/// read in place inside the request's own `batch_input`).
#[derive(Debug, Default)]
pub struct Params<'a> {
    fields: Fields<'a>,
    /// Bit i: the i-th field (in key order) was read. Used while there are at
    /// most [`READ_BITS`] fields.
    read_bits: Cell<u64>,
    /// The names read, once there are more fields than bits.
    read_names: RefCell<BTreeSet<String>>,
    /// Parameters given where this operation reads none (a write's query
    /// string): reported with the unrecognized fields, never silently lost.
    not_read_here: Vec<String>,
    /// Every name a handler asked for, given or not: the route tests
    /// compare it with the fields the API document declares.
    #[cfg(test)]
    asked: RefCell<BTreeSet<String>>,
}

impl<'a> Params<'a> {
    pub fn from_map(fields: Map<String, Value>) -> Self {
        Self {
            fields: Fields::Shared(Arc::new(fields)),
            ..Self::default()
        }
    }

    /// One batch item's fields, read where they are.
    pub fn borrowed(fields: &'a Map<String, Value>) -> Self {
        Self {
            fields: Fields::Borrowed(fields),
            ..Self::default()
        }
    }

    fn uses_bits(&self) -> bool {
        self.fields.len() <= READ_BITS
    }

    /// Remember that `key` was read (only fields that exist matter).
    fn mark_read(&self, key: &str) {
        if self.uses_bits() {
            if let Some(i) = self.fields.keys().position(|k| k == key) {
                self.read_bits.set(self.read_bits.get() | 1 << i);
            }
        } else if self.fields.contains_key(key) {
            self.read_names.borrow_mut().insert(key.to_owned());
        }
    }

    fn was_read(&self, index: usize, key: &str) -> bool {
        if self.uses_bits() {
            self.read_bits.get() & (1 << index) != 0
        } else {
            self.read_names.borrow().contains(key)
        }
    }

    /// Keep the read marks right across a change of the field set: bits
    /// follow their keys; past [`READ_BITS`] fields, names are kept instead.
    fn reindex_reads(&mut self, read: BTreeSet<String>) {
        self.read_bits.set(0);
        self.read_names.borrow_mut().clear();
        for key in read {
            self.mark_read(&key);
        }
    }

    fn reads(&self) -> BTreeSet<String> {
        self.fields
            .keys()
            .enumerate()
            .filter(|(i, k)| self.was_read(*i, k))
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Parse a request body (JSON object, form-encoded, or empty) within the
    /// default [`Budget`].
    pub fn from_body(body: &[u8], content_type: Option<&str>) -> ApiResult<Self> {
        Self::from_body_within(body, content_type, Budget::DEFAULT)
    }

    /// Parse a request body within `budget` (its strings, elements, depth
    /// and estimated memory; the caller bounds the bytes).
    pub fn from_body_within(
        body: &[u8],
        content_type: Option<&str>,
        budget: Budget,
    ) -> ApiResult<Self> {
        let trimmed = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map(|i| &body[i..]);
        let Some(body) = trimmed else {
            return Ok(Self::default());
        };
        let is_form =
            content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if is_form && body.first() != Some(&b'{') {
            return Self::from_pairs(body, budget, "form");
        }
        let meter = Meter::new(budget);
        match parse_json(body, &meter) {
            Ok(Value::Object(map)) => Ok(Self::from_map(map)),
            Ok(Value::Null) => Ok(Self::default()),
            Ok(_) => Err(ApiError::bad("request body must be a JSON object")),
            Err(e) => Err(match meter.excess() {
                Some(excess) => excess.refusal("JSON"),
                None => ApiError::bad(format!("failed to decode JSON input: {e}")),
            }),
        }
    }

    /// Parse `a=1&b=2` (query strings) within the default [`Budget`].
    pub fn from_query(query: &[u8]) -> ApiResult<Self> {
        Self::from_query_within(query, Budget::DEFAULT)
    }

    /// Parse a query string within `budget`.
    pub fn from_query_within(query: &[u8], budget: Budget) -> ApiResult<Self> {
        Self::from_pairs(query, budget, "query")
    }

    fn from_pairs(input: &[u8], budget: Budget, what: &str) -> ApiResult<Self> {
        parse_pairs(input, &Meter::new(budget))
            .map(Self::from_map)
            .map_err(|excess| excess.refusal(what))
    }

    /// Add fields that are not in the body (query values of GETs, URL segments).
    pub fn insert_if_absent(&mut self, key: &str, value: Value) {
        if !self.fields.contains_key(key) {
            self.insert(key, value);
        }
    }

    pub fn insert(&mut self, key: &str, value: Value) {
        if self.fields.contains_key(key) {
            self.fields.to_mut().insert(key.to_owned(), value);
            return;
        }
        let read = self.reads();
        self.fields.to_mut().insert(key.to_owned(), value);
        self.reindex_reads(read);
    }

    fn take(&self, key: &str) -> Option<&Value> {
        #[cfg(test)]
        self.asked.borrow_mut().insert(key.to_owned());
        self.mark_read(key);
        self.fields.get(key).filter(|v| !v.is_null())
    }

    /// Every field as received, a copy.
    pub fn to_value(&self) -> Value {
        Value::Object((*self.fields).clone())
    }

    /// Every field as received, shared rather than copied (for the audit
    /// log, which hashes the strings as it writes them).
    pub fn shared(&self) -> Arc<Map<String, Value>> {
        match &self.fields {
            Fields::Shared(map) => Arc::clone(map),
            Fields::Borrowed(map) => Arc::new((*map).clone()),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.take(key).is_some()
    }

    pub fn raw(&self, key: &str) -> Option<&Value> {
        self.take(key)
    }

    pub fn string(&self, key: &str) -> ApiResult<Option<String>> {
        self.take(key).map(|v| value_to_string(key, v)).transpose()
    }

    pub fn str_or<'d>(&self, key: &str, default: &'d str) -> ApiResult<std::borrow::Cow<'d, str>> {
        Ok(match self.string(key)? {
            Some(s) => std::borrow::Cow::Owned(s),
            None => std::borrow::Cow::Borrowed(default),
        })
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        self.take(key).map(|v| value_to_int(key, v)).transpose()
    }

    pub fn bool(&self, key: &str) -> ApiResult<Option<bool>> {
        self.take(key).map(|v| value_to_bool(key, v)).transpose()
    }

    /// Duration in seconds: an integer, or a Go duration string like `24h`.
    pub fn duration_secs(&self, key: &str) -> ApiResult<Option<u64>> {
        self.take(key)
            .map(|v| value_to_duration(key, v))
            .transpose()
    }

    /// A standard-base64 field decoded (absent means `None`).
    pub fn base64(&self, key: &str) -> ApiResult<Option<Vec<u8>>> {
        match self.take(key) {
            // The common case, decoded without a copy of the text.
            Some(Value::String(s)) => decode_b64(s).map(Some),
            Some(other) => decode_b64(&value_to_string(key, other)?).map(Some),
            None => Ok(None),
        }
    }

    /// Every name asked for so far (tests only).
    #[cfg(test)]
    pub fn asked(&self) -> BTreeSet<String> {
        self.asked.borrow().clone()
    }

    /// The fields the handler never looked at, for Vault's warning.
    pub fn unrecognized(&self) -> Vec<String> {
        self.fields
            .keys()
            .enumerate()
            .filter(|(i, k)| !self.was_read(*i, k))
            .map(|(_, k)| k.clone())
            .chain(self.not_read_here.iter().cloned())
            .collect()
    }

    /// `other`'s fields were given but this request reads none of them (the
    /// query string of a write, which Vault reads from the body only).
    pub fn not_read_from(&mut self, other: &Params, place: &str) {
        self.not_read_here
            .extend(other.fields.keys().map(|k| format!("{k} (in the {place})")));
    }
}

/// Go-compatible standard base64 (padding required; CR/LF ignored).
pub fn decode_b64(s: &str) -> ApiResult<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    // Bytes, not chars: the line breaks are ASCII, and scanning bytes spares
    // decoding every char of every plaintext of a batch.
    let has_breaks = s.bytes().any(|b| b == b'\r' || b == b'\n');
    let cleaned: std::borrow::Cow<'_, str> = if has_breaks {
        s.replace(['\r', '\n'], "").into()
    } else {
        s.into()
    };
    GO_STD
        .decode(cleaned.as_bytes())
        .map_err(|e| ApiError::bad(go_base64_error(&e)))
}

fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        base64::DecodeError::InvalidLength(n) => *n,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

fn conversion_error(key: &str, what: &str) -> ApiError {
    ApiError::bad(format!(
        "error converting input for field {key:?}: cannot parse value as '{what}'"
    ))
}

pub fn value_to_string(key: &str, v: &Value) -> ApiResult<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(conversion_error(key, "string")),
    }
}

pub fn value_to_int(key: &str, v: &Value) -> ApiResult<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| conversion_error(key, "int")),
        Value::String(s) if s.trim().is_empty() => Ok(0),
        Value::String(s) => s.trim().parse().map_err(|_| conversion_error(key, "int")),
        Value::Bool(b) => Ok(i64::from(*b)),
        _ => Err(conversion_error(key, "int")),
    }
}

pub fn value_to_bool(key: &str, v: &Value) -> ApiResult<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) => Ok(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim() {
            // Go's ParseBool; an empty string is false, as Vault's weakly
            // typed field decoding has it.
            "" => Ok(false),
            s => go_syntax::parse_bool(s).ok_or_else(|| conversion_error(key, "bool")),
        },
        _ => Err(conversion_error(key, "bool")),
    }
}

pub fn value_to_duration(key: &str, v: &Value) -> ApiResult<u64> {
    let err = || conversion_error(key, "duration");
    match v {
        Value::Number(_) => u64::try_from(value_to_int(key, v)?).map_err(|_| err()),
        Value::String(s) => go_syntax::parse_duration_secs(s.trim()).ok_or_else(err),
        _ => Err(err()),
    }
}

pub fn encode_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_types() {
        let p = Params::from_map(
            json!({"a": "3", "b": 4, "c": "true", "d": "24h", "e": 7200, "f": "1h30m", "g": "x"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(p.int("a").unwrap(), Some(3));
        assert_eq!(p.int("b").unwrap(), Some(4));
        assert_eq!(p.bool("c").unwrap(), Some(true));
        assert_eq!(p.duration_secs("d").unwrap(), Some(86400));
        assert_eq!(p.duration_secs("e").unwrap(), Some(7200));
        assert_eq!(p.duration_secs("f").unwrap(), Some(5400));
        assert!(p.int("g").is_err());
        assert_eq!(p.unrecognized(), Vec::<String>::new());
    }

    #[test]
    fn base64_like_go() {
        assert_eq!(decode_b64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_b64("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(
            decode_b64("!!notbase64").unwrap_err().to_string(),
            "illegal base64 data at input byte 0"
        );
        assert!(decode_b64("aGVsbG8").is_err());
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(Params::from_body(deep.as_bytes(), None).is_err());
        assert!(Params::from_body(br#"{"a":"[[[[[[[[[[[[[[[[[[[[[["}"#, None).is_ok());
    }

    /// serde_json's own `Value` (with the `raw_value` feature axum turns
    /// on) takes this key as a marker and parses its string again as the
    /// body, unbudgeted (found by the `request_parse` fuzz target). Here it
    /// is a field like any other.
    #[test]
    fn serde_json_marker_keys_are_plain_fields() {
        let body = br#"{"$serde_json::private::RawValue":"{\"a\":1}"}"#;
        let p = Params::from_body(body, None).unwrap();
        assert_eq!(p.unrecognized(), ["$serde_json::private::RawValue"]);
        assert!(!p.has("a"));
    }

    #[test]
    fn forms_and_empty_bodies() {
        let p = Params::from_body(
            b"plaintext=aGk%3D&key_version=2",
            Some("application/x-www-form-urlencoded"),
        )
        .unwrap();
        assert_eq!(p.string("plaintext").unwrap().as_deref(), Some("aGk="));
        assert_eq!(p.int("key_version").unwrap(), Some(2));
        assert!(
            Params::from_body(b"   ", None)
                .unwrap()
                .unrecognized()
                .is_empty()
        );
        assert!(Params::from_body(b"[1]", None).is_err());
    }
}

#[cfg(test)]
mod read_tracking {
    use serde_json::json;

    use super::*;

    fn params(v: Value) -> Params<'static> {
        match v {
            Value::Object(m) => Params::from_map(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn unread_fields_are_reported_and_inserts_keep_the_marks() {
        let mut p = params(json!({ "b": "1", "d": "2", "f": null }));
        assert!(p.has("d"));
        assert!(!p.has("zz"), "an absent field");
        let _ = p.raw("f");
        // New fields before and after the read ones move them in key order.
        p.insert("a", json!("x"));
        p.insert_if_absent("e", json!("y"));
        p.insert_if_absent("d", json!("ignored"));
        assert_eq!(p.string("d").unwrap().as_deref(), Some("2"));
        assert_eq!(p.unrecognized(), ["a", "b", "e"]);
        let _ = p.string("e");
        assert_eq!(p.unrecognized(), ["a", "b"]);
    }

    #[test]
    fn more_fields_than_bits() {
        let map: Map<String, Value> = (0..100).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let p = Params::from_map(map);
        for i in (0..100).step_by(2) {
            let _ = p.int(&format!("k{i:03}"));
        }
        assert_eq!(p.unrecognized().len(), 50);
        assert!(
            p.unrecognized()
                .iter()
                .all(|k| k.ends_with(['1', '3', '5', '7', '9']))
        );
        // Crossing the boundary (64 fields) with reads already marked.
        let map: Map<String, Value> = (0..64).map(|i| (format!("k{i:03}"), json!(i))).collect();
        let mut p = Params::from_map(map);
        let _ = p.int("k063");
        p.insert("k100", json!(1));
        assert_eq!(p.unrecognized().len(), 64);
        assert!(!p.unrecognized().contains(&"k063".to_owned()));
    }
}
