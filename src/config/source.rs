//! Walking the HCL of a configuration file: the text and its name
//! ([`Source`]), the block being read ([`Scope`]), and reading one setting's
//! value with a `FILE:LINE: what is wrong` message when it is not what the
//! setting takes.

use std::fmt;
use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block, Structure};

use super::{TOP_LEVEL_BLOCKS, block_example};
use crate::hcl_diagnostics::{self, SourceText, Wording, similar_name};

/// The block an attribute is in: its description for messages
/// (`listener "tcp"`, empty at the top level) and its span, used when an
/// attribute has none of its own (one-line blocks).
pub(super) struct Scope {
    pub(super) what: String,
    pub(super) span: Option<Range<usize>>,
}

impl Scope {
    pub(super) fn of(block: &Block) -> Self {
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
    pub(super) fn suffix(&self) -> String {
        if self.what.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.what)
        }
    }
}

/// The configuration text and its name, to turn byte spans into
/// `file:line:` prefixes.
pub(super) struct Source<'a> {
    text: SourceText<'a>,
    file: &'a str,
    /// For a JSON file read as the HCL it means (`json.rs`): the JSON path
    /// of each line of that HCL, which messages name instead of a line.
    json_paths: Option<&'a [String]>,
}

/// hcl-edit's errors in configuration words.
const WORDING: Wording = Wording {
    repeated_marker: "redefined attribute",
    key_chars: &['_', '-'],
    repeated: |key| {
        format!("duplicate setting \"{key}\" (a setting may appear only once in a block)")
    },
    byte_columns: false,
};

impl<'a> Source<'a> {
    pub(super) fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            text: SourceText::file(file, text),
            file,
            json_paths: None,
        }
    }

    /// The HCL written from a JSON file, with the JSON path of each line.
    pub(super) fn from_json(file: &'a str, hcl: &'a str, paths: &'a [String]) -> Self {
        Self {
            json_paths: Some(paths),
            ..Self::new(file, hcl)
        }
    }

    /// Where a span is, for messages that point at another place: `on line
    /// 3`, or `at listener[0].tcp` in a JSON file.
    pub(super) fn place(&self, span: Option<Range<usize>>) -> String {
        let line = self.text.line_of_span(span);
        match self.json_path(line) {
            Some(path) => format!("at {path}"),
            None => format!("on line {line}"),
        }
    }

    fn json_path(&self, line: usize) -> Option<&'a str> {
        self.json_paths
            .and_then(|paths| paths.get(line.checked_sub(1)?))
            .map(String::as_str)
    }

    /// `file:line: message`, or `file: json.path: message` for a JSON file
    /// (just `file: message` without a span).
    pub(super) fn at(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> String {
        if let (Some(span), Some(_)) = (&span, self.json_paths) {
            let line = self.text.line_of(span.start);
            if let Some(path) = self.json_path(line) {
                return format!("{}: {path}: {message}", self.file);
            }
        }
        self.text.at(span, message)
    }

    /// An error about the file as a whole.
    pub(super) fn general(&self, message: impl fmt::Display) -> String {
        self.text.general(message)
    }

    pub(super) fn syntax_error(&self, error: &hcl_edit::parser::Error) -> String {
        let message = self.text.syntax_error(error, &WORDING);
        // The HCL written from JSON is well-formed; should hcl-edit still
        // refuse a line of it, name the JSON path, not a line of text the
        // user never wrote.
        match self.json_path(self.text.line_of(error.location().offset())) {
            Some(path) => {
                let what = message
                    .split_once(": ")
                    .map_or(message.as_str(), |(_, m)| m);
                format!("{}: {path}: {what}", self.file)
            }
            None => message,
        }
    }

    /// The source text of a value, shortened, for messages. Only for values
    /// that are not secret.
    pub(super) fn snippet(&self, expr: &Expression) -> String {
        let text = expr
            .span()
            .and_then(|s| self.text.text().get(s))
            .map_or_else(|| expr.to_string(), str::to_owned);
        let text = text.trim();
        if text.chars().count() > 40 {
            let short: String = text.chars().take(40).collect();
            format!("{short}...")
        } else {
            text.to_owned()
        }
    }

    /// An attribute's value that must be a quoted string.
    pub(super) fn string(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
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
    pub(super) fn required_text(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
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
    pub(super) fn boolean(&self, attr: &Attribute, scope: &Scope) -> Result<bool, String> {
        let parsed = match &attr.value {
            Expression::Bool(b) => Some(*b.value()),
            Expression::String(s) => crate::go_syntax::parse_bool(s.value().trim()),
            // A number as its text: `1` and `0` are Go's, any other is not.
            Expression::Number(n) => n
                .value()
                .as_u64()
                .and_then(|v| crate::go_syntax::parse_bool(&v.to_string())),
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
    pub(super) fn positive_size(&self, attr: &Attribute, scope: &Scope) -> Result<usize, String> {
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

    /// The one label of a block: its type (`storage "sqlite"`).
    pub(super) fn block_type<'b>(&self, block: &'b Block) -> Result<&'b str, String> {
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
    pub(super) fn settings<'b>(
        &self,
        block: &'b Block,
        scope: &Scope,
        known: &[&str],
    ) -> Result<Vec<&'b Attribute>, String> {
        Ok(self.settings_and_blocks(block, scope, known, &[])?.0)
    }

    /// [`Self::settings`], with the inner blocks named in `blocks` let
    /// through (any other block is refused).
    pub(super) fn settings_and_blocks<'b>(
        &self,
        block: &'b Block,
        scope: &Scope,
        known: &[&str],
        blocks: &[&str],
    ) -> Result<(Vec<&'b Attribute>, Vec<&'b Block>), String> {
        let mut inner_blocks = Vec::new();
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
                Structure::Block(inner) if blocks.contains(&inner.ident.as_str()) => {
                    inner_blocks.push(inner);
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
        Ok((settings, inner_blocks))
    }

    /// Key material or a reference to it: a non-empty quoted string, never
    /// echoed in messages.
    pub(super) fn key(&self, attr: &Attribute, scope: &Scope) -> Result<String, String> {
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
pub(super) fn attr_span(attr: &Attribute, scope: &Scope) -> Option<Range<usize>> {
    hcl_diagnostics::attr_span(attr).or_else(|| scope.span.clone())
}

/// The span to blame for an attribute's value.
pub(super) fn value_span(attr: &Attribute, scope: &Scope) -> Option<Range<usize>> {
    attr.value.span().or_else(|| attr_span(attr, scope))
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

/// `unknown setting "adress" in listener "tcp" (known: address, ...); did you mean "address"?`
pub(super) fn unknown_setting(key: &str, what: &str, known: &[&str], also: &[&str]) -> String {
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
    if let Some(candidate) = similar_name(key, known.iter().chain(also).copied()) {
        message.push_str(&format!("; did you mean \"{candidate}\"?"));
    }
    message
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{MINIMAL, err};
    use crate::config::{StorageConfig, parse};
    use std::path::PathBuf;

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
}
