"""`python -m benchmarks.ab`: two trees, one round each, a tiny database."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from benchmarks.rounds import orders_system
from tests.support.interpreter import run_benchmark
from tests.support.process import ROOT

NO_WRK = "wrk is not installed: apt-get install -y wrk"


@pytest.mark.skipif(shutil.which("wrk") is None, reason=NO_WRK)
def test_two_trees_are_measured_side_by_side(tmp_path: Path) -> None:
    """Each tree answers its round with 2xx, and the report names both."""
    output = tmp_path / "ab.json"
    arguments = [f"one={ROOT}", f"two={ROOT}", "--rounds", "1", "--set", "two:METRICS_ENABLED=false"]
    arguments += ["--duration", "0.5", "--warmup", "0", "--seed", "200", "--json", str(output)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = run_benchmark("ab", *arguments, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    assert [row["system"] for row in rows] == ["one", "two"]
    assert all(row["ok_rps"] > 0 and row["non_2xx"] == 0 for row in rows)
    assert "| two |" in done.stdout
    assert "paired CPU" in done.stdout
    assert json.loads(output.read_text())["settings"] == {"two": {"METRICS_ENABLED": "false"}}


@pytest.mark.skipif(shutil.which("wrk") is None, reason=NO_WRK)
def test_the_patch_workload_patches_orders_no_run_has_touched(tmp_path: Path) -> None:
    """Each tree's PATCH runs get fresh orders of its own database, and every PATCH answers 2xx."""
    output = tmp_path / "ab.json"
    arguments = [f"one={ROOT}", f"two={ROOT}", "--workload", "patch", "--rounds", "2", "--connections", "4"]
    arguments += ["--duration", "0.5", "--warmup", "0", "--seed", "300", "--json", str(output)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = run_benchmark("ab", *arguments, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(output.read_text())["rows"]
    assert all(run["ok_rps"] > 0 and run["non_2xx"] == 0 for row in rows for run in row["runs"])


def test_a_tree_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    """A mistyped path is one usage line and exit code 2, before anything starts."""
    done = run_benchmark("ab", f"one={tmp_path / 'missing'}", timeout=60)
    assert done.returncode == 2
    assert "expected NAME=PATH" in done.stderr


def test_a_setting_for_an_unknown_tree_is_refused(tmp_path: Path) -> None:
    """--set names one of the trees given."""
    done = run_benchmark("ab", f"one={ROOT}", "--set", "two:X=1", timeout=60)
    assert done.returncode == 2
    assert "expected NAME:SETTING=VALUE" in done.stderr


def test_each_tree_runs_its_own_code(tmp_path: Path) -> None:
    """A tree's server starts in that tree, with it on PYTHONPATH and its own migrations to check against."""
    tree = tmp_path / "tree"
    tree.mkdir()
    seeded = tmp_path / "seeded.db"
    sqlite3.connect(seeded).close()
    server, _, _ = orders_system(tmp_path, "other", {}, seeded, 1, tree=tree)
    assert server.cwd == tree
    assert server.env["PYTHONPATH"] == str(tree)
    assert server.env["MIGRATIONS_DIR"] == str(tree / "examples" / "orders" / "migrations")
