//! transitd → OpenBao interoperability, against a real OpenBao.
//!
//! One `#[test]` starts a throw-away `bao server -dev` on a free loopback port
//! (the way `keys/tests/data/record_vectors.py` does), mounts `transit/`, and then,
//! for every key type of `KeyType::ALL` plus the derived / convergent / derived
//! Ed25519 variants:
//!
//! 1. creates a keyring with `transit-keys` (exportable, plaintext backup allowed,
//!    64-byte HMAC keys) and rotates it once (versions 1 and 2);
//! 2. produces ciphertexts (with and without associated data, per context),
//!    HMACs (every algorithm) and signatures (a spread of options) with
//!    `transit-keys`, from both versions;
//! 3. restores `transit_keys::backup::backup(&ring)` into OpenBao
//!    (`POST restore/:name`, expecting 204) and compares OpenBao's key read with
//!    the keyring (type, versions, flags, public keys);
//! 4. has OpenBao decrypt every ciphertext, verify every HMAC and every
//!    signature, and reject a few tampered ones (so the checks cannot pass
//!    vacuously);
//! 5. the other way round as a sanity check: OpenBao encrypts, HMACs and signs,
//!    `transit-keys` decrypts and verifies (and where the output is
//!    deterministic — HMAC, Ed25519, RSA PKCS#1 v1.5, convergent encryption
//!    without associated data — the strings must be identical).
//!
//! Every check is recorded; the test prints a per-variant table and fails with
//! every failing case (variant, operation, OpenBao's status and body).
//!
//! The bao binary is `$BAO_BIN`, else `<workspace>/.venv/bin/bao` (see
//! `transitd_test_support::bao_bin`). Without it the test FAILS and says how to
//! install it; it never passes silently.

mod cases;
mod forward;
mod reverse;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use transitd_test_support::{Client, DevServer};

use cases::variants;
use forward::run_variant;

// ---------------------------------------------------------------------------
// Fixed inputs (the same as record_vectors.py)

const PT_HELLO: &[u8] = b"hello world";
const AAD: &[u8] = b"aad-1";
const OTHER_AAD: &[u8] = b"aad-2";
const CONTEXTS: [&[u8]; 2] = [b"ctx-a", b"ctx-b"];
const HMAC_INPUTS: [&[u8]; 2] = [b"", b"hello world"];
const SIGN_INPUT: &[u8] = b"hello world";
const TAMPERED_INPUT: &[u8] = b"hello world!";

fn pt_long() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 256) as u8).collect()
}

fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if bytes.len() <= 32 => format!("{s:?}"),
        _ => format!("<{} bytes>", bytes.len()),
    }
}

// ---------------------------------------------------------------------------
// OpenBao's answers

/// OpenBao's answers as their `data` objects.
trait Data {
    /// A 200 answer's `data`, or a descriptive error with status and body.
    fn data(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String>;

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        self.data("POST", path, Some(body))
    }
}

impl Data for Client {
    fn data(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let reply = self.call(method, path, body.cloned().unwrap_or(Value::Null))?;
        if reply.status != 200 {
            return Err(format!(
                "OpenBao answered {method} {path} with HTTP {}: {}",
                reply.status, reply.body
            ));
        }
        let mut doc = reply.body;
        if !doc.is_object() {
            return Err(format!(
                "{method} {path}: HTTP 200 but not a JSON object: {doc}"
            ));
        }
        if let Some(w) = doc.get("warnings").filter(|w| !w.is_null()) {
            return Err(format!("{method} {path}: unexpected warnings {w} in {doc}"));
        }
        let text = doc.to_string();
        match doc.get_mut("data").map(Value::take) {
            Some(d) if d.is_object() => Ok(d),
            _ => Err(format!(
                "{method} {path}: HTTP 200 without a data object: {text}"
            )),
        }
    }
}

fn field<'a>(data: &'a Value, name: &str) -> Result<&'a str, String> {
    data.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no string field {name:?} in {data}"))
}

fn valid(data: &Value) -> Result<bool, String> {
    data.get("valid")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("no boolean \"valid\" in {data}"))
}

// ---------------------------------------------------------------------------
// Bookkeeping

#[derive(Default)]
struct Tally {
    passed: usize,
    /// passed checks per operation family, for the table
    by_op: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    notes: Vec<String>,
    /// option sets OpenBao supports and transitd deliberately refuses
    gaps: usize,
}

impl Tally {
    fn gap(&mut self, note: String) {
        self.gaps += 1;
        self.notes.push(note);
    }

    fn check(&mut self, family: &'static str, label: &str, what: &str, result: Result<(), String>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                *self.by_op.entry(family).or_default() += 1;
            }
            Err(e) => self.failures.push(format!("[{label}] {what}: {e}")),
        }
    }
}

// ---------------------------------------------------------------------------
// The test

#[test]
fn transitd_output_is_accepted_by_openbao() {
    let server = DevServer::openbao();
    let bao = server.client();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut notes = std::collections::BTreeSet::new();
    let mut total = 0;
    for v in variants() {
        let started = Instant::now();
        let tally = run_variant(bao, &v);
        total += tally.passed;
        let ops: Vec<String> = tally
            .by_op
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        rows.push(format!(
            "{:<30} {:>4} passed {:>4} failed {:>3} refused  {:>5.1}s  ({})",
            v.label,
            tally.passed,
            tally.failures.len(),
            tally.gaps,
            started.elapsed().as_secs_f64(),
            ops.join(", ")
        ));
        if tally.passed == 0 && tally.failures.is_empty() {
            failures.push(format!("[{}] no check ran", v.label));
        }
        failures.extend(tally.failures);
        notes.extend(tally.notes);
    }
    eprintln!(
        "transitd → OpenBao interop, per variant:\n{}",
        rows.join("\n")
    );
    for n in &notes {
        eprintln!("note: {n}");
    }
    // `server` is dropped after the asserts: on failure its guard keeps the server log.
    assert!(
        failures.is_empty(),
        "{} of {} transitd/OpenBao interop checks failed:\n{}\n\nper variant:\n{}",
        failures.len(),
        failures.len() + total,
        failures.join("\n"),
        rows.join("\n")
    );
    assert!(
        total >= 1500,
        "only {total} interop checks ran; expected at least 1500"
    );
}
