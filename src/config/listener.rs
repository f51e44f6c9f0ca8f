//! The `listener "tcp"` blocks: where the API listens, and its TLS.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use hcl_edit::Span;
use hcl_edit::structure::{Attribute, Block};

use super::source::{Scope, Source, value_span};
use crate::request::MAX_CONFIGURABLE_DEPTH;

/// Listener address used when a `listener "tcp"` block has no `address`.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8200));

const LISTENER_SETTINGS: &[&str] = &[
    "address",
    "tls_disable",
    "tls_cert_file",
    "tls_key_file",
    "tls_min_version",
    "tls_disable_client_certs",
    "tls_require_and_verify_client_cert",
    "tls_client_ca_file",
    "max_request_size",
    "max_request_json_memory",
    "max_request_json_strings",
    "max_request_json_elements",
    "max_json_depth",
    "max_connections",
    "http_read_header_timeout",
];

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Default [`DEFAULT_ADDRESS`] (`127.0.0.1:8200`).
    pub address: SocketAddr,
    /// `None` when `tls_disable` is true.
    pub tls: Option<TlsConfig>,
    /// Largest request body in bytes; `None`: the server's default.
    pub max_request_size: Option<usize>,
    /// What a request may cost to parse, and the connection limits.
    pub limits: ListenerLimits,
    /// `telemetry { unauthenticated_metrics_access = true }`: `sys/metrics`
    /// needs no token on this listener.
    pub unauthenticated_metrics_access: bool,
}

/// The budget settings of a listener; `None`: the server's default. The JSON
/// ones apply to forms and query strings too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `max_request_json_memory` (OpenBao's name): estimated bytes of a
    /// parsed body.
    pub max_request_json_memory: Option<usize>,
    /// `max_request_json_strings` (OpenBao's name): strings, keys included.
    pub max_request_json_strings: Option<usize>,
    /// `max_request_json_elements` (transitd's): array elements plus object
    /// entries in the whole body.
    pub max_request_json_elements: Option<usize>,
    /// `max_json_depth` (Vault's name): nesting of arrays and objects.
    pub max_json_depth: Option<usize>,
    /// `max_connections` (transitd's): open connections on this listener.
    pub max_connections: Option<usize>,
    /// `http_read_header_timeout` (Vault's name): time to send a request's
    /// headers, counted from the connection's start or its previous reply.
    pub http_read_header_timeout: Option<Duration>,
}

/// TLS settings of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub min_version: TlsVersion,
    /// `tls_disable_client_certs`: do not ask clients for a certificate
    /// (which turns `auth/cert` logins off on this listener).
    pub disable_client_certs: bool,
}

/// `tls_min_version`: `"tls12"` (default) or `"tls13"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    #[default]
    Tls12,
    Tls13,
}

impl Source<'_> {
    pub(super) fn listener(&self, block: &Block) -> Result<ListenerConfig, String> {
        let scope = Scope::of(block);
        match self.block_type(block)? {
            "tcp" => {}
            "unix" => {
                return Err(self.at(
                    block.span(),
                    "listener \"unix\" is not supported by transitd (supported: tcp)",
                ));
            }
            other => {
                return Err(self.at(
                    block.span(),
                    format!("unknown listener type {other:?} (supported: tcp)"),
                ));
            }
        }
        let mut address = DEFAULT_ADDRESS;
        let mut tls_disable = false;
        let mut cert_file = None;
        let mut key_file = None;
        let mut min_version = TlsVersion::default();
        let mut disable_client_certs = false;
        let mut max_request_size = None;
        let mut limits = ListenerLimits::default();
        let (settings, blocks) =
            self.settings_and_blocks(block, &scope, LISTENER_SETTINGS, &["telemetry"])?;
        let mut unauthenticated_metrics_access = false;
        for (i, inner) in blocks.iter().enumerate() {
            if i > 0 {
                return Err(self.at(
                    inner.span(),
                    format!(
                        "second telemetry block{}; at most one is allowed",
                        scope.suffix()
                    ),
                ));
            }
            unauthenticated_metrics_access = self.listener_telemetry(inner)?;
        }
        for attr in settings {
            match attr.key.as_str() {
                "address" => address = self.address(attr, &scope)?,
                "tls_disable" => tls_disable = self.boolean(attr, &scope)?,
                "tls_cert_file" => cert_file = Some(self.required_text(attr, &scope)?),
                "tls_key_file" => key_file = Some(self.required_text(attr, &scope)?),
                "tls_min_version" => min_version = self.tls_version(attr, &scope)?,
                "tls_disable_client_certs" => disable_client_certs = self.boolean(attr, &scope)?,
                // Requiring a client certificate of a fixed CA at the TLS
                // layer is not built: client certificates are checked by
                // `auth/cert` only.
                "tls_require_and_verify_client_cert" if self.boolean(attr, &scope)? => {
                    return Err(self.at(
                        attr.span(),
                        "tls_require_and_verify_client_cert = true is not supported by transitd (client certificates are verified by auth/cert logins only)",
                    ));
                }
                "tls_client_ca_file" => {
                    return Err(self.at(
                        attr.span(),
                        "tls_client_ca_file is not supported by transitd (trust client certificates with auth/cert entries)",
                    ));
                }
                "max_request_size" => max_request_size = Some(self.positive_size(attr, &scope)?),
                "max_request_json_memory" => {
                    limits.max_request_json_memory = Some(self.positive_size(attr, &scope)?);
                }
                "max_request_json_strings" => {
                    limits.max_request_json_strings = Some(self.count(attr, &scope, usize::MAX)?);
                }
                "max_request_json_elements" => {
                    limits.max_request_json_elements =
                        Some(self.count(attr, &scope, usize::MAX)?);
                }
                "max_json_depth" => {
                    limits.max_json_depth =
                        Some(self.count(attr, &scope, MAX_CONFIGURABLE_DEPTH)?);
                }
                "max_connections" => {
                    limits.max_connections = Some(self.count(attr, &scope, usize::MAX)?);
                }
                "http_read_header_timeout" => {
                    limits.http_read_header_timeout = Some(self.timeout(attr, &scope)?);
                }
                // `settings` let through only the names above.
                _ => {}
            }
        }
        let tls = if tls_disable {
            // Like Vault, certificate settings are ignored when TLS is off.
            None
        } else {
            match (cert_file, key_file) {
                (Some(cert), Some(key)) => Some(TlsConfig {
                    cert_file: PathBuf::from(cert),
                    key_file: PathBuf::from(key),
                    min_version,
                    disable_client_certs,
                }),
                (cert, key) => {
                    let missing = match (cert.is_none(), key.is_none()) {
                        (true, true) => "tls_cert_file and tls_key_file",
                        (true, false) => "tls_cert_file",
                        _ => "tls_key_file",
                    };
                    return Err(self.at(
                        block.span(),
                        format!(
                            "listener \"tcp\" has TLS on but no {missing}: set tls_cert_file and tls_key_file, or tls_disable = true"
                        ),
                    ));
                }
            }
        };
        Ok(ListenerConfig {
            address,
            tls,
            max_request_size,
            limits,
            unauthenticated_metrics_access,
        })
    }

    /// A whole number from 1 to `max`, written as a number or a string.
    fn count(&self, attr: &Attribute, scope: &Scope, max: usize) -> Result<usize, String> {
        let parsed = match &attr.value {
            hcl_edit::expr::Expression::Number(n) => n.value().as_u64(),
            hcl_edit::expr::Expression::String(s) => s.value().trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                let range = if max == usize::MAX {
                    "greater than 0".to_owned()
                } else {
                    format!("from 1 to {max}")
                };
                self.at(
                    value_span(attr, scope),
                    format!(
                        "{}{} must be a whole number {range}, got {}",
                        attr.key.as_str(),
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }

    /// A duration of at least a second: `"10s"`, `"1m"`, or whole seconds.
    fn timeout(&self, attr: &Attribute, scope: &Scope) -> Result<Duration, String> {
        let text = match &attr.value {
            hcl_edit::expr::Expression::Number(n) => n.value().to_string(),
            hcl_edit::expr::Expression::String(s) => s.value().trim().to_owned(),
            _ => String::new(),
        };
        crate::go_syntax::parse_duration_secs(&text)
            .filter(|&secs| secs > 0)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                self.at(
                    value_span(attr, scope),
                    format!(
                        "{}{} must be a duration of at least 1s (such as \"10s\"), got {}",
                        attr.key.as_str(),
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }

    fn address(&self, attr: &Attribute, scope: &Scope) -> Result<SocketAddr, String> {
        let value = self.string(attr, scope)?;
        value.trim().parse::<SocketAddr>().map_err(|_| {
            let hint = if value.trim().starts_with(':') {
                " (write 0.0.0.0:PORT to listen on every interface)"
            } else {
                ""
            };
            self.at(
                value_span(attr, scope),
                format!(
                    "invalid address {value:?}{}: expected IP:PORT such as 127.0.0.1:8200 or [::1]:8200{hint}",
                    scope.suffix()
                ),
            )
        })
    }

    fn tls_version(&self, attr: &Attribute, scope: &Scope) -> Result<TlsVersion, String> {
        let value = self.string(attr, scope)?;
        match value.trim() {
            "tls12" => Ok(TlsVersion::Tls12),
            "tls13" => Ok(TlsVersion::Tls13),
            "tls10" | "tls11" => Err(self.at(
                value_span(attr, scope),
                format!("tls_min_version {value:?} is not supported (use tls12 or tls13)"),
            )),
            _ => Err(self.at(
                value_span(attr, scope),
                format!("invalid tls_min_version {value:?} (known: tls12, tls13)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::config::tests::err;

    #[test]
    fn tls_defaults_to_tls12() {
        let config = parse(
            r#"
storage "inmem" {}
listener "tcp" {
  tls_cert_file = "c.pem"
  tls_key_file  = "k.pem"
}
"#,
            "config.hcl",
        )
        .unwrap();
        let tls = config.listeners[0].tls.clone().unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert_eq!(tls.cert_file, PathBuf::from("c.pem"));
    }

    #[test]
    fn unknown_listener_setting() {
        let e = err(r#"storage "inmem" {}
listener "tcp" {
  tls_disable = true
  adress = "127.0.0.1:8200"
}
"#);
        assert!(
            e.starts_with(
                "config.hcl:4: unknown setting \"adress\" in listener \"tcp\" (known: address, tls_disable,"
            ),
            "{e}"
        );
        assert!(e.contains("did you mean \"address\""), "{e}");
    }

    #[test]
    fn missing_cert_with_tls_on() {
        let e = err(r#"storage "inmem" {}

listener "tcp" {
  tls_key_file = "k.pem"
}
"#);
        assert!(e.starts_with("config.hcl:3: "), "{e}");
        assert!(e.contains("no tls_cert_file"), "{e}");

        let e = err("storage \"inmem\" {}\nlistener \"tcp\" {}\n");
        assert!(e.starts_with("config.hcl:2: "), "{e}");
        assert!(e.contains("tls_cert_file and tls_key_file"), "{e}");

        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = false\n  tls_cert_file = \"c\"\n}\n",
        );
        assert!(e.starts_with("config.hcl:2: "), "{e}");
        assert!(e.contains("no tls_key_file"), "{e}");
    }

    #[test]
    fn tls_disable_variants() {
        let listener = |value: &str| {
            parse(
                &format!(
                    "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_disable = {value}\n  tls_cert_file = \"c\"\n  tls_key_file = \"k\"\n}}\n"
                ),
                "config.hcl",
            )
            .map(|c| c.listeners[0].tls.is_none())
        };
        for on in ["true", "\"true\"", "1", "\"1\"", "\"TRUE\"", "\"t\""] {
            assert_eq!(listener(on), Ok(true), "{on}");
        }
        for off in ["false", "\"false\"", "0", "\"0\"", "\"F\""] {
            assert_eq!(listener(off), Ok(false), "{off}");
        }
        for bad in ["\"yes\"", "2", "null", "[true]"] {
            let e = listener(bad).unwrap_err();
            assert!(
                e.starts_with(
                    "config.hcl:3: tls_disable in listener \"tcp\" must be true or false"
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_address() {
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  address = \"localhost:8200\"\n}\n",
        );
        assert!(
            e.starts_with("config.hcl:4: invalid address \"localhost:8200\""),
            "{e}"
        );
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  address = \":8200\"\n}\n",
        );
        assert!(e.contains("0.0.0.0:PORT"), "{e}");
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  address = 8200\n}\n",
        );
        assert!(e.contains("must be a quoted string, not a number"), "{e}");
    }

    #[test]
    fn duplicate_listener_address() {
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" { tls_disable = true }\nlistener \"tcp\" { tls_disable = true }\n",
        );
        assert!(e.starts_with("config.hcl:3: listener address 127.0.0.1:8200 is already used by the listener on line 2"), "{e}");
    }

    #[test]
    fn max_request_size() {
        for bad in ["0", "-1", "\"0\"", "\"big\"", "1.5"] {
            let e = err(&format!(
                "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_disable = true\n  max_request_size = {bad}\n}}\n"
            ));
            assert!(e.starts_with("config.hcl:4: max_request_size in listener \"tcp\" must be a whole number of bytes greater than 0"), "{e}");
        }
    }

    #[test]
    fn request_budget_settings() {
        let config = parse(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  max_request_json_memory = 1048576\n  max_request_json_strings = \"500\"\n  max_request_json_elements = 700\n  max_json_depth = 8\n  max_connections = 64\n  http_read_header_timeout = \"5s\"\n}\n",
            "config.hcl",
        )
        .unwrap();
        assert_eq!(
            config.listeners[0].limits,
            ListenerLimits {
                max_request_json_memory: Some(1 << 20),
                max_request_json_strings: Some(500),
                max_request_json_elements: Some(700),
                max_json_depth: Some(8),
                max_connections: Some(64),
                http_read_header_timeout: Some(Duration::from_secs(5)),
            }
        );
        let bad = |setting: &str| {
            err(&format!(
                "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_disable = true\n  {setting}\n}}\n"
            ))
        };
        let e = bad("max_json_depth = 101");
        assert!(e.starts_with("config.hcl:4: max_json_depth in listener \"tcp\" must be a whole number from 1 to 100"), "{e}");
        let e = bad("max_connections = 0");
        assert!(
            e.contains("max_connections in listener \"tcp\" must be a whole number greater than 0"),
            "{e}"
        );
        for timeout in ["\"0s\"", "\"fast\"", "\"500ms\"", "true"] {
            let e = bad(&format!("http_read_header_timeout = {timeout}"));
            assert!(e.contains("must be a duration of at least 1s"), "{e}");
        }
    }

    #[test]
    fn client_certificate_settings() {
        let tls = |setting: &str| {
            format!(
                "storage \"inmem\" {{}}\nlistener \"tcp\" {{\n  tls_cert_file = \"c\"\n  tls_key_file = \"k\"\n  {setting}\n}}\n"
            )
        };
        let asks = |setting: &str| {
            let config = parse(&tls(setting), "config.hcl").unwrap();
            !config.listeners[0]
                .tls
                .as_ref()
                .unwrap()
                .disable_client_certs
        };
        assert!(asks(""));
        assert!(asks("tls_disable_client_certs = false"));
        assert!(!asks("tls_disable_client_certs = true"));
        assert!(asks("tls_require_and_verify_client_cert = false"));
        let e = err(&tls("tls_require_and_verify_client_cert = true"));
        assert!(
            e.starts_with(
                "config.hcl:5: tls_require_and_verify_client_cert = true is not supported"
            ),
            "{e}"
        );
        let e = err(&tls("tls_client_ca_file = \"ca.pem\""));
        assert!(
            e.starts_with("config.hcl:5: tls_client_ca_file is not supported"),
            "{e}"
        );
    }

    #[test]
    fn listener_type() {
        let e = err("storage \"inmem\" {}\nlistener \"unix\" {\n  address = \"/run/t.sock\"\n}\n");
        assert!(
            e.starts_with("config.hcl:2: listener \"unix\" is not supported"),
            "{e}"
        );
        let e = err("storage \"inmem\" {}\nlistener \"udp\" {}\n");
        assert!(
            e.starts_with("config.hcl:2: unknown listener type \"udp\" (supported: tcp)"),
            "{e}"
        );
    }

    #[test]
    fn tls_min_version() {
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_cert_file = \"c\"\n  tls_key_file = \"k\"\n  tls_min_version = \"tls11\"\n}\n",
        );
        assert!(
            e.starts_with("config.hcl:5: tls_min_version \"tls11\" is not supported"),
            "{e}"
        );
    }
}
