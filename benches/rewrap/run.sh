#!/usr/bin/env bash
# `transitd rewrap` items/s against transitd and against OpenBao 2.7.2, the
# same file and the same CLI: N ciphertexts of a key, the key rotated, then
# rewrapped in batches of 250 over 4 connections. Both servers in dev mode
# (in memory, root token, no audit device), one after the other.
#
#   bash benches/rewrap/run.sh [ITEMS]     (default 100000)
#
# SERVER_BIN: the transitd that serves (default: this tree's release build);
# CLI_BIN: the transitd whose `rewrap` runs (default: the same). BAO: the
# OpenBao binary (default .venv/bin/bao).
set -Eeuo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
items=${1:-100000}
if [[ -z ${SERVER_BIN:-} ]]; then
  (cd "$repo" && cargo build --release --bin transitd)
  SERVER_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/transitd"
fi
CLI_BIN=${CLI_BIN:-$SERVER_BIN}
BAO=${BAO:-$repo/.venv/bin/bao}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 300); do curl -sf "$1/v1/sys/health" >/dev/null && return; sleep 0.1; done; echo "no server at $1" >&2; exit 1; }

measure() { # name addr
  local name=$1 addr=$2
  curl -sf -H "X-Vault-Token: root" -X POST "$addr/v1/transit/keys/bench" -o /dev/null
  # Ciphertexts, 200 a request (OpenBao refuses more than 1,000 strings).
  python3 - "$addr" "$items" > "$work/$name.in" <<'PY'
import base64, json, sys, urllib.request
addr, n = sys.argv[1], int(sys.argv[2])
pt = base64.b64encode(b"x" * 64).decode()
for start in range(0, n, 200):
    body = json.dumps({"batch_input": [{"plaintext": pt}] * min(200, n - start)}).encode()
    req = urllib.request.Request(f"{addr}/v1/transit/encrypt/bench", body, {"X-Vault-Token": "root"}, method="POST")
    for r in json.load(urllib.request.urlopen(req))["data"]["batch_results"]:
        print(r["ciphertext"])
PY
  curl -sf -H "X-Vault-Token: root" -X POST "$addr/v1/transit/keys/bench/rotate" -o /dev/null
  VAULT_ADDR=$addr VAULT_TOKEN=root "$CLI_BIN" rewrap -key=bench "$work/$name.in" "$work/$name.out" 2>&1 | tail -n 1 | sed "s/^/$name: /"
  [[ $(grep -c '^vault:v2:' "$work/$name.out") == "$items" ]] || { echo "$name: not every item rewrapped" >&2; exit 1; }
}

tport=$(port); bport=$(port)
"$SERVER_BIN" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$tport" > "$work/transitd.log" 2>&1 &
pids+=($!)
HOME=$work "$BAO" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$bport" > "$work/bao.log" 2>&1 &
pids+=($!)
wait_up "http://127.0.0.1:$tport"; wait_up "http://127.0.0.1:$bport"
curl -sf -H "X-Vault-Token: root" -X POST "http://127.0.0.1:$bport/v1/sys/mounts/transit" -d '{"type":"transit"}'
echo "$items items, batches of 250, 4 connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure transitd "http://127.0.0.1:$tport"
measure openbao "http://127.0.0.1:$bport"
