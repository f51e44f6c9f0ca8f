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
//! A block may also bound response wrapping: `min_wrapping_ttl` and
//! `max_wrapping_ttl` (seconds or a Go duration) make the rule grant
//! nothing to a request whose reply is not wrapped for at least / at most
//! that long (so an operator can require wrapping of secret IDs).
//!
//! Restrictions Vault supports but transitd does not enforce yet
//! (`allowed_parameters`, `denied_parameters`, `required_parameters`,
//! MFA, control groups, pagination limits, expirations,
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
//! except that a `deny` in any of them makes the merged rule `deny` only;
//! of their wrapping bounds, the smallest minimum and the smallest maximum
//! hold (as in OpenBao; a minimum above the maximum then grants nothing).
//! `a/b`, `a/b*` and `a/+` are different patterns and never merge.
//!
//! These rules follow OpenBao's `internal/vault/policy/policy.go`
//! (`parsePaths`), `acl.go` (`NewACL`, `AllowOperation`,
//! `CheckAllowedFromNonExactPaths`, `Capabilities`) and
//! `internal/vault/capabilities.go` (sorted output).

mod acl;
mod capability;
mod parse;

pub use acl::Acl;
pub use capability::Capability;

use std::time::Duration;

use acl::Segments;
use capability::Bits;
use parse::Parser;

/// The name of the policy that allows everything; it has no text.
pub const ROOT: &str = "root";
/// The name of the policy every token gets unless told otherwise.
pub const DEFAULT: &str = "default";
/// The built-in policy of wrapping tokens: they may unwrap, nothing else.
pub const RESPONSE_WRAPPING: &str = "response-wrapping";

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
    grant: Grant,
}

/// What a rule grants: capabilities, within wrapping bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    bits: Bits,
    wrap: WrapBounds,
}

impl Grant {
    fn merge(self, other: Grant) -> Grant {
        Grant {
            bits: self.bits.merge(other.bits),
            wrap: self.wrap.merge(other.wrap),
        }
    }
}

/// `min_wrapping_ttl` and `max_wrapping_ttl` in seconds; 0: no bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrapBounds {
    pub min_secs: u64,
    pub max_secs: u64,
}

impl WrapBounds {
    /// OpenBao's merge: the smallest of the bounds set, for each.
    fn merge(self, other: WrapBounds) -> WrapBounds {
        let smallest = |a: u64, b: u64| match (a, b) {
            (0, x) | (x, 0) => x,
            (a, b) => a.min(b),
        };
        WrapBounds {
            min_secs: smallest(self.min_secs, other.min_secs),
            max_secs: smallest(self.max_secs, other.max_secs),
        }
    }

    /// Whether a request whose reply is wrapped for `ttl` (`None`: not
    /// wrapped) is within the bounds. The whole duration counts, as in
    /// OpenBao: 300.9s is over a 5m maximum.
    pub fn admit(self, ttl: Option<Duration>) -> bool {
        let secs = Duration::from_secs;
        let within_max = self.max_secs == 0 || ttl.is_some_and(|t| t <= secs(self.max_secs));
        let within_min = self.min_secs == 0 || ttl.is_some_and(|t| t >= secs(self.min_secs));
        let coherent = self.min_secs == 0 || self.max_secs == 0 || self.min_secs <= self.max_secs;
        within_max && within_min && coherent
    }
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
            parser.source.parsed_from(text.len() - trimmed_start.len());
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

# Response wrapping: wrap a value, look up and unwrap a wrapping token.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;

/// The text of the `response-wrapping` policy (OpenBao's, without the
/// cubbyhole transitd does not have).
const RESPONSE_WRAPPING_POLICY_HCL: &str = r#"path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

path "auth/token/revoke-self" {
    capabilities = ["update"]
}
"#;

/// The `response-wrapping` policy, built in and unchangeable.
pub fn response_wrapping_policy() -> Policy {
    Policy::parse(RESPONSE_WRAPPING, RESPONSE_WRAPPING_POLICY_HCL).unwrap_or_else(|_| Policy {
        name: RESPONSE_WRAPPING.to_owned(),
        raw: RESPONSE_WRAPPING_POLICY_HCL.to_owned(),
        rules: Vec::new(),
    })
}

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

#[cfg(test)]
mod tests {
    use super::Capability::{Read, Update};
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    pub(super) fn policy(name: &str, text: &str) -> Policy {
        match Policy::parse(name, text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    pub(super) fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| policy(&format!("p{i}"), t))
            .collect();
        Acl::new(&policies)
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
        assert!(acl.allows("sys/wrapping/unwrap", Update));
    }

    #[test]
    fn policy_response_wrapping_unwraps_only() {
        assert!(Policy::parse(RESPONSE_WRAPPING, RESPONSE_WRAPPING_POLICY_HCL).is_ok());
        let acl = Acl::new(&[response_wrapping_policy()]);
        assert!(acl.allows("sys/wrapping/unwrap", Update));
        assert!(acl.allows("auth/token/revoke-self", Update));
        assert!(!acl.allows("sys/wrapping/lookup", Update));
        assert!(!acl.allows("sys/wrapping/wrap", Update));
        assert!(!acl.allows("auth/token/lookup-self", Read));
    }

    #[test]
    fn wrapping_bounds_admit_only_wrapped_replies_within_them() {
        let bounds = |min_secs, max_secs| WrapBounds { min_secs, max_secs };
        assert!(bounds(0, 0).admit(None));
        assert!(!bounds(60, 0).admit(None));
        assert!(!bounds(60, 0).admit(Some(secs(59))));
        assert!(bounds(60, 0).admit(Some(secs(60))));
        assert!(!bounds(0, 300).admit(None));
        assert!(!bounds(0, 300).admit(Some(secs(301))));
        assert!(bounds(60, 300).admit(Some(secs(300))));
        // A fraction counts (OpenBao 2.7.2: 300.9s is over 5m; 59.5s under 1m).
        assert!(!bounds(60, 300).admit(Some(Duration::from_millis(300_900))));
        assert!(!bounds(60, 300).admit(Some(Duration::from_millis(59_500))));
        assert!(bounds(60, 300).admit(Some(Duration::from_millis(60_500))));
        // Merged from two policies, a minimum above the maximum admits nothing.
        let merged = bounds(600, 0).merge(bounds(0, 300));
        assert_eq!(merged, bounds(600, 300));
        assert!(!merged.admit(Some(secs(400))));
        assert_eq!(bounds(60, 600).merge(bounds(120, 300)), bounds(60, 300));
    }

    #[test]
    fn policy_wrapping_ttls_bound_the_deciding_rule() {
        let acl = acl(&[r#"
path "auth/approle/role/+/secret-id" {
    capabilities = ["update"]
    min_wrapping_ttl = "1m"
    max_wrapping_ttl = 300
}
path "auth/approle/role/+/role-id" { capabilities = ["read"] }
"#]);
        let secret_id = "auth/approle/role/ci/secret-id";
        assert!(acl.allows(secret_id, Update));
        assert!(!acl.admits_wrapping(secret_id, false, None));
        assert!(!acl.admits_wrapping(secret_id, false, Some(secs(30))));
        assert!(acl.admits_wrapping(secret_id, false, Some(secs(60))));
        assert!(!acl.admits_wrapping(secret_id, false, Some(secs(301))));
        assert!(acl.admits_wrapping("auth/approle/role/ci/role-id", false, None));
        assert!(Acl::root().admits_wrapping(secret_id, false, None));
        for (text, says) in [
            (
                "path \"a\" {\n min_wrapping_ttl = 600\n max_wrapping_ttl = 60\n}",
                "max_wrapping_ttl cannot be less than min_wrapping_ttl",
            ),
            (
                r#"path "a" { min_wrapping_ttl = "soon" }"#,
                "error parsing min_wrapping_ttl",
            ),
        ] {
            let err = Policy::parse("p", text).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
