//! The budgeted request parser (`transitd::request`): JSON bodies, form
//! bodies and query strings, under a small budget chosen by the first bytes.
//!
//! It must never panic; what it accepts must be exactly what plain
//! `serde_json` / `serde_urlencoded` parse, and must fit the budget (counted
//! here independently); what it refuses for the budget must really exceed it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use transitd::request::{Budget, Excess, Meter, parse_json, parse_pairs};

/// Strings, elements (array items + object entries) and nesting of a value.
#[derive(Default, Debug)]
struct Shape {
    strings: usize,
    elements: usize,
    nesting: usize,
}

fn shape(value: &Value, out: &mut Shape) -> usize {
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::String(_) => {
            out.strings += 1;
            return 0;
        }
        Value::Array(items) => {
            out.elements += items.len();
            Box::new(items.iter())
        }
        Value::Object(fields) => {
            out.elements += fields.len();
            out.strings += fields.len();
            Box::new(fields.values())
        }
        _ => return 0,
    };
    let deepest = children.map(|c| shape(c, out)).max().unwrap_or(0);
    1 + deepest
}

fn measure(value: &Value) -> Shape {
    let mut s = Shape::default();
    s.nesting = shape(value, &mut s);
    s
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
    let plain = serde_json::from_slice::<Value>(body);
    match (&ours, &plain) {
        (Ok(value), Ok(expected)) => {
            assert_eq!(value, expected, "accepted, but not what serde_json parses");
            assert_eq!(meter.excess(), None);
            let s = measure(value);
            assert!(s.strings <= budget.max_strings, "{s:?} over {budget:?}");
            assert!(s.elements <= budget.max_elements, "{s:?} over {budget:?}");
            assert!(s.nesting <= budget.max_depth, "{s:?} over {budget:?}");
        }
        (Err(_), Ok(expected)) => {
            let excess = meter.excess().expect("refused valid JSON without an excess");
            let s = measure(expected);
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
