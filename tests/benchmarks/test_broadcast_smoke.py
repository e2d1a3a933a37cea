"""`python -m benchmarks.broadcast --smoke --systems sqlite`: one small round on one machine of 4 workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.interpreter import run_benchmark
from tests.support.process import ROOT


def test_a_smoke_round_measures_every_delivery(tmp_path: Path) -> None:
    """4 clients, 20 orders created and updated: 80 deliveries, none refused, positive percentiles."""
    output = tmp_path / "broadcast.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = run_benchmark(
        "broadcast", "--smoke", "--systems", "sqlite", "--json", str(output), timeout=180, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(output.read_text())["systems"]
    assert result["deliveries"] == 80
    assert result["rounds"][0]["refused_writes"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
