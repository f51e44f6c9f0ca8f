"""hvac's and the bao CLI's TLS certificate login against a real transitd
listening with TLS: hvac writes a CA entry (`auth/cert/certs/web`), then
clients present certificates made with `cryptography`."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import _clean_env, bao_bin
from test_real_server import ConfigServer


class ClientCa:
    """A CA that issues client certificates into `directory`."""

    def __init__(self, directory: Path, name: str):
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, cn: str) -> tuple[str, str]:
        """A client certificate for `cn`: the paths of its PEM and key."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.dir / f"{cn}.pem", self.dir / f"{cn}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(cert_path), str(key_path)


@pytest.fixture
def unsealed(tmp_path):
    server = ConfigServer(tmp_path)
    server.start()
    client = hvac.Client(url=server.addr, verify=str(server.ca))
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    client.token = init["root_token"]
    yield server, client
    server.stop()


def test_hvac_and_bao_log_in_with_a_client_certificate(unsealed, tmp_path):
    server, admin = unsealed
    ca = ClientCa(tmp_path, "apps CA")
    admin.sys.enable_auth_method("cert")
    admin.auth.cert.create_ca_certificate_role(
        name="web",
        certificate=ca.pem,
        allowed_common_names=["app-*"],
        token_policies=["web"],
        display_name="web",
    )
    assert admin.auth.cert.read_ca_certificate_role("web")["data"]["allowed_common_names"] == ["app-*"]

    cert, key = ca.issue("app-1")
    client = hvac.Client(url=server.addr, verify=str(server.ca))
    auth = client.auth.cert.login(name="web", cert_pem=cert, key_pem=key)["auth"]
    assert auth["metadata"]["cert_name"] == "web"
    assert auth["metadata"]["common_name"] == "app-1"
    assert sorted(auth["policies"]) == ["default", "web"]
    assert client.is_authenticated()
    assert client.lookup_token()["data"]["display_name"] == "cert-web"

    # A name the entry does not allow; a CA it does not know.
    other_cert, other_key = ca.issue("db-1")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="no chain matching all constraints"):
        hvac.Client(url=server.addr, verify=str(server.ca)).auth.cert.login(
            cert_pem=other_cert, key_pem=other_key
        )
    (tmp_path / "stranger").mkdir()
    # Same name, other key: not the trusted CA.
    stranger = ClientCa(tmp_path / "stranger", "apps CA")
    s_cert, s_key = stranger.issue("app-2")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid certificate"):
        hvac.Client(url=server.addr, verify=str(server.ca)).auth.cert.login(
            cert_pem=s_cert, key_pem=s_key
        )

    # The README's example: the bao CLI writes an entry and logs in with it.
    env = _clean_env(str(tmp_path)) | {"BAO_ADDR": server.addr, "BAO_CACERT": str(server.ca)}
    ca_path = tmp_path / "apps-ca.pem"
    ca_path.write_text(ca.pem)

    def bao(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(bao_bin()), *args], env=env | ({"BAO_TOKEN": token} if token else {}),
            capture_output=True, text=True, timeout=60,
        )

    out = bao("write", "auth/cert/certs/apps", f"certificate=@{ca_path}",
              "allowed_common_names=app-*", "token_policies=apps", "token_ttl=1h", token=admin.token)
    assert out.returncode == 0, out.stderr
    out = bao("login", "-method=cert", f"-client-cert={cert}", f"-client-key={key}",
              "-format=json", "name=apps")
    assert out.returncode == 0, out.stderr
    assert '"cert_name": "apps"' in out.stdout

    # Trust revoked: the entry deleted, no more logins.
    admin.auth.cert.delete_certificate_role("web")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid certificate"):
        hvac.Client(url=server.addr, verify=str(server.ca)).auth.cert.login(
            name="web", cert_pem=cert, key_pem=key
        )
