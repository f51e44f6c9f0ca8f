#!/usr/bin/env bash
# Peak memory of a transitd server per MB of hostile request body, and how
# long sys/health takes meanwhile (issue 15, finding 2).
#
# For each body kind, a fresh release dev server gets COPIES requests at once
# (default 3) of about SIZE MiB each (default 31, under the 32 MiB limit),
# on an authenticated transit path (the largest budget), then one at the
# public limit on sys/unseal. Prints the server's peak RSS (VmHWM) above its
# idle RSS, per MiB of body sent, and the slowest sys/health answer.
# Usage: bash benches/hostile/request-memory.sh [SIZE_MiB] [COPIES]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib="${1:-31}"
copies="${2:-3}"
cargo build --release --bin transitd >/dev/null
exec python3 - "$size_mib" "$copies" <<'PY'
import http.client, os, socket, subprocess, sys, threading, time

SIZE = int(sys.argv[1]) << 20
COPIES = int(sys.argv[2])
BIN = "target/release/transitd"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def repeat(head, item, sep, tail, size):
    n = max(1, (size - len(head) - len(tail)) // (len(item) + len(sep)))
    return head + sep.join([item] * n) + tail

KINDS = [
    # name, body, content type
    ("array of 0", lambda s: repeat(b'{"a":[', b"0", b",", b"]}", s), "application/json"),
    ("array of {}", lambda s: repeat(b'{"a":[', b'{"":0}', b",", b"]}", s), "application/json"),
    ("tiny strings", lambda s: repeat(b'{"a":[', b'""', b",", b"]}", s), "application/json"),
    ("nesting", lambda s: b"[" * (s // 2) + b"]" * (s // 2), "application/json"),
    ("form a=&a=", lambda s: repeat(b"", b"a=", b"&", b"", s), "application/x-www-form-urlencoded"),
    ("one string", lambda s: b'{"a":"' + b"x" * (s - 8) + b'"}', "application/json"),
]

def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out

def post(port, path, body, ctype, token):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": ctype}
    if token:
        headers["X-Vault-Token"] = token
    c.request("POST", "/v1/" + path, body=body, headers=headers)
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, data[:100]

def health(port):
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", "/v1/sys/health"); c.getresponse().read(); c.close()
    return time.monotonic() - t

def run(name, body, ctype, path, token, copies):
    port = free_port()
    proc = subprocess.Popen([BIN, "server", "-dev", "-dev-root-token-id=root",
                             f"-dev-listen-address=127.0.0.1:{port}", "-log-level=error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                health(port); break
            except OSError:
                time.sleep(0.05)
        idle = status(proc.pid)["VmRSS"]
        replies, slowest, done = [], [0.0], threading.Event()
        def probe():
            while not done.is_set():
                slowest[0] = max(slowest[0], health(port)); time.sleep(0.01)
        prober = threading.Thread(target=probe); prober.start()
        senders = [threading.Thread(target=lambda: replies.append(post(port, path, body, ctype, token)))
                   for _ in range(copies)]
        for t in senders: t.start()
        for t in senders: t.join()
        done.set(); prober.join()
        peak = status(proc.pid)["VmHWM"] - idle
        sent = len(body) * copies / (1 << 20)
        codes = sorted({r[0] for r in replies})
        print(f"{name:14} {path:18} {copies} x {len(body)/(1<<20):5.1f} MiB  status {codes}  "
              f"peak +{peak/(1<<20):7.1f} MiB = {peak/(1<<20)/sent:5.2f} per MiB sent  "
              f"slowest sys/health {slowest[0]*1000:6.0f} ms")
    finally:
        proc.kill(); proc.wait()

print(f"transitd release, {COPIES} concurrent bodies of ~{SIZE>>20} MiB (VmHWM above idle RSS)")
for name, make, ctype in KINDS:
    run(name, make(SIZE), ctype, "transit/encrypt/k", "root", COPIES)
for name, make, ctype in KINDS[:3]:
    run(name, make(60 << 10), ctype, "sys/unseal", None, COPIES)
PY
