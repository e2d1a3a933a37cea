"""`python -m benchmarks.broadcast --smoke --systems sqlite`: one small round on one machine of 4 workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_smoke_round_measures_every_delivery(tmp_path: Path) -> None:
    """4 clients, 20 orders created and updated: 80 deliveries, none refused, positive percentiles."""
    output = tmp_path / "broadcast.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "benchmarks.broadcast", "--smoke", "--systems", "sqlite"]
    done = subprocess.run(
        [*command, "--json", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(output.read_text())["systems"]
    assert result["deliveries"] == 80
    assert result["rounds"][0]["refused_writes"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
