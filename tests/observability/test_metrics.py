"""`Metrics`: one worker's series, their labels, and the text a scrape gets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lastro.observability.metrics import DIRECTORY_ENV, UNMATCHED, Metrics
from tests.support.metrics import parse, series_of


def scraped(metrics: Metrics) -> dict[frozenset[tuple[str, str]], float]:
    body, _ = metrics.render()
    return series_of(parse(body.decode()), "http_requests_total")


def test_a_request_is_counted_by_method_route_and_status() -> None:
    """One answered request adds one to its (method, route template, status) series."""
    metrics = Metrics(None)
    metrics.answered("GET", "/orders/{order_id}", 200, 0.003)
    metrics.answered("GET", "/orders/{order_id}", 200, 0.004)
    metrics.answered("GET", "/orders/{order_id}", 404, 0.002)
    counts = scraped(metrics)
    assert counts[frozenset({("method", "GET"), ("route", "/orders/{order_id}"), ("status", "200")})] == 2
    assert counts[frozenset({("method", "GET"), ("route", "/orders/{order_id}"), ("status", "404")})] == 1


def test_a_path_no_route_matched_is_counted_as_unmatched() -> None:
    """Without a route template every path shares one label, so scans add no series."""
    metrics = Metrics(None)
    for _n in range(50):
        metrics.answered("GET", None, 404, 0.001)
    assert scraped(metrics) == {frozenset({("method", "GET"), ("route", UNMATCHED), ("status", "404")}): 50}


def test_a_method_outside_the_standard_ones_is_counted_as_other() -> None:
    """Invented methods share one label."""
    metrics = Metrics(None)
    metrics.answered("BREW", None, 405, 0.001)
    metrics.answered("PURGE", None, 405, 0.001)
    assert set(scraped(metrics).values()) == {2}


def test_the_duration_lands_in_its_bucket() -> None:
    """A 30 ms request is under the 50 ms bucket and over the 25 ms one."""
    metrics = Metrics(None)
    metrics.answered("GET", "/x", 200, 0.030)
    series = parse(metrics.render()[0].decode())
    buckets = series_of(series, "http_request_duration_seconds_bucket", route="/x")
    by_bound = {dict(labels)["le"]: value for labels, value in buckets.items()}
    assert (by_bound["0.025"], by_bound["0.05"], by_bound["+Inf"]) == (0, 1, 1)


def test_the_text_is_prometheus_exposition() -> None:
    """The content type is Prometheus' text format, version 0.0.4 or later."""
    _, content_type = Metrics(None).render()
    assert content_type.startswith("text/plain; version=")


def test_two_services_in_one_process_count_apart() -> None:
    """Each Metrics has its own registry: a second app in a test process starts from zero."""
    first, second = Metrics(None), Metrics(None)
    first.answered("GET", "/x", 200, 0.001)
    assert scraped(second) == {}


def test_each_worker_series_is_labelled_with_its_pid() -> None:
    """Alone (no shared directory), a worker names its own pid on its per-worker gauges."""
    metrics = Metrics(None)
    metrics.worker(metrics.worker_rss).set(1234)
    series = series_of(parse(metrics.render()[0].decode()), "lastro_worker_rss_bytes")
    assert series == {frozenset({("pid", str(os.getpid()))}): 1234}


def test_importing_lastro_leaves_prometheus_client_unloaded() -> None:
    """prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported: the supervisor sets it after
    `import lastro`, so lastro must not import it first."""
    code = "import sys, lastro, lastro.cli, lastro.serve.runner; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_workers_of_a_run_agree_on_when_the_counts_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first worker to open the shared directory sets the start; a later one (a replacement) reads it."""
    monkeypatch.setenv(DIRECTORY_ENV, str(tmp_path))
    first = Metrics.open()
    assert Metrics.open().started_at == first.started_at
    assert (tmp_path / "started.json").is_file()
