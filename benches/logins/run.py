#!/usr/bin/env python3
"""Logins per second, per method: transitd against OpenBao 2.7.2, same work.

    python3 benches/logins/run.py [--rounds N] [--duration S] [--connections C]

Both servers record every request in a file audit device (transitd's enabled
through the API, OpenBao's declared in its -config, the only way OpenBao 2.x
takes one) and answer logins of five kinds:

  userpass      a password (transitd: Argon2id; OpenBao: bcrypt)
  approle       a role ID and secret ID
  jwt-static    a JWT checked against jwt_validation_pubkeys
  jwt-jwks      a JWT checked against a JWKS fetched over HTTPS (cached)
  kubernetes    a service-account JWT confirmed by TokenReview over HTTPS

The JWKS and the TokenReview API are one local HTTPS server (Python,
threaded; tests/python/login_fixtures.py), the same for both servers: the
kubernetes row measures that fixture too, and says so.

transitd runs twice: as deployed (SQLite, an fsync per token written, Shamir
1/1) and in dev mode (in memory), the same work as OpenBao's dev server (in
memory); the ratio is between the two dev servers. wrk drives each (method, server)
pair for --duration seconds, alternating the servers, --rounds times; the
report gives the median logins/s, p50 and p99 and the ratio, and is written to
benches/logins/results/<timestamp>.md.

TRANSITD_BIN=/path measures that binary (else a release build of this tree);
BAO_BIN=/path the OpenBao binary (else .venv/bin/bao, installed by
scripts/test-all.sh). Needs wrk (apt-get install wrk).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "python"))
from cryptography.hazmat.primitives import serialization  # noqa: E402
from login_fixtures import Signer, TlsServer  # noqa: E402

METHODS = ["userpass", "approle", "jwt-static", "jwt-jwks", "kubernetes"]
REVIEWER = "reviewer-" + uuid.uuid4().hex
LUA = HERE / "login.lua"
COMMON_LUA_DIR = REPO / "benches" / "load" / "lua"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(addr: str, token: str | None, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Vault-Token"] = token
    req = urllib.request.Request(f"{addr}/v1/{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {addr}/v1/{path}: HTTP {e.code}: {e.read().decode(errors='replace')}")
    return json.loads(raw) if raw else {}


def wait_ready(proc: subprocess.Popen, addr: str, log: Path) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited during start-up:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            urllib.request.urlopen(f"{addr}/v1/sys/seal-status", timeout=2).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    sys.exit(f"no answer from {addr} within 60 s")


class Fixture:
    """The issuer's JWKS and the Kubernetes API server's TokenReview, on one
    HTTPS server; tokens it signed are the service accounts it knows."""

    def __init__(self):
        self.signer = Signer()
        self.issued: dict[str, tuple[str, str, str]] = {}
        self.server = TlsServer(self.handle)

    def handle(self, method, path, headers, body):
        if (method, path) == ("GET", "/jwks"):
            return 200, {"keys": [self.signer.jwk()]}
        if (method, path) == ("POST", "/apis/authentication.k8s.io/v1/tokenreviews"):
            if headers.get("authorization") != f"Bearer {REVIEWER}":
                return 401, {"kind": "Status", "status": "Failure", "code": 401}
            spec = json.loads(body)["spec"]
            account = self.issued.get(spec["token"])
            if account is None:
                status = {"authenticated": False, "error": "invalid bearer token"}
            else:
                ns, name, uid = account
                status = {"authenticated": True, "audiences": spec.get("audiences") or [],
                          "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid}}
            return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                         "spec": spec, "status": status}
        return 404, {}

    def ci_jwt(self) -> str:
        now = int(time.time())
        return self.signer.sign({"iss": "https://ci.example", "aud": "bench", "sub": "repo:bench",
                                 "iat": now, "nbf": now, "exp": now + 3600})

    def pod_jwt(self) -> str:
        now = int(time.time())
        uid = str(uuid.uuid4())
        jwt = self.signer.sign({
            "iss": "https://kubernetes.default.svc", "aud": ["vault"], "iat": now, "nbf": now,
            "exp": now + 3600, "sub": "system:serviceaccount:bench:app",
            "kubernetes.io": {"namespace": "bench", "serviceaccount": {"name": "app", "uid": uid}},
        })
        self.issued[jwt] = ("bench", "app", uid)
        return jwt


def set_up_logins(addr: str, root: str, fx: Fixture) -> dict[str, tuple[str, dict]]:
    """Enable and configure each method; returns method -> (login path, body)."""
    call(addr, root, "PUT", "sys/policies/acl/bench", {"policy": 'path "transit/encrypt/bench" { capabilities = ["update"] }'})
    for path, kind in [("userpass", "userpass"), ("approle", "approle"), ("jwt-static", "jwt"),
                       ("jwt-jwks", "jwt"), ("kubernetes", "kubernetes")]:
        call(addr, root, "POST", f"sys/auth/{path}", {"type": kind})
    call(addr, root, "POST", "auth/userpass/users/bench", {"password": "bench-password", "token_policies": "bench"})
    call(addr, root, "POST", "auth/approle/role/bench", {"token_policies": "bench"})
    role_id = call(addr, root, "GET", "auth/approle/role/bench/role-id")["data"]["role_id"]
    secret_id = call(addr, root, "POST", "auth/approle/role/bench/secret-id")["data"]["secret_id"]
    pem = fx.signer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    role = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": "bench", "token_policies": "bench"}
    call(addr, root, "POST", "auth/jwt-static/config", {"jwt_validation_pubkeys": [pem], "bound_issuer": "https://ci.example"})
    call(addr, root, "POST", "auth/jwt-static/role/bench", role)
    call(addr, root, "POST", "auth/jwt-jwks/config", {"jwks_url": f"{fx.server.url}/jwks", "jwks_ca_pem": fx.server.ca_pem,
                                                      "bound_issuer": "https://ci.example"})
    call(addr, root, "POST", "auth/jwt-jwks/role/bench", role)
    call(addr, root, "POST", "auth/kubernetes/config", {"kubernetes_host": fx.server.url,
                                                        "kubernetes_ca_cert": fx.server.ca_pem,
                                                        "token_reviewer_jwt": REVIEWER})
    call(addr, root, "POST", "auth/kubernetes/role/bench", {
        "bound_service_account_names": "app", "bound_service_account_namespaces": "bench",
        "audience": "vault", "token_policies": "bench"})
    logins = {
        "userpass": ("auth/userpass/login/bench", {"password": "bench-password"}),
        "approle": ("auth/approle/login", {"role_id": role_id, "secret_id": secret_id}),
        "jwt-static": ("auth/jwt-static/login", {"role": "bench", "jwt": fx.ci_jwt()}),
        "jwt-jwks": ("auth/jwt-jwks/login", {"role": "bench", "jwt": fx.ci_jwt()}),
        "kubernetes": ("auth/kubernetes/login", {"role": "bench", "jwt": fx.pod_jwt()}),
    }
    for method, (path, body) in logins.items():  # each works once before it is measured
        if not call(addr, None, "POST", path, body).get("auth", {}).get("client_token"):
            sys.exit(f"{method} login on {addr} gave no token")
    return logins


def start_transitd(binary: str, work: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    (work / "transitd").mkdir()
    config = work / "transitd" / "transitd.hcl"
    config.write_text(
        f'storage "sqlite" {{\n  path = "{work}/transitd/transitd.db"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        "disable_mlock = true\n")
    log = work / "transitd" / "server.log"
    proc = subprocess.Popen([binary, "server", f"-config={config}"], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(proc, addr, log)
    init = call(addr, None, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1})
    call(addr, None, "PUT", "sys/unseal", {"key": init["keys"][0]})
    root = init["root_token"]
    call(addr, root, "PUT", "sys/audit/file", {"type": "file", "options": {"file_path": f"{work}/transitd/audit.log"}})
    return proc, addr, root


def start_transitd_dev(binary: str, work: Path, name: str = "transitd-dev",
                       audit_options: dict | None = None) -> tuple[subprocess.Popen, str, str]:
    """`transitd server -dev`: in memory, as OpenBao's dev server (the same work).

    Its file audit device is in `work/name/`, with `audit_options` besides
    `file_path` (benches/durability: `durability=background`)."""
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    (work / name).mkdir()
    log = work / name / "server.log"
    proc = subprocess.Popen([binary, "server", "-dev", "-dev-root-token-id=root",
                             f"-dev-listen-address=127.0.0.1:{port}"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_ready(proc, addr, log)
    options = {"file_path": f"{work}/{name}/audit.log", **(audit_options or {})}
    call(addr, "root", "PUT", "sys/audit/file", {"type": "file", "options": options})
    return proc, addr, "root"


def start_openbao(binary: str, work: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    (work / "openbao").mkdir()
    config = work / "openbao" / "audit.hcl"
    config.write_text(f'audit "file" "file" {{\n  options {{\n    file_path = "{work}/openbao/audit.log"\n  }}\n}}\n')
    log = work / "openbao" / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(work / "openbao")
    proc = subprocess.Popen([binary, "server", "-dev", "-dev-root-token-id=root",
                             f"-dev-listen-address=127.0.0.1:{port}", f"-config={config}"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    wait_ready(proc, addr, log)
    return proc, addr, "root"


def wrk(addr: str, path: str, body: dict, seconds: int, connections: int, work: Path,
        token: str | None = None) -> dict:
    """One wrk run POSTing `body` to `path`: a login without a token, or with
    `token` any request (benches/load's request.lua)."""
    body_file = work / f"body-{uuid.uuid4().hex}.json"
    body_file.write_text(json.dumps(body))
    env = dict(os.environ, LOAD_LUA_DIR=str(COMMON_LUA_DIR), LOAD_BODY_FILE=str(body_file))
    lua = LUA
    if token is not None:
        env["LOAD_TOKEN"] = token
        lua = COMMON_LUA_DIR / "request.lua"
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua), f"{addr}/v1/{path}"],
                         env=env, capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("WRK_JSON "))
    result = json.loads(line[len("WRK_JSON "):])
    failed = sum(result["errors"].values())
    if failed:
        sys.exit(f"{addr}/v1/{path}: {failed} failed requests of {result['requests']}: {result['errors']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    transitd = os.environ.get("TRANSITD_BIN")
    if not transitd:
        subprocess.run(["cargo", "build", "--release", "--bin", "transitd"], cwd=REPO, check=True)
        transitd = str(REPO / "target" / "release" / "transitd")
    bao = os.environ.get("BAO_BIN") or str(REPO / ".venv" / "bin" / "bao")

    work = Path(tempfile.mkdtemp(prefix="transitd-logins-"))
    fx = Fixture()
    servers = {}
    try:
        servers["transitd"] = start_transitd(transitd, work)
        servers["transitd-dev"] = start_transitd_dev(transitd, work)
        servers["OpenBao"] = start_openbao(bao, work)
        logins = {name: set_up_logins(addr, root, fx) for name, (_, addr, root) in servers.items()}
        runs: dict[tuple[str, str], list[dict]] = {}
        for round_ in range(args.rounds):
            for method in METHODS:
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))  # alternated
                for name in order:
                    path, body = logins[name][method]
                    r = wrk(servers[name][1], path, body, args.duration, args.connections, work)
                    runs.setdefault((method, name), []).append(r)
                    print(f"round {round_ + 1} {method:11} {name:8} {r['requests'] / (r['duration_us'] / 1e6):9.0f} logins/s",
                          flush=True)
        report(args, transitd, bao, runs)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        fx.server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(args, transitd: str, bao: str, runs) -> None:
    def rate(r):
        return r["requests"] / (r["duration_us"] / 1e6)

    def median(method, name, f):
        return statistics.median(f(r) for r in runs[(method, name)])

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    lines = [
        f"# Logins per second, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python3 benches/logins/run.py --rounds {args.rounds} --duration {args.duration} --connections {args.connections}`"
        f" at {commit}; transitd: `{transitd}`; OpenBao: `{bao}` (2.7.2).",
        f"wrk -t1 -c{args.connections}, {args.rounds} alternated rounds of {args.duration} s; medians. Both servers write a"
        " file audit device; transitd once on SQLite (durable) and once in dev mode (in memory, as OpenBao's dev server): the ratio compares the two dev servers.",
        "The kubernetes row includes a TokenReview call to a Python HTTPS fixture per login, on both sides.",
        "",
        "| method | transitd (SQLite) | transitd -dev | OpenBao -dev | -dev ratio | p50 / p99 ms: transitd, transitd -dev, OpenBao |",
        "|---|---:|---:|---:|---:|---|",
    ]
    names = ("transitd", "transitd-dev", "OpenBao")
    for m in METHODS:
        rates = {n: median(m, n, rate) for n in names}
        lat = {n: f"{median(m, n, lambda r: r['latency_us']['p50']) / 1000:.2f} / "
                  f"{median(m, n, lambda r: r['latency_us']['p99']) / 1000:.2f}" for n in names}
        lines.append(f"| {m} | {rates['transitd']:,.0f} | {rates['transitd-dev']:,.0f} | {rates['OpenBao']:,.0f} | "
                     f"{rates['transitd-dev'] / rates['OpenBao']:.1f}x | {lat['transitd']}; {lat['transitd-dev']}; {lat['OpenBao']} |")
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
