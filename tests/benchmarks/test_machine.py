"""The machine facts every benchmark report opens with."""

from __future__ import annotations

import pytest

from benchmarks.servers import machine


def test_a_machine_without_wrk_is_described(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process parts run where wrk is not installed: the report says so instead of failing."""
    monkeypatch.setenv("PATH", "/nonexistent")
    assert machine()["wrk"] == "not installed"
