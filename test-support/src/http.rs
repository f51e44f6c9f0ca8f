//! The one HTTP client of the test suites, and the reply every helper returns.

use std::time::Duration;

use serde_json::Value;

/// An answer: the status and the parsed JSON body (`Value::Null` when empty, a
/// JSON string holding the text when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// A reply from a status and the raw body bytes.
    pub fn parse(status: u16, bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned()))
        };
        Self { status, body }
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The first of `errors` (`""` when there is none).
    pub fn error(&self) -> String {
        self.body["errors"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "body: {}", self.body);
        self
    }
}

/// How a request carries its token.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'t> {
    /// `X-Vault-Token: <token>`
    Vault(&'t str),
    /// `Authorization: Bearer <token>`
    Bearer(&'t str),
}

/// A blocking HTTP client of one server (`http://127.0.0.1:<port>`), with the
/// token it sends (`None`: none). Any status is an answer, never an error; an
/// `Err` is a transport failure.
#[derive(Debug, Clone)]
pub struct Client {
    addr: String,
    agent: ureq::Agent,
    token: Option<String>,
    /// Sent with every request besides the token (`with_header`).
    headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(addr: impl Into<String>, token: Option<&str>) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Self {
            addr: addr.into(),
            agent,
            token: token.map(str::to_owned),
            headers: Vec::new(),
        }
    }

    /// The same client, sending `name: value` with every request too
    /// (`X-Vault-Wrap-TTL`, ...).
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client.headers.push((name.to_owned(), value.to_owned()));
        client
    }

    /// `http://127.0.0.1:<port>`
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The same server, called with another token (`None`: no token).
    pub fn as_token(&self, token: Option<&str>) -> Self {
        Self {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// One exchange exactly as given: `path` from the root (`/v1/...`), the
    /// body bytes, the token and the content type.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        auth: Option<Auth<'_>>,
        content_type: Option<&str>,
    ) -> Result<Reply, String> {
        let method_ = ureq::http::Method::from_bytes(method.as_bytes())
            .map_err(|e| format!("bad method {method}: {e}"))?;
        let mut req = ureq::http::Request::builder()
            .method(method_)
            .uri(format!("{}{path}", self.addr));
        match auth {
            Some(Auth::Vault(t)) => req = req.header("X-Vault-Token", t),
            Some(Auth::Bearer(t)) => req = req.header("Authorization", format!("Bearer {t}")),
            None => {}
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        let result = match body {
            Some(bytes) => self.agent.run(
                req.body(bytes)
                    .map_err(|e| format!("building {method} {path}: {e}"))?,
            ),
            None => self.agent.run(
                req.body(())
                    .map_err(|e| format!("building {method} {path}: {e}"))?,
            ),
        };
        let mut resp = result.map_err(|e| format!("{method} {path}: transport error: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {path}: reading the body: {e}"))?;
        Ok(Reply::parse(status, text.as_bytes()))
    }

    /// `method /v1/{path}` with the client's token and `body` as JSON
    /// (`Value::Null`: no body).
    pub fn call(&self, method: &str, path: &str, body: Value) -> Result<Reply, String> {
        let (bytes, content_type) = if body.is_null() {
            (None, None)
        } else {
            let bytes = serde_json::to_vec(&body)
                .map_err(|e| format!("{method} {path}: encoding the body: {e}"))?;
            (Some(bytes), Some("application/json"))
        };
        self.send(
            method,
            &format!("/v1/{path}"),
            bytes,
            self.token.as_deref().map(Auth::Vault),
            content_type,
        )
    }

    pub fn write(&self, path: &str, body: Value) -> Result<Reply, String> {
        self.call("POST", path, body)
    }

    pub fn read(&self, path: &str) -> Result<Reply, String> {
        self.call("GET", path, Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Reply;

    #[test]
    fn a_body_is_null_json_or_text() {
        assert_eq!(Reply::parse(204, b"").body, json!(null));
        assert_eq!(Reply::parse(204, b" \n").body, json!(null));
        assert_eq!(
            Reply::parse(200, br#"{"data":{"a":1}}"#).data(),
            &json!({"a": 1})
        );
        assert_eq!(Reply::parse(502, b"bad gateway").body, json!("bad gateway"));
        let r = Reply::parse(400, br#"{"errors":["no"]}"#).expect(400);
        assert_eq!(r.error(), "no");
    }
}
