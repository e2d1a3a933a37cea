"""`python -m benchmarks.ratelimit --smoke --parts checks`: the in-process part, every store, no wrk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.redis


def test_the_checks_part_measures_every_store(tmp_path: Path) -> None:
    """Each store gets a positive time per check, for one key and for many."""
    output = tmp_path / "ratelimit.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "benchmarks.ratelimit",
        "--smoke",
        "--parts",
        "checks",
        "--json",
        str(output),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(output.read_text())["checks"]
    assert {row["store"] for row in rows} == {"LocalStore", "SharedFileStore", "RedisStore"}
    assert len(rows) == 6
    assert all(row["us_per_check"] > 0 for row in rows)
