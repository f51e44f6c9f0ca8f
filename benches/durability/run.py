#!/usr/bin/env python3
"""Audit durability, side by side: `durability=fsync` against `background`.

    python3 benches/durability/run.py [--rounds N] [--duration S] [--connections C]

Two `transitd server -dev` processes, the same build and set-up (that of
benches/logins/run.py), differing only in their file audit device's
`durability` option: `fsync` (the default: every entry synced before its
reply) and `background` (written before its reply, synced within
`sync_interval`, default 100ms). Three workloads: an AppRole login, a JWT
login against static keys (both writes: a token each) and a single 64-byte
encrypt with the root token.

wrk -t1 drives each (workload, mode) pair for --duration seconds, the two
modes alternating which goes first, --rounds times. The machine may be
shared, so the report gives each round's background/fsync ratio (the two runs
of a round are seconds apart, under the same load) with their median, beside
the median rates, p50/p99, and the load average before and after each round.
Written to benches/durability/results/<timestamp>.md.

TRANSITD_BIN=/path measures that binary (else a release build of this
tree). Needs wrk.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

_spec = importlib.util.spec_from_file_location("logins_bench", REPO / "benches" / "logins" / "run.py")
logins = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(logins)

MODES = {"fsync": {"durability": "fsync"}, "background": {"durability": "background"}}
WORKLOADS = ["approle", "jwt-static", "encrypt"]
PLAINTEXT = base64.b64encode(bytes(64)).decode()


def workloads(addr: str, root: str, fx) -> dict[str, tuple[str, dict, str | None]]:
    """(path, body, token) per workload: the logins of benches/logins, and an encrypt."""
    set_up = logins.set_up_logins(addr, root, fx)
    logins.call(addr, root, "POST", "transit/keys/bench", {})
    chosen = {m: (*set_up[m], None) for m in WORKLOADS if m in set_up}
    chosen["encrypt"] = ("transit/encrypt/bench", {"plaintext": PLAINTEXT}, root)
    return chosen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed (apt-get install wrk)")
    transitd = os.environ.get("TRANSITD_BIN")
    if not transitd:
        subprocess.run(["cargo", "build", "--release", "--bin", "transitd"], cwd=REPO, check=True)
        transitd = str(REPO / "target" / "release" / "transitd")

    work = Path(tempfile.mkdtemp(prefix="transitd-durability-"))
    fx = logins.Fixture()
    servers = {}
    try:
        for mode, options in MODES.items():
            servers[mode] = logins.start_transitd_dev(transitd, work, f"transitd-{mode}", options)
        plans = {mode: workloads(addr, root, fx) for mode, (_, addr, root) in servers.items()}
        runs: dict[tuple[str, str], list[dict]] = {}
        loads: list[tuple[float, float]] = []
        for round_ in range(args.rounds):
            before = os.getloadavg()[0]
            for workload in WORKLOADS:
                order = list(MODES) if round_ % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    path, body, token = plans[mode][workload]
                    r = logins.wrk(servers[mode][1], path, body, args.duration, args.connections, work, token)
                    runs.setdefault((workload, mode), []).append(r)
                    print(f"round {round_ + 1} {workload:10} {mode:10} {rate(r):9.0f}/s", flush=True)
            loads.append((before, os.getloadavg()[0]))
        report(args, transitd, runs, loads)
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
        fx.server.stop()
        shutil.rmtree(work, ignore_errors=True)


def rate(r: dict) -> float:
    return r["requests"] / (r["duration_us"] / 1e6)


def report(args, transitd: str, runs, loads) -> None:
    def median(workload, mode, f):
        return statistics.median(f(r) for r in runs[(workload, mode)])

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    load_text = ", ".join(f"{a:.1f}→{b:.1f}" for a, b in loads)
    lines = [
        f"# Audit durability, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"`python3 benches/durability/run.py --rounds {args.rounds} --duration {args.duration} --connections {args.connections}`"
        f" at {commit}; `{transitd}` (two `server -dev` processes, a file audit device each).",
        f"wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.duration} s alternating which mode goes first.",
        f"1-minute load average before→after each round ({os.cpu_count()} CPUs): {load_text}.",
        "",
        "| workload | fsync /s | background /s | background / fsync per round | median ratio | p50 / p99 ms: fsync; background |",
        "|---|---:|---:|---|---:|---|",
    ]
    for w in WORKLOADS:
        ratios = [rate(b) / rate(f) for f, b in zip(runs[(w, "fsync")], runs[(w, "background")])]
        lat = {m: f"{median(w, m, lambda r: r['latency_us']['p50']) / 1000:.2f} / "
                  f"{median(w, m, lambda r: r['latency_us']['p99']) / 1000:.2f}" for m in MODES}
        lines.append(f"| {w} | {median(w, 'fsync', rate):,.0f} | {median(w, 'background', rate):,.0f} | "
                     f"{', '.join(f'{x:.1f}' for x in ratios)} | {statistics.median(ratios):.1f}x | "
                     f"{lat['fsync']}; {lat['background']} |")
    text = "\n".join(lines) + "\n"
    out = HERE / "results" / f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
