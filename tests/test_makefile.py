"""`make run` installs what DATABASE_URL needs: the postgres extra for a PostgreSQL URL, nothing more on
SQLite. Checked with `make -n`, which prints the commands without running them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def planned_run(tmp_path: Path, database_url: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", f"VENV={tmp_path / 'venv'}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgres://postgres@127.0.0.1:5432/test",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ],
)
def test_a_postgres_url_installs_the_postgres_extra(tmp_path: Path, url: str) -> None:
    """With a PostgreSQL DATABASE_URL, `make run` installs the postgres extra before serving."""
    plan = planned_run(tmp_path, url)
    assert '-e ".[examples,postgres]"' in plan
    assert plan.index("postgres]") < plan.index("lastro serve")


def test_the_default_sqlite_url_installs_no_postgres_driver(tmp_path: Path) -> None:
    """On the default SQLite URL, `make run` installs the examples extra only."""
    plan = planned_run(tmp_path, None)
    assert '-e ".[examples]"' in plan
    assert "postgres" not in plan
