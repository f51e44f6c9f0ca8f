//! One variant, the other way round: OpenBao encrypts, HMACs and signs with the
//! restored key, transit-keys decrypts and verifies (identical strings where the
//! output is deterministic); the ML-DSA control experiments.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use transit_keys::{CryptoParams, HashAlgorithm, KeyType, Keyring};
use transitd_test_support::{Client, b64};

use super::cases::{Ct, SigCase, Variant, contexts_of, sig_cases};
use super::forward::sig_body;
use super::{Data as _, SIGN_INPUT, Tally, field, show};

/// One signature transitd made: options, version, context, input, output.
pub(super) type SigRecord = (
    SigCase,
    i64,
    Option<&'static [u8]>,
    Vec<u8>,
    transit_keys::Signature,
);

#[allow(clippy::too_many_arguments)]
pub(super) fn reverse(
    bao: &Client,
    v: &Variant,
    ring: &Keyring,
    name: &str,
    cts: &[Ct],
    hmacs: &[(HashAlgorithm, i64, &[u8], String)],
    sigs: &[SigRecord],
    tally: &mut Tally,
) {
    let label = v.label.as_str();
    let t = v.key_type;

    // Encryption: OpenBao encrypts what transitd encrypted; transitd decrypts.
    for ct in cts {
        let mut m = Map::new();
        m.insert("plaintext".to_owned(), json!(b64(&ct.plaintext)));
        m.insert("key_version".to_owned(), json!(ct.version));
        if let Some(c) = ct.context {
            m.insert("context".to_owned(), json!(b64(c)));
        }
        if let Some(a) = ct.aad {
            m.insert("associated_data".to_owned(), json!(b64(a)));
        }
        let what = format!("transitd decrypt of OpenBao ciphertext {}", ct.describe());
        let theirs = match bao.post(&format!("transit/encrypt/{name}"), &Value::Object(m)) {
            Ok(d) => match field(&d, "ciphertext") {
                Ok(c) => c.to_owned(),
                Err(e) => {
                    tally
                        .failures
                        .push(format!("[{label}] OpenBao encrypt {}: {e}", ct.describe()));
                    continue;
                }
            },
            Err(e) => {
                tally
                    .failures
                    .push(format!("[{label}] OpenBao encrypt {}: {e}", ct.describe()));
                continue;
            }
        };
        let params = CryptoParams {
            context: ct.context,
            associated_data: ct.aad,
            key_version: 0,
        };
        let r = match ring.decrypt(&theirs, &params) {
            Ok(pt) if pt[..] == ct.plaintext[..] => Ok(()),
            Ok(pt) => Err(format!(
                "decrypted to {} instead of {}",
                show(&pt),
                show(&ct.plaintext)
            )),
            Err(e) => Err(format!("{e} (ciphertext {theirs})")),
        };
        tally.check("reverse", label, &what, r);
        if v.convergent {
            let what = format!(
                "convergent ciphertext identical to OpenBao's, {}",
                ct.describe()
            );
            if ct.aad.is_none() {
                let r = if theirs == ct.text {
                    Ok(())
                } else {
                    Err(format!("OpenBao {theirs} vs transitd {}", ct.text))
                };
                tally.check("reverse", label, &what, r);
            } else if theirs == ct.text {
                tally.notes.push(format!(
                    "[{label}] with associated_data the convergent ciphertexts are identical, \
                     although transitd binds AAD into the nonce ({})",
                    ct.describe()
                ));
            }
        }
    }

    // HMAC: OpenBao's HMAC must equal transitd's, byte for byte.
    for (alg, version, input, mac) in hmacs {
        let what = format!(
            "OpenBao HMAC {} v{version} input={} equals transitd's",
            alg.name(),
            show(input)
        );
        let r = bao
            .post(
                &format!("transit/hmac/{name}/{}", alg.name()),
                &json!({"input": b64(input), "key_version": version}),
            )
            .and_then(|d| {
                let theirs = field(&d, "hmac")?;
                if theirs != mac {
                    return Err(format!("OpenBao {theirs} vs transitd {mac}"));
                }
                match ring.verify_hmac(input, theirs, *alg) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!("transitd verify_hmac({theirs}) = false")),
                    Err(e) => Err(format!("transitd verify_hmac({theirs}): {e}")),
                }
            });
        tally.check("reverse", label, &what, r);
    }

    // Signatures: OpenBao signs with every option set (also those transitd
    // refuses to sign with); transitd verifies.
    if !t.supports_signing() {
        return;
    }
    if t.mldsa_level().is_some()
        && let Err(bug) = openbao_signs_restored_mldsa(bao, t)
    {
        tally.notes.push(format!(
            "[{label}] OpenBao-signs/transitd-verifies skipped for the restored key: \
                 OpenBao cannot sign with ANY restored ML-DSA key, not even a restore of its \
                 own backup ({bug})"
        ));
        mldsa_native_reverse(bao, t, label, tally);
        return;
    }
    let contexts = contexts_of(v);
    for case in sig_cases(t) {
        for version in [1i64, 2] {
            for &context in &contexts {
                let input = case.input(SIGN_INPUT);
                let what = format!(
                    "transitd verify of OpenBao signature {} v{version}{}",
                    case.label(),
                    context
                        .map(|c| format!(" context={}", show(c)))
                        .unwrap_or_default()
                );
                let ours = sigs
                    .iter()
                    .find(|s| s.0.label() == case.label() && s.1 == version && s.2 == context)
                    .map(|s| &s.4);
                let mut body = sig_body(&case, &input, context, "", "");
                if let Some(m) = body.as_object_mut() {
                    m.insert("key_version".to_owned(), json!(version));
                }
                let mut gap = None;
                let r = bao
                    .post(&format!("transit/sign/{name}"), &body)
                    .and_then(|d| {
                        let theirs = field(&d, "signature")?;
                        let opts = case.options()?;
                        match ring.verify(&input, theirs, context, &opts) {
                            Ok(true) => {}
                            Ok(false) => {
                                return Err(format!("transitd verify = false for {theirs}"));
                            }
                            Err(e) if known_gap(t, &e) => {
                                gap = Some(format!(
                                    "[{label}] transit-keys refuses to verify {} (OpenBao signs it): {e}",
                                    case.label()
                                ));
                                return Ok(());
                            }
                            Err(e) => return Err(format!("transitd verify of {theirs}: {e}")),
                        }
                        if let Some(ours) = ours {
                            if case.deterministic(t) && theirs != ours.text {
                                return Err(format!(
                                    "deterministic signature differs: OpenBao {theirs} vs transitd {}",
                                    ours.text
                                ));
                            }
                            if v.derived {
                                let pk = field(&d, "public_key")?;
                                let want = ours.public_key.map(|k| b64(&k)).unwrap_or_default();
                                if pk != want {
                                    return Err(format!(
                                        "derived public_key: OpenBao {pk} vs transitd {want}"
                                    ));
                                }
                            }
                        }
                        if case.marshaling == "jws"
                            && URL_SAFE_NO_PAD
                                .decode(theirs.rsplit(':').next().unwrap_or(""))
                                .is_err()
                        {
                            return Err(format!("OpenBao jws signature is not base64url: {theirs}"));
                        }
                        Ok(())
                    });
                match gap {
                    Some(note) => tally.gap(note),
                    None => tally.check("reverse", label, &what, r),
                }
            }
        }
    }
}

/// transitd refusals that are deliberate (documented in `sign.rs`: aws-lc-rs signs
/// RSA only with SHA-2 256/384/512 and PSS salts of digest or maximum length).
/// They are reported, not failed; anything else transitd refuses is a failure.
pub(super) fn known_gap(t: KeyType, e: &transit_keys::Error) -> bool {
    use transit_keys::Error;
    t.is_rsa()
        && matches!(
            e,
            Error::HashNotSupportedForKey { .. } | Error::UnsupportedSaltLength(_)
        )
}

/// Control experiment for ML-DSA: can OpenBao sign with a key restored from its
/// OWN backup? (OpenBao 2.7.2 cannot: a nil-pointer panic in
/// `keysutil.(*Policy).SignWithOptions`, the connection is dropped.) `Err` holds
/// what happened.
fn openbao_signs_restored_mldsa(bao: &Client, t: KeyType) -> Result<(), String> {
    let native = format!("control-{}", t.name());
    let copy = format!("{native}-restored");
    bao.post(
        &format!("transit/keys/{native}"),
        &json!({"type": t.name(), "exportable": true, "allow_plaintext_backup": true}),
    )?;
    let blob = bao.data("GET", &format!("transit/backup/{native}"), None)?;
    let blob = field(&blob, "backup")?;
    match bao.write(&format!("transit/restore/{copy}"), json!({"backup": blob})) {
        Ok(r) if r.status == 204 => {}
        other => return Err(format!("restore of OpenBao's own backup: {other:?}")),
    }
    bao.post(
        &format!("transit/sign/{copy}"),
        &json!({"input": b64(SIGN_INPUT)}),
    )
    .map(|_| ())
    .map_err(|e| format!("sign with the restored copy of its own key: {e}"))
}

/// Substitute sanity check for ML-DSA: OpenBao signs with its native (never
/// restored) key; transitd restores OpenBao's backup of it and verifies.
fn mldsa_native_reverse(bao: &Client, t: KeyType, label: &str, tally: &mut Tally) {
    let native = format!("control-{}", t.name());
    let ring = bao
        .data("GET", &format!("transit/backup/{native}"), None)
        .and_then(|d| {
            transit_keys::backup::restore(field(&d, "backup")?, None)
                .map_err(|e| format!("transit-keys cannot restore OpenBao's backup: {e}"))
        });
    let ring = match ring {
        Ok(r) => r,
        Err(e) => {
            tally
                .failures
                .push(format!("[{label}] OpenBao's native {native}: {e}"));
            return;
        }
    };
    for case in sig_cases(t) {
        let what = format!(
            "transitd verify of a signature by OpenBao's native {} key, {}",
            t.name(),
            case.label()
        );
        let r = bao
            .post(
                &format!("transit/sign/{native}"),
                &sig_body(&case, SIGN_INPUT, None, "", ""),
            )
            .and_then(|d| {
                let theirs = field(&d, "signature")?;
                match ring.verify(SIGN_INPUT, theirs, None, &case.options()?) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!("transitd verify = false for {theirs}")),
                    Err(e) => Err(format!("transitd verify of {theirs}: {e}")),
                }
            });
        tally.check("reverse", label, &what, r);
    }
}
