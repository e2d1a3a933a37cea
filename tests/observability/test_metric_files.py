"""The workers' metric files: a gone worker's counts folded into the archive, counted once, files gone."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from lastro.observability.metric_files import fold, reading
from tests.support.metrics import parse, series_of, worker


def total(directory: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    with reading(directory):
        series = parse(generate_latest(registry).decode())
    return sum(series_of(series, "http_requests_total").values())


def histogram_count(directory: Path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    series = parse(generate_latest(registry).decode())
    return sum(series_of(series, "http_request_duration_seconds_count").values())


def test_a_folded_worker_still_counts_once(tmp_path: Path) -> None:
    """Two workers gone and folded: the totals are what they answered, the counter and histogram alike."""
    first, second = worker(tmp_path, 7), worker(tmp_path, 5)
    assert total(tmp_path) == 12
    fold(tmp_path, first)
    fold(tmp_path, second)
    assert total(tmp_path) == 12
    assert histogram_count(tmp_path) == 12


def test_a_folded_worker_leaves_no_file(tmp_path: Path) -> None:
    """However many workers come and go, a scrape reads the archive and the live workers' files."""
    for _ in range(3):
        fold(tmp_path, worker(tmp_path, 1))
    names = sorted(path.name for path in tmp_path.glob("*.db") if not path.name.startswith("gauge_"))
    assert names == ["counter_archive.db", "histogram_archive.db"]


def test_folding_a_worker_twice_counts_it_once(tmp_path: Path) -> None:
    """A second fold of the same pid finds no file and adds nothing."""
    pid = worker(tmp_path, 4)
    fold(tmp_path, pid)
    fold(tmp_path, pid)
    assert total(tmp_path) == 4
