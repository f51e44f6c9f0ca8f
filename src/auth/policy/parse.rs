//! Reading a policy's text (HCL or JSON) into rules, with
//! `policy NAME line N: what is wrong` errors.

use std::fmt;
use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, Object, ObjectKey};
use hcl_edit::structure::{Block, Body, Structure};

use super::acl::Segments;
use super::capability::{Bits, NAMES};
use super::{Grant, Pattern, Rule, WrapBounds};
use crate::hcl_diagnostics::{SourceText, Wording, attr_span};

/// Settings Vault allows in a path block that restrict what the capabilities
/// grant; transitd refuses them rather than ignore them.
const UNSUPPORTED: [&str; 8] = [
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "mfa_methods",
    "control_group",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
];

/// A setting inside a path block, from HCL or JSON.
struct Setting<'e> {
    key: String,
    span: Option<Range<usize>>,
    value: &'e Expression,
}

/// Turns parsed HCL into rules, with `policy NAME line N:` errors.
pub(super) struct Parser<'a> {
    /// The policy's text; where JSON is parsed trimmed, where that starts.
    pub(super) source: SourceText<'a>,
}

/// hcl-edit's errors in policy words.
const WORDING: Wording = Wording {
    repeated_marker: "redefined",
    key_chars: &['_', '-', '/', '*', '+'],
    repeated: |key| format!("duplicate \"{key}\" (each setting may appear only once)"),
    byte_columns: true,
};

impl<'a> Parser<'a> {
    pub(super) fn new(name: &'a str, text: &'a str) -> Self {
        Self {
            source: SourceText::policy(name, text),
        }
    }

    pub(super) fn general(&self, message: impl fmt::Display) -> String {
        self.source.general(message)
    }

    /// An error at a span of the parsed part.
    fn at(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> String {
        self.source.at(span, message)
    }

    pub(super) fn syntax_error(&self, error: &hcl_edit::parser::Error) -> String {
        self.source.syntax_error(error, &WORDING)
    }

    /// The top level of an HCL policy.
    pub(super) fn body(&self, body: &Body) -> Result<Vec<Rule>, String> {
        let mut rules = Vec::new();
        for structure in body.iter() {
            match structure {
                Structure::Attribute(attr) => match attr.key.as_str() {
                    // Vault accepts and ignores a top-level name.
                    "name" => {}
                    // `path = { "PATTERN" = { ... } }`, as in the JSON form.
                    "path" => rules.extend(self.path_map(&attr.value)?),
                    key => return Err(self.at(attr_span(attr), unknown_top_level(key))),
                },
                Structure::Block(block) => rules.push(self.path_block(block)?),
            }
        }
        Ok(rules)
    }

    fn path_block(&self, block: &Block) -> Result<Rule, String> {
        let ident = block.ident.as_str();
        if ident != "path" {
            return Err(self.at(block.span(), unknown_top_level(ident)));
        }
        let pattern = match block.labels.as_slice() {
            [label] => label.as_str(),
            [] => {
                return Err(self.at(
                    block.span(),
                    "a path block needs the path as its label, e.g. path \"transit/encrypt/*\" { capabilities = [\"update\"] }",
                ));
            }
            labels => {
                return Err(self.at(
                    block.span(),
                    format!("a path block takes one label, found {}", labels.len()),
                ));
            }
        };
        let mut settings = Vec::new();
        for structure in block.body.iter() {
            match structure {
                Structure::Attribute(attr) => settings.push(Setting {
                    key: attr.key.as_str().to_owned(),
                    span: attr_span(attr).or_else(|| block.span()),
                    value: &attr.value,
                }),
                Structure::Block(inner) => {
                    let key = inner.ident.as_str();
                    let span = inner.span().or_else(|| block.span());
                    return Err(self.at(span, setting_error(pattern, key)));
                }
            }
        }
        self.rule(pattern, block.span(), &settings)
    }

    /// The top level of a JSON policy.
    pub(super) fn json(&self, expr: &Expression) -> Result<Vec<Rule>, String> {
        let Expression::Object(object) = expr else {
            return Err(self.at(
                expr.span(),
                "a JSON policy must be an object like {\"path\": {\"transit/encrypt/*\": {\"capabilities\": [\"update\"]}}}",
            ));
        };
        let mut rules = Vec::new();
        for (key, value) in object.iter() {
            match self.key(key)? {
                "name" => {}
                "path" => rules.extend(self.path_map(value.expr())?),
                other => return Err(self.at(key.span(), unknown_top_level(other))),
            }
        }
        Ok(rules)
    }

    /// `{"PATTERN": {settings}, ...}`, or a list of such objects.
    fn path_map(&self, expr: &Expression) -> Result<Vec<Rule>, String> {
        match expr {
            Expression::Object(object) => self.path_object(object),
            Expression::Array(array) => {
                let mut rules = Vec::new();
                for element in array.iter() {
                    let Expression::Object(object) = element else {
                        return Err(self.at(element.span(), PATH_MAP_SHAPE));
                    };
                    rules.extend(self.path_object(object)?);
                }
                Ok(rules)
            }
            other => Err(self.at(other.span(), PATH_MAP_SHAPE)),
        }
    }

    fn path_object(&self, object: &Object) -> Result<Vec<Rule>, String> {
        let mut rules = Vec::new();
        for (key, value) in object.iter() {
            let pattern = self.key(key)?;
            let Expression::Object(inner) = value.expr() else {
                return Err(self.at(
                    value.expr().span().or_else(|| key.span()),
                    format!(
                        "the rules for path \"{pattern}\" must be an object like {{\"capabilities\": [\"read\"]}}"
                    ),
                ));
            };
            let mut settings = Vec::new();
            for (setting, setting_value) in inner.iter() {
                settings.push(Setting {
                    key: self.key(setting)?.to_owned(),
                    span: setting.span().or_else(|| key.span()),
                    value: setting_value.expr(),
                });
            }
            rules.push(self.rule(pattern, key.span(), &settings)?);
        }
        Ok(rules)
    }

    /// An object key: a quoted string or a bare word.
    fn key<'k>(&self, key: &'k ObjectKey) -> Result<&'k str, String> {
        match key {
            ObjectKey::Ident(ident) => Ok(ident.as_str()),
            ObjectKey::Expression(Expression::String(s)) => Ok(s.value().as_str()),
            ObjectKey::Expression(other) => {
                Err(self.at(other.span(), "expected a quoted string as the key"))
            }
        }
    }

    /// One path block's rule.
    fn rule(
        &self,
        written: &str,
        span: Option<Range<usize>>,
        settings: &[Setting<'_>],
    ) -> Result<Rule, String> {
        let pattern = self.pattern(written, span.clone())?;
        let mut bits = Bits::NONE;
        let mut wrap = WrapBounds::default();
        for setting in settings {
            match setting.key.as_str() {
                "capabilities" => bits = bits.union(self.capability_list(written, setting)?),
                "policy" => bits = bits.union(self.legacy(written, setting)?),
                "min_wrapping_ttl" => wrap.min_secs = self.duration(setting)?,
                "max_wrapping_ttl" => wrap.max_secs = self.duration(setting)?,
                "comment" => {}
                key => return Err(self.at(setting.span.clone(), setting_error(written, key))),
            }
        }
        if bits.has(Bits::DENY) {
            bits = Bits::DENY;
        }
        if wrap.min_secs != 0 && wrap.max_secs != 0 && wrap.max_secs < wrap.min_secs {
            return Err(self.at(
                span,
                format!(
                    "path \"{written}\": max_wrapping_ttl cannot be less than min_wrapping_ttl"
                ),
            ));
        }
        Ok(Rule {
            pattern,
            grant: Grant { bits, wrap },
        })
    }

    /// A wrapping TTL: whole seconds, or a Go duration in a string.
    fn duration(&self, setting: &Setting<'_>) -> Result<u64, String> {
        let span = setting.value.span().or_else(|| setting.span.clone());
        let text = match setting.value {
            Expression::String(s) => s.value().as_str().to_owned(),
            Expression::Number(n) => n.value().to_string(),
            _ => String::new(),
        };
        crate::go_syntax::parse_duration_secs(text.trim()).ok_or_else(|| {
            self.at(
                span,
                format!(
                    "error parsing {}: a duration is seconds or a string like \"5m\", not {text:?}",
                    setting.key
                ),
            )
        })
    }

    fn capability_list(&self, written: &str, setting: &Setting<'_>) -> Result<Bits, String> {
        let Expression::Array(array) = setting.value else {
            return Err(self.at(
                setting.value.span().or_else(|| setting.span.clone()),
                format!(
                    "capabilities in path \"{written}\" must be a list of strings, like [\"read\", \"list\"]"
                ),
            ));
        };
        let mut bits = Bits::NONE;
        for element in array.iter() {
            let span = element.span().or_else(|| setting.span.clone());
            let Expression::String(name) = element else {
                return Err(self.at(
                    span,
                    format!("capabilities in path \"{written}\" must be quoted strings"),
                ));
            };
            let name = name.value().as_str();
            match NAMES.iter().find(|(n, _)| *n == name) {
                Some((_, b)) => bits = bits.union(*b),
                None => {
                    return Err(self.at(
                        span,
                        format!(
                            "unknown capability \"{name}\" in path \"{written}\" (known: create, read, update, patch, delete, list, sudo, deny, scan)"
                        ),
                    ));
                }
            }
        }
        Ok(bits)
    }

    /// The old `policy = "..."` shorthand.
    fn legacy(&self, written: &str, setting: &Setting<'_>) -> Result<Bits, String> {
        let span = setting.value.span().or_else(|| setting.span.clone());
        let Expression::String(value) = setting.value else {
            return Err(self.at(
                span,
                format!("policy in path \"{written}\" must be a quoted string"),
            ));
        };
        let read = Bits::READ.union(Bits::LIST);
        let write = read
            .union(Bits::CREATE)
            .union(Bits::UPDATE)
            .union(Bits::DELETE);
        match value.value().as_str() {
            "deny" => Ok(Bits::DENY),
            "read" => Ok(read),
            "write" => Ok(write),
            "sudo" => Ok(write.union(Bits::SUDO)),
            other => Err(self.at(
                span,
                format!(
                    "invalid policy \"{other}\" in path \"{written}\" (known: deny, read, write, sudo; or use capabilities = [...])"
                ),
            )),
        }
    }

    fn pattern(&self, written: &str, span: Option<Range<usize>>) -> Result<Pattern, String> {
        let path = written.strip_prefix('/').unwrap_or(written);
        if path.contains("{{") {
            return Err(self.at(
                span,
                format!("path \"{written}\": templated paths ({{{{...}}}}) are not supported by transitd"),
            ));
        }
        if path.contains("+*") {
            return Err(self.at(
                span,
                format!(
                    "path \"{written}\": \"+*\" is not allowed; use \"+\" for one whole segment or end a prefix with \"*\""
                ),
            ));
        }
        let (stem, glob) = match path.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (path, false),
        };
        if stem.contains('*') {
            return Err(self.at(
                span,
                format!(
                    "path \"{written}\": \"*\" may only be the last character (a prefix match); use \"+\" to match one whole segment"
                ),
            ));
        }
        let mut first_wildcard = None;
        let mut wildcards = 0;
        let mut offset = 0;
        let mut parts = Vec::new();
        for part in stem.split('/') {
            if part == "+" {
                wildcards += 1;
                first_wildcard.get_or_insert(offset);
            }
            offset += part.len() + 1;
            parts.push(part.to_owned());
        }
        Ok(match first_wildcard {
            Some(first_wildcard) => Pattern::Segments(Segments {
                written: path.to_owned(),
                stem: stem.to_owned(),
                parts,
                glob,
                first_wildcard,
                wildcards,
            }),
            None if glob => Pattern::Prefix(stem.to_owned()),
            None => Pattern::Exact(stem.to_owned()),
        })
    }
}

const PATH_MAP_SHAPE: &str = "path must map each path to its rules, like {\"transit/encrypt/*\": {\"capabilities\": [\"update\"]}}";

fn unknown_top_level(key: &str) -> String {
    format!(
        "unknown top-level \"{key}\" (a policy is made of path \"...\" {{ capabilities = [...] }} blocks)"
    )
}

/// The error for a setting other than capabilities, policy and comment.
fn setting_error(written: &str, key: &str) -> String {
    if UNSUPPORTED.contains(&key) {
        format!(
            "path \"{written}\": {key} is not supported by transitd yet; remove it (ignoring it would grant more than the policy intends)"
        )
    } else {
        format!(
            "unknown setting \"{key}\" in path \"{written}\" (known: capabilities, policy, comment)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::tests::{acl, policy};
    use crate::auth::policy::{
        Acl,
        Capability::{Create, List, Patch, Read, Sudo, Update},
        Policy, ROOT,
    };

    fn err(text: &str) -> String {
        match Policy::parse("web", text) {
            Ok(p) => panic!("expected an error, parsed {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn policy_legacy_shorthand() {
        let acl = acl(&[r#"
path "secret/*" {
  policy = "write"
}
path "ro/*" {
  policy = "read"
}
path "admin/*" {
  policy = "sudo"
}
path "none/*" {
  policy = "deny"
}
path "mixed/*" {
  policy = "read"
  capabilities = ["patch"]
}
"#]);
        assert_eq!(
            acl.capabilities("secret/x"),
            ["create", "delete", "list", "read", "update"]
        );
        assert!(acl.allows("secret/x", Update));
        assert!(!acl.allows("secret/x", Sudo));
        assert!(!acl.allows("secret/x", Patch));
        assert_eq!(acl.capabilities("ro/x"), ["list", "read"]);
        assert_eq!(
            acl.capabilities("admin/x"),
            ["create", "delete", "list", "read", "sudo", "update"]
        );
        assert_eq!(acl.capabilities("none/x"), ["deny"]);
        assert_eq!(acl.capabilities("mixed/x"), ["list", "patch", "read"]);
    }

    #[test]
    fn policy_json_form() {
        let text = r#"{"path": {"transit/encrypt/*": {"capabilities": ["update"]}}}"#;
        let p = policy("j", text);
        assert_eq!(p.raw(), text);
        let acl = Acl::new(&[p]);
        assert!(acl.allows("transit/encrypt/a", Update));
        assert!(!acl.allows("transit/decrypt/a", Update));

        let acl = acl_of_json(
            r#"
  {
    "name": "x",
    "path": [
      {"a/+": {"capabilities": ["read"], "comment": "one"}},
      {"b": {"policy": "write"}}
    ]
  }
"#,
        );
        assert!(acl.allows("a/x", Read));
        assert!(acl.allows("b", Create));

        let e = err(
            "\n{\n  \"path\": {\n    \"a\": {\n      \"capabilities\": [\"read\",\n \"updat\"]\n    }\n  }\n}\n",
        );
        assert!(
            e.starts_with("policy web line 6: unknown capability \"updat\""),
            "{e}"
        );
        let e = err("{\"path\": {\"a\": {\"allowed_parameters\": {\"x\": []}}}}");
        assert!(e.starts_with("policy web line 1: "), "{e}");
        assert!(e.contains("not supported by transitd yet"), "{e}");
        let e = err("{\"paths\": {}}");
        assert!(e.contains("unknown top-level \"paths\""), "{e}");
        let e = err("{\"path\": {\"a\": [\"read\"]}}");
        assert!(e.contains("must be an object"), "{e}");
        let e = err("{\n\"path\": {\n");
        assert!(e.starts_with("policy web line "), "{e}");
        assert!(e.contains("syntax error"), "{e}");
    }

    fn acl_of_json(text: &str) -> Acl {
        Acl::new(&[policy("j", text)])
    }

    #[test]
    fn policy_parse_errors_name_the_line() {
        let e = err(
            "path \"transit/encrypt/*\" {\n  capabilities = [\"read\"]\n  capabilities = [\"updat\"]\n}\n",
        );
        assert!(
            e.starts_with("policy web line 3: duplicate \"capabilities\""),
            "{e}"
        );

        let e = err(
            "# a comment\n\npath \"transit/encrypt/*\" {\n  capabilities = [\n    \"update\",\n    \"updat\",\n  ]\n}\n",
        );
        assert!(
            e.starts_with("policy web line 6: unknown capability \"updat\""),
            "{e}"
        );

        let e = err(
            "path \"a\" {\n  capabilities = [\"read\"]\n}\npath \"b\" {\n  capabilites = [\"read\"]\n}\n",
        );
        assert!(
            e.starts_with("policy web line 5: unknown setting \"capabilites\""),
            "{e}"
        );

        for key in UNSUPPORTED {
            let e = err(&format!(
                "path \"a\" {{\n  capabilities = [\"update\"]\n  {key} = \"x\"\n}}\n"
            ));
            assert!(e.starts_with("policy web line 3: "), "{e}");
            assert!(
                e.contains(&format!("{key} is not supported by transitd yet")),
                "{e}"
            );
        }
        let e = err(
            "path \"a\" {\n  capabilities = [\"update\"]\n  control_group {\n    ttl = \"1h\"\n  }\n}\n",
        );
        assert!(e.starts_with("policy web line 3: "), "{e}");
        assert!(e.contains("control_group is not supported"), "{e}");

        let e = err("\n\npath \"transit/keys/*/rotate\" {\n  capabilities = [\"update\"]\n}\n");
        assert!(e.starts_with("policy web line 3: "), "{e}");
        assert!(e.contains("may only be the last character"), "{e}");
        let e = err("path \"transit/keys/+*\" { capabilities = [\"read\"] }");
        assert!(e.contains("\"+*\" is not allowed"), "{e}");
        let e = err("path \"secret/{{identity.entity.id}}/*\" { capabilities = [\"read\"] }");
        assert!(e.contains("templated paths"), "{e}");

        let e = err("path \"a\" {\n  capabilities = \"read\"\n}\n");
        assert!(e.starts_with("policy web line 2: "), "{e}");
        assert!(e.contains("must be a list of strings"), "{e}");
        let e = err("path \"a\" {\n  capabilities = [read]\n}\n");
        assert!(e.starts_with("policy web line 2: "), "{e}");
        let e = err("path \"a\" {\n  policy = \"admin\"\n}\n");
        assert!(
            e.starts_with("policy web line 2: invalid policy \"admin\""),
            "{e}"
        );
        let e = err("path \"a\" {\n  capabilities = [\"Read\"]\n}\n");
        assert!(e.contains("unknown capability \"Read\""), "{e}");

        let e = err("path \"a\" { capabilities = [\"read\"] }\nstorage \"x\" {}\n");
        assert!(
            e.starts_with("policy web line 2: unknown top-level \"storage\""),
            "{e}"
        );
        let e = err("policies = [\"a\"]\n");
        assert!(
            e.starts_with("policy web line 1: unknown top-level \"policies\""),
            "{e}"
        );
        let e = err("\npath {\n  capabilities = [\"read\"]\n}\n");
        assert!(
            e.starts_with("policy web line 2: a path block needs"),
            "{e}"
        );
        let e = err("path \"a\" \"b\" {\n}\n");
        assert!(e.contains("takes one label"), "{e}");

        let e = err("path \"a\" {\n  capabilities = [\"read\"\n}\n");
        assert!(e.starts_with("policy web line 3: syntax error"), "{e}");

        let e = match Policy::parse(ROOT, "") {
            Ok(_) => panic!("root parsed"),
            Err(e) => e,
        };
        assert!(e.starts_with("policy root: "), "{e}");
    }

    #[test]
    fn policy_parse_accepts() {
        // Empty policies, comments, one-line blocks, a name, a BOM, CRLF,
        // the `path = {...}` object form, an empty capability list.
        let text = "\u{feff}# c\r\nname = \"p\"\r\n// c\r\n/* c */\r\npath \"/a/b\" {\r\n  capabilities = [\"read\",]\r\n  comment = \"x\"\r\n}\r\npath = {\r\n  \"c/+\" = { capabilities = [\"list\"] }\r\n}\r\npath \"d\" { capabilities = [] }\r\n";
        let p = policy("ok", text);
        assert_eq!(p.raw(), text);
        let acl = Acl::new(&[p]);
        assert!(acl.allows("a/b", Read));
        assert!(acl.allows("c/x/", List));
        assert_eq!(acl.capabilities("d"), ["deny"]);
        assert!(Policy::parse("empty", "").is_ok());
        assert!(Policy::parse("empty", "  \n# nothing\n").is_ok());
        // `+` inside a segment is literal.
        let acl = self::acl(&[r#"path "a/b+c" { capabilities = ["read"] }"#]);
        assert!(acl.allows("a/b+c", Read));
        assert!(!acl.allows("a/bxc", Read));
        // `*` alone matches everything, `+` alone one segment.
        let acl = self::acl(&[
            r#"path "*" { capabilities = ["read"] }"#,
            r#"path "+" { capabilities = ["update"] }"#,
        ]);
        assert!(acl.allows("x", Update));
        assert!(!acl.allows("x", Read));
        assert!(acl.allows("x/y", Read));
        // The empty path is one empty segment, which `+` matches.
        assert!(acl.allows("", Update));
        assert!(!acl.allows("", Read));
    }
}
