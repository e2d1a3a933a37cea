"""`python -m benchmarks.durability --smoke`: both settings start, take the write load and are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.interpreter import run_benchmark


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed: apt-get install -y wrk")
def test_smoke_reports_normal_and_full(tmp_path: Path) -> None:
    """The smoke run exits 0 with one row per SQLITE_SYNCHRONOUS setting and no non-2xx answer."""
    done = run_benchmark("durability", "--smoke", "--dir", str(tmp_path), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.startswith(("| NORMAL", "| FULL"))]
    assert [row[1].strip() for row in rows] == ["NORMAL", "FULL"]
    assert [row[5].strip() for row in rows] == ["0", "0"]
