"""`python -m benchmarks.backups --smoke`: the offline copies, the checked backup and both kinds of rounds
are reported."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.interpreter import run_benchmark


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed: apt-get install -y wrk")
def test_smoke_reports_the_copies_and_both_kinds_of_rounds(tmp_path: Path) -> None:
    """The smoke run exits 0 with both copy methods, and rounds with and without backups, all 2xx."""
    done = run_benchmark("backups", "--smoke", "--dir", str(tmp_path), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| backup API, one step |" in done.stdout
    assert "| VACUUM INTO |" in done.stdout
    rows = [
        line.split("|") for line in done.stdout.splitlines() if line.startswith(("| no backup", "| backups"))
    ]
    assert [row[1].strip() for row in rows] == ["no backup", "backups running"]
    assert [row[5].strip() for row in rows] == ["0", "0"]
