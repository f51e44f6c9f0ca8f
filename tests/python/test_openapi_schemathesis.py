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
CHECKS = (
    "not_a_server_error,response_schema_conformance,"
    "status_code_conformance,content_type_conformance"
)
# 90 operations after the exclusions: 115 examples each is over 10,000.
EXAMPLES_PER_OPERATION = 115
MIN_REQUESTS = 10_000


def test_schemathesis_finds_no_server_error_or_mismatch(transitd):
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st), "run", f"{transitd.url}/v1/sys/internal/specs/openapi",
            "--base-url", f"{transitd.url}/v1",
            "-H", "X-Vault-Token: root",
            "--checks", CHECKS,
            "--exclude-path-regex", EXCLUDED,
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
    # "not_a_server_error   10350 / 10350 passed": one check per response.
    counted = re.search(r"not_a_server_error\s+(\d+) / (\d+) passed", out)
    assert counted, out[-4000:]
    passed, total = int(counted.group(1)), int(counted.group(2))
    assert passed == total >= MIN_REQUESTS, out[-4000:]
