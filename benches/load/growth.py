#!/usr/bin/env python3
"""Helpers of benches/load/growth.sh (python3 standard library only).

Every measuring subcommand prints ONE JSON line (a "fact", with a "kind") on
stdout, which growth.sh appends to its facts file, and a short human line on
stderr. `report` turns the facts into the tables.

  create-keys ...  create keys <prefix><start>..<prefix><end-1> over keep-alive
                   connections from several threads; rate, latency, server CPU
  rotate ...       rotate one key N times, one after the other; ms per rotation
  mem ...          VmRSS, VmHWM, VmLck, RssAnon, Threads of the server (KiB)
  startup ...      a restarted server: first answer, the unseal call, ready
  storage ...      what the SQLite storage holds (read-only connection)
  record ...       one measured wrk run
  report ...       medians, ratios, tables on stdout, .md and .json files
"""

import argparse
import http.client
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report as base  # noqa: E402  (benches/load/report.py: wrk parsing, machine, git)

HZ = os.sysconf("SC_CLK_TCK")


def die(msg):
    print(f"growth.py: {msg}", file=sys.stderr)
    sys.exit(1)


def emit(fact):
    print(json.dumps(fact), flush=True)


def host_port(addr):
    hp = addr.split("://", 1)[-1].rstrip("/")
    host, port = hp.rsplit(":", 1)
    return host, int(port)


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def machine_ticks():
    with open("/proc/stat", encoding="utf-8") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0)
    total = sum(cpu[:8])
    return total - idle, total


def pct(sorted_values, p):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[i]


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


# ------------------------------------------------------------------ creating


def cmd_create_keys(a):
    host, port = host_port(a.addr)
    body = json.dumps({"type": a.type})
    headers = {"X-Vault-Token": a.token, "Content-Type": "application/json"}
    lock = threading.Lock()
    state = {"next": a.start, "done": 0, "error": None}
    lat = [[] for _ in range(a.concurrency)]
    total = a.end - a.start

    def worker(w):
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            while True:
                with lock:
                    if state["error"] or state["next"] >= a.end:
                        return
                    i = state["next"]
                    state["next"] += 1
                t = time.perf_counter()
                try:
                    conn.request("POST", f"/v1/{a.mount}/keys/{a.prefix}{i}", body, headers)
                    r = conn.getresponse()
                    data = r.read()
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        state["error"] = state["error"] or f"{a.prefix}{i}: {e!r}"
                    return
                lat[w].append(time.perf_counter() - t)
                if r.status != 200:
                    with lock:
                        state["error"] = state["error"] or (
                            f"{a.prefix}{i}: HTTP {r.status}: {data[:300]!r}")
                    return
                with lock:
                    state["done"] += 1
        finally:
            conn.close()

    cpu0, (busy0, all0) = proc_ticks(a.pid), machine_ticks()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(a.concurrency)]
    for t in threads:
        t.start()
    last = t0
    while any(t.is_alive() for t in threads):
        time.sleep(0.2)
        now = time.perf_counter()
        if now - last >= 10 and total >= 1000:
            last = now
            d = state["done"]
            print(f"    ... {d:,} of {total:,} keys, {d / (now - t0):,.0f} keys/s", file=sys.stderr)
        if not alive(a.pid):
            die(f"the server (pid {a.pid}) exited while creating keys")
    secs = time.perf_counter() - t0
    if state["error"]:
        die(f"creating keys failed: {state['error']}")
    cpu1, (busy1, all1) = proc_ticks(a.pid), machine_ticks()
    all_lat = sorted(x for w in lat for x in w)
    server_s = (cpu1 - cpu0) / HZ
    fact = {
        "kind": "create",
        "phase": a.phase,
        "level": a.level,
        "first": f"{a.prefix}{a.start}",
        "last": f"{a.prefix}{a.end - 1}",
        "created": state["done"],
        "concurrency": a.concurrency,
        "seconds": secs,
        "keys_per_s": state["done"] / secs if secs > 0 else None,
        "latency_ms": {"p50": 1e3 * pct(all_lat, 50), "p99": 1e3 * pct(all_lat, 99),
                       "max": 1e3 * all_lat[-1]} if all_lat else None,
        "server_cpu_s": server_s,
        "server_cpu_us_per_key": 1e6 * server_s / state["done"] if state["done"] else None,
        "machine_busy_pct": 100.0 * (busy1 - busy0) / (all1 - all0) if all1 > all0 else None,
    }
    emit(fact)
    print(f"    created {state['done']:,} keys in {secs:.1f} s: {fact['keys_per_s']:,.0f} keys/s, "
          f"p50 {fact['latency_ms']['p50']:.2f} ms, p99 {fact['latency_ms']['p99']:.2f} ms, "
          f"server {fact['server_cpu_us_per_key']:,.0f} CPU-us per key", file=sys.stderr)


# ------------------------------------------------------------------ rotating


def cmd_rotate(a):
    host, port = host_port(a.addr)
    headers = {"X-Vault-Token": a.token, "Content-Type": "application/json"}
    conn = http.client.HTTPConnection(host, port, timeout=120)
    times = []
    latest = None
    cpu0 = proc_ticks(a.pid)
    t0 = time.perf_counter()
    for i in range(a.times):
        t = time.perf_counter()
        try:
            conn.request("POST", f"/v1/{a.mount}/keys/{a.key}/rotate", "{}", headers)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            die(f"rotation {i + 1} of {a.key} failed: {e!r}")
        times.append(time.perf_counter() - t)
        if r.status != 200:
            die(f"rotation {i + 1} of {a.key}: HTTP {r.status}: {data[:300]!r}")
        if i == a.times - 1:
            latest = (json.loads(data).get("data") or {}).get("latest_version")
        if (i + 1) % 250 == 0:
            print(f"    ... {i + 1} rotations", file=sys.stderr)
    secs = time.perf_counter() - t0
    cpu1 = proc_ticks(a.pid)
    conn.close()
    if a.expect_latest and latest != a.expect_latest:
        die(f"after {a.times} rotations {a.key} has latest_version {latest}, expected {a.expect_latest}")
    k = min(50, len(times))
    fact = {
        "kind": "rotate",
        "key": a.key,
        "rotations": len(times),
        "latest_version": latest,
        "seconds": secs,
        "rotations_per_s": len(times) / secs if secs > 0 else None,
        "first_ms_mean": 1e3 * sum(times[:k]) / k if k else None,
        "last_ms_mean": 1e3 * sum(times[-k:]) / k if k else None,
        "window": k,
        "server_cpu_s": (cpu1 - cpu0) / HZ,
    }
    emit(fact)
    print(f"    {len(times)} rotations of {a.key} in {secs:.1f} s; mean of the first {k}: "
          f"{fact['first_ms_mean']:.2f} ms, of the last {k}: {fact['last_ms_mean']:.2f} ms", file=sys.stderr)


# -------------------------------------------------------------------- memory


def read_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "VmLck", "RssAnon", "RssFile", "VmSize"):
                out[k + "_kib"] = int(v.split()[0])
            elif k == "Threads":
                out["threads"] = int(v)
    return out


def cmd_mem(a):
    m = read_mem(a.pid)
    emit({"kind": "mem", "phase": a.phase, "level": a.level, "when": a.when, **m})
    print(f"    memory {a.when}: VmRSS {m.get('VmRSS_kib', 0) / 1024:.1f} MiB, "
          f"VmHWM {m.get('VmHWM_kib', 0) / 1024:.1f} MiB", file=sys.stderr)


# ------------------------------------------------------------------ start-up


def cmd_startup(a):
    """The server was spawned at --t0-ns and first answered (sys/seal-status,
    polled by growth.sh with curl) at --answer-ns, both CLOCK_REALTIME ns
    (`date +%s%N`). Time the unseal call and the wait for sys/health 200."""
    host, port = host_port(a.addr)
    answer_ms = (a.answer_ns - a.t0_ns) / 1e6

    def get(path):
        conn = http.client.HTTPConnection(host, port, timeout=5)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    status, data = get("/v1/sys/seal-status")
    if status != 200 or not json.loads(data).get("sealed", False):
        die(f"the restarted server is not sealed (HTTP {status}): {data[:200]!r}")
    # The unseal call: it reads and decrypts every key before it answers.
    conn = http.client.HTTPConnection(host, port, timeout=a.timeout)
    u0 = time.perf_counter()
    conn.request("POST", "/v1/sys/unseal", json.dumps({"key": a.unseal_key}),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    unseal_ms = (time.perf_counter() - u0) * 1e3
    conn.close()
    if r.status != 200 or json.loads(data).get("sealed", True):
        die(f"unseal answered HTTP {r.status}: {data[:300]!r}")
    # Then sys/health 200: unsealed and serving.
    deadline = time.monotonic() + a.timeout
    while True:
        if not alive(a.pid):
            die("the server exited after the unseal")
        status, data = get("/v1/sys/health")
        if status == 200:
            break
        if time.monotonic() > deadline:
            die(f"sys/health not 200 within {a.timeout} s (last {status}: {data[:200]!r})")
        time.sleep(0.001)
    to_health_ms = (time.perf_counter() - u0) * 1e3
    fact = {"kind": "startup", "phase": a.phase, "level": a.level, "restart": a.restart,
            "stop_ms": a.stop_ms, "answer_ms": answer_ms, "unseal_ms": unseal_ms,
            "serving_ms": answer_ms + to_health_ms}
    emit(fact)
    print(f"    restart {a.restart}: first answer {answer_ms:.0f} ms after the process started, unseal call "
          f"{unseal_ms:.0f} ms, serving {fact['serving_ms']:.0f} ms after the start"
          + (f" (stopping the previous process took {a.stop_ms:.0f} ms)" if a.stop_ms is not None else ""),
          file=sys.stderr)


# ------------------------------------------------------------------- storage


def cmd_storage(a):
    fact = {"kind": "storage", "phase": a.phase, "level": a.level, "when": a.when}
    for suffix in ("", "-wal"):
        try:
            fact[f"file{suffix or '_db'}_bytes"] = os.path.getsize(a.db + suffix)
        except OSError:
            fact[f"file{suffix or '_db'}_bytes"] = None
    try:
        c = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True, timeout=10)
        n, total, biggest = c.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0), coalesce(max(length(value)), 0) "
            "FROM entries WHERE path LIKE 'logical/%/keys/%'").fetchone()
        c.close()
        fact.update({"key_rows": n, "key_bytes": total, "largest_key_bytes": biggest})
    except sqlite3.Error as e:
        fact["error"] = str(e)
    emit(fact)
    if "error" not in fact:
        print(f"    storage: {fact['key_rows']:,} stored keys, {fact['key_bytes'] / 1024:,.0f} KiB "
              f"(largest {fact['largest_key_bytes']:,} B)", file=sys.stderr)


# -------------------------------------------------------------------- record


def cmd_record(a):
    text = open(a.wrk_output, encoding="utf-8", errors="replace").read()
    w = base.parse_wrk(text)
    if w is None:
        die(f"no WRK_JSON line in {a.wrk_output}:\n{text[-2000:]}")
    secs = w["duration_us"] / 1e6
    rps = w["requests"] / secs if secs > 0 else 0.0
    b = [int(x) for x in a.cpu_before.split()]
    e = [int(x) for x in a.cpu_after.split()]
    server_s = (e[0] - b[0]) / HZ
    all_ticks = e[2] - b[2]
    errs = {k: v for k, v in w["errors"].items() if v}
    rec = {
        "kind": "run",
        "phase": a.phase,
        "level": a.level,
        "workload": a.workload,
        "title": a.title,
        "round": a.round,
        "requests": w["requests"],
        "seconds": secs,
        "rps": rps,
        "latency_us": w["latency_us"],
        "errors": w["errors"],
        "error_total": sum(w["errors"].values()),
        "cpu": {
            "server_cpu_s": server_s,
            "server_cores": server_s / secs if secs else None,
            "cpu_us_per_request": 1e6 * server_s / w["requests"] if w["requests"] else None,
            "machine_busy_pct": 100.0 * (e[1] - b[1]) / all_ticks if all_ticks else None,
        },
        "audit_bytes": a.audit_bytes,
        "audit_bytes_per_request": a.audit_bytes / w["requests"] if a.audit_bytes and w["requests"] else None,
        "flags": ["wrk errors " + json.dumps(errs)] if errs else [],
        "wrk_text": text,
    }
    emit(rec)
    lat = w["latency_us"]
    line = (f"    round {a.round}  {a.workload:<10} {rps:>9,.0f} req/s  p50 {base.fmt_ms(lat['p50'])} ms"
            f"  p99 {base.fmt_ms(lat['p99'])} ms  {rec['cpu']['cpu_us_per_request'] or 0:,.0f} CPU-us/req"
            f"  server {rec['cpu']['server_cores']:.2f} cores, machine {rec['cpu']['machine_busy_pct'] or 0:.0f}% busy")
    if rec["flags"]:
        line += "  ** FLAGGED: " + "; ".join(rec["flags"])
    print(line, file=sys.stderr)


# -------------------------------------------------------------------- report

med = base.med


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:,.1f}"


def ratio(x, y):
    if x is None or not y:
        return None
    return x / y


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def count(n, unit):
    return f"{n:,} {unit if n == 1 else unit + 's'}"


def fmt_num(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"


def summarize_runs(runs):
    """(phase, level, workload) -> medians over rounds, in first-seen order."""
    groups = {}
    for r in runs:
        groups.setdefault((r["phase"], r["level"], r["workload"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        out[key] = {
            "phase": key[0], "level": key[1], "workload": key[2], "title": rs[0]["title"],
            "rounds": len(rs),
            "rps_median": med([r["rps"] for r in rs]),
            "p50_us_median": med([r["latency_us"]["p50"] for r in rs]),
            "p99_us_median": med([r["latency_us"]["p99"] for r in rs]),
            "cpu_us_per_request_median": med([r["cpu"]["cpu_us_per_request"] for r in rs]),
            "server_cores_median": med([r["cpu"]["server_cores"] for r in rs]),
            "machine_busy_pct_median": med([r["cpu"]["machine_busy_pct"] for r in rs]),
            "audit_bytes_per_request_median": med([r.get("audit_bytes_per_request") for r in rs]),
            "rps_rounds": [round(r["rps"], 1) for r in rs],
            "cpu_us_rounds": [round(r["cpu"]["cpu_us_per_request"] or 0, 1) for r in rs],
            "requests_total": sum(r["requests"] for r in rs),
            "errors_total": sum(r["error_total"] for r in rs),
            "flags": [f"round {r['round']}: {f}" for r in rs for f in r["flags"]],
        }
    return out


def add_ratios(summary, phase, base_level_of):
    """Ratios of each (phase, level, workload) to its baseline row."""
    for (ph, level, w), s in summary.items():
        if ph != phase:
            continue
        ref = summary.get(base_level_of(w))
        if not ref:
            continue
        s["baseline"] = {"level": ref["level"], "workload": ref["workload"]}
        s["rps_ratio"] = ratio(s["rps_median"], ref["rps_median"])
        s["cpu_us_ratio"] = ratio(s["cpu_us_per_request_median"], ref["cpu_us_per_request_median"])
        s["p99_ratio"] = ratio(s["p99_us_median"], ref["p99_us_median"])


def mem_at(facts, phase, level, when):
    for f in facts:
        if f["kind"] == "mem" and f["phase"] == phase and f["level"] == level and f["when"] == when:
            return f
    return None


def mem_restart(facts, level):
    """Medians of the memory snapshots taken after each restart at `level`."""
    ms = [f for f in facts if f["kind"] == "mem" and f["phase"] == "keys" and f["level"] == level
          and f["when"].startswith("after restart")]
    if not ms:
        return {}
    return {k: med([m.get(k) for m in ms]) for k in ("VmRSS_kib", "VmHWM_kib", "threads")}


def mem_cell(m):
    if not m:
        return "-"
    t = m.get("threads")
    return f"{mib(m.get('VmRSS_kib'))} / {mib(m.get('VmHWM_kib'))}" + (f" ({t:.0f})" if t is not None else "")


def errors_cell(s):
    if not s["errors_total"] and not s["flags"]:
        return "none"
    return f"**{s['errors_total']} wrk errors**"


def render(meta, facts, summary, derived):
    L = []
    cfg = meta["config"]
    L.append(f"# transitd growth run {meta['timestamp']}")
    L.append("")
    L.append(f"- command: `{meta['command']}`")
    g = meta["git"]
    dirty = "unknown" if g["dirty"] is None else (
        f"dirty ({g['changed_files']} changed or untracked paths)" if g["dirty"] else "clean")
    L.append(f"- commit: `{g['commit']}`, tree {dirty}")
    m = meta["machine"]
    L.append(f"- machine: {m['nproc']} CPUs ({m['cpu_model']}), kernel {m['kernel']}, memory {m['memory']}")
    L.append(f"- load: wrk {cfg['threads']} threads, {cfg['connections']} connections, {cfg['rounds']} rounds x "
             f"{cfg['duration']} s per case (+{cfg['warmup']} s unrecorded warm-up), cases alternate within "
             "each round; figures are MEDIANS over rounds; CPU-us/req = server process utime+stime "
             "(/proc/PID/stat) over the run / requests")
    for line in meta.get("notes", []):
        L.append(f"- {line}")
    L.append("")

    # ---------------------------------------------------------- headline
    L.append("## Flatness at a glance")
    L.append("")
    L.append("Ratios of the medians to the baseline row (1 key, resp. 1 version); 1.00x = flat. "
             "req/s above 1 and CPU-us/req below 1 are better.")
    L.append("")
    L.append("| case | vs | req/s ratio | CPU-us/req ratio | p99 ratio |")
    L.append("|---|---|---:|---:|---:|")
    for s in summary.values():
        if "baseline" not in s or (s["level"], s["workload"]) == (s["baseline"]["level"], s["baseline"]["workload"]):
            continue
        unit = "key" if s["phase"] == "keys" else "version"
        b = s["baseline"]
        b_title = next((x["title"] for x in summary.values() if x["phase"] == s["phase"]
                        and x["level"] == b["level"] and x["workload"] == b["workload"]), b["workload"])
        L.append(f"| {s['title']}, {count(s['level'], unit)} | {b_title}, {count(b['level'], unit)} | "
                 f"{fmt_ratio(s.get('rps_ratio'))} | {fmt_ratio(s.get('cpu_us_ratio'))} | {fmt_ratio(s.get('p99_ratio'))} |")
    for line in derived.get("headline", []):
        L.append("")
        L.append(line)
    L.append("")

    def run_table(phase, unit):
        rows = [s for s in summary.values() if s["phase"] == phase]
        if not rows:
            return
        L.append(f"| {unit} | case | req/s | p50 / p99 ms | server CPU-us/req | server cores "
                 "| req/s vs baseline | CPU-us/req vs baseline | audit B/req | errors |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for s in rows:
            L.append("| " + " | ".join([
                f"{s['level']:,}", s["title"], fmt_num(s["rps_median"]),
                f"{base.fmt_ms(s['p50_us_median'])} / {base.fmt_ms(s['p99_us_median'])}",
                fmt_num(s["cpu_us_per_request_median"], 1),
                fmt_num(s["server_cores_median"], 2),
                fmt_ratio(s.get("rps_ratio")), fmt_ratio(s.get("cpu_us_ratio")),
                fmt_num(s["audit_bytes_per_request_median"]),
                errors_cell(s)]) + " |")
        L.append("")

    # ---------------------------------------------------------- key count
    if any(s["phase"] == "keys" for s in summary.values()):
        ks = sorted({s["level"] for s in summary.values() if s["phase"] == "keys"})
        L.append("## Key count: encrypt 64 B with " + ", ".join(f"{k:,}" for k in ks[:-1])
                 + (" and " if len(ks) > 1 else "") + f"{ks[-1]:,} keys")
        L.append("")
        L.append("`hot key`: every request on key `k0`; `random key`: the key drawn uniformly per request among "
                 "all the existing keys (`lua/keys.lua`; both cases use that same script, so the client's work "
                 "per request is the same). With 1 key both cases are the same request: their difference is "
                 "the noise of this machine. Ratios are to the same case with 1 key.")
        L.append("")
        run_table("keys", "keys")
        # The first key is created alone: no rate to speak of.
        creates = [f for f in facts if f["kind"] == "create" and f["phase"] == "keys" and f["created"] > 1]
        if creates:
            L.append("Key creation (`POST transit/keys/<name>`, aes256-gcm96, root token, "
                     f"{creates[0]['concurrency']} keep-alive connections from a Python client):")
            L.append("")
            L.append("| keys then | created | seconds | keys/s | p50 / p99 / max ms | server CPU-us per key | machine busy % |")
            L.append("|---:|---:|---:|---:|---:|---:|---:|")
            for c in creates:
                lm = c["latency_ms"] or {}
                L.append(f"| {c['level']:,} | {c['created']:,} (`{c['first']}`..`{c['last']}`) | {c['seconds']:.1f} | "
                         f"{fmt_num(c['keys_per_s'])} | {fmt_num(lm.get('p50'), 2)} / {fmt_num(lm.get('p99'), 2)} / "
                         f"{fmt_num(lm.get('max'), 1)} | {fmt_num(c['server_cpu_us_per_key'])} | "
                         f"{fmt_num(c['machine_busy_pct'])} |")
            L.append("")
        L.append("Server memory, MiB: VmRSS (resident now) / VmHWM (peak resident so far) from /proc/PID/status, "
                 "with the thread count in brackets. With mlock on, a page is locked once touched (MCL_ONFAULT) and "
                 "never given back, so the peak of a burst stays resident: compare levels with like thread counts. "
                 "`after a restart`: a "
                 "new process whose unseal loaded all the keys, before any load (median over the restarts); the "
                 "cleanest measure of what the keys cost, hence `per key` from it.")
        L.append("")
        L.append("| keys | after creating | after the load | after a restart | per key (after a restart, vs the "
                 "previous level) | stored keys (SQLite) | SQLite db + wal MiB |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|")
        levels = sorted({f["level"] for f in facts if f["kind"] == "mem" and f["phase"] == "keys" and f["level"] > 0})
        prev = None
        for level in levels:
            a = mem_at(facts, "keys", level, "after creating") or {}
            b = mem_at(facts, "keys", level, "after the load") or {}
            c = mem_restart(facts, level)
            per_key = "-"
            if prev is not None and c.get("VmRSS_kib") and prev[1].get("VmRSS_kib"):
                per_key = f"{1024 * (c['VmRSS_kib'] - prev[1]['VmRSS_kib']) / (level - prev[0]):,.0f} B"
            st = next((f for f in facts if f["kind"] == "storage" and f["phase"] == "keys" and f["level"] == level), {})
            db = (st.get("file_db_bytes") or 0) + (st.get("file-wal_bytes") or 0)
            L.append(f"| {level:,} | {mem_cell(a)} | {mem_cell(b)} | {mem_cell(c)} | {per_key} | "
                     f"{count(st['key_rows'], 'row') if st.get('key_rows') is not None else '-'}, "
                     f"{fmt_num((st.get('key_bytes') or 0) / 1024)} KiB | "
                     f"{db / 1048576:,.1f} |")
            if c:
                prev = (level, c)
        fresh = mem_at(facts, "keys", 0, "fresh server, unsealed, no key")
        if fresh:
            L.append("")
            L.append(f"Fresh server, unsealed, no key yet: {mem_cell(fresh)} MiB.")
        L.append("")

    # ---------------------------------------------------------- start-up
    starts = [f for f in facts if f["kind"] == "startup"]
    if starts:
        L.append("## Start-up")
        L.append("")
        L.append("The server is stopped (TERM; `stop` is polled in 100 ms steps) and started again on the same "
                 "storage, then unsealed through the API (Shamir 1/1, as in the rest of the harness). `first "
                 "answer`: from the process start to the first HTTP answer (`sys/seal-status`, sealed; polled "
                 "with curl, a few ms of resolution); `unseal call`: the `sys/unseal` request alone, which reads "
                 "and decrypts every key; `serving`: first answer + from sending the unseal to `sys/health` "
                 "answering 200 (as if the unseal came the moment the server answered). Medians over the "
                 "restarts, each restart's value in brackets.")
        L.append("")
        L.append("| keys | restarts | stop ms | first answer ms | unseal call ms | serving ms | memory after start |")
        L.append("|---:|---:|---:|---:|---:|---:|---:|")
        for level in sorted({s["level"] for s in starts}):
            ss = [s for s in starts if s["level"] == level]

            def cell(k, ss=ss):
                vals = [s[k] for s in ss if s.get(k) is not None]
                if not vals:
                    return "-"
                return f"{med(vals):,.0f} ({', '.join(f'{v:,.0f}' for v in vals)})"
            L.append(f"| {level:,} | {len(ss)} | {cell('stop_ms')} | {cell('answer_ms')} | {cell('unseal_ms')} | "
                     f"{cell('serving_ms')} | {mem_cell(mem_restart(facts, level))} |")
        for line in derived.get("startup", []):
            L.append("")
            L.append(line)
        L.append("")

    # ---------------------------------------------------------- versions
    if any(s["phase"] == "versions" for s in summary.values()):
        top_v = max(s["level"] for s in summary.values() if s["phase"] == "versions")
        L.append(f"## Versions: one key with 1 and then {top_v:,} versions")
        L.append("")
        L.append("Key `ver` (aes256-gcm96) alone in a fresh server: measured with 1 version, then rotated to "
                 f"{top_v:,} versions and measured again. `decrypt v1`: a ciphertext made with version 1; `decrypt "
                 "latest`: one made with the latest version (with 1 version that is the same request). Ratios "
                 "are to the 1-version row of the same request (decrypt latest: to decrypt v1 with 1 version).")
        L.append("")
        run_table("versions", "versions")
        for r in (f for f in facts if f["kind"] == "rotate"):
            L.append(f"Rotations: {r['rotations']:,} of `{r['key']}` one after the other in {r['seconds']:.1f} s "
                     f"({fmt_num(r['rotations_per_s'])}/s, server {r['server_cpu_s']:.1f} CPU-s); mean "
                     f"{r['first_ms_mean']:.2f} ms per rotation for the first {r['window']}, "
                     f"{r['last_ms_mean']:.2f} ms for the last {r['window']} (each rotation rewrites the whole "
                     "keyring to storage).")
            L.append("")
        vs = [f for f in facts if f["kind"] == "storage" and f["phase"] == "versions"]
        vm = [f for f in facts if f["kind"] == "mem" and f["phase"] == "versions"]
        if vs or vm:
            L.append("| versions | stored keyring B | VmRSS / VmHWM after the key change MiB | after the load MiB |")
            L.append("|---:|---:|---:|---:|")
            for level in sorted({f["level"] for f in vs + vm}):
                st = next((f for f in vs if f["level"] == level), {})
                a = mem_at(facts, "versions", level, "after creating") or {}
                b = mem_at(facts, "versions", level, "after the load") or {}
                L.append(f"| {level:,} | {fmt_num(st.get('largest_key_bytes'))} | {mib(a.get('VmRSS_kib'))} / "
                         f"{mib(a.get('VmHWM_kib'))} | {mib(b.get('VmRSS_kib'))} / {mib(b.get('VmHWM_kib'))} |")
            L.append("")

    # ---------------------------------------------------------- per round
    L.append("## Per round")
    L.append("")
    L.append("req/s and server CPU-us/req of each round, in run order:")
    L.append("")
    L.append("| phase | level | case | req/s | CPU-us/req |")
    L.append("|---|---:|---|---|---|")
    for s in summary.values():
        L.append(f"| {s['phase']} | {s['level']:,} | {s['title']} | "
                 + ", ".join(fmt_num(v) for v in s["rps_rounds"]) + " | "
                 + ", ".join(fmt_num(v, 1) for v in s["cpu_us_rounds"]) + " |")
    L.append("")
    checks = []
    for s in summary.values():
        for f in s["flags"]:
            checks.append(f"- **FLAGGED** {s['phase']} {s['level']:,} {s['title']}, {f}")
    if meta.get("audit"):
        checks.append(f"- transitd audit log: {meta['audit']}")
    if checks:
        L.append("Checks:")
        L.append("")
        L.extend(checks)
        L.append("")
    return "\n".join(L)


def derive(facts, summary):
    d = {"headline": [], "startup": []}
    runs = [s for s in summary.values() if s["phase"] == "keys"]
    if runs:
        top = max(s["level"] for s in runs)
        hot = summary.get(("keys", top, "hot"))
        rnd = summary.get(("keys", top, "random"))
        parts = []
        for s in (hot, rnd):
            if s and "rps_ratio" in s:
                parts.append(f"{s['title']}: req/s {fmt_ratio(s['rps_ratio'])}, CPU-us/req "
                             f"{fmt_ratio(s['cpu_us_ratio'])}")
        if parts:
            d["headline"].append(f"With {top:,} keys against 1 key: " + "; ".join(parts) + ".")
    starts = [f for f in facts if f["kind"] == "startup"]
    levels = sorted({s["level"] for s in starts})
    if len(levels) >= 2:
        lo, hi = levels[0], levels[-1]
        u_lo = med([s["unseal_ms"] for s in starts if s["level"] == lo])
        u_hi = med([s["unseal_ms"] for s in starts if s["level"] == hi])
        r_hi = med([s["serving_ms"] for s in starts if s["level"] == hi])
        d["startup"].append(f"Unseal cost per key: {1000 * (u_hi - u_lo) / (hi - lo):,.1f} us "
                            f"((unseal call with {hi:,} keys - with {lo:,}) / {hi - lo:,} keys).")
        d["headline"].append(f"Start-up with {hi:,} keys: serving {r_hi / 1000:,.2f} s after the process "
                             f"started, of which the unseal call {u_hi / 1000:,.2f} s (with {lo:,} key: "
                             f"{u_lo:,.0f} ms).")
    rest = {lv: mem_restart(facts, lv) for lv in levels}
    rest = {lv: m for lv, m in rest.items() if m.get("VmRSS_kib")}
    if len(rest) >= 2:
        ks = sorted(rest)
        a, b = ks[-2], ks[-1]
        per = 1024 * (rest[b]["VmRSS_kib"] - rest[a]["VmRSS_kib"]) / (b - a)
        d["headline"].append("Server memory after a restart (every key loaded, no load yet): VmRSS "
                             + ", ".join(f"{mib(rest[k]['VmRSS_kib'])} MiB with {count(k, 'key')}" for k in ks)
                             + f": about {per:,.0f} B per key between {a:,} and {b:,} keys.")
    creates = [f for f in facts if f["kind"] == "create" and f["created"] >= 1000]
    if creates:
        rate = sum(c["created"] for c in creates) / sum(c["seconds"] for c in creates)
        d["headline"].append(f"Key creation: {rate:,.0f} keys/s overall ({sum(c['created'] for c in creates):,} keys).")
    return d


def cmd_report(a):
    facts = [json.loads(l) for l in open(a.facts, encoding="utf-8") if l.strip()]
    runs = [f for f in facts if f["kind"] == "run"]
    if not runs:
        die("no measured runs to report")
    summary = summarize_runs(runs)
    add_ratios(summary, "keys", lambda w: ("keys", 1, w))
    add_ratios(summary, "versions", lambda w: ("versions", 1, "dec_v1" if w == "dec_latest" else w))
    derived = derive(facts, summary)
    meta = {
        "timestamp": a.timestamp,
        "command": a.command,
        "git": base.git_info(a.repo),
        "machine": base.machine(),
        "config": {"rounds": a.rounds, "duration": a.duration, "connections": a.connections,
                   "threads": a.threads, "warmup": a.warmup},
        "notes": [n for n in a.note if n],
        "audit": a.audit,
        "total_seconds": a.total_seconds,
    }
    md = render(meta, facts, summary, derived)
    if a.total_seconds is not None:
        md += f"\nWhole run (build excluded): {a.total_seconds / 60:.1f} min.\n"
    base.write_report(md, {"meta": meta, "summary": list(summary.values()), "derived": derived, "facts": facts},
                      a.out_md, a.out_json, runs, "wrk errors")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("create-keys")
    s.add_argument("--addr", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--mount", default="transit")
    s.add_argument("--prefix", default="k")
    s.add_argument("--start", type=int, required=True)
    s.add_argument("--end", type=int, required=True)
    s.add_argument("--type", default="aes256-gcm96")
    s.add_argument("--concurrency", type=int, default=16)
    s.add_argument("--phase", default="keys")
    s.add_argument("--level", type=int, required=True)
    s.set_defaults(fn=cmd_create_keys)

    s = sub.add_parser("rotate")
    s.add_argument("--addr", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--mount", default="transit")
    s.add_argument("--key", required=True)
    s.add_argument("--times", type=int, required=True)
    s.add_argument("--expect-latest", type=int)
    s.set_defaults(fn=cmd_rotate)

    s = sub.add_parser("mem")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--phase", required=True)
    s.add_argument("--level", type=int, required=True)
    s.add_argument("--when", required=True)
    s.set_defaults(fn=cmd_mem)

    s = sub.add_parser("startup")
    s.add_argument("--addr", required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--t0-ns", type=int, required=True)
    s.add_argument("--answer-ns", type=int, required=True)
    s.add_argument("--unseal-key", required=True)
    s.add_argument("--timeout", type=float, default=600)
    s.add_argument("--phase", default="keys")
    s.add_argument("--level", type=int, required=True)
    s.add_argument("--restart", type=int, required=True)
    s.add_argument("--stop-ms", type=float)
    s.set_defaults(fn=cmd_startup)

    s = sub.add_parser("storage")
    s.add_argument("--db", required=True)
    s.add_argument("--phase", required=True)
    s.add_argument("--level", type=int, required=True)
    s.add_argument("--when", default="")
    s.set_defaults(fn=cmd_storage)

    s = sub.add_parser("record")
    s.add_argument("--phase", required=True)
    s.add_argument("--level", type=int, required=True)
    s.add_argument("--workload", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--wrk-output", required=True)
    s.add_argument("--cpu-before", required=True)
    s.add_argument("--cpu-after", required=True)
    s.add_argument("--audit-bytes", type=int)
    s.set_defaults(fn=cmd_record)

    s = sub.add_parser("report")
    s.add_argument("--facts", required=True)
    s.add_argument("--repo", required=True)
    s.add_argument("--timestamp", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--rounds", type=int, required=True)
    s.add_argument("--duration", type=int, required=True)
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--threads", type=int, required=True)
    s.add_argument("--warmup", type=int, required=True)
    s.add_argument("--note", action="append", default=[])
    s.add_argument("--audit")
    s.add_argument("--total-seconds", type=float)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-json", required=True)
    s.set_defaults(fn=cmd_report)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
