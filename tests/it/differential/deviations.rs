//! The tables of expected differences: what transitd answers differently from
//! OpenBao on purpose (`DELIBERATE`), and known transitd bugs
//! (`KNOWN_INCOMPATIBILITIES`). A step whose label matches an entry (`*` matches
//! any run of characters) must show the listed behaviour on each side.

/// What one server must answer for a listed exchange: the status, and a text
/// that must occur in one of the body's strings (`""`: anything), or, when it
/// starts with `/`, `"<json pointer>=<json value>"` that must hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Side(pub(super) u16, pub(super) &'static str);

#[derive(Debug)]
pub(super) struct Deviation {
    /// The exchange, `section/label` as in the script.
    pub(super) label: &'static str,
    pub(super) transitd: Side,
    pub(super) openbao: Side,
    pub(super) why: &'static str,
}

const fn dev(label: &'static str, transitd: Side, openbao: Side, why: &'static str) -> Deviation {
    Deviation {
        label,
        transitd,
        openbao,
        why,
    }
}

/// OpenBao's multierror wrapper marks a bare Go error, answered with 500.
const R500: &str = "OpenBao answers this user error with 500 (a bare Go error); transitd answers 400 (README: 4xx for bad input, never a 5xx)";
const RSA_HASHES: &str = "README: RSA signs with SHA-256/384/512 only (aws-lc-rs); SHA-1, SHA-224, SHA-3 and hash_algorithm=none are refused with a clear error";
const JWT_SOURCES: &str = "README: auth/jwt takes keys from jwt_validation_pubkeys, jwks_url or oidc_discovery_url; jwks_pairs and provider_config are not served, so the message names only the three";
const BYOK_ONE_ERROR: &str = "README (BYOK): every failure to unwrap an imported key (base64, length, RSA-OAEP, AES-KWP, the material's size or parse) is one 400 with one text, so that no answer tells the steps apart (OpenBao names each, with 500: an oracle against the wrapping key)";
const VAULT_HEALTH: &str = "README: sys/health also carries Vault's performance_standby, enterprise, echo_duration_ms, clock_skew_ms and replication_primary_canary_age_ms, which Vault's clients (vaultrs) read; tests/it/health.rs compares the key sets";
const UNAUTHED_REKEY: &str = "README (operator tasks): transitd serves Vault's unauthenticated sys/rekey/* and sys/rekey-recovery-key/* (what `bao operator rekey` calls); OpenBao 2.7.2 only when a listener sets disable_unauthed_rekey_endpoints = false";
const R500_BATCH: &str = "OpenBao fails the whole batch with 500 (hand-written batch decoder); transitd reports it per item with 400, like any other item error";

/// Differences transitd makes on purpose (README.md, "Deliberate differences
/// from OpenBao", and ARCHITECTURE.md: a 4xx with a clear message for every bad
/// input, never a 5xx; explicit limits instead of OpenBao's JSON-complexity
/// ceiling).
pub(super) const DELIBERATE: &[Deviation] = &[
    dev(
        "keys/create hmac without key_size",
        Side(200, "/data/key_size=32"),
        Side(
            500,
            "invalid key size for HMAC key, must be between 32 and 512 bytes",
        ),
        "README: an hmac key created without key_size gets 32 bytes (OpenBao fails)",
    ),
    dev(
        "keys/create ecdsa-p256 derived",
        Side(
            400,
            "key derivation and convergent encryption not supported for keys of type ecdsa-p256",
        ),
        Side(
            500,
            "key derivation and convergent encryption not supported for keys of type ecdsa-p256",
        ),
        R500,
    ),
    dev(
        "keys/create ed25519 derived convergent",
        Side(
            400,
            "convergent encryption not supported for keys of type ed25519",
        ),
        Side(
            500,
            "convergent encryption not supported for keys of type ed25519",
        ),
        R500,
    ),
    dev(
        "barrier/generate-root update with a wrong nonce",
        Side(400, "incorrect nonce supplied"),
        Side(500, "incorrect nonce supplied"),
        R500,
    ),
    dev(
        "barrier/generate-root update with none in progress",
        Side(400, "no root generation in progress"),
        Side(500, "no root generation in progress"),
        R500,
    ),
    dev(
        "barrier/vault's unauthenticated generate-root status",
        Side(200, "/started=false"),
        Side(405, "unsupported operation"),
        "README (operator tasks): transitd serves Vault's unauthenticated sys/generate-root/* (hvac and Vault's CLI call it); OpenBao 2.7.2 only when a listener sets disable_unauthed_generate_root_endpoints = false",
    ),
    dev(
        "barrier/rekey status",
        Side(200, "/required=1"),
        Side(405, "unsupported operation"),
        UNAUTHED_REKEY,
    ),
    dev(
        "barrier/rekey recovery status under shamir",
        Side(400, "recovery rekeying not supported"),
        Side(404, "unsupported path"),
        UNAUTHED_REKEY,
    ),
    dev(
        "soft-delete/rotate while soft-deleted",
        Side(400, "refusing to use soft-deleted key"),
        Side(500, "refusing to use soft-deleted key"),
        R500,
    ),
    dev(
        "soft-delete/sign while soft-deleted",
        Side(400, "refusing to use soft-deleted key"),
        Side(500, "refusing to use soft-deleted key"),
        R500,
    ),
    dev(
        "soft-delete/backup while soft-deleted",
        Side(400, "refusing to use soft-deleted key"),
        Side(500, "refusing to use soft-deleted key"),
        R500,
    ),
    dev(
        "soft-delete/export while soft-deleted",
        Side(400, "refusing to use soft-deleted key"),
        Side(500, "refusing to use soft-deleted key"),
        R500,
    ),
    dev(
        "crypt/rsa-2048 encrypt 300 bytes",
        Side(400, "plaintext is too long for an RSA key of this size"),
        Side(500, "message too long for RSA key size"),
        R500,
    ),
    dev(
        "crypt/rewrap with associated_data",
        Side(200, "/data/key_version=2"),
        Side(400, "cipher: message authentication failed"),
        "README: rewrap honours associated_data (OpenBao ignores it, so AAD-bound ciphertexts cannot be rewrapped)",
    ),
    dev(
        "crypt/decrypt rewrapped-with-aad ciphertext",
        Side(200, "/data/plaintext=\"aGVsbG8gd29ybGQ=\""),
        Side(400, "missing ciphertext to decrypt"),
        "follows from the rewrap-with-AAD difference: OpenBao had no ciphertext to give back",
    ),
    dev(
        "batch/encrypt item without plaintext",
        Side(
            400,
            "/data/batch_results/1/error=\"missing plaintext to encrypt\"",
        ),
        Side(
            500,
            "failed to parse batch input: '[1].plaintext' missing plaintext to encrypt",
        ),
        R500_BATCH,
    ),
    dev(
        "batch/decrypt item without ciphertext",
        Side(
            400,
            "/data/batch_results/1/error=\"missing ciphertext to decrypt\"",
        ),
        Side(
            500,
            "failed to parse batch input: '[1].ciphertext' missing ciphertext to decrypt",
        ),
        R500_BATCH,
    ),
    dev(
        "batch/encrypt string key_version in item",
        Side(200, "/data/batch_results/0/key_version=1"),
        Side(
            500,
            "'[0].key_version' expected type 'int', got unconvertible type 'string'",
        ),
        "transitd coerces \"1\" inside batch items as OpenBao does for top-level fields; OpenBao's batch decoder answers 500",
    ),
    dev(
        "batch/encrypt batch_input not an array",
        Side(400, "batch_input must be an array of objects"),
        Side(500, "source data must be an array or slice, got string"),
        R500,
    ),
    dev(
        "batch/encrypt batch_input items not objects",
        Side(400, "batch_input items must be JSON objects"),
        Side(500, "expected a map, got 'json.Number'"),
        R500,
    ),
    dev(
        "batch/encrypt 500 items",
        Side(200, "/data/batch_results/499/key_version=1"),
        Side(
            400,
            "refused JSON input due to high complexity: exceeded maximum number of strings",
        ),
        "OpenBao's hidden 1000-JSON-strings ceiling caps a batch at 499 items; transitd has an explicit max_batch_items (100000) instead",
    ),
    dev(
        "crypt/encrypt bad associated_data base64",
        Side(400, "illegal base64 data at input byte 0"),
        Side(
            500,
            "unable to get associated_data/additional_data from factory[0]: illegal base64 data at input byte 0",
        ),
        R500,
    ),
    dev(
        "sign/derived ed25519 without context",
        Side(
            400,
            "error deriving key: missing 'context' for key derivation",
        ),
        Side(
            500,
            "error deriving key: missing 'context' for key derivation",
        ),
        R500,
    ),
    dev(
        "sign/salt_length 1000",
        Side(400, "requested salt length 1000 is invalid"),
        Side(500, "requested salt length 1000 is invalid"),
        R500,
    ),
    dev(
        "sign/signature_algorithm foo",
        Side(400, "unsupported rsa signature algorithm foo"),
        Side(500, "unsupported rsa signature algorithm foo"),
        R500,
    ),
    dev(
        "sign/key_version too new",
        Side(
            400,
            "requested version for signing is higher than the latest key version",
        ),
        Side(
            500,
            "requested version for signing is higher than the latest key version",
        ),
        R500,
    ),
    dev(
        "sign/rsa sha1",
        Side(
            400,
            "hash algorithm sha1 is not supported for key type rsa-2048",
        ),
        Side(200, ""),
        RSA_HASHES,
    ),
    dev(
        "sign/rsa sha2-224",
        Side(
            400,
            "hash algorithm sha2-224 is not supported for key type rsa-2048",
        ),
        Side(200, ""),
        RSA_HASHES,
    ),
    dev(
        "sign/rsa sha3-256",
        Side(
            400,
            "hash algorithm sha3-256 is not supported for key type rsa-2048",
        ),
        Side(200, ""),
        RSA_HASHES,
    ),
    dev(
        "sign/rsa none prehashed pkcs1v15",
        Side(
            400,
            "hash algorithm none is not supported for key type rsa-2048",
        ),
        Side(200, ""),
        RSA_HASHES,
    ),
    dev(
        "export/public-key of a symmetric key",
        Side(
            400,
            "public key export not supported for key type aes256-gcm96",
        ),
        Side(
            500,
            "unknown key type aes256-gcm96 for export type public-key",
        ),
        R500,
    ),
    dev(
        "export/aes encryption-key format pem",
        Side(
            400,
            "format pem is not supported for export type encryption-key of key type aes256-gcm96",
        ),
        Side(
            500,
            "unknown format for HMAC key; supported values are `` or `raw`",
        ),
        "OpenBao answers 500 with a text that says HMAC for an AES key; transitd answers 400 and names the real type",
    ),
    dev(
        "export/certificate-chain without a chain",
        Side(
            400,
            "selected key version does not have a certificate chain imported",
        ),
        Side(
            500,
            "selected key version does not have a certificate chain imported",
        ),
        R500,
    ),
    dev(
        "backup/not exportable",
        Side(400, "exporting is disallowed on the policy"),
        Side(500, "exporting is disallowed on the policy"),
        R500,
    ),
    dev(
        "backup/exportable without allow_plaintext_backup",
        Side(400, "plaintext backup is disallowed on the policy"),
        Side(500, "plaintext backup is disallowed on the policy"),
        R500,
    ),
    dev(
        "backup/missing key",
        Side(400, "key \"nokey\" not found"),
        Side(500, "key \"nokey\" not found"),
        R500,
    ),
    dev(
        "backup/restore bad base64",
        Side(400, "invalid backup: backup is not valid base64"),
        Side(500, "illegal base64 data at input byte 0"),
        R500,
    ),
    dev(
        "backup/restore over an existing key",
        Side(400, "key \"bk\" already exists"),
        Side(500, "key \"bk\" already exists"),
        R500,
    ),
    dev(
        "sys/health",
        Side(200, "/performance_standby=false"),
        Side(200, "/initialized=true"),
        VAULT_HEALTH,
    ),
    dev(
        "wrapping/health is never wrapped",
        Side(200, "/performance_standby=false"),
        Side(200, "/initialized=true"),
        VAULT_HEALTH,
    ),
    dev(
        "sys/enable a kv mount",
        Side(400, "transitd serves only the transit secrets engine"),
        Side(204, ""),
        "transitd is a transit server only: other engine types are refused",
    ),
    dev(
        "hmac/unknown algorithm",
        Side(400, "unsupported algorithm \"md5\""),
        Side(400, "unsupported algorithm '\\x00'"),
        "README: the unknown-algorithm error names the algorithm instead of OpenBao's formatting bug (a NUL character)",
    ),
    dev(
        "sign/rsa pss salt 20",
        Side(400, "RSA-PSS salt length 20 is not supported"),
        Side(200, "/data/key_version=1"),
        "RSA signing runs on aws-lc-rs (no Marvin-style timing leak); it signs PSS with salt `auto` (maximum) or the digest length only, see README",
    ),
    dev(
        "backup/read bk-named",
        Side(200, "/data/name=\"bk-named\""),
        Side(404, ""),
        "README: restore honours the body `name` (OpenBao ignores it, a documented bug)",
    ),
    dev(
        "backup/restore under a path name",
        Side(400, "key names cannot be paths"),
        Side(500, "key names cannot be paths"),
        R500,
    ),
    dev(
        "random/source all",
        Side(200, "/warnings=null"),
        Side(
            200,
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [source]",
        ),
        "transitd reads `source` from the body when the URL has none (no replacement warning)",
    ),
    dev(
        "random/unknown source",
        Side(400, "unsupported entropy source \"moon\""),
        Side(
            200,
            "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [source]",
        ),
        "transitd validates a body `source` instead of silently replacing it",
    ),
    dev(
        "http/invalid JSON body",
        Side(400, "failed to decode JSON input: "),
        Side(400, "failed to decode JSON input: "),
        "the decoder's detail after the common prefix differs (serde_json vs Go's encoding/json)",
    ),
    dev(
        "keys/c* not a *",
        Side(400, "error converting input for field"),
        Side(
            400,
            "Field validation failed: error converting input for field",
        ),
        "wording: the same 400; transitd leaves out Go's parser internals (`strconv.ParseInt: invalid syntax`) and the `Field validation failed: ` prefix",
    ),
    dev(
        "crypt/encrypt key_version not a number",
        Side(
            400,
            "error converting input for field \"key_version\": cannot parse value as 'int'",
        ),
        Side(
            400,
            "error converting input for field \"key_version\": '' cannot parse value as 'int': strconv.ParseInt: invalid syntax",
        ),
        "wording: the same 400; transitd leaves out Go's parser internals",
    ),
    dev(
        "crypt/rsa-2048 encrypt with associated_data",
        Side(
            400,
            "associated_data provided for non-AEAD cipher suite rsa-2048",
        ),
        Side(
            400,
            "'[0].associated_data' provided for non-AEAD cipher suite rsa-2048",
        ),
        "wording: the same 400; transitd names no batch index for a single request",
    ),
    dev(
        "crypt/encrypt upsert rsa refused",
        Side(400, "key type rsa-2048 not supported for this operation"),
        Side(400, "unknown key type rsa-2048"),
        "wording: the same 400; transitd says the type cannot be upserted by encrypt (OpenBao: `unknown key type`, although the type exists)",
    ),
    dev(
        "backup/from-bao sign rsa-2048 sha2-384 {\"salt_length\":32}",
        Side(400, "RSA-PSS salt length 32 is not supported"),
        Side(200, "/data/key_version=1"),
        "RSA signing runs on aws-lc-rs (no Marvin-style timing leak); PSS signs with salt `auto` (maximum) or the digest length only, see README",
    ),
    dev(
        "wrapping/lookup nothing named",
        Side(400, "wrapping token is not valid or does not exist"),
        Side(403, "error validating wrapping token: token is empty"),
        "a lookup naming no token gets the answer of an empty or unknown one (400); OpenBao answers 403 for this case only",
    ),
    dev(
        "wrapping/unwrap presented again",
        Side(403, "permission denied"),
        Side(400, "wrapping token is not valid or does not exist"),
        "a spent wrapping token is an unknown token, refused (403) before its body is read like every unknown token; OpenBao lets it through to the unwrap handler",
    ),
    dev(
        "wrapping/lookup wrapped",
        Side(400, "X-Vault-Wrap-TTL"),
        Side(200, "/wrap_info/ttl=60"),
        "README (Response wrapping): the public lookup needs no token, so wrapping its reply would let anyone holding one wrapping token create 32-day tokens without limit; refused (logins stay wrappable)",
    ),
    dev(
        "wrapping/format jwt",
        Side(400, "not JWTs"),
        Side(200, "/wrap_info/ttl=60"),
        "README: transitd makes wrapping tokens, not JWTs; a format it does not make is refused rather than answered with a token the client did not ask for",
    ),
    dev(
        "wrapping/ttl above 32 days",
        Side(400, "the wrapping TTL must be between 1s and 2764800s"),
        Side(200, "/wrap_info/ttl=3600000"),
        "a wrapping token is a token, and no token outlives the 32-day maximum TTL: refused rather than cut",
    ),
    dev(
        "wrapping policy/max below min",
        Side(
            400,
            "policy wrap-bad line 1: path \"a\": max_wrapping_ttl cannot be less than min_wrapping_ttl",
        ),
        Side(
            400,
            "failed to parse policy: path \"a\": max_wrapping_ttl cannot be less than min_wrapping_ttl",
        ),
        "wording: the same 400; transitd's policy errors name the policy and the line",
    ),
    dev(
        "break-glass/revoke-prefix not synchronous",
        Side(400, "sync=false is not supported by transitd"),
        Side(202, ""),
        "revocation is always synchronous (a token's entries are all there is to delete); asking for it in the background is refused, not ignored",
    ),
    dev(
        "jwt config/no key source",
        Side(
            400,
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set",
        ),
        Side(
            400,
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set",
        ),
        JWT_SOURCES,
    ),
    dev(
        "jwt config/two key sources",
        Side(
            400,
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set",
        ),
        Side(
            400,
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url', 'jwks_pairs', 'oidc_discovery_url', or 'provider_config' must be set",
        ),
        JWT_SOURCES,
    ),
    dev(
        "jwt role/no role_type",
        Side(400, "role_type \"oidc\" is not supported by transitd"),
        Side(
            400,
            "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.",
        ),
        "README: a role without role_type is an OIDC (browser) role in OpenBao; transitd serves no browser flow and says so",
    ),
    dev(
        "byok/rotate without allow_rotation",
        Side(
            400,
            "imported key byok-aes does not allow rotation within Vault",
        ),
        Side(
            500,
            "imported key byok-aes does not allow rotation within Vault",
        ),
        R500,
    ),
    dev(
        "byok/import_version after a rotation",
        Side(
            400,
            "the import_version endpoint can only be used with an imported key",
        ),
        Side(
            500,
            "the import_version endpoint can only be used with an imported key",
        ),
        R500,
    ),
    dev(
        "byok/import over an existing key",
        Side(400, "the import path cannot be used with an existing key"),
        Side(500, "the import path cannot be used with an existing key"),
        R500,
    ),
    dev(
        "byok/import convergent",
        Side(
            400,
            "import cannot be used on keys with convergent encryption enabled",
        ),
        Side(
            500,
            "import cannot be used on keys with convergent encryption enabled",
        ),
        R500,
    ),
    dev(
        "byok/import auto_rotate without allow_rotation",
        Side(
            400,
            "allow_rotation must be set to true if auto-rotation is enabled",
        ),
        Side(
            500,
            "allow_rotation must be set to true if auto-rotation is enabled",
        ),
        R500,
    ),
    dev(
        "byok/import without ciphertext",
        Side(400, "provided type does not support public_key import"),
        Side(500, "provided type does not support public_key import"),
        R500,
    ),
    dev(
        "byok/import_version of a missing key",
        Side(
            400,
            "no key found with name byok-new; to import a new key, use the import/ endpoint",
        ),
        Side(
            500,
            "no key found with name byok-new; to import a new key, use the import/ endpoint",
        ),
        R500,
    ),
    dev(
        "byok/import_version of a generated key",
        Side(
            400,
            "the import_version endpoint can only be used with an imported key",
        ),
        Side(
            500,
            "the import_version endpoint can only be used with an imported key",
        ),
        R500,
    ),
    dev(
        "byok/sign with the public-only key",
        Side(
            400,
            "requested version for signing does not contain a private part",
        ),
        Side(
            500,
            "requested version for signing does not contain a private part",
        ),
        R500,
    ),
    dev(
        "byok/import_version a public key into a public-only version",
        Side(
            400,
            "cannot add a public key to a key version that already has a public key set",
        ),
        Side(
            500,
            "cannot add a public key to a key version that already has a public key set",
        ),
        R500,
    ),
    dev(
        "byok/import_version at a missing version",
        Side(400, "no such key version"),
        Side(500, "no such key version"),
        R500,
    ),
    dev(
        "byok/import a public key as aes",
        Side(400, "provided type does not support public_key import"),
        Side(500, "provided type does not support public_key import"),
        R500,
    ),
    dev(
        "byok/import a public key that is no PEM",
        Side(400, "error parsing public key: not in PEM format"),
        Side(500, "error parsing public key: not in PEM format"),
        R500,
    ),
    dev(
        "byok/byok-export a missing destination",
        Side(400, "no such destination key to export to"),
        Side(500, "no such destination key to export to"),
        R500,
    ),
    dev(
        "byok/byok-export a missing source",
        Side(400, "no such source key for export"),
        Side(500, "no such source key for export"),
        R500,
    ),
    dev(
        "byok/byok-export to an ecdsa destination",
        Side(400, "unsupported key type in use; must be a rsa key"),
        Side(500, "unsupported key type in use; must be a rsa key"),
        R500,
    ),
    dev(
        "byok/byok-export with an unknown hash",
        Side(400, "unknown hash function: MD5"),
        Side(500, "unknown hash function: MD5"),
        R500,
    ),
    dev(
        "byok/import short ciphertext",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "provided ciphertext is too short"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import garbage ciphertext",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "crypto/rsa: decryption error"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import non-base64 ciphertext",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "illegal base64 data at input byte 0"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import with the wrong hash",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "crypto/rsa: decryption error"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import with the wrong type",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "invalid key size 32 bytes for key type aes128-gcm96"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import an AES key as ed25519",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "error parsing asymmetric key"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import_version with the wrong hash",
        Side(
            400,
            "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function",
        ),
        Side(500, "crypto/rsa: decryption error"),
        BYOK_ONE_ERROR,
    ),
    dev(
        "byok/import a P-256 public key as rsa",
        Side(
            400,
            "error parsing public key: not a public key of this key type",
        ),
        Side(
            500,
            "invalid key type: expected rsa-2048, got *ecdsa.PublicKey",
        ),
        "wording and status: a 400 that names the mismatch without Go's type names (OpenBao: 500)",
    ),
];

/// Known incompatibilities: transitd bugs to fix (in src/), tolerated here so
/// the rest of the comparison keeps running. Fixing one makes its entry stale,
/// and the test then asks for the entry to be deleted.
pub(super) const KNOWN_INCOMPATIBILITIES: &[Deviation] = &[dev(
    "byok/import mldsa",
    Side(400, "import is not supported for keys of type mldsa-65"),
    Side(500, "error parsing asymmetric key"),
    "transitd does not import ML-DSA keys (OpenBao 2.7.2 takes the type and parses the material as PKCS#8; whether it can import an ML-DSA key at all was not checked)",
)];
