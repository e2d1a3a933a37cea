"""The dashboard's window: rates, percentiles and error shares from two cumulative readings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lastro.observability.dashboard_data import (
    KEEP_SECONDS,
    Reading,
    ReadingHistory,
    quantile,
    window_figures,
)
from lastro.observability.metrics import Metrics

INF = math.inf
STARTED = 1000.0


def reading(at: float, buckets: tuple[tuple[float, float], ...], **statuses: float) -> Reading:
    """A hand-made cumulative reading: `buckets` (bound, cumulative count), `statuses` by class (`s2xx`)."""
    counts = {kind: statuses.get(f"s{kind}", 0.0) for kind in ("2xx", "3xx", "4xx", "5xx")}
    return Reading(at, sum(counts.values()), counts, buckets)


def test_a_percentile_is_interpolated_inside_its_bucket() -> None:
    """10 observations under 5 ms and 10 between 5 and 10 ms: p25 is 2.5 ms, p75 7.5 ms, p50 5 ms."""
    buckets = ((0.005, 10.0), (0.01, 20.0), (INF, 20.0))
    assert quantile(0.25, buckets) == pytest.approx(0.0025)
    assert quantile(0.5, buckets) == pytest.approx(0.005)
    assert quantile(0.75, buckets) == pytest.approx(0.0075)


def test_a_percentile_past_the_last_bound_is_that_bound() -> None:
    """As histogram_quantile does: a rank in the +Inf bucket reads as the highest finite bound."""
    assert quantile(0.99, ((0.005, 1.0), (10.0, 50.0), (INF, 100.0))) == 10.0


def test_no_observation_has_no_percentile() -> None:
    """An empty window: None, never 0 (which would read as a very fast service)."""
    assert quantile(0.5, ((0.005, 0.0), (INF, 0.0))) is None
    assert quantile(0.5, ()) is None


def test_the_window_is_the_difference_of_two_readings() -> None:
    """40 requests in 2 s, 4 of them 5xx and 2 4xx: 20 req/s, 10% and 5%, and percentiles of those 40."""
    before = reading(STARTED + 10, ((0.01, 100.0), (0.1, 100.0), (INF, 100.0)), s2xx=100)
    after = reading(STARTED + 12, ((0.01, 120.0), (0.1, 140.0), (INF, 140.0)), s2xx=134, s4xx=2, s5xx=4)
    figures = window_figures(after, before, STARTED)
    assert figures["window_seconds"] == 2.0
    assert figures["requests_per_second"] == 20.0
    assert figures["error_rate"] == 0.1
    assert figures["client_error_rate"] == 0.05
    assert figures["status_counts"] == {"2xx": 34, "3xx": 0, "4xx": 2, "5xx": 4}
    # 20 of the 40 under 10 ms, 20 between 10 and 100 ms: the median is the 10 ms bound, p95 at 91 ms.
    assert figures["latency_ms"] == {"p50": 10.0, "p95": 91.0, "p99": 98.2}


def test_without_a_baseline_the_window_is_the_whole_run() -> None:
    """The first read: averages since the counts started."""
    now = reading(STARTED + 50, ((0.01, 100.0), (INF, 100.0)), s2xx=100)
    figures = window_figures(now, None, STARTED)
    assert (figures["window_seconds"], figures["requests_per_second"]) == (50.0, 2.0)


def test_an_idle_window_has_no_rate_of_errors() -> None:
    """No request: 0 req/s, and error rates and percentiles null rather than a made-up 0."""
    same = reading(STARTED + 10, ((0.01, 5.0), (INF, 5.0)), s2xx=5)
    figures = window_figures(reading(STARTED + 12, same.buckets, s2xx=5), same, STARTED)
    assert figures["requests_per_second"] == 0.0
    assert figures["error_rate"] is None
    assert figures["latency_ms"] == {"p50": None, "p95": None, "p99": None}


def test_counts_that_went_down_are_not_compared() -> None:
    """A baseline of another run (counts higher than now's) is ignored: the whole run instead."""
    stale = reading(STARTED + 10, ((0.01, 500.0), (INF, 500.0)), s2xx=500)
    now = reading(STARTED + 20, ((0.01, 40.0), (INF, 40.0)), s2xx=40)
    figures = window_figures(now, stale, STARTED)
    assert (figures["window_seconds"], figures["requests_per_second"]) == (20.0, 2.0)


def test_a_reading_leaves_out_the_observers() -> None:
    """Scrapes of /metrics and the dashboard's own reads are not the application's traffic."""
    metrics = Metrics(None)
    metrics.answered("GET", "/items/{item_id}", 200, 0.002)
    metrics.answered("GET", None, 404, 0.001)
    metrics.answered("GET", "/metrics", 200, 0.003)
    metrics.answered("GET", "/admin/dashboard.json", 200, 0.004)
    now = Reading.of(metrics.families(), STARTED)
    assert now.requests == 2
    assert now.statuses == {"2xx": 1, "3xx": 0, "4xx": 1, "5xx": 0}
    assert now.buckets[-1] == (INF, 2.0)


def history_at(history: ReadingHistory, at: float) -> Reading | None:
    """The baseline a read at `at` gets."""
    return history.exchange(reading(at, ((INF, at),), s2xx=at), STARTED)


def test_the_first_read_has_no_baseline() -> None:
    """Nobody read before: no baseline (the window is then the whole run)."""
    assert history_at(ReadingHistory(None), STARTED + 5) is None


def test_the_baseline_is_the_previous_read() -> None:
    """A read 2 s after another is compared with it."""
    history = ReadingHistory(None)
    history_at(history, STARTED + 5)
    baseline = history_at(history, STARTED + 7)
    assert baseline is not None
    assert baseline.at == STARTED + 5


def test_reads_closer_than_a_second_share_a_longer_window() -> None:
    """Two dashboards reading 0.3 s apart do not divide by 0.3 s: the earlier, older reading serves."""
    history = ReadingHistory(None)
    history_at(history, STARTED + 5)
    history_at(history, STARTED + 7)
    baseline = history_at(history, STARTED + 7.3)
    assert baseline is not None
    assert baseline.at == STARTED + 5


def test_a_script_polling_rarely_gets_its_own_interval() -> None:
    """A read 5 minutes after the previous one covers those 5 minutes."""
    history = ReadingHistory(None)
    history_at(history, STARTED + 5)
    baseline = history_at(history, STARTED + 5 + 300)
    assert baseline is not None
    assert baseline.at == STARTED + 5


def test_old_readings_are_forgotten() -> None:
    """Only the readings of the last minute are kept, and the newest older one."""
    history = ReadingHistory(None)
    for second in range(0, 200, 2):
        history_at(history, STARTED + second)
    kept = history._load()
    assert min(r.at for r in kept) >= STARTED + 198 - KEEP_SECONDS


def test_workers_share_the_readings_through_the_directory(tmp_path: Path) -> None:
    """A read answered by one worker is the baseline of the next read, answered by another."""
    history_at(ReadingHistory(tmp_path), STARTED + 5)
    baseline = history_at(ReadingHistory(tmp_path), STARTED + 7)
    assert baseline is not None
    assert baseline.at == STARTED + 5
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_previous_runs_readings_are_ignored(tmp_path: Path) -> None:
    """Readings from before the counts started belong to another run."""
    history_at(ReadingHistory(tmp_path), STARTED - 30)
    assert history_at(ReadingHistory(tmp_path), STARTED + 7) is None


def test_a_damaged_file_starts_over(tmp_path: Path) -> None:
    """Whatever the file holds, a read answers: without a baseline."""
    (tmp_path / "readings.json").write_text('{"readings": [{"at": "soon"}]}')
    assert history_at(ReadingHistory(tmp_path), STARTED + 7) is None
