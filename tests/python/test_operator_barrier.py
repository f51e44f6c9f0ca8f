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
