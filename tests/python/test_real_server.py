"""A real transitd from a config file (SQLite storage, TLS, Shamir seal) driven
by the clients users already have: hvac with `verify=CA_PATH`, and the `bao`
CLI's operator commands."""

from __future__ import annotations

import base64
import datetime
import json
import ipaddress
import os
import subprocess
import time
from pathlib import Path

import hvac
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import _clean_env, _free_port, bao_bin, transitd_bin


def _write_pki(directory: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1; returns the CA's path."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "transitd test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory / "ca.pem"


class ConfigServer:
    def __init__(self, directory: Path, extra: str = ""):
        self.dir = directory
        self.ca = _write_pki(directory)
        self.port = _free_port()
        self.addr = f"https://127.0.0.1:{self.port}"
        self.config = directory / "transitd.hcl"
        self.config.write_text(
            f'storage "sqlite" {{\n  path = "{directory}/transitd.db"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{self.port}"\n'
            f'  tls_cert_file = "{directory}/cert.pem"\n  tls_key_file = "{directory}/key.pem"\n}}\n'
            "disable_mlock = true\n" + extra
        )
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [str(transitd_bin()), "server", f"-config={self.config}"],
            stdout=log, stderr=log, env=_clean_env(str(self.dir)),
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.dir / "server.log").read_text()
            try:
                requests.get(f"{self.addr}/v1/sys/seal-status", verify=str(self.ca), timeout=2)
                return
            except requests.exceptions.ConnectionError:
                time.sleep(0.05)
        pytest.fail("transitd did not start:\n" + (self.dir / "server.log").read_text())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def server(tmp_path):
    s = ConfigServer(tmp_path)
    s.start()
    yield s
    s.stop()


def test_hvac_over_tls_inits_unseals_and_survives_restart(server):
    client = hvac.Client(url=server.addr, verify=str(server.ca))
    assert client.sys.is_initialized() is False
    init = client.sys.initialize(secret_shares=3, secret_threshold=2)
    keys, root = init["keys"], init["root_token"]
    assert len(keys) == 3 and len(init["keys_base64"]) == 3
    assert client.sys.is_sealed() is True

    client.token = root
    with pytest.raises(hvac.exceptions.VaultDown):
        client.secrets.transit.encrypt_data("app", plaintext="aGk=")
    status = client.sys.submit_unseal_keys(keys[1:])
    assert status["sealed"] is False
    assert client.is_authenticated()

    client.secrets.transit.create_key("app")
    ct = client.secrets.transit.encrypt_data("app", plaintext="aGk=")["data"]["ciphertext"]

    client.sys.seal()
    assert client.sys.is_sealed() is True
    with pytest.raises(hvac.exceptions.VaultDown):
        client.secrets.transit.decrypt_data("app", ciphertext=ct)

    server.stop()
    server.start()
    client = hvac.Client(url=server.addr, token=root, verify=str(server.ca))
    assert client.sys.read_seal_status()["sealed"] is True
    client.sys.submit_unseal_key(keys[0])
    client.sys.submit_unseal_key(keys[2])
    assert client.secrets.transit.decrypt_data("app", ciphertext=ct)["data"]["plaintext"] == "aGk="


def test_tls_is_verified(server):
    # The system trust store does not know our CA: the handshake must fail.
    with pytest.raises(requests.exceptions.SSLError):
        hvac.Client(url=server.addr, verify=True).sys.read_seal_status()


def test_bao_cli_operator_commands_work_against_transitd(server):
    env = _clean_env(str(server.dir))
    env.update(BAO_ADDR=server.addr, BAO_CACERT=str(server.ca))

    def bao(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(bao_bin()), *args], env=env, capture_output=True, text=True)

    out = bao("operator", "init", "-status")
    assert (out.returncode, out.stdout.strip()) == (2, "Vault is not initialized")
    out = bao("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json")
    assert out.returncode == 0, out.stderr
    import json

    init = json.loads(out.stdout)
    keys = init["unseal_keys_b64"]
    assert len(keys) == 3 and init["root_token"].startswith("s.")
    out = bao("status")
    assert out.returncode == 2 and "Unseal Progress    0/2" in out.stdout, out.stdout
    out = bao("operator", "unseal", keys[0])
    assert out.returncode == 0 and "Unseal Progress    1/2" in out.stdout, out.stdout
    out = bao("operator", "unseal", keys[1])
    assert out.returncode == 0, out.stderr
    out = bao("status")
    assert out.returncode == 0, out.stdout
    env["BAO_TOKEN"] = init["root_token"]
    out = bao("operator", "seal")
    assert (out.returncode, out.stdout.strip()) == (0, "Success! Vault is sealed.")
    assert bao("status").returncode == 2


def test_hvac_logins_and_least_privilege(server):
    admin = hvac.Client(url=server.addr, verify=str(server.ca))
    init = admin.sys.initialize(secret_shares=1, secret_threshold=1)
    admin.sys.submit_unseal_keys(init["keys"])
    admin.token = init["root_token"]

    admin.sys.create_or_update_acl_policy(
        name="web", policy='path "transit/encrypt/web-*" { capabilities = ["update"] }'
    )
    assert "web" in admin.sys.list_acl_policies()["data"]["keys"]
    admin.secrets.transit.create_key("web-1")
    admin.sys.enable_auth_method("userpass")
    admin.sys.enable_auth_method("approle")
    assert "userpass/" in admin.sys.list_auth_methods()["data"]
    admin.auth.userpass.create_or_update_user("alice", password="s3cret-pw", policies=["web"])
    admin.auth.approle.create_or_update_approle("ci", token_policies=["web"], secret_id_ttl="10m")
    role_id = admin.auth.approle.read_role_id("ci")["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("ci")["data"]["secret_id"]

    clients = []
    user = hvac.Client(url=server.addr, verify=str(server.ca))
    user.auth.userpass.login("alice", "s3cret-pw")
    clients.append(user)
    app = hvac.Client(url=server.addr, verify=str(server.ca))
    app.auth.approle.login(role_id=role_id, secret_id=secret_id)
    clients.append(app)
    for c in clients:
        assert c.is_authenticated()
        ct = c.secrets.transit.encrypt_data("web-1", plaintext="aGk=")["data"]["ciphertext"]
        with pytest.raises(hvac.exceptions.Forbidden):
            c.secrets.transit.decrypt_data("web-1", ciphertext=ct)
        with pytest.raises(hvac.exceptions.Forbidden):
            c.secrets.transit.rotate_key("web-1")
        with pytest.raises(hvac.exceptions.Forbidden):
            c.secrets.transit.encrypt_data("db-1", plaintext="aGk=")

    bad = hvac.Client(url=server.addr, verify=str(server.ca))
    with pytest.raises(hvac.exceptions.InvalidRequest):
        bad.auth.userpass.login("alice", "wrong")

    # Tokens: create, look up, revoke (children with their parent).
    child = admin.auth.token.create(policies=["web"], ttl="1h")["auth"]
    looked = admin.auth.token.lookup(child["client_token"])["data"]
    assert looked["policies"] == ["default", "web"]
    admin.auth.token.revoke(child["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(url=server.addr, token=child["client_token"], verify=str(server.ca)).auth.token.lookup_self()


def test_hvac_read_key_shows_a_rotation_that_fell_due_while_the_server_was_down(server):
    """Auto-rotation through hvac: a key whose period passed while the server was
    down (here: restored from a backup made two hours ago) has a new version as
    soon as the server is unsealed again, without waiting for the upkeep."""
    client = hvac.Client(url=server.addr, verify=str(server.ca))
    init = client.sys.initialize(secret_shares=1, secret_threshold=1)
    client.sys.submit_unseal_keys(init["keys"])
    client.token = init["root_token"]
    transit = client.secrets.transit

    transit.create_key("made", exportable=True, allow_plaintext_backup=True)
    doc = json.loads(base64.b64decode(transit.backup_key("made")["data"]["backup"]))
    two_hours_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    for entry in doc["policy"]["keys"].values():
        entry["time"] = two_hours_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        entry["creation_time"] = int(two_hours_ago.timestamp())
    doc["policy"]["auto_rotate_period"] = 3600 * 10**9  # Go nanoseconds
    backup = base64.b64encode(json.dumps(doc).encode()).decode()
    transit.restore_key(backup, name="due")
    key = transit.read_key("due")["data"]
    assert (key["latest_version"], key["auto_rotate_period"]) == (1, 3600)

    client.sys.seal()
    client.sys.submit_unseal_keys(init["keys"])
    deadline = time.time() + 10
    while transit.read_key("due")["data"]["latest_version"] == 1 and time.time() < deadline:
        time.sleep(0.05)
    key = transit.read_key("due")["data"]
    assert key["latest_version"] == 2 and set(key["keys"]) == {"1", "2"}
    # The new version starts a new period: nothing else is due.
    assert transit.read_key("made")["data"]["latest_version"] == 1
