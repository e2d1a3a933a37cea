"""`python -m benchmarks.unit_latency`: one tree, a few units, a table of medians."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


def test_the_medians_of_a_tree_read_and_write_units_are_a_table() -> None:
    """Five units of each kind on this tree give one row of three positive medians."""
    command = [sys.executable, "-m", "benchmarks.unit_latency", f"here={ROOT}", "--url", POSTGRES_URL]
    result = subprocess.run(
        [*command, "--units", "5", "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    header, _, row = result.stdout.splitlines()
    assert header == (
        "| tree | read unit, median ms | write unit, median ms | write unit with an event, median ms |"
    )
    name, *medians = row.strip("| ").split(" | ")
    assert name == "here"
    assert len(medians) == 3
    assert all(float(median) > 0 for median in medians)
