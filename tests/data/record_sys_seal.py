#!/usr/bin/env python3
"""Record how a real OpenBao 2.7.2 answers its seal-related HTTP endpoints.

Starts throwaway NON-dev `bao server` processes from config files in temp dirs
(127.0.0.1:8211 main, :8212 a second init for foreign shares, :8213/:8214 for
CLI output), drives them with urllib and the `bao` CLI, and writes
tests/data/openbao-2.7.2/sys-seal.json next to this script.

Usage: BAO=/path/to/bao python3 tests/data/record_sys_seal.py
(default BAO: .venv/bin/bao of the repo, else `bao` on PATH).
All keys and tokens recorded are from throwaway servers.
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "openbao-2.7.2", "sys-seal.json")

BAO = os.environ.get("BAO")
if not BAO:
    cand = os.path.join(REPO, ".venv", "bin", "bao")
    BAO = cand if os.path.exists(cand) else shutil.which("bao") or "bao"

KEEP_HEADERS = ("content-type", "cache-control", "strict-transport-security",
                "x-vault-raft-index", "location", "retry-after")

records = []
servers = []


def start_server(port):
    d = tempfile.mkdtemp(prefix=f"bao{port}-")
    cfg = os.path.join(d, "config.hcl")
    os.makedirs(os.path.join(d, "data"))
    # OpenBao 2.7.2 has no "file" storage ("unknown storage type file") and
    # warns "unknown or unsupported field disable_mlock": use single-node raft.
    with open(cfg, "w") as f:
        f.write(f'''storage "raft" {{
  path = "{d}/data"
  node_id = "node{port}"
}}
listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{port + 1000}"
  tls_disable = true
}}
api_addr = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{port + 1000}"
''')
    log = open(os.path.join(d, "server.log"), "w")
    p = subprocess.Popen([BAO, "server", "-config", cfg], stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    servers.append((p, d))
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/v1/sys/seal-status", timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except Exception:
            time.sleep(0.1)
    else:
        raise SystemExit(f"server on {port} did not come up")
    return base


def wait_active(base):
    """After unseal a raft node needs a moment to become leader/active."""
    for _ in range(300):
        st, _ = req(base, "", "GET", "sys/health", record=False)
        if st == 200:
            return
        time.sleep(0.1)
    raise SystemExit("node did not become active")


def stop_servers():
    for p, d in servers:
        try:
            os.killpg(p.pid, 15)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
        shutil.rmtree(d, ignore_errors=True)


def req(base, step, method, path, body=None, token=None, raw_body=None,
        record=True):
    url = base + "/v1/" + path
    data = None
    if raw_body is not None:
        data = raw_body.encode()
    elif body is not None:
        data = json.dumps(body).encode()
    r = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        r.add_header("X-Vault-Token", token)
    try:
        resp = urllib.request.urlopen(r, timeout=30)
        status, hdrs, text = resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, e.headers, e.read().decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    rec = {
        "step": step,
        "method": method,
        "path": "/v1/" + path,
        "token": token,
        "request": body if raw_body is None else raw_body,
        "status": status,
        "headers": {k.lower(): v for k, v in hdrs.items()
                    if k.lower() in KEEP_HEADERS},
        "raw_body": text,
        "response": parsed,
    }
    if record:
        records.append(rec)
    return status, parsed


def cli(base, step, args, stdin=None):
    env = dict(os.environ)
    env["BAO_ADDR"] = base
    for k in ("BAO_TOKEN", "VAULT_TOKEN", "VAULT_ADDR"):
        env.pop(k, None)
    env["HOME"] = tempfile.mkdtemp(prefix="baohome-")  # no ~/.vault-token
    p = subprocess.run([BAO] + args, env=env, capture_output=True, text=True,
                       input=stdin, timeout=60)
    records.append({
        "step": step,
        "command": "BAO_ADDR=" + base + " bao " + " ".join(args),
        "exit_code": p.returncode,
        "stdout": p.stdout,
        "stderr": p.stderr,
    })
    return p


def b64_to_hex(s):
    return base64.b64decode(s).hex()


def main():
    A = start_server(8211)
    B = start_server(8212)

    # ---------------- 1. uninitialized ----------------
    s = "1-uninit"
    req(A, s, "GET", "sys/health")
    req(A, s, "HEAD", "sys/health")
    req(A, s, "GET", "sys/health?uninitcode=299")
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "GET", "sys/init")
    req(A, s, "PUT", "sys/unseal", {"key": "abc"})
    req(A, s, "PUT", "sys/unseal", {})
    req(A, s, "PUT", "sys/seal")
    req(A, s, "PUT", "sys/seal", token="x")
    req(A, s, "GET", "transit/keys?list=true", token="x")
    req(A, s, "GET", "transit/keys?list=true")
    req(A, s, "GET", "sys/mounts", token="x")
    req(A, s, "POST", "sys/init", {})
    req(A, s, "POST", "sys/init", raw_body="not json")
    req(A, s, "POST", "sys/init", {"secret_shares": 3, "secret_threshold": 5})
    req(A, s, "POST", "sys/init", {"secret_shares": 3, "secret_threshold": 1})
    req(A, s, "POST", "sys/init", {"secret_shares": 0, "secret_threshold": 0})
    req(A, s, "POST", "sys/init", {"secret_shares": 0, "secret_threshold": 1})
    req(A, s, "POST", "sys/init", {"secret_shares": 1, "secret_threshold": 0})
    req(A, s, "POST", "sys/init", {"secret_shares": 300, "secret_threshold": 3})
    st, init = req(A, s, "POST", "sys/init",
                   {"secret_shares": 5, "secret_threshold": 3})
    assert st == 200, init
    keys_hex = init["keys"]
    keys_b64 = init["keys_base64"]
    root = init["root_token"]
    records.append({
        "step": s + "-note",
        "note": "init reply shape",
        "init_reply_fields": sorted(init.keys()),
        "key_hex_len_chars": [len(k) for k in keys_hex],
        "key_bytes": [len(base64.b64decode(k)) for k in keys_b64],
        "keys_hex_equals_b64_decoded": all(b64_to_hex(b) == h
                                          for b, h in zip(keys_b64, keys_hex)),
        "root_token_len": len(root),
    })

    # ---------------- 2. initialized + sealed ----------------
    s = "2-sealed"
    req(A, s, "GET", "sys/health")
    req(A, s, "HEAD", "sys/health")
    req(A, s, "GET", "sys/health?sealedcode=299")
    req(A, s, "GET", "sys/health?uninitcode=298")
    req(A, s, "GET", "sys/health?sealedcode=abc")
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "GET", "sys/init")
    req(A, s, "POST", "sys/init", {"secret_shares": 5, "secret_threshold": 3})
    req(A, s, "POST", "sys/init", {})
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="}, token=root)
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="})
    req(A, s, "GET", "transit/keys?list=true", token=root)
    req(A, s, "GET", "sys/mounts", token=root)
    req(A, s, "GET", "sys/mounts")
    req(A, s, "GET", "auth/token/lookup-self", token=root)
    req(A, s, "PUT", "sys/seal", token=root)
    req(A, s, "PUT", "sys/seal")

    # foreign init on B (5/3) for foreign shares
    st, initB = req(B, "3-foreign-init", "POST", "sys/init",
                    {"secret_shares": 5, "secret_threshold": 3})
    assert st == 200, initB

    # ---------------- 3. unseal ----------------
    s = "3-unseal"
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[0]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[0]})  # duplicate hex
    req(A, s, "PUT", "sys/unseal", {"key": keys_b64[0]})  # duplicate b64
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "PUT", "sys/unseal", {"reset": True})
    req(A, s, "PUT", "sys/unseal", {"key": keys_b64[0]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[1]})
    req(A, s, "PUT", "sys/unseal", {"key": "zzz"})
    req(A, s, "GET", "sys/seal-status")
    short = base64.b64encode(os.urandom(10)).decode()
    req(A, s, "PUT", "sys/unseal", {"key": short})
    req(A, s, "PUT", "sys/unseal", {"key": os.urandom(10).hex()})
    req(A, s, "PUT", "sys/unseal", {"key": base64.b64encode(os.urandom(70)).decode()})
    req(A, s, "PUT", "sys/unseal", {"key": ""})
    req(A, s, "PUT", "sys/unseal", {"reset": False})
    req(A, s, "PUT", "sys/unseal", {"key": 123})
    req(A, s, "PUT", "sys/unseal", raw_body="not json")
    req(A, s, "GET", "sys/seal-status")
    # third share from another init completes threshold
    req(A, s, "PUT", "sys/unseal", {"key": initB["keys_base64"][0]})
    req(A, s, "GET", "sys/seal-status")
    # random 33 bytes completing the threshold
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[0]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[1]})
    req(A, s, "PUT", "sys/unseal", {"key": base64.b64encode(os.urandom(33)).decode()})
    req(A, s, "GET", "sys/seal-status")
    # random 32 bytes as third share (root-key-length)
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[0]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[1]})
    req(A, s, "PUT", "sys/unseal", {"key": os.urandom(32).hex()})
    req(A, s, "GET", "sys/seal-status")
    # proper unseal
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[2]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_b64[3]})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[4]})
    # immediately after unseal (raft leader election may still be running)
    req(A, s + "-immediate", "GET", "sys/health")
    wait_active(A)

    # ---------------- 4. unsealed ----------------
    s = "4-unsealed"
    req(A, s, "GET", "sys/health")
    req(A, s, "HEAD", "sys/health")
    req(A, s, "GET", "sys/health?activecode=203")
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "GET", "sys/init")
    req(A, s, "POST", "sys/init", {"secret_shares": 5, "secret_threshold": 3})
    req(A, s, "PUT", "sys/unseal", {"key": keys_hex[0]})
    req(A, s, "PUT", "sys/unseal", {"key": "zzz"})
    req(A, s, "PUT", "sys/unseal", {"reset": True})
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "GET", "auth/token/lookup-self", token=root)
    req(A, s, "GET", "sys/mounts", token=root)
    req(A, s, "POST", "sys/mounts/transit", {"type": "transit"}, token=root)
    req(A, s, "POST", "transit/keys/k", {}, token=root)
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="}, token=root)
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="})
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="}, token="bogus")
    # a real but non-root token (default policy) tries to seal
    st, tok = req(A, s, "POST", "auth/token/create",
                  {"policies": ["default"], "no_default_policy": False}, token=root)
    nonroot = tok["auth"]["client_token"]
    req(A, s, "PUT", "sys/seal")
    req(A, s, "POST", "sys/seal", token="hvs.invalidtoken")
    req(A, s, "PUT", "sys/seal", token=nonroot)
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "PUT", "sys/seal", token=root)
    s = "4b-resealed"
    req(A, s, "GET", "sys/seal-status")
    req(A, s, "GET", "sys/health")
    req(A, s, "POST", "transit/encrypt/k", {"plaintext": "aGVsbG8="}, token=root)
    req(A, s, "GET", "transit/keys?list=true", token=root)
    req(A, s, "PUT", "sys/seal", token=root)
    # unseal again and check the transit key survived
    for k in keys_hex[:3]:
        req(A, s, "PUT", "sys/unseal", {"key": k})
    wait_active(A)
    req(A, s, "GET", "transit/keys?list=true", token=root)
    req(A, s, "POST", "sys/seal", token=root)
    req(A, s, "GET", "sys/seal-status")

    # ---------------- 5. CLI ----------------
    s = "5-cli"
    cli(A, s + "-status-sealed", ["status"])
    cli(A, s + "-status-sealed-json", ["status", "-format=json"])
    # partial unseal on A via CLI: table shows progress
    cli(A, s + "-unseal-partial", ["operator", "unseal", keys_hex[0]])
    cli(A, s + "-status-partial", ["status"])
    cli(A, s + "-unseal-bad", ["operator", "unseal", "zzz"])
    cli(A, s + "-unseal-reset", ["operator", "unseal", "-reset"])
    cli(A, s + "-unseal-partial-json", ["operator", "unseal", "-format=json", keys_b64[0]])
    cli(A, s + "-unseal-2", ["operator", "unseal", keys_hex[1]])
    cli(A, s + "-unseal-3", ["operator", "unseal", keys_hex[2]])
    wait_active(A)
    cli(A, s + "-status-unsealed", ["status"])
    cli(A, s + "-status-unsealed-json", ["status", "-format=json"])
    cli(A, s + "-unseal-while-unsealed", ["operator", "unseal", keys_hex[0]])
    cli(A, s + "-seal-notoken", ["operator", "seal"])
    p = subprocess.run([BAO, "operator", "seal"], env=dict(os.environ, BAO_ADDR=A,
                       BAO_TOKEN=root, HOME=tempfile.mkdtemp()), capture_output=True,
                       text=True)
    records.append({"step": s + "-seal-root", "command":
                    "BAO_ADDR=" + A + " BAO_TOKEN=<root> bao operator seal",
                    "exit_code": p.returncode, "stdout": p.stdout, "stderr": p.stderr})
    cli(A, s + "-status-resealed", ["status"])

    C = start_server(8213)
    cli(C, s + "-status-uninit", ["status"])
    cli(C, s + "-status-uninit-json", ["status", "-format=json"])
    cli(C, s + "-unseal-uninit", ["operator", "unseal", "abc"])
    p = cli(C, s + "-init-json-1-1",
            ["operator", "init", "-format=json", "-key-shares=1", "-key-threshold=1"])
    initC = json.loads(p.stdout)
    records.append({
        "step": s + "-note",
        "note": "1/1 init: share byte length",
        "key_bytes": [len(base64.b64decode(k)) for k in initC["unseal_keys_b64"]],
    })
    cli(C, s + "-init-again", ["operator", "init", "-key-shares=1", "-key-threshold=1"])
    cli(C, s + "-status-sealed-1-1", ["status"])
    cli(C, s + "-unseal-1-1", ["operator", "unseal", initC["unseal_keys_hex"][0]])
    wait_active(C)
    cli(C, s + "-status-unsealed-1-1", ["status"])

    D = start_server(8214)
    cli(D, s + "-init-status-uninit", ["operator", "init", "-status"])
    cli(D, s + "-init-table-1-1",
        ["operator", "init", "-key-shares=1", "-key-threshold=1"])
    cli(D, s + "-init-status", ["operator", "init", "-status"])

    # B: default CLI unseal of a 5/3 table + bao operator init -status sealed
    cli(B, s + "-init-status-initialized", ["operator", "init", "-status"])
    cli(B, s + "-unseal-b-1", ["operator", "unseal", initB["keys"][0]])
    cli(B, s + "-unseal-b-2",
        ["operator", "unseal", initB["keys"][1]])
    cli(B, s + "-unseal-b-foreign-third", ["operator", "unseal", keys_hex[2]])
    cli(B, s + "-status-after-failed-unseal", ["status"])
    cli("http://127.0.0.1:8299", s + "-status-no-server", ["status"])


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_servers()
        os.makedirs(os.path.dirname(OUT), exist_ok=True)
        with open(OUT, "w") as f:
            json.dump(records, f, indent=2)
            f.write("\n")
        print(f"wrote {len(records)} records to {OUT}", file=sys.stderr)
