"""`python -m benchmarks.stack`: every variant starts, answers its hello route 200, and is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.stack import VARIANTS

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_reports_every_variant() -> None:
    """Two rounds of 20 requests: exit 0, a row per variant, nothing of the access lines on stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stack", "--rounds", "2", "--requests", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|")[1].strip() for line in done.stderr.splitlines() if line.startswith("| ")]
    assert rows == ["variant", *VARIANTS]
    assert '"event":"request"' not in done.stderr


def test_a_round_of_no_request_is_refused() -> None:
    """--requests 0 is a usage error (exit 2), not a division by zero."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.stack", "--requests", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--requests must be at least 1" in done.stderr
