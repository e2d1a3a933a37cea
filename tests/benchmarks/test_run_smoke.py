"""`python -m benchmarks.run --smoke`: every system and every part of the orders benchmark, end to end."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import psycopg
import pytest

from benchmarks.orders.baseline import BASELINE_DIR
from benchmarks.orders.systems import COMPARATOR_SYSTEMS, LIMIT_SYSTEMS, ORDER_SYSTEMS, POSTGRES_ADMIN_URL
from benchmarks.orders.workloads import WORKLOADS
from lastro import Settings
from tests.support.interpreter import run_benchmark


def _postgres_down() -> str | None:
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
    return None


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed: apt-get install -y wrk")
@pytest.mark.skipif(
    not (BASELINE_DIR / "seed_app.py").exists() or not (BASELINE_DIR / "ceiling_app.py").exists(),
    reason=f"the seed-style baseline or the ceiling is not in {BASELINE_DIR} (set BENCH_BASELINE_DIR)",
)
def test_smoke_runs_every_system_and_part(tmp_path: Path) -> None:
    if reason := _postgres_down():
        pytest.skip(reason)
    output = tmp_path / "orders.json"
    arguments = ["--smoke", "--json", str(output)]
    if importlib.util.find_spec("matplotlib") is not None:
        arguments += ["--chart", str(tmp_path / "orders.png")]
    env = {name: value for name, value in os.environ.items() if name.upper() not in Settings.model_fields}
    # Bounded: about 30 s on a 2-core machine (plus, once per machine, the baseline's venv).
    done = run_benchmark("run", *arguments, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    results = json.loads(output.read_text())
    assert set(results["systems"]) >= {*LIMIT_SYSTEMS, *ORDER_SYSTEMS}
    for name in LIMIT_SYSTEMS:
        system = results["systems"][name]
        assert [cell["workload"] for cell in system["cells"]] == ["hello"]
        assert system["cells"][0]["requests"] > 0
    for name in ORDER_SYSTEMS:
        system = results["systems"][name]
        assert [cell["workload"] for cell in system["cells"]] == list(WORKLOADS), name
        for cell in system["cells"]:
            # Every script talks its system's API correctly: 2xx answers, and no error but lastro's 503
            # back-pressure, which a worker starved of CPU by a busy machine may send.
            assert cell["requests"] > cell["non_2xx"], (name, cell)
            if name in COMPARATOR_SYSTEMS:
                assert cell["non_2xx"] == 0, (name, cell)
            else:
                assert set(cell["statuses"]) <= {"503"}, (name, cell)
            assert cell["socket_errors"] == 0, (name, cell)
            assert cell["locked"] == 0, (name, cell)
        assert system["rss"]["workers"] == 2, name
        assert system["start_to_ready_s"] > 0, name
    assert results["start_workers"]["workers"] == 4
    assert results["systems"]["lastro SQLite"]["profile"]["system"] == "lastro SQLite"
    assert results["systems"]["lastro PostgreSQL"]["profile_write"]["system"] == "lastro PostgreSQL"
    assert "### Targets" in done.stdout
    if "--chart" in arguments:
        assert (tmp_path / "orders.png").stat().st_size > 0
