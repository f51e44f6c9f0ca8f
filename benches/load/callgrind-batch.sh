#!/usr/bin/env bash
# Instructions per batch item, counted by callgrind (unaffected by other work
# on the machine, unlike wall-clock benchmarks): a release transitd set up as
# benches/load/run.sh sets it up (SQLite storage, a file audit device, a
# policy-limited token) serves N batch encrypts of 250 x 64 B items under
# `valgrind --tool=callgrind`. Counters are zeroed after a warm-up and dumped
# after the N requests, so start-up is not counted.
#
#   bash benches/load/callgrind-batch.sh [N]      (default N = 40)
#
# TRANSITD_BIN=/path profiles that binary instead of building this tree.
# KEEP=DIR keeps the callgrind output in DIR (for callgrind_annotate).
# Prints: total instructions, instructions per item, and the top functions by
# inclusive and by own cost.
set -Eeuo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
py="$here/report.py"
# shellcheck source=lib.sh
source "$here/lib.sh"

requests=${1:-40}
[[ $requests =~ ^[1-9][0-9]*$ ]] || { echo "N must be a positive integer" >&2; exit 2; }
items=250
need valgrind
need callgrind_control
need callgrind_annotate
need curl
need python3

work="" pid=""
cleanup() {
  local rc=$?
  [[ -n $pid ]] && stop_pid "$pid"
  [[ -n $work && -d $work ]] && rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
work=$(mktemp -d "${TMPDIR:-/tmp}/transitd-callgrind.XXXXXX")
mkdir -p "$work/audit"

build_transitd
probe_mlock
read -r port < <(python3 "$py" free-ports 1)
addr="http://127.0.0.1:$port"
write_transitd_hcl "$work" "$port"

valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  "$transitd_bin" server -config="$work/transitd.hcl" > "$work/transitd.log" 2>&1 &
pid=$!
wait_ready transitd "$pid" "$addr/v1/sys/seal-status"

init=$(api POST "$addr" "" sys/init '{"secret_shares":1,"secret_threshold":1}')
unseal_key=$(jget keys_base64.0 <<<"$init")
root=$(jget root_token <<<"$init")
api POST "$addr" "" sys/unseal "{\"key\":\"$unseal_key\"}" >/dev/null
api PUT "$addr" "$root" sys/audit/file \
  "{\"type\":\"file\",\"options\":{\"file_path\":\"$work/audit/audit.log\"}}" >/dev/null
printf 'path "transit/encrypt/bench" { capabilities = ["update"] }\n' > "$work/app.hcl"
api PUT "$addr" "$root" sys/policies/acl/app "$(python3 "$py" policy-json < "$work/app.hcl")" >/dev/null
api POST "$addr" "$root" transit/keys/bench '{"type":"aes256-gcm96"}' >/dev/null
app=$(api POST "$addr" "$root" auth/token/create \
  '{"policies":["app"],"no_default_policy":true,"ttl":"24h"}' | jget auth.client_token)

# A fixed plaintext, so every run hashes and encrypts the same bytes.
python3 - > "$work/batch.json" <<'PY'
import base64, json
pt = base64.b64encode(bytes(range(64))).decode()
print(json.dumps({"batch_input": [{"plaintext": pt} for _ in range(250)]}), end="")
PY
batch() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 -X POST -H "X-Vault-Token: $app" \
    -H 'Content-Type: application/json' --data-binary "@$work/batch.json" "$addr/v1/transit/encrypt/bench")
  [[ $code == 200 ]] || die "batch encrypt answered HTTP $code"
}
for _ in 1 2 3; do batch; done
callgrind_control -z "$pid" >/dev/null
for _ in $(seq "$requests"); do batch; done
callgrind_control -d "$pid" >/dev/null
dump=$(ls "$work"/callgrind.out.* 2>/dev/null | sort -V | tail -n1)
[[ -n $dump ]] || die "callgrind wrote no dump"
total=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$dump" | head -n1 | awk '{print $1}')
echo "requests: $requests x $items items"
echo "instructions: $total"
echo "instructions per item: $((total / (requests * items)))"
if [[ -n ${KEEP:-} ]]; then
  mkdir -p "$KEEP"
  cp "$dump" "$KEEP/"
  echo "kept: $KEEP/$(basename "$dump")"
fi
# `head` closes the pipe early: not a failure.
echo "top functions by inclusive cost (recursive frames, marked ', count more than once):"
{ callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | sed -n '/^Ir/,$p' | grep -v "'[0-9]" | head -n 60; } || true
echo "top functions by their own cost:"
{ callgrind_annotate "$dump" 2>/dev/null | sed -n '/^Ir/,$p' | head -n 45; } || true
