//! The server configuration file: `transitd server -config=FILE`.
//!
//! The file is HCL in the shape Vault and OpenBao use, restricted to what
//! transitd implements:
//!
//! ```hcl
//! storage "sqlite" {
//!   path = "/var/lib/transitd/transitd.db"
//! }
//!
//! listener "tcp" {
//!   address          = "0.0.0.0:8200"
//!   tls_cert_file    = "/etc/transitd/tls.crt"
//!   tls_key_file     = "/etc/transitd/tls.key"
//!   tls_min_version  = "tls12"
//!   max_request_size = 33554432
//! }
//!
//! seal "static" {
//!   current_key_id = "2024-01"
//!   current_key    = "env://TRANSITD_SEAL_KEY"
//! }
//!
//! api_addr  = "https://transitd.example.com:8200"
//! log_level = "info"
//! ```
//!
//! The same file may be JSON, in the shapes Vault writes (`json.rs`): it is
//! read as the HCL it means, so each stanza below has one reader.
//!
//! Parsing is strict: an unknown or invalid setting stops the start with a
//! message of the form `FILE:LINE: what is wrong`, so that a typo never
//! silently falls back to a default (a misspelt `tls_disable` must not leave a
//! listener in plain text, nor a misspelt `tls_cert_file` turn TLS off). The
//! top-level settings of Vault that transitd ignores on purpose (`ui`,
//! `default_lease_ttl`, ... see [`IGNORED_SETTINGS`]) are accepted without
//! effect, so that an existing Vault file needs few edits.
//!
//! Like Vault, values may be written as strings, numbers or bools where the
//! meaning is unambiguous (`tls_disable = "true"`, `true` or `1`;
//! `max_request_size = 1024` or `"1024"`). Values that refer to secrets
//! (`current_key = "env://VAR"`, `"file:///path"`, or the key itself) are kept
//! as written: this module reads no other file, and the environment only for
//! one setting, like Vault: a `storage "postgresql"` block without
//! `connection_url` takes it from `BAO_PG_CONNECTION_URL` (or
//! `VAULT_PG_CONNECTION_URL`).
//!
//! Several nodes may share one PostgreSQL database instead of SQLite:
//!
//! ```hcl
//! storage "postgresql" {
//!   connection_url = "postgres://transitd:PASSWORD@db.example.com/transitd?sslmode=verify-full"
//!   max_parallel   = 8          # connections per node (default 8)
//!   schema         = "transitd" # default "public"
//! }
//! ```

mod json;
mod listener;
mod seal;
mod source;
mod storage;
mod telemetry;

use std::io::Read;
use std::path::Path;

use hcl_edit::Span;
use hcl_edit::structure::{Attribute, Structure};

pub use listener::{DEFAULT_ADDRESS, ListenerConfig, ListenerLimits, TlsConfig, TlsVersion};
pub use seal::{SealConfig, TransitSealConfig};
pub use storage::{
    DEFAULT_PG_MAX_PARALLEL, MAX_PG_MAX_PARALLEL, PG_CONNECTION_URL_ENV, StorageConfig,
};

use source::{Scope, Source, attr_span, unknown_setting, value_span};

/// Largest configuration accepted, in bytes (1 MiB).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Top-level Vault settings that transitd accepts and ignores on purpose.
pub const IGNORED_SETTINGS: &[&str] = &[
    "ui",
    "disable_cache",
    "default_lease_ttl",
    "max_lease_ttl",
    "cluster_addr",
    "plugin_directory",
    "pid_file",
    "log_file",
];

/// Top-level settings transitd uses.
const TOP_LEVEL_SETTINGS: &[&str] = &[
    "api_addr",
    "cluster_name",
    "log_level",
    "log_format",
    "disable_mlock",
];

/// Top-level blocks transitd uses.
const TOP_LEVEL_BLOCKS: &[&str] = &["storage", "listener", "seal", "telemetry"];

/// Vault/OpenBao blocks that transitd knows of but does not implement.
const UNSUPPORTED_BLOCKS: &[&str] = &[
    "ha_storage",
    "ha_backend",
    "service_registration",
    "entropy",
    "kms_library",
    "user_lockout",
    "audit",
    "plugin",
    "hsm",
];

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub storage: StorageConfig,
    /// At least one `listener "tcp"` block is required.
    pub listeners: Vec<ListenerConfig>,
    /// `None`: the barrier key is protected by Shamir shares.
    pub seal: Option<SealConfig>,
    /// The seal block marked `disabled = "true"`: the auto seal a seal
    /// migration moves away from (`seal::migration`).
    pub old_seal: Option<SealConfig>,
    pub api_addr: Option<String>,
    pub cluster_name: Option<String>,
    /// One of `trace`, `debug`, `info`, `warn`, `error` (Vault's `warning`
    /// and `err` are normalised to `warn` and `error`).
    pub log_level: Option<String>,
    /// Default `false`.
    pub disable_mlock: bool,
    /// The `telemetry` block; without one, `sys/metrics` serves JSON only.
    pub telemetry: crate::metrics::Telemetry,
    /// `log_format`; `None`: not in the file.
    pub log_format: Option<LogFormat>,
    /// What the server log should say about the file (deprecated names).
    pub warnings: Vec<String>,
}

/// How the server writes its log: Vault's `log_format`, `-log-format` and
/// `VAULT_LOG_FORMAT` take the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Vault's default name: lines for people.
    #[default]
    Standard,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The names Vault accepts (`standard`, `json`; case and padding
    /// ignored, as Vault's `ParseLogFormat`); anything else is `None`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "standard" => Some(Self::Standard),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Where the log format is read from the environment when no
/// `-log-format` flag is given, in order (OpenBao's name, then Vault's).
pub const LOG_FORMAT_ENV: &[&str] = &["BAO_LOG_FORMAT", "VAULT_LOG_FORMAT"];

/// Reads and parses the configuration file at `path`.
///
/// Refuses files larger than [`MAX_CONFIG_BYTES`] and files that are not
/// UTF-8; errors start with the path.
pub fn load(path: &Path) -> Result<Config, String> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| format!("{name}: cannot open configuration file: {e}"))?;
    let mut bytes = Vec::new();
    // One byte more than the limit tells "exactly 1 MiB" from "larger".
    let limit = u64::try_from(MAX_CONFIG_BYTES).map_or(u64::MAX, |n| n.saturating_add(1));
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: cannot read configuration file: {e}"))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(format!(
            "{name}: configuration file is larger than 1 MiB; refusing to read it"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        format!("{name}:{line}: configuration file is not valid UTF-8")
    })?;
    parse(&text, &name)
}

/// Parses a configuration; `file_name` only prefixes error messages
/// (`file_name:line: ...`). Reads the environment only for what
/// [`PG_CONNECTION_URL_ENV`] names.
pub fn parse(source: &str, file_name: &str) -> Result<Config, String> {
    parse_with_env(source, file_name, &|name| std::env::var(name).ok())
}

/// [`parse`], with `env` in place of the process environment.
fn parse_with_env(
    source: &str,
    file_name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    // A byte order mark is on line 1 and contains no newline, so stripping it
    // keeps line numbers right.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    if source.len() > MAX_CONFIG_BYTES {
        return Err(format!("{file_name}: configuration is larger than 1 MiB"));
    }
    // JSON is read as the HCL it means, so both go through one walker.
    let translated;
    let (hcl, src) = if json::is_json(source) {
        let is_block = |key: &str| {
            TOP_LEVEL_BLOCKS.contains(&key) || UNSUPPORTED_BLOCKS.contains(&key) || key == "backend"
        };
        translated = json::translate(source, &is_block).map_err(|e| match e {
            json::JsonError::Syntax { line, message } => format!("{file_name}:{line}: {message}"),
            json::JsonError::At { path, message } => format!("{file_name}: {path}: {message}"),
        })?;
        (
            translated.hcl.as_str(),
            Source::from_json(file_name, &translated.hcl, &translated.paths),
        )
    } else {
        (source, Source::new(file_name, source))
    };
    let body = hcl_edit::parser::parse_body(hcl).map_err(|e| src.syntax_error(&e))?;

    // Each with the place of its block, and the storage's block name.
    let mut storage: Option<(StorageConfig, String, &str)> = None;
    let mut listeners: Vec<(ListenerConfig, String)> = Vec::new();
    let mut seal: Option<(Option<SealConfig>, String)> = None;
    let mut old_seal: Option<(SealConfig, String)> = None;
    let mut telemetry: Option<(crate::metrics::Telemetry, String)> = None;
    let mut api_addr = None;
    let mut cluster_name = None;
    let mut log_level = None;
    let mut log_format = None;
    let mut disable_mlock = false;
    let mut warnings = Vec::new();
    let top = Scope {
        what: String::new(),
        span: None,
    };

    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => match attr.key.as_str() {
                "api_addr" => api_addr = non_empty(src.string(attr, &top)?),
                "cluster_name" => cluster_name = non_empty(src.string(attr, &top)?),
                "log_level" => log_level = Some(src.log_level(attr, &top)?),
                "log_format" => log_format = Some(src.log_format(attr, &top)?),
                "disable_mlock" => disable_mlock = src.boolean(attr, &top)?,
                key if IGNORED_SETTINGS.contains(&key) => {}
                key if TOP_LEVEL_BLOCKS.contains(&key) => {
                    return Err(src.at(
                        attr_span(attr, &top),
                        format!("{key} must be a block, e.g. {}", block_example(key)),
                    ));
                }
                key if UNSUPPORTED_BLOCKS.contains(&key) => {
                    return Err(src.at(attr_span(attr, &top), unsupported_block(key)));
                }
                key => {
                    return Err(src.at(
                        attr_span(attr, &top),
                        unknown_setting(key, "", TOP_LEVEL_SETTINGS, IGNORED_SETTINGS),
                    ));
                }
            },
            Structure::Block(block) => {
                let place = src.place(block.span());
                match block.ident.as_str() {
                    ident @ ("storage" | "backend") => {
                        if let Some((_, first, first_ident)) = &storage {
                            let message = if *first_ident == ident {
                                format!(
                                    "second {ident} block (the first is {first}); exactly one is allowed"
                                )
                            } else {
                                format!(
                                    "both storage and backend (its old name) are given (the first is {first}); keep one storage block"
                                )
                            };
                            return Err(src.at(block.span(), message));
                        }
                        if ident == "backend" {
                            warnings.push(src.at(
                                block.span(),
                                "\"backend\" is the deprecated name of \"storage\"; it works the same, but write storage instead",
                            ));
                        }
                        storage = Some((src.storage(block, env)?, place, ident));
                    }
                    "listener" => {
                        let listener = src.listener(block)?;
                        if let Some((_, first)) = listeners
                            .iter()
                            .find(|(l, _)| l.address == listener.address)
                        {
                            return Err(src.at(
                                block.span(),
                                format!(
                                    "listener address {} is already used by the listener {first}",
                                    listener.address
                                ),
                            ));
                        }
                        listeners.push((listener, place));
                    }
                    "seal" => {
                        let parsed = src.seal(block)?;
                        // One active seal, and for a migration one disabled (old) one.
                        let first = if parsed.disabled {
                            old_seal.as_ref().map(|(_, first)| first)
                        } else {
                            seal.as_ref().map(|(_, first)| first)
                        };
                        if let Some(first) = first {
                            let which = if parsed.disabled { "disabled " } else { "" };
                            return Err(src.at(
                                block.span(),
                                format!(
                                    "second {which}seal block (the first is {first}); at most one \
                                     is allowed, and one more marked disabled = \"true\" for a \
                                     seal migration"
                                ),
                            ));
                        }
                        match parsed.config {
                            Some(config) if parsed.disabled => old_seal = Some((config, place)),
                            config => seal = Some((config, place)),
                        }
                    }
                    "telemetry" => {
                        if let Some((_, first)) = telemetry {
                            return Err(src.at(
                                block.span(),
                                format!(
                                    "second telemetry block (the first is {first}); at most one is allowed"
                                ),
                            ));
                        }
                        telemetry = Some((src.telemetry(block)?, place));
                    }
                    ident if UNSUPPORTED_BLOCKS.contains(&ident) => {
                        return Err(src.at(block.span(), unsupported_block(ident)));
                    }
                    ident
                        if TOP_LEVEL_SETTINGS.contains(&ident)
                            || IGNORED_SETTINGS.contains(&ident) =>
                    {
                        return Err(src.at(
                            block.span(),
                            format!("{ident} is a setting, not a block: write {ident} = ..."),
                        ));
                    }
                    ident => {
                        return Err(src.at(
                            block.span(),
                            format!(
                                "unknown block \"{ident}\" (known: {})",
                                TOP_LEVEL_BLOCKS.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }

    let Some((storage, _, _)) = storage else {
        return Err(src.general(
            "no storage block: add storage \"sqlite\" { path = \"...\" } (or storage \"inmem\" {} for tests)",
        ));
    };
    if listeners.is_empty() {
        return Err(src.general(
            "no listener block: add listener \"tcp\" { address = \"127.0.0.1:8200\" ... }",
        ));
    }
    Ok(Config {
        storage,
        listeners: listeners.into_iter().map(|(l, _)| l).collect(),
        seal: seal.and_then(|(s, _)| s),
        old_seal: old_seal.map(|(s, _)| s),
        api_addr,
        cluster_name,
        log_level,
        disable_mlock,
        telemetry: telemetry.map(|(t, _)| t).unwrap_or_default(),
        log_format,
        warnings,
    })
}

impl Source<'_> {
    fn log_level(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
        let value = self.string(attr, scope)?;
        let level = match value.trim().to_ascii_lowercase().as_str() {
            "trace" => "trace",
            "debug" => "debug",
            "info" => "info",
            "warn" | "warning" => "warn",
            "error" | "err" => "error",
            _ => {
                return Err(self.at(
                    value_span(attr, scope),
                    format!("invalid log_level {value:?} (known: trace, debug, info, warn, error)"),
                ));
            }
        };
        Ok(level.to_owned())
    }

    fn log_format(&self, attr: &Attribute, scope: &Scope) -> Result<LogFormat, String> {
        let value = self.string(attr, scope)?;
        LogFormat::parse(&value).ok_or_else(|| {
            self.at(
                value_span(attr, scope),
                format!("invalid log_format {value:?} (known: standard, json)"),
            )
        })
    }
}

fn non_empty(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

fn block_example(ident: &str) -> &'static str {
    match ident {
        "storage" => "storage \"sqlite\" { path = \"...\" }",
        "listener" => "listener \"tcp\" { address = \"127.0.0.1:8200\" }",
        "seal" => "seal \"static\" { current_key_id = \"...\" current_key = \"...\" }",
        "telemetry" => "telemetry { prometheus_retention_time = \"24h\" }",
        _ => "name \"type\" { ... }",
    }
}

fn unsupported_block(ident: &str) -> String {
    format!("{ident} is not supported by transitd; remove the {ident} block")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    pub(super) const MINIMAL: &str = r#"
storage "inmem" {}

listener "tcp" {
  tls_disable = true
}
"#;

    pub(super) fn err(source: &str) -> String {
        parse(source, "config.hcl").expect_err("config should be rejected")
    }

    #[test]
    fn full_config() {
        let source = r#"
# Every setting transitd understands.
storage "sqlite" {
  path = "/var/lib/transitd/transitd.db"
}

listener "tcp" {
  address          = "0.0.0.0:8200"
  tls_cert_file    = "/etc/transitd/tls.crt"
  tls_key_file     = "/etc/transitd/tls.key"
  tls_min_version  = "tls13"
  max_request_size = 1048576
}

listener "tcp" {
  address          = "[::1]:8300"
  tls_disable      = "true"
  max_request_size = "2048"
}

seal "static" {
  current_key_id  = "2024-02"
  current_key     = "env://TRANSITD_SEAL_KEY"
  previous_key_id = "2024-01"
  previous_key    = "file:///etc/transitd/old.key"
}

api_addr      = "https://transitd.example.com:8200"
cluster_name  = "prod"
log_level     = "Warning"
disable_mlock = true
"#;
        let config = parse(source, "config.hcl").unwrap();
        assert_eq!(
            config,
            Config {
                storage: StorageConfig::Sqlite {
                    path: PathBuf::from("/var/lib/transitd/transitd.db"),
                },
                listeners: vec![
                    ListenerConfig {
                        address: "0.0.0.0:8200".parse().unwrap(),
                        tls: Some(TlsConfig {
                            cert_file: PathBuf::from("/etc/transitd/tls.crt"),
                            key_file: PathBuf::from("/etc/transitd/tls.key"),
                            min_version: TlsVersion::Tls13,
                            disable_client_certs: false,
                        }),
                        max_request_size: Some(1_048_576),
                        limits: ListenerLimits::default(),
                        unauthenticated_metrics_access: false,
                    },
                    ListenerConfig {
                        address: "[::1]:8300".parse().unwrap(),
                        tls: None,
                        max_request_size: Some(2048),
                        limits: ListenerLimits::default(),
                        unauthenticated_metrics_access: false,
                    },
                ],
                seal: Some(SealConfig::Static {
                    current_key_id: "2024-02".to_owned(),
                    current_key: "env://TRANSITD_SEAL_KEY".to_owned(),
                    previous_key_id: Some("2024-01".to_owned()),
                    previous_key: Some("file:///etc/transitd/old.key".to_owned()),
                }),
                old_seal: None,
                api_addr: Some("https://transitd.example.com:8200".to_owned()),
                cluster_name: Some("prod".to_owned()),
                log_level: Some("warn".to_owned()),
                disable_mlock: true,
                telemetry: crate::metrics::Telemetry::default(),
                log_format: None,
                warnings: Vec::new(),
            }
        );
    }

    #[test]
    fn minimal_config_defaults() {
        let config = parse(MINIMAL, "config.hcl").unwrap();
        assert_eq!(config.storage, StorageConfig::Inmem);
        assert_eq!(
            config.listeners,
            vec![ListenerConfig {
                address: DEFAULT_ADDRESS,
                tls: None,
                max_request_size: None,
                limits: ListenerLimits::default(),
                unauthenticated_metrics_access: false,
            }]
        );
        assert_eq!(DEFAULT_ADDRESS.to_string(), "127.0.0.1:8200");
        assert_eq!(config.seal, None);
        assert_eq!(config.api_addr, None);
        assert_eq!(config.cluster_name, None);
        assert_eq!(config.log_level, None);
        assert!(!config.disable_mlock);
    }

    #[test]
    fn unknown_top_level_setting_names_line() {
        let e = err(&format!("{MINIMAL}\nui = true\napi_adr = \"x\"\n"));
        assert!(
            e.starts_with("config.hcl:9: unknown setting \"api_adr\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"api_addr\""), "{e}");
    }

    #[test]
    fn two_storage_blocks() {
        let e = err(&format!(
            "{MINIMAL}storage \"sqlite\" {{\n  path = \"x.db\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: second storage block (the first is on line 2)"),
            "{e}"
        );
    }

    #[test]
    fn no_storage() {
        let e = err("listener \"tcp\" { tls_disable = true }\n");
        assert!(e.starts_with("config.hcl: no storage block"), "{e}");
    }

    #[test]
    fn no_listener() {
        let e = err("storage \"inmem\" {}\n");
        assert!(e.starts_with("config.hcl: no listener block"), "{e}");
    }

    #[test]
    fn ignored_vault_settings() {
        let config = parse(
            &format!(
                "{MINIMAL}ui = true\ndisable_cache = true\ndefault_lease_ttl = \"768h\"\nmax_lease_ttl = \"8760h\"\ncluster_addr = \"https://127.0.0.1:8201\"\nplugin_directory = \"/p\"\npid_file = \"/run/t.pid\"\nlog_file = \"/var/log/t.log\"\n"
            ),
            "config.hcl",
        )
        .unwrap();
        assert_eq!(config, parse(MINIMAL, "config.hcl").unwrap());
    }

    #[test]
    fn unsupported_blocks() {
        let e = err(&format!("{MINIMAL}ha_storage \"raft\" {{}}\n"));
        assert!(
            e.starts_with("config.hcl:7: ha_storage is not supported by transitd"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}backend \"inmem\" {{}}\n"));
        assert!(
            e.starts_with("config.hcl:7: both storage and backend (its old name) are given (the first is on line 2)"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}storage = \"inmem\"\n"));
        assert!(
            e.starts_with("config.hcl:7: storage must be a block"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}widgets {{}}\n"));
        assert!(
            e.starts_with("config.hcl:7: unknown block \"widgets\""),
            "{e}"
        );
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  tls {\n  }\n}\n",
        );
        assert!(
            e.starts_with("config.hcl:4: unexpected block \"tls\" in listener \"tcp\""),
            "{e}"
        );
    }

    #[test]
    fn backend_is_storage_with_a_warning() {
        let source =
            "backend \"sqlite\" {\n  path = \"t.db\"\n}\nlistener \"tcp\" { tls_disable = 1 }\n";
        let config = parse(source, "config.hcl").unwrap();
        assert_eq!(
            config.storage,
            StorageConfig::Sqlite {
                path: PathBuf::from("t.db")
            }
        );
        assert_eq!(
            config.warnings,
            vec![
                "config.hcl:1: \"backend\" is the deprecated name of \"storage\"; it works the same, but write storage instead"
                    .to_owned()
            ]
        );
        // Either order, both names: refused, so no block is silently unused.
        let e = err(&format!("{source}storage \"inmem\" {{}}\n"));
        assert!(
            e.starts_with("config.hcl:5: both storage and backend (its old name) are given (the first is on line 1)"),
            "{e}"
        );
        let e = err(&format!("{source}backend \"inmem\" {{}}\n"));
        assert!(
            e.starts_with("config.hcl:5: second backend block (the first is on line 1)"),
            "{e}"
        );
        assert!(parse(MINIMAL, "config.hcl").unwrap().warnings.is_empty());
    }

    #[test]
    fn log_formats() {
        let format = |value: &str| {
            parse(&format!("{MINIMAL}log_format = {value}\n"), "config.hcl").map(|c| c.log_format)
        };
        assert_eq!(format("\"json\""), Ok(Some(LogFormat::Json)));
        assert_eq!(format("\" JSON \""), Ok(Some(LogFormat::Json)));
        assert_eq!(format("\"standard\""), Ok(Some(LogFormat::Standard)));
        assert_eq!(parse(MINIMAL, "config.hcl").unwrap().log_format, None);
        let e = format("\"logfmt\"").unwrap_err();
        assert!(
            e.starts_with("config.hcl:7: invalid log_format \"logfmt\" (known: standard, json)"),
            "{e}"
        );
        let e = format("1").unwrap_err();
        assert!(
            e.starts_with("config.hcl:7: log_format must be a quoted string"),
            "{e}"
        );
        assert_eq!(LogFormat::parse("unspecified"), None);
    }

    #[test]
    fn log_levels() {
        let level = |value: &str| {
            parse(&format!("{MINIMAL}log_level = \"{value}\"\n"), "config.hcl").map(|c| c.log_level)
        };
        assert_eq!(level("err"), Ok(Some("error".to_owned())));
        assert_eq!(level("DEBUG"), Ok(Some("debug".to_owned())));
        assert_eq!(level("trace"), Ok(Some("trace".to_owned())));
        let e = level("loud").unwrap_err();
        assert!(
            e.starts_with("config.hcl:7: invalid log_level \"loud\""),
            "{e}"
        );
    }

    #[test]
    fn interpolation_is_rejected() {
        let e = err(&format!("{MINIMAL}api_addr = \"${{foo}}\"\n"));
        assert!(
            e.starts_with("config.hcl:7: api_addr must be a quoted string, not a string with"),
            "{e}"
        );
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let source = format!("\u{feff}{}", MINIMAL.replace('\n', "\r\n"));
        assert!(parse(&source, "config.hcl").is_ok());
        let e = err("\u{feff}storage \"inmem\" {}\r\nbogus = 1\r\n");
        assert!(
            e.starts_with("config.hcl:2: unknown setting \"bogus\""),
            "{e}"
        );
    }

    #[test]
    fn load_reads_and_limits_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.hcl");
        std::fs::write(&good, MINIMAL).unwrap();
        assert_eq!(load(&good).unwrap().storage, StorageConfig::Inmem);

        let missing = dir.path().join("missing.hcl");
        let e = load(&missing).unwrap_err();
        assert!(
            e.contains("missing.hcl: cannot open configuration file"),
            "{e}"
        );

        let huge = dir.path().join("huge.hcl");
        std::fs::write(&huge, vec![b'#'; MAX_CONFIG_BYTES + 1]).unwrap();
        let e = load(&huge).unwrap_err();
        assert!(e.contains("larger than 1 MiB"), "{e}");

        let binary = dir.path().join("binary.hcl");
        std::fs::write(&binary, b"ui = true\n# \xff\xfe\n").unwrap();
        let e = load(&binary).unwrap_err();
        assert!(
            e.ends_with("binary.hcl:2: configuration file is not valid UTF-8"),
            "{e}"
        );
    }
}
