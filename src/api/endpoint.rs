//! The transit engine's route table: which endpoint an operation on a path
//! inside a mount names, and what serving it may change.
//!
//! Everything that depends on the endpoint reads it from here: the audit path
//! (a request that changes nothing may be served while its request entry is
//! being written), authorization (`create` instead of `update` where a key
//! would be created) and the choice of thread (key generation and storage
//! writes run off the async workers). A new endpoint is classified where it
//! is routed, so it cannot be served early by mistake: an endpoint changes
//! state unless [`Endpoint::changes_nothing`] says otherwise.

use super::openapi::{Answer, Field, OpDoc, PathDoc, Ty, f};
use super::{Ctx, Op, byok, crypt, export, hmac, keys, misc, names, sign};
use crate::error::{ApiError, ApiResult};
use crate::metrics::{OpKind, metrics};
use crate::request::Params;
use crate::response::Reply;

/// `restore/<name>` with more segments after the name.
const RESTORE_NAME: &str = "key names cannot be paths";

/// One transit endpoint, with the names it was given in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    ListKeys,
    ReadKey(String),
    /// Creates the key, or answers as it is when it exists.
    WriteKey(String),
    DeleteKey(String),
    ConfigureKey(String),
    RotateKey(String),
    TrimKey(String),
    /// `DELETE keys/:name/soft-delete` (OpenBao 2.x).
    SoftDeleteKey(String),
    /// `keys/:name/soft-delete-restore`.
    RestoreSoftDeletedKey(String),
    /// Creates the key when it does not exist (upsert).
    Encrypt(String),
    Decrypt(String),
    Rewrap(String),
    Datakey {
        kind: String,
        name: String,
    },
    Hmac {
        name: String,
        alg: Option<String>,
    },
    Sign {
        name: String,
        alg: Option<String>,
    },
    Verify {
        name: String,
        alg: Option<String>,
    },
    Export {
        kind: String,
        name: String,
        version: Option<String>,
    },
    /// Stamps the key with the time of the backup.
    Backup(String),
    Restore(Option<String>),
    /// `random`, `random/<bytes or source>`, `random/<source>/<bytes>`.
    Random([Option<String>; 2]),
    Hash(Option<String>),
    ReadCacheConfig,
    WriteCacheConfig,
    ReadKeysConfig,
    WriteKeysConfig,
    /// `wrapping_key`: makes the mount's BYOK wrapping key on first use.
    WrappingKey,
    /// `keys/:name/import`.
    ImportKey(String),
    /// `keys/:name/import_version`.
    ImportKeyVersion(String),
    /// `byok-export/:destination/:source[/:version]`.
    ByokExport {
        destination: String,
        source: String,
        version: Option<String>,
    },
}

/// The document's description of every endpoint above (`api/openapi.rs`),
/// paths relative to the mount. Declared here, beside [`Endpoint::parse`]:
/// the route tests parse every path with every operation and fail unless
/// the declared operations are exactly those served, and serve each one to
/// check that its handler reads exactly the declared fields.
pub(crate) const DOCS: &[PathDoc] = {
    use Answer::*;
    use Op::*;
    use Ty::*;
    const TYPES: &[&str] = &[
        "aes256-gcm96",
        "aes128-gcm96",
        "chacha20-poly1305",
        "xchacha20-poly1305",
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "hmac",
    ];
    const SIGN_OPTIONS: &[Field] = &[
        f("key_version", Int),
        f("input", Base64),
        f("context", Base64),
        f("hash_algorithm", Str),
        f("algorithm", Str),
        f("prehashed", Bool),
        f("signature_algorithm", Str),
        f("salt_length", Str),
        f("marshaling_algorithm", Str),
        f("urlalgorithm", Str),
        f("batch_input", Objects),
    ];
    const VERIFY: &[Field] = &[
        f("signature", Str),
        f("hmac", Str),
        f("input", Base64).later(),
        f("context", Base64).later(),
        f("hash_algorithm", Str).later(),
        f("algorithm", Str).later(),
        f("prehashed", Bool).later(),
        f("signature_algorithm", Str).later(),
        f("salt_length", Str).later(),
        f("marshaling_algorithm", Str).later(),
        f("urlalgorithm", Str),
        f("batch_input", Objects),
    ];
    const HMAC: &[Field] = &[
        f("input", Base64),
        f("key_version", Int),
        f("algorithm", Str),
        f("urlalgorithm", Str),
        f("batch_input", Objects),
    ];
    const ENCRYPT: &[Field] = &[
        f("plaintext", Base64),
        f("context", Base64),
        f("associated_data", Base64),
        f("key_version", Int),
        f("reference", Str).later(),
        f("type", Str).one_of(TYPES),
        f("convergent_encryption", Bool),
        f("partial_failure_response_code", Int),
        f("batch_input", Objects),
    ];
    const DECRYPT: &[Field] = &[
        f("ciphertext", Str),
        f("context", Base64),
        f("associated_data", Base64),
        f("key_version", Int),
        f("reference", Str).later(),
        f("partial_failure_response_code", Int),
        f("batch_input", Objects),
    ];
    const REWRAP: &[Field] = &[
        f("ciphertext", Str),
        f("context", Base64),
        f("associated_data", Base64),
        f("key_version", Int),
        f("reference", Str).later(),
        f("batch_input", Objects),
    ];
    const HASH: &[Field] = &[
        f("input", Base64).required(),
        f("algorithm", Str),
        f("urlalgorithm", Str),
        f("format", Str).one_of(&["hex", "base64"]),
    ];
    const RANDOM: &[Field] = &[
        f("bytes", Int),
        f("source", Str).one_of(&["all", "platform", "seal"]),
        f("urlbytes", Str),
        f("format", Str).one_of(&["hex", "base64"]),
    ];
    const EXPORT_TYPES: &[Field] = &[f("type", Str).one_of(&[
        "encryption-key",
        "signing-key",
        "hmac-key",
        "public-key",
        "certificate-chain",
    ])];
    use crate::api::openapi::plain_path as p;
    &[
        p(
            "keys",
            &[OpDoc::new(List, "list-keys", Data).with(&[f("after", Str), f("limit", Int)])],
        ),
        p(
            "keys/{name}",
            &[
                OpDoc::new(Read, "read-key", Data).with(&[f("context", Base64)]),
                OpDoc::new(Update, "create-key", DataOrEmpty).with(&[
                    f("context", Base64),
                    f("type", Str).one_of(TYPES),
                    f("derived", Bool),
                    f("convergent_encryption", Bool),
                    f("key_size", Int),
                    f("exportable", Bool),
                    f("allow_plaintext_backup", Bool),
                    f("auto_rotate_period", Duration),
                    f("max_encryptions_per_version", Int),
                ]),
                OpDoc::new(Delete, "delete-key", Empty),
            ],
        ),
        p(
            "keys/{name}/config",
            &[OpDoc::new(Update, "configure-key", DataOrEmpty).with(&[
                f("min_decryption_version", Int),
                f("min_encryption_version", Int),
                f("deletion_allowed", Bool),
                f("exportable", Bool),
                f("allow_plaintext_backup", Bool),
                f("auto_rotate_period", Duration),
                f("max_encryptions_per_version", Int),
            ])],
        ),
        p(
            "keys/{name}/rotate",
            &[OpDoc::new(Update, "rotate-key", DataOrEmpty)],
        ),
        p(
            "keys/{name}/trim",
            &[OpDoc::new(Update, "trim-key", DataOrEmpty)
                .with(&[f("min_available_version", Int).required()])],
        ),
        p(
            "keys/{name}/soft-delete",
            &[OpDoc::new(Delete, "soft-delete-key", DataOrEmpty)],
        ),
        p(
            "keys/{name}/soft-delete-restore",
            &[OpDoc::new(Update, "soft-delete-restore-key", DataOrEmpty)],
        ),
        p(
            "keys/{name}/import",
            &[OpDoc::new(Update, "import-key", DataOrEmpty).with(&[
                f("ciphertext", Base64).required().later(),
                f("public_key", Str).later(),
                f("hash_function", Str).later(),
                f("type", Str).one_of(TYPES),
                f("derived", Bool),
                f("convergent_encryption", Bool),
                f("exportable", Bool),
                f("allow_plaintext_backup", Bool),
                f("auto_rotate_period", Duration),
                f("allow_rotation", Bool),
                f("context", Base64),
            ])],
        ),
        p(
            "keys/{name}/import_version",
            &[
                OpDoc::new(Update, "import-key-version", DataOrEmpty).with(&[
                    f("ciphertext", Base64).required().later(),
                    f("public_key", Str).later(),
                    f("hash_function", Str).later(),
                    f("version", Int).later(),
                ]),
            ],
        ),
        p(
            "wrapping_key",
            &[OpDoc::new(Read, "read-wrapping-key", Data)],
        ),
        p(
            "byok-export/{destination}/{source}",
            &[OpDoc::new(Read, "byok-export", Data).with(&[f("hash", Str)])],
        ),
        p(
            "byok-export/{destination}/{source}/{version}",
            &[OpDoc::new(Read, "byok-export-version", Data).with(&[f("hash", Str)])],
        ),
        p(
            "encrypt/{name}",
            &[OpDoc::new(Update, "encrypt", Data).with(ENCRYPT)],
        ),
        p(
            "decrypt/{name}",
            &[OpDoc::new(Update, "decrypt", Data).with(DECRYPT)],
        ),
        p(
            "rewrap/{name}",
            &[OpDoc::new(Update, "rewrap", Data).with(REWRAP)],
        ),
        PathDoc {
            path: "datakey/{kind}/{name}",
            params: &[f("kind", Str).one_of(&["plaintext", "wrapped"])],
            ops: &[OpDoc::new(Update, "generate-data-key", Data).with(&[
                f("bits", Int),
                f("context", Base64),
                f("key_version", Int),
                f("associated_data", Base64),
            ])],
        },
        p(
            "hmac/{name}",
            &[OpDoc::new(Update, "generate-hmac", Data).with(HMAC)],
        ),
        p(
            "hmac/{name}/{urlalgorithm}",
            &[OpDoc::new(Update, "generate-hmac-with-algorithm", Data).with(HMAC)],
        ),
        p(
            "sign/{name}",
            &[OpDoc::new(Update, "sign", Data).with(SIGN_OPTIONS)],
        ),
        p(
            "sign/{name}/{urlalgorithm}",
            &[OpDoc::new(Update, "sign-with-algorithm", Data).with(SIGN_OPTIONS)],
        ),
        p(
            "verify/{name}",
            &[OpDoc::new(Update, "verify", Data).with(VERIFY)],
        ),
        p(
            "verify/{name}/{urlalgorithm}",
            &[OpDoc::new(Update, "verify-with-algorithm", Data).with(VERIFY)],
        ),
        PathDoc {
            path: "export/{type}/{name}",
            params: EXPORT_TYPES,
            ops: &[OpDoc::new(Read, "export-key", Data).with(&[f("format", Str)])],
        },
        PathDoc {
            path: "export/{type}/{name}/{version}",
            params: EXPORT_TYPES,
            ops: &[OpDoc::new(Read, "export-key-version", Data).with(&[f("format", Str)])],
        },
        p("backup/{name}", &[OpDoc::new(Read, "back-up-key", Data)]),
        p(
            "restore",
            &[OpDoc::new(Update, "restore-key", DataOrEmpty).with(&[
                f("backup", Str).required(),
                f("name", Str),
                f("force", Bool),
            ])],
        ),
        p(
            "restore/{name}",
            &[
                OpDoc::new(Update, "restore-and-rename-key", DataOrEmpty).with(&[
                    f("backup", Str).required(),
                    f("name", Str),
                    f("force", Bool),
                ]),
            ],
        ),
        p(
            "random",
            &[OpDoc::new(Update, "generate-random", Data).with(RANDOM)],
        ),
        p(
            "random/{source}",
            &[OpDoc::new(Update, "generate-random-with-source-or-bytes", Data).with(RANDOM)],
        ),
        p(
            "random/{source}/{urlbytes}",
            &[OpDoc::new(Update, "generate-random-with-source-and-bytes", Data).with(RANDOM)],
        ),
        p("hash", &[OpDoc::new(Update, "hash", Data).with(HASH)]),
        p(
            "hash/{urlalgorithm}",
            &[OpDoc::new(Update, "hash-with-algorithm", Data).with(HASH)],
        ),
        p(
            "cache-config",
            &[
                OpDoc::new(Read, "read-cache-configuration", Data),
                OpDoc::new(Update, "configure-cache", DataOrEmpty).with(&[f("size", Int)]),
            ],
        ),
        p(
            "config/keys",
            &[
                OpDoc::new(Read, "read-keys-configuration", Data),
                OpDoc::new(Update, "configure-keys", DataOrEmpty)
                    .with(&[f("disable_upsert", Bool)]),
            ],
        ),
    ]
};

impl Endpoint {
    /// The endpoint `op` on `rest` (the path inside the mount) names: 404
    /// for an unknown path, 405 for an operation the path does not take.
    pub(crate) fn parse(op: Op, rest: &str) -> ApiResult<Self> {
        use Endpoint as E;
        use Op::*;
        let only = |allowed: &[Op], endpoint: Endpoint| {
            if allowed.contains(&op) {
                Ok(endpoint)
            } else {
                Err(ApiError::UnsupportedOperation)
            }
        };
        let mut seg = [""; 5];
        let mut n = 0;
        for s in rest.split('/') {
            if n == seg.len() {
                return Err(if seg[0] == "restore" {
                    ApiError::bad(RESTORE_NAME)
                } else {
                    ApiError::UnsupportedPath
                });
            }
            seg[n] = s;
            n += 1;
        }
        let key = |name: &str| names::key(name).map(str::to_owned);
        let last = |s: &[&str]| s.first().map(|&v| v.to_owned());
        match seg[..n] {
            ["keys"] => only(&[List], E::ListKeys),
            ["keys", name] => match op {
                Read => Ok(E::ReadKey(key(name)?)),
                Update => Ok(E::WriteKey(key(name)?)),
                Delete => Ok(E::DeleteKey(key(name)?)),
                List => Err(ApiError::UnsupportedPath),
            },
            ["keys", name, "config"] => only(&[Update], E::ConfigureKey(key(name)?)),
            ["keys", name, "rotate"] => only(&[Update], E::RotateKey(key(name)?)),
            ["keys", name, "trim"] => only(&[Update], E::TrimKey(key(name)?)),
            ["keys", name, "import"] => only(&[Update], E::ImportKey(key(name)?)),
            ["keys", name, "import_version"] => only(&[Update], E::ImportKeyVersion(key(name)?)),
            ["wrapping_key"] => only(&[Read], E::WrappingKey),
            ["byok-export", destination, source, ref version @ ..] if version.len() <= 1 => only(
                &[Read],
                E::ByokExport {
                    destination: key(destination)?,
                    source: key(source)?,
                    version: last(version),
                },
            ),
            ["keys", name, "soft-delete"] => only(&[Delete], E::SoftDeleteKey(key(name)?)),
            ["keys", name, "soft-delete-restore"] => {
                only(&[Update], E::RestoreSoftDeletedKey(key(name)?))
            }
            ["encrypt", name] => only(&[Update], E::Encrypt(key(name)?)),
            ["decrypt", name] => only(&[Update], E::Decrypt(key(name)?)),
            ["rewrap", name] => only(&[Update], E::Rewrap(key(name)?)),
            ["datakey", kind, name] => only(
                &[Update],
                E::Datakey {
                    kind: kind.to_owned(),
                    name: key(name)?,
                },
            ),
            // The last segment, where optional (an algorithm, a version).
            ["hmac", name, ref alg @ ..] if alg.len() <= 1 => {
                let (name, alg) = (key(name)?, last(alg));
                only(&[Update], E::Hmac { name, alg })
            }
            ["sign", name, ref alg @ ..] if alg.len() <= 1 => {
                let (name, alg) = (key(name)?, last(alg));
                only(&[Update], E::Sign { name, alg })
            }
            ["verify", name, ref alg @ ..] if alg.len() <= 1 => {
                let (name, alg) = (key(name)?, last(alg));
                only(&[Update], E::Verify { name, alg })
            }
            ["export", kind, name, ref version @ ..] if version.len() <= 1 => only(
                &[Read],
                E::Export {
                    kind: kind.to_owned(),
                    name: key(name)?,
                    version: last(version),
                },
            ),
            ["backup", name] => only(&[Read], E::Backup(key(name)?)),
            ["restore"] => only(&[Update], E::Restore(None)),
            ["restore", name] => only(&[Update], E::Restore(Some(key(name)?))),
            ["restore", _, _, ..] => Err(ApiError::bad(RESTORE_NAME)),
            ["random"] => only(&[Update], E::Random([None, None])),
            ["random", a] => only(&[Update], E::Random([Some(a.to_owned()), None])),
            ["random", a, b] => only(
                &[Update],
                E::Random([Some(a.to_owned()), Some(b.to_owned())]),
            ),
            ["hash", ref alg @ ..] if alg.len() <= 1 => only(&[Update], E::Hash(last(alg))),
            ["cache-config"] => match op {
                Read => Ok(E::ReadCacheConfig),
                Update => Ok(E::WriteCacheConfig),
                _ => Err(ApiError::UnsupportedOperation),
            },
            ["config", "keys"] => match op {
                Read => Ok(E::ReadKeysConfig),
                Update => Ok(E::WriteKeysConfig),
                _ => Err(ApiError::UnsupportedOperation),
            },
            _ => Err(ApiError::UnsupportedPath),
        }
    }

    /// Whether serving it always writes to storage. Every endpoint is named
    /// here (no wildcard): a new one must be classified to compile.
    fn always_writes(&self) -> bool {
        use Endpoint as E;
        match self {
            E::DeleteKey(_)
            | E::ConfigureKey(_)
            | E::RotateKey(_)
            | E::TrimKey(_)
            | E::SoftDeleteKey(_)
            | E::RestoreSoftDeletedKey(_)
            | E::Backup(_)
            | E::Restore(_)
            | E::WriteCacheConfig
            | E::WriteKeysConfig
            | E::ImportKey(_)
            | E::ImportKeyVersion(_) => true,
            // Writes once per mount (the first read makes the key), and that
            // write takes a second of RSA-4096 generation: counted as a write.
            E::WrappingKey => true,
            // Write only when the key does not exist yet: see below.
            E::WriteKey(_) | E::Encrypt(_) => false,
            E::ListKeys
            | E::ReadKey(_)
            | E::Decrypt(_)
            | E::Rewrap(_)
            | E::Datakey { .. }
            | E::Hmac { .. }
            | E::Sign { .. }
            | E::Verify { .. }
            | E::Export { .. }
            | E::Random(_)
            | E::Hash(_)
            | E::ReadCacheConfig
            | E::ReadKeysConfig
            | E::ByokExport { .. } => false,
        }
    }

    /// Whether serving it changes nothing, so that its request entry need
    /// not be durable before it is served, only before it is answered.
    /// `stable_key(name)`: the key exists and cannot be deleted
    /// (`deletion_allowed` off), so encrypting with it or "creating" it does
    /// not create it.
    pub(crate) fn changes_nothing(&self, stable_key: impl FnOnce(&str) -> bool) -> bool {
        match self.may_create() {
            Some(name) => stable_key(name),
            None => !self.always_writes(),
        }
    }

    /// The key this endpoint creates when it does not exist yet (which, as
    /// in Vault, takes the `create` capability).
    pub(crate) fn may_create(&self) -> Option<&str> {
        match self {
            Self::Encrypt(name) | Self::WriteKey(name) => Some(name),
            _ => None,
        }
    }

    /// Whether it may block (key generation, RSA-4096 taking a while;
    /// storage writes, an fsync each), and so must run off the async
    /// workers. `key_missing(name)`: encrypt would create its key.
    pub(crate) fn may_block(&self, key_missing: impl FnOnce(&str) -> bool) -> bool {
        match self {
            // Answered as it is when the key exists, but rare: not worth a lookup.
            Self::WriteKey(_) => true,
            Self::Encrypt(name) => key_missing(name),
            _ => self.always_writes(),
        }
    }

    /// Serves it.
    /// Serves it, and counts the cryptographic operations
    /// (`transitd_operations`, `transitd_batch_items`).
    pub(crate) fn serve(&self, ctx: &Ctx<'_>, op: Op, p: &Params) -> ApiResult<Reply> {
        let reply = self.serve_uncounted(ctx, op, p);
        if let Some((kind, name)) = self.counted() {
            count(ctx, kind, name, &reply);
        }
        reply
    }

    /// The operation kind a metric counts it under, and its key's name.
    fn counted(&self) -> Option<(OpKind, &str)> {
        use Endpoint as E;
        Some(match self {
            E::Encrypt(name) => (OpKind::Encrypt, name),
            E::Decrypt(name) => (OpKind::Decrypt, name),
            E::Rewrap(name) => (OpKind::Rewrap, name),
            E::Datakey { name, .. } => (OpKind::Datakey, name),
            E::Hmac { name, .. } => (OpKind::Hmac, name),
            E::Sign { name, .. } => (OpKind::Sign, name),
            E::Verify { name, .. } => (OpKind::Verify, name),
            _ => return None,
        })
    }

    fn serve_uncounted(&self, ctx: &Ctx<'_>, op: Op, p: &Params) -> ApiResult<Reply> {
        use Endpoint as E;
        match self {
            E::ListKeys => keys::list(ctx, p),
            E::ReadKey(name) => keys::read(ctx, name, p),
            E::WriteKey(name) => keys::create(ctx, name, p),
            E::DeleteKey(name) => keys::delete(ctx, name),
            E::ConfigureKey(name) => keys::configure(ctx, name, p),
            E::RotateKey(name) => keys::rotate(ctx, name, p),
            E::TrimKey(name) => keys::trim(ctx, name, p),
            E::SoftDeleteKey(name) => keys::soft_delete(ctx, name, true),
            E::RestoreSoftDeletedKey(name) => keys::soft_delete(ctx, name, false),
            E::Encrypt(name) => crypt::encrypt(ctx, name, p),
            E::Decrypt(name) => crypt::decrypt(ctx, name, p),
            E::Rewrap(name) => crypt::rewrap(ctx, name, p),
            E::Datakey { kind, name } => crypt::datakey(ctx, kind, name, p),
            E::Hmac { name, alg } => hmac::hmac(ctx, name, alg.as_deref(), p),
            E::Sign { name, alg } => sign::sign(ctx, name, alg.as_deref(), p),
            E::Verify { name, alg } => sign::verify(ctx, name, alg.as_deref(), p),
            E::Export {
                kind,
                name,
                version,
            } => export::export(ctx, kind, name, version.as_deref(), p),
            E::Backup(name) => export::backup(ctx, name, p),
            E::Restore(name) => export::restore(ctx, name.as_deref(), p),
            E::Random(parts) => {
                let parts: Vec<&str> = parts.iter().flatten().map(String::as_str).collect();
                misc::random(&parts, p)
            }
            E::Hash(alg) => misc::hash(alg.as_deref(), p),
            E::ReadCacheConfig | E::WriteCacheConfig => misc::cache_config(ctx, op, p),
            E::ReadKeysConfig | E::WriteKeysConfig => misc::config_keys(ctx, op, p),
            E::WrappingKey => byok::wrapping_key(ctx),
            E::ImportKey(name) => byok::import(ctx, name, p),
            E::ImportKeyVersion(name) => byok::import_version(ctx, name, p),
            E::ByokExport {
                destination,
                source,
                version,
            } => byok::byok_export(ctx, destination, source, version.as_deref(), p),
        }
    }
}

/// One operation's outcome: labelled by the key's type (read from the
/// cache, never the key's name), success unless an error or a batch with
/// failed items; and its batch items.
fn count(ctx: &Ctx<'_>, kind: OpKind, name: &str, reply: &ApiResult<Reply>) {
    let m = metrics();
    let key_type = ctx.mount.key(name).ok().flatten().map(|k| k.key_type());
    let ok = matches!(reply, Ok(r) if r.status.is_none());
    m.operation(kind, key_type, ok);
    if let Ok(Reply {
        data: Some(data), ..
    }) = reply
        && let Some(items) = data.get("batch_results").and_then(|b| b.as_array())
    {
        m.batch_items(kind, items.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_endpoint_changes() {
        use Op::*;
        // (op, path inside the mount, key exists and cannot be deleted, changes nothing)
        let table: &[(Op, &str, bool, bool)] = &[
            (Update, "encrypt/k", true, true),
            (Update, "encrypt/k", false, false), // upsert creates the key
            (Update, "keys/k", true, true),      // answered as it is
            (Update, "keys/k", false, false),    // creates
            (Update, "decrypt/k", false, true),
            (Update, "rewrap/k", false, true),
            (Update, "datakey/plaintext/k", false, true),
            (Update, "datakey/wrapped/k", false, true),
            (Update, "hmac/k", false, true),
            (Update, "hmac/k/sha2-512", false, true),
            (Update, "sign/k", false, true),
            (Update, "sign/k/sha2-256", false, true),
            (Update, "verify/k", false, true),
            (Update, "verify/k/sha2-256", false, true),
            (Update, "hash", false, true),
            (Update, "hash/sha2-512", false, true),
            (Update, "random", false, true),
            (Update, "random/32", false, true),
            (Update, "random/all/32", false, true),
            (Read, "keys/k", false, true),
            (Read, "export/encryption-key/k", false, true),
            (Read, "export/encryption-key/k/1", false, true),
            (Read, "cache-config", false, true),
            (Read, "config/keys", false, true),
            (Read, "byok-export/d/s", false, true),
            (Read, "byok-export/d/s/1", false, true),
            (List, "keys", false, true),
            // State changes.
            (Update, "keys/k/rotate", true, false),
            (Update, "keys/k/config", true, false),
            (Update, "keys/k/trim", true, false),
            (Delete, "keys/k", true, false),
            (Read, "backup/k", true, false), // stamps backup_info
            (Update, "restore", true, false),
            (Update, "restore/k", true, false),
            (Update, "cache-config", true, false),
            (Update, "config/keys", true, false),
            (Update, "keys/k/import", true, false),
            (Update, "keys/k/import_version", true, false),
            (Read, "wrapping_key", true, false), // made on first use
        ];
        for &(op, rest, stable, free) in table {
            let endpoint =
                Endpoint::parse(op, rest).unwrap_or_else(|e| panic!("{op:?} {rest}: {e}"));
            let mut asked = None;
            let got = endpoint.changes_nothing(|name| {
                asked = Some(name.to_owned());
                stable
            });
            assert_eq!(got, free, "{op:?} {rest} (stable key: {stable})");
            if let Some(name) = asked {
                assert_eq!(name, "k", "{op:?} {rest}");
            }
        }
    }

    #[test]
    fn unknown_paths_and_wrong_operations_are_not_endpoints() {
        use Op::*;
        let not_found: &[(Op, &str)] = &[
            (Update, "random/a/b/c"),
            (Update, "encrypt/k/extra"),
            (Update, "encrypt"),
            (Update, ""),
            (Update, "nope/k"),
            (List, "keys/k"),
            (Update, "a/b/c/d/e/f"),
        ];
        for &(op, rest) in not_found {
            assert!(
                matches!(Endpoint::parse(op, rest), Err(ApiError::UnsupportedPath)),
                "{op:?} {rest}"
            );
        }
        let wrong_op: &[(Op, &str)] = &[
            (Read, "encrypt/k"),
            (Update, "export/encryption-key/k"),
            (Update, "keys"),
            (Read, "keys/k/rotate"),
            (Delete, "cache-config"),
            (Update, "backup/k"),
        ];
        for &(op, rest) in wrong_op {
            assert!(
                matches!(
                    Endpoint::parse(op, rest),
                    Err(ApiError::UnsupportedOperation)
                ),
                "{op:?} {rest}"
            );
        }
        for deep in ["restore/a/b", "restore/a/b/c/d/e/f"] {
            assert!(
                matches!(Endpoint::parse(Update, deep), Err(ApiError::BadRequest(_))),
                "{deep}"
            );
        }
    }

    #[test]
    fn creation_and_blocking() {
        let missing = |_: &str| true;
        let present = |_: &str| false;
        let e = Endpoint::parse(Op::Update, "encrypt/k").unwrap();
        assert_eq!(e.may_create(), Some("k"));
        assert!(e.may_block(missing));
        assert!(!e.may_block(present));
        let e = Endpoint::parse(Op::Update, "keys/k").unwrap();
        assert_eq!(e.may_create(), Some("k"));
        assert!(e.may_block(present));
        for (op, rest) in [
            (Op::Update, "decrypt/k"),
            (Op::Update, "sign/k"),
            (Op::Read, "keys/k"),
        ] {
            let e = Endpoint::parse(op, rest).unwrap();
            assert_eq!(e.may_create(), None, "{rest}");
            assert!(!e.may_block(missing), "{rest}");
        }
        for (op, rest) in [
            (Op::Delete, "keys/k"),
            (Op::Read, "backup/k"),
            (Op::Update, "restore"),
            (Op::Update, "config/keys"),
        ] {
            assert!(
                Endpoint::parse(op, rest).unwrap().may_block(present),
                "{rest}"
            );
        }
    }
}
