//! The HTTP client of the client commands: the server at `BAO_ADDR` /
//! `VAULT_ADDR` (or `-address`), its CA (`-ca-cert`, `BAO_CACERT` /
//! `VAULT_CACERT`) and the token (`BAO_TOKEN` / `VAULT_TOKEN`, else
//! `~/.vault-token`), as the Vault CLI reads them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Flags;

const DEFAULT_ADDR: &str = "https://127.0.0.1:8200";

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// An API answer that is not a success, shown like the Vault CLI shows it.
pub(super) struct ApiFailure {
    method: &'static str,
    url: String,
    status: u16,
    errors: Vec<String>,
}

impl ApiFailure {
    pub(super) fn render(&self, what: &str) -> String {
        let mut out = format!(
            "Error {what}: Error making API request.\n\nURL: {} {}\nCode: {}. Errors:\n\n",
            self.method, self.url, self.status
        );
        for e in &self.errors {
            out.push_str(&format!("* {e}\n"));
        }
        out
    }
}

pub(super) enum CallError {
    Api(ApiFailure),
    Other(String),
}

pub(super) struct Client {
    agent: ureq::Agent,
    addr: String,
    token: Option<String>,
}

impl Client {
    pub(super) fn from_env(flags: &Flags) -> Result<Self, String> {
        let addr = flags
            .value("address")
            .map(str::to_owned)
            .or_else(|| env_first(&["BAO_ADDR", "VAULT_ADDR"]))
            .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr = addr.trim_end_matches('/').to_owned();
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        let ca = flags
            .value("ca-cert")
            .map(str::to_owned)
            .or_else(|| env_first(&["BAO_CACERT", "VAULT_CACERT"]));
        if let Some(path) = ca {
            let pem =
                std::fs::read(&path).map_err(|e| format!("cannot read CA file {path}: {e}"))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(format!("no certificate found in CA file {path}"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let skip = flags.is_set("tls-skip-verify")
            || env_first(&["BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY"])
                .is_some_and(|v| v != "0" && v != "false");
        if skip {
            tls = tls.disable_verification(true);
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        let token = env_first(&["BAO_TOKEN", "VAULT_TOKEN"]).or_else(|| {
            let home = std::env::var("HOME").ok()?;
            let t = std::fs::read_to_string(format!("{home}/.vault-token")).ok()?;
            Some(t.trim().to_owned()).filter(|t| !t.is_empty())
        });
        Ok(Self { agent, addr, token })
    }

    /// One exchange: the status and the JSON reply (`Null` when empty),
    /// whatever the status; `Err` for a transport failure.
    pub(super) fn exchange(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}/v1/{path}", self.addr);
        let result = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url);
                if let Some(t) = &self.token {
                    req = req.header("X-Vault-Token", t);
                }
                req.call()
            }
            (_, body) => {
                let mut req = self.agent.put(&url);
                if let Some(t) = &self.token {
                    req = req.header("X-Vault-Token", t);
                }
                req.send_json(body.unwrap_or_else(|| json!({})))
            }
        };
        let mut response = result.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let mut text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let value = if text.trim().is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&text)
                .map_err(|e| format!("{method} {url}: invalid JSON reply: {e}"))
        };
        // Replies can carry key material (`datakey`, `decrypt`): the caller
        // wipes what it takes out; the raw text is wiped here.
        zeroize::Zeroize::zeroize(&mut text);
        Ok((status, value?))
    }

    pub(super) fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let url = format!("{}/v1/{path}", self.addr);
        let (status, value) = self
            .exchange(method, path, body)
            .map_err(CallError::Other)?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let errors = value["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Err(CallError::Api(ApiFailure {
            method,
            url,
            status,
            errors,
        }))
    }
}
