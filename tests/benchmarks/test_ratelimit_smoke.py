"""`python -m benchmarks.ratelimit --smoke --parts checks`: the in-process part, every store, no wrk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.interpreter import run_benchmark
from tests.support.process import ROOT

pytestmark = pytest.mark.redis


def test_the_checks_part_measures_every_store(tmp_path: Path) -> None:
    """Each store gets a positive time per check, for one key and for many."""
    output = tmp_path / "ratelimit.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = run_benchmark(
        "ratelimit", "--smoke", "--parts", "checks", "--json", str(output), timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(output.read_text())["checks"]
    assert {row["store"] for row in rows} == {"LocalStore", "SharedFileStore", "RedisStore"}
    assert len(rows) == 6
    assert all(row["us_per_check"] > 0 for row in rows)
