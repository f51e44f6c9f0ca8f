"""The OpenBao CLI (`bao`, 2.7.2) pointed at transitd.

The CLI sends what operators type: form-style `key=value` pairs where every
number and bool is a string, `-f` writes with no body, LIST requests, and
`sys/mounts` calls. Outputs are checked as a person reads them (tables, JSON),
and a set of commands is run against a real OpenBao too: the outputs must be
the same once key material, times and ids are masked.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid

import pytest

from conftest import ROOT_TOKEN, bao_bin


def run_bao(addr: str, *args: str, legacy_env: bool = False, check: bool = True, home: str):
    """Run `bao ARGS` against `addr` (BAO_ADDR/BAO_TOKEN, or VAULT_ADDR/VAULT_TOKEN)."""
    env = {"HOME": home, "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    if legacy_env:
        env.update({"VAULT_ADDR": addr, "VAULT_TOKEN": ROOT_TOKEN})
    else:
        env.update({"BAO_ADDR": addr, "BAO_TOKEN": ROOT_TOKEN})
    proc = subprocess.run(
        [str(bao_bin()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"bao {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}",
            pytrace=False,
        )
    return proc


def table(output: str) -> dict[str, str]:
    """The `Key  Value` table the CLI prints for a secret."""
    lines = output.strip().splitlines()
    assert lines[0].split() == ["Key", "Value"], output
    assert lines[1].split() == ["---", "-----"], output
    rows = {}
    for line in lines[2:]:
        key, _, value = line.partition(" ")
        rows[key] = value.strip()
    return rows


@pytest.fixture
def bao(transitd, tmp_path):
    def call(*args, **kw):
        return run_bao(transitd.url, *args, home=str(tmp_path), **kw)

    return call


@pytest.fixture
def key(bao) -> str:
    name = f"k-{uuid.uuid4().hex[:10]}"
    bao("write", f"transit/keys/{name}", "type=aes256-gcm96")
    return name


def test_write_key(bao):
    name = f"k-{uuid.uuid4().hex[:10]}"
    out = table(bao("write", f"transit/keys/{name}", "type=aes256-gcm96").stdout)
    assert out["name"] == name
    assert out["type"] == "aes256-gcm96"
    assert out["latest_version"] == "1"
    assert out["exportable"] == "false"
    assert out["auto_rotate_period"] == "0s"
    assert re.fullmatch(r"map\[1:\d{10}\]", out["keys"]), out["keys"]


def test_encrypt_and_decrypt(bao, key):
    plaintext = base64.b64encode(b"hi\n").decode()  # what `$(base64 <<< hi)` gives
    enc = table(bao("write", f"transit/encrypt/{key}", f"plaintext={plaintext}").stdout)
    assert re.fullmatch(r"vault:v1:[A-Za-z0-9+/]+=*", enc["ciphertext"])
    assert enc["key_version"] == "1"
    dec = json.loads(
        bao("write", "-format=json", f"transit/decrypt/{key}", f"ciphertext={enc['ciphertext']}").stdout
    )
    assert base64.b64decode(dec["data"]["plaintext"]) == b"hi\n"
    assert dec["warnings"] is None
    field = bao("write", "-field=plaintext", f"transit/decrypt/{key}", f"ciphertext={enc['ciphertext']}")
    assert field.stdout == plaintext


def test_read_key(bao, key):
    out = table(bao("read", f"transit/keys/{key}").stdout)
    assert out["name"] == key
    assert out["min_decryption_version"] == "1"
    assert out["supports_encryption"] == "true"
    doc = json.loads(bao("read", "-format=json", f"transit/keys/{key}").stdout)
    assert doc["data"]["type"] == "aes256-gcm96"
    assert list(doc["data"]["keys"]) == ["1"]


def test_read_key_shows_encryption_counts(bao, key):
    for _ in range(3):
        bao("write", f"transit/encrypt/{key}", "plaintext=aGkK")
    out = table(bao("read", f"transit/keys/{key}").stdout)
    assert out["max_encryptions_per_version"] == "4294967296"
    match = re.fullmatch(r"map\[1:(\d+)\]", out["encryption_counts"])
    assert match and int(match.group(1)) >= 3, out["encryption_counts"]
    # The OpenBao fields are printed as before.
    assert out["latest_version"] == "1"
    assert re.fullmatch(r"map\[1:\d{10}\]", out["keys"]), out["keys"]
    bao("write", f"transit/keys/{key}/config", "max_encryptions_per_version=1000")
    doc = json.loads(bao("read", "-format=json", f"transit/keys/{key}").stdout)
    assert doc["data"]["max_encryptions_per_version"] == 1000
    refused = bao("write", f"transit/keys/{key}/config", "max_encryptions_per_version=0", check=False)
    assert refused.returncode == 2 and "must be a positive number" in refused.stderr


def test_list_keys(bao, key):
    out = bao("list", "transit/keys").stdout.splitlines()
    assert out[:2] == ["Keys", "----"]
    assert key in out[2:]
    assert key in json.loads(bao("list", "-format=json", "transit/keys").stdout)


def test_secrets_enable_and_list(bao):
    mount = f"payments-{uuid.uuid4().hex[:8]}"
    out = bao("secrets", "enable", f"-path={mount}", "transit").stdout
    assert out.strip() == f"Success! Enabled the transit secrets engine at: {mount}/"
    listing = bao("secrets", "list").stdout.splitlines()
    assert listing[0].split() == ["Path", "Type", "Accessor", "Description"]
    rows = {line.split()[0]: line.split() for line in listing[2:]}
    assert rows[f"{mount}/"][1] == "transit"
    assert rows["transit/"][1] == "transit"
    mounts = json.loads(bao("secrets", "list", "-format=json").stdout)
    assert mounts[f"{mount}/"]["type"] == "transit"
    again = bao("secrets", "enable", f"-path={mount}", "transit", check=False)
    assert again.returncode == 2
    assert f"path is already in use at {mount}/" in again.stderr
    # The new mount works on its own.
    bao("write", f"{mount}/keys/orders", "type=chacha20-poly1305")
    ct = bao("write", "-field=ciphertext", f"{mount}/encrypt/orders", "plaintext=aGk=").stdout
    assert bao("write", "-field=plaintext", f"{mount}/decrypt/orders", f"ciphertext={ct}").stdout == "aGk="
    assert "Success! Disabled" in bao("secrets", "disable", mount).stdout
    assert f"{mount}/" not in bao("secrets", "list").stdout


def test_config_with_string_values(bao, key):
    out = table(
        bao("write", f"transit/keys/{key}/config", "min_decryption_version=1", "exportable=true").stdout
    )
    assert out["exportable"] == "true"
    assert out["min_decryption_version"] == "1"
    bao("write", "-f", f"transit/keys/{key}/rotate")
    bao("write", "-f", f"transit/keys/{key}/rotate")
    out = table(
        bao(
            "write",
            f"transit/keys/{key}/config",
            "min_decryption_version=2",
            "min_encryption_version=3",
            "deletion_allowed=true",
        ).stdout
    )
    assert (out["min_decryption_version"], out["min_encryption_version"]) == ("2", "3")
    assert out["deletion_allowed"] == "true"
    assert re.fullmatch(r"map\[2:\d+ 3:\d+\]", out["keys"]), out["keys"]
    assert "Success! Data deleted" in bao("delete", f"transit/keys/{key}").stdout


def test_auto_rotate_period_duration(bao):
    name = f"k2-{uuid.uuid4().hex[:8]}"
    out = table(bao("write", f"transit/keys/{name}", "auto_rotate_period=24h").stdout)
    assert out["auto_rotate_period"] == "24h"
    doc = json.loads(bao("read", "-format=json", f"transit/keys/{name}").stdout)
    assert doc["data"]["auto_rotate_period"] == 86400
    bad = bao("write", f"transit/keys/{name}-x", "auto_rotate_period=30m", check=False)
    assert bad.returncode == 2
    assert "auto rotate period must be 0 to disable or at least an hour" in bad.stderr


def test_errors_are_reported_like_openbao(bao, key):
    bad = bao("write", f"transit/decrypt/{key}", "ciphertext=garbage", check=False)
    assert bad.returncode == 2
    assert "Code: 400" in bad.stderr
    assert "* invalid ciphertext: no prefix" in bad.stderr
    missing = bao("read", "transit/keys/no-such-key", check=False)
    assert missing.returncode == 2
    assert "No value found at transit/keys/no-such-key" in (missing.stdout + missing.stderr)


def test_legacy_vault_environment_variables(transitd, tmp_path, key):
    out = run_bao(transitd.url, "read", f"transit/keys/{key}", legacy_env=True, home=str(tmp_path))
    assert table(out.stdout)["name"] == key


def test_other_endpoints(bao):
    name = f"k-{uuid.uuid4().hex[:10]}"
    bao("write", f"transit/keys/{name}", "exportable=true", "allow_plaintext_backup=true")
    mac = bao("write", "-field=hmac", f"transit/hmac/{name}/sha2-512", "input=aGk=").stdout
    assert mac.startswith("vault:v1:")
    assert (
        bao("write", "-field=valid", f"transit/verify/{name}/sha2-512", "input=aGk=", f"hmac={mac}").stdout
        == "true"
    )
    signer = name + "-ed"
    bao("write", f"transit/keys/{signer}", "type=ed25519")
    sig = bao("write", "-field=signature", f"transit/sign/{signer}", "input=aGk=").stdout
    assert bao("write", "-field=valid", f"transit/verify/{signer}", "input=aGk=", f"signature={sig}").stdout == "true"
    exported = json.loads(bao("read", "-format=json", f"transit/export/encryption-key/{name}/1").stdout)
    assert len(base64.b64decode(exported["data"]["keys"]["1"])) == 32
    backup = bao("read", "-field=backup", f"transit/backup/{name}").stdout
    restored = bao("write", f"transit/restore/{name}-copy", f"backup={backup}").stdout
    assert "Success! Data written to" in restored
    assert table(bao("read", f"transit/keys/{name}-copy").stdout)["name"] == name + "-copy"
    random = bao("write", "-field=random_bytes", "transit/random", "bytes=8", "format=hex").stdout
    assert re.fullmatch(r"[0-9a-f]{16}", random)
    digest = bao("write", "-field=sum", "transit/hash/sha2-256", "input=aGVsbG8=").stdout
    assert digest == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


# --- the same commands against OpenBao -------------------------------------------

MASKS = [
    (re.compile(r"vault:v(\d+):[A-Za-z0-9+/=_-]+"), r"vault:v\1:<payload>"),
    (re.compile(r"\b1[6-9]\d{8}\b"), "<unix-time>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"), "<rfc3339>"),
    (re.compile(r"transit_[0-9a-f]{8}"), "transit_<accessor>"),
    (re.compile(r"-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----\s*"), "<pem>"),
    (re.compile(r"(random_bytes\s+)\S+"), r"\1<random>"),
    (re.compile(r"(\d+):[A-Za-z0-9+/]{40,}=*"), r"\1:<key material>"),
]


# Fields of ours that OpenBao does not have (README, "Usage limits"): left out
# of the comparison, checked in test_read_key_shows_encryption_counts.
OURS_ONLY = re.compile(r"^\s*\"?(encryption_counts|max_encryptions_per_version)\b")


def masked(text: str) -> str:
    text = "\n".join(line for line in text.splitlines() if not OURS_ONLY.match(line))
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    # Column widths follow the values: compare words, not spacing.
    return "\n".join(" ".join(line.split()) for line in text.strip().splitlines())


# Run in a mount of their own, so the other tests' keys do not show in lists.
SAME_OUTPUT = [
    ["secrets", "enable", "-path=cli", "-description=for the CLI comparison", "transit"],
    ["secrets", "enable", "-path=cli", "transit"],
    ["list", "cli/keys"],
    ["write", "cli/keys/k", "type=aes256-gcm96"],
    ["write", "cli/keys/k", "type=ed25519"],
    ["read", "cli/keys/k"],
    ["write", "cli/encrypt/k", "plaintext=aGkK"],
    ["write", "cli/encrypt/k", "plaintext=aGkK", "key_version=2"],
    ["write", "cli/decrypt/k", "ciphertext=garbage"],
    ["write", "-f", "cli/keys/k/rotate"],
    ["write", "cli/keys/k/config", "min_decryption_version=2", "exportable=true"],
    ["write", "-format=json", "cli/keys/k/config", "min_encryption_version=2"],
    ["write", "cli/keys/k/trim", "min_available_version=2"],
    ["write", "cli/keys/k2", "auto_rotate_period=24h"],
    ["write", "cli/keys/k3", "auto_rotate_period=30m"],
    ["write", "cli/keys/h", "type=hmac", "key_size=64"],
    ["read", "-format=json", "cli/keys/h"],
    ["write", "cli/hmac/h/sha2-256", "input=aGk="],
    ["write", "cli/keys/ec", "type=ecdsa-p256"],
    ["read", "cli/keys/ec"],
    ["write", "cli/sign/ec", "input=aGk=", "marshaling_algorithm=jws"],
    ["list", "cli/keys"],
    ["list", "-format=json", "cli/keys"],
    ["read", "cli/keys/missing"],
    ["write", "cli/datakey/wrapped/k", "bits=512"],
    ["write", "-f", "cli/random"],
    ["write", "cli/hash", "input=aGVsbG8=", "algorithm=sha3-256"],
    ["read", "cli/export/encryption-key/k/2"],
    ["write", "-f", "cli/keys/k/config"],
]


def test_same_cli_output_as_openbao(transitd, openbao, tmp_path):
    """Each command's exit code, stdout and stderr, masked, equal to OpenBao's."""
    differences = []
    for args in SAME_OUTPUT:
        outs = {}
        for server in (transitd, openbao):
            proc = run_bao(server.url, *args, check=False, home=str(tmp_path))
            outs[server.name] = (
                proc.returncode,
                masked(proc.stdout),
                masked(proc.stderr.replace(server.url, "<addr>")),
            )
        if outs["transitd"] != outs["openbao"]:
            differences.append(
                f"bao {' '.join(args)}\n  transitd: {outs['transitd']}\n  openbao:  {outs['openbao']}"
            )
    assert not differences, "\n".join(differences)
