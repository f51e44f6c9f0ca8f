//! The `seal` block: auto-unseal (OpenBao's `seal "static"` and
//! `seal "transit"`).

use std::fmt;

use hcl_edit::Span;
use hcl_edit::structure::Block;

use super::source::{Scope, Source};

const STATIC_SEAL_SETTINGS: &[&str] = &[
    "disabled",
    "current_key_id",
    "current_key",
    "previous_key_id",
    "previous_key",
];

const TRANSIT_SEAL_SETTINGS: &[&str] = &[
    "disabled",
    "address",
    "token",
    "mount_path",
    "key_name",
    "key_id_prefix",
    "namespace",
    "disable_renewal",
    "tls_ca_cert",
    "tls_client_cert",
    "tls_client_key",
    "tls_server_name",
    "tls_skip_verify",
];

/// Settings OpenBao's transit seal takes that transitd does not: refused by
/// name rather than as unknown, so the operator knows they are real but
/// not offered here.
const TRANSIT_SEAL_UNSUPPORTED: &[(&str, &str)] = &[
    ("tls_ca_path", "give one CA file in tls_ca_cert"),
    ("tls_ca_cert_bytes", "give the CA as a file in tls_ca_cert"),
    (
        "tls_client_cert_bytes",
        "give the certificate as a file in tls_client_cert",
    ),
    (
        "tls_client_key_bytes",
        "give the key as a file in tls_client_key",
    ),
];

/// `seal "transit"` as written. Every setting is optional here because
/// OpenBao also reads them from the environment; `seal::transit` merges the
/// two and says what is missing. `token` is kept as written (`env://VAR`,
/// `file:///path` or the token itself) and never shown by `{:?}`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TransitSealConfig {
    pub address: Option<String>,
    pub token: Option<String>,
    pub mount_path: Option<String>,
    pub key_name: Option<String>,
    pub key_id_prefix: Option<String>,
    pub namespace: Option<String>,
    pub disable_renewal: Option<bool>,
    pub tls_ca_cert: Option<String>,
    pub tls_client_cert: Option<String>,
    pub tls_client_key: Option<String>,
    pub tls_server_name: Option<String>,
    pub tls_skip_verify: Option<bool>,
}

impl fmt::Debug for TransitSealConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransitSealConfig")
            .field("address", &self.address)
            .field("token", &self.token.as_deref().map(KeyForDebug))
            .field("mount_path", &self.mount_path)
            .field("key_name", &self.key_name)
            .field("key_id_prefix", &self.key_id_prefix)
            .field("namespace", &self.namespace)
            .field("disable_renewal", &self.disable_renewal)
            .field("tls_ca_cert", &self.tls_ca_cert)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .field("tls_server_name", &self.tls_server_name)
            .field("tls_skip_verify", &self.tls_skip_verify)
            .finish()
    }
}

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
    /// OpenBao's `seal "transit"`: the root key wrapped by another server's
    /// transit key.
    Transit(TransitSealConfig),
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
            Self::Transit(transit) => fmt::Debug::fmt(transit, f),
        }
    }
}

/// One `seal` block as written: `config` is `None` for `seal "shamir"`.
#[derive(Debug)]
pub(super) struct SealBlock {
    pub config: Option<SealConfig>,
    /// `disabled = "true"`: the seal being migrated away from.
    pub disabled: bool,
}

impl Source<'_> {
    /// A `seal` block; `None` for `seal "shamir" {}`, which names the
    /// default (the root key split into shares) and takes no settings here.
    pub(super) fn seal(&self, block: &Block) -> Result<SealBlock, String> {
        let scope = Scope::of(block);
        let mut disabled = false;
        for structure in block.body.iter() {
            if let Some(attr) = structure.as_attribute()
                && attr.key.as_str() == "disabled"
            {
                disabled = self.boolean(attr, &scope)?;
            }
        }
        let config = match self.block_type(block)? {
            "static" => self.static_seal(block, &scope).map(Some),
            "transit" => self.transit_seal(block, &scope).map(Some),
            "shamir" => {
                self.settings(block, &scope, &["disabled"])?;
                if disabled {
                    // OpenBao's words: migrating to Shamir is the absence of a seal block.
                    return Err(self.at(
                        block.span(),
                        "Shamir seals cannot be set disabled (they should simply not be set)",
                    ));
                }
                Ok(None)
            }
            kind => Err(self.at(
                block.span(),
                format!("unknown seal type {kind:?} (supported: static, transit, shamir)"),
            )),
        }?;
        Ok(SealBlock { config, disabled })
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

impl Source<'_> {
    fn transit_seal(&self, block: &Block, scope: &Scope) -> Result<SealConfig, String> {
        for structure in block.body.iter() {
            if let Some(attr) = structure.as_attribute()
                && let Some((name, instead)) = TRANSIT_SEAL_UNSUPPORTED
                    .iter()
                    .find(|(name, _)| *name == attr.key.as_str())
            {
                return Err(self.at(
                    super::source::attr_span(attr, scope),
                    format!("{name} in seal \"transit\" is not supported by transitd ({instead})"),
                ));
            }
        }
        let mut config = TransitSealConfig::default();
        for attr in self.settings(block, scope, TRANSIT_SEAL_SETTINGS)? {
            let text = || self.required_text(attr, scope).map(Some);
            match attr.key.as_str() {
                "address" => config.address = text()?,
                "token" => config.token = Some(self.key(attr, scope)?),
                "mount_path" => config.mount_path = text()?,
                "key_name" => config.key_name = text()?,
                "key_id_prefix" => config.key_id_prefix = Some(self.string(attr, scope)?),
                "namespace" => config.namespace = Some(self.string(attr, scope)?),
                "disable_renewal" => config.disable_renewal = Some(self.boolean(attr, scope)?),
                "tls_ca_cert" => config.tls_ca_cert = text()?,
                "tls_client_cert" => config.tls_client_cert = text()?,
                "tls_client_key" => config.tls_client_key = text()?,
                "tls_server_name" => config.tls_server_name = text()?,
                "tls_skip_verify" => config.tls_skip_verify = Some(self.boolean(attr, scope)?),
                _ => {}
            }
        }
        Ok(SealConfig::Transit(config))
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
            e.starts_with(
                "config.hcl:7: unknown seal type \"awskms\" (supported: static, transit, shamir)"
            ),
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
    fn transit_seal_as_openbao_documents_it() {
        let source = format!(
            "{MINIMAL}seal \"transit\" {{\n  address = \"https://bao:8200\"\n  token = \"s.Qf1s5zigZ4OX6akYjQXJC1jY\"\n  \
             disable_renewal = \"false\"\n  key_name = \"autounseal\"\n  mount_path = \"transit/\"\n  namespace = \"ns1/\"\n  \
             key_id_prefix = \"p-\"\n  tls_ca_cert = \"/etc/ca.pem\"\n  tls_client_cert = \"/etc/c.pem\"\n  \
             tls_client_key = \"/etc/k.pem\"\n  tls_server_name = \"bao\"\n  tls_skip_verify = \"false\"\n}}\n"
        );
        let config = crate::config::parse(&source, "config.hcl").unwrap();
        let Some(SealConfig::Transit(t)) = config.seal else {
            panic!("not a transit seal: {:?}", config.seal);
        };
        assert_eq!(t.address.as_deref(), Some("https://bao:8200"));
        assert_eq!(t.mount_path.as_deref(), Some("transit/"));
        assert_eq!(t.key_name.as_deref(), Some("autounseal"));
        assert_eq!(t.disable_renewal, Some(false));
        assert_eq!(t.tls_skip_verify, Some(false));
        assert_eq!(t.tls_server_name.as_deref(), Some("bao"));
        let debug = format!("{t:?}");
        assert!(!debug.contains("Qf1s5"), "{debug}");
        // Everything may come from the environment: an empty block parses.
        let bare = crate::config::parse(&format!("{MINIMAL}seal \"transit\" {{}}\n"), "c.hcl");
        assert!(matches!(bare.unwrap().seal, Some(SealConfig::Transit(_))));
    }

    #[test]
    fn transit_seal_errors_name_the_line() {
        let e = err(&format!(
            "{MINIMAL}seal \"transit\" {{\n  key_name = \"k\"\n  mount_pth = \"transit\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:9: unknown setting \"mount_pth\" in seal \"transit\""),
            "{e}"
        );
        assert!(e.contains("did you mean \"mount_path\""), "{e}");
        let e = err(&format!(
            "{MINIMAL}seal \"transit\" {{\n  key_name = \"k\"\n  tls_ca_path = \"/etc/cas\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:9: tls_ca_path in seal \"transit\" is not supported"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}seal \"transit\" {{\n  disabled = \"maybe\"\n}}\n"
        ));
        assert!(
            e.contains("disabled in seal \"transit\" must be true or false"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}seal \"transit\" {{\n  tls_skip_verify = \"perhaps\"\n}}\n"
        ));
        assert!(
            e.starts_with(
                "config.hcl:8: tls_skip_verify in seal \"transit\" must be true or false"
            ),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}seal \"transit\" {{\n  token = \"\"\n}}\n"
        ));
        assert!(
            e.starts_with("config.hcl:8: token in seal \"transit\" must not be empty"),
            "{e}"
        );
    }

    #[test]
    fn transit_seal_in_a_json_config() {
        let source = r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}},
            "seal": {"transit": {"address": "https://bao:8200", "key_name": "k", "mount_path": "transit/", "tls_skip_verify": 0}}}"#;
        let config = crate::config::parse(source, "config.json").unwrap();
        let Some(SealConfig::Transit(t)) = config.seal else {
            panic!("not a transit seal");
        };
        assert_eq!(t.tls_skip_verify, Some(false));
        let e = crate::config::parse(
            r#"{"storage": {"inmem": {}}, "listener": {"tcp": {"tls_disable": 1}}, "seal": {"transit": {"tls_ca_path": "/d"}}}"#,
            "config.json",
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.json: seal.transit.tls_ca_path: tls_ca_path in seal \"transit\" is not supported"),
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
