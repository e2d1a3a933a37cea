"""`python -m benchmarks.delay_proxy`: PostgreSQL through the proxy answers, each round trip held twice."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from benchmarks.delay_proxy import probe
from tests.conftest import POSTGRES_URL
from tests.support.process import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
DELAY_MS = 20.0

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxy_port() -> Iterator[int]:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.delay_proxy", "--listen", f"127.0.0.1:{port}"]
    command += ["--to", "127.0.0.1:5432", "--delay-ms", str(DELAY_MS)]
    proxy = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        yield port
    finally:
        proxy.terminate()
        proxy.wait()
        assert proxy.stderr is not None
        proxy.stderr.close()


def test_a_statement_through_the_proxy_takes_at_least_the_delay_each_way(proxy_port: int) -> None:
    """SELECT 1 through the proxy answers, and its round trip is at least twice the delay."""
    url = make_conninfo(POSTGRES_URL, port=proxy_port)
    median_ms = wait_for(lambda: _probe_or_none(url), timeout=20)
    assert median_ms >= 2 * DELAY_MS


def _probe_or_none(url: str) -> float | None:
    try:
        return probe(url, count=5)
    except psycopg.OperationalError:  # the proxy is not listening yet
        return None
