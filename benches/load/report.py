#!/usr/bin/env python3
"""Helpers of benches/load/run.sh (python3 standard library only).

  free-ports N                   N distinct free loopback TCP ports, one line
  jget PATH                      a value from the JSON on stdin (a.b.0.c)
  policy-json                    {"policy": <stdin>} for sys/policies/acl
  check KIND [EXPECTED]          validate one preflight response (stdin)
  lockcheck MAIN.lock BARE.lock  same axum/ring/tokio versions in both?
  record ...                     one measured wrk run -> one JSON line (stdout)
  report ...                     medians, table on stdout, .md and .json files
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys


def die(msg):
    print(f"report.py: {msg}", file=sys.stderr)
    sys.exit(1)


# --------------------------------------------------------------- small helpers


def cmd_free_ports(args):
    socks = []
    try:
        for _ in range(args.n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
    print(" ".join(str(p) for p in ports))


def cmd_jget(args):
    d = json.load(sys.stdin)
    for part in args.path.split("."):
        d = d[int(part)] if isinstance(d, list) else d[part]
    print(d if isinstance(d, str) else json.dumps(d))


def cmd_policy_json(_args):
    print(json.dumps({"policy": sys.stdin.read()}))


def cmd_check(args):
    """Exit non-zero (with the reason) unless the response is the expected one."""
    raw = sys.stdin.read()
    try:
        d = json.loads(raw)
    except ValueError:
        die(f"{args.kind}: response is not JSON: {raw[:300]!r}")
    data = d.get("data") or {}
    k, exp = args.kind, args.expected

    def need(cond, what):
        if not cond:
            die(f"{k}: {what}; response: {raw[:400]}")

    if k == "ciphertext":
        need(str(data.get("ciphertext", "")).startswith("vault:v"), "no ciphertext")
    elif k == "plaintext":
        need(data.get("plaintext") == exp, "plaintext differs from the one encrypted")
    elif k == "signature":
        need(str(data.get("signature", "")).startswith("vault:v"), "no signature")
    elif k == "hmac":
        need(str(data.get("hmac", "")).startswith("vault:v"), "no hmac")
    elif k == "keyread":
        need(data.get("name") == exp and "keys" in data, "not a key read of " + str(exp))
    elif k == "audit-device":
        # sys/audit of the OpenBao that must do the same work: a file device
        # writing where its config file said.
        devices = d.get("data") or {}
        need(any(v.get("type") == "file" and (v.get("options") or {}).get("file_path") == exp
                 for v in devices.values() if isinstance(v, dict)),
             f"no file audit device writing to {exp}")
    elif k == "batch":
        items = data.get("batch_results") or []
        need(len(items) == int(exp), f"{len(items)} batch results, expected {exp}")
        bad = [i for i in items if i.get("error") or not i.get("ciphertext")]
        need(not bad, f"{len(bad)} batch items failed")
    else:
        die(f"unknown check {k}")


def stat_ticks(path, reaped_children=False):
    """utime + stime of a /proc/.../stat file (fields 14 and 15), plus cutime
    + cstime (16 and 17: children already waited for) if asked."""
    with open(path, encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def process_tree_ticks(pid):
    """CPU ticks of a process, its reaped children and every live descendant
    (a server that forks helpers pays for them too)."""
    parent_of = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat, encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent_of[int(stat.split("/")[2])] = int(fields[1])
        except (OSError, ValueError, IndexError):
            pass  # the process ended meanwhile
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parent_of.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = stat_ticks(f"/proc/{pid}/stat", reaped_children=True)
    for child in tree - {pid}:
        try:
            total += stat_ticks(f"/proc/{child}/stat", reaped_children=True)
        except OSError:
            pass  # it ended meanwhile (its time then shows in its parent's cutime)
    return total


def cmd_cpu_snap(args):
    """`SERVER_TICKS BUSY_TICKS ALL_TICKS AUDIT_WRITER_TICKS`: the user+system
    CPU ticks of the server process and its descendants, the machine's busy
    and total ticks (/proc/stat), and the ticks of the process's threads named
    `audit-writer` (transitd's audit device writers: chain, write, fsync), now."""
    server = process_tree_ticks(args.pid)
    writer = 0
    for task in glob.glob(f"/proc/{args.pid}/task/*"):
        try:
            if open(f"{task}/comm", encoding="utf-8").read().strip() == "audit-writer":
                writer += stat_ticks(f"{task}/stat")
        except OSError:
            pass  # the thread ended meanwhile
    with open("/proc/stat", encoding="utf-8") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
    total = sum(cpu[:8])
    print(server, total - idle, total, writer)


def lock_versions(path):
    text = open(path, encoding="utf-8").read()
    out = {}
    for m in re.finditer(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text):
        out.setdefault(m.group(1), set()).add(m.group(2))
    return out


def cmd_lockcheck(args):
    main, bare = lock_versions(args.main), lock_versions(args.bare)
    diff = []
    for name in ("axum", "ring", "tokio", "hyper", "serde_json"):
        if name in bare and main.get(name) != bare.get(name):
            diff.append(f"{name}: transitd {sorted(main.get(name, []))} vs bare {sorted(bare[name])}")
    if diff:
        print("WARNING: the bare reference does not build with transitd's versions: " + "; ".join(diff)
              + " (copy Cargo.lock to benches/load/bare/ again)")
    else:
        vs = ", ".join(f"{n} {'/'.join(sorted(bare[n]))}" for n in ("axum", "ring", "tokio") if n in bare)
        print(f"bare reference uses transitd's versions: {vs}")


# ------------------------------------------------------------------ recording


def parse_wrk(text):
    m = re.search(r"^WRK_JSON (\{.*\})\s*$", text, re.M)
    if not m:
        return None
    return json.loads(m.group(1))


def cmd_record(args):
    text = open(args.wrk_output, encoding="utf-8", errors="replace").read()
    w = parse_wrk(text)
    if w is None:
        die(f"no WRK_JSON line in {args.wrk_output}:\n{text[-2000:]}")
    secs = w["duration_us"] / 1e6
    rps = w["requests"] / secs if secs > 0 else 0.0
    errs = {k: v for k, v in w["errors"].items() if v}
    rec = {
        "workload": args.workload,
        "title": args.title,
        "server": args.server,
        "round": args.round,
        "items_per_request": args.items,
        "connections": args.connections,
        "threads": args.threads,
        "requests": w["requests"],
        "seconds": secs,
        "rps": rps,
        "items_per_s": rps * args.items,
        "latency_us": w["latency_us"],
        "errors": w["errors"],
        "error_total": sum(w["errors"].values()),
        "kinds": w.get("kinds") or {},
        "wrk_text": text,
    }
    flags = []
    if errs:
        flags.append("wrk errors " + json.dumps(errs))
    if args.rotation_log:
        codes = [c.strip() for c in open(args.rotation_log, encoding="utf-8") if c.strip()]
        ok = sum(1 for c in codes if c.startswith("2"))
        rec["rotations"] = {"attempted": len(codes), "ok": ok, "codes": sorted(set(codes))}
        if ok != len(codes):
            flags.append(f"{len(codes) - ok} of {len(codes)} rotations failed (codes {sorted(set(codes))})")
        if len(codes) == 0:
            flags.append("no rotation happened during the run")
    if args.cpu_before and args.cpu_after:
        b = [int(x) for x in args.cpu_before.split()]
        a = [int(x) for x in args.cpu_after.split()]
        hz = os.sysconf("SC_CLK_TCK")
        server_s = (a[0] - b[0]) / hz
        all_ticks = a[2] - b[2]
        rec["cpu"] = {
            "server_cpu_s": server_s,
            "server_cores": server_s / secs if secs else None,
            "machine_busy_pct": 100.0 * (a[1] - b[1]) / all_ticks if all_ticks else None,
            "requests_per_server_cpu_s": w["requests"] / server_s if server_s > 0 else None,
            "cpu_us_per_request": 1e6 * server_s / w["requests"] if w["requests"] else None,
            "cpu_us_per_item": 1e6 * server_s / (w["requests"] * args.items) if w["requests"] else None,
        }
        if len(a) > 3 and len(b) > 3 and w["requests"]:
            rec["cpu"]["audit_writer_us_per_request"] = (a[3] - b[3]) / hz / w["requests"] * 1e6
    rec["flags"] = flags
    print(json.dumps(rec))
    lat = w["latency_us"]
    line = (f"    round {args.round}  {args.server:<19} {rps:>10,.0f} req/s"
            + (f" ({rps * args.items:,.0f} items/s)" if args.items > 1 else "")
            + f"  p50 {fmt_ms(lat['p50'])} ms  p99 {fmt_ms(lat['p99'])} ms")
    if rec.get("cpu") and rec["cpu"]["server_cores"] is not None:
        line += (f"  server {rec['cpu']['cpu_us_per_request'] or 0:,.1f} CPU-us/req,"
                 f" {rec['cpu']['server_cores']:.2f} cores, machine {rec['cpu']['machine_busy_pct']:.0f}% busy")
    if flags:
        line += "  ** FLAGGED: " + "; ".join(flags)
    print(line, file=sys.stderr)


# ------------------------------------------------------------------ reporting

# Columns in report order. transitd runs once per audit durability mode asked
# for (`transitd` alone: the device's default, durable).
SERVER_ORDER = ("transitd", "transitd-fsync", "transitd-background", "openbao", "openbao-root", "bare")
OPENBAO_COLUMNS = (("openbao", "OpenBao, same work"), ("openbao-root", "OpenBao root, no audit"))
LABELS = dict(OPENBAO_COLUMNS)


def server_rank(server):
    return SERVER_ORDER.index(server) if server in SERVER_ORDER else len(SERVER_ORDER)


def is_transitd(server):
    return server == "transitd" or server.startswith("transitd-")


def is_durable(server):
    """The audit entry is synced before the reply: the mode the goals are for."""
    return server in ("transitd", "transitd-fsync")


def fmt_ms(us):
    if us is None:
        return "-"
    return f"{us / 1000:.2f}"


def fmt_rate(x):
    if x is None:
        return "-"
    return f"{x:,.0f}"


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def machine():
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "memory": mem,
    }


def git_info(repo):
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never touch the index

    def run(*a):
        return subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True, env=env)

    head = run("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return {"commit": "unknown (not a git checkout?)", "dirty": None, "changed_files": None}
    st = run("status", "--porcelain")
    changed = [l for l in st.stdout.splitlines() if l.strip()]
    return {"commit": head.stdout.strip(), "dirty": bool(changed), "changed_files": len(changed)}


def aggregate(runs):
    order = []
    by = {}
    for r in runs:
        if r["workload"] not in by:
            order.append(r["workload"])
            by[r["workload"]] = {"title": r["title"], "items": r["items_per_request"], "servers": {}}
        by[r["workload"]]["servers"].setdefault(r["server"], []).append(r)
    rows = []
    for w in order:
        b = by[w]
        row = {"workload": w, "title": b["title"], "items_per_request": b["items"], "servers": {},
               "ratios": {}, "pct_of_bare": {}}
        for s in sorted(b["servers"], key=server_rank):
            rs = b["servers"][s]

            def cpu(key, rs=rs):
                return med([(r.get("cpu") or {}).get(key) for r in rs])

            row["servers"][s] = {
                "rounds": len(rs),
                "connections": rs[0].get("connections"),
                "rps_median": med([r["rps"] for r in rs]),
                "items_per_s_median": med([r["items_per_s"] for r in rs]),
                "p50_us_median": med([r["latency_us"]["p50"] for r in rs]),
                "p90_us_median": med([r["latency_us"]["p90"] for r in rs]),
                "p99_us_median": med([r["latency_us"]["p99"] for r in rs]),
                "rps_rounds": [round(r["rps"], 1) for r in rs],
                "requests_total": sum(r["requests"] for r in rs),
                "errors_total": sum(r["error_total"] for r in rs),
                "flags": [f"round {r['round']}: {f}" for r in rs for f in r["flags"]],
                "kinds": _sum_kinds(rs),
                "rotations": _sum_rotations(rs),
                "cpu_us_per_request_median": cpu("cpu_us_per_request"),
                "cpu_us_per_item_median": cpu("cpu_us_per_item"),
                "server_cores_median": cpu("server_cores"),
                "machine_busy_pct_median": cpu("machine_busy_pct"),
                "audit_writer_us_median": cpu("audit_writer_us_per_request"),
            }
        for t in filter(is_transitd, row["servers"]):
            ts = row["servers"][t]
            for o, _label in OPENBAO_COLUMNS:
                os_ = row["servers"].get(o)
                if not os_ or not os_["rps_median"]:
                    continue
                tc, oc = ts["cpu_us_per_request_median"], os_["cpu_us_per_request_median"]
                row["ratios"].setdefault(t, {})[o] = {
                    "rps": ts["rps_median"] / os_["rps_median"],
                    # How many times less server CPU transitd spends per request.
                    "cpu_per_request": oc / tc if tc and oc else None,
                    "p99_below_p50": ts["p99_us_median"] < os_["p50_us_median"],
                }
            bare = row["servers"].get("bare")
            if bare and bare["rps_median"]:
                row["pct_of_bare"][t] = 100.0 * ts["rps_median"] / bare["rps_median"]
        rows.append(row)
    return rows


def _sum_kinds(rs):
    out = {}
    for r in rs:
        for k, v in (r.get("kinds") or {}).items():
            out[k] = out.get(k, 0) + v
    return out


def _sum_rotations(rs):
    rot = [r["rotations"] for r in rs if "rotations" in r]
    if not rot:
        return None
    return {"attempted": sum(x["attempted"] for x in rot), "ok": sum(x["ok"] for x in rot)}


# Issue 19's goals. They hold for transitd in durable mode; a background-mode
# column is judged the same way for reference.
# (workload, OpenBao column, minimum ratio of req/s (= items/s for batches), what)
RATIO_GOALS = (
    ("enc64", "openbao", 20, "single encrypt 64 B"),
    ("dec64", "openbao", 20, "decrypt 64 B"),
    ("hmac", "openbao", 20, "HMAC sha2-256"),
    ("batch250", "openbao", 10, "batch items/s"),
    ("sign_ed", "openbao", 15, "Ed25519 signing"),
    ("sign_ec", "openbao", 15, "P-256 signing"),
    ("batch250", "openbao-root", 1.5, "batch items/s"),
)
LATENCY_1CONN_P50_US = 250
CPU_PER_BATCH_ITEM_US = 1.0


def goals(rows):
    """One entry per goal: its target and, per transitd column, what was
    measured and whether it is met (None: not measured in this run)."""
    by_w = {r["workload"]: r for r in rows}
    tids = sorted({s for r in rows for s in r["servers"] if is_transitd(s)}, key=server_rank)
    out = []

    def add(goal, target, judge):
        out.append({"goal": goal, "target": target, "servers": {t: judge(t) for t in tids}})

    for w, o, minimum, what in RATIO_GOALS:
        def ratio_goal(t, w=w, o=o, minimum=minimum):
            x = (by_w.get(w) or {}).get("ratios", {}).get(t, {}).get(o)
            if x is None:
                return {"measured": "not measured", "met": None}
            return {"measured": f"{x['rps']:.2f}x", "met": x["rps"] >= minimum}
        add(f"{what} vs {LABELS[o]}", f">= {minimum:g}x", ratio_goal)

    def p99_goal(t):
        checked = [(r["title"], r["ratios"][t]["openbao"]["p99_below_p50"]) for r in rows
                   if "openbao" in r["ratios"].get(t, {})]
        if not checked:
            return {"measured": "not measured", "met": None}
        misses = [title for title, ok in checked if not ok]
        text = f"{len(checked) - len(misses)} of {len(checked)} workloads"
        if misses:
            text += "; not on: " + ", ".join(misses)
        return {"measured": text, "met": not misses}
    add(f"p99 below the p50 of {LABELS['openbao']}", "every workload", p99_goal)

    def lat_goal(t):
        s = (by_w.get("lat1") or {}).get("servers", {}).get(t)
        if not s:
            return {"measured": "not measured", "met": None}
        return {"measured": f"{fmt_ms(s['p50_us_median'])} ms", "met": s["p50_us_median"] < LATENCY_1CONN_P50_US}
    add("p50 at 1 connection (encrypt 64 B)", f"< {LATENCY_1CONN_P50_US / 1000:g} ms", lat_goal)

    def cpu_goal(t):
        s = (by_w.get("batch250") or {}).get("servers", {}).get(t)
        if not s or s["cpu_us_per_item_median"] is None:
            return {"measured": "not measured", "met": None}
        v = s["cpu_us_per_item_median"]
        return {"measured": f"{v:.2f} us", "met": v <= CPU_PER_BATCH_ITEM_US}
    add("server CPU per 64 B batch item, audit included", f"<= {CPU_PER_BATCH_ITEM_US:g} us", cpu_goal)
    return out


def fmt_met(met):
    return "not measured" if met is None else ("**met**" if met else "not met")


def render(meta, rows, goal_list):
    L = []
    cfg = meta["config"]
    L.append(f"# transitd vs OpenBao load run {meta['timestamp']}")
    L.append("")
    L.append(f"- command: `{meta['command']}`")
    g = meta["git"]
    dirty = "unknown" if g["dirty"] is None else (
        f"dirty ({g['changed_files']} changed or untracked paths)" if g["dirty"] else "clean")
    L.append(f"- commit: `{g['commit']}`, tree {dirty}")
    m = meta["machine"]
    L.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, memory {m['memory']}")
    L.append(f"- load: wrk {cfg['threads']} threads (at most one per connection), {cfg['connections']} connections "
             f"(1 and 8 for the latency workloads), "
             f"{cfg['rounds']} rounds x {cfg['duration']} s per server and workload "
             f"(+{cfg['warmup']} s unrecorded warm-up), servers alternated "
             + " / ".join(meta["alternation"]) + " within each round (bare: encrypt workloads only); "
             "figures are MEDIANS over rounds (mean of the middle two for an even count)")
    for line in meta.get("notes", []):
        L.append(f"- {line}")
    L.append("")

    L.append("## Goals (issue 19)")
    L.append("")
    tids = sorted({s for r in rows for s in r["servers"] if is_transitd(s)}, key=server_rank)
    head = ["goal", "target"]
    for t in tids:
        ref = "" if is_durable(t) else " (reference: the goals hold in durable mode)"
        head += [f"{t}{ref}", "met"]
    L.append("| " + " | ".join(head) + " |")
    L.append("|---|---|" + "---|:-:|" * len(tids))
    for goal in goal_list:
        cells = [goal["goal"], goal["target"]]
        for t in tids:
            x = goal["servers"][t]
            cells += [x["measured"], fmt_met(x["met"])]
        L.append("| " + " | ".join(cells) + " |")
    L.append("")

    L.append("## Throughput, latency and server CPU")
    L.append("")
    L.append("Per workload and server. **x OpenBao**: transitd's req/s over that OpenBao's (the same as "
             "items/s for the batch), then how many times less server CPU transitd spends per request. "
             "CPU us per request: the server process's utime+stime over the run divided by its requests "
             "(per item for batches; for transitd, its audit writer threads' share in brackets).")
    L.append("")
    o_cols = [o for o, _ in OPENBAO_COLUMNS]
    L.append("| workload | server | conns | req/s | p50 / p90 / p99 ms | server CPU us/req | cores | "
             + " | ".join(f"x {LABELS[o]}: req/s, CPU" for o in o_cols)
             + " | p99 < same-work OpenBao p50 | machine busy % | errors |")
    L.append("|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(o_cols) + ":-:|---:|---|")
    for row in rows:
        items = row["items_per_request"]
        for s, x in row["servers"].items():
            rate = fmt_rate(x["rps_median"])
            if items > 1:
                rate += f" ({fmt_rate(x['items_per_s_median'])} items/s)"
            lat = " / ".join(fmt_ms(x[f"p{p}_us_median"]) for p in (50, 90, 99))
            c = x["cpu_us_per_request_median"]
            cpu = "-" if c is None else f"{c:,.1f}"
            if c is not None and items > 1:
                cpu += f" ({x['cpu_us_per_item_median']:.2f}/item)"
            if x["audit_writer_us_median"] is not None and is_transitd(s):
                cpu += f" [writer {x['audit_writer_us_median']:.1f}]"
            cores = "-" if x["server_cores_median"] is None else f"{x['server_cores_median']:.2f}"
            ratios = []
            for o in o_cols:
                r = row["ratios"].get(s, {}).get(o)
                if r is None:
                    ratios.append("-")
                else:
                    cr = "-" if r["cpu_per_request"] is None else f"{r['cpu_per_request']:.2f}x"
                    ratios.append(f"{r['rps']:.2f}x, {cr}")
            below = row["ratios"].get(s, {}).get("openbao")
            below = "-" if below is None else ("yes" if below["p99_below_p50"] else "no")
            busy = "-" if x["machine_busy_pct_median"] is None else f"{x['machine_busy_pct_median']:.0f}"
            errs = "none"
            if x["errors_total"] or x["flags"]:
                errs = (f"**{x['errors_total']} wrk errors"
                        + (f"; {len(x['flags'])} flagged" if x["flags"] else "") + "**")
            L.append("| " + " | ".join([row["title"], s, str(x["connections"] or "-"), rate, lat, cpu, cores,
                                        *ratios, below, busy, errs]) + " |")
    L.append("")
    for row in rows:
        b = row["servers"].get("bare")
        if not b:
            continue
        pct = ", ".join(f"{t} reaches **{p:.0f}%** of it" for t, p in row["pct_of_bare"].items())
        L.append(f"Bare reference ({row['title']}): {fmt_rate(b['rps_median'])} req/s"
                 + (f"; {pct}" if pct else "") + ".")
    L.append("")

    servers = sorted({s for r in rows for s in r["servers"]}, key=server_rank)
    L.append("Per round (req/s, in run order):")
    L.append("")
    L.append("| workload | " + " | ".join(servers) + " |")
    L.append("|---|" + "---|" * len(servers))
    for row in rows:
        cells = []
        for s in servers:
            x = row["servers"].get(s)
            cells.append(", ".join(fmt_rate(v) for v in x["rps_rounds"]) if x else "-")
        L.append(f"| {row['title']} | " + " | ".join(cells) + " |")
    L.append("")
    extra = []
    for row in rows:
        for s, x in row["servers"].items():
            if x["kinds"]:
                tot = sum(x["kinds"].values()) or 1
                mix = ", ".join(f"{k[2:]} {100.0 * v / tot:.1f}%" for k, v in sorted(x["kinds"].items()))
                extra.append(f"- {row['title']}, {s}: requests drawn {mix}")
            if x["rotations"]:
                rot = x["rotations"]
                extra.append(f"- {row['title']}, {s}: {rot['ok']} of {rot['attempted']} background rotations succeeded")
            for f in x["flags"]:
                extra.append(f"- **FLAGGED** {row['title']}, {s}, {f}")
    for s, note in meta.get("audit", {}).items():
        extra.append(f"- {s} audit log: {note}")
    if extra:
        L.append("Checks:")
        L.append("")
        L.extend(extra)
        L.append("")
    return "\n".join(L)


def cmd_report(args):
    runs = [json.loads(l) for l in open(args.runs, encoding="utf-8") if l.strip()]
    if not runs:
        die("no measured runs to report")
    rows = aggregate(runs)
    goal_list = goals(rows)
    audit = {}
    for a in args.audit:
        server, _, note = a.partition("=")
        audit[server] = note
    meta = {
        "timestamp": args.timestamp,
        "command": args.command,
        "git": git_info(args.repo),
        "machine": machine(),
        "config": {"rounds": args.rounds, "duration": args.duration, "connections": args.connections,
                   "threads": args.threads, "warmup": args.warmup},
        "alternation": args.alternation.split(","),
        "notes": [n for n in args.note if n],
        "audit": audit,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_report(render(meta, rows, goal_list), {"meta": meta, "goals": goal_list, "summary": rows, "runs": runs},
                 args.out_md, args.out_json, runs, "errors or failed rotations")


def write_report(md, data, out_md, out_json, runs, what):
    """Writes the report (markdown and JSON), prints it, and exits 3 when a
    measured run was flagged (`what` names the problems)."""
    with open(out_md, "w", encoding="utf-8") as f:
        f.write(md + "\n")
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print(md)
    flagged = sum(1 for r in runs if r["flags"])
    if flagged:
        print(f"\n{flagged} measured run(s) had {what}: see FLAGGED above", file=sys.stderr)
        sys.exit(3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("free-ports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_free_ports)
    s = sub.add_parser("jget")
    s.add_argument("path")
    s.set_defaults(fn=cmd_jget)
    s = sub.add_parser("policy-json")
    s.set_defaults(fn=cmd_policy_json)
    s = sub.add_parser("check")
    s.add_argument("kind")
    s.add_argument("expected", nargs="?")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("cpu-snap")
    s.add_argument("pid", type=int)
    s.set_defaults(fn=cmd_cpu_snap)
    s = sub.add_parser("lockcheck")
    s.add_argument("main")
    s.add_argument("bare")
    s.set_defaults(fn=cmd_lockcheck)
    s = sub.add_parser("record")
    s.add_argument("--workload", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--server", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--items", type=int, default=1)
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--threads", type=int, required=True)
    s.add_argument("--wrk-output", required=True)
    s.add_argument("--rotation-log")
    s.add_argument("--cpu-before")
    s.add_argument("--cpu-after")
    s.set_defaults(fn=cmd_record)
    s = sub.add_parser("report")
    s.add_argument("--runs", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--timestamp", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--duration", type=int, required=True)
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--threads", type=int, required=True)
    s.add_argument("--warmup", type=int, required=True)
    s.add_argument("--alternation", required=True)
    s.add_argument("--note", action="append", default=[])
    s.add_argument("--audit", action="append", default=[], help="SERVER=note on its audit log")
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-json", required=True)
    s.set_defaults(fn=cmd_report)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
