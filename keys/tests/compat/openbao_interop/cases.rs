//! What each variant covers: the variants (key type, derived, convergent), the
//! signature option sets, the plaintexts, contexts and associated data, and a
//! recorded ciphertext.

use serde_json::{Map, Value, json};
use transit_keys::sign::SignOptions;
use transit_keys::{HashAlgorithm, KeyType};
use transitd_test_support::b64;

use super::{AAD, CONTEXTS, PT_HELLO, pt_long, show};

pub(super) struct Variant {
    pub(super) label: String,
    pub(super) key_type: KeyType,
    pub(super) derived: bool,
    pub(super) convergent: bool,
}

pub(super) fn variants() -> Vec<Variant> {
    let mut out: Vec<Variant> = KeyType::ALL
        .into_iter()
        .map(|t| Variant {
            label: t.name().to_owned(),
            key_type: t,
            derived: false,
            convergent: false,
        })
        .collect();
    for t in KeyType::ALL.into_iter().filter(|t| t.supports_derivation()) {
        out.push(Variant {
            label: format!("{}-derived", t.name()),
            key_type: t,
            derived: true,
            convergent: false,
        });
    }
    for t in KeyType::ALL.into_iter().filter(|t| t.supports_convergent()) {
        out.push(Variant {
            label: format!("{}-convergent", t.name()),
            key_type: t,
            derived: true,
            convergent: true,
        });
    }
    out
}

/// Sign/verify options, as their transit strings ("" = not sent, server default).
#[derive(Clone, Copy)]
pub(super) struct SigCase {
    pub(super) hash: &'static str,
    pub(super) prehashed: bool,
    pub(super) algorithm: &'static str,
    pub(super) salt: &'static str,
    pub(super) marshaling: &'static str,
}

const fn sc(hash: &'static str, algorithm: &'static str, marshaling: &'static str) -> SigCase {
    SigCase {
        hash,
        prehashed: false,
        algorithm,
        salt: "",
        marshaling,
    }
}

impl SigCase {
    fn prehashed(mut self) -> Self {
        self.prehashed = true;
        self
    }

    fn salt(mut self, salt: &'static str) -> Self {
        self.salt = salt;
        self
    }

    pub(super) fn label(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("hash_algorithm", self.hash),
            ("signature_algorithm", self.algorithm),
            ("salt_length", self.salt),
            ("marshaling_algorithm", self.marshaling),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={v}"));
            }
        }
        if self.prehashed {
            parts.push("prehashed".to_owned());
        }
        if parts.is_empty() {
            "defaults".to_owned()
        } else {
            parts.join(" ")
        }
    }

    pub(super) fn options(&self) -> Result<SignOptions, String> {
        SignOptions::parse(
            self.hash,
            self.prehashed,
            self.algorithm,
            self.salt,
            self.marshaling,
        )
        .map_err(|e| format!("transit-keys refuses the options: {e}"))
    }

    /// The input sent for `message`: the message, or its digest when prehashed.
    pub(super) fn input(&self, message: &[u8]) -> Vec<u8> {
        if !self.prehashed {
            return message.to_vec();
        }
        let alg = match self.hash {
            "" | "none" => HashAlgorithm::Sha2_256,
            name => name.parse().unwrap_or(HashAlgorithm::Sha2_256),
        };
        alg.digest(message)
    }

    pub(super) fn add_to(&self, body: &mut Map<String, Value>) {
        for (k, v) in [
            ("hash_algorithm", self.hash),
            ("signature_algorithm", self.algorithm),
            ("salt_length", self.salt),
            ("marshaling_algorithm", self.marshaling),
        ] {
            if !v.is_empty() {
                body.insert(k.to_owned(), json!(v));
            }
        }
        if self.prehashed {
            body.insert("prehashed".to_owned(), json!(true));
        }
    }

    /// Whether two signatures of the same input and key must be identical.
    pub(super) fn deterministic(&self, t: KeyType) -> bool {
        t == KeyType::Ed25519 || (t.is_rsa() && self.algorithm == "pkcs1v15")
    }
}

pub(super) fn sig_cases(t: KeyType) -> Vec<SigCase> {
    if t.curve().is_some() {
        vec![
            sc("", "", ""),
            sc("", "", "jws"),
            sc("sha2-512", "", ""),
            sc("sha2-512", "", "jws"),
            sc("sha2-384", "", ""),
            sc("sha2-224", "", ""),
            sc("sha1", "", ""),
            sc("sha3-256", "", ""),
            sc("sha3-512", "", "jws"),
            sc("sha2-256", "", "").prehashed(),
            sc("sha2-512", "", "jws").prehashed(),
        ]
    } else if t.is_rsa() {
        vec![
            sc("", "", ""),
            sc("sha2-256", "pss", ""),
            sc("sha2-256", "pkcs1v15", ""),
            sc("sha2-512", "pss", ""),
            sc("sha2-512", "pkcs1v15", ""),
            sc("sha1", "pkcs1v15", ""),
            sc("sha3-256", "pss", ""),
            sc("sha2-384", "pss", "").salt("hash"),
            sc("sha2-256", "pss", "").salt("20"),
            sc("sha2-256", "pss", "jws"),
            sc("sha2-256", "pss", "").prehashed(),
            sc("sha2-256", "pkcs1v15", "").prehashed(),
            sc("none", "pkcs1v15", "").prehashed(),
        ]
    } else {
        // Ed25519 and ML-DSA ignore the hash; jws only changes the encoding.
        vec![sc("", "", ""), sc("", "", "jws"), sc("sha2-512", "", "")]
    }
}

pub(super) fn plaintexts(t: KeyType) -> Vec<Vec<u8>> {
    let long = match t.rsa_bits() {
        // OAEP-SHA256 maximum: k - 2*32 - 2 bytes
        Some(bits) => (0..bits / 8 - 66).map(|i| (i % 256) as u8).collect(),
        None => pt_long(),
    };
    vec![Vec::new(), PT_HELLO.to_vec(), long]
}

// ---------------------------------------------------------------------------
// One variant

pub(super) struct Ct {
    pub(super) text: String,
    pub(super) plaintext: Vec<u8>,
    pub(super) context: Option<&'static [u8]>,
    pub(super) aad: Option<&'static [u8]>,
    pub(super) version: i64,
}

impl Ct {
    pub(super) fn describe(&self) -> String {
        let mut s = format!("v{} plaintext={}", self.version, show(&self.plaintext));
        if let Some(c) = self.context {
            s.push_str(&format!(" context={}", show(c)));
        }
        if let Some(a) = self.aad {
            s.push_str(&format!(" associated_data={}", show(a)));
        }
        s
    }

    pub(super) fn body(&self, ciphertext: &str) -> Value {
        let mut m = Map::new();
        m.insert("ciphertext".to_owned(), json!(ciphertext));
        if let Some(c) = self.context {
            m.insert("context".to_owned(), json!(b64(c)));
        }
        if let Some(a) = self.aad {
            m.insert("associated_data".to_owned(), json!(b64(a)));
        }
        Value::Object(m)
    }
}

pub(super) fn contexts_of(v: &Variant) -> Vec<Option<&'static [u8]>> {
    if v.derived {
        CONTEXTS.iter().map(|c| Some(*c)).collect()
    } else {
        vec![None]
    }
}

pub(super) fn aads_of(t: KeyType) -> Vec<Option<&'static [u8]>> {
    if t.is_aead() {
        vec![None, Some(AAD)]
    } else {
        vec![None]
    }
}
