//! What a request may cost to parse, charged while it is parsed.
//!
//! A body is parsed into `serde_json` values by a visitor that charges every
//! string, array element, object entry and level of nesting to a [`Meter`]
//! *before* it allocates it, so the parse stops at the first excess and
//! nothing over budget is ever built. Form bodies and query strings are
//! charged pair by pair the same way. The memory charged is an estimate of
//! what the tree really takes (see the costs below), rounded up: a request's
//! parsed parameters never take much more than [`Budget::max_memory`].
//!
//! Not covered here: the body bytes themselves (read under
//! [`Budget::max_bytes`] by `api::read_params`), and what handlers build from
//! the parameters afterwards (batch replies: `state::Limits::max_batch_items`).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// Deepest JSON nesting accepted by default (transit bodies are at most 3 deep).
pub const MAX_JSON_DEPTH: usize = 16;

/// The deepest nesting that may be configured: `serde_json` refuses 128
/// levels on its own, with a less clear message.
pub const MAX_CONFIGURABLE_DEPTH: usize = 100;

/// What one request may cost. Every field is a hard ceiling; the first one
/// exceeded refuses the request (400, nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Body bytes (`max_request_size`); over it: 413, before the body is read
    /// when its `Content-Length` says so.
    pub max_bytes: usize,
    /// Estimated bytes of the parsed parameters (`max_request_json_memory`).
    pub max_memory: usize,
    /// Strings, object keys included (`max_request_json_strings`).
    pub max_strings: usize,
    /// Array elements plus object entries (`max_request_json_elements`).
    pub max_elements: usize,
    /// Nesting of arrays and objects (`max_json_depth`).
    pub max_depth: usize,
}

impl Budget {
    /// The default for authenticated requests: a 32 MiB body (OpenBao's
    /// `max_request_size`), whose parse may take at most twice that again,
    /// and room for batches of ten thousand items of up to nine fields each
    /// (OpenBao's 1000 strings would cap a batch at 499 items).
    pub const DEFAULT: Self = Self {
        max_bytes: 32 << 20,
        max_memory: 64 << 20,
        max_strings: 200_000,
        max_elements: 200_000,
        max_depth: MAX_JSON_DEPTH,
    };

    /// The ceiling for requests that need no token (logins, `sys/unseal`,
    /// `sys/init`, `sys/health`...): their bodies are a few short fields, and
    /// anyone can send them, so they get the smallest budget.
    pub const PUBLIC: Self = Self {
        max_bytes: 64 << 10,
        max_memory: 1 << 20,
        max_strings: 1000,
        max_elements: 1000,
        max_depth: MAX_JSON_DEPTH,
    };

    /// The tighter of two budgets, field by field.
    #[must_use]
    pub fn min(self, other: Self) -> Self {
        Self {
            max_bytes: self.max_bytes.min(other.max_bytes),
            max_memory: self.max_memory.min(other.max_memory),
            max_strings: self.max_strings.min(other.max_strings),
            max_elements: self.max_elements.min(other.max_elements),
            max_depth: self.max_depth.min(other.max_depth),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The limit a parse ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excess {
    Memory,
    Strings,
    Elements,
    Depth,
}

impl Excess {
    /// OpenBao's words for the first two (`refused JSON input due to high
    /// complexity: ...`), the same shape for ours.
    fn reason(self) -> &'static str {
        match self {
            Self::Memory => "exceeded maximum estimated memory limits",
            Self::Strings => "exceeded maximum number of strings",
            Self::Elements => "exceeded maximum number of elements",
            Self::Depth => "exceeded maximum nesting depth",
        }
    }

    pub(super) fn refusal(self, input: &str) -> ApiError {
        ApiError::bad(format!(
            "refused {input} input due to high complexity: {}",
            self.reason()
        ))
    }
}

impl fmt::Display for Excess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

// What the parsed tree takes, per item (serde_json without `preserve_order`:
// objects are B-trees). Rounded up, so the estimate bounds the real use.
const VALUE: usize = size_of::<Value>();
/// Heap bytes a string of `len` takes: its bytes plus the allocator's rounding.
const fn string_heap(len: usize) -> usize {
    if len == 0 { 0 } else { len + 16 }
}
/// An array slot: a `Vec` doubles as it grows, and while it moves, the old
/// and the new buffer are both alive (up to three slots per element).
const ARRAY_SLOT: usize = 3 * VALUE;
/// A B-tree node: 11 keys, 11 values, 12 edges and its header.
const OBJECT_NODE: usize = 11 * (size_of::<String>() + VALUE) + 12 * 8 + 16;
/// Nodes are at least 5/11 full, so an entry takes at most a fifth of one.
const OBJECT_ENTRY: usize = OBJECT_NODE / 5;

/// Counts what a parse has built so far against its [`Budget`].
#[derive(Debug)]
pub struct Meter {
    budget: Budget,
    memory: Cell<usize>,
    strings: Cell<usize>,
    elements: Cell<usize>,
    depth: Cell<usize>,
    excess: Cell<Option<Excess>>,
}

impl Meter {
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            memory: Cell::new(VALUE),
            strings: Cell::new(0),
            elements: Cell::new(0),
            depth: Cell::new(0),
            excess: Cell::new(None),
        }
    }

    /// The limit a parse ran into, if any.
    pub fn excess(&self) -> Option<Excess> {
        self.excess.get()
    }

    fn add(&self, counter: &Cell<usize>, amount: usize, limit: usize, excess: Excess) -> bool {
        let total = counter.get().saturating_add(amount);
        counter.set(total);
        if total > limit {
            self.excess.set(Some(excess));
            false
        } else {
            true
        }
    }

    fn memory(&self, bytes: usize) -> bool {
        self.add(&self.memory, bytes, self.budget.max_memory, Excess::Memory)
    }

    /// A string of `len` bytes, about to be allocated.
    pub fn string(&self, len: usize) -> bool {
        self.add(&self.strings, 1, self.budget.max_strings, Excess::Strings)
            && self.memory(string_heap(len))
    }

    /// One more array element.
    fn array_element(&self) -> bool {
        self.add(
            &self.elements,
            1,
            self.budget.max_elements,
            Excess::Elements,
        ) && self.memory(ARRAY_SLOT)
    }

    /// One more entry in an object that has `len` so far.
    pub fn object_entry(&self, len: usize) -> bool {
        let first_node = if len == 0 { OBJECT_NODE } else { 0 };
        self.add(
            &self.elements,
            1,
            self.budget.max_elements,
            Excess::Elements,
        ) && self.memory(OBJECT_ENTRY + first_node)
    }

    fn enter(&self) -> bool {
        self.add(&self.depth, 1, self.budget.max_depth, Excess::Depth)
    }

    fn leave(&self) {
        self.depth.set(self.depth.get() - 1);
    }
}

/// Parses one JSON document into a [`Value`], charging `meter` as it goes.
/// Accepts exactly what `serde_json::from_slice::<Value>` accepts, and builds
/// the same value, as long as the budget holds.
pub fn parse_json(body: &[u8], meter: &Meter) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Charged(meter).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The error every visitor returns on an excess; the caller asks the meter
/// which limit it was (serde_json would add a position to any message).
fn over<E: serde::de::Error>() -> E {
    E::custom("over budget")
}

/// A value, charged to the meter before anything of it is allocated.
#[derive(Clone, Copy)]
struct Charged<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for Charged<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Charged<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        if !self.0.string(v.len()) {
            return Err(over());
        }
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.visit_str(&v)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if !self.0.enter() {
            return Err(over());
        }
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Element(self.0))? {
            items.push(item);
        }
        self.0.leave();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if !self.0.enter() {
            return Err(over());
        }
        let mut fields = Map::new();
        while let Some(key) = map.next_key_seed(ChargedKey(self.0))? {
            if !self.0.object_entry(fields.len()) {
                return Err(over());
            }
            let value = map.next_value_seed(self)?;
            // A repeated key replaces the earlier value, as in serde_json.
            fields.insert(key, value);
        }
        self.0.leave();
        Ok(Value::Object(fields))
    }
}

/// An array element: its slot is charged before the element is parsed.
struct Element<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for Element<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if !self.0.array_element() {
            return Err(over());
        }
        Charged(self.0).deserialize(deserializer)
    }
}

/// An object key, charged as a string.
struct ChargedKey<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for ChargedKey<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for ChargedKey<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        if !self.0.string(v.len()) {
            return Err(over());
        }
        Ok(v.to_owned())
    }
}

/// Parses `a=1&b=2` (form bodies, query strings) pair by pair, charging each
/// before it is decoded into owned strings. A repeated name keeps its last
/// value.
pub fn parse_pairs(input: &[u8], meter: &Meter) -> Result<Map<String, Value>, Excess> {
    let mut fields = Map::new();
    for (key, value) in form_urlencoded::parse(input) {
        let charged = meter.object_entry(fields.len())
            && meter.string(key.len())
            && meter.string(value.len());
        if !charged {
            return Err(meter.excess().unwrap_or(Excess::Elements));
        }
        fields.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tight(f: impl FnOnce(&mut Budget)) -> Meter {
        let mut budget = Budget::DEFAULT;
        f(&mut budget);
        Meter::new(budget)
    }

    fn refused(body: &str, meter: &Meter) -> Option<Excess> {
        assert!(parse_json(body.as_bytes(), meter).is_err(), "{body}");
        meter.excess()
    }

    #[test]
    fn each_limit_stops_the_parse() {
        let strings = tight(|b| b.max_strings = 3);
        assert_eq!(
            refused(r#"{"a":["b","c","d"]}"#, &strings),
            Some(Excess::Strings)
        );
        let elements = tight(|b| b.max_elements = 3);
        assert_eq!(refused("[0,0,0,0]", &elements), Some(Excess::Elements));
        let depth = tight(|b| b.max_depth = 2);
        assert_eq!(refused("[[[]]]", &depth), Some(Excess::Depth));
        let memory = tight(|b| b.max_memory = 1000);
        assert_eq!(
            refused(&format!("[\"{}\"]", "x".repeat(1000)), &memory),
            Some(Excess::Memory)
        );
    }

    #[test]
    fn exactly_at_the_limits_is_accepted() {
        let meter = tight(|b| {
            b.max_strings = 3;
            b.max_elements = 3;
            b.max_depth = 2;
        });
        let value = parse_json(br#"{"a":["b","c"]}"#, &meter).unwrap();
        assert_eq!(value, serde_json::json!({"a": ["b", "c"]}));
        assert_eq!(meter.excess(), None);
    }

    #[test]
    fn same_value_as_serde_json() {
        for body in [
            r#"{"a":1,"a":2,"b":[1.5,-3,null,true,"\u00e9\n"],"c":{"d":{}}}"#,
            "null",
            "[]",
            r#""x""#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e400",
        ] {
            let plain = serde_json::from_slice::<Value>(body.as_bytes());
            let charged = parse_json(body.as_bytes(), &Meter::new(Budget::DEFAULT));
            match (plain, charged) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{body}"),
                (a, b) => panic!("{body}: {a:?} vs {b:?}"),
            }
        }
        for bad in ["{", "[1,]", r#"{"a" 1}"#, "1 2", r#"{1:2}"#] {
            let plain = serde_json::from_slice::<Value>(bad.as_bytes()).unwrap_err();
            let charged = parse_json(bad.as_bytes(), &Meter::new(Budget::DEFAULT)).unwrap_err();
            assert_eq!(plain.to_string(), charged.to_string(), "{bad}");
        }
    }

    #[test]
    fn pairs_are_charged_one_by_one() {
        let meter = tight(|b| b.max_elements = 2);
        assert_eq!(parse_pairs(b"a=&a=&a=", &meter), Err(Excess::Elements));
        let meter = Meter::new(Budget::DEFAULT);
        let fields = parse_pairs(b"a=1&b=x+y%21&a=3", &meter).unwrap();
        assert_eq!(
            Value::Object(fields),
            serde_json::json!({"a": "3", "b": "x y!"})
        );
    }

    #[test]
    fn the_public_budget_is_the_smallest() {
        let public = Budget::PUBLIC.min(Budget::DEFAULT);
        assert_eq!(public, Budget::PUBLIC);
        assert!(public.max_bytes < Budget::DEFAULT.max_bytes);
    }
}
