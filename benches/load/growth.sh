#!/usr/bin/env bash
# Growth: what more keys and more key versions cost a release transitd run as
# in production: encrypt throughput, latency, server CPU per request and
# memory with 1, 10,000 and 100,000 keys and with 1 and 1,000 versions in one
# key, key creation and rotation rates, and start-up (unseal) time.
#
#   bash benches/load/growth.sh [--duration S] [--rounds N] [--connections C]
#                               [--threads T] [--warmup S] [--levels 1,10000,100000]
#                               [--versions 1000] [--create-concurrency K]
#                               [--only keys,versions]
#
# Defaults: 3 rounds, 10 s per case, 32 connections, 2 wrk threads, 1 s
# warm-up, key counts 1,10000,100000, 1000 versions, 16 connections creating
# keys. CARGO_TARGET_DIR picks cargo's target dir (default: the repository's
# target/); TRANSITD_BIN=/path/to/transitd skips the build. The report goes to
# benches/load/results/growth-<UTC timestamp>.md and .json; see
# benches/load/README.md ("Growth") for what is measured.
set -Eeuo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd -- "$here/../.." && pwd)
py="$here/report.py"
gpy="$here/growth.py"
lua_dir="$here/lua"
# Shared helpers: stop_pid die need build_transitd wait_ready api jget probe_mlock write_transitd_hcl
# shellcheck source=lib.sh
source "$here/lib.sh"

command_line=$(quoted_command benches/load/growth.sh "$@")

rounds=3 duration=10 connections=32 threads=2 warmup=1 levels_arg=1,10000,100000 versions=1000
create_concurrency=16 only=keys,versions
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
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
    --levels) levels_arg=${2:?}; shift 2 ;;
    --levels=*) levels_arg=${1#*=}; shift ;;
    --versions) versions=${2:?}; shift 2 ;;
    --versions=*) versions=${1#*=}; shift ;;
    --create-concurrency) create_concurrency=${2:?}; shift 2 ;;
    --create-concurrency=*) create_concurrency=${1#*=}; shift ;;
    --only) only=${2:?}; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in rounds duration connections threads versions create_concurrency; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "--${v//_/-} must be a positive integer, not '${!v}'" >&2; exit 2; }
done
[[ $warmup =~ ^[0-9]+$ ]] || { echo "--warmup must be an integer >= 0" >&2; exit 2; }
((connections >= threads)) || { echo "--connections must be >= --threads" >&2; exit 2; }
((versions >= 2)) || { echo "--versions must be at least 2" >&2; exit 2; }
IFS=, read -r -a levels <<<"$levels_arg"
prev=0
for l in "${levels[@]}"; do
  [[ $l =~ ^[1-9][0-9]*$ ]] && ((l > prev)) || { echo "--levels must be increasing positive integers, not '$levels_arg'" >&2; exit 2; }
  prev=$l
done
((levels[0] == 1)) || { echo "--levels must start at 1 (the baseline of the ratios)" >&2; exit 2; }
do_keys=0 do_versions=0
IFS=, read -r -a phases <<<"$only"
for p in "${phases[@]}"; do
  case $p in
    keys) do_keys=1 ;;
    versions) do_versions=1 ;;
    *) echo "unknown phase in --only: $p (known: keys versions)" >&2; exit 2 ;;
  esac
done

# ------------------------------------------------------------ cleanup & errors
work="" srv_pid="" srv_dir="" audit_n=0 audit_total_bytes=0

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $srv_pid ]] && stop_pid "$srv_pid"
  [[ -n $work && -d $work ]] && rm -rf -- "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted: stopping the server and removing temp files" >&2; exit 130' INT TERM

command -v wrk >/dev/null || die "wrk is needed: apt-get install -y wrk"
need curl
need python3
need setsid
[[ -n ${TRANSITD_BIN:-} ]] || need cargo

work=$(mktemp -d "${TMPDIR:-/tmp}/transitd-growth.XXXXXX")
mkdir -p "$work/bodies" "$work/runs"
facts=$work/facts.jsonl
: > "$facts"

# -------------------------------------------------------------------- build
build_transitd

probe_mlock
echo "== $mlock_note"

# ------------------------------------------------------------------ servers
check_disk() { # secs: the audit log takes ~50 MiB per second of load; key creation a few hundred MiB
  local avail need_kib=$(((1024 + 100 * $1) * 1024))
  avail=$(df -Pk "$work" | awk 'NR==2 {print $4}')
  ((avail > need_kib)) || die "less than $((need_kib / 1024)) MiB free under $work: the transitd audit log needs room (set TMPDIR elsewhere)"
}

audit_file() { printf '%s' "$srv_dir/audit/audit$audit_n.log"; }
audit_size() { stat -c %s "$(audit_file)"; }

# A new audit device on a new file, then the previous device disabled and its
# file deleted: every measured run writes its own log, so the disk holds one
# run's log at a time instead of the whole run's (~50 MiB per second of load).
rotate_audit() {
  local old=$audit_n new=$((audit_n + 1)) f
  api PUT "$srv_addr" "$srv_root" "sys/audit/file$new" \
    "{\"type\":\"file\",\"options\":{\"file_path\":\"$srv_dir/audit/audit$new.log\"}}" >/dev/null
  if ((old > 0)); then
    api DELETE "$srv_addr" "$srv_root" "sys/audit/file$old" >/dev/null
    f=$srv_dir/audit/audit$old.log
    audit_total_bytes=$((audit_total_bytes + $(stat -c %s "$f")))
    rm -f -- "$f" "$f.checkpoint"
  fi
  audit_n=$new
}

# start_fresh NAME: a new transitd in $work/NAME, as run.sh starts it (sqlite,
# Shamir 1/1 unsealed through the API, file audit device, mlock as probed),
# with a non-root application token (srv_app) whose policy allows exactly the
# requests measured here.
start_fresh() {
  local name=$1 init sealed code
  srv_dir=$work/$name
  mkdir -p "$srv_dir/audit"
  srv_port=$(python3 "$py" free-ports 1)
  srv_addr=http://127.0.0.1:$srv_port
  srv_log=$work/transitd-$name.log
  write_transitd_hcl "$srv_dir" "$srv_port"
  echo "== starting a fresh transitd ($name) on $srv_addr"
  setsid "$transitd_bin" server -config="$srv_dir/transitd.hcl" >> "$srv_log" 2>&1 &
  srv_pid=$!
  wait_ready transitd "$srv_pid" "$srv_addr/v1/sys/seal-status"
  init=$(api POST "$srv_addr" "" sys/init '{"secret_shares":1,"secret_threshold":1}')
  srv_unseal=$(jget keys_base64.0 <<<"$init")
  srv_root=$(jget root_token <<<"$init")
  sealed=$(api POST "$srv_addr" "" sys/unseal "{\"key\":\"$srv_unseal\"}" | jget sealed)
  [[ $sealed == False || $sealed == false ]] || die "transitd still sealed after the unseal"
  audit_n=0
  rotate_audit
  cat > "$srv_dir/growth-app.hcl" <<'HCL'
path "transit/encrypt/k*"   { capabilities = ["update"] }
path "transit/encrypt/ver"  { capabilities = ["update"] }
path "transit/decrypt/ver"  { capabilities = ["update"] }
HCL
  api PUT "$srv_addr" "$srv_root" sys/policies/acl/growth-app "$(python3 "$py" policy-json < "$srv_dir/growth-app.hcl")" >/dev/null
  srv_app=$(api POST "$srv_addr" "$srv_root" auth/token/create \
    '{"policies":["growth-app"],"no_default_policy":true,"ttl":"24h","display_name":"growth-app"}' | jget auth.client_token)
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "X-Vault-Token: $srv_app" "$srv_addr/v1/transit/keys/k0/rotate")
  [[ $code == 403 ]] || die "the application token was not refused a key rotation (HTTP $code): it is not least privilege"
}

stop_server() {
  [[ -n $srv_pid ]] || return 0
  stop_pid "$srv_pid"
  srv_pid=""
  [[ -e $(audit_file) ]] && audit_total_bytes=$((audit_total_bytes + $(audit_size)))
  return 0
}

mem() { # phase level when
  python3 "$gpy" mem --pid "$srv_pid" --phase "$1" --level "$2" --when "$3" >> "$facts" || die "cannot read /proc/$srv_pid/status"
}
storage() { # phase level
  python3 "$gpy" storage --db "$srv_dir/transitd.db" --phase "$1" --level "$2" >> "$facts" || die "cannot read the SQLite storage"
}

# restart LEVEL I: stop the server, start it on the same storage and time it:
# here the first HTTP answer (curl in a tight loop), in growth.py the unseal
# call and the wait for sys/health 200; then check that the keys are there.
restart() {
  local level=$1 i=$2 s0 s1 t0 t1 code
  s0=$(date +%s%N)
  stop_pid "$srv_pid"
  s1=$(date +%s%N)
  srv_pid=""
  t0=$(date +%s%N)
  setsid "$transitd_bin" server -config="$srv_dir/transitd.hcl" >> "$srv_log" 2>&1 &
  srv_pid=$!
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$srv_addr/v1/sys/seal-status" || true)
    [[ $code != 000 ]] && break
    kill -0 "$srv_pid" 2>/dev/null || die "transitd exited during start-up (restart $i with $level keys)"
    (($(date +%s%N) - t0 < 120000000000)) || die "transitd did not answer within 120 s of a restart"
  done
  t1=$(date +%s%N)
  python3 "$gpy" startup --addr "$srv_addr" --pid "$srv_pid" --t0-ns "$t0" --answer-ns "$t1" \
    --unseal-key "$srv_unseal" --phase keys --level "$level" --restart "$i" \
    --stop-ms "$(((s1 - s0) / 1000000))" >> "$facts" || die "restart $i with $level keys failed"
  mem keys "$level" "after restart $i"
  preflight hot "$level"
  preflight random "$level"
}

# ------------------------------------------------------------------ requests
b=$work/bodies
pt64=$(head -c 64 /dev/urandom | base64 -w0)
printf '{"plaintext":"%s"}' "$pt64" > "$b/enc64.json"

declare -A TITLE=([hot]="hot key" [random]="random key" [enc]="encrypt 64 B (latest version)"
  [dec_v1]="decrypt a v1 ciphertext" [dec_latest]="decrypt a latest-version ciphertext")

# One request of the case with the application token, checked; dies otherwise.
preflight() { # case level
  local w=$1 level=$2 out k
  case $w in
    hot | random)
      k=0
      [[ $w == random ]] && k=$((level - 1))
      out=$(api POST "$srv_addr" "$srv_app" "transit/encrypt/k$k" "$(cat "$b/enc64.json")")
      python3 "$py" check ciphertext <<<"$out" || die "preflight of $w ($level keys): key k$k" ;;
    enc)
      out=$(api POST "$srv_addr" "$srv_app" transit/encrypt/ver "$(cat "$b/enc64.json")")
      [[ $(jget data.ciphertext <<<"$out") == vault:v$level:* ]] || die "preflight of enc: not a v$level ciphertext: $out" ;;
    dec_v1 | dec_latest)
      out=$(api POST "$srv_addr" "$srv_app" transit/decrypt/ver "$(cat "$b/$w.json")")
      python3 "$py" check plaintext "$pt64" <<<"$out" || die "preflight of $w ($level versions)" ;;
    *) die "unknown case $w" ;;
  esac
}

run_case() { # phase level case round secs (round 0 = warm-up, not recorded)
  local phase=$1 level=$2 w=$3 r=$4 secs=$5 out lua url cpu0 cpu1 a0 a1
  local -a env=(LOAD_LUA_DIR="$lua_dir" LOAD_TOKEN="$srv_app")
  case $w in
    hot | random)
      lua=$lua_dir/keys.lua url=$srv_addr/v1/transit/encrypt/k0
      env+=(LOAD_BODY_FILE="$b/enc64.json" LOAD_KEYS="$([[ $w == hot ]] && echo 1 || echo "$level")") ;;
    enc) lua=$lua_dir/request.lua url=$srv_addr/v1/transit/encrypt/ver env+=(LOAD_BODY_FILE="$b/enc64.json") ;;
    dec_v1 | dec_latest) lua=$lua_dir/request.lua url=$srv_addr/v1/transit/decrypt/ver env+=(LOAD_BODY_FILE="$b/$w.json") ;;
  esac
  out=$work/runs/$phase.$level.$w.$r.txt
  check_disk "$secs"
  rotate_audit
  a0=$(audit_size)
  cpu0=$(python3 "$py" cpu-snap "$srv_pid")
  env "${env[@]}" wrk -t"$threads" -c"$connections" -d"${secs}s" --timeout 10s --latency -s "$lua" "$url" \
    > "$out" 2>&1 || die "wrk failed for $w ($phase $level): $(cat "$out")"
  cpu1=$(python3 "$py" cpu-snap "$srv_pid" 2>/dev/null) || die "transitd died during $w ($phase $level)"
  a1=$(audit_size)
  kill -0 "$srv_pid" 2>/dev/null || die "transitd died during $w ($phase $level)"
  ((r > 0)) || return 0
  python3 "$gpy" record --phase "$phase" --level "$level" --workload "$w" --title "${TITLE[$w]}" --round "$r" \
    --wrk-output "$out" --cpu-before "$cpu0" --cpu-after "$cpu1" --audit-bytes "$((a1 - a0))" \
    >> "$facts" || die "could not parse wrk output for $w ($phase $level)"
}

measure() { # phase level case...: preflight, warm-up, then rounds; cases alternate within a round
  local phase=$1 level=$2 w r
  shift 2
  for w in "$@"; do
    preflight "$w" "$level"
    if ((warmup > 0)); then run_case "$phase" "$level" "$w" 0 "$warmup"; fi
  done
  for ((r = 1; r <= rounds; r++)); do
    for w in "$@"; do
      sleep 1 # let the previous run's connections close
      run_case "$phase" "$level" "$w" "$r" "$duration"
    done
  done
}

# ------------------------------------------------------------------- timing
n_cases=0
((do_versions)) && n_cases=$((n_cases + 5))
((do_keys)) && n_cases=$((n_cases + 2 * ${#levels[@]}))
est=$((n_cases * (rounds * (duration + 2) + warmup + 2)))
restarts_note=""
((do_keys)) && restarts_note=", plus key creation and $((rounds * ${#levels[@]})) restarts"
echo "== $n_cases cases x $rounds rounds x ${duration}s, $connections connections, $threads wrk threads" \
  "(about $((est / 60)) min $((est % 60)) s of load$restarts_note)"

ts=$(date -u +%Y%m%dT%H%M%SZ)
started=$SECONDS
idle0=$(python3 "$py" cpu-snap $$)
sleep 2
idle1=$(python3 "$py" cpu-snap $$)
busy_before=$(python3 -c 'import sys; a=[int(x) for x in sys.argv[1].split()]; b=[int(x) for x in sys.argv[2].split()]; print(round(100*(b[1]-a[1])/max(1,b[2]-a[2])))' "$idle0" "$idle1")
echo "== machine busy ${busy_before}% over 2 s before starting (other processes)"
((busy_before < 20)) || echo "WARNING: something else is using the CPUs (${busy_before}%): numbers will be noisy" >&2
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------- versions
if ((do_versions)); then
  start_fresh versions
  api POST "$srv_addr" "$srv_root" transit/keys/ver '{"type":"aes256-gcm96"}' >/dev/null
  ct=$(api POST "$srv_addr" "$srv_app" transit/encrypt/ver "$(cat "$b/enc64.json")" | jget data.ciphertext)
  [[ $ct == vault:v1:* ]] || die "not a v1 ciphertext: $ct"
  printf '{"ciphertext":"%s"}' "$ct" > "$b/dec_v1.json"
  storage versions 1
  mem versions 1 "after creating"
  echo "== versions: key ver with 1 version (encrypt, decrypt)"
  measure versions 1 enc dec_v1
  mem versions 1 "after the load"
  echo "== versions: rotating ver $((versions - 1)) times (root token, one after the other)"
  python3 "$gpy" rotate --addr "$srv_addr" --token "$srv_root" --pid "$srv_pid" --key ver \
    --times "$((versions - 1))" --expect-latest "$versions" >> "$facts" || die "rotating ver failed"
  ct=$(api POST "$srv_addr" "$srv_app" transit/encrypt/ver "$(cat "$b/enc64.json")" | jget data.ciphertext)
  [[ $ct == vault:v$versions:* ]] || die "not a v$versions ciphertext: $ct"
  printf '{"ciphertext":"%s"}' "$ct" > "$b/dec_latest.json"
  storage versions "$versions"
  mem versions "$versions" "after creating"
  echo "== versions: key ver with $versions versions (encrypt, decrypt v1, decrypt v$versions)"
  measure versions "$versions" enc dec_v1 dec_latest
  mem versions "$versions" "after the load"
  stop_server
fi

# --------------------------------------------------------------------- keys
if ((do_keys)); then
  start_fresh keys
  mem keys 0 "fresh server, unsealed, no key"
  have=0
  for level in "${levels[@]}"; do
    echo "== keys: creating k$have..k$((level - 1)) ($((level - have)) keys, $create_concurrency connections)"
    check_disk 10
    python3 "$gpy" create-keys --addr "$srv_addr" --token "$srv_root" --pid "$srv_pid" --prefix k \
      --start "$have" --end "$level" --concurrency "$create_concurrency" --level "$level" >> "$facts" \
      || die "creating keys failed"
    have=$level
    storage keys "$level"
    mem keys "$level" "after creating"
    echo "== keys: $level key(s): encrypt 64 B, hot key and random key"
    measure keys "$level" hot random
    mem keys "$level" "after the load"
    echo "== keys: start-up with $level key(s), $rounds restart(s)"
    for ((i = 1; i <= rounds; i++)); do restart "$level" "$i"; done
  done
  stop_server
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$((SECONDS - started))

# -------------------------------------------------------------------- report
mkdir -p "$here/results"
rc=0
python3 "$gpy" report --facts "$facts" --repo "$repo" --timestamp "$ts" --command "$command_line" \
  --rounds "$rounds" --duration "$duration" --connections "$connections" --threads "$threads" --warmup "$warmup" \
  --note "transitd: release build, storage \"sqlite\" (WAL, synchronous=FULL), Shamir 1/1 unsealed through the API, file audit device on (a new device and file before every run, the previous one disabled and deleted), non-root token with a least-privilege policy (\`transit/encrypt/k*\`, \`transit/encrypt/ver\`, \`transit/decrypt/ver\`); keys created and rotated with the root token" \
  --note "$mlock_note" \
  --note "wrk, the server and this script share the same $(nproc) CPUs over loopback: absolute numbers are a floor set by this machine, the ratios are the point" \
  --note "machine busy ${busy_before}% (2 s sample) just before the first run; load average (1/5/15 min) then: $load_start, after the last run: $load_end" \
  --audit "$((audit_total_bytes / 1024 / 1024)) MiB written in all (each run's file deleted after it)" \
  --total-seconds "$elapsed" \
  --out-md "$here/results/growth-$ts.md" --out-json "$here/results/growth-$ts.json" || rc=$?
echo
echo "report: benches/load/results/growth-$ts.md (every fact and run, with the raw wrk output: benches/load/results/growth-$ts.json)"
exit "$rc"
