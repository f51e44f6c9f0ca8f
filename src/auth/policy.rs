//! ACL policies in Vault's policy language, and the decision they make for a
//! request path. Pure: no storage, no I/O.
//!
//! # Policy text
//!
//! A policy is a list of `path "PATTERN" { capabilities = [...] }` blocks
//! (HCL), or the same thing as JSON:
//! `{"path": {"PATTERN": {"capabilities": [...]}}}`. Capabilities are
//! `create`, `read`, `update`, `patch`, `delete`, `list`, `sudo`, `deny` (and
//! OpenBao's `scan`, accepted and reported but never needed by transitd). The
//! old `policy = "deny" | "read" | "write" | "sudo"` shorthand stands for
//! `deny`, `read`+`list`, `create`+`read`+`update`+`delete`+`list`, and that
//! plus `sudo`; it adds to `capabilities`. `deny` anywhere in a block leaves
//! the block with `deny` only. An empty list is allowed and grants nothing.
//!
//! Patterns: a leading `/` is dropped. A `*` may only be the last character
//! and makes the pattern a prefix (`transit/encrypt/web-*` covers
//! `transit/encrypt/web-1` and also `transit/encrypt/web-1/more`). A segment
//! that is exactly `+` matches any one whole segment (`transit/keys/+/rotate`);
//! a `+` inside a segment is an ordinary character, and `+*` is refused.
//!
//! Restrictions Vault supports but transitd does not enforce yet
//! (`allowed_parameters`, `denied_parameters`, `required_parameters`,
//! wrapping TTLs, MFA, control groups, pagination limits, expirations,
//! identity templates) are refused when parsing: ignoring them would grant
//! more than the author wrote.
//!
//! # Which rule decides a request
//!
//! Exactly one rule decides; rules for different patterns are never combined.
//! For a request path (all leading `/` dropped):
//!
//! 1. A rule without wildcards written for exactly that path decides.
//! 2. Otherwise, of the prefix and `+` rules that match, the most specific
//!    decides. Comparing two of them:
//!    1. the one whose first wildcard (its first `+` segment, or where its
//!       `*` stands) comes later in the pattern wins, so literal text before
//!       any wildcard counts most;
//!    2. then one without a trailing `*` beats one with it;
//!    3. then the one with fewer `+` segments wins;
//!    4. then the longer pattern (not counting the `*`) wins;
//!    5. then, arbitrarily but always the same way, the one that sorts later.
//! 3. A `list` question about a path ending in `/` also tries the path
//!    without that `/`: for an exact rule right after step 1, and for
//!    wildcard rules only when step 2 found nothing.
//! 4. No matching rule means nothing is allowed.
//!
//! The deciding rule's capabilities are the answer. So a `deny` (or an empty
//! list) in a more specific rule takes away what a broader rule grants, and a
//! broader `deny` does not take away what a more specific rule grants.
//!
//! # Several policies
//!
//! Before any matching, rules with the same pattern (from several policies,
//! or repeated in one) become one rule: their capabilities are unioned,
//! except that a `deny` in any of them makes the merged rule `deny` only.
//! `a/b`, `a/b*` and `a/+` are different patterns and never merge.
//!
//! These rules follow OpenBao's `internal/vault/policy/policy.go`
//! (`parsePaths`), `acl.go` (`NewACL`, `AllowOperation`,
//! `CheckAllowedFromNonExactPaths`, `Capabilities`) and
//! `internal/vault/capabilities.go` (sorted output).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, Object, ObjectKey};
use hcl_edit::structure::{Block, Body, Structure};

/// The name of the policy that allows everything; it has no text.
pub const ROOT: &str = "root";
/// The name of the policy every token gets unless told otherwise.
pub const DEFAULT: &str = "default";

/// What a request needs on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    Create,
    Read,
    Update,
    Patch,
    Delete,
    List,
    Sudo,
    /// Only meaningful inside policies: [`Acl::allows`] never allows it.
    Deny,
}

impl Capability {
    /// Every capability, in declaration order.
    pub const ALL: [Capability; 8] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Patch,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Deny,
    ];

    /// The name used in policies and in `sys/capabilities-self`.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Patch => "patch",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Deny => "deny",
        }
    }

    /// The capability with this policy name (`"read"`), if any.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == name)
    }

    fn bits(self) -> Bits {
        match self {
            Capability::Create => Bits::CREATE,
            Capability::Read => Bits::READ,
            Capability::Update => Bits::UPDATE,
            Capability::Patch => Bits::PATCH,
            Capability::Delete => Bits::DELETE,
            Capability::List => Bits::LIST,
            Capability::Sudo => Bits::SUDO,
            Capability::Deny => Bits::DENY,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of capabilities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits(u16);

impl Bits {
    const NONE: Bits = Bits(0);
    const DENY: Bits = Bits(1);
    const CREATE: Bits = Bits(1 << 1);
    const READ: Bits = Bits(1 << 2);
    const UPDATE: Bits = Bits(1 << 3);
    const DELETE: Bits = Bits(1 << 4);
    const LIST: Bits = Bits(1 << 5);
    const SUDO: Bits = Bits(1 << 6);
    const PATCH: Bits = Bits(1 << 7);
    const SCAN: Bits = Bits(1 << 8);

    fn has(self, other: Bits) -> bool {
        self.0 & other.0 != 0
    }

    fn union(self, other: Bits) -> Bits {
        Bits(self.0 | other.0)
    }

    /// Two rules for the same pattern: union, but deny absorbs everything.
    fn merge(self, other: Bits) -> Bits {
        if self.has(Bits::DENY) || other.has(Bits::DENY) {
            Bits::DENY
        } else {
            self.union(other)
        }
    }
}

/// Capability names accepted in policies, sorted (the order of
/// [`Acl::capabilities`]).
const NAMES: [(&str, Bits); 9] = [
    ("create", Bits::CREATE),
    ("delete", Bits::DELETE),
    ("deny", Bits::DENY),
    ("list", Bits::LIST),
    ("patch", Bits::PATCH),
    ("read", Bits::READ),
    ("scan", Bits::SCAN),
    ("sudo", Bits::SUDO),
    ("update", Bits::UPDATE),
];

/// Settings Vault allows in a path block that restrict what the capabilities
/// grant; transitd refuses them rather than ignore them.
const UNSUPPORTED: [&str; 10] = [
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "control_group",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
];

/// A pattern with at least one `+` segment.
#[derive(Clone, Debug)]
struct Segments {
    /// The pattern (leading `/` dropped), `*` included: rules merge on this.
    written: String,
    /// The pattern without its trailing `*`.
    stem: String,
    /// `stem` split at `/`.
    parts: Vec<String>,
    /// Whether the pattern ends in `*`.
    glob: bool,
    /// Byte offset of the first `+` segment.
    first_wildcard: usize,
    /// How many segments are `+`.
    wildcards: usize,
}

impl Segments {
    fn matches(&self, path_parts: &[&str]) -> bool {
        if path_parts.len() < self.parts.len() {
            return false;
        }
        if !self.glob && path_parts.len() != self.parts.len() {
            return false;
        }
        let last = self.parts.len().saturating_sub(1);
        self.parts
            .iter()
            .zip(path_parts)
            .enumerate()
            .all(|(i, (pattern, segment))| {
                pattern == "+"
                    || pattern == segment
                    || (self.glob && i == last && segment.starts_with(pattern.as_str()))
            })
    }
}

#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    /// The pattern without its trailing `*`.
    Prefix(String),
    Segments(Segments),
}

#[derive(Clone, Debug)]
struct Rule {
    pattern: Pattern,
    bits: Bits,
}

/// A parsed ACL policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    raw: String,
    rules: Vec<Rule>,
}

impl Policy {
    /// Parses a policy's HCL (or JSON) text. Errors read
    /// `policy NAME line 3: unknown capability "updat" ...`.
    pub fn parse(name: &str, hcl: &str) -> Result<Policy, String> {
        // A byte order mark sits on line 1 without a newline: stripping it
        // keeps line numbers right.
        let text = hcl.strip_prefix('\u{feff}').unwrap_or(hcl);
        let mut parser = Parser::new(name, text);
        if name == ROOT {
            return Err(parser
                .general("\"root\" is built in and cannot be given rules (it allows everything)"));
        }
        let trimmed_start = text.trim_start();
        let rules = if trimmed_start.starts_with('{') {
            parser.base = text.len() - trimmed_start.len();
            let json = trimmed_start.trim_end();
            let expr = hcl_edit::parser::parse_expr(json).map_err(|e| parser.syntax_error(&e))?;
            parser.json(&expr)?
        } else {
            let body = hcl_edit::parser::parse_body(text).map_err(|e| parser.syntax_error(&e))?;
            parser.body(&body)?
        };
        Ok(Policy {
            name: name.to_owned(),
            raw: hcl.to_owned(),
            rules,
        })
    }

    /// The text as given to [`Policy::parse`].
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

/// The text of the `default` policy.
const DEFAULT_POLICY_HCL: &str = r#"# Every token gets this policy unless it was created without it.

# The token may read its own properties.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# The token may extend its own lifetime.
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# The token may revoke itself.
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# The token may ask what it is allowed to do on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# The token may read the ACL its policies add up to (used by UIs; the format
# is internal).
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Lease renewal and lookup, for a lease ID the caller already knows.
path "sys/leases/renew" {
    capabilities = ["update"]
}
path "sys/leases/lookup" {
    capabilities = ["update"]
}
"#;

/// The `default` policy: a token may look itself up, renew and revoke
/// itself, and ask about its own capabilities (OpenBao's default policy
/// without the cubbyhole, identity, wrapping, control-group and tools paths
/// transitd does not have).
pub fn default_policy() -> Policy {
    // The text is fixed and a test parses it; should it ever fail, the
    // fallback grants nothing rather than panic.
    Policy::parse(DEFAULT, DEFAULT_POLICY_HCL).unwrap_or_else(|_| Policy {
        name: DEFAULT.to_owned(),
        raw: DEFAULT_POLICY_HCL.to_owned(),
        rules: Vec::new(),
    })
}

/// The rules of a token's policies, merged, ready to answer questions.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Bits>,
    /// Keyed by the pattern without its `*`.
    prefix: HashMap<String, Bits>,
    /// The distinct key lengths of `prefix`, longest first.
    prefix_lengths: Vec<usize>,
    segments: Vec<(Segments, Bits)>,
}

/// A matching wildcard rule, with what ranks it.
struct Candidate<'a> {
    first_wildcard: usize,
    glob: bool,
    wildcards: usize,
    stem: &'a str,
    bits: Bits,
}

impl Candidate<'_> {
    /// `Greater` when `self` is the more specific rule.
    fn rank(&self, other: &Candidate<'_>) -> Ordering {
        self.first_wildcard
            .cmp(&other.first_wildcard)
            .then_with(|| other.glob.cmp(&self.glob))
            .then_with(|| other.wildcards.cmp(&self.wildcards))
            .then_with(|| self.stem.len().cmp(&other.stem.len()))
            .then_with(|| self.stem.cmp(other.stem))
    }
}

impl Acl {
    /// Merges the rules of `policies` (order does not matter).
    pub fn new(policies: &[Policy]) -> Acl {
        let mut acl = Acl::default();
        let mut segment_index: HashMap<String, usize> = HashMap::new();
        for rule in policies.iter().flat_map(|p| &p.rules) {
            match &rule.pattern {
                Pattern::Exact(path) => merge_into(&mut acl.exact, path, rule.bits),
                Pattern::Prefix(stem) => merge_into(&mut acl.prefix, stem, rule.bits),
                Pattern::Segments(segments) => match segment_index.get(&segments.written) {
                    Some(&i) => {
                        if let Some(entry) = acl.segments.get_mut(i) {
                            entry.1 = entry.1.merge(rule.bits);
                        }
                    }
                    None => {
                        segment_index.insert(segments.written.clone(), acl.segments.len());
                        acl.segments.push((segments.clone(), rule.bits));
                    }
                },
            }
        }
        let mut lengths: Vec<usize> = acl.prefix.keys().map(String::len).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        acl.prefix_lengths = lengths;
        acl
    }

    /// The ACL of the root policy: everything is allowed.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Whether this is the root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Whether a request needing `cap` on `path` is allowed. `path` is the
    /// API path after `/v1/` (`transit/encrypt/web`); a list request's path
    /// ends in `/` as in Vault. `Capability::Deny` is never allowed.
    pub fn allows(&self, path: &str, cap: Capability) -> bool {
        if cap == Capability::Deny {
            return false;
        }
        if self.root {
            return true;
        }
        match self.lookup(path, cap == Capability::List) {
            Some(bits) => !bits.has(Bits::DENY) && bits.has(cap.bits()),
            None => false,
        }
    }

    /// The capabilities on `path`, for `sys/capabilities-self`: sorted names,
    /// `["root"]` for the root ACL, `["deny"]` when nothing is granted.
    /// Answers as for a list request, like Vault.
    pub fn capabilities(&self, path: &str) -> Vec<&'static str> {
        if self.root {
            return vec![ROOT];
        }
        let bits = self.lookup(path, true).unwrap_or(Bits::NONE);
        if bits.has(Bits::DENY) {
            return vec!["deny"];
        }
        let names: Vec<&'static str> = NAMES
            .iter()
            .filter(|(_, b)| bits.has(*b))
            .map(|(name, _)| *name)
            .collect();
        if names.is_empty() {
            vec!["deny"]
        } else {
            names
        }
    }

    /// The capabilities of the rule that decides `path`, if one does.
    fn lookup(&self, path: &str, listing: bool) -> Option<Bits> {
        let path = path.trim_start_matches('/');
        let without_slash = path.strip_suffix('/').filter(|_| listing);
        if let Some(bits) = self.exact.get(path) {
            return Some(*bits);
        }
        if let Some(bits) = without_slash.and_then(|p| self.exact.get(p)) {
            return Some(*bits);
        }
        self.most_specific(path)
            .or_else(|| without_slash.and_then(|p| self.most_specific(p)))
    }

    /// The capabilities of the highest-ranked matching wildcard rule.
    fn most_specific(&self, path: &str) -> Option<Bits> {
        let mut best = self.longest_prefix(path).map(|(stem, bits)| Candidate {
            first_wildcard: stem.len(),
            glob: true,
            wildcards: 0,
            stem,
            bits,
        });
        if !self.segments.is_empty() {
            let parts: Vec<&str> = path.split('/').collect();
            for (segments, bits) in &self.segments {
                if !segments.matches(&parts) {
                    continue;
                }
                let candidate = Candidate {
                    first_wildcard: segments.first_wildcard,
                    glob: segments.glob,
                    wildcards: segments.wildcards,
                    stem: &segments.stem,
                    bits: *bits,
                };
                if best
                    .as_ref()
                    .is_none_or(|b| candidate.rank(b) == Ordering::Greater)
                {
                    best = Some(candidate);
                }
            }
        }
        best.map(|c| c.bits)
    }

    /// The longest prefix rule `path` starts with.
    fn longest_prefix<'p>(&self, path: &'p str) -> Option<(&'p str, Bits)> {
        self.prefix_lengths
            .iter()
            .filter_map(|&len| path.get(..len))
            .find_map(|stem| self.prefix.get(stem).map(|bits| (stem, *bits)))
    }
}

fn merge_into(map: &mut HashMap<String, Bits>, key: &str, bits: Bits) {
    match map.get_mut(key) {
        Some(existing) => *existing = existing.merge(bits),
        None => {
            map.insert(key.to_owned(), bits);
        }
    }
}

/// A setting inside a path block, from HCL or JSON.
struct Setting<'e> {
    key: String,
    span: Option<Range<usize>>,
    value: &'e Expression,
}

/// Turns parsed HCL into rules, with `policy NAME line N:` errors.
struct Parser<'a> {
    name: &'a str,
    text: &'a str,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
    /// Where the parsed part starts in `text` (JSON is parsed trimmed).
    base: usize,
}

impl<'a> Parser<'a> {
    fn new(name: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name,
            text,
            line_starts,
            base: 0,
        }
    }

    /// 1-based line of an offset in `text`.
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index + 1,
            Err(index) => index,
        }
    }

    fn general(&self, message: impl fmt::Display) -> String {
        format!("policy {}: {message}", self.name)
    }

    /// An error at a span of the parsed part.
    fn at(&self, span: Option<Range<usize>>, message: impl fmt::Display) -> String {
        match span {
            Some(span) => format!(
                "policy {} line {}: {message}",
                self.name,
                self.line_of(self.base + span.start)
            ),
            None => self.general(message),
        }
    }

    fn syntax_error(&self, error: &hcl_edit::parser::Error) -> String {
        let offset = self.base + error.location().offset();
        let line = self.line_of(offset);
        let line_start = self
            .line_starts
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let column = offset.saturating_sub(line_start) + 1;
        if error.message().contains("redefined") {
            // hcl-edit points at the repeated key.
            let key: String = self
                .text
                .get(offset..)
                .unwrap_or_default()
                .trim_start_matches('"')
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '*' | '+'))
                .collect();
            return format!(
                "policy {} line {line}: duplicate \"{key}\" (each setting may appear only once)",
                self.name
            );
        }
        format!(
            "policy {} line {line}: syntax error at column {column}: {}",
            self.name,
            error.message()
        )
    }

    /// The top level of an HCL policy.
    fn body(&self, body: &Body) -> Result<Vec<Rule>, String> {
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
    fn json(&self, expr: &Expression) -> Result<Vec<Rule>, String> {
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
        let pattern = self.pattern(written, span)?;
        let mut bits = Bits::NONE;
        for setting in settings {
            match setting.key.as_str() {
                "capabilities" => bits = bits.union(self.capability_list(written, setting)?),
                "policy" => bits = bits.union(self.legacy(written, setting)?),
                "comment" => {}
                key => return Err(self.at(setting.span.clone(), setting_error(written, key))),
            }
        }
        if bits.has(Bits::DENY) {
            bits = Bits::DENY;
        }
        Ok(Rule { pattern, bits })
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

fn attr_span(attr: &hcl_edit::structure::Attribute) -> Option<Range<usize>> {
    attr.span()
        .or_else(|| attr.key.span())
        .or_else(|| attr.value.span())
}

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
    use super::Capability::{Create, Delete, Deny, List, Patch, Read, Sudo, Update};
    use super::*;

    fn policy(name: &str, text: &str) -> Policy {
        match Policy::parse(name, text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| policy(&format!("p{i}"), t))
            .collect();
        Acl::new(&policies)
    }

    fn err(text: &str) -> String {
        match Policy::parse("web", text) {
            Ok(p) => panic!("expected an error, parsed {p:?}"),
            Err(e) => e,
        }
    }

    /// Policies, then (path, capability, allowed) questions about them.
    type Scenario = (
        &'static [&'static str],
        &'static [(&'static str, Capability, bool)],
    );

    // Adapted from OpenBao's acl_test.go fixtures (legacy shorthand, segment
    // wildcards, scan).
    const BAO_SINGLE: &str = r#"
name = "DeV"
path "dev/*" { policy = "sudo" }
path "stage/*" { policy = "write" }
path "stage/aws/*" {
  policy = "read"
  capabilities = ["update", "sudo"]
}
path "stage/aws/policy/*" { policy = "sudo" }
path "prod/*" { policy = "read" }
path "prod/aws/*" { policy = "deny" }
path "sys/*" { policy = "deny" }
path "foo/bar" { capabilities = ["read", "create", "sudo"] }
path "baz/quux" { capabilities = ["read", "create", "patch"] }
path "test/+/segment" { capabilities = ["read"] }
path "+/segment/at/front" { capabilities = ["read"] }
path "test/segment/at/end/+" { capabilities = ["read"] }
path "test/segment/at/end/v2/+/" { capabilities = ["read"] }
path "test/+/wildcard/+/*" { capabilities = ["read"] }
path "test/+/wildcardglob/+/end*" { capabilities = ["read"] }
path "1/2/*" { capabilities = ["create"] }
path "1/2/+" { capabilities = ["read"] }
path "1/2/+/+" { capabilities = ["update"] }
path "asdf/fdsa" { capabilities = ["scan"] }
"#;

    const BAO_LAYER: &str = r#"
path "dev/hide/*" { policy = "deny" }
path "stage/aws/policy/*" {
  policy = "deny"
  # deny wins over these
  capabilities = ["read", "update", "sudo"]
}
path "prod/*" { policy = "write" }
path "sys/seal" { policy = "sudo" }
path "foo/bar" { capabilities = ["deny"] }
path "baz/quux" { capabilities = ["deny"] }
"#;

    const SCENARIOS: &[Scenario] = &[
        // A prefix glob in the middle of a segment.
        (
            &[r#"path "transit/encrypt/web-*" { capabilities = ["update"] }"#],
            &[
                ("transit/encrypt/web-1", Update, true),
                ("transit/encrypt/web-1", Read, false),
                ("transit/encrypt/web-1", Create, false),
                ("transit/decrypt/web-1", Update, false),
                ("transit/keys/web-1/rotate", Update, false),
                ("transit/encrypt/web-", Update, true),
                ("transit/encrypt/web", Update, false),
                ("transit/encrypt/Web-1", Update, false),
                // A glob is a plain string prefix: it crosses `/`.
                ("transit/encrypt/web-1/more", Update, true),
                ("/transit/encrypt/web-1", Update, true),
                ("//transit/encrypt/web-1", Update, true),
            ],
        ),
        // An exact rule beats any glob, and is not merged with it.
        (
            &[
                r#"path "transit/keys/*" { capabilities = ["read", "list"] }"#,
                r#"path "transit/keys/secret" { capabilities = ["deny"] }"#,
                r#"path "transit/keys/audit" { capabilities = ["update"] }"#,
            ],
            &[
                ("transit/keys/x", Read, true),
                ("transit/keys/secret", Read, false),
                ("transit/keys/secret/config", Read, true),
                ("transit/keys/audit", Read, false),
                ("transit/keys/audit", Update, true),
                ("transit/keys/audit/config", Read, true),
                ("transit/keys/audit/config", Update, false),
            ],
        ),
        // The longer glob prefix wins.
        (
            &[
                r#"path "transit/*" { capabilities = ["read"] }"#,
                r#"path "transit/keys/*" { capabilities = ["update"] }"#,
                r#"path "transit/keys/web*" { capabilities = ["deny"] }"#,
            ],
            &[
                ("transit/export/x", Read, true),
                ("transit/export/x", Update, false),
                ("transit/keys/a", Update, true),
                ("transit/keys/a", Read, false),
                ("transit/keys/web1", Update, false),
                ("transit/keys/web1", Read, false),
                ("transit/keysx", Read, true),
                ("transit", Read, false),
            ],
        ),
        // `+` against `*` at the same position: no trailing `*` wins; the
        // glob still covers what `+` does not match.
        (
            &[
                r#"path "transit/keys/+" { capabilities = ["read"] }"#,
                r#"path "transit/keys/*" { capabilities = ["update"] }"#,
            ],
            &[
                ("transit/keys/a", Read, true),
                ("transit/keys/a", Update, false),
                ("transit/keys/a/rotate", Update, true),
                ("transit/keys/a/rotate", Read, false),
                // `+` also matches an empty segment, as in OpenBao.
                ("transit/keys/", Read, true),
                ("transit/keys/", Update, false),
            ],
        ),
        // Literal text before the first wildcard counts most: the glob at
        // offset 16 beats the `+` at offset 8.
        (
            &[
                r#"path "transit/+/web" { capabilities = ["update"] }"#,
                r#"path "transit/encrypt/*" { capabilities = ["read"] }"#,
            ],
            &[
                ("transit/encrypt/web", Read, true),
                ("transit/encrypt/web", Update, false),
                ("transit/decrypt/web", Update, true),
                ("transit/decrypt/web/x", Update, false),
            ],
        ),
        // OpenBao's segment wildcard priority cases: update always wins.
        (
            &[r#"path "+/*" { capabilities = ["read"] }
path "*" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
            ],
        ),
        (
            &[r#"path "+/*" { capabilities = ["read"] }
path "foo/+/*" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
            ],
        ),
        (
            &[r#"path "foo/+/+/*" { capabilities = ["read"] }
path "foo/+/bar/baz" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
            ],
        ),
        (
            &[r#"path "foo/+/+/baz" { capabilities = ["read"] }
path "foo/+/bar/baz" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
            ],
        ),
        (
            &[r#"path "foo/+/(ar/baz" { capabilities = ["read"] }
path "foo/(ar/+/baz" { capabilities = ["update"] }"#],
            &[
                ("foo/(ar/(ar/baz", Update, true),
                ("foo/(ar/(ar/baz", Read, false),
            ],
        ),
        (
            &[r#"path "foo/bar/+/baz*" { capabilities = ["read"] }
path "foo/bar/+/baz" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
                ("foo/bar/bar/bazz", Read, true),
            ],
        ),
        (
            &[r#"path "foo/bar/+/b*" { capabilities = ["read"] }
path "foo/bar/+/ba*" { capabilities = ["update"] }"#],
            &[
                ("foo/bar/bar/baz", Update, true),
                ("foo/bar/bar/baz", Read, false),
                ("foo/bar/bar/bz", Read, true),
            ],
        ),
        // A deny in a more specific rule takes away what a broad one grants.
        (
            &[
                r#"path "transit/*" { capabilities = ["create", "read", "update", "delete", "list"] }"#,
                r#"path "transit/keys/+/rotate" { capabilities = ["deny"] }"#,
            ],
            &[
                ("transit/keys/k/rotate", Update, false),
                ("transit/keys/k", Update, true),
                ("transit/keys/k/config", Update, true),
                ("transit/keys/k/rotate/x", Update, true),
            ],
        ),
        // A broad deny does not take away what a more specific rule grants.
        (
            &[
                r#"path "transit/*" { capabilities = ["deny"] }"#,
                r#"path "transit/encrypt/app" { capabilities = ["update"] }"#,
            ],
            &[
                ("transit/encrypt/app", Update, true),
                ("transit/encrypt/other", Update, false),
            ],
        ),
        // An empty list in a more specific rule grants nothing.
        (
            &[
                r#"path "transit/*" { capabilities = ["update"] }"#,
                r#"path "transit/encrypt/locked" { capabilities = [] }"#,
            ],
            &[
                ("transit/encrypt/locked", Update, false),
                ("transit/encrypt/open", Update, true),
            ],
        ),
        // The same path in two policies: union, and deny wins, in any order.
        (
            &[
                r#"path "transit/encrypt/app" { capabilities = ["update"] }"#,
                r#"path "transit/encrypt/app" { capabilities = ["read"] }"#,
                r#"path "transit/decrypt/app" { capabilities = ["update", "read"] }"#,
                r#"path "transit/decrypt/app" { capabilities = ["deny"] }"#,
                r#"path "transit/sign/app" { capabilities = ["deny"] }"#,
                r#"path "transit/sign/app" { capabilities = ["update"] }"#,
                // Same text but a different pattern kind: not merged.
                r#"path "transit/encrypt/app*" { capabilities = ["deny"] }"#,
                r#"path "transit/keys/+" { capabilities = ["read"] }"#,
                r#"path "transit/keys/+" { capabilities = ["deny"] }"#,
            ],
            &[
                ("transit/encrypt/app", Update, true),
                ("transit/encrypt/app", Read, true),
                ("transit/encrypt/app2", Update, false),
                ("transit/decrypt/app", Update, false),
                ("transit/decrypt/app", Read, false),
                ("transit/sign/app", Update, false),
                ("transit/keys/k", Read, false),
            ],
        ),
        // Lists: a path ending in `/` falls back to the path without it.
        (
            &[
                r#"path "transit/keys" { capabilities = ["list"] }"#,
                r#"path "other/+" { capabilities = ["list"] }"#,
            ],
            &[
                ("transit/keys/", List, true),
                ("transit/keys/", Read, false),
                ("transit/keys", List, true),
                ("other/x/", List, true),
                ("other/x/", Read, false),
                ("other/x/y/", List, false),
            ],
        ),
        // OpenBao's list/scan wildcard deny case.
        (
            &[r#"
path "foo/metadata/*" { capabilities = ["list", "scan"] }
path "foo/metadata/private/*" { capabilities = ["deny"] }
path "foo/metadata/private/granted/*" { capabilities = ["list", "scan"] }
"#],
            &[
                ("foo/", List, false),
                ("foo/metadata/", List, true),
                ("foo/metadata/test/", List, true),
                ("foo/metadata/private/", List, false),
                ("foo/metadata/private/internal/", List, false),
                ("foo/metadata/private/granted/", List, true),
                ("foo/metadata/private/granted/test/", List, true),
            ],
        ),
        // OpenBao's single-policy cases.
        (
            &[BAO_SINGLE],
            &[
                ("root", Read, false),
                ("dev/foo", Read, true),
                ("dev/foo", Update, true),
                ("dev/foo", Sudo, true),
                ("dev/foo", Patch, false),
                ("stage/foo", Delete, true),
                ("stage/foo", Sudo, false),
                ("stage/aws/foo", List, true),
                ("stage/aws/foo", Update, true),
                ("stage/aws/foo", Sudo, true),
                ("stage/aws/foo", Create, false),
                ("stage/aws/policy/foo", Update, true),
                ("stage/aws/policy/foo", Sudo, true),
                ("prod/foo", Delete, false),
                ("prod/foo", Update, false),
                ("prod/foo", Read, true),
                ("prod/foo", List, true),
                ("prod/aws/foo", Read, false),
                ("sys/seal", Update, false),
                ("foo/bar", Read, true),
                ("foo/bar", List, false),
                ("foo/bar", Update, false),
                ("foo/bar", Create, true),
                ("foo/bar", Sudo, true),
                ("baz/quux", Read, true),
                ("baz/quux", Create, true),
                ("baz/quux", Patch, true),
                ("baz/quux", List, false),
                ("baz/quux", Update, false),
                ("baz/quux", Sudo, false),
                ("asdf/fdsa", List, false),
                ("test/foo/bar/segment", Read, false),
                ("test/foo/segment", Read, true),
                ("test/bar/segment", Read, true),
                ("test/segment/at/frond", Read, false),
                ("test/segment/at/front", Read, true),
                ("test/segment/at/end/foo", Read, true),
                ("test/segment/at/end/foo/", Read, false),
                ("test/segment/at/end/v2/foo/", Read, true),
                ("test/segment/wildcard/at/foo/", Read, true),
                ("test/segment/wildcard/at/end", Read, true),
                ("test/segment/wildcard/at/end/", Read, true),
                ("test/a/wildcardglob/b/endless", Read, true),
                ("test/a/wildcardglob/b/en", Read, false),
                ("1/2/3/4", Read, false),
                ("1/2/3", Read, true),
                ("1/2/3", Update, false),
                ("1/2/3/4", Update, true),
                ("1/2/3/4/5", Create, true),
            ],
        ),
        // OpenBao's layered cases: two policies merged.
        (
            &[BAO_SINGLE, BAO_LAYER],
            &[
                ("root", Read, false),
                ("dev/foo", Read, true),
                ("dev/foo", Update, true),
                ("dev/foo", Sudo, true),
                ("dev/hide/foo", Read, false),
                ("dev/hide/foo", Update, false),
                ("stage/foo", Delete, true),
                ("stage/aws/foo", List, true),
                ("stage/aws/foo", Update, true),
                ("stage/aws/foo", Sudo, true),
                ("stage/aws/policy/foo", Update, false),
                ("stage/aws/policy/foo", Sudo, false),
                ("prod/foo", Delete, true),
                ("prod/foo", Update, true),
                ("prod/foo", Read, true),
                ("prod/foo", List, true),
                ("prod/aws/foo", Read, false),
                ("sys/status", Read, false),
                ("sys/seal", Update, true),
                ("sys/seal", Sudo, true),
                ("foo/bar", Read, false),
                ("foo/bar", List, false),
                ("foo/bar", Update, false),
                ("foo/bar", Create, false),
                ("baz/quux", Read, false),
                ("baz/quux", List, false),
                ("baz/quux", Update, false),
                ("baz/quux", Create, false),
                ("baz/quux", Patch, false),
            ],
        ),
    ];

    #[test]
    fn policy_matching_and_priority() {
        for (i, (texts, questions)) in SCENARIOS.iter().enumerate() {
            let acl = acl(texts);
            // The merge does not depend on the order of the policies.
            let mut reversed: Vec<&str> = texts.to_vec();
            reversed.reverse();
            let acl_reversed = self::acl(&reversed);
            for &(path, cap, allowed) in questions.iter() {
                assert_eq!(
                    acl.allows(path, cap),
                    allowed,
                    "scenario {i}: {cap} on {path:?} with {texts:?}"
                );
                assert_eq!(
                    acl_reversed.allows(path, cap),
                    allowed,
                    "scenario {i} reversed: {cap} on {path:?}"
                );
                assert!(!acl.allows(path, Deny));
            }
        }
    }

    #[test]
    fn policy_default() {
        let default = default_policy();
        assert_eq!(default.name, DEFAULT);
        assert!(Policy::parse(DEFAULT, DEFAULT_POLICY_HCL).is_ok());
        assert_eq!(default.raw(), DEFAULT_POLICY_HCL);
        assert!(!default.rules.is_empty());
        let acl = Acl::new(&[default]);
        assert!(acl.allows("auth/token/lookup-self", Read));
        assert!(!acl.allows("auth/token/lookup-self", Update));
        assert!(acl.allows("auth/token/renew-self", Update));
        assert!(acl.allows("auth/token/revoke-self", Update));
        assert!(acl.allows("sys/capabilities-self", Update));
        assert!(!acl.allows("transit/encrypt/x", Update));
        assert!(!acl.allows("transit/keys/x", Read));
        assert!(!acl.allows("cubbyhole/x", Read));
        assert!(!acl.allows("sys/policy/default", Read));
        assert!(!acl.allows("auth/token/create", Update));
        assert_eq!(acl.capabilities("auth/token/lookup-self"), ["read"]);
        assert_eq!(acl.capabilities("transit/encrypt/x"), ["deny"]);
    }

    #[test]
    fn policy_root_allows_everything() {
        let root = Acl::root();
        assert!(root.is_root());
        for path in ["transit/encrypt/x", "sys/policy/p", "", "/anything/at/all/"] {
            for cap in Capability::ALL {
                assert_eq!(root.allows(path, cap), cap != Deny, "{cap} on {path}");
            }
            assert_eq!(root.capabilities(path), ["root"]);
        }
        let none = Acl::new(&[]);
        assert!(!none.is_root());
        assert!(!none.allows("transit/encrypt/x", Update));
        assert_eq!(none.capabilities("transit/encrypt/x"), ["deny"]);
        // A policy's name gives no powers.
        let mut named = policy("x", r#"path "a" { capabilities = ["read"] }"#);
        named.name = ROOT.to_owned();
        let acl = Acl::new(&[named]);
        assert!(!acl.is_root());
        assert!(!acl.allows("b", Read));
    }

    #[test]
    fn policy_capabilities_output() {
        let acl = acl(&[BAO_SINGLE]);
        assert_eq!(acl.capabilities("dev"), ["deny"]);
        assert_eq!(
            acl.capabilities("dev/"),
            ["create", "delete", "list", "read", "sudo", "update"]
        );
        assert_eq!(
            acl.capabilities("stage/aws/test"),
            ["list", "read", "sudo", "update"]
        );
        assert_eq!(acl.capabilities("prod/aws/x"), ["deny"]);
        assert_eq!(acl.capabilities("baz/quux"), ["create", "patch", "read"]);
        assert_eq!(acl.capabilities("asdf/fdsa"), ["scan"]);
        assert_eq!(acl.capabilities("/foo/bar"), ["create", "read", "sudo"]);
        assert_eq!(acl.capabilities("nowhere"), ["deny"]);
        // Answers as for a list: the trailing `/` falls back.
        let acl = self::acl(&[r#"path "transit/keys" { capabilities = ["list", "read"] }"#]);
        assert_eq!(acl.capabilities("transit/keys/"), ["list", "read"]);
        assert!(!acl.allows("transit/keys/", Read));
        let acl = self::acl(&[r#"path "a/*" { capabilities = [] }"#]);
        assert_eq!(acl.capabilities("a/b"), ["deny"]);
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

    #[test]
    fn policy_capability_names() {
        for cap in Capability::ALL {
            assert_eq!(Capability::from_name(cap.as_str()), Some(cap));
            assert_eq!(cap.to_string(), cap.as_str());
            assert!(
                NAMES
                    .iter()
                    .any(|(n, b)| *n == cap.as_str() && *b == cap.bits())
            );
        }
        assert_eq!(Capability::from_name("scan"), None);
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
