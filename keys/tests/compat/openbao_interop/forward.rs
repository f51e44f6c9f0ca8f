//! One variant, forward: transit-keys makes the keyring and its output, OpenBao
//! restores the backup, reads the key, decrypts and verifies, and refuses
//! tampered input; then `reverse` runs.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use transit_keys::{CreateOptions, CryptoParams, HashAlgorithm, KeyType, Keyring};
use transitd_test_support::{Client, b64};

use super::cases::{Ct, SigCase, Variant, aads_of, contexts_of, plaintexts, sig_cases};
use super::reverse::{known_gap, reverse};
use super::{
    CONTEXTS, Data as _, HMAC_INPUTS, OTHER_AAD, SIGN_INPUT, TAMPERED_INPUT, Tally, field, show,
    valid,
};

pub(super) fn run_variant(bao: &Client, v: &Variant) -> Tally {
    let mut tally = Tally::default();
    let label = v.label.as_str();
    let t = v.key_type;
    let name = format!("interop-{label}");
    let now = OffsetDateTime::now_utc();
    let opts = CreateOptions {
        derived: v.derived,
        convergent_encryption: v.convergent,
        exportable: true,
        allow_plaintext_backup: true,
        key_size: if t == KeyType::Hmac { 64 } else { 0 },
        ..CreateOptions::default()
    };
    let mut ring = match Keyring::create(&name, t, &opts, now) {
        Ok(r) => r,
        Err(e) => {
            tally
                .failures
                .push(format!("[{label}] transit-keys create: {e}"));
            return tally;
        }
    };
    if let Err(e) = ring.rotate(now) {
        tally
            .failures
            .push(format!("[{label}] transit-keys rotate: {e}"));
        return tally;
    }
    let contexts = contexts_of(v);

    // ---- transitd output ---------------------------------------------------
    let mut cts = Vec::new();
    if t.supports_encryption() {
        for version in [1, 0] {
            for pt in plaintexts(t) {
                for &context in &contexts {
                    for aad in aads_of(t) {
                        let params = CryptoParams {
                            context,
                            associated_data: aad,
                            key_version: version,
                        };
                        let mut ct = Ct {
                            text: String::new(),
                            plaintext: pt.clone(),
                            context,
                            aad,
                            version: if version == 0 { 2 } else { version },
                        };
                        match ring.encrypt(&pt, &params) {
                            Ok(sealed) => {
                                ct.text = sealed.text;
                                cts.push(ct);
                            }
                            Err(e) => tally.failures.push(format!(
                                "[{label}] transit-keys encrypt {}: {e}",
                                ct.describe()
                            )),
                        }
                    }
                }
            }
        }
    }

    let mut hmacs = Vec::new();
    for alg in HashAlgorithm::ALL {
        for version in [1i64, 2] {
            for input in HMAC_INPUTS {
                match ring.hmac(input, alg, version) {
                    Ok(sealed) => hmacs.push((alg, version, input, sealed.text)),
                    Err(e) => tally.failures.push(format!(
                        "[{label}] transit-keys hmac {} v{version} input={}: {e}",
                        alg.name(),
                        show(input)
                    )),
                }
            }
        }
    }

    let mut sigs = Vec::new();
    if t.supports_signing() {
        for case in sig_cases(t) {
            let opts = match case.options() {
                Ok(o) => o,
                Err(e) => {
                    tally
                        .failures
                        .push(format!("[{label}] sign {}: {e}", case.label()));
                    continue;
                }
            };
            for version in [1i64, 2] {
                for &context in &contexts {
                    let input = case.input(SIGN_INPUT);
                    match ring.sign(&input, context, version, &opts) {
                        Ok(sig) => sigs.push((case, version, context, input, sig)),
                        Err(e) if known_gap(t, &e) => tally.gap(format!(
                            "[{label}] transit-keys refuses to sign with {} (OpenBao accepts it): {e}",
                            case.label()
                        )),
                        Err(e) => tally.failures.push(format!(
                            "[{label}] transit-keys sign {} v{version} context={:?}: {e}",
                            case.label(),
                            context.map(show)
                        )),
                    }
                }
            }
        }
    }

    // ---- backup → OpenBao restore -----------------------------------------
    ring.mark_backed_up(now);
    // transitd's own fields (a limit, counts) ride along: OpenBao ignores them.
    if t.supports_encryption() {
        let limit = transit_keys::ConfigChange {
            max_encryptions_per_version: Some(1000),
            ..Default::default()
        };
        if let Err(e) = ring.configure(&limit) {
            tally.failures.push(format!("[{label}] limit: {e}"));
        }
    }
    let counts = std::collections::BTreeMap::from([(1, 17), (2, 5)]);
    let blob = match transit_keys::backup::backup_counted(&ring, &counts) {
        Ok(b) => b,
        Err(e) => {
            tally
                .failures
                .push(format!("[{label}] transit-keys backup: {e}"));
            return tally;
        }
    };
    let restore_path = format!("transit/restore/{name}");
    let restored = match bao.write(&restore_path, json!({"backup": &*blob})) {
        Ok(r) if r.status == 204 => Ok(()),
        Ok(r) => Err(format!(
            "OpenBao answered POST {restore_path} with HTTP {} (expected 204): {}",
            r.status, r.body
        )),
        Err(e) => Err(e),
    };
    let restore_failed = restored.is_err();
    tally.check(
        "restore",
        label,
        "restore transit-keys backup into OpenBao",
        restored,
    );
    if restore_failed {
        return tally;
    }

    // ---- OpenBao's key read vs the keyring ---------------------------------
    let read = bao.data("GET", &format!("transit/keys/{name}"), None);
    tally.check(
        "key read",
        label,
        "key read after restore",
        read.and_then(|d| compare_read(&ring, v, &d, None)),
    );
    if v.derived && t.supports_signing() {
        for ctx in CONTEXTS {
            let q = b64(ctx)
                .replace('=', "%3D")
                .replace('+', "%2B")
                .replace('/', "%2F");
            let read = bao.data("GET", &format!("transit/keys/{name}?context={q}"), None);
            tally.check(
                "key read",
                label,
                &format!("key read with context={}", show(ctx)),
                read.and_then(|d| compare_read(&ring, v, &d, Some(ctx))),
            );
        }
    }

    // ---- OpenBao decrypts / verifies transitd output -----------------------
    let decrypt_path = format!("transit/decrypt/{name}");
    for ct in &cts {
        let r = bao.post(&decrypt_path, &ct.body(&ct.text)).and_then(|d| {
            let got = STANDARD
                .decode(field(&d, "plaintext")?)
                .map_err(|e| format!("plaintext is not base64: {e}"))?;
            if got == ct.plaintext {
                Ok(())
            } else {
                Err(format!(
                    "OpenBao decrypted to {} instead of {}",
                    show(&got),
                    show(&ct.plaintext)
                ))
            }
        });
        tally.check(
            "decrypt",
            label,
            &format!(
                "OpenBao decrypt of transitd ciphertext {} ({})",
                ct.describe(),
                ct.text
            ),
            r,
        );
    }
    // Tampering must be caught: wrong or missing AAD, a flipped byte.
    for ct in cts.iter().filter(|c| !c.plaintext.is_empty()).take(4) {
        let mut bad = Vec::new();
        if let Some(_aad) = ct.aad {
            let mut body = ct.body(&ct.text);
            if let Some(m) = body.as_object_mut() {
                m.remove("associated_data");
            }
            bad.push(("without its associated_data", body.clone()));
            if let Some(m) = body.as_object_mut() {
                m.insert("associated_data".to_owned(), json!(b64(OTHER_AAD)));
            }
            bad.push(("with other associated_data", body));
        }
        bad.push(("with a flipped payload byte", ct.body(&flip_last(&ct.text))));
        for (how, body) in bad {
            let r = match bao.write(&decrypt_path, body) {
                Ok(r) if r.status >= 400 => Ok(()),
                Ok(r) => Err(format!(
                    "expected a refusal, got HTTP {}: {}",
                    r.status, r.body
                )),
                Err(e) => Err(e),
            };
            tally.check(
                "reject",
                label,
                &format!("OpenBao must refuse {} {how}", ct.describe()),
                r,
            );
        }
    }

    for (alg, version, input, mac) in &hmacs {
        let path = format!("transit/verify/{name}/{}", alg.name());
        let what = format!(
            "OpenBao verify of transitd HMAC {} v{version} input={} ({mac})",
            alg.name(),
            show(input)
        );
        let r = bao
            .post(&path, &json!({"input": b64(input), "hmac": mac}))
            .and_then(|d| {
                if valid(&d)? {
                    Ok(())
                } else {
                    Err(format!("valid=false: {d}"))
                }
            });
        tally.check("hmac", label, &what, r);
    }
    if let Some((alg, _, _, mac)) = hmacs.iter().find(|h| h.1 == 2) {
        let path = format!("transit/verify/{name}/{}", alg.name());
        let r = bao
            .post(&path, &json!({"input": b64(TAMPERED_INPUT), "hmac": mac}))
            .and_then(|d| {
                if valid(&d)? {
                    Err(format!("valid=true: {d}"))
                } else {
                    Ok(())
                }
            });
        tally.check(
            "reject",
            label,
            "OpenBao must answer valid=false for an HMAC of another input",
            r,
        );
    }

    let verify_path = format!("transit/verify/{name}");
    for (case, version, context, input, sig) in &sigs {
        let what = format!(
            "OpenBao verify of transitd signature {} v{version}{} ({})",
            case.label(),
            context
                .map(|c| format!(" context={}", show(c)))
                .unwrap_or_default(),
            sig.text
        );
        let r = bao
            .post(
                &verify_path,
                &sig_body(case, input, *context, "signature", &sig.text),
            )
            .and_then(|d| {
                if valid(&d)? {
                    Ok(())
                } else {
                    Err(format!("valid=false: {d}"))
                }
            });
        tally.check("verify", label, &what, r);
    }
    if let Some((case, _, context, _, sig)) = sigs.iter().find(|s| !s.0.prehashed) {
        let r = bao
            .post(
                &verify_path,
                &sig_body(case, TAMPERED_INPUT, *context, "signature", &sig.text),
            )
            .and_then(|d| {
                if valid(&d)? {
                    Err(format!("valid=true: {d}"))
                } else {
                    Ok(())
                }
            });
        tally.check(
            "reject",
            label,
            "OpenBao must answer valid=false for a signature of another input",
            r,
        );
    }

    // ---- the other way: OpenBao output, transitd checks --------------------
    reverse(bao, v, &ring, &name, &cts, &hmacs, &sigs, &mut tally);
    tally
}

fn flip_last(text: &str) -> String {
    // Flip one bit of the last payload byte (re-encode through base64).
    let (prefix, body) = text.rsplit_once(':').unwrap_or(("", text));
    match STANDARD.decode(body) {
        Ok(mut raw) if !raw.is_empty() => {
            let n = raw.len() - 1;
            raw[n] ^= 1;
            format!("{prefix}:{}", STANDARD.encode(raw))
        }
        _ => text.to_owned(),
    }
}

pub(super) fn sig_body(
    case: &SigCase,
    input: &[u8],
    context: Option<&[u8]>,
    key: &str,
    value: &str,
) -> Value {
    let mut m = Map::new();
    m.insert("input".to_owned(), json!(b64(input)));
    if !key.is_empty() {
        m.insert(key.to_owned(), json!(value));
    }
    if let Some(c) = context {
        m.insert("context".to_owned(), json!(b64(c)));
    }
    case.add_to(&mut m);
    Value::Object(m)
}

fn normalize(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn compare_read(
    ring: &Keyring,
    v: &Variant,
    d: &Value,
    context: Option<&[u8]>,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut expect = |what: &str, got: Option<&Value>, want: Value| {
        if got != Some(&want) {
            problems.push(format!("{what}: OpenBao {got:?}, transitd {want}"));
        }
    };
    expect("type", d.get("type"), json!(v.key_type.name()));
    expect(
        "latest_version",
        d.get("latest_version"),
        json!(ring.latest_version()),
    );
    expect(
        "min_decryption_version",
        d.get("min_decryption_version"),
        json!(ring.min_decryption_version()),
    );
    expect(
        "min_encryption_version",
        d.get("min_encryption_version"),
        json!(ring.min_encryption_version()),
    );
    expect("derived", d.get("derived"), json!(v.derived));
    expect("exportable", d.get("exportable"), json!(true));
    expect(
        "allow_plaintext_backup",
        d.get("allow_plaintext_backup"),
        json!(true),
    );
    expect(
        "supports_encryption",
        d.get("supports_encryption"),
        json!(v.key_type.supports_encryption()),
    );
    expect(
        "supports_signing",
        d.get("supports_signing"),
        json!(v.key_type.supports_signing()),
    );
    expect(
        "supports_derivation",
        d.get("supports_derivation"),
        json!(v.key_type.supports_derivation()),
    );
    if v.derived {
        expect("kdf", d.get("kdf"), json!("hkdf_sha256"));
        expect(
            "convergent_encryption",
            d.get("convergent_encryption"),
            json!(v.convergent),
        );
    }
    if v.key_type == KeyType::Hmac {
        expect("key_size", d.get("key_size"), json!(64));
    }
    if let Some(stamp) = ring.backup_info() {
        expect(
            "backup_info.version",
            d.pointer("/backup_info/version"),
            json!(stamp.version),
        );
    }
    if v.key_type.supports_signing() {
        match ring.version_infos(context) {
            Ok(infos) => {
                for info in infos {
                    let got = d
                        .pointer(&format!("/keys/{}/public_key", info.number))
                        .and_then(Value::as_str);
                    let want = info.public_key.unwrap_or_default();
                    if got.map(normalize) != Some(normalize(&want)) {
                        problems.push(format!(
                            "public key of v{}: OpenBao {got:?}, transitd {want:?}",
                            info.number
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("transit-keys version_infos: {e}")),
        }
    } else if v.key_type != KeyType::Hmac {
        for n in 1..=ring.latest_version() {
            if d.pointer(&format!("/keys/{n}")).is_none() {
                problems.push(format!("OpenBao lists no version {n}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}; read: {d}", problems.join("; ")))
    }
}
