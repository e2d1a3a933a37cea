from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lastro import Settings
from tests.support.services import reachable, skip_reason

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from lastro.observability.tracing import Tracing

# Settings come from the environment: a developer's shell or .env must not leak into the tests.
_SETTING_NAMES = list(Settings.model_fields)


@pytest.fixture(autouse=True)
def clean_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    # Lastro defaults to production; the tests run in development unless they say otherwise.
    monkeypatch.setenv("ENVIRONMENT", "development")
    # Set by lastro serve for its workers; a shell that has it would put every in-process app's metrics there.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # recorded: one a test exports is undone after it
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    # The workers' shared files (rate-limit table, metrics) stay in the test's directory, not /dev/shm.
    monkeypatch.setenv("SHARED_MEMORY_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env, and ./var lands in the test's own directory
    # Files lastro keeps in the temporary directory (a server database's rate-limit table) stay the test's.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


POSTGRES_URL = os.environ.get("LASTRO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
_answers: dict[tuple[str, int], bool] = {}  # each server is asked once per session


def _answers_once(host: str, port: int) -> bool:
    if (host, port) not in _answers:
        _answers[host, port] = reachable(host, port)
    return _answers[host, port]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On Windows a `posix` test skips, and a `postgres` or `redis` one when its server does not answer,
    each saying why."""
    markers = {mark.name for mark in item.iter_markers()}
    reason = skip_reason(markers, sys.platform, POSTGRES_URL, _answers_once)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Tests that configure lastro's logging (directly or through uvicorn.Config) get the root logger back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Spans kept in memory, for the tests of tracing (OpenTelemetry is imported by those tests only)."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    """Tracing on, started, its spans in `exporter`."""
    from lastro.observability.tracing import Tracing
    from lastro.settings import get_settings

    tracing = Tracing(get_settings(TRACING="otlp"), exporter)
    tracing.start()
    yield tracing
    tracing.shutdown()
