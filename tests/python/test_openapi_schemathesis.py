"""Schemathesis against a transitd dev server, driven by the server's own
`sys/internal/specs/openapi`: at least 10,000 generated requests with the
root token, no 5xx, and every reply's status, content type and body as the
document says."""

import re
import subprocess
import sys
from pathlib import Path

# Operations that would end the run's usefulness, not find bugs:
# sealing (every later request is 503), revoking the run's own token
# (revoke-self; revoke-prefix/force of auth/token), enabling or disabling
# mounts, login methods and audit devices (a disabled transit/ leaves nothing
# to test; a file audit device writes where the generator says).
EXCLUDED = (
    r"/sys/seal$|/sys/leases/revoke-(prefix|force)/|/sys/audit/|"
    r"/auth/token/revoke-self$|/sys/mounts/|/sys/auth/"
)
# `sys/health` answers the status its query asks for (`activecode=500` is
# a 500 by request, as in Vault): every check but "no 5xx" applies, in a run
# of its own.
HEALTH = r"/sys/health$"
CONFORMANCE = "response_schema_conformance,status_code_conformance,content_type_conformance"
# 89 operations in the main run: 160 examples each give over 10,000
# requests (operations with few possible inputs stop early).
EXAMPLES_PER_OPERATION = 160
MIN_REQUESTS = 10_000


def schemathesis(server, checks: str, *selection: str) -> int:
    """One run; returns the number of responses checked, failing on any finding."""
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st), "run", f"{server.url}/v1/sys/internal/specs/openapi",
            "--base-url", f"{server.url}/v1",
            "-H", "X-Vault-Token: root",
            "--checks", checks,
            *selection,
            "--hypothesis-max-examples", str(EXAMPLES_PER_OPERATION),
            "--hypothesis-seed", "18",
            "--hypothesis-suppress-health-check", "all",
            "--workers", "2",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=900,
    )
    out = run.stdout + run.stderr
    # The failures section names each failing operation and its reproduction.
    failures = out[out.find("FAILURES"):out.find("SUMMARY")]
    assert run.returncode == 0, failures[:12000] or out[-8000:]
    # "response_schema_conformance   10350 / 10350 passed": one per response.
    counted = re.search(r"response_schema_conformance\s+(\d+) / (\d+) passed", out)
    assert counted, out[-4000:]
    passed, total = int(counted.group(1)), int(counted.group(2))
    assert passed == total, out[-4000:]
    return total


def test_schemathesis_finds_no_server_error_or_mismatch(transitd):
    main = schemathesis(
        transitd,
        "not_a_server_error," + CONFORMANCE,
        "--exclude-path-regex", f"{EXCLUDED}|{HEALTH}",
    )
    health = schemathesis(transitd, CONFORMANCE, "--include-path-regex", HEALTH)
    print(f"schemathesis: {main} + {health} (sys/health) requests")
    assert main + health >= MIN_REQUESTS, (main, health)
