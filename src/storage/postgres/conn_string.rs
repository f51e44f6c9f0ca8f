//! The connection string: split into what tokio-postgres parses and what is
//! handled here, and shown without its password.
//!
//! `connection_url` is a libpq connection string, URL (`postgres://user:pw@host/db?sslmode=...`)
//! or key/value (`host=... user=... sslmode=...`), parsed by tokio-postgres,
//! plus `sslrootcert`, handled here. What `sslmode` and
//! `sslrootcert` ask for is described in [`super::tls`].
//!
//! No message or log line contains the password of the connection string:
//! messages name the server as `host:port/dbname`, and
//! [`redact_connection_url`] shows a connection string without it.

use std::time::Duration;

use ::postgres::config::Host;

/// `host:port/dbname` of the first host, for messages.
pub(super) fn server_name(pg: &::postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => pg
            .get_hostaddrs()
            .first()
            .map_or_else(|| "localhost".to_owned(), ToString::to_string),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let more = if pg.get_hosts().len() > 1 { ",..." } else { "" };
    let db = pg
        .get_dbname()
        .or_else(|| pg.get_user())
        .unwrap_or_default();
    format!("{host}:{port}{more}/{db}")
}

pub(super) fn pg_connect_timeout(pg: &::postgres::Config, default: Duration) -> Duration {
    pg.get_connect_timeout().copied().unwrap_or(default)
}

/// What `sslmode` asks for, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TlsPolicy {
    Disable,
    /// `allow`, `prefer` (the default): TLS if the server offers it.
    Prefer,
    /// TLS or fail.
    Require,
    VerifyCa,
    VerifyFull,
}

/// A connection string split into what tokio-postgres parses and what is
/// handled here.
#[derive(Debug)]
pub(super) struct ConnectionString {
    /// The string for tokio-postgres: without `sslrootcert`, with `sslmode`
    /// mapped to a value it knows.
    pub(super) driver: String,
    pub(super) tls: TlsPolicy,
    pub(super) root_cert: Option<String>,
    /// The parameter names present (URL query or key/value).
    pub(super) keys: Vec<String>,
}

impl ConnectionString {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".to_owned());
        }
        let mut out = Self {
            driver: String::new(),
            tls: TlsPolicy::Prefer,
            root_cert: None,
            keys: Vec::new(),
        };
        if let Some(url) = split_url(s) {
            out.driver.push_str(url.base);
            let mut params = Vec::new();
            if let Some(query) = url.query {
                for param in query.split('&').filter(|p| !p.is_empty()) {
                    let (raw_key, raw_value) = param
                        .split_once('=')
                        .ok_or_else(|| "a URL parameter has no value".to_owned())?;
                    let key = percent_decode(raw_key)?;
                    match key.as_str() {
                        "sslrootcert" => out.root_cert = Some(percent_decode(raw_value)?),
                        "sslmode" => {
                            out.tls = tls_policy(&percent_decode(raw_value)?)?;
                            params.push(format!("sslmode={}", driver_ssl_mode(out.tls)));
                        }
                        _ => params.push(param.to_owned()),
                    }
                    out.keys.push(key);
                }
            }
            if !params.is_empty() {
                out.driver.push('?');
                out.driver.push_str(&params.join("&"));
            }
        } else {
            let mut params = Vec::new();
            for (key, value) in key_values(s)? {
                match key {
                    "sslrootcert" => out.root_cert = Some(value),
                    "sslmode" => {
                        out.tls = tls_policy(&value)?;
                        params.push(format!("sslmode={}", driver_ssl_mode(out.tls)));
                    }
                    _ => params.push(format!("{key}='{}'", escape_value(&value))),
                }
                out.keys.push(key.to_owned());
            }
            out.driver = params.join(" ");
        }
        if out.root_cert.as_deref() == Some("") {
            out.root_cert = None;
        }
        Ok(out)
    }
}

fn tls_policy(mode: &str) -> Result<TlsPolicy, String> {
    Ok(match mode {
        "disable" => TlsPolicy::Disable,
        "allow" | "prefer" => TlsPolicy::Prefer,
        "require" => TlsPolicy::Require,
        "verify-ca" => TlsPolicy::VerifyCa,
        "verify-full" => TlsPolicy::VerifyFull,
        other => {
            return Err(format!(
                "unknown sslmode {other:?} (known: disable, allow, prefer, require, verify-ca, verify-full)"
            ));
        }
    })
}

fn driver_ssl_mode(policy: TlsPolicy) -> &'static str {
    match policy {
        TlsPolicy::Disable => "disable",
        TlsPolicy::Prefer => "prefer",
        TlsPolicy::Require | TlsPolicy::VerifyCa | TlsPolicy::VerifyFull => "require",
    }
}

/// A `postgres://` or `postgresql://` URL, cut where tokio-postgres cuts it.
struct UrlParts<'a> {
    /// Up to the `?`.
    base: &'a str,
    query: Option<&'a str>,
    /// `scheme://` and the credentials before `@`, if any.
    scheme: &'a str,
    credentials: Option<&'a str>,
}

fn split_url(s: &str) -> Option<UrlParts<'_>> {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| s.starts_with(p))?;
    let rest = &s[scheme.len()..];
    // Like tokio-postgres: the credentials run to the first `@` anywhere.
    let (credentials, after) = match rest.find('@') {
        Some(i) => (Some(&rest[..i]), i + 1),
        None => (None, 0),
    };
    let (base, query) = match rest[after..].find('?') {
        Some(i) => {
            let cut = scheme.len() + after + i;
            (&s[..cut], Some(&s[cut + 1..]))
        }
        None => (s, None),
    };
    Some(UrlParts {
        base,
        query,
        scheme: &s[..scheme.len()],
        credentials,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "a URL parameter is not valid UTF-8 once decoded".to_owned())
}

/// The pairs of a key/value connection string, parsed like tokio-postgres:
/// `key = value`, values either `'quoted'` or bare, `\` escaping a character.
fn key_values(s: &str) -> Result<Vec<(&str, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        if key.is_empty() {
            return Err("expected a parameter name".to_owned());
        }
        rest = rest[key_len..].trim_start();
        // The text is not repeated: what failed to parse may be a URL with
        // a password in an unknown scheme (`mysql://u:pw@h`), or a password.
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| {
                format!(
                    "parameter {} has no = (a URL must start with postgres:// or postgresql://)",
                    pairs.len() + 1
                )
            })?
            .trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return Err(format!("unterminated quoted value of {key}")),
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return Err(format!("{key} has no value"));
        }
        rest = &rest[end..];
        pairs.push((key, value));
    }
}

fn escape_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// A connection string with its password replaced by `<redacted>`, for logs
/// and `Debug` output: in a URL, the password of `user:password@` and a
/// `password=` parameter; in the key/value form, the `password` value.
pub fn redact_connection_url(s: &str) -> String {
    const REDACTED: &str = "<redacted>";
    if let Some(url) = split_url(s) {
        let mut out = url.scheme.to_owned();
        let mut rest = &url.base[url.scheme.len()..];
        if let Some(creds) = url.credentials {
            match creds.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(creds),
            }
            out.push('@');
            rest = rest.get(creds.len() + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        if let Some(query) = url.query {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if percent_decode(k).is_ok_and(|k| k == "password") => {
                        format!("{k}={REDACTED}")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        return out;
    }
    match key_values(s) {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(k, v)| {
                if k == "password" {
                    format!("{k}={REDACTED}")
                } else if v.is_empty()
                    || v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\')
                {
                    format!("{k}='{}'", escape_value(&v))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        // Cannot tell where the password is: show nothing.
        Err(_) => "<unparsable connection string>".to_owned(),
    }
}
