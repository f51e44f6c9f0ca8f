//! The `seal` block: auto-unseal (OpenBao's `seal "static"`).

use std::fmt;

use hcl_edit::Span;
use hcl_edit::structure::Block;

use super::source::{Scope, Source};

const STATIC_SEAL_SETTINGS: &[&str] = &[
    "current_key_id",
    "current_key",
    "previous_key_id",
    "previous_key",
];

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

impl Source<'_> {
    /// A `seal` block; `None` for `seal "shamir" {}`, which names the
    /// default (the root key split into shares) and takes no settings here.
    pub(super) fn seal(&self, block: &Block) -> Result<Option<SealConfig>, String> {
        let scope = Scope::of(block);
        match self.block_type(block)? {
            "static" => self.static_seal(block, &scope).map(Some),
            "shamir" => {
                self.settings(block, &scope, &[])?;
                Ok(None)
            }
            kind => Err(self.at(
                block.span(),
                format!("unknown seal type {kind:?} (supported: static, shamir)"),
            )),
        }
    }

    fn static_seal(&self, block: &Block, scope: &Scope) -> Result<SealConfig, String> {
        let mut current_key_id = None;
        let mut current_key = None;
        let mut previous_key_id = None;
        let mut previous_key = None;
        for attr in self.settings(block, scope, STATIC_SEAL_SETTINGS)? {
            match attr.key.as_str() {
                "current_key_id" => current_key_id = Some(self.required_text(attr, scope)?),
                "current_key" => current_key = Some(self.key(attr, scope)?),
                "previous_key_id" => previous_key_id = Some(self.required_text(attr, scope)?),
                "previous_key" => previous_key = Some(self.key(attr, scope)?),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{MINIMAL, err};

    #[test]
    fn seal_errors() {
        let e = err(&format!(
            "{MINIMAL}seal \"awskms\" {{\n  region = \"x\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:7: unknown seal type \"awskms\" (supported: static, shamir)"),
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
}
