//! OpenBao's `seal "transit"`: auto-unseal with a key held by another
//! server's transit engine (OpenBao, Vault or transitd).
//!
//! The root key is sent to `<mount>/encrypt/<key>` and only the ciphertext
//! is stored, at `core/root-key`, in an [`Envelope`] that names the seal and
//! the key; `<mount>/decrypt/<key>` gives it back at start. The stolen
//! database alone therefore opens nothing: its reader also needs the
//! unsealer and a token it accepts.
//!
//! Every call has a deadline and a bounded reply, and follows no redirect.
//! Failures are told apart: [`TransitError::Unavailable`] (no answer, 5xx,
//! 429: the caller retries) and [`TransitError::Rejected`] (the unsealer
//! refused, or the stored copy is not ours: retrying cannot help).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::barrier::SecretKey;
use crate::config::TransitSealConfig;

/// Whole-call deadline; the start-up loop retries after it.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// An encrypt/decrypt/renew reply is a few hundred bytes.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// OpenBao's client default when no address is given anywhere.
const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
const ENVELOPE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitError {
    /// The unsealer did not answer usefully; a retry may succeed.
    #[error("transit seal: unsealer unavailable: {0}")]
    Unavailable(String),
    /// The unsealer refused, or the stored root key is not one it wrapped.
    #[error("transit seal: {0}")]
    Rejected(String),
}

/// The seal's settings with the environment applied, in OpenBao's order of
/// precedence (see [`TransitSettings::resolve`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TransitSettings {
    pub address: String,
    token: Zeroizing<String>,
    pub mount_path: String,
    pub key_name: String,
    pub key_id_prefix: String,
    pub namespace: Option<String>,
    pub disable_renewal: bool,
    pub tls_ca_cert: Option<String>,
    pub tls_client: Option<(String, String)>,
    pub tls_server_name: Option<String>,
    pub tls_skip_verify: bool,
}

impl std::fmt::Debug for TransitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransitSettings")
            .field("address", &self.address)
            .field("token", &"<redacted>")
            .field("mount_path", &self.mount_path)
            .field("key_name", &self.key_name)
            .field("key_id_prefix", &self.key_id_prefix)
            .field("namespace", &self.namespace)
            .field("disable_renewal", &self.disable_renewal)
            .field("tls_ca_cert", &self.tls_ca_cert)
            .field("tls_client", &self.tls_client)
            .field("tls_server_name", &self.tls_server_name)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .finish()
    }
}

/// OpenBao's client reads `BAO_X`, else `VAULT_X`; an empty value counts as
/// unset here.
fn bao_var(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let upstream = name.replacen("BAO_", "VAULT_", 1);
    env(name)
        .or_else(|| env(&upstream))
        .filter(|v| !v.is_empty())
}

fn first_set(env: &dyn Fn(&str) -> Option<String>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()))
}

/// Go's `strconv.ParseBool`, naming the variable when it fails.
fn env_bool(name: &str, value: &str) -> Result<bool, String> {
    crate::go_syntax::parse_bool(value.trim())
        .ok_or_else(|| format!("{name} must be true or false, got {value:?}"))
}

impl TransitSettings {
    /// Merge the `seal "transit"` block with the environment as OpenBao
    /// 2.7.2 does: `TRANSIT_WRAPPER_*`, then `VAULT_TRANSIT_SEAL_*`, then the
    /// file, for address, token, mount_path, key_name and disable_renewal;
    /// `VAULT_NAMESPACE` before the file's namespace; the client's own
    /// `BAO_*`/`VAULT_*` (address, token, namespace, CA, client
    /// certificate, server name, skip-verify) only where the file is silent.
    /// The token may be written as `env://VAR` or `file:///path`.
    pub fn resolve(
        config: &TransitSealConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        for name in [
            "BAO_CAPATH",
            "BAO_CACERT_BYTES",
            "BAO_CLIENT_CERT_BYTES",
            "BAO_CLIENT_KEY_BYTES",
        ] {
            if bao_var(env, name).is_some() {
                return Err(format!(
                    "seal \"transit\": {name} (or its VAULT_ name) is set, but transitd reads \
                     certificates only from files (tls_ca_cert, tls_client_cert, tls_client_key)"
                ));
            }
        }
        let seal_var = |suffix: &str| {
            first_set(
                env,
                &[
                    &format!("TRANSIT_WRAPPER_{suffix}"),
                    &format!("VAULT_TRANSIT_SEAL_{suffix}"),
                ],
            )
        };
        let address = seal_var("ADDR")
            .or_else(|| config.address.clone())
            .or_else(|| bao_var(env, "BAO_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        let address = address.trim_end_matches('/').to_owned();
        if !(address.starts_with("https://") || address.starts_with("http://")) {
            return Err(format!(
                "seal \"transit\": address {address:?} must start with https:// or http://"
            ));
        }
        let token = match seal_var("TOKEN") {
            Some(t) => t,
            None => match &config.token {
                Some(written) => read_token(written, env)?,
                None => bao_var(env, "BAO_TOKEN").ok_or_else(|| {
                    "seal \"transit\" needs a token (token, VAULT_TRANSIT_SEAL_TOKEN or \
                     BAO_TOKEN)"
                        .to_owned()
                })?,
            },
        };
        let token = Zeroizing::new(token.trim().to_owned());
        let mount_path = seal_var("MOUNT_PATH")
            .or_else(|| config.mount_path.clone())
            .map(|m| m.trim_matches('/').to_owned())
            .filter(|m| !m.is_empty())
            .ok_or("seal \"transit\" needs mount_path (or VAULT_TRANSIT_SEAL_MOUNT_PATH)")?;
        let key_name = seal_var("KEY_NAME")
            .or_else(|| config.key_name.clone())
            .ok_or("seal \"transit\" needs key_name (or VAULT_TRANSIT_SEAL_KEY_NAME)")?;
        if key_name.contains('/') {
            return Err(format!(
                "seal \"transit\": key_name {key_name:?} must not contain '/'"
            ));
        }
        let disable_renewal = match first_set(
            env,
            &[
                "TRANSIT_WRAPPER_DISABLE_RENEWAL",
                "VAULT_TRANSIT_SEAL_DISABLE_RENEWAL",
            ],
        ) {
            Some(v) => env_bool("VAULT_TRANSIT_SEAL_DISABLE_RENEWAL", &v)?,
            None => config.disable_renewal.unwrap_or(false),
        };
        let namespace = first_set(env, &["VAULT_NAMESPACE"])
            .or_else(|| config.namespace.clone().filter(|n| !n.is_empty()))
            .or_else(|| bao_var(env, "BAO_NAMESPACE"));
        let tls_skip_verify = match config.tls_skip_verify {
            Some(b) => b,
            None => match bao_var(env, "BAO_SKIP_VERIFY") {
                Some(v) => env_bool("BAO_SKIP_VERIFY", &v)?,
                None => false,
            },
        };
        let client_cert = config
            .tls_client_cert
            .clone()
            .or_else(|| bao_var(env, "BAO_CLIENT_CERT"));
        let client_key = config
            .tls_client_key
            .clone()
            .or_else(|| bao_var(env, "BAO_CLIENT_KEY"));
        let tls_client = match (client_cert, client_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(
                    "seal \"transit\": tls_client_cert and tls_client_key go together".to_owned(),
                );
            }
        };
        Ok(Self {
            address,
            token,
            mount_path,
            key_name,
            key_id_prefix: config.key_id_prefix.clone().unwrap_or_default(),
            namespace,
            disable_renewal,
            tls_ca_cert: config
                .tls_ca_cert
                .clone()
                .or_else(|| bao_var(env, "BAO_CACERT")),
            tls_client,
            tls_server_name: config
                .tls_server_name
                .clone()
                .or_else(|| bao_var(env, "BAO_TLS_SERVER_NAME")),
            tls_skip_verify,
        })
    }
}

/// The token as written: `env://VAR`, `file:///path`, or itself. Errors
/// never contain the token.
fn read_token(written: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if let Some(name) = written.strip_prefix("env://") {
        env(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            format!("seal \"transit\": token: environment variable {name} is not set")
        })
    } else if let Some(path) = written.strip_prefix("file://") {
        std::fs::read_to_string(path)
            .map_err(|e| format!("seal \"transit\": token: cannot read {path}: {e}"))
    } else {
        Ok(written.to_owned())
    }
}

/// What `core/root-key` holds with this seal: the remote ciphertext and what
/// made it, so a configuration naming another key is told so plainly.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    version: u32,
    seal: String,
    mount_path: String,
    key_name: String,
    /// `key_id_prefix` and the remote key version (`v3`), as OpenBao names it.
    key_id: String,
    ciphertext: String,
}

/// The client of the unsealer's transit engine.
#[derive(Debug)]
pub struct TransitSeal {
    settings: TransitSettings,
    agent: ureq::Agent,
    /// `address`, or `<scheme>://<tls_server_name>:<port>` when a server name
    /// is given (the connection still goes to `address`; see [`PinnedHost`]).
    base_url: String,
}

impl TransitSeal {
    pub fn new(settings: TransitSettings) -> Result<Self, String> {
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(path) = &settings.tls_ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("seal \"transit\": cannot read tls_ca_cert {path}: {e}"))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!(
                    "seal \"transit\": no certificate in tls_ca_cert {path}"
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        if let Some((cert_path, key_path)) = &settings.tls_client {
            tls = tls.client_cert(Some(client_cert(cert_path, key_path)?));
        }
        if settings.tls_skip_verify {
            tls = tls.disable_verification(true);
        }
        let config = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(CALL_DEADLINE))
            .timeout_connect(Some(CONNECT_DEADLINE))
            .build();
        let (agent, base_url) = match &settings.tls_server_name {
            Some(name) => {
                let real: ureq::http::Uri = settings
                    .address
                    .parse()
                    .map_err(|e| format!("seal \"transit\": address: {e}"))?;
                let scheme = real.scheme_str().unwrap_or("https").to_owned();
                let port = real
                    .port_u16()
                    .unwrap_or(if scheme == "http" { 80 } else { 443 });
                let agent = ureq::Agent::with_parts(
                    config,
                    ureq::unversioned::transport::DefaultConnector::new(),
                    PinnedHost { real },
                );
                (agent, format!("{scheme}://{name}:{port}"))
            }
            None => (config.new_agent(), settings.address.clone()),
        };
        Ok(Self {
            settings,
            agent,
            base_url,
        })
    }

    pub fn settings(&self) -> &TransitSettings {
        &self.settings
    }

    fn key_path(&self, operation: &str) -> String {
        let segment = |s: &str| percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string();
        let mount: Vec<String> = self.settings.mount_path.split('/').map(segment).collect();
        format!(
            "{}/{operation}/{}",
            mount.join("/"),
            segment(&self.settings.key_name)
        )
    }

    /// POST `body` to `/v1/<path>`; the reply's JSON on 2xx.
    fn call(&self, path: &str, body: &Value) -> Result<Value, TransitError> {
        let url = format!("{}/v1/{path}", self.base_url);
        let mut request = self
            .agent
            .post(&url)
            .header("X-Vault-Token", self.settings.token.as_str())
            .header("X-Vault-Request", "true");
        if let Some(ns) = &self.settings.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        let mut response = request
            .send_json(body)
            .map_err(|e| TransitError::Unavailable(format!("POST {url}: {e}")))?;
        let status = response.status().as_u16();
        let reply = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| TransitError::Unavailable(format!("POST {url}: {e}")))?;
        let value: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let errors = remote_errors(&value);
        let message = format!("POST {url}: {status} {errors}");
        // 5xx (a sealed or standby unsealer says 503), 408, 429: try again.
        if status >= 500 || status == 408 || status == 429 {
            Err(TransitError::Unavailable(message))
        } else {
            Err(TransitError::Rejected(message))
        }
    }

    /// The root key wrapped by the remote key, as stored at `core/root-key`.
    pub fn wrap(&self, root: &SecretKey) -> Result<Vec<u8>, TransitError> {
        encode(&self.envelope(root)?)
    }

    fn envelope(&self, root: &SecretKey) -> Result<Envelope, TransitError> {
        let plaintext =
            Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(root.expose()));
        let reply = self.call(
            &self.key_path("encrypt"),
            &json!({ "plaintext": plaintext.as_str() }),
        )?;
        let ciphertext = reply["data"]["ciphertext"]
            .as_str()
            .ok_or_else(|| TransitError::Rejected("encrypt reply has no ciphertext".to_owned()))?;
        let version = match ciphertext.split(':').collect::<Vec<_>>().as_slice() {
            [_, version, _] => (*version).to_owned(),
            _ => {
                return Err(TransitError::Rejected(
                    "encrypt reply is not a vault:vN: ciphertext".to_owned(),
                ));
            }
        };
        Ok(Envelope {
            version: ENVELOPE_VERSION,
            seal: "transit".to_owned(),
            mount_path: self.settings.mount_path.clone(),
            key_name: self.settings.key_name.clone(),
            key_id: format!("{}{version}", self.settings.key_id_prefix),
            ciphertext: ciphertext.to_owned(),
        })
    }

    /// The root key from the stored envelope, and a fresh envelope when the
    /// remote key has a newer version than the one that wrapped it (the
    /// caller stores it, so a later rotation of the remote key and the
    /// trimming of its old versions do not strand the stored copy).
    pub fn unwrap(&self, stored: &[u8]) -> Result<(SecretKey, Option<Vec<u8>>), TransitError> {
        let envelope: Envelope = serde_json::from_slice(stored).map_err(|_| {
            TransitError::Rejected(
                "the stored root key is not a transit seal envelope (was this storage \
                 initialized with another seal?)"
                    .to_owned(),
            )
        })?;
        if envelope.version != ENVELOPE_VERSION || envelope.seal != "transit" {
            return Err(TransitError::Rejected(format!(
                "the stored root key is a {:?} envelope of version {}, not transit version {ENVELOPE_VERSION}",
                envelope.seal, envelope.version
            )));
        }
        if envelope.key_name != self.settings.key_name {
            return Err(TransitError::Rejected(format!(
                "the root key was wrapped by transit key {:?} (mount {:?}) but key_name is {:?}",
                envelope.key_name, envelope.mount_path, self.settings.key_name
            )));
        }
        let reply = self.call(
            &self.key_path("decrypt"),
            &json!({ "ciphertext": envelope.ciphertext }),
        )?;
        let plaintext = reply["data"]["plaintext"]
            .as_str()
            .ok_or_else(|| TransitError::Rejected("decrypt reply has no plaintext".to_owned()))?;
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(plaintext)
                .map_err(|_| TransitError::Rejected("decrypt reply is not base64".to_owned()))?,
        );
        let root = SecretKey::from_slice(&raw).ok_or_else(|| {
            TransitError::Rejected("the unwrapped root key has the wrong length".to_owned())
        })?;
        // One more call per start, to learn the remote key's newest version.
        let fresh = self.envelope(&root)?;
        let rewrapped = if fresh.key_id == envelope.key_id {
            None
        } else {
            Some(encode(&fresh)?)
        };
        Ok((root, rewrapped))
    }

    /// `auth/token/renew-self`: the new TTL, or `None` when the token has
    /// none or cannot be renewed (a root or non-renewable token).
    pub fn renew_token(&self) -> Result<Option<Duration>, TransitError> {
        let reply = self.call("auth/token/renew-self", &json!({}))?;
        let auth = &reply["auth"];
        let ttl = auth["lease_duration"].as_u64().unwrap_or(0);
        let renewable = auth["renewable"].as_bool().unwrap_or(false);
        Ok((renewable && ttl > 0).then(|| Duration::from_secs(ttl)))
    }
}

fn encode(envelope: &Envelope) -> Result<Vec<u8>, TransitError> {
    serde_json::to_vec(envelope).map_err(|e| TransitError::Rejected(e.to_string()))
}

/// What a path segment may hold unescaped.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn client_cert(cert_path: &str, key_path: &str) -> Result<ureq::tls::ClientCert, String> {
    let read = |path: &str, what: &str| {
        std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|e| format!("seal \"transit\": cannot read {what} {path}: {e}"))
    };
    let cert_pem = read(cert_path, "tls_client_cert")?;
    let key_pem = read(key_path, "tls_client_key")?;
    let chain: Vec<_> = ureq::tls::parse_pem(&cert_pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if chain.is_empty() {
        return Err(format!(
            "seal \"transit\": no certificate in tls_client_cert {cert_path}"
        ));
    }
    let key = ureq::tls::PrivateKey::from_pem(&key_pem)
        .map_err(|_| format!("seal \"transit\": no private key in tls_client_key {key_path}"))?
        .to_owned();
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

/// With `tls_server_name`, URLs name that server (so TLS sends it and checks
/// the certificate against it) while connections go to `address`'s host.
#[derive(Debug)]
struct PinnedHost {
    real: ureq::http::Uri,
}

impl ureq::unversioned::resolver::Resolver for PinnedHost {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        ureq::unversioned::resolver::DefaultResolver::default().resolve(&self.real, config, timeout)
    }
}

/// The first errors of an unsealer's reply, bounded and escaped: the text
/// goes into our log, so no line breaks or terminal escapes of its choosing.
fn remote_errors(reply: &Value) -> String {
    reply["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .take(3)
                .filter_map(Value::as_str)
                .map(|e| {
                    e.chars()
                        .take(300)
                        .collect::<String>()
                        .escape_debug()
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn written() -> TransitSealConfig {
        TransitSealConfig {
            address: Some("https://file:8200".to_owned()),
            token: Some("s.file".to_owned()),
            mount_path: Some("/transit/".to_owned()),
            key_name: Some("file-key".to_owned()),
            ..TransitSealConfig::default()
        }
    }

    #[test]
    fn an_unsealers_error_text_cannot_forge_log_lines() {
        let reply = serde_json::json!({"errors": [
            "bad\n2026-01-01T00:00:00Z INFO transitd::seal: unsealed \u{1b}[31m", "x".repeat(400)
        ]});
        let text = remote_errors(&reply);
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(text.contains("\\n2026"), "{text}");
        assert!(text.len() < 400, "{}", text.len());
    }

    #[test]
    fn the_environment_applies_in_openbao_order() {
        let s = TransitSettings::resolve(&written(), &env_of(&[])).unwrap();
        assert_eq!(s.address, "https://file:8200");
        assert_eq!(s.token.as_str(), "s.file");
        assert_eq!(s.mount_path, "transit");
        assert!(!s.disable_renewal);

        let env = env_of(&[
            ("VAULT_TRANSIT_SEAL_ADDR", "https://seal:1"),
            ("TRANSIT_WRAPPER_ADDR", "https://wrapper:1"),
            ("VAULT_TRANSIT_SEAL_TOKEN", "s.env"),
            ("VAULT_TRANSIT_SEAL_KEY_NAME", "env-key"),
            ("VAULT_TRANSIT_SEAL_DISABLE_RENEWAL", "1"),
            ("BAO_ADDR", "https://bao:1"),
            ("VAULT_NAMESPACE", "ns1/"),
        ]);
        let s = TransitSettings::resolve(&written(), &env).unwrap();
        assert_eq!(s.address, "https://wrapper:1");
        assert_eq!(s.token.as_str(), "s.env");
        assert_eq!(s.key_name, "env-key");
        assert!(s.disable_renewal);
        assert_eq!(s.namespace.as_deref(), Some("ns1/"));

        // The client's own variables fill only what the file leaves out.
        let bare = TransitSealConfig {
            mount_path: Some("t".to_owned()),
            key_name: Some("k".to_owned()),
            ..TransitSealConfig::default()
        };
        let env = env_of(&[
            ("VAULT_ADDR", "http://vault:1"),
            ("BAO_TOKEN", "s.bao"),
            ("VAULT_TOKEN", "s.vault"),
            ("BAO_SKIP_VERIFY", "true"),
            ("BAO_CACERT", "/ca.pem"),
        ]);
        let s = TransitSettings::resolve(&bare, &env).unwrap();
        assert_eq!(s.address, "http://vault:1");
        assert_eq!(s.token.as_str(), "s.bao");
        assert!(s.tls_skip_verify);
        assert_eq!(s.tls_ca_cert.as_deref(), Some("/ca.pem"));
        let s = TransitSettings::resolve(
            &TransitSealConfig {
                token: Some("env://MY_TOKEN".to_owned()),
                ..bare.clone()
            },
            &env_of(&[("MY_TOKEN", "s.indirect")]),
        )
        .unwrap();
        assert_eq!(s.token.as_str(), "s.indirect");
        assert_eq!(s.address, DEFAULT_ADDRESS);
    }

    #[test]
    fn missing_and_unsupported_settings_are_refused_without_the_token() {
        let no_key = TransitSealConfig {
            key_name: None,
            ..written()
        };
        let e = TransitSettings::resolve(&no_key, &env_of(&[])).unwrap_err();
        assert!(e.contains("needs key_name"), "{e}");
        let no_token = TransitSealConfig {
            token: None,
            ..written()
        };
        let e = TransitSettings::resolve(&no_token, &env_of(&[])).unwrap_err();
        assert!(e.contains("needs a token"), "{e}");
        let e =
            TransitSettings::resolve(&written(), &env_of(&[("VAULT_CAPATH", "/d")])).unwrap_err();
        assert!(e.contains("BAO_CAPATH"), "{e}");
        let half = TransitSealConfig {
            tls_client_cert: Some("/c.pem".to_owned()),
            ..written()
        };
        let e = TransitSettings::resolve(&half, &env_of(&[])).unwrap_err();
        assert!(e.contains("go together"), "{e}");
        let e = TransitSettings::resolve(
            &written(),
            &env_of(&[("VAULT_TRANSIT_SEAL_DISABLE_RENEWAL", "maybe")]),
        )
        .unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        let settings = TransitSettings::resolve(&written(), &env_of(&[])).unwrap();
        assert!(!format!("{settings:?}").contains("s.file"));
        let seal = TransitSeal::new(settings).unwrap();
        assert!(!format!("{seal:?}").contains("s.file"));
    }

    #[test]
    fn a_foreign_or_other_key_envelope_is_rejected_before_any_call() {
        // Port 9 (discard) is never asked: these fail on the envelope alone.
        let settings = TransitSettings::resolve(
            &TransitSealConfig {
                address: Some("http://127.0.0.1:9".to_owned()),
                ..written()
            },
            &env_of(&[]),
        )
        .unwrap();
        let seal = TransitSeal::new(settings).unwrap();
        let e = seal.unwrap(b"\x01kabc").unwrap_err();
        assert!(
            matches!(e, TransitError::Rejected(ref m) if m.contains("not a transit seal envelope")),
            "{e}"
        );
        let other = serde_json::to_vec(&json!({
            "version": 1, "seal": "transit", "mount_path": "transit",
            "key_name": "another", "key_id": "v1", "ciphertext": "vault:v1:AAAA",
        }))
        .unwrap();
        let e = seal.unwrap(&other).unwrap_err();
        assert!(e.to_string().contains("\"another\""), "{e}");
        // A dead unsealer is Unavailable (retried), not Rejected.
        let mine = serde_json::to_vec(&json!({
            "version": 1, "seal": "transit", "mount_path": "transit",
            "key_name": "file-key", "key_id": "v1", "ciphertext": "vault:v1:AAAA",
        }))
        .unwrap();
        assert!(matches!(
            seal.unwrap(&mine),
            Err(TransitError::Unavailable(_))
        ));
    }
}
