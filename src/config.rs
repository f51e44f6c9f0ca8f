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

use std::fmt;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Range;
use std::path::{Path, PathBuf};

use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block, Structure};

/// Largest configuration accepted, in bytes (1 MiB).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// Listener address used when a `listener "tcp"` block has no `address`.
pub const DEFAULT_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8200));

/// Top-level Vault settings that transitd accepts and ignores on purpose.
pub const IGNORED_SETTINGS: &[&str] = &[
    "ui",
    "disable_cache",
    "default_lease_ttl",
    "max_lease_ttl",
    "cluster_addr",
    "plugin_directory",
    "pid_file",
    "log_format",
    "log_file",
];

/// Top-level settings transitd uses.
const TOP_LEVEL_SETTINGS: &[&str] = &["api_addr", "cluster_name", "log_level", "disable_mlock"];

/// Top-level blocks transitd uses.
const TOP_LEVEL_BLOCKS: &[&str] = &["storage", "listener", "seal"];

/// Vault/OpenBao blocks that transitd knows of but does not implement.
const UNSUPPORTED_BLOCKS: &[&str] = &[
    "telemetry",
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

const LISTENER_SETTINGS: &[&str] = &[
    "address",
    "tls_disable",
    "tls_cert_file",
    "tls_key_file",
    "tls_min_version",
    "max_request_size",
];

const POSTGRESQL_SETTINGS: &[&str] = &["connection_url", "max_parallel", "schema"];

/// Where `storage "postgresql"` finds `connection_url` when the block has
/// none, in order (OpenBao's name, then Vault's).
pub const PG_CONNECTION_URL_ENV: &[&str] = &["BAO_PG_CONNECTION_URL", "VAULT_PG_CONNECTION_URL"];

/// Default `max_parallel` of `storage "postgresql"`.
pub const DEFAULT_PG_MAX_PARALLEL: usize = 8;

/// Largest `max_parallel` of `storage "postgresql"`.
pub const MAX_PG_MAX_PARALLEL: usize = 1024;

const STATIC_SEAL_SETTINGS: &[&str] = &[
    "current_key_id",
    "current_key",
    "previous_key_id",
    "previous_key",
];

/// The whole server configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub storage: StorageConfig,
    /// At least one `listener "tcp"` block is required.
    pub listeners: Vec<ListenerConfig>,
    /// `None`: the barrier key is protected by Shamir shares.
    pub seal: Option<SealConfig>,
    pub api_addr: Option<String>,
    pub cluster_name: Option<String>,
    /// One of `trace`, `debug`, `info`, `warn`, `error` (Vault's `warning`
    /// and `err` are normalised to `warn` and `error`).
    pub log_level: Option<String>,
    /// Default `false`.
    pub disable_mlock: bool,
}

/// Where the keys live: exactly one `storage` block.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `storage "sqlite" { path = "..." }`; the path is used as written
    /// (a relative path is relative to the working directory, like Vault).
    Sqlite { path: PathBuf },
    /// `storage "postgresql" { connection_url = "...", max_parallel = 8,
    /// schema = "public" }`, shared by several nodes. `connection_url` may
    /// hold a password: `Debug` redacts it.
    Postgresql {
        connection_url: String,
        /// Default [`DEFAULT_PG_MAX_PARALLEL`].
        max_parallel: usize,
        /// Default `public`.
        schema: String,
    },
    /// `storage "inmem" {}`: nothing survives a restart.
    Inmem,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgresql {
                connection_url,
                max_parallel,
                schema,
            } => f
                .debug_struct("Postgresql")
                .field(
                    "connection_url",
                    &crate::storage::redact_connection_url(connection_url),
                )
                .field("max_parallel", max_parallel)
                .field("schema", schema)
                .finish(),
            Self::Inmem => f.write_str("Inmem"),
        }
    }
}

/// One `listener "tcp"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// Default [`DEFAULT_ADDRESS`] (`127.0.0.1:8200`).
    pub address: SocketAddr,
    /// `None` when `tls_disable` is true.
    pub tls: Option<TlsConfig>,
    /// Largest request body in bytes; `None`: the server's default.
    pub max_request_size: Option<usize>,
}

/// TLS settings of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub min_version: TlsVersion,
}

/// `tls_min_version`: `"tls12"` (default) or `"tls13"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    #[default]
    Tls12,
    Tls13,
}

/// An auto-unseal mechanism; at most one `seal` block.
#[derive(Clone, PartialEq, Eq)]
pub enum SealConfig {
    /// OpenBao's `seal "static"`: current_key_id, current_key (required),
    /// previous_key_id, previous_key (optional, together).
    ///
    /// The keys are kept as written (`env://VAR`, `file:///path`, or the key
    /// in base64 or hex) for another module to resolve.
    Static {
        current_key_id: String,
        current_key: String,
        previous_key_id: Option<String>,
        previous_key: Option<String>,
    },
}

/// Shows a key reference (`env://`, `file://`) but never key material, so a
/// configuration can be logged with `{:?}`.
struct KeyForDebug<'a>(&'a str);

impl fmt::Debug for KeyForDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.starts_with("env://") || self.0.starts_with("file://") {
            fmt::Debug::fmt(self.0, f)
        } else {
            f.write_str("<redacted>")
        }
    }
}

impl fmt::Debug for SealConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static {
                current_key_id,
                current_key,
                previous_key_id,
                previous_key,
            } => f
                .debug_struct("Static")
                .field("current_key_id", current_key_id)
                .field("current_key", &KeyForDebug(current_key))
                .field("previous_key_id", previous_key_id)
                .field("previous_key", &previous_key.as_deref().map(KeyForDebug))
                .finish(),
        }
    }
}

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
    let src = Source::new(file_name, source);
    if source.len() > MAX_CONFIG_BYTES {
        return Err(src.general("configuration is larger than 1 MiB"));
    }
    let body = hcl_edit::parser::parse_body(source).map_err(|e| src.syntax_error(&e))?;

    let mut storage: Option<(StorageConfig, usize)> = None;
    let mut listeners: Vec<(ListenerConfig, usize)> = Vec::new();
    let mut seal: Option<(SealConfig, usize)> = None;
    let mut api_addr = None;
    let mut cluster_name = None;
    let mut log_level = None;
    let mut disable_mlock = false;
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
                let line = src.line_of_span(block.span());
                match block.ident.as_str() {
                    "storage" => {
                        if let Some((_, first)) = storage {
                            return Err(src.at(
                                block.span(),
                                format!(
                                    "second storage block (the first is on line {first}); exactly one is allowed"
                                ),
                            ));
                        }
                        storage = Some((src.storage(block, env)?, line));
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
                                    "listener address {} is already used by the listener on line {first}",
                                    listener.address
                                ),
                            ));
                        }
                        listeners.push((listener, line));
                    }
                    "seal" => {
                        if let Some((_, first)) = seal {
                            return Err(src.at(
                                block.span(),
                                format!(
                                    "second seal block (the first is on line {first}); at most one is allowed"
                                ),
                            ));
                        }
                        seal = Some((src.seal(block)?, line));
                    }
                    "backend" => {
                        return Err(src.at(
                            block.span(),
                            "\"backend\" is the deprecated name of \"storage\"; write storage \"...\" { ... } instead",
                        ));
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

    let Some((storage, _)) = storage else {
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
        seal: seal.map(|(s, _)| s),
        api_addr,
        cluster_name,
        log_level,
        disable_mlock,
    })
}

/// The block an attribute is in: its description for messages
/// (`listener "tcp"`, empty at the top level) and its span, used when an
/// attribute has none of its own (one-line blocks).
struct Scope {
    what: String,
    span: Option<Range<usize>>,
}

impl Scope {
    fn of(block: &Block) -> Self {
        let mut what = block.ident.as_str().to_owned();
        for label in &block.labels {
            what.push_str(&format!(" {:?}", label.as_str()));
        }
        Self {
            what,
            span: block.span(),
        }
    }

    /// `" in listener \"tcp\""`, or nothing at the top level.
    fn suffix(&self) -> String {
        if self.what.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.what)
        }
    }
}

/// The configuration text and its name, to turn byte spans into
/// `file:line:` prefixes.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
    /// Byte offset at which each line starts; line 1 starts at 0.
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file,
            text,
            line_starts,
        }
    }

    /// 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    fn line_of_span(&self, span: Option<Range<usize>>) -> usize {
        span.map_or(1, |s| self.line_of(s.start))
    }

    /// `file:line: message` (just `file: message` without a span).
    fn at(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> String {
        match span {
            Some(span) => format!("{}:{}: {message}", self.file, self.line_of(span.start)),
            None => self.general(message),
        }
    }

    /// An error about the file as a whole.
    fn general(&self, message: impl fmt::Display) -> String {
        format!("{}: {message}", self.file)
    }

    /// The source text of a value, shortened, for messages. Only for values
    /// that are not secret.
    fn snippet(&self, expr: &Expression) -> String {
        let text = expr
            .span()
            .and_then(|s| self.text.get(s))
            .map_or_else(|| expr.to_string(), str::to_owned);
        let text = text.trim();
        if text.chars().count() > 40 {
            let short: String = text.chars().take(40).collect();
            format!("{short}...")
        } else {
            text.to_owned()
        }
    }

    fn syntax_error(&self, error: &hcl_edit::parser::Error) -> String {
        let location = error.location();
        let line = self.line_of(location.offset());
        if error.message().contains("redefined attribute") {
            // hcl-edit reports a repeated key at the key itself.
            let key: String = self
                .text
                .get(location.offset()..)
                .unwrap_or_default()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            return format!(
                "{}:{line}: duplicate setting \"{key}\" (a setting may appear only once in a block)",
                self.file
            );
        }
        format!(
            "{}:{line}: syntax error at column {}: {}",
            self.file,
            location.column(),
            error.message()
        )
    }

    /// An attribute's value that must be a quoted string.
    fn string(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
        match &attr.value {
            Expression::String(s) => Ok(s.value().clone()),
            other => Err(self.at(
                value_span(attr, scope),
                format!(
                    "{}{} must be a quoted string, not {}",
                    attr.key.as_str(),
                    scope.suffix(),
                    kind(other)
                ),
            )),
        }
    }

    /// A string, or a whole number taken as its decimal text (HCL 1, which
    /// Vault uses, turns numbers into strings for string fields).
    fn string_or_integer(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
        if let Expression::Number(n) = &attr.value {
            let n = n.value();
            if let Some(text) = n.as_u64().map(|v| v.to_string()) {
                return Ok(text);
            }
        }
        self.string(attr, scope)
    }

    /// A non-empty string (or whole number) that is not secret.
    fn required_text(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
        let value = self.string_or_integer(attr, scope)?;
        if value.trim().is_empty() {
            return Err(self.at(
                value_span(attr, scope),
                format!("{}{} must not be empty", attr.key.as_str(), scope.suffix()),
            ));
        }
        Ok(value)
    }

    /// A bool written the ways Vault accepts: `true`, `"true"`, `"1"`, `1`,
    /// `"t"`, ... (Go's `strconv.ParseBool`), and the `false` forms.
    fn boolean(&self, attr: &Attribute, scope: &Scope) -> Result<bool, String> {
        let parsed = match &attr.value {
            Expression::Bool(b) => Some(*b.value()),
            Expression::String(s) => parse_bool(s.value().trim()),
            Expression::Number(n) => match n.value().as_u64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| {
            self.at(
                value_span(attr, scope),
                format!(
                    "{}{} must be true or false, got {}",
                    attr.key.as_str(),
                    scope.suffix(),
                    self.snippet(&attr.value)
                ),
            )
        })
    }

    /// A whole number greater than zero, written as a number or a string.
    fn positive_size(&self, attr: &Attribute, scope: &Scope) -> Result<usize, String> {
        let parsed = match &attr.value {
            Expression::Number(n) => n.value().as_u64(),
            Expression::String(s) => s.value().trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .filter(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.at(
                    value_span(attr, scope),
                    format!(
                        "{}{} must be a whole number of bytes greater than 0, got {}",
                        attr.key.as_str(),
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }

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

    /// The one label of a block: its type (`storage "sqlite"`).
    fn block_type<'b>(&self, block: &'b Block) -> Result<&'b str, String> {
        let ident = block.ident.as_str();
        match block.labels.as_slice() {
            [label] => Ok(label.as_str()),
            [] => Err(self.at(
                block.span(),
                format!("{ident} block needs a type, e.g. {}", block_example(ident)),
            )),
            labels => Err(self.at(
                block.span(),
                format!("{ident} block takes one type label, found {}", labels.len()),
            )),
        }
    }

    /// The attributes of a block that may only hold `known` settings.
    fn settings<'b>(
        &self,
        block: &'b Block,
        scope: &Scope,
        known: &[&str],
    ) -> Result<Vec<&'b Attribute>, String> {
        let mut settings = Vec::new();
        for structure in block.body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let key = attr.key.as_str();
                    if !known.contains(&key) {
                        return Err(self.at(
                            attr_span(attr, scope),
                            unknown_setting(key, &scope.what, known, &[]),
                        ));
                    }
                    settings.push(attr);
                }
                Structure::Block(inner) => {
                    return Err(self.at(
                        inner.span().or_else(|| scope.span.clone()),
                        format!(
                            "unexpected block \"{}\"{} (only settings like key = value belong here)",
                            inner.ident.as_str(),
                            scope.suffix()
                        ),
                    ));
                }
            }
        }
        Ok(settings)
    }

    fn storage(
        &self,
        block: &Block,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        let scope = Scope::of(block);
        match self.block_type(block)? {
            "sqlite" => {
                let mut path = None;
                for attr in self.settings(block, &scope, &["path"])? {
                    path = Some(self.required_text(attr, &scope)?);
                }
                let path = path.ok_or_else(|| {
                    self.at(
                        block.span(),
                        "storage \"sqlite\" needs path = \"/path/to/transitd.db\"",
                    )
                })?;
                Ok(StorageConfig::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            "inmem" => {
                self.settings(block, &scope, &[])?;
                Ok(StorageConfig::Inmem)
            }
            "postgresql" => self.postgresql(block, &scope, env),
            other => Err(self.at(
                block.span(),
                format!("unknown storage type {other:?} (supported: sqlite, postgresql, inmem)"),
            )),
        }
    }

    /// `storage "postgresql"`: `connection_url` (or the environment),
    /// `max_parallel`, `schema`.
    fn postgresql(
        &self,
        block: &Block,
        scope: &Scope,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        let mut connection_url = None;
        let mut max_parallel = DEFAULT_PG_MAX_PARALLEL;
        let mut schema = "public".to_owned();
        for attr in self.settings(block, scope, POSTGRESQL_SETTINGS)? {
            match attr.key.as_str() {
                // May hold a password: never echoed (`key` does not quote it).
                "connection_url" => connection_url = Some(self.key(attr, scope)?),
                "max_parallel" => max_parallel = self.max_parallel(attr, scope)?,
                "schema" => {
                    let value = self.string(attr, scope)?;
                    crate::storage::PostgresConfig::validate_schema(&value).map_err(|e| {
                        self.at(
                            value_span(attr, scope),
                            format!("schema{}: {e}", scope.suffix()),
                        )
                    })?;
                    schema = value;
                }
                _ => {}
            }
        }
        let connection_url = match connection_url {
            Some(url) => url,
            None => PG_CONNECTION_URL_ENV
                .iter()
                .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
                .ok_or_else(|| {
                    self.at(
                        block.span(),
                        format!(
                            "storage \"postgresql\" needs connection_url = \"postgres://...\" \
                             (or the {} environment variable)",
                            PG_CONNECTION_URL_ENV.join(" or ")
                        ),
                    )
                })?,
        };
        Ok(StorageConfig::Postgresql {
            connection_url,
            max_parallel,
            schema,
        })
    }

    /// `max_parallel`: a whole number from 1 to [`MAX_PG_MAX_PARALLEL`],
    /// written as a number or a string (Vault writes `"128"`).
    fn max_parallel(&self, attr: &Attribute, scope: &Scope) -> Result<usize, String> {
        let parsed = match &attr.value {
            Expression::Number(n) => n.value().as_u64(),
            Expression::String(s) => s.value().trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_PG_MAX_PARALLEL).contains(n))
            .ok_or_else(|| {
                self.at(
                    value_span(attr, scope),
                    format!(
                        "max_parallel{} must be a whole number from 1 to {MAX_PG_MAX_PARALLEL}, got {}",
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }

    fn listener(&self, block: &Block) -> Result<ListenerConfig, String> {
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
        let mut max_request_size = None;
        for attr in self.settings(block, &scope, LISTENER_SETTINGS)? {
            match attr.key.as_str() {
                "address" => address = self.address(attr, &scope)?,
                "tls_disable" => tls_disable = self.boolean(attr, &scope)?,
                "tls_cert_file" => cert_file = Some(self.required_text(attr, &scope)?),
                "tls_key_file" => key_file = Some(self.required_text(attr, &scope)?),
                "tls_min_version" => min_version = self.tls_version(attr, &scope)?,
                "max_request_size" => max_request_size = Some(self.positive_size(attr, &scope)?),
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

    fn seal(&self, block: &Block) -> Result<SealConfig, String> {
        let scope = Scope::of(block);
        let kind = self.block_type(block)?;
        if kind != "static" {
            return Err(self.at(
                block.span(),
                format!("unknown seal type {kind:?} (supported: static)"),
            ));
        }
        let mut current_key_id = None;
        let mut current_key = None;
        let mut previous_key_id = None;
        let mut previous_key = None;
        for attr in self.settings(block, &scope, STATIC_SEAL_SETTINGS)? {
            match attr.key.as_str() {
                "current_key_id" => current_key_id = Some(self.required_text(attr, &scope)?),
                "current_key" => current_key = Some(self.key(attr, &scope)?),
                "previous_key_id" => previous_key_id = Some(self.required_text(attr, &scope)?),
                "previous_key" => previous_key = Some(self.key(attr, &scope)?),
                _ => {}
            }
        }
        let missing = |name: &str| self.at(block.span(), format!("seal \"static\" needs {name}"));
        let current_key_id = current_key_id.ok_or_else(|| missing("current_key_id"))?;
        let current_key = current_key.ok_or_else(|| missing("current_key"))?;
        match (&previous_key_id, &previous_key) {
            (Some(_), None) => {
                return Err(missing("previous_key too, since previous_key_id is set"));
            }
            (None, Some(_)) => {
                return Err(missing("previous_key_id too, since previous_key is set"));
            }
            (Some(previous), Some(_)) if *previous == current_key_id => {
                return Err(self.at(
                    block.span(),
                    "seal \"static\": previous_key_id must differ from current_key_id",
                ));
            }
            _ => {}
        }
        Ok(SealConfig::Static {
            current_key_id,
            current_key,
            previous_key_id,
            previous_key,
        })
    }

    /// Key material or a reference to it: a non-empty quoted string, never
    /// echoed in messages.
    fn key(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
        let value = self.string(attr, scope)?;
        if value.trim().is_empty() {
            return Err(self.at(
                value_span(attr, scope),
                format!("{}{} must not be empty", attr.key.as_str(), scope.suffix()),
            ));
        }
        Ok(value)
    }
}

/// The span to blame for an attribute: its own, or its block's.
fn attr_span(attr: &Attribute, scope: &Scope) -> Option<Range<usize>> {
    attr.span()
        .or_else(|| attr.key.span())
        .or_else(|| attr.value.span())
        .or_else(|| scope.span.clone())
}

/// The span to blame for an attribute's value.
fn value_span(attr: &Attribute, scope: &Scope) -> Option<Range<usize>> {
    attr.value.span().or_else(|| attr_span(attr, scope))
}

fn non_empty(value: String) -> Option<String> {
    (!value.trim().is_empty()).then_some(value)
}

/// Go's `strconv.ParseBool`, which Vault uses for strings.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// What kind of value an expression is, for messages.
fn kind(expr: &Expression) -> &'static str {
    match expr {
        Expression::Null(_) => "null",
        Expression::Bool(_) => "a bool",
        Expression::Number(_) => "a number",
        Expression::String(_) => "a string",
        Expression::Array(_) => "a list",
        Expression::Object(_) => "an object",
        Expression::StringTemplate(_) => "a string with ${...} interpolation",
        Expression::HeredocTemplate(_) => "a heredoc",
        Expression::Variable(_) => "an unquoted word",
        _ => "an expression",
    }
}

fn block_example(ident: &str) -> &'static str {
    match ident {
        "storage" => "storage \"sqlite\" { path = \"...\" }",
        "listener" => "listener \"tcp\" { address = \"127.0.0.1:8200\" }",
        "seal" => "seal \"static\" { current_key_id = \"...\" current_key = \"...\" }",
        _ => "name \"type\" { ... }",
    }
}

fn unsupported_block(ident: &str) -> String {
    format!("{ident} is not supported by transitd; remove the {ident} block")
}

/// `unknown setting "adress" in listener "tcp" (known: address, ...); did you mean "address"?`
fn unknown_setting(key: &str, what: &str, known: &[&str], also: &[&str]) -> String {
    let mut message = format!("unknown setting \"{key}\"");
    if !what.is_empty() {
        message.push_str(&format!(" in {what}"));
    }
    if known.is_empty() {
        message.push_str(" (it takes no settings)");
    } else if what.is_empty() {
        message.push_str(&format!(
            " (known: {}; blocks: {})",
            known.join(", "),
            TOP_LEVEL_BLOCKS.join(", ")
        ));
    } else {
        message.push_str(&format!(" (known: {})", known.join(", ")));
    }
    let suggestion = known
        .iter()
        .chain(also)
        .map(|candidate| (edit_distance(key, candidate), candidate))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, candidate)) = suggestion {
        message.push_str(&format!("; did you mean \"{candidate}\"?"));
    }
    message
}

/// Levenshtein distance, for "did you mean" hints on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
storage "inmem" {}

listener "tcp" {
  tls_disable = true
}
"#;

    fn err(source: &str) -> String {
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
                        }),
                        max_request_size: Some(1_048_576),
                    },
                    ListenerConfig {
                        address: "[::1]:8300".parse().unwrap(),
                        tls: None,
                        max_request_size: Some(2048),
                    },
                ],
                seal: Some(SealConfig::Static {
                    current_key_id: "2024-02".to_owned(),
                    current_key: "env://TRANSITD_SEAL_KEY".to_owned(),
                    previous_key_id: Some("2024-01".to_owned()),
                    previous_key: Some("file:///etc/transitd/old.key".to_owned()),
                }),
                api_addr: Some("https://transitd.example.com:8200".to_owned()),
                cluster_name: Some("prod".to_owned()),
                log_level: Some("warn".to_owned()),
                disable_mlock: true,
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
    fn one_line_blocks() {
        let config = parse(
            "storage \"sqlite\" { path = \"t.db\" }\nlistener \"tcp\" { tls_disable = 1 }\n",
            "config.hcl",
        )
        .unwrap();
        assert_eq!(
            config.storage,
            StorageConfig::Sqlite {
                path: PathBuf::from("t.db")
            }
        );
        let e = err("storage \"inmem\" {}\nlistener \"tcp\" { adress = \"x\" }\n");
        assert!(
            e.starts_with("config.hcl:2: unknown setting \"adress\""),
            "{e}"
        );
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
    fn storage_errors() {
        let e = err(
            "listener \"tcp\" { tls_disable = true }\nstorage \"consul\" {\n  address = \"x\"\n}\n",
        );
        assert!(
            e.starts_with(
                "config.hcl:2: unknown storage type \"consul\" (supported: sqlite, postgresql, inmem)"
            ),
            "{e}"
        );

        let e = err("listener \"tcp\" { tls_disable = true }\nstorage \"sqlite\" {}\n");
        assert!(
            e.starts_with("config.hcl:2: storage \"sqlite\" needs path"),
            "{e}"
        );

        let e = err("listener \"tcp\" { tls_disable = true }\nstorage {}\n");
        assert!(
            e.starts_with("config.hcl:2: storage block needs a type"),
            "{e}"
        );

        let e = err(
            "listener \"tcp\" { tls_disable = true }\nstorage \"inmem\" {\n  path = \"x\"\n}\n",
        );
        assert!(
            e.starts_with(
                "config.hcl:3: unknown setting \"path\" in storage \"inmem\" (it takes no settings)"
            ),
            "{e}"
        );
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn pg_config(
        block: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        parse_with_env(
            &format!("listener \"tcp\" {{ tls_disable = true }}\n{block}"),
            "config.hcl",
            env,
        )
        .map(|c| c.storage)
    }

    #[test]
    fn postgresql_storage() {
        let config = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"postgres://transitd:pw@db/transitd?sslmode=verify-full\"\n  max_parallel = 16\n  schema = \"Transit_1\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            config,
            StorageConfig::Postgresql {
                connection_url: "postgres://transitd:pw@db/transitd?sslmode=verify-full".to_owned(),
                max_parallel: 16,
                schema: "Transit_1".to_owned(),
            }
        );
        // Defaults; max_parallel may be a string, as Vault writes it.
        let config = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db user=t\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            config,
            StorageConfig::Postgresql {
                connection_url: "host=db user=t".to_owned(),
                max_parallel: DEFAULT_PG_MAX_PARALLEL,
                schema: "public".to_owned(),
            }
        );
        let config = pg_config(
            "storage \"postgresql\" { \n connection_url = \"host=db\"\n max_parallel = \"128\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert!(
            matches!(
                config,
                StorageConfig::Postgresql {
                    max_parallel: 128,
                    ..
                }
            ),
            "{config:?}"
        );
    }

    #[test]
    fn postgresql_connection_url_from_environment() {
        let both = |name: &str| match name {
            "BAO_PG_CONNECTION_URL" => Some("host=bao".to_owned()),
            "VAULT_PG_CONNECTION_URL" => Some("host=vault".to_owned()),
            _ => None,
        };
        let vault_only =
            |name: &str| (name == "VAULT_PG_CONNECTION_URL").then(|| "host=vault".to_owned());
        let blank = |_: &str| Some("  ".to_owned());
        let url = |c: StorageConfig| match c {
            StorageConfig::Postgresql { connection_url, .. } => connection_url,
            other => panic!("{other:?}"),
        };
        let block = "storage \"postgresql\" {\n  schema = \"s\"\n}\n";
        assert_eq!(url(pg_config(block, &both).unwrap()), "host=bao");
        assert_eq!(url(pg_config(block, &vault_only).unwrap()), "host=vault");
        // The file wins over the environment.
        assert_eq!(
            url(pg_config(
                "storage \"postgresql\" {\n  connection_url = \"host=file\"\n}\n",
                &both
            )
            .unwrap()),
            "host=file"
        );
        for env in [&no_env as &dyn Fn(&str) -> Option<String>, &blank] {
            let e = pg_config(block, env).unwrap_err();
            assert!(
                e.starts_with("config.hcl:2: storage \"postgresql\" needs connection_url"),
                "{e}"
            );
            assert!(
                e.contains("BAO_PG_CONNECTION_URL or VAULT_PG_CONNECTION_URL"),
                "{e}"
            );
        }
    }

    #[test]
    fn postgresql_storage_errors() {
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db\"\n  schema = \"bad-name\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:4: schema in storage \"postgresql\": invalid schema name \"bad-name\""
            ),
            "{e}"
        );
        for bad in [
            "\"1abc\"",
            "\"pg_catalog\"",
            "\"\"",
            &format!("\"{}\"", "s".repeat(55)),
        ] {
            let e = pg_config(
                &format!("storage \"postgresql\" {{\n  connection_url = \"host=db\"\n  schema = {bad}\n}}\n"),
                &no_env,
            )
            .unwrap_err();
            assert!(
                e.starts_with("config.hcl:4: schema in storage \"postgresql\""),
                "{bad}: {e}"
            );
        }
        for bad in ["0", "\"x\"", "1025", "-3", "1.5"] {
            let e = pg_config(
                &format!("storage \"postgresql\" {{\n  connection_url = \"host=db\"\n  max_parallel = {bad}\n}}\n"),
                &no_env,
            )
            .unwrap_err();
            assert!(
                e.starts_with("config.hcl:4: max_parallel in storage \"postgresql\" must be a whole number from 1 to 1024"),
                "{bad}: {e}"
            );
        }
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db\"\n  ha_enabled = \"true\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.hcl:4: unknown setting \"ha_enabled\" in storage \"postgresql\" (known: connection_url, max_parallel, schema)"),
            "{e}"
        );
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:3: connection_url in storage \"postgresql\" must not be empty"
            ),
            "{e}"
        );
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = 12345\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:3: connection_url in storage \"postgresql\" must be a quoted string"
            ),
            "{e}"
        );
    }

    #[test]
    fn postgresql_debug_redacts_the_password() {
        let config = parse_with_env(
            "listener \"tcp\" { tls_disable = true }\nstorage \"postgresql\" {\n  connection_url = \"postgresql://transitd:s3cr3t-pw@db:5432/transitd?sslmode=require\"\n}\n",
            "config.hcl",
            &no_env,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(
            shown.contains("postgresql://transitd:<redacted>@db:5432/transitd?sslmode=require"),
            "{shown}"
        );
        let kv = StorageConfig::Postgresql {
            connection_url: "host=db password='s3cr3t pw' user=t".to_owned(),
            max_parallel: 8,
            schema: "public".to_owned(),
        };
        let shown = format!("{kv:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("password=<redacted>"), "{shown}");
        assert_eq!(format!("{:?}", StorageConfig::Inmem), "Inmem");
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

    #[test]
    fn seal_errors() {
        let e = err(&format!(
            "{MINIMAL}seal \"awskms\" {{\n  region = \"x\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: unknown seal type \"awskms\" (supported: static)"),
            "{e}"
        );

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"env://K\"\n  previous_key = \"env://OLD\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: seal \"static\" needs previous_key_id"),
            "{e}"
        );

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"env://K\"\n  previous_key_id = \"b\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: seal \"static\" needs previous_key"),
            "{e}"
        );

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: seal \"static\" needs current_key"),
            "{e}"
        );

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"k\"\n}}\nseal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"k\"\n}}\n"
        ));
        assert!(e.starts_with("config.hcl:11: second seal block"), "{e}");

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"k\"\n  previous_key_id = \"a\"\n  previous_key = \"old\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: seal \"static\": previous_key_id must differ"),
            "{e}"
        );

        let e = err(&format!(
            "{MINIMAL}seal \"static\" {{\n  current_key_id = \"a\"\n  current_key = \"\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:9: current_key in seal \"static\" must not be empty"),
            "{e}"
        );
    }

    #[test]
    fn seal_debug_redacts_key_material() {
        let seal = SealConfig::Static {
            current_key_id: "1".to_owned(),
            current_key: "c2VjcmV0LWtleS1tYXRlcmlhbA==".to_owned(),
            previous_key_id: Some("0".to_owned()),
            previous_key: Some("env://OLD_KEY".to_owned()),
        };
        let debug = format!("{seal:?}");
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(debug.contains("env://OLD_KEY"), "{debug}");
    }

    #[test]
    fn syntax_error_names_line() {
        let e =
            err("storage \"inmem\" {}\n\nlistener \"tcp\" {\n  address = \"127.0.0.1:8200\n}\n");
        assert!(e.starts_with("config.hcl:4: syntax error"), "{e}");
        let e = err("storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable true\n}\n");
        assert!(e.starts_with("config.hcl:3: syntax error"), "{e}");
    }

    #[test]
    fn duplicate_attribute() {
        let e = err(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n  tls_disable = true\n  address = \"127.0.0.1:1\"\n  address = \"127.0.0.1:2\"\n}\n",
        );
        assert!(
            e.starts_with("config.hcl:5: duplicate setting \"address\""),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}log_level = \"info\"\nlog_level = \"debug\"\n"
        ));
        assert!(
            e.starts_with("config.hcl:8: duplicate setting \"log_level\""),
            "{e}"
        );
    }

    #[test]
    fn ignored_vault_settings() {
        let config = parse(
            &format!(
                "{MINIMAL}ui = true\ndisable_cache = true\ndefault_lease_ttl = \"768h\"\nmax_lease_ttl = \"8760h\"\ncluster_addr = \"https://127.0.0.1:8201\"\nplugin_directory = \"/p\"\npid_file = \"/run/t.pid\"\nlog_format = \"json\"\nlog_file = \"/var/log/t.log\"\n"
            ),
            "config.hcl",
        )
        .unwrap();
        assert_eq!(config, parse(MINIMAL, "config.hcl").unwrap());
    }

    #[test]
    fn unsupported_blocks() {
        let e = err(&format!(
            "{MINIMAL}telemetry {{\n  statsd_address = \"x\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: telemetry is not supported by transitd"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}backend \"inmem\" {{}}\n"));
        assert!(
            e.starts_with("config.hcl:7: \"backend\" is the deprecated name"),
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

    #[test]
    fn line_numbers() {
        let src = Source::new("f", "a\nbc\n\nd");
        assert_eq!(src.line_of(0), 1);
        assert_eq!(src.line_of(1), 1);
        assert_eq!(src.line_of(2), 2);
        assert_eq!(src.line_of(4), 2);
        assert_eq!(src.line_of(5), 3);
        assert_eq!(src.line_of(6), 4);
        assert_eq!(edit_distance("adress", "address"), 1);
    }
}
