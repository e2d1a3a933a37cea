"""JsonLines: the direct path writes the same line logging would, and steps aside when others listen."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from lastro.observability.json_lines import JSON_LINES, dumps
from lastro.observability.logging import configure_logging, get_logger

Capture = pytest.CaptureFixture[str]
FIELDS = {"method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5}


@pytest.fixture(autouse=True)
def clear_context() -> Iterator[None]:
    """Context bound by a test does not leak into the next."""
    yield
    structlog.contextvars.clear_contextvars()


def lines(capsys: Capture) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_direct_line_matches_the_logged_line(capsys: Capture) -> None:
    """Same keys in the same order, same values, as the line structlog renders through logging."""
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(request_id="r-1")
    assert JSON_LINES.write(logging.getLogger("t.direct"), "request", dict(FIELDS))
    get_logger("t.direct").info("request", **FIELDS)
    direct, logged = lines(capsys)
    assert list(direct) == list(logged)
    assert {**direct, "timestamp": None} == {**logged, "timestamp": None}
    assert direct["request_id"] == "r-1"
    gap = datetime.fromisoformat(logged["timestamp"]) - datetime.fromisoformat(direct["timestamp"])
    assert direct["timestamp"].endswith("Z")
    assert abs(gap.total_seconds()) < 5


def test_another_root_handler_turns_the_direct_path_off(capsys: Capture) -> None:
    """With a second handler on the root logger (caplog, say), the line must go through logging."""
    configure_logging("INFO", "json")
    extra = logging.NullHandler()
    logging.root.addHandler(extra)
    try:
        assert not JSON_LINES.write(logging.getLogger("t.other"), "request", dict(FIELDS))
    finally:
        logging.root.removeHandler(extra)
    assert lines(capsys) == []


def test_a_handler_on_the_logger_turns_the_direct_path_off() -> None:
    """A handler on the logger itself or an ancestor sees every record, so nothing bypasses it."""
    configure_logging("INFO", "json")
    parent = logging.getLogger("t.parent")
    parent.addHandler(logging.NullHandler())
    try:
        assert not JSON_LINES.write(logging.getLogger("t.parent.child"), "request", dict(FIELDS))
    finally:
        parent.handlers.clear()


def test_console_format_never_writes_directly() -> None:
    """The console format is rendered by structlog's ConsoleRenderer only."""
    configure_logging("INFO", "console")
    assert not JSON_LINES.write(logging.getLogger("t.console"), "request", dict(FIELDS))


def test_non_ascii_values_are_escaped() -> None:
    """A line stays ASCII, so a console in a legacy encoding can always write it."""
    text = dumps({"path": "/pedidos/ação"})
    assert text.isascii()
    assert json.loads(text) == {"path": "/pedidos/ação"}


def test_values_json_has_no_type_for_are_repr() -> None:
    """An object or an integer past 64 bits is still one valid line."""
    assert json.loads(dumps({"big": 2**70, "obj": object})) == {"big": 2**70, "obj": repr(object)}
