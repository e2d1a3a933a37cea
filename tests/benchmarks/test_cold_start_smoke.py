"""`python -m benchmarks.cold_start --smoke`: a fresh start, then a cold and a warm run, each reported."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmarks.orders.baseline import BASELINE_DIR
from lastro import Settings
from tests.support.interpreter import run_benchmark


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed: apt-get install -y wrk")
@pytest.mark.skipif(
    not (BASELINE_DIR / "ceiling_app.py").exists(),
    reason=f"the ceiling is not in {BASELINE_DIR} (set BENCH_BASELINE_DIR)",
)
def test_smoke_measures_a_cold_and_a_warm_run(tmp_path: Path) -> None:
    """The orders service is started, loaded at once and again, and both runs are reported without errors."""
    output = tmp_path / "cold.json"
    arguments = ["--smoke", "--systems", "orders-lastro", "--json", str(output)]
    env = {name: value for name, value in os.environ.items() if name.upper() not in Settings.model_fields}
    done = run_benchmark("cold_start", *arguments, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = json.loads(output.read_text())["runs"]
    assert [(run["system"], run["run"]) for run in runs] == [
        ("orders-lastro", "cold"),
        ("orders-lastro", "warm"),
    ]
    assert all(run["requests"] > 0 and run["non_2xx"] == 0 and run["socket_errors"] == 0 for run in runs)
    assert runs[0]["started_after_ready_s"] < 1.0
    assert "| get | orders-lastro | cold |" in done.stdout
