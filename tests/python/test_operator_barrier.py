"""`bao operator rotate`, `key-status` and `generate-root` against a real
transitd (SQLite, TLS, Shamir seal), as an operator types them."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import _clean_env, bao_bin
from test_real_server import ConfigServer


@pytest.fixture
def operator(tmp_path):
    server = ConfigServer(tmp_path)
    server.start()
    env = _clean_env(str(server.dir))
    env.update(BAO_ADDR=server.addr, BAO_CACERT=str(server.ca))

    def bao(*args: str) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [str(bao_bin()), *args], env=env, capture_output=True, text=True, timeout=60
        )
        return out

    out = bao("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")
    assert out.returncode == 0, out.stderr
    init = json.loads(out.stdout)
    for key in init["unseal_keys_b64"][:2]:
        assert bao("operator", "unseal", key).returncode == 0
    env["BAO_TOKEN"] = init["root_token"]
    yield bao, init, env
    server.stop()


def test_rotate_and_key_status(operator):
    bao, _, _ = operator
    out = bao("operator", "key-status", "-format=json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["term"] == 1
    out = bao("operator", "rotate")
    assert out.returncode == 0, out.stderr
    assert "Success! Rotated key" in out.stdout, out.stdout
    out = bao("operator", "key-status")
    assert out.returncode == 0, out.stderr
    assert "Key Term" in out.stdout and " 2" in out.stdout, out.stdout
    out = bao("write", "-f", "transit/keys/after-rotate")
    assert out.returncode == 0, out.stderr


def test_generate_root_with_otp_and_decode(operator):
    bao, init, env = operator
    out = bao("operator", "generate-root", "-status", "-format=json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["started"] is False and status["required"] == 2
    assert status["otp_length"] == 26

    out = bao("operator", "generate-root", "-init", "-format=json")
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout)
    nonce, otp = started["nonce"], started["otp"]
    assert started["started"] is True and len(otp) == 26

    keys = init["unseal_keys_b64"]
    out = bao("operator", "generate-root", f"-nonce={nonce}", "-format=json", keys[0])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["progress"] == 1
    # The same share twice is refused.
    out = bao("operator", "generate-root", f"-nonce={nonce}", "-format=json", keys[0])
    assert out.returncode != 0 and "already been provided" in out.stderr, out.stderr
    out = bao("operator", "generate-root", f"-nonce={nonce}", "-format=json", keys[2])
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["complete"] is True
    encoded = done["encoded_token"]

    out = bao("operator", "generate-root", f"-decode={encoded}", f"-otp={otp}", "-format=json")
    assert out.returncode == 0, out.stderr
    new_root = json.loads(out.stdout)["token"]
    assert new_root.startswith("s.") and new_root != init["root_token"]

    # The new root token works, and revokes the initial one.
    env["BAO_TOKEN"] = new_root
    out = bao("token", "lookup", "-format=json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"]["policies"] == ["root"]
    out = bao("token", "revoke", init["root_token"])
    assert out.returncode == 0, out.stderr
    out = bao("token", "lookup", init["root_token"])
    assert out.returncode != 0, out.stdout


def test_generate_root_cancel(operator):
    bao, _, _ = operator
    assert bao("operator", "generate-root", "-init").returncode == 0
    out = bao("operator", "generate-root", "-cancel")
    assert out.returncode == 0, out.stderr
    out = bao("operator", "generate-root", "-status", "-format=json")
    assert json.loads(out.stdout)["started"] is False


def _restart_and_unseal(bao, env, server_of, keys) -> subprocess.CompletedProcess:
    """Seal, then try `keys` with `bao operator unseal`; the last result."""
    assert bao("operator", "seal").returncode == 0
    out = None
    for key in keys:
        out = bao("operator", "unseal", "-format=json", key)
        if out.returncode != 0:
            bao("operator", "unseal", "-reset")
            return out
    return out


def test_rekey_with_verification_and_cancel(operator):
    bao, init, env = operator
    out = bao("operator", "rekey", "-status", "-format=json")
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["started"] is False and status["required"] == 2

    # -init then -cancel.
    assert bao("operator", "rekey", "-init", "-key-shares=1", "-key-threshold=1").returncode == 0
    out = bao("operator", "rekey", "-cancel")
    assert out.returncode == 0 and "Canceled" in out.stdout, out.stderr
    assert json.loads(bao("operator", "rekey", "-status", "-format=json").stdout)["started"] is False
    # PGP-encrypted shares are refused, not ignored.
    out = bao("operator", "rekey", "-init", "-backup", "-key-shares=1", "-key-threshold=1")
    assert out.returncode != 0, out.stdout

    out = bao("operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", "-verify",
              "-format=json")
    assert out.returncode == 0, out.stderr
    started = json.loads(out.stdout)
    assert started["started"] is True and started["verification_required"] is True
    nonce = started["nonce"]
    old = init["unseal_keys_b64"]
    out = bao("operator", "rekey", f"-nonce={nonce}", "-format=json", old[0])
    assert out.returncode == 0, out.stderr
    out = bao("operator", "rekey", f"-nonce={nonce}", "-format=json", old[1])
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    new = done["keys_base64"]
    assert len(new) == 3 and done["verification_required"] is True
    verification = done["verification_nonce"]

    out = bao("operator", "rekey", "-verify", "-status", "-format=json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["nonce"] == verification
    out = bao("operator", "rekey", "-verify", f"-nonce={verification}", new[0])
    assert out.returncode == 0, out.stderr
    out = bao("operator", "rekey", "-verify", f"-nonce={verification}", new[2])
    assert out.returncode == 0, out.stderr
    assert "keys are now active" in out.stdout, out.stdout

    # The old shares no longer unseal; the new ones do, and data is there.
    out = _restart_and_unseal(bao, env, None, old[:2])
    assert out.returncode != 0, out.stdout
    out = _restart_and_unseal(bao, env, None, new[1:])
    assert out.returncode == 0 and json.loads(out.stdout)["sealed"] is False, out.stderr
    assert bao("write", "-f", "transit/keys/after-rekey").returncode == 0


@pytest.fixture
def static_operator(tmp_path):
    key = tmp_path / "static.key"
    key.write_bytes(bytes(range(32)))
    server = ConfigServer(
        tmp_path,
        f'seal "static" {{\n  current_key_id = "k1"\n  current_key = "file://{key}"\n}}\n',
    )
    server.start()
    env = _clean_env(str(server.dir))
    env.update(BAO_ADDR=server.addr, BAO_CACERT=str(server.ca))

    def bao(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bao_bin()), *args], env=env, capture_output=True, text=True, timeout=60
        )

    yield bao, env
    server.stop()


def test_recovery_keys_init_rekey_and_generate_root(static_operator):
    bao, env = static_operator
    out = bao("operator", "init", "-recovery-shares=3", "-recovery-threshold=2", "-format=json")
    assert out.returncode == 0, out.stderr
    init = json.loads(out.stdout)
    assert init["unseal_keys_b64"] == [] and len(init["recovery_keys_b64"]) == 3
    env["BAO_TOKEN"] = init["root_token"]
    out = bao("status", "-format=json")
    status = json.loads(out.stdout)
    assert status["recovery_seal"] is True and (status["t"], status["n"]) == (2, 3), status

    out = bao("operator", "rekey", "-target=recovery", "-init", "-key-shares=1",
              "-key-threshold=1", "-format=json")
    assert out.returncode == 0, out.stderr
    nonce = json.loads(out.stdout)["nonce"]
    old = init["recovery_keys_b64"]
    assert bao("operator", "rekey", "-target=recovery", f"-nonce={nonce}", old[0]).returncode == 0
    out = bao("operator", "rekey", "-target=recovery", f"-nonce={nonce}", "-format=json", old[2])
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)["keys_base64"]
    assert len(new) == 1

    # Root generation takes the new recovery key, not the old ones.
    def generate(keys):
        started = json.loads(bao("operator", "generate-root", "-init", "-format=json").stdout)
        out = None
        for key in keys:
            out = bao("operator", "generate-root", f"-nonce={started['nonce']}",
                      "-format=json", key)
            if out.returncode != 0:
                bao("operator", "generate-root", "-cancel")
                return out, None
        return out, started["otp"]

    out, _ = generate(old[:2])
    assert out.returncode != 0, out.stdout
    out, otp = generate(new)
    assert out.returncode == 0, out.stderr
    encoded = json.loads(out.stdout)["encoded_token"]
    out = bao("operator", "generate-root", f"-decode={encoded}", f"-otp={otp}", "-format=json")
    assert out.returncode == 0 and json.loads(out.stdout)["token"].startswith("s."), out.stderr
