"""hvac's JWT login against transitd: an HTTPS issuer (its own CA, keys and
JWKS made with `cryptography`) publishes the keys; hvac configures the
method, creates a role and logs in with a signed RS256 JWT."""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def _cert(subject: str, key, issuer_name=None, issuer_key=None, ca=False, ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


class Issuer:
    """An HTTPS server publishing one RS256 key as a JWKS at /keys."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "py-" + uuid.uuid4().hex[:8]
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("test issuer CA", ca_key, ca=True)
        tls_key = ec.generate_private_key(ec.SECP256R1())
        tls_cert = _cert("127.0.0.1", tls_key, ca.subject, ca_key, ip="127.0.0.1")
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        self.dir = Path(tempfile.mkdtemp(prefix="jwt-issuer-"))
        (self.dir / "cert.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))
        (self.dir / "key.pem").write_bytes(
            tls_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        numbers = self.key.public_key().public_numbers()
        jwks = json.dumps(
            {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                       "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}]}
        ).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = (200, jwks) if self.path == "/keys" else (404, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.dir / "cert.pem", self.dir / "key.pem")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + _b64(signature)

    def claims(self, **extra) -> dict:
        now = int(time.time())
        claims = {"iss": self.url, "sub": "repo:org/app:ref:main", "aud": "vault",
                  "iat": now, "exp": now + 300, "repository": "org/app"}
        claims.update(extra)
        return claims

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def issuer():
    i = Issuer()
    yield i
    i.stop()


def test_hvac_jwt_login(transitd, client, issuer):
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

    refused = hvac.Client(url=transitd.url)
    for claims, text in [
        (issuer.claims(repository="evil/app"), "does not match any associated bound claim values"),
        (issuer.claims(exp=int(time.time()) - 600), "token is expired"),
        (issuer.claims(aud="other"), "invalid audience (aud) claim"),
    ]:
        with pytest.raises(hvac.exceptions.InvalidRequest, match=text.replace("(", r"\(").replace(")", r"\)")):
            refused.auth.jwt.jwt_login("ci", issuer.sign(claims), path=mount)
        assert not refused.is_authenticated()
