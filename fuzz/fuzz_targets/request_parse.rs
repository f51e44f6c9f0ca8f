//! The budgeted request parser (`transitd::request`): JSON bodies, form
//! bodies and query strings, under a small budget chosen by the first bytes.
//!
//! It must never panic; what it accepts must be exactly what plain
//! `serde_json` / `serde_urlencoded` parse, and must fit the budget (counted
//! here independently, on the input: a repeated key counts); what it refuses
//! for the budget must really exceed it.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use transitd::request::{Budget, Excess, Meter, parse_json, parse_pairs};

/// Strings, elements (array items + object entries, repeated keys
/// included) and nesting of a JSON input, counted by a visitor of its own
/// that allocates nothing: the oracle for what the budget must charge.
#[derive(Default, Debug, Clone, Copy)]
struct Shape {
    strings: usize,
    elements: usize,
    nesting: usize,
    /// A key serde_json's own `Value` treats as a marker (with its
    /// `raw_value` feature, which axum turns on: the string value is parsed
    /// again as the body). Ours keeps it as a plain key, so plain serde_json
    /// is no oracle for such inputs.
    magic_key: bool,
}

/// serde_json's marker keys start with this.
const MAGIC: &str = "$serde_json::private::";

struct Count<'a>(&'a Cell<Shape>, usize);

impl Count<'_> {
    fn bump(&self, f: impl FnOnce(&mut Shape)) {
        let mut s = self.0.get();
        f(&mut s);
        self.0.set(s);
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.bump(|s| s.strings += 1);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.1 + 1;
        self.bump(|s| s.nesting = s.nesting.max(depth));
        while seq.next_element_seed(Count(self.0, depth))?.is_some() {
            self.bump(|s| s.elements += 1);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let depth = self.1 + 1;
        self.bump(|s| s.nesting = s.nesting.max(depth));
        while map.next_key_seed(Key(self.0))?.is_some() {
            self.bump(|s| {
                s.elements += 1;
                s.strings += 1;
            });
            map.next_value_seed(Count(self.0, depth))?;
        }
        Ok(())
    }
}

/// A key: counted by the caller, checked for serde_json's markers here.
struct Key<'a>(&'a Cell<Shape>);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<(), E> {
        if key.starts_with(MAGIC) {
            let mut s = self.0.get();
            s.magic_key = true;
            self.0.set(s);
        }
        Ok(())
    }
}

/// The shape of the input, as far as it is valid JSON.
fn measure(body: &[u8]) -> Shape {
    let shape = Cell::new(Shape::default());
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Count(&shape, 0).deserialize(&mut de);
    shape.get()
}

fn within(s: Shape, budget: Budget) {
    assert!(s.strings <= budget.max_strings, "{s:?} over {budget:?}");
    assert!(s.elements <= budget.max_elements, "{s:?} over {budget:?}");
    assert!(s.nesting <= budget.max_depth, "{s:?} over {budget:?}");
}

fn budget(control: &[u8; 4]) -> Budget {
    Budget {
        max_bytes: usize::MAX,
        max_memory: 256 + usize::from(control[0]) * 64,
        max_strings: usize::from(control[1] % 32),
        max_elements: usize::from(control[2] % 32),
        max_depth: usize::from(control[3] % 8),
    }
}

fn check_json(body: &[u8], budget: Budget) {
    let meter = Meter::new(budget);
    let ours = parse_json(body, &meter);
    let s = measure(body);
    if s.magic_key {
        // No oracle (see `Shape::magic_key`): what is accepted still fits.
        if ours.is_ok() {
            within(s, budget);
        }
        return;
    }
    let plain = serde_json::from_slice::<Value>(body);
    match (&ours, &plain) {
        (Ok(value), Ok(expected)) => {
            assert_eq!(value, expected, "accepted, but not what serde_json parses");
            assert_eq!(meter.excess(), None);
            within(s, budget);
        }
        (Err(_), Ok(_)) => {
            let excess = meter
                .excess()
                .expect("refused valid JSON without an excess");
            match excess {
                Excess::Strings => assert!(s.strings > budget.max_strings),
                Excess::Elements => assert!(s.elements > budget.max_elements),
                Excess::Depth => assert!(s.nesting > budget.max_depth),
                Excess::Memory => {}
            }
        }
        (Ok(_), Err(e)) => panic!("accepted what serde_json refuses: {e}"),
        (Err(a), Err(b)) => {
            // A syntax error reported at the same place, unless the budget
            // stopped the parse first.
            if meter.excess().is_none() {
                assert_eq!(a.to_string(), b.to_string());
            }
        }
    }
}

fn check_pairs(input: &[u8], budget: Budget) {
    let meter = Meter::new(budget);
    let plain: Vec<(String, String)> =
        serde_urlencoded::from_bytes(input).expect("form pairs always decode");
    match parse_pairs(input, &meter) {
        Ok(fields) => {
            let expected: serde_json::Map<String, Value> = plain
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            assert_eq!(fields, expected);
            assert!(plain.len() <= budget.max_elements);
            assert!(2 * plain.len() <= budget.max_strings);
        }
        Err(Excess::Elements) => assert!(plain.len() > budget.max_elements),
        Err(Excess::Strings) => assert!(2 * plain.len() > budget.max_strings),
        Err(Excess::Memory) => {}
        Err(Excess::Depth) => panic!("pairs have no depth"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((control, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Some((mode, body)) = rest.split_first() else {
        return;
    };
    let budget = budget(control);
    match mode % 2 {
        0 => check_json(body, budget),
        _ => check_pairs(body, budget),
    }
    // The same input under the default budget: never a panic.
    let _ = parse_json(body, &Meter::new(Budget::DEFAULT));
});
