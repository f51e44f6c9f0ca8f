# Shared by benches/load/run.sh and benches/load/growth.sh (sourced, never run).
# Functions only, plus nothing that runs at load time. They use these globals
# of the calling script: `work` (its temp dir, may still be empty), `py`
# (benches/load/report.py), `repo` (the repository root), `mlock_hcl` (set by
# probe_mlock) and `transitd_bin` (set by build_transitd).

stop_pid() { # pid: TERM, up to 10 s, then KILL; always reaped
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

dump_logs() {
  local f
  [[ -n $work && -d $work ]] || return 0
  for f in "$work"/*.log; do
    [[ -e $f ]] || continue
    echo "----- last lines of $(basename "$f") -----" >&2
    tail -n 40 "$f" >&2 || true
  done
}
die() { echo "ERROR: $*" >&2; dump_logs; exit 1; }

need() { command -v "$1" >/dev/null || die "$1 is needed${2:+ ($2)}"; }

# Build the release transitd of $repo (cargo's target dir: CARGO_TARGET_DIR,
# else $repo/target) and set transitd_bin.
build_transitd() {
  # TRANSITD_BIN: measure that binary (say, an earlier commit's) instead of building this tree.
  if [[ -n ${TRANSITD_BIN:-} ]]; then
    transitd_bin=$TRANSITD_BIN
    [[ -x $transitd_bin ]] || die "TRANSITD_BIN=$transitd_bin is not executable"
    echo "== measuring $transitd_bin (TRANSITD_BIN)"
    return
  fi
  echo "== building transitd (release)"
  (cd "$repo" && cargo build --release --bin transitd) || die "cargo build --release --bin transitd failed"
  transitd_bin="${CARGO_TARGET_DIR:-$repo/target}/release/transitd"
  [[ $transitd_bin == /* ]] || transitd_bin="$repo/$transitd_bin"
  [[ -x $transitd_bin ]] || die "no binary at $transitd_bin"
}

wait_ready() { # name pid url: up to 60 s for any HTTP answer on url
  local name=$1 pid=$2 url=$3 code i
  for i in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
    [[ $code != 000 ]] && return 0
    sleep 0.1
  done
  die "$name did not answer on $url within 60 s"
}

# api METHOD ADDR TOKEN PATH [BODY] -> body on stdout; dies (with logs) unless 2xx
api() {
  local method=$1 addr=$2 token=$3 path=$4 body=${5-} out code
  local args=(-sS --max-time 60 -X "$method" -H "X-Vault-Token: $token" -w $'\n%{http_code}')
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  out=$(curl "${args[@]}" "$addr/v1/$path") || die "curl $method $addr/v1/$path failed"
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2?? ]] || die "$method $addr/v1/$path answered HTTP $code: $out"
  printf '%s' "$out"
}
jget() { python3 "$py" jget "$1"; }

# transitd locks its memory with mlockall (keys never reach swap) and refuses
# to start if the OS says no. Probe the same call here: if it works, mlock
# stays ON as in production; if the sandbox refuses (no CAP_IPC_LOCK, low
# RLIMIT_MEMLOCK) set disable_mlock = true and say so in the report.
# Sets mlock_note (one line for the report) and mlock_hcl (config lines).
probe_mlock() {
  if python3 -c 'import ctypes,sys; l=ctypes.CDLL(None, use_errno=True); sys.exit(0 if l.mlockall(3) == 0 else 1)'; then
    mlock_note="transitd: mlock ON (mlockall works in this environment, so it runs exactly as in production)"
    mlock_hcl='# mlock stays ON: a probe of mlockall(MCL_CURRENT|MCL_FUTURE) succeeded here.'
  else
    mlock_note="transitd: disable_mlock = true (this environment refuses mlockall: no CAP_IPC_LOCK or low RLIMIT_MEMLOCK)"
    mlock_hcl=$'# The sandbox refuses mlockall (probe failed: no CAP_IPC_LOCK or RLIMIT_MEMLOCK too low),\n# and transitd will not start with mlock on where the OS refuses it.\ndisable_mlock = true'
  fi
}

# write_transitd_hcl DIR PORT: DIR/transitd.hcl, transitd as deployed (storage
# DIR/transitd.db).
write_transitd_hcl() {
  local dir=$1 port=$2
  cat > "$dir/transitd.hcl" <<HCL
# transitd as deployed: durable SQLite storage, Shamir seal (1 of 1 here),
# plain HTTP on loopback only.
storage "sqlite" {
  path = "$dir/transitd.db"
}

listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}

log_level = "info"
$mlock_hcl
HCL
}

# The command as typed, for the report: `quoted_command SCRIPT ARGS...`
# (arguments quoted only where the shell would need it).
quoted_command() {
  local line="bash $1" a
  shift
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./,=:+-]+$ ]]; then line+=" $a"; else line+=" $(printf '%q' "$a")"; fi
  done
  printf '%s' "$line"
}
