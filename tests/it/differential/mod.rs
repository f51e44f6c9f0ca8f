//! Differential test: transitd against a real OpenBao 2.7.2.
//!
//! One `#[test]` starts the transitd binary of this package and a throw-away
//! `bao server -dev` (transit mounted at `transit/`), each on a free loopback
//! port, and sends both the SAME scripted sequence of HTTP requests (see
//! `script`). Every exchange is compared:
//!
//! * the status code;
//! * the JSON body, after normalising what cannot be equal between two servers
//!   holding different keys: request ids (UUID-shaped), creation times (RFC
//!   3339 / unix seconds), ciphertexts, HMACs and signatures (`vault:vN:` prefix
//!   kept, payload reduced to its encoding and byte length, DER ECDSA signatures
//!   to their structure), public keys and other random material (format and
//!   length). Everything else — field names, value types, error messages,
//!   warnings, batch shapes, key versions, flags — must be equal.
//!
//! Relations that only hold inside one server (a ciphertext decrypts to its
//! plaintext, convergent encryption is deterministic, …) are checked by
//! `Script::check`, which computes a value per server and compares those.
//!
//! Differences that transitd makes on purpose are listed in `DELIBERATE`, with
//! the reason; known incompatibilities that are bugs to fix are listed in
//! `KNOWN_INCOMPATIBILITIES`. For a listed exchange each server must show the
//! listed behaviour; an entry that is no longer observed (or never exercised)
//! fails the test, so both tables stay true. Everything else must match.
//!
//! The test prints a compact report to stderr (always, not only on failure) and
//! fails listing every mismatch with both requests' answers.
//!
//! Layout: `harness` runs each step against both servers, compares and
//! reports; `normalise` makes two servers' bodies comparable; `deviations`
//! holds the two tables; the script itself is one module per area (`keys`,
//! `crypt`, `batch`, `hmac_sign`, `export_backup`, `byok`, `sys`, `barrier`, `wrapping`, `login_jwt`,
//! `login_kubernetes`), run in the order of
//! `script` below (later areas use keys the earlier ones made).
//!
//! Both servers are `transitd_test_support::DevServer`s. The bao binary is
//! `$BAO_BIN`, else `<workspace>/.venv/bin/bao` (installed by
//! `scripts/test-all.sh`). Without it the test FAILS; it never passes silently.

mod deviations;
mod harness;
mod normalise;

mod barrier;
mod batch;
mod byok;
mod crypt;
mod export_backup;
mod hmac_sign;
mod keys;
mod login_cert;
mod login_jwt;
mod login_kubernetes;
mod sys;
mod wrapping;

use barrier::barrier;
use batch::{batch, datakey};
use byok::byok;
use crypt::crypt;
use export_backup::{backup, export};
use harness::{Script, openbao, transitd};
use hmac_sign::{hmac, sign};
use keys::{config, keys, soft_delete};
use login_cert::login_cert;
use login_jwt::login_jwt;
use login_kubernetes::login_kubernetes;
use sys::{http, random_and_hash, sys};
use wrapping::wrapping;

/// Index of each server in `Script::servers` and `Script::vars`.
const TRANSITD: usize = 0;
const OPENBAO: usize = 1;

#[test]
fn transitd_answers_like_openbao() {
    let openbao = openbao();
    let transitd = transitd();
    let mut s = Script::new(&transitd, &openbao);
    script(&mut s);
    let failures = s.report();
    assert!(
        failures.is_empty(),
        "{} differences between transitd and OpenBao 2.7.2:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Every key type, with the name it gets in the script.
pub(super) const KEY_TYPES: &[&str] = &[
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "xchacha20-poly1305",
    "hmac",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "rsa-2048",
    "mldsa-65",
];
pub(super) const AEAD_TYPES: &[&str] = &[
    "aes128-gcm96",
    "aes256-gcm96",
    "chacha20-poly1305",
    "xchacha20-poly1305",
];
pub(super) const SIGNING_TYPES: &[&str] = &[
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "rsa-2048",
    "mldsa-65",
];

pub(super) fn key(t: &str) -> String {
    format!("t-{t}")
}

pub(super) const HASHES: &[&str] = &[
    "sha2-224", "sha2-256", "sha2-384", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512",
];

fn script(s: &mut Script<'_>) {
    keys(s);
    soft_delete(s);
    crypt(s);
    batch(s);
    datakey(s);
    hmac(s);
    sign(s);
    export(s);
    backup(s);
    byok(s);
    random_and_hash(s);
    config(s);
    http(s);
    sys(s);
    barrier(s);
    wrapping(s);
    login_jwt(s);
    login_kubernetes(s);
    login_cert(s);
}
