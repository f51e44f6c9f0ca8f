"""BYOK with the clients people use: `bao transit import` and
`bao transit import-version` (which fetch `wrapping_key` and wrap locally
with RSA-OAEP SHA-256 and AES-KWP), and hvac's generic read/write (hvac
2.4.0 has no BYOK methods), against transitd.

The key material comes from `cryptography`, as an operator's own tooling
would make it: raw bytes for AES, PKCS#8 DER for ECDSA and Ed25519.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_wrap_with_padding

from test_bao_cli import run_bao


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pkcs8(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def spki_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_bao_transit_import_and_import_version_aes(transitd, tmp_path, name):
    home = str(tmp_path)
    first, second = os.urandom(32), os.urandom(32)
    out = run_bao(
        transitd.url, "transit", "import", f"transit/keys/{name}", b64(first),
        "type=aes256-gcm96", "exportable=true", home=home,
    ).stdout
    assert "Success!" in out, out
    # The material from a file, as `@path`.
    path = tmp_path / "second.b64"
    path.write_text(b64(second))
    out = run_bao(
        transitd.url, "transit", "import-version", f"transit/keys/{name}", f"@{path}", home=home,
    ).stdout
    assert "Success!" in out, out
    doc = json.loads(run_bao(transitd.url, "read", "-format=json", f"transit/keys/{name}", home=home).stdout)
    assert doc["data"]["imported_key"] is True
    assert doc["data"]["latest_version"] == 2
    exported = json.loads(
        run_bao(transitd.url, "read", "-format=json", f"transit/export/encryption-key/{name}", home=home).stdout
    )
    assert exported["data"]["keys"] == {"1": b64(first), "2": b64(second)}
    # It rotates only if allowed: the CLI shows the server's refusal.
    proc = run_bao(transitd.url, "write", "-f", f"transit/keys/{name}/rotate", home=home, check=False)
    assert proc.returncode != 0
    assert f"imported key {name} does not allow rotation within Vault" in proc.stderr


def test_bao_transit_import_of_signing_keys_verifies_their_signatures(transitd, tmp_path, name):
    home = str(tmp_path)
    message = b"signed outside, verified inside"
    for key_type, private in [
        ("ecdsa-p256", ec.generate_private_key(ec.SECP256R1())),
        ("ed25519", ed25519.Ed25519PrivateKey.generate()),
    ]:
        key_name = f"{name}-{key_type}"
        run_bao(
            transitd.url, "transit", "import", f"transit/keys/{key_name}", b64(pkcs8(private)),
            f"type={key_type}", home=home,
        )
        doc = json.loads(run_bao(transitd.url, "read", "-format=json", f"transit/keys/{key_name}", home=home).stdout)
        shown = doc["data"]["keys"]["1"]["public_key"]
        if key_type == "ed25519":
            raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            assert shown == b64(raw)
            signature = private.sign(message)
        else:
            assert shown == spki_pem(private)
            signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
        verified = json.loads(
            run_bao(
                transitd.url, "write", "-format=json", f"transit/verify/{key_name}",
                f"input={b64(message)}", f"signature=vault:v1:{b64(signature)}", home=home,
            ).stdout
        )
        assert verified["data"]["valid"] is True, key_type
        # And transitd signs with it what the original public key verifies.
        signed = json.loads(
            run_bao(
                transitd.url, "write", "-format=json", f"transit/sign/{key_name}",
                f"input={b64(message)}", home=home,
            ).stdout
        )["data"]["signature"]
        raw_signature = base64.b64decode(signed.split(":", 2)[2])
        if key_type == "ed25519":
            private.public_key().verify(raw_signature, message)
        else:
            private.public_key().verify(raw_signature, message, ec.ECDSA(hashes.SHA256()))


def test_hvac_wrapping_key_import_and_byok_export(client, name):
    """hvac's generic calls: a key wrapped here by hand, imported, exported for
    a public-only destination, and unwrapped with that destination's private key."""
    pem = client.read("transit/wrapping_key")["data"]["public_key"]
    wrapping = serialization.load_pem_public_key(pem.encode())
    assert wrapping.key_size == 4096
    material = os.urandom(32)
    ephemeral = os.urandom(32)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA384()), algorithm=hashes.SHA384(), label=None)
    ciphertext = wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    client.write_data(
        f"transit/keys/{name}/import",
        data={"ciphertext": b64(ciphertext), "hash_function": "SHA384", "exportable": True},
    )
    # A destination known only by its public key: the caller keeps the private one.
    destination = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    client.write_data(
        f"transit/keys/{name}-dest/import",
        data={"type": "rsa-4096", "public_key": spki_pem(destination)},
    )
    exported = client.read(f"transit/byok-export/{name}-dest/{name}")["data"]
    assert exported["name"] == name and exported["type"] == "aes256-gcm96"
    blob = base64.b64decode(exported["keys"]["1"])
    oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    unwrapped_ephemeral = destination.decrypt(blob[:512], oaep256)
    assert aes_key_unwrap_with_padding(unwrapped_ephemeral, blob[512:]) == material
