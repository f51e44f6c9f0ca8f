"""Seal migration Shamir -> static -> Shamir with `bao operator unseal
-migrate`, unchanged, against a real transitd (SQLite, TLS)."""

from __future__ import annotations

import json
import subprocess

from conftest import _clean_env, bao_bin
from test_real_server import ConfigServer


def test_bao_operator_unseal_migrate_both_ways(tmp_path):
    server = ConfigServer(tmp_path)
    base = server.config.read_text()
    key_file = tmp_path / "static.key"
    key_file.write_bytes(bytes([6]) * 32)

    def static(disabled: bool) -> str:
        flag = "true" if disabled else "false"
        return (
            f'seal "static" {{\n  disabled = "{flag}"\n  current_key_id = "k1"\n'
            f'  current_key = "file://{key_file}"\n}}\n'
        )

    env = _clean_env(str(tmp_path))
    env.update(BAO_ADDR=server.addr, BAO_CACERT=str(server.ca))

    def bao(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bao_bin()), *args], env=env, capture_output=True, text=True, timeout=60
        )

    def status() -> dict:
        # `bao status` exits 2 while sealed; its JSON is printed either way.
        return json.loads(bao("status", "-format=json").stdout)

    server.start()
    out = bao("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")
    assert out.returncode == 0, out.stderr
    init = json.loads(out.stdout)
    keys = init["unseal_keys_b64"]
    for key in keys[:2]:
        assert bao("operator", "unseal", key).returncode == 0
    env["BAO_TOKEN"] = init["root_token"]
    assert bao("write", "-f", "transit/keys/kept").returncode == 0
    server.stop()

    # Shamir -> static: the unseal keys, with -migrate, become recovery keys.
    server.config.write_text(base + static(False))
    server.start()
    s = status()
    assert s["migration"] is True and s["sealed"] is True and s["type"] == "static", s
    out = bao("operator", "unseal", keys[0])
    assert out.returncode != 0
    assert "migrate option not provided and seal migration is pending" in out.stderr, out.stderr
    for key in keys[:2]:
        out = bao("operator", "unseal", "-migrate", key)
        assert out.returncode == 0, out.stderr
    s = status()
    assert s["sealed"] is False and s["migration"] is False and s["recovery_seal"] is True, s
    assert bao("read", "transit/keys/kept").returncode == 0
    server.stop()
    server.config.write_text(base + static(False))
    server.start()  # the static seal unseals before the listener serves
    assert status()["sealed"] is False

    # Static -> Shamir: the stanza marked disabled, the recovery keys unseal.
    server.stop()
    server.config.write_text(base + static(True))
    server.start()
    s = status()
    assert s["migration"] is True and s["type"] == "shamir", s
    for key in keys[1:]:
        out = bao("operator", "unseal", "-migrate", key)
        assert out.returncode == 0, out.stderr
    assert status()["sealed"] is False
    server.stop()
    server.config.write_text(base)
    server.start()
    for key in keys[:2]:
        assert bao("operator", "unseal", key).returncode == 0
    assert bao("read", "transit/keys/kept").returncode == 0
    server.stop()
