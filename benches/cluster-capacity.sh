#!/usr/bin/env bash
# Numbers for docs/scaling.md: one release transitd node on the machine's
# PostgreSQL (a fresh schema), driven by wrk over loopback.
#   encrypt 64 B  - the hot path (memory only: no database work)
#   key config    - a key change (read + compare-and-swap + NOTIFY per request)
#   token create  - a new token (one insert + NOTIFY)
# Usage: bash benches/cluster-capacity.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --bin transitd >/dev/null
dir=$(mktemp -d)
schema="bench_$(date +%s)_$$"
port=18555
head -c 32 /dev/urandom > "$dir/unseal.key"
cat > "$dir/transitd.hcl" <<HCL
storage "postgresql" {
  connection_url = "postgres://postgres@127.0.0.1:5432/test"
  schema = "$schema"
}
listener "tcp" {
  address = "127.0.0.1:$port"
  tls_disable = true
}
disable_mlock = true
log_level = "warn"
seal "static" {
  current_key_id = "bench"
  current_key = "file://$dir/unseal.key"
}
HCL
./target/release/transitd server -config="$dir/transitd.hcl" > "$dir/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
addr="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$addr/v1/sys/seal-status" >/dev/null && break; sleep 0.1; done
root=$(curl -sf -X POST "$addr/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
curl -sf -H "X-Vault-Token: $root" -X POST "$addr/v1/transit/keys/bench" -d '{}' >/dev/null
cat > "$dir/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Vault-Token"] = os.getenv("TOKEN")
wrk.body = os.getenv("BODY")
LUA
run() { # name path body
  echo "== $1"
  TOKEN="$root" BODY="$3" wrk -t2 -c32 -d"${secs}s" --latency -s "$dir/post.lua" "$addr/v1/$2" \
    | grep -E "Requests/sec|Latency|50%|99%|Non-2xx" || true
}
pt=$(head -c 64 /dev/zero | base64 -w0)
run "encrypt 64 B (hot path, no database)" transit/encrypt/bench "{\"plaintext\":\"$pt\"}"
run "key config change (database write: read, compare-and-swap, notify)" transit/keys/bench/config '{"deletion_allowed":false}'
run "token create (database write: insert, notify)" auth/token/create '{"ttl":"10m"}'
echo "== database size after the runs"
psql -h 127.0.0.1 -U postgres -d test -Atc "SELECT count(*) || ' entries, ' || pg_size_pretty(sum(length(value))::bigint) FROM $schema.transitd_entries"
