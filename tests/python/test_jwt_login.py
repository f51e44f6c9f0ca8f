"""hvac's and the bao CLI's JWT login against transitd: an HTTPS issuer (its own CA, keys and
JWKS made with `cryptography`) publishes the keys; hvac configures the
method, creates a role and logs in with a signed RS256 JWT."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import hvac
import pytest

from conftest import bao_bin
from login_fixtures import Signer, TlsServer


class Issuer:
    """An HTTPS issuer publishing one RS256 key as a JWKS at /keys."""

    def __init__(self):
        self.signer = Signer()
        jwks = {"keys": [self.signer.jwk()]}
        self.server = TlsServer(
            lambda method, path, headers, body: (200, jwks) if path == "/keys" else (404, {})
        )
        self.url = self.server.url
        self.ca_pem = self.server.ca_pem

    def sign(self, claims: dict) -> str:
        return self.signer.sign(claims)

    def claims(self, **extra) -> dict:
        now = int(time.time())
        claims = {"iss": self.url, "sub": "repo:org/app:ref:main", "aud": "vault",
                  "iat": now, "exp": now + 300, "repository": "org/app"}
        claims.update(extra)
        return claims

    def stop(self):
        self.server.stop()


@pytest.fixture
def issuer():
    i = Issuer()
    yield i
    i.stop()


def test_hvac_and_bao_jwt_login(transitd, client, issuer, tmp_path):
    mount = "jwt-" + uuid.uuid4().hex[:8]
    client.sys.enable_auth_method("jwt", path=mount)
    client.auth.jwt.configure(
        jwks_url=f"{issuer.url}/keys", jwks_ca_pem=issuer.ca_pem, bound_issuer=issuer.url, path=mount
    )
    assert client.auth.jwt.read_config(path=mount)["data"]["jwks_url"] == f"{issuer.url}/keys"
    client.auth.jwt.create_role(
        "ci",
        user_claim="sub",
        allowed_redirect_uris=[],
        role_type="jwt",
        bound_audiences=["vault"],
        bound_claims_type="glob",
        bound_claims={"repository": "org/*"},
        claim_mappings={"repository": "repository"},
        token_policies=["deploy"],
        token_ttl="15m",
        path=mount,
    )
    role = client.auth.jwt.read_role("ci", path=mount)["data"]
    assert role["bound_claims"] == {"repository": "org/*"} and role["token_ttl"] == 900

    app = hvac.Client(url=transitd.url)
    reply = app.auth.jwt.jwt_login("ci", issuer.sign(issuer.claims()), path=mount)
    auth = reply["auth"]
    assert auth["policies"] == ["default", "deploy"]
    assert auth["metadata"] == {"role": "ci", "repository": "org/app"}
    assert auth["lease_duration"] == 900
    assert app.is_authenticated()
    assert app.auth.token.lookup_self()["data"]["path"] == f"auth/{mount}/login"

    # The bao CLI, unchanged.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    env.update(HOME=str(tmp_path), BAO_ADDR=transitd.url)
    out = subprocess.run(
        [str(bao_bin()), "write", "-format=json", f"auth/{mount}/login", "role=ci",
         f"jwt={issuer.sign(issuer.claims())}"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["auth"]["metadata"]["repository"] == "org/app"

    refused = hvac.Client(url=transitd.url)
    for claims, text in [
        (issuer.claims(repository="evil/app"), "does not match any associated bound claim values"),
        (issuer.claims(exp=int(time.time()) - 600), "token is expired"),
        (issuer.claims(aud="other"), "invalid audience (aud) claim"),
    ]:
        with pytest.raises(hvac.exceptions.InvalidRequest, match=text.replace("(", r"\(").replace(")", r"\)")):
            refused.auth.jwt.jwt_login("ci", issuer.sign(claims), path=mount)
        assert not refused.is_authenticated()
