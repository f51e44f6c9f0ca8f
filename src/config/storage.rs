//! The `storage` block: where the keys live (`sqlite`, `postgresql`, `inmem`).

use std::fmt;
use std::path::PathBuf;

use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Attribute, Block};

use super::source::{Scope, Source, value_span};

const POSTGRESQL_SETTINGS: &[&str] = &["connection_url", "max_parallel", "schema", "ha_enabled"];

/// Where `storage "postgresql"` finds `connection_url` when the block has
/// none, in order (OpenBao's name, then Vault's).
pub const PG_CONNECTION_URL_ENV: &[&str] = &["BAO_PG_CONNECTION_URL", "VAULT_PG_CONNECTION_URL"];

/// Default `max_parallel` of `storage "postgresql"`.
pub const DEFAULT_PG_MAX_PARALLEL: usize = 8;

/// Largest `max_parallel` of `storage "postgresql"`.
pub const MAX_PG_MAX_PARALLEL: usize = 1024;

/// Where the keys live: exactly one `storage` block.
#[derive(Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `storage "sqlite" { path = "..." }`; the path is used as written
    /// (a relative path is relative to the working directory, like Vault).
    Sqlite { path: PathBuf },
    /// `storage "postgresql" { connection_url = "...", max_parallel = 8,
    /// schema = "public" }`, shared by several nodes. `connection_url` may
    /// hold a password: `Debug` redacts it.
    Postgresql {
        connection_url: String,
        /// Default [`DEFAULT_PG_MAX_PARALLEL`].
        max_parallel: usize,
        /// Default `public`.
        schema: String,
    },
    /// `storage "inmem" {}`: nothing survives a restart.
    Inmem,
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            Self::Postgresql {
                connection_url,
                max_parallel,
                schema,
            } => f
                .debug_struct("Postgresql")
                .field(
                    "connection_url",
                    &crate::storage::redact_connection_url(connection_url),
                )
                .field("max_parallel", max_parallel)
                .field("schema", schema)
                .finish(),
            Self::Inmem => f.write_str("Inmem"),
        }
    }
}

impl Source<'_> {
    pub(super) fn storage(
        &self,
        block: &Block,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        let scope = Scope::of(block);
        match self.block_type(block)? {
            "sqlite" => {
                let mut path = None;
                for attr in self.settings(block, &scope, &["path"])? {
                    path = Some(self.required_text(attr, &scope)?);
                }
                let path = path.ok_or_else(|| {
                    self.at(
                        block.span(),
                        "storage \"sqlite\" needs path = \"/path/to/transitd.db\"",
                    )
                })?;
                Ok(StorageConfig::Sqlite {
                    path: PathBuf::from(path),
                })
            }
            "inmem" => {
                self.settings(block, &scope, &[])?;
                Ok(StorageConfig::Inmem)
            }
            "postgresql" => self.postgresql(block, &scope, env),
            other => Err(self.at(
                block.span(),
                format!("unknown storage type {other:?} (supported: sqlite, postgresql, inmem)"),
            )),
        }
    }

    /// `storage "postgresql"`: `connection_url` (or the environment),
    /// `max_parallel`, `schema`.
    fn postgresql(
        &self,
        block: &Block,
        scope: &Scope,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        let mut connection_url = None;
        let mut max_parallel = DEFAULT_PG_MAX_PARALLEL;
        let mut schema = "public".to_owned();
        for attr in self.settings(block, scope, POSTGRESQL_SETTINGS)? {
            match attr.key.as_str() {
                // May hold a password: never echoed (`key` does not quote it).
                "connection_url" => connection_url = Some(self.key(attr, scope)?),
                "max_parallel" => max_parallel = self.max_parallel(attr, scope)?,
                // Vault's default (false) only: nodes here share the
                // database as equals, with no leader to elect.
                "ha_enabled" if self.boolean(attr, scope)? => {
                    return Err(self.at(
                        value_span(attr, scope),
                        format!(
                            "ha_enabled{} is not supported by transitd (every node serves; there is no leader to elect): remove it",
                            scope.suffix()
                        ),
                    ));
                }
                "schema" => {
                    let value = self.string(attr, scope)?;
                    crate::storage::PostgresConfig::validate_schema(&value).map_err(|e| {
                        self.at(
                            value_span(attr, scope),
                            format!("schema{}: {e}", scope.suffix()),
                        )
                    })?;
                    schema = value;
                }
                _ => {}
            }
        }
        let connection_url = match connection_url {
            Some(url) => url,
            None => PG_CONNECTION_URL_ENV
                .iter()
                .find_map(|name| env(name).filter(|v| !v.trim().is_empty()))
                .ok_or_else(|| {
                    self.at(
                        block.span(),
                        format!(
                            "storage \"postgresql\" needs connection_url = \"postgres://...\" \
                             (or the {} environment variable)",
                            PG_CONNECTION_URL_ENV.join(" or ")
                        ),
                    )
                })?,
        };
        Ok(StorageConfig::Postgresql {
            connection_url,
            max_parallel,
            schema,
        })
    }

    /// `max_parallel`: a whole number from 1 to [`MAX_PG_MAX_PARALLEL`],
    /// written as a number or a string (Vault writes `"128"`).
    fn max_parallel(&self, attr: &Attribute, scope: &Scope) -> Result<usize, String> {
        let parsed = match &attr.value {
            Expression::Number(n) => n.value().as_u64(),
            Expression::String(s) => s.value().trim().parse::<u64>().ok(),
            _ => None,
        };
        parsed
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_PG_MAX_PARALLEL).contains(n))
            .ok_or_else(|| {
                self.at(
                    value_span(attr, scope),
                    format!(
                        "max_parallel{} must be a whole number from 1 to {MAX_PG_MAX_PARALLEL}, got {}",
                        scope.suffix(),
                        self.snippet(&attr.value)
                    ),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_with_env;
    use crate::config::tests::err;

    #[test]
    fn storage_errors() {
        let e = err(
            "listener \"tcp\" { tls_disable = true }\nstorage \"consul\" {\n  address = \"x\"\n}\n",
        );
        assert!(
            e.starts_with(
                "config.hcl:2: unknown storage type \"consul\" (supported: sqlite, postgresql, inmem)"
            ),
            "{e}"
        );

        let e = err("listener \"tcp\" { tls_disable = true }\nstorage \"sqlite\" {}\n");
        assert!(
            e.starts_with("config.hcl:2: storage \"sqlite\" needs path"),
            "{e}"
        );

        let e = err("listener \"tcp\" { tls_disable = true }\nstorage {}\n");
        assert!(
            e.starts_with("config.hcl:2: storage block needs a type"),
            "{e}"
        );

        let e = err(
            "listener \"tcp\" { tls_disable = true }\nstorage \"inmem\" {\n  path = \"x\"\n}\n",
        );
        assert!(
            e.starts_with(
                "config.hcl:3: unknown setting \"path\" in storage \"inmem\" (it takes no settings)"
            ),
            "{e}"
        );
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn pg_config(
        block: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StorageConfig, String> {
        parse_with_env(
            &format!("listener \"tcp\" {{ tls_disable = true }}\n{block}"),
            "config.hcl",
            env,
        )
        .map(|c| c.storage)
    }

    #[test]
    fn postgresql_storage() {
        let config = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"postgres://transitd:pw@db/transitd?sslmode=verify-full\"\n  max_parallel = 16\n  schema = \"Transit_1\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            config,
            StorageConfig::Postgresql {
                connection_url: "postgres://transitd:pw@db/transitd?sslmode=verify-full".to_owned(),
                max_parallel: 16,
                schema: "Transit_1".to_owned(),
            }
        );
        // Defaults; max_parallel may be a string, as Vault writes it.
        let config = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db user=t\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(
            config,
            StorageConfig::Postgresql {
                connection_url: "host=db user=t".to_owned(),
                max_parallel: DEFAULT_PG_MAX_PARALLEL,
                schema: "public".to_owned(),
            }
        );
        let config = pg_config(
            "storage \"postgresql\" { \n connection_url = \"host=db\"\n max_parallel = \"128\"\n}\n",
            &no_env,
        )
        .unwrap();
        assert!(
            matches!(
                config,
                StorageConfig::Postgresql {
                    max_parallel: 128,
                    ..
                }
            ),
            "{config:?}"
        );
    }

    #[test]
    fn postgresql_connection_url_from_environment() {
        let both = |name: &str| match name {
            "BAO_PG_CONNECTION_URL" => Some("host=bao".to_owned()),
            "VAULT_PG_CONNECTION_URL" => Some("host=vault".to_owned()),
            _ => None,
        };
        let vault_only =
            |name: &str| (name == "VAULT_PG_CONNECTION_URL").then(|| "host=vault".to_owned());
        let blank = |_: &str| Some("  ".to_owned());
        let url = |c: StorageConfig| match c {
            StorageConfig::Postgresql { connection_url, .. } => connection_url,
            other => panic!("{other:?}"),
        };
        let block = "storage \"postgresql\" {\n  schema = \"s\"\n}\n";
        assert_eq!(url(pg_config(block, &both).unwrap()), "host=bao");
        assert_eq!(url(pg_config(block, &vault_only).unwrap()), "host=vault");
        // The file wins over the environment.
        assert_eq!(
            url(pg_config(
                "storage \"postgresql\" {\n  connection_url = \"host=file\"\n}\n",
                &both
            )
            .unwrap()),
            "host=file"
        );
        for env in [&no_env as &dyn Fn(&str) -> Option<String>, &blank] {
            let e = pg_config(block, env).unwrap_err();
            assert!(
                e.starts_with("config.hcl:2: storage \"postgresql\" needs connection_url"),
                "{e}"
            );
            assert!(
                e.contains("BAO_PG_CONNECTION_URL or VAULT_PG_CONNECTION_URL"),
                "{e}"
            );
        }
    }

    #[test]
    fn postgresql_storage_errors() {
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db\"\n  schema = \"bad-name\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:4: schema in storage \"postgresql\": invalid schema name \"bad-name\""
            ),
            "{e}"
        );
        for bad in [
            "\"1abc\"",
            "\"pg_catalog\"",
            "\"\"",
            &format!("\"{}\"", "s".repeat(55)),
        ] {
            let e = pg_config(
                &format!("storage \"postgresql\" {{\n  connection_url = \"host=db\"\n  schema = {bad}\n}}\n"),
                &no_env,
            )
            .unwrap_err();
            assert!(
                e.starts_with("config.hcl:4: schema in storage \"postgresql\""),
                "{bad}: {e}"
            );
        }
        for bad in ["0", "\"x\"", "1025", "-3", "1.5"] {
            let e = pg_config(
                &format!("storage \"postgresql\" {{\n  connection_url = \"host=db\"\n  max_parallel = {bad}\n}}\n"),
                &no_env,
            )
            .unwrap_err();
            assert!(
                e.starts_with("config.hcl:4: max_parallel in storage \"postgresql\" must be a whole number from 1 to 1024"),
                "{bad}: {e}"
            );
        }
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db\"\n  ha_enabled = \"true\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:4: ha_enabled in storage \"postgresql\" is not supported by transitd"
            ),
            "{e}"
        );
        for default in ["false", "\"false\"", "0"] {
            assert!(
                pg_config(
                    &format!("storage \"postgresql\" {{\n  connection_url = \"host=db\"\n  ha_enabled = {default}\n}}\n"),
                    &no_env,
                )
                .is_ok(),
                "{default}"
            );
        }
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"host=db\"\n  ha_table = \"t\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with("config.hcl:4: unknown setting \"ha_table\" in storage \"postgresql\" (known: connection_url, max_parallel, schema, ha_enabled)"),
            "{e}"
        );
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = \"\"\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:3: connection_url in storage \"postgresql\" must not be empty"
            ),
            "{e}"
        );
        let e = pg_config(
            "storage \"postgresql\" {\n  connection_url = 12345\n}\n",
            &no_env,
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "config.hcl:3: connection_url in storage \"postgresql\" must be a quoted string"
            ),
            "{e}"
        );
    }

    #[test]
    fn postgresql_debug_redacts_the_password() {
        let config = parse_with_env(
            "listener \"tcp\" { tls_disable = true }\nstorage \"postgresql\" {\n  connection_url = \"postgresql://transitd:s3cr3t-pw@db:5432/transitd?sslmode=require\"\n}\n",
            "config.hcl",
            &no_env,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(
            shown.contains("postgresql://transitd:<redacted>@db:5432/transitd?sslmode=require"),
            "{shown}"
        );
        let kv = StorageConfig::Postgresql {
            connection_url: "host=db password='s3cr3t pw' user=t".to_owned(),
            max_parallel: 8,
            schema: "public".to_owned(),
        };
        let shown = format!("{kv:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("password=<redacted>"), "{shown}");
        assert_eq!(format!("{:?}", StorageConfig::Inmem), "Inmem");
    }
}
