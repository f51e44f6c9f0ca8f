//! JSON configuration files, as Vault accepts them.
//!
//! Vault's HCL 1 reads JSON into the same tree as HCL, and decides by the
//! content, not the file name: a file whose first non-blank character is
//! `{` is JSON. transitd does the same by rewriting the JSON into the HCL it
//! means, one setting per line, so that every stanza is read by the one HCL
//! walker (`source.rs` and the stanza modules) and no rule is written twice.
//! Each generated line remembers its JSON path (`listener.tcp.tls_disable`)
//! for error messages.
//!
//! Shapes, as Vault writes them: a block is an object keyed by its type
//! (`"storage": {"postgresql": {...}}`), several blocks an array of such
//! objects (`"listener": [{"tcp": {...}}, {"tcp": {...}}]`) or an array under
//! the type (`"listener": {"tcp": [{...}, {...}]}`); a block without a type
//! (`telemetry`) is the object of its settings. Any other key is a setting.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Blocks that take no type label in HCL (`telemetry { ... }`).
const UNLABELED_BLOCKS: &[&str] = &["telemetry"];

/// Whether a configuration text is JSON (Vault's rule: its first non-blank
/// character is `{`; HCL cannot start that way).
pub(super) fn is_json(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// The HCL a JSON configuration means, and the JSON path of each of its
/// lines (index 0 is line 1).
pub(super) struct Translated {
    pub(super) hcl: String,
    pub(super) paths: Vec<String>,
}

/// A failure to read the JSON: where (a JSON path, or a line of the file
/// for a syntax error) and what.
pub(super) enum JsonError {
    Syntax { line: usize, message: String },
    At { path: String, message: String },
}

/// Rewrites a JSON configuration into HCL; `is_block` says which top-level
/// keys name blocks.
pub(super) fn translate(
    text: &str,
    is_block: &dyn Fn(&str) -> bool,
) -> Result<Translated, JsonError> {
    let root: Node = serde_json::from_str(text).map_err(|e| JsonError::Syntax {
        line: e.line().max(1),
        message: format!("JSON syntax error: {e}"),
    })?;
    let Node::Object(entries) = root else {
        return Err(JsonError::At {
            path: "(top level)".to_owned(),
            message: "a configuration must be a JSON object".to_owned(),
        });
    };
    let mut out = Writer::default();
    check_unique(&entries, "")?;
    for (key, value) in &entries {
        if is_block(key) && holds_objects(value) {
            out.blocks(key, value, key)?;
        } else {
            out.setting(key, value, key)?;
        }
    }
    Ok(Translated {
        hcl: out.hcl,
        paths: out.paths,
    })
}

/// A JSON value that keeps its object keys in order, and every one of them,
/// so that a repeated key is refused rather than silently replaced.
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(v)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Node>()? {
            entries.push(entry);
        }
        Ok(Node::Object(entries))
    }
}

/// An object, or an array of objects: what a block's value may be.
fn holds_objects(node: &Node) -> bool {
    match node {
        Node::Object(_) => true,
        Node::Array(items) => {
            !items.is_empty() && items.iter().all(|i| matches!(i, Node::Object(_)))
        }
        _ => false,
    }
}

fn check_unique(entries: &[(String, Node)], path: &str) -> Result<(), JsonError> {
    let mut seen = HashSet::new();
    for (key, _) in entries {
        if !seen.insert(key.as_str()) {
            return Err(JsonError::At {
                path: join(path, key),
                message: format!("duplicate key {key:?} (a key may appear only once in an object)"),
            });
        }
    }
    Ok(())
}

/// `listener.tcp`; keys that are not plain names are quoted.
fn join(path: &str, key: &str) -> String {
    let key = if is_identifier(key) {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// An HCL identifier: what a setting's name must be.
fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The HCL being written, one line per setting or block edge.
#[derive(Default)]
struct Writer {
    hcl: String,
    paths: Vec<String>,
}

impl Writer {
    fn line(&mut self, text: &str, path: &str) {
        self.hcl.push_str(text);
        self.hcl.push('\n');
        self.paths.push(path.to_owned());
    }

    /// The blocks of a top-level key (`listener`, `storage`, ...), found
    /// at `at` (`listener`, `listener[1]`).
    fn blocks(&mut self, ident: &str, value: &Node, at: &str) -> Result<(), JsonError> {
        match value {
            Node::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.blocks(ident, item, &format!("{at}[{index}]"))?;
                }
                Ok(())
            }
            Node::Object(entries) if UNLABELED_BLOCKS.contains(&ident) => {
                self.block(&format!("{ident} {{"), entries, at)
            }
            Node::Object(entries) => {
                check_unique(entries, at)?;
                for (label, body) in entries {
                    let path = join(at, label);
                    let header = format!("{ident} {} {{", quoted(label));
                    match body {
                        Node::Object(settings) => self.block(&header, settings, &path)?,
                        Node::Array(items) if holds_objects(body) => {
                            for (index, item) in items.iter().enumerate() {
                                if let Node::Object(settings) = item {
                                    self.block(&header, settings, &format!("{path}[{index}]"))?;
                                }
                            }
                        }
                        _ => {
                            return Err(JsonError::At {
                                path,
                                message: format!(
                                    "expected an object: the settings of {ident} {label:?}"
                                ),
                            });
                        }
                    }
                }
                Ok(())
            }
            _ => Err(JsonError::At {
                path: at.to_owned(),
                message: format!("expected an object (or an array of objects) for {ident}"),
            }),
        }
    }

    fn block(
        &mut self,
        header: &str,
        settings: &[(String, Node)],
        path: &str,
    ) -> Result<(), JsonError> {
        check_unique(settings, path)?;
        self.line(header, path);
        for (key, value) in settings {
            self.setting(key, value, &join(path, key))?;
        }
        self.line("}", path);
        Ok(())
    }

    fn setting(&mut self, key: &str, value: &Node, path: &str) -> Result<(), JsonError> {
        if !is_identifier(key) {
            return Err(JsonError::At {
                path: path.to_owned(),
                message: format!("{key:?} is not a setting name"),
            });
        }
        let mut text = format!("{key} = ");
        expression(value, &mut text, path)?;
        self.line(&text, path);
        Ok(())
    }
}

/// A value as an HCL expression, on one line.
fn expression(node: &Node, out: &mut String, path: &str) -> Result<(), JsonError> {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(n) => out.push_str(&n.to_string()),
        Node::String(s) => out.push_str(&quoted(s)),
        Node::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                expression(item, out, path)?;
            }
            out.push(']');
        }
        Node::Object(entries) => {
            check_unique(entries, path)?;
            out.push('{');
            for (index, (key, value)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quoted(key));
                out.push_str(" = ");
                expression(value, out, path)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A JSON string as an HCL string literal with the same value: quotes,
/// backslashes and control characters escaped, and the template markers
/// `${` and `%{` doubled so that no value becomes an interpolation.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use crate::config::tests::MINIMAL;
    use crate::config::{Config, LogFormat, StorageConfig, parse};
    use std::path::PathBuf;

    fn json(source: &str) -> Result<Config, String> {
        parse(source, "config.json")
    }

    #[test]
    fn json_and_hcl_give_the_same_config() {
        let hcl = r#"
storage "postgresql" {
  connection_url = "postgres://t:pw@db/t?sslmode=verify-full"
  max_parallel   = "16"
  schema         = "transit"
  ha_enabled     = false
}
listener "tcp" {
  address          = "0.0.0.0:8200"
  tls_cert_file    = "/etc/transitd/tls.crt"
  tls_key_file     = "/etc/transitd/tls.key"
  tls_min_version  = "tls13"
  max_request_size = 1048576
  max_connections  = 64
  http_read_header_timeout = "5s"
}
listener "tcp" {
  address     = "[::1]:8300"
  tls_disable = 1
}
seal "static" {
  current_key_id = "2024-01"
  current_key    = "env://TRANSITD_SEAL_KEY"
}
api_addr      = "https://transitd.example.com:8200"
cluster_name  = "prod"
log_level     = "warning"
log_format    = "json"
disable_mlock = "true"
ui            = true
"#;
        let from_hcl = parse(hcl, "config.hcl").unwrap();
        let from_json = json(
            r#"{
  "storage": {"postgresql": {"connection_url": "postgres://t:pw@db/t?sslmode=verify-full",
                             "max_parallel": "16", "schema": "transit", "ha_enabled": false}},
  "listener": [
    {"tcp": {"address": "0.0.0.0:8200", "tls_cert_file": "/etc/transitd/tls.crt",
             "tls_key_file": "/etc/transitd/tls.key", "tls_min_version": "tls13",
             "max_request_size": 1048576, "max_connections": 64,
             "http_read_header_timeout": "5s"}},
    {"tcp": {"address": "[::1]:8300", "tls_disable": 1}}
  ],
  "seal": {"static": {"current_key_id": "2024-01", "current_key": "env://TRANSITD_SEAL_KEY"}},
  "api_addr": "https://transitd.example.com:8200",
  "cluster_name": "prod",
  "log_level": "warning",
  "log_format": "json",
  "disable_mlock": "true",
  "ui": true
}"#,
        )
        .unwrap();
        assert_eq!(from_json, from_hcl);
        assert_eq!(from_json.listeners.len(), 2);
        assert_eq!(from_json.log_format, Some(LogFormat::Json));
        assert!(from_json.disable_mlock);

        // Several blocks of one type under the type, and a block as a
        // one-element array.
        let under_type = json(
            r#"{"storage": [{"inmem": {}}],
                "listener": {"tcp": [{"address": "127.0.0.1:1", "tls_disable": true},
                                     {"address": "127.0.0.1:2", "tls_disable": "1"}]}}"#,
        )
        .unwrap();
        let as_hcl = parse(
            "storage \"inmem\" {}\nlistener \"tcp\" {\n address = \"127.0.0.1:1\"\n tls_disable = true\n}\nlistener \"tcp\" {\n address = \"127.0.0.1:2\"\n tls_disable = \"1\"\n}\n",
            "config.hcl",
        )
        .unwrap();
        assert_eq!(under_type, as_hcl);
    }

    #[test]
    fn shamir_seal_is_the_default() {
        let with = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "seal": {"shamir": {}}}"#,
        )
        .unwrap();
        assert_eq!(with, parse(MINIMAL, "config.hcl").unwrap());
        let e = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "seal": [{"shamir": {}}, {"static": {"current_key_id": "a", "current_key": "env://K"}}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.json: seal[1].static: second seal block (the first is at seal[0].shamir)"
            ),
            "{e}"
        );
        let e = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "seal": {"shamir": {"disabled": "true"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.contains("Shamir seals cannot be set disabled (they should simply not be set)"),
            "{e}"
        );
    }

    #[test]
    fn the_tutorial_file() {
        let config = json(
            r#"{
  "backend": {"postgresql": {"connection_url": "postgres://vault:vault@storage-backend:5432/vault?sslmode=disable"}},
  "listener": {"tcp": {"address": "0.0.0.0:8200", "tls_disable": 1}}
}"#,
        )
        .unwrap();
        assert_eq!(
            config.storage,
            StorageConfig::Postgresql {
                connection_url: "postgres://vault:vault@storage-backend:5432/vault?sslmode=disable"
                    .to_owned(),
                max_parallel: crate::config::DEFAULT_PG_MAX_PARALLEL,
                schema: "public".to_owned(),
            }
        );
        assert_eq!(config.listeners[0].address.to_string(), "0.0.0.0:8200");
        assert_eq!(config.listeners[0].tls, None);
        assert_eq!(
            config.warnings,
            vec![
                "config.json: backend.postgresql: \"backend\" is the deprecated name of \"storage\"; it works the same, but write storage instead"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn numbers_for_booleans() {
        let tls_off = |value: &str| {
            json(&format!(
                r#"{{"storage": {{"inmem": {{}}}}, "listener": {{"tcp": {{"tls_disable": {value}, "tls_cert_file": "c", "tls_key_file": "k"}}}}}}"#
            ))
            .map(|c| c.listeners[0].tls.is_none())
        };
        for on in ["1", "\"1\"", "true", "\"true\"", "\"T\""] {
            assert_eq!(tls_off(on), Ok(true), "{on}");
        }
        for off in ["0", "\"0\"", "false", "\"false\"", "\"f\""] {
            assert_eq!(tls_off(off), Ok(false), "{off}");
        }
        for bad in ["2", "\"yes\"", "null", "[1]", "{}", "-1"] {
            let e = tls_off(bad).unwrap_err();
            assert!(
                e.starts_with(
                    "config.json: listener.tcp.tls_disable: tls_disable in listener \"tcp\" must be true or false"
                ),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn errors_name_the_json_path() {
        let e = json(
            r#"{"storage": {"inmem": {}},
                "listener": [{"tcp": {"tls_disable": 1}}, {"tcp": {"tls_disable": 1, "adress": "x"}}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.json: listener[1].tcp.adress: unknown setting \"adress\" in listener \"tcp\""),
            "{e}"
        );
        let e = json(r#"{"storage": {"inmem": {}}, "listener": {"tcp": [{"tls_disable": 1}, {"tls_disable": 1}]}}"#)
            .unwrap_err();
        assert!(
            e.starts_with("config.json: listener.tcp[1]: listener address 127.0.0.1:8200 is already used by the listener at listener.tcp[0]"),
            "{e}"
        );
        let e = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "bogus": 1}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.json: bogus: unknown setting \"bogus\""),
            "{e}"
        );
        let e = json(r#"{"storage": {"sqlite": {}}, "listener": {"tcp": {"tls_disable": 1}}}"#)
            .unwrap_err();
        assert!(
            e.starts_with("config.json: storage.sqlite: storage \"sqlite\" needs path"),
            "{e}"
        );
        let e =
            json(r#"{"storage": "inmem", "listener": {"tcp": {"tls_disable": 1}}}"#).unwrap_err();
        assert!(
            e.starts_with("config.json: storage: storage must be a block"),
            "{e}"
        );
        let e = json(r#"{"storage": {"inmem": 3}}"#).unwrap_err();
        assert!(
            e.starts_with("config.json: storage.inmem: expected an object"),
            "{e}"
        );
        let e = json(
            "{\"storage\": {\"inmem\": {}},\n \"listener\": {\"tcp\": {\"tls_disable\": 1,}}}",
        )
        .unwrap_err();
        assert!(e.starts_with("config.json:2: JSON syntax error"), "{e}");
        assert!(matches!(
            super::translate("[1]", &|_| false),
            Err(super::JsonError::At { path, .. }) if path == "(top level)"
        ));
        let e = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1, "a b": 1}}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.json: listener.tcp.\"a b\": \"a b\" is not a setting name"),
            "{e}"
        );
        let e = json(r#"{"storage": {"inmem": {}}, "listener": {"tcp": {}}}"#).unwrap_err();
        assert!(
            e.starts_with("config.json: listener.tcp: listener \"tcp\" has TLS on"),
            "{e}"
        );
        let e = json(r#"{"storage": {"inmem": {}}, "storage": {"inmem": {}}}"#).unwrap_err();
        assert!(
            e.starts_with("config.json: storage: duplicate key \"storage\""),
            "{e}"
        );
    }

    #[test]
    fn a_repeated_key_is_refused_not_replaced() {
        let e = json(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": false, "tls_disable": true}}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.json: listener.tcp.tls_disable: duplicate key \"tls_disable\""),
            "{e}"
        );
    }

    #[test]
    fn strings_stay_literal() {
        let config = json(
            r#"{"storage": {"sqlite": {"path": "/tmp/${HOME}/%{x}/$${y}/%%{z}/$\"q\\ \u0001.db"}}, "listener": {"tcp": {"tls_disable": 1}}}"#,
        )
        .unwrap();
        assert_eq!(
            config.storage,
            StorageConfig::Sqlite {
                path: PathBuf::from("/tmp/${HOME}/%{x}/$${y}/%%{z}/$\"q\\ \u{1}.db")
            }
        );
    }

    #[test]
    fn the_content_decides_not_the_name() {
        let text = r#"  {"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}}"#;
        assert_eq!(parse(text, "vault.hcl"), json(text));
        assert_eq!(
            parse(MINIMAL, "config.json").unwrap(),
            parse(MINIMAL, "config.hcl").unwrap()
        );
    }
}
