//! Which rule decides a request: the rules of a token's policies merged into
//! an [`Acl`], and the path matching and ranking that picks one of them.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use super::capability::{Bits, NAMES};
use super::{Capability, Grant, Pattern, Policy, ROOT, WrapBounds};

/// A pattern with at least one `+` segment.
#[derive(Clone, Debug)]
pub(super) struct Segments {
    /// The pattern (leading `/` dropped), `*` included: rules merge on this.
    pub(super) written: String,
    /// The pattern without its trailing `*`.
    pub(super) stem: String,
    /// `stem` split at `/`.
    pub(super) parts: Vec<String>,
    /// Whether the pattern ends in `*`.
    pub(super) glob: bool,
    /// Byte offset of the first `+` segment.
    pub(super) first_wildcard: usize,
    /// How many segments are `+`.
    pub(super) wildcards: usize,
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

/// The rules of a token's policies, merged, ready to answer questions.
#[derive(Clone, Debug, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Grant>,
    /// Keyed by the pattern without its `*`.
    prefix: HashMap<String, Grant>,
    /// The distinct key lengths of `prefix`, longest first.
    prefix_lengths: Vec<usize>,
    segments: Vec<(Segments, Grant)>,
}

/// A matching wildcard rule, with what ranks it.
struct Candidate<'a> {
    first_wildcard: usize,
    glob: bool,
    wildcards: usize,
    stem: &'a str,
    grant: Grant,
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
                Pattern::Exact(path) => merge_into(&mut acl.exact, path, rule.grant),
                Pattern::Prefix(stem) => merge_into(&mut acl.prefix, stem, rule.grant),
                Pattern::Segments(segments) => match segment_index.get(&segments.written) {
                    Some(&i) => {
                        if let Some(entry) = acl.segments.get_mut(i) {
                            entry.1 = entry.1.merge(rule.grant);
                        }
                    }
                    None => {
                        segment_index.insert(segments.written.clone(), acl.segments.len());
                        acl.segments.push((segments.clone(), rule.grant));
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
            Some(Grant { bits, .. }) => !bits.has(Bits::DENY) && bits.has(cap.bits()),
            None => false,
        }
    }

    /// Whether the rule deciding `path` admits a reply wrapped for `ttl`
    /// seconds (`None`: not wrapped); asked besides [`Acl::allows`].
    pub fn admits_wrapping(&self, path: &str, listing: bool, ttl: Option<Duration>) -> bool {
        if self.root {
            return true;
        }
        self.lookup(path, listing)
            .map_or(WrapBounds::default(), |g| g.wrap)
            .admit(ttl)
    }

    /// The capabilities on `path`, for `sys/capabilities-self`: sorted names,
    /// `["root"]` for the root ACL, `["deny"]` when nothing is granted.
    /// Answers as for a list request, like Vault.
    pub fn capabilities(&self, path: &str) -> Vec<&'static str> {
        if self.root {
            return vec![ROOT];
        }
        let bits = self.lookup(path, true).map_or(Bits::NONE, |g| g.bits);
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

    /// Whether some rule grants anything (but `deny`) on a path under
    /// `prefix` (`team/transit/`): which mounts a caller is shown, as
    /// Vault's mount listing decides. Generous with `+` patterns: one whose
    /// segments agree with the prefix's counts.
    pub fn grants_under(&self, prefix: &str) -> bool {
        if self.root {
            return true;
        }
        let grants = |g: &Grant| !g.bits.has(Bits::DENY) && g.bits != Bits::NONE;
        let exact = self
            .exact
            .iter()
            .any(|(path, g)| path.starts_with(prefix) && grants(g));
        let wildcard = self.prefix.iter().any(|(stem, g)| {
            (stem.starts_with(prefix) || prefix.starts_with(stem.as_str())) && grants(g)
        });
        let prefix_parts: Vec<&str> = prefix.trim_end_matches('/').split('/').collect();
        let segments = self.segments.iter().any(|(s, g)| {
            grants(g)
                && s.parts
                    .iter()
                    .zip(&prefix_parts)
                    .all(|(pattern, part)| pattern == "+" || pattern == part || pattern.is_empty())
        });
        exact || wildcard || segments
    }

    /// What the rule that decides `path` grants, if one does.
    fn lookup(&self, path: &str, listing: bool) -> Option<Grant> {
        let path = path.trim_start_matches('/');
        let without_slash = path.strip_suffix('/').filter(|_| listing);
        if let Some(grant) = self.exact.get(path) {
            return Some(*grant);
        }
        if let Some(grant) = without_slash.and_then(|p| self.exact.get(p)) {
            return Some(*grant);
        }
        self.most_specific(path)
            .or_else(|| without_slash.and_then(|p| self.most_specific(p)))
    }

    /// What the highest-ranked matching wildcard rule grants.
    fn most_specific(&self, path: &str) -> Option<Grant> {
        let mut best = self.longest_prefix(path).map(|(stem, grant)| Candidate {
            first_wildcard: stem.len(),
            glob: true,
            wildcards: 0,
            stem,
            grant,
        });
        if !self.segments.is_empty() {
            let parts: Vec<&str> = path.split('/').collect();
            for (segments, grant) in &self.segments {
                if !segments.matches(&parts) {
                    continue;
                }
                let candidate = Candidate {
                    first_wildcard: segments.first_wildcard,
                    glob: segments.glob,
                    wildcards: segments.wildcards,
                    stem: &segments.stem,
                    grant: *grant,
                };
                if best
                    .as_ref()
                    .is_none_or(|b| candidate.rank(b) == Ordering::Greater)
                {
                    best = Some(candidate);
                }
            }
        }
        best.map(|c| c.grant)
    }

    /// The longest prefix rule `path` starts with.
    fn longest_prefix<'p>(&self, path: &'p str) -> Option<(&'p str, Grant)> {
        self.prefix_lengths
            .iter()
            .filter_map(|&len| path.get(..len))
            .find_map(|stem| self.prefix.get(stem).map(|grant| (stem, *grant)))
    }
}

fn merge_into(map: &mut HashMap<String, Grant>, key: &str, grant: Grant) {
    match map.get_mut(key) {
        Some(existing) => *existing = existing.merge(grant),
        None => {
            map.insert(key.to_owned(), grant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Capability::{Create, Delete, Deny, List, Patch, Read, Sudo, Update};
    use super::*;
    use crate::auth::policy::tests::{acl, policy};

    /// Which mounts a caller's API document shows: any grant under the
    /// mount's path, through an exact, prefix or `+` rule; not a deny.
    #[test]
    fn grants_under_a_mount() {
        let a = acl(&[r#"
path "team/transit/encrypt/web" { capabilities = ["update"] }
path "ops/*" { capabilities = ["read"] }
path "auth/+/login" { capabilities = ["create"] }
path "secret/*" { capabilities = ["deny"] }
"#]);
        for (prefix, shown) in [
            ("team/transit/", true),
            ("team/", true),
            ("ops/transit/", true),
            ("auth/approle/", true),
            ("transit/", false),
            ("team/transit2/", false),
            ("secret/", false),
        ] {
            assert_eq!(a.grants_under(prefix), shown, "{prefix}");
        }
        assert!(Acl::root().grants_under("anything/"));
        assert!(!Acl::default().grants_under("transit/"));
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
}
