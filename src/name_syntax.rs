//! Vault's name syntax, for the names it confines to it (`GenericNameRegex`:
//! users, roles, and the keys a transit mount creates). Pure: the parsers in
//! `api/names.rs` and the key table in `state/mount.rs` both ask it.

/// Vault's `GenericNameRegex`, `\w(([\w-.@]+)?\w)?` with ASCII `\w`: letters,
/// digits, `_`, `-`, `.` and `@`, starting and ending with a letter, digit
/// or `_`. (OpenBao 2.7.2 leaves `@` out; HashiCorp Vault allows it, and
/// user names that are e-mail addresses are common.)
pub fn is_generic(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match (name.chars().next(), name.chars().last()) {
        (Some(first), Some(last)) if word(first) && word(last) => name
            .chars()
            .all(|c| word(c) || matches!(c, '-' | '.' | '@')),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_generic;

    #[test]
    fn generic_names_are_vaults() {
        for ok in ["alice", "a", "a.b-c@d_e", "A1", "_", "a..b"] {
            assert!(is_generic(ok), "{ok}");
        }
        for bad in [
            "", "-a", "a-", "a.", ".a", "a b", " a", "é", "a/b", "a\t", "a*b", "a+b", "a:b",
        ] {
            assert!(!is_generic(bad), "{bad}");
        }
    }
}
