"""Response wrapping and break-glass revocation through unchanged clients:
hvac's `client.sys.wrap` / `client.sys.unwrap` and wrapped token creation,
`bao unwrap`, and `bao token revoke -mode=path`.
"""

from __future__ import annotations

import json
import uuid

import hvac
import pytest
from hvac import exceptions

from conftest import ROOT_TOKEN
from test_bao_cli import run_bao, table


def test_hvac_wrap_and_unwrap(transitd, client):
    wrapped = client.sys.wrap(payload={"secret": "s3cr3t", "n": 1}, ttl=60)
    assert wrapped["data"] is None
    info = wrapped["wrap_info"]
    assert info["ttl"] == 60 and info["creation_path"] == "sys/wrapping/wrap"
    # Looked up without spending it, then unwrapped with it as the client token.
    anyone = hvac.Client(url=transitd.url)
    looked = anyone.write_data("sys/wrapping/lookup", data={"token": info["token"]})
    anyone.adapter.close()
    assert looked["data"]["creation_ttl"] == 60
    holder = hvac.Client(url=transitd.url, token=info["token"])
    assert holder.sys.unwrap()["data"] == {"secret": "s3cr3t", "n": 1}
    with pytest.raises(exceptions.Forbidden):
        holder.sys.unwrap()
    holder.adapter.close()


def test_hvac_unwraps_a_wrapped_token_by_body(transitd, client):
    created = client.auth.token.create(policies=["default"], wrap_ttl="2m")
    token = created["wrap_info"]["token"]
    assert created["auth"] is None
    unwrapped = client.sys.unwrap(token)
    child = unwrapped["auth"]["client_token"]
    assert unwrapped["auth"]["accessor"] == created["wrap_info"]["wrapped_accessor"]
    assert hvac.Client(url=transitd.url, token=child).is_authenticated()
    with pytest.raises(exceptions.InvalidRequest, match="wrapping token is not valid"):
        client.sys.unwrap(token)


def test_bao_unwrap(transitd, tmp_path):
    out = run_bao(
        transitd.url,
        "write",
        "-wrap-ttl=90s",
        "-format=json",
        "sys/wrapping/wrap",
        "password=hunter2",
        home=str(tmp_path),
    )
    info = json.loads(out.stdout)["wrap_info"]
    assert info["ttl"] == 90
    unwrapped = run_bao(transitd.url, "unwrap", info["token"], home=str(tmp_path))
    assert table(unwrapped.stdout)["password"] == "hunter2"
    again = run_bao(transitd.url, "unwrap", info["token"], check=False, home=str(tmp_path))
    assert again.returncode != 0
    assert "wrapping token is not valid or does not exist" in again.stderr


def test_bao_token_revoke_mode_path(transitd, tmp_path):
    def bao(*args, **kw):
        return run_bao(transitd.url, *args, home=str(tmp_path), **kw)

    mount = f"up-{uuid.uuid4().hex[:8]}"
    bao("auth", "enable", f"-path={mount}", "userpass")
    tokens = {}
    for user in ("web", "ops"):
        bao("write", f"auth/{mount}/users/{user}", "password=pw")
        login = bao("write", "-format=json", f"auth/{mount}/login/{user}", "password=pw")
        tokens[user] = json.loads(login.stdout)["auth"]["client_token"]

    def alive(token: str) -> bool:
        c = hvac.Client(url=transitd.url, token=token)
        try:
            return c.is_authenticated()
        finally:
            c.adapter.close()

    bao("token", "revoke", "-mode=path", f"auth/{mount}/login/web")
    assert not alive(tokens["web"])
    assert alive(tokens["ops"])
    bao("token", "revoke", "-mode=path", f"auth/{mount}/")
    assert not alive(tokens["ops"])
    assert alive(ROOT_TOKEN)


def test_hvac_a_revoked_wrapping_token_gives_up_nothing(transitd, client):
    """Revoked by accessor (as an operator does with the `wrap_info` in the
    audit log), the wrapping token unwraps, rewraps and looks up nothing."""
    wrapped = client.sys.wrap(payload={"secret": "s3cr3t"}, ttl=120)
    info = wrapped["wrap_info"]
    client.auth.token.revoke_accessor(info["accessor"])
    anyone = hvac.Client(url=transitd.url)
    for attempt in (
        lambda: client.sys.unwrap(info["token"]),
        lambda: client.write_data("sys/wrapping/rewrap", data={"token": info["token"]}),
        lambda: anyone.write_data("sys/wrapping/lookup", data={"token": info["token"]}),
    ):
        with pytest.raises(exceptions.InvalidRequest, match="wrapping token is not valid"):
            attempt()
    anyone.adapter.close()


def test_bao_unwrap_after_revoke_and_no_wrapped_lookup(transitd, tmp_path):
    def bao(*args, **kw):
        return run_bao(transitd.url, *args, home=str(tmp_path), **kw)

    info = json.loads(
        bao("write", "-wrap-ttl=90s", "-format=json", "sys/wrapping/wrap", "k=v").stdout
    )["wrap_info"]
    # The public lookup is not wrapped: it would mint a token for anyone.
    wrapped_lookup = bao(
        "write", "-wrap-ttl=60s", "sys/wrapping/lookup", f"token={info['token']}", check=False
    )
    assert wrapped_lookup.returncode != 0
    assert "X-Vault-Wrap-TTL" in wrapped_lookup.stderr
    bao("token", "revoke", "-accessor", info["accessor"])
    again = bao("unwrap", info["token"], check=False)
    assert again.returncode != 0
    assert "wrapping token is not valid or does not exist" in again.stderr
