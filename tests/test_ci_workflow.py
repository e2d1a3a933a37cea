"""The GitHub Actions workflow (.github/workflows/test.yml): valid, and running what it says where it says.

It cannot run here. actionlint's PyPI wrapper downloads its binary when installed, which this machine
cannot, so the workflow is checked against GitHub's workflow schema as check-jsonschema ships it (offline),
and its content against what the suite needs. The Windows skips of the `postgres` and `redis` tests are
tests/support/services.py's, checked below.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.support.servers import ROOT, free_port
from tests.support.services import reachable, skip_reason

WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"
SCHEMA = "vendor.github-workflows"


def workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return document


def test_the_workflow_is_valid_for_github() -> None:
    """check-jsonschema validates the file against the GitHub workflow schema it ships."""
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", SCHEMA, str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_runs_on_linux_and_windows_with_python_311_and_312() -> None:
    """Two jobs, ubuntu-latest and windows-latest, each over Python 3.11 and 3.12."""
    jobs = workflow()["jobs"]
    assert {job["runs-on"] for job in jobs.values()} == {"ubuntu-latest", "windows-latest"}
    assert all(job["strategy"]["matrix"]["python"] == ["3.11", "3.12"] for job in jobs.values())


def test_linux_runs_make_test_with_postgres_and_redis() -> None:
    """The ubuntu job runs `make test` beside PostgreSQL (trust, database test) and Redis on their ports."""
    linux = workflow()["jobs"]["linux"]
    assert any(step.get("run", "").startswith("make test") for step in linux["steps"])
    postgres, redis = linux["services"]["postgres"], linux["services"]["redis"]
    assert postgres["ports"] == ["5432:5432"]
    assert postgres["env"] == {"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_DB": "test"}
    assert redis["ports"] == ["6379:6379"]


def test_windows_runs_the_three_parts_of_make_test() -> None:
    """Without make, the windows job runs what `make test` runs: ruff, mypy, pytest."""
    commands = "\n".join(step.get("run", "") for step in workflow()["jobs"]["windows"]["steps"])
    for command in (
        "ruff check lastro examples tests benchmarks scripts",
        "ruff format --check",
        "mypy lastro examples",
        "python -m pytest",
    ):
        assert command in commands


def test_every_matrix_value_used_is_defined() -> None:
    """Each `${{ matrix.NAME }}` a job uses is in that job's matrix (a typo would be an empty string)."""
    for job in workflow()["jobs"].values():
        used = set(re.findall(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", yaml.safe_dump(job)))
        assert used <= set(job["strategy"]["matrix"])


def test_on_windows_an_unreachable_server_skips_its_tests_saying_why() -> None:
    """windows + no PostgreSQL: the reason names the server, its address and where the tests run."""
    reason = skip_reason({"postgres"}, "win32", "postgresql://postgres@127.0.0.1:5432/test", lambda *_: False)
    assert reason is not None
    assert reason.startswith("PostgreSQL is not reachable on 127.0.0.1:5432")
    assert "the Linux job runs the postgres tests" in reason


def test_on_windows_a_reachable_server_runs_its_tests() -> None:
    """windows with the servers up (a developer's machine): nothing skips."""
    assert skip_reason({"postgres", "redis"}, "win32", "postgresql://h:1/t", lambda *_: True) is None


def test_on_windows_a_posix_test_skips_saying_why() -> None:
    """A test marked `posix` (signals, /proc) skips on Windows, naming what Windows lacks; not elsewhere."""
    reason = skip_reason({"posix"}, "win32", "postgresql://h:1/t", lambda *_: True)
    assert reason is not None
    assert reason.startswith("needs POSIX signals or /proc")
    assert skip_reason({"posix"}, "linux", "postgresql://h:1/t", lambda *_: True) is None


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_elsewhere_an_unreachable_server_is_a_failure_not_a_skip(platform: str) -> None:
    """On Linux and macOS the servers are part of the setup: their tests never skip silently."""
    assert skip_reason({"postgres", "redis"}, platform, "postgresql://h:1/t", lambda *_: False) is None


def test_the_postgres_address_comes_from_the_test_url() -> None:
    """LASTRO_TEST_POSTGRES_URL's host and port are the ones asked, not the default."""
    asked: list[tuple[str, int]] = []
    skip_reason({"postgres"}, "win32", "postgresql://u@db.local:6543/t", lambda *a: asked.append(a) or True)
    assert asked == [("db.local", 6543)]


@pytest.mark.redis
def test_a_closed_port_is_unreachable() -> None:
    """Nothing listens on a free port: not reachable; the real Redis here is."""
    assert reachable("127.0.0.1", free_port()) is False
    assert reachable("127.0.0.1", 6379) is True
