//! Outbound HTTPS for login methods (JWKS, OIDC discovery, Kubernetes'
//! TokenReview): blocking (callers
//! run off the async workers), with a deadline on every request, a bound on
//! every reply, no redirects, and only the configured CA trusted when one is
//! given.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// Whole-request deadline of an outbound call.
pub const DEADLINE: Duration = Duration::from_secs(10);
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);
/// The largest reply read (a JWKS of a few dozen keys is under 64 KiB).
pub const MAX_REPLY_BYTES: u64 = 1024 * 1024;

/// An HTTPS client trusting one CA bundle (or the public web roots).
#[derive(Debug, Clone)]
pub struct Https {
    agent: ureq::Agent,
}

/// Parse a PEM CA bundle; `None` for an empty string (the public roots).
fn ca_certs(pem: &str) -> Result<Option<Vec<ureq::tls::Certificate<'static>>>, String> {
    if pem.trim().is_empty() {
        return Ok(None);
    }
    let certs: Vec<_> = ureq::tls::parse_pem(pem.as_bytes())
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err("could not parse CA PEM value successfully".to_owned());
    }
    Ok(Some(certs))
}

impl Https {
    /// A client trusting `ca_pem` (PEM certificates), or the public web
    /// roots when it is empty.
    pub fn new(ca_pem: &str) -> Result<Self, String> {
        let mut tls = ureq::tls::TlsConfig::builder().provider(ureq::tls::TlsProvider::Rustls);
        if let Some(certs) = ca_certs(ca_pem)? {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .https_only(true)
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(DEADLINE))
            .timeout_connect(Some(CONNECT_DEADLINE))
            .build()
            .new_agent();
        Ok(Self { agent })
    }

    /// GET `url` and parse its JSON reply; any status but 200 is an error
    /// naming the status (never the body, which may be large or hostile).
    pub fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut response = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        let status = response.status();
        if status != 200 {
            return Err(format!("Get {url:?}: {status}"));
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| format!("Get {url:?}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("Get {url:?}: invalid JSON: {e}"))
    }
}

impl Https {
    /// POST `body` as JSON to `url` with `Authorization: Bearer <bearer>`;
    /// the status and the JSON reply (`Null` when it is not JSON).
    pub fn post_json(&self, url: &str, bearer: &str, body: &Value) -> Result<(u16, Value), String> {
        let mut response = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .header("Authorization", &format!("Bearer {bearer}"))
            .send_json(body)
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let status = response.status().as_u16();
        let reply = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        Ok((
            status,
            serde_json::from_slice(&reply).unwrap_or(Value::Null),
        ))
    }
}

/// Refuse a URL keys would be fetched from in the clear.
pub fn https_url(field: &str, url: &str) -> Result<(), String> {
    if url.starts_with("https://") && url.len() > "https://".len() {
        Ok(())
    } else {
        Err(format!("{field} must be an https:// URL"))
    }
}
