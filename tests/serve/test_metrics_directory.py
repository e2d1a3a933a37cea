"""`MetricsDirectory`: where the workers' metric files live, emptied at start, forgotten per worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lastro.observability.metrics import DIRECTORY_ENV
from lastro.observability.slowest import slow_file
from lastro.serve.metrics_directory import MetricsDirectory
from lastro.settings import get_settings
from lastro.shared_memory import memory_directory
from tests.support.metrics import worker


@pytest.fixture(autouse=True)
def no_directory_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIRECTORY_ENV, "")  # recorded, so that what a test exports is undone after it
    monkeypatch.delenv(DIRECTORY_ENV)


def test_the_directory_is_in_shared_memory_and_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers inherit PROMETHEUS_MULTIPROC_DIR pointing at a directory in /dev/shm (or the temp dir)."""
    monkeypatch.delenv("SHARED_MEMORY_DIR")  # the default, not the tests' own directory
    directory = MetricsDirectory(get_settings(), "127.0.0.1:8000")
    try:
        path = directory.prepare()
        assert path.parent == memory_directory()
        assert path.is_dir()
        assert os.environ[DIRECTORY_ENV] == str(path)
    finally:
        directory.remove()
    assert not path.exists()


def test_each_address_has_its_own_directory() -> None:
    """Two services on one machine (two ports) never empty each other's counts."""
    settings = get_settings()
    assert (
        MetricsDirectory(settings, "127.0.0.1:8000").path != MetricsDirectory(settings, "127.0.0.1:8001").path
    )


def test_a_previous_run_is_wiped_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts a crashed run left behind never add to this run's."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    (tmp_path / "counter_123.db").write_bytes(b"old counts")
    MetricsDirectory(get_settings(), "127.0.0.1:8000").prepare()
    assert list(tmp_path.glob("*.db")) == []


def test_an_operators_directory_is_kept_but_emptied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PROMETHEUS_MULTIPROC_DIR set by the operator is used, and left in place at the end."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    directory = MetricsDirectory(get_settings(), "127.0.0.1:8000")
    assert directory.prepare() == tmp_path
    (tmp_path / "counter_123.db").write_bytes(b"counts")
    directory.remove()
    assert tmp_path.is_dir()
    assert list(tmp_path.glob("*.db")) == []


def test_a_gone_worker_loses_its_live_gauges_and_its_counts_are_folded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In progress and per-worker gauges go with their worker; its requests stay, in the archive."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    directory = MetricsDirectory(get_settings(), "127.0.0.1:8000")
    directory.prepare()
    pid = worker(tmp_path, 3)
    directory.worker_exited(pid)
    names = sorted(path.name for path in tmp_path.glob("*.db"))
    assert names == ["counter_archive.db", "histogram_archive.db"]


def test_a_gone_worker_leaves_the_dashboards_slowest_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its slowest requests file goes with it; another worker's stays."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    directory = MetricsDirectory(get_settings(), "127.0.0.1:8000")
    directory.prepare()
    for pid in (41, 42):
        slow_file(tmp_path, pid).write_text("[]")
    directory.worker_exited(41)
    assert [path.name for path in tmp_path.glob("slow-*.json")] == ["slow-42.json"]


def test_the_dashboards_files_of_a_previous_run_are_wiped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the counts started, the last readings and the slowest requests belong to the run that wrote
    them."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    for name in ("started.json", "readings.json", "slow-41.json"):
        (tmp_path / name).write_text("{}")
    MetricsDirectory(get_settings(), "127.0.0.1:8000").prepare()
    assert list(tmp_path.glob("*.json")) == []
