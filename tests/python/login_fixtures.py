"""Fixtures of the login tests: a small HTTPS server with its own CA (for a
JWT issuer's JWKS, or a Kubernetes API server's TokenReview), and an RS256
signer of JWTs, all made with `cryptography`."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


# A handler gets (method, path, headers, body) and answers (status, JSON value).
Handler = Callable[[str, str, dict, bytes], "tuple[int, object]"]


class TlsServer:
    """An HTTPS server on a free loopback port, its certificate signed by
    its own CA (`ca_pem`), answering every request with `handler`."""

    def __init__(self, handler: Handler):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("test CA", ca_key, ca=True)
        tls_key = ec.generate_private_key(ec.SECP256R1())
        tls_cert = _cert("127.0.0.1", tls_key, ca.subject, ca_key, ip="127.0.0.1")
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
        folder = Path(tempfile.mkdtemp(prefix="login-fixture-"))
        (folder / "cert.pem").write_bytes(tls_cert.public_bytes(serialization.Encoding.PEM))
        (folder / "key.pem").write_bytes(
            tls_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

        class Handle(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, value = handler(self.command, self.path, headers, body)
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


class Signer:
    """An RS256 key: signs JWTs, and shows itself as a JWK."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "py-" + uuid.uuid4().hex[:8]

    def jwk(self) -> dict:
        numbers = self.key.public_key().public_numbers()
        as_b64 = lambda n: b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))  # noqa: E731
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": as_b64(numbers.n), "e": as_b64(numbers.e)}

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)
