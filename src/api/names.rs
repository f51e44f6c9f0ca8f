//! Every name a request path carries, made canonical in one place.
//!
//! A name is checked and normalized here, once, while the path is parsed into
//! a [`Route`](super::route::Route); authorization, the audit entries, the
//! handler and the store all receive the result and never trim or fold it
//! again. A deny on `sys/policies/acl/admin` was once bypassed by
//! `admin%20`, lower-cased in one layer and trimmed in another: here a name
//! is either canonical, folded the one way Vault folds it, or refused.
//!
//! The rules, after OpenBao's:
//! * The whole path: every character printable ([`printable`]): no control
//!   characters, and no white space but the ASCII space (OpenBao answers 400
//!   for tabs, newlines, U+00A0 or U+3000 anywhere in a path).
//! * No name starts or ends with a space (400). OpenBao trims policy names;
//!   we refuse instead, so that the name authorized is the name written.
//! * Policy, user and role names are case-insensitive in Vault: they are
//!   lower-cased here, and only here.
//! * User and role names follow Vault's `GenericNameRegex` (ASCII word
//!   characters and `-.@`, a word character at each end); any other name is
//!   no endpoint (404, as in OpenBao).
//! * Key, mount and audit device names keep their case (Vault's do too).

use crate::error::{ApiError, ApiResult};
use crate::name_syntax::is_generic;

/// Whether `c` may appear in a request path: Go's `unicode.IsPrint` as
/// OpenBao applies it, which allows the ASCII space and no other white space,
/// no control and no format character (zero-width and direction marks).
pub(crate) fn printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control() || c.is_whitespace() || is_format(c))
}

/// Unicode's format characters (category Cf) that can hide inside a name.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
    )
}

/// The check every kind shares: not empty, no space at either end.
fn unpadded<'a>(kind: &str, name: &'a str) -> ApiResult<&'a str> {
    if name.is_empty() {
        return Err(ApiError::bad(format!("missing {kind} name")));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(ApiError::bad(format!(
            "invalid {kind} name {name:?}: it starts or ends with a space"
        )));
    }
    Ok(name)
}

/// `sys/policies/acl/:name`, `sys/policy/:name`: lower-cased.
pub(crate) fn policy(name: &str) -> ApiResult<String> {
    Ok(unpadded("policy", name)?.to_lowercase())
}

/// A list of policy names in a body (`policies`, `token_policies`): as
/// Vault's `SanitizePolicies`, each trimmed and lower-cased, empty ones
/// dropped, sorted, without duplicates. (A policy name in a path is refused
/// when padded; a list in a body is cleaned, as Vault does.)
pub(crate) fn policy_list(list: Vec<String>) -> Vec<String> {
    let mut list: Vec<String> = list
        .iter()
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list
}

/// A transit key (`keys/:name`, `encrypt/:name`, ...): kept as written.
pub(crate) fn key(name: &str) -> ApiResult<&str> {
    unpadded("key", name)
}

/// A transit mount (`sys/mounts/:path`): kept as written, each segment unpadded.
pub(crate) fn mount(path: &str) -> ApiResult<&str> {
    segments("mount", path)
}

/// A login method's mount (`sys/auth/:path`): kept as written, each segment unpadded.
pub(crate) fn auth_mount(path: &str) -> ApiResult<&str> {
    segments("auth mount", path)
}

/// An audit device (`sys/audit/:path`, `sys/audit-hash/:path`).
pub(crate) fn audit_device(path: &str) -> ApiResult<&str> {
    segments("audit device", path)
}

fn segments<'a>(kind: &str, path: &'a str) -> ApiResult<&'a str> {
    for segment in path.split('/') {
        unpadded(kind, segment)?;
    }
    Ok(path)
}

/// A userpass user (`users/:name`, `login/:name`): lower-cased; `None` when
/// it is no name Vault's routes match (404).
pub(crate) fn user(name: &str) -> Option<String> {
    is_generic(name).then(|| name.to_lowercase())
}

/// An AppRole role (`role/:name/...`): lower-cased; `None` when it is no
/// name Vault's routes match (404).
pub(crate) fn role(name: &str) -> Option<String> {
    is_generic(name).then(|| name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_is_go_is_print() {
        for c in ['a', 'Z', '0', ' ', '-', '/', 'é', '中', '😀', '@'] {
            assert!(printable(c), "{c:?}");
        }
        for c in [
            '\t',
            '\n',
            '\r',
            '\0',
            '\u{7f}',
            '\u{85}',
            '\u{a0}',
            '\u{2002}',
            '\u{3000}',
            '\u{200b}',
            '\u{200e}',
            '\u{202e}',
            '\u{2028}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(!printable(c), "{c:?}");
        }
    }

    #[test]
    fn each_kind_refuses_padding_and_folds_only_its_case() {
        assert_eq!(policy("Admin").unwrap(), "admin");
        assert_eq!(policy("a b").unwrap(), "a b");
        for padded in ["admin ", " admin", " "] {
            assert!(
                matches!(policy(padded), Err(ApiError::BadRequest(_))),
                "{padded:?}"
            );
            assert!(key(padded).is_err() && mount(padded).is_err(), "{padded:?}");
        }
        assert!(policy("").is_err());
        assert_eq!(key("K1").unwrap(), "K1");
        assert_eq!(mount("Team/Transit").unwrap(), "Team/Transit");
        assert!(mount("team /transit").is_err() && auth_mount("a/ b").is_err());
        assert!(audit_device("file ").is_err());
        assert_eq!(user("Bob").as_deref(), Some("bob"));
        assert_eq!(role("CI").as_deref(), Some("ci"));
        assert_eq!(user("bob "), None);
        assert_eq!(role("c i"), None);
    }
}
