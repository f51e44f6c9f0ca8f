"""hvac, the Python Vault client, against transitd: unchanged client code must work.

Every call goes through hvac's public API (`client.secrets.transit.*`,
`client.sys.*`), so this checks request shapes hvac sends and the answers it
parses, including the exception classes it raises for our status codes.
"""

from __future__ import annotations

import base64
import hashlib

import hvac
import pytest
from hvac import exceptions

HELLO = b"hello world"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def create(client: hvac.Client, name: str, mount: str = "transit", **params) -> dict:
    """Create a key of a type hvac's create_key does not know (its type list
    and parameters predate hmac, xchacha, aes128, mldsa and key_size)."""
    return client.write_data(f"{mount}/keys/{name}", data=params)


# --- authentication -------------------------------------------------------


def test_is_authenticated(transitd, client):
    assert client.is_authenticated() is True
    assert hvac.Client(url=transitd.url, token="not-the-token").is_authenticated() is False
    assert hvac.Client(url=transitd.url).is_authenticated() is False


def test_sys_health_and_seal_status(client):
    assert client.sys.is_sealed() is False
    status = client.sys.read_seal_status()
    assert status["initialized"] is True and status["sealed"] is False
    health = client.sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False
    assert health["version"] == "2.7.2"
    # Vault's clients (vaultrs) need Vault's extra health fields.
    assert health["performance_standby"] is False and health["enterprise"] is False


def test_sys_is_initialized(client):
    assert client.sys.is_initialized() is True


# --- keys -----------------------------------------------------------------

HVAC_TYPES = [
    "aes256-gcm96",
    "chacha20-poly1305",
    "ed25519",
    "ecdsa-p256",
    "ecdsa-p384",
    "ecdsa-p521",
    "rsa-2048",
]


@pytest.mark.parametrize("key_type", HVAC_TYPES)
def test_create_and_read_key(client, name, key_type):
    created = client.secrets.transit.create_key(name, key_type=key_type)
    assert created["data"]["name"] == name
    assert created["data"]["type"] == key_type
    key = client.secrets.transit.read_key(name)["data"]
    assert key["name"] == name and key["type"] == key_type
    assert key["latest_version"] == 1
    assert key["min_decryption_version"] == 1
    assert key["min_encryption_version"] == 0
    assert key["deletion_allowed"] is False and key["exportable"] is False
    assert list(key["keys"]) == ["1"]
    signing = key_type.startswith(("ed", "ecdsa", "rsa"))
    assert key["supports_signing"] is signing
    assert key["supports_encryption"] is (not signing or key_type.startswith("rsa"))
    if signing:
        entry = key["keys"]["1"]
        assert entry["public_key"]
        assert entry["creation_time"].endswith("Z")
    else:
        assert isinstance(key["keys"]["1"], int)


@pytest.mark.parametrize(
    "params,expect",
    [
        ({"type": "aes128-gcm96"}, {"type": "aes128-gcm96", "supports_encryption": True}),
        ({"type": "xchacha20-poly1305"}, {"type": "xchacha20-poly1305"}),
        ({"type": "hmac", "key_size": 64}, {"type": "hmac", "key_size": 64}),
        ({"type": "mldsa-65"}, {"type": "mldsa-65", "supports_signing": True}),
    ],
)
def test_create_other_key_types(client, name, params, expect):
    create(client, name, **params)
    key = client.secrets.transit.read_key(name)["data"]
    for field, value in expect.items():
        assert key[field] == value, field


def test_create_key_options(client, name):
    client.secrets.transit.create_key(
        name,
        derived=True,
        convergent_encryption=True,
        exportable=True,
        allow_plaintext_backup=True,
        auto_rotate_period="24h",
    )
    key = client.secrets.transit.read_key(name)["data"]
    assert key["derived"] is True
    assert key["convergent_encryption"] is True
    assert key["exportable"] is True
    assert key["allow_plaintext_backup"] is True
    assert key["auto_rotate_period"] == 86400
    assert key["kdf"] == "hkdf_sha256"


def test_create_key_validation_in_hvac_and_server(client, name):
    # hvac refuses this itself ...
    with pytest.raises(exceptions.ParamValidationError):
        client.secrets.transit.create_key(name, convergent_encryption=True)
    # ... and the server refuses what hvac lets through.
    with pytest.raises(exceptions.InvalidRequest) as err:
        create(client, name, type="aes512")
    assert err.value.errors == ["unknown key type aes512"]


def test_list_keys(client, name):
    names = [f"{name}-{i}" for i in range(3)]
    for n in names:
        client.secrets.transit.create_key(n)
    listed = client.secrets.transit.list_keys()["data"]["keys"]
    assert set(names) <= set(listed)
    assert listed == sorted(listed)


def test_delete_key(client, name):
    client.secrets.transit.create_key(name)
    with pytest.raises(exceptions.InvalidRequest) as err:
        client.secrets.transit.delete_key(name)
    assert "deletion is not allowed" in str(err.value)
    client.secrets.transit.update_key_configuration(name, deletion_allowed=True)
    response = client.secrets.transit.delete_key(name)
    assert response.status_code == 204
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.transit.read_key(name)


# --- encrypt / decrypt / rewrap ------------------------------------------------


@pytest.mark.parametrize("key_type", ["aes256-gcm96", "chacha20-poly1305", "rsa-2048"])
def test_encrypt_decrypt(client, name, key_type):
    client.secrets.transit.create_key(name, key_type=key_type)
    enc = client.secrets.transit.encrypt_data(name, plaintext=b64(HELLO))["data"]
    assert enc["ciphertext"].startswith("vault:v1:")
    assert enc["key_version"] == 1
    dec = client.secrets.transit.decrypt_data(name, ciphertext=enc["ciphertext"])["data"]
    assert unb64(dec["plaintext"]) == HELLO


def test_encrypt_upserts_the_key(client, name):
    enc = client.secrets.transit.encrypt_data(name, plaintext=b64(b""))["data"]
    assert enc["ciphertext"].startswith("vault:v1:")
    assert client.secrets.transit.read_key(name)["data"]["type"] == "aes256-gcm96"


def test_encrypt_with_context_and_associated_data(client, name):
    client.secrets.transit.create_key(name, derived=True)
    ctx = b64(b"tenant-1")
    aad = b64(b"row-42")
    ct = client.secrets.transit.encrypt_data(
        name, plaintext=b64(HELLO), context=ctx, associated_data=aad
    )["data"]["ciphertext"]
    pt = client.secrets.transit.decrypt_data(
        name, ciphertext=ct, context=ctx, associated_data=aad
    )["data"]["plaintext"]
    assert unb64(pt) == HELLO
    with pytest.raises(exceptions.InvalidRequest) as err:
        client.secrets.transit.decrypt_data(name, ciphertext=ct, context=ctx)
    assert err.value.errors == ["cipher: message authentication failed"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        client.secrets.transit.encrypt_data(name, plaintext=b64(HELLO))
    assert "missing 'context' for key derivation" in err.value.errors[0]


def test_convergent_encryption_is_deterministic(client, name):
    client.secrets.transit.create_key(name, derived=True, convergent_encryption=True)
    ctx = b64(b"ctx")
    one = client.secrets.transit.encrypt_data(name, plaintext=b64(HELLO), context=ctx)
    two = client.secrets.transit.encrypt_data(name, plaintext=b64(HELLO), context=ctx)
    assert one["data"]["ciphertext"] == two["data"]["ciphertext"]


def test_rotate_rewrap_and_key_versions(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    v1 = transit.encrypt_data(name, plaintext=b64(HELLO))["data"]["ciphertext"]
    rotated = transit.rotate_key(name)
    assert rotated["data"]["latest_version"] == 2
    v2 = transit.rewrap_data(name, ciphertext=v1)["data"]
    assert v2["ciphertext"].startswith("vault:v2:") and v2["key_version"] == 2
    assert unb64(transit.decrypt_data(name, ciphertext=v2["ciphertext"])["data"]["plaintext"]) == HELLO
    back = transit.rewrap_data(name, ciphertext=v2["ciphertext"], key_version=1)["data"]
    assert back["ciphertext"].startswith("vault:v1:")
    pinned = transit.encrypt_data(name, plaintext=b64(HELLO), key_version=1)["data"]
    assert pinned["key_version"] == 1
    key = transit.read_key(name)["data"]
    assert key["latest_version"] == 2 and sorted(key["keys"]) == ["1", "2"]


def test_update_key_configuration_and_trim(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    v1 = transit.encrypt_data(name, plaintext=b64(HELLO))["data"]["ciphertext"]
    transit.rotate_key(name)
    transit.rotate_key(name)
    updated = transit.update_key_configuration(
        name, min_decryption_version=2, min_encryption_version=3, exportable=True
    )["data"]
    assert updated["min_decryption_version"] == 2
    assert updated["min_encryption_version"] == 3
    assert updated["exportable"] is True
    assert sorted(updated["keys"]) == ["2", "3"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.decrypt_data(name, ciphertext=v1)
    assert err.value.errors == ["ciphertext or signature version is disallowed by policy (too old)"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.update_key_configuration(name, min_decryption_version=9)
    assert err.value.errors == ["cannot set min decryption version of 9, latest key version is 3"]
    trimmed = transit.trim_key(name, min_version=2)["data"]
    assert trimmed["min_available_version"] == 2
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.trim_key(name, min_version=1)
    assert err.value.errors == ["minimum available version cannot be decremented"]
    updated = transit.update_key_configuration(name, auto_rotate_period="2h")["data"]
    assert updated["auto_rotate_period"] == 7200


def test_generate_data_key(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    plain = transit.generate_data_key(name, key_type="plaintext", bits=512)["data"]
    assert len(unb64(plain["plaintext"])) == 64
    assert plain["key_version"] == 1
    unwrapped = transit.decrypt_data(name, ciphertext=plain["ciphertext"])["data"]["plaintext"]
    assert unwrapped == plain["plaintext"]
    wrapped = transit.generate_data_key(name, key_type="wrapped")["data"]
    assert "plaintext" not in wrapped
    assert len(unb64(transit.decrypt_data(name, ciphertext=wrapped["ciphertext"])["data"]["plaintext"])) == 32
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.generate_data_key("no-such-key-" + name, key_type="wrapped")
    assert err.value.errors == ["encryption key not found"]


# --- batch ---------------------------------------------------------------------


def test_batch_encrypt_decrypt(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    items = [
        {"plaintext": b64(b"one"), "reference": "a"},
        {"plaintext": b64(b"two")},
        {"plaintext": b64(b""), "reference": "empty"},
    ]
    enc = transit.encrypt_data(name, batch_input=items)["data"]["batch_results"]
    assert [r["reference"] for r in enc] == ["a", "", "empty"]
    assert all(r["ciphertext"].startswith("vault:v1:") and r["key_version"] == 1 for r in enc)
    dec = transit.decrypt_data(
        name,
        batch_input=[{"ciphertext": r["ciphertext"], "reference": r["reference"]} for r in enc],
    )["data"]["batch_results"]
    assert [unb64(r["plaintext"]) for r in dec] == [b"one", b"two", b""]
    assert [r["reference"] for r in dec] == ["a", "", "empty"]


def test_batch_partial_failure(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.encrypt_data(
            name,
            batch_input=[
                {"plaintext": b64(HELLO), "reference": "ok"},
                {"plaintext": "***", "reference": "bad"},
            ],
        )
    results = err.value.json["data"]["batch_results"]
    assert results[0]["ciphertext"].startswith("vault:v1:")
    assert results[1] == {"error": "illegal base64 data at input byte 0", "reference": "bad"}
    ok_ct = results[0]["ciphertext"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.decrypt_data(
            name,
            batch_input=[{"ciphertext": ok_ct}, {"ciphertext": "garbage", "reference": "g"}],
        )
    results = err.value.json["data"]["batch_results"]
    assert unb64(results[0]["plaintext"]) == HELLO
    assert results[1] == {"plaintext": "", "error": "invalid ciphertext: no prefix", "reference": "g"}
    # partial_failure_response_code is not an hvac parameter: send it raw.
    response = client.adapter.post(
        f"/v1/transit/decrypt/{name}",
        json={
            "batch_input": [{"ciphertext": ok_ct}, {"ciphertext": "garbage"}],
            "partial_failure_response_code": 207,
        },
        raise_exception=False,
    )
    assert response.status_code == 207
    assert len(response.json()["data"]["batch_results"]) == 2


def test_batch_rewrap(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    cts = [transit.encrypt_data(name, plaintext=b64(p))["data"]["ciphertext"] for p in (b"x", b"y")]
    transit.rotate_key(name)
    results = transit.rewrap_data(
        name, ciphertext=None, batch_input=[{"ciphertext": c} for c in cts]
    )["data"]["batch_results"]
    assert all(r["ciphertext"].startswith("vault:v2:") for r in results)


# --- errors --------------------------------------------------------------------


def test_errors_map_to_hvac_exceptions(transitd, client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    with pytest.raises(exceptions.InvalidRequest) as err:  # 400
        transit.decrypt_data(name, ciphertext="garbage")
    assert err.value.errors == ["invalid ciphertext: no prefix"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.encrypt_data(name, plaintext="!!notbase64")
    assert err.value.errors == ["illegal base64 data at input byte 0"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.decrypt_data("no-such-key-" + name, ciphertext="vault:v1:AAAA")
    assert err.value.errors == ["encryption key not found"]
    with pytest.raises(exceptions.InvalidPath):  # 404
        transit.read_key("no-such-key-" + name)
    with pytest.raises(exceptions.InvalidPath):
        client.adapter.post("/v1/transit/nonsense/x", json={})
    anonymous = hvac.Client(url=transitd.url, token="not-the-token")
    with pytest.raises(exceptions.Forbidden) as err:  # 403
        anonymous.secrets.transit.encrypt_data(name, plaintext=b64(HELLO))
    assert err.value.errors == ["permission denied"]
    with pytest.raises(exceptions.Forbidden):
        anonymous.secrets.transit.read_key(name)
    with pytest.raises(exceptions.UnexpectedError):  # 405: hvac has no class of its own
        client.adapter.get(f"/v1/transit/encrypt/{name}")


# --- mounts ----------------------------------------------------------------------


def test_enable_secrets_engine_and_use_the_mount(client, name):
    mount = "payments-" + name
    client.sys.enable_secrets_engine("transit", path=mount)
    try:
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        assert mounts[f"{mount}/"]["type"] == "transit"
        assert mounts["transit/"]["type"] == "transit"
        with pytest.raises(exceptions.InvalidRequest) as err:
            client.sys.enable_secrets_engine("transit", path=mount)
        assert err.value.errors == [f"path is already in use at {mount}/"]
        transit = client.secrets.transit
        transit.create_key("orders", mount_point=mount, key_type="chacha20-poly1305")
        ct = transit.encrypt_data("orders", plaintext=b64(HELLO), mount_point=mount)["data"]["ciphertext"]
        pt = transit.decrypt_data("orders", ciphertext=ct, mount_point=mount)["data"]["plaintext"]
        assert unb64(pt) == HELLO
        assert transit.list_keys(mount_point=mount)["data"]["keys"] == ["orders"]
        # Each mount has its own keys.
        with pytest.raises(exceptions.InvalidPath):
            transit.read_key("orders")
    finally:
        client.sys.disable_secrets_engine(mount)
    assert f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]
    with pytest.raises(exceptions.InvalidPath):
        client.secrets.transit.read_key("orders", mount_point=mount)


# --- hmac, sign/verify, export, backup/restore, random, hash -------------------


@pytest.mark.parametrize("algorithm", ["sha2-224", "sha2-256", "sha2-384", "sha2-512"])
def test_hmac_and_verify(client, name, algorithm):
    transit = client.secrets.transit
    create(client, name, type="hmac", key_size=32)
    mac = transit.generate_hmac(name, hash_input=b64(HELLO), algorithm=algorithm)["data"]["hmac"]
    assert mac.startswith("vault:v1:")
    again = transit.generate_hmac(name, hash_input=b64(HELLO), algorithm=algorithm)["data"]["hmac"]
    assert again == mac
    ok = transit.verify_signed_data(name, hash_input=b64(HELLO), hmac=mac, hash_algorithm=algorithm)
    assert ok["data"]["valid"] is True
    bad = transit.verify_signed_data(name, hash_input=b64(b"other"), hmac=mac, hash_algorithm=algorithm)
    assert bad["data"]["valid"] is False


def test_hmac_matches_the_exported_key(client, name):
    import hmac as py_hmac

    transit = client.secrets.transit
    transit.create_key(name, exportable=True)
    mac = transit.generate_hmac(name, hash_input=b64(HELLO))["data"]["hmac"]
    key = unb64(transit.export_key(name, key_type="hmac-key", version="1")["data"]["keys"]["1"])
    expected = py_hmac.new(key, HELLO, hashlib.sha256).digest()
    assert mac == "vault:v1:" + b64(expected)


@pytest.mark.parametrize(
    "key_type,options",
    [
        ("ed25519", {}),
        ("ecdsa-p256", {}),
        ("ecdsa-p256", {"marshaling_algorithm": "jws"}),
        ("ecdsa-p384", {"hash_algorithm": "sha2-384"}),
        ("ecdsa-p521", {"hash_algorithm": "sha2-512"}),
        ("rsa-2048", {}),
        ("rsa-2048", {"signature_algorithm": "pkcs1v15", "hash_algorithm": "sha2-512"}),
        ("rsa-2048", {"salt_length": "hash"}),
    ],
)
def test_sign_and_verify(client, name, key_type, options):
    transit = client.secrets.transit
    transit.create_key(name, key_type=key_type)
    signed = transit.sign_data(name, hash_input=b64(HELLO), **options)["data"]
    assert signed["signature"].startswith("vault:v1:") and signed["key_version"] == 1
    valid = transit.verify_signed_data(
        name, hash_input=b64(HELLO), signature=signed["signature"], **options
    )["data"]["valid"]
    assert valid is True
    tampered = transit.verify_signed_data(
        name, hash_input=b64(HELLO + b"!"), signature=signed["signature"], **options
    )["data"]["valid"]
    assert tampered is False


@pytest.mark.parametrize(
    "key_type,options",
    [
        ("ed25519", {}),
        ("ecdsa-p256", {}),
        ("ecdsa-p384", {"hash_algorithm": "sha2-384"}),
        ("rsa-2048", {"signature_algorithm": "pkcs1v15"}),
        ("rsa-2048", {"signature_algorithm": "pss", "salt_length": "hash"}),
    ],
)
def test_signatures_verify_with_pyca_cryptography(client, name, key_type, options):
    """An independent verifier accepts transitd's signatures and public keys."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    transit = client.secrets.transit
    transit.create_key(name, key_type=key_type)
    sig = transit.sign_data(name, hash_input=b64(HELLO), **options)["data"]["signature"]
    raw = unb64(sig.split(":", 2)[2])
    public = transit.read_key(name)["data"]["keys"]["1"]["public_key"]
    if key_type == "ed25519":
        Ed25519PublicKey.from_public_bytes(unb64(public)).verify(raw, HELLO)
        return
    key = serialization.load_pem_public_key(public.encode())
    digest = hashes.SHA384() if options.get("hash_algorithm") == "sha2-384" else hashes.SHA256()
    if key_type.startswith("ecdsa"):
        key.verify(raw, HELLO, ec.ECDSA(digest))
    elif options["signature_algorithm"] == "pkcs1v15":
        key.verify(raw, HELLO, padding.PKCS1v15(), digest)
    else:
        key.verify(raw, HELLO, padding.PSS(padding.MGF1(digest), padding.PSS.DIGEST_LENGTH), digest)


def test_sign_batch(client, name):
    transit = client.secrets.transit
    transit.create_key(name, key_type="ecdsa-p256")
    results = transit.sign_data(
        name, batch_input=[{"input": b64(b"a")}, {"input": b64(b"b"), "reference": "b"}]
    )["data"]["batch_results"]
    assert [r["reference"] for r in results] == ["", "b"]
    assert all(r["signature"].startswith("vault:v1:") for r in results)


def test_sign_errors(client, name):
    transit = client.secrets.transit
    transit.create_key(name)
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.sign_data(name, hash_input=b64(HELLO))
    assert err.value.errors == ["key type aes256-gcm96 does not support signing"]
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.sign_data("no-such-key-" + name, hash_input=b64(HELLO))
    assert err.value.errors == ["signing key not found"]


def test_export_key(client, name):
    transit = client.secrets.transit
    transit.create_key(name, exportable=True)
    transit.rotate_key(name)
    every = transit.export_key(name, key_type="encryption-key")["data"]
    assert every["name"] == name and every["type"] == "aes256-gcm96"
    assert sorted(every["keys"]) == ["1", "2"]
    assert all(len(unb64(k)) == 32 for k in every["keys"].values())
    latest = transit.export_key(name, key_type="encryption-key", version="latest")["data"]
    assert latest["keys"] == {"2": every["keys"]["2"]}
    signing = name + "-ec"
    transit.create_key(signing, key_type="ecdsa-p256", exportable=True)
    pem = transit.export_key(signing, key_type="signing-key", version="1")["data"]["keys"]["1"]
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.export_key(signing, key_type="encryption-key")
    assert err.value.errors == ["encryption not supported for the key"]
    plain = name + "-plain"
    transit.create_key(plain)
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.export_key(plain, key_type="encryption-key")
    assert err.value.errors == ["private key material is not exportable"]
    with pytest.raises(exceptions.InvalidPath):
        transit.export_key("no-such-key-" + name, key_type="encryption-key")


def test_backup_and_restore(client, name):
    transit = client.secrets.transit
    transit.create_key(name, exportable=True, allow_plaintext_backup=True)
    ct = transit.encrypt_data(name, plaintext=b64(HELLO))["data"]["ciphertext"]
    backup = transit.backup_key(name)["data"]["backup"]
    assert transit.read_key(name)["data"]["backup_info"]["version"] == 1
    copy = name + "-copy"
    response = transit.restore_key(backup, name=copy)
    assert response.status_code == 204
    restored = transit.read_key(copy)["data"]
    assert restored["restore_info"]["version"] == 1
    assert unb64(transit.decrypt_data(copy, ciphertext=ct)["data"]["plaintext"]) == HELLO
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.restore_key(backup, name=copy)
    assert err.value.errors == [f'key "{copy}" already exists']
    assert transit.restore_key(backup, name=copy, force=True).status_code == 204
    plain = name + "-plain"
    transit.create_key(plain)
    with pytest.raises(exceptions.InvalidRequest):
        transit.backup_key(plain)


def test_generate_random_bytes(client):
    transit = client.secrets.transit
    default = transit.generate_random_bytes()["data"]["random_bytes"]
    assert len(unb64(default)) == 32
    hex_bytes = transit.generate_random_bytes(n_bytes=16, output_format="hex")["data"]["random_bytes"]
    assert len(bytes.fromhex(hex_bytes)) == 16
    with pytest.raises(exceptions.InvalidRequest) as err:
        transit.generate_random_bytes(n_bytes=0)
    assert err.value.errors == ["'bytes' cannot be less than 1"]


@pytest.mark.parametrize(
    "algorithm,fn",
    [
        ("sha2-224", hashlib.sha224),
        ("sha2-256", hashlib.sha256),
        ("sha2-384", hashlib.sha384),
        ("sha2-512", hashlib.sha512),
    ],
)
def test_hash_data(client, algorithm, fn):
    transit = client.secrets.transit
    hexsum = transit.hash_data(b64(b"hello"), algorithm=algorithm)["data"]["sum"]
    assert hexsum == fn(b"hello").hexdigest()
    b64sum = transit.hash_data(b64(b"hello"), algorithm=algorithm, output_format="base64")["data"]["sum"]
    assert unb64(b64sum) == fn(b"hello").digest()


# --- encryption counts (ours; README, "Usage limits") ------------------------


def test_read_key_shows_encryption_counts_and_still_parses(client, name):
    client.secrets.transit.create_key(name)
    for _ in range(3):
        client.secrets.transit.encrypt_data(name, plaintext=b64(HELLO))
    key = client.secrets.transit.read_key(name)["data"]
    assert key["max_encryptions_per_version"] == 2**32
    assert key["encryption_counts"]["1"] >= 3
    assert key["latest_version"] == 1 and list(key["keys"]) == ["1"]
    client.write_data(f"transit/keys/{name}/config", data={"max_encryptions_per_version": 5})
    assert client.secrets.transit.read_key(name)["data"]["max_encryptions_per_version"] == 5
    with pytest.raises(exceptions.InvalidRequest, match="cannot exceed 4294967296"):
        client.write_data(f"transit/keys/{name}/config", data={"max_encryptions_per_version": 2**32 + 1})
    assert client.secrets.transit.read_key(name)["data"]["max_encryptions_per_version"] == 5
