//! Vault's globs (`ryanuber/go-glob`), for bound claims and Kubernetes
//! bindings: `*` matches any run of characters, nothing else is special.

/// Whether `subject` matches `pattern`.
pub fn matches(pattern: &str, subject: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == subject;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_as_vault() {
        for (pattern, subject, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("abc", "abc", true),
            ("abc", "abcd", false),
            ("repo:org/*", "repo:org/app:ref:main", true),
            ("repo:org/*", "repo:other/app", false),
            ("*:main", "repo:org/app:ref:main", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            // The prefix and suffix may not overlap.
            ("ab*ba", "aba", false),
            ("team-*-prod", "team--prod", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(matches(pattern, subject), want, "{pattern} ~ {subject}");
        }
    }
}
