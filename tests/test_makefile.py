"""`make run` installs what DATABASE_URL needs: the postgres extra for a PostgreSQL URL, nothing more on
SQLite, in development even when the shell sets no ENVIRONMENT. Checked with `make -n`, which prints the
commands without running them, and with a rule that prints what they see."""

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


def exported_environment(environment: str | None) -> str:
    """The ENVIRONMENT `make run`'s commands see, printed by a rule added on the command line."""
    env = {key: value for key, value in os.environ.items() if key != "ENVIRONMENT"}
    if environment is not None:
        env["ENVIRONMENT"] = environment
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "--eval", "shown: ; @echo $$ENVIRONMENT", "shown"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def test_make_run_serves_in_development_from_a_fresh_shell() -> None:
    """With no ENVIRONMENT in the shell, make's commands run in development (lastro's default: production)."""
    assert exported_environment(None) == "development"


def test_an_environment_from_the_shell_wins_over_make() -> None:
    """ENVIRONMENT=production make run serves in production."""
    assert exported_environment("production") == "production"
