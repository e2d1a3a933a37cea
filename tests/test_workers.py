"""How many workers `WORKERS` starts, and the environment a worker learns it is one from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lastro.workers import (
    MIN_WORKERS,
    SCHEMA_CHECKED_ENV,
    SQLITE_MAX_WORKERS,
    SUPERVISED_ENV,
    is_supervised_worker,
    resolve_workers,
    schema_checked_for,
)

SQLITE = "sqlite:///./var/lastro.db"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def test_explicit_worker_count_is_used_as_is() -> None:
    """WORKERS=<n> is the count, whatever the cores or the database."""
    assert resolve_workers(7, SQLITE, cpu_count=1) == 7
    assert resolve_workers(1, POSTGRES, cpu_count=64) == 1


@pytest.mark.parametrize(("cores", "expected"), [(1, 2), (2, 2), (3, 3), (16, 16), (32, 32), (64, 32)])
def test_auto_on_postgres_is_one_per_core_between_2_and_32(cores: int, expected: int) -> None:
    """auto on a server database: one worker per core, at least 2, at most 32."""
    assert resolve_workers("auto", POSTGRES, cpu_count=cores) == expected


@pytest.mark.parametrize(("cores", "expected"), [(1, 2), (3, 3), (4, 4), (8, 4), (64, 4)])
def test_auto_on_sqlite_is_capped_at_4(cores: int, expected: int) -> None:
    """auto on SQLite: one worker per core, at least 2, at most 4."""
    assert resolve_workers("auto", SQLITE, cpu_count=cores) == expected
    assert SQLITE_MAX_WORKERS == 4


def test_auto_without_a_core_count_uses_the_machine() -> None:
    """auto with no explicit core count follows os.cpu_count()."""
    cores = os.cpu_count() or 1
    assert resolve_workers("auto", POSTGRES) == max(MIN_WORKERS, min(cores, 32))


def test_a_process_is_a_supervised_worker_only_when_serve_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only LASTRO_SERVE_WORKER=1, which `lastro serve` sets for its workers, makes a process one."""
    monkeypatch.delenv(SUPERVISED_ENV, raising=False)
    assert not is_supervised_worker()
    monkeypatch.setenv(SUPERVISED_ENV, "1")
    assert is_supervised_worker()


def test_the_schema_counts_as_checked_only_for_the_directory_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A check the supervisor made for one migrations directory does not stand for another."""
    checked, other = tmp_path / "migrations", tmp_path / "other"
    monkeypatch.setenv(SCHEMA_CHECKED_ENV, str(checked.resolve()))
    assert schema_checked_for(checked)
    assert not schema_checked_for(other)
