"""Read a service's `/metrics` as the tests need it (one value per series), and send it load to count."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Series", "fire", "parse", "scrape", "series_of", "worker"]

CONNECTIONS = 8  # keep-alive clients, spread by the kernel over the workers

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample of a Prometheus text document, keyed by name and labels."""
    found: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def scrape(base_url: str, **headers: str) -> Series:
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def series_of(series: Series, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {key[1]: value for key, value in series.items() if key[0] == name and wanted <= key[1]}


def fire(base_url: str, token: str, paths: list[str]) -> list[int]:
    """GET every path over CONNECTIONS keep-alive connections at once; the statuses."""
    share = [paths[n::CONNECTIONS] for n in range(CONNECTIONS)]

    def run(mine: list[str]) -> list[int]:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=20) as client:
            return [client.get(path).status_code for path in mine]

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return [status for statuses in pool.map(run, share) for status in statuses]


WORKER = """
import os, sys
from pathlib import Path
from lastro.observability.metrics import Metrics
metrics = Metrics(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    metrics.answered("GET", "/orders/{order_id}", 200, 0.003)
print(os.getpid())
"""


def worker(directory: Path, requests: int) -> int:
    """A worker process that answers `requests` requests into the metric files in `directory`, and exits;
    its pid."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(directory), str(requests)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)
