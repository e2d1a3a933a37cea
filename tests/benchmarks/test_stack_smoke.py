"""`python -m benchmarks.stack`: every variant starts, answers its hello route 200, and is reported."""

from __future__ import annotations

from benchmarks.stack import VARIANTS
from tests.support.interpreter import run_benchmark


def test_a_tiny_run_reports_every_variant() -> None:
    """Two rounds of 20 requests: exit 0, a row per variant, nothing of the access lines on stderr."""
    done = run_benchmark("stack", "--rounds", "2", "--requests", "20", timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1].strip() for line in done.stderr.splitlines() if line.startswith("| ")]
    assert rows == ["variant", *VARIANTS]
    assert '"event":"request"' not in done.stderr


def test_a_round_of_no_request_is_refused() -> None:
    """--requests 0 is a usage error (exit 2), not a division by zero."""
    done = run_benchmark("stack", "--requests", "0", timeout=60)
    assert done.returncode == 2
    assert "--requests must be at least 1" in done.stderr
