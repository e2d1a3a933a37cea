"""The JSON format's handler and the access line's path: the same line as logging writes, chosen once."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from lastro.observability.json_lines import JsonLinesHandler, dumps
from lastro.observability.logging import (
    ACCESS_LOGGER,
    configure_logging,
    get_line_logger,
    get_logger,
    logging_config,
)
from tests.support.log_records import Records

Capture = pytest.CaptureFixture[str]
FIELDS = {"method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5}


@pytest.fixture(autouse=True)
def clear_context() -> Iterator[None]:
    """Context bound by a test does not leak into the next."""
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def root_records() -> Iterator[Records]:
    """A `Records` handler, taken off the root logger after the test (the test adds it)."""
    handler = Records()
    yield handler
    logging.root.removeHandler(handler)


def lines(capsys: Capture) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_direct_line_matches_the_logged_line(capsys: Capture) -> None:
    """Same keys in the same order, same values, as the line structlog renders through logging."""
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(request_id="r-1")
    get_line_logger(ACCESS_LOGGER).info("request", **FIELDS)
    get_logger(ACCESS_LOGGER).info("request", **FIELDS)
    direct, logged = lines(capsys)
    assert list(direct) == list(logged)
    assert {**direct, "timestamp": None} == {**logged, "timestamp": None}
    assert direct["request_id"] == "r-1"
    gap = datetime.fromisoformat(logged["timestamp"]) - datetime.fromisoformat(direct["timestamp"])
    assert direct["timestamp"].endswith("Z")
    assert abs(gap.total_seconds()) < 5


def test_json_access_line_is_written_once_and_only_to_stdout(capsys: Capture, root_records: Records) -> None:
    """In the JSON format the access line goes straight to stdout: another root handler does not see it."""
    configure_logging("INFO", "json")
    logging.root.addHandler(root_records)  # configure_logging replaced the root logger's handlers
    get_line_logger(ACCESS_LOGGER).info("request", **FIELDS)
    (line,) = lines(capsys)
    assert (line["event"], line["logger"], line["status"]) == ("request", ACCESS_LOGGER, 200)
    assert root_records.records == []


def test_console_access_line_goes_through_logging(capsys: Capture, root_records: Records) -> None:
    """In the console format the access line is a record like any other, rendered by the console renderer."""
    configure_logging("INFO", "console")
    logging.root.addHandler(root_records)
    get_line_logger(ACCESS_LOGGER).info("request", **FIELDS)
    (line,) = capsys.readouterr().out.splitlines()
    assert not line.startswith("{")
    assert "status=200" in line
    assert [record.name for record in root_records.records] == [ACCESS_LOGGER]


def test_switching_to_console_gives_the_access_logger_back_to_the_root() -> None:
    """After JSON then console, the access logger has no handler of its own and propagates again."""
    configure_logging("INFO", "json")
    configure_logging("INFO", "console")
    access = logging.getLogger(ACCESS_LOGGER)
    assert (access.handlers, access.propagate) == ([], True)


def test_level_above_info_drops_the_access_line(capsys: Capture) -> None:
    """With LOG_LEVEL=WARNING the direct path writes nothing, as logging would not."""
    configure_logging("WARNING", "json")
    get_line_logger(ACCESS_LOGGER).info("request", **FIELDS)
    assert capsys.readouterr().out == ""


def test_logging_config_alone_sets_up_the_direct_path(capsys: Capture) -> None:
    """A worker that only applies `logging_config` (uvicorn's `log_config`) writes access lines directly."""
    configure_logging("INFO", "console")
    logging.config.dictConfig(logging_config("INFO", "json"))
    get_line_logger(ACCESS_LOGGER).info("request", **FIELDS)
    (line,) = lines(capsys)
    assert (line["event"], line["level"], line["method"]) == ("request", "info", "GET")


def test_broken_stream_is_reported_like_a_failed_emit(capsys: Capture) -> None:
    """A write to a closed stream prints logging's "Logging error" report on stderr and does not raise."""
    stream = io.StringIO()
    stream.close()
    JsonLinesHandler(stream).write_line("t.broken", "request", dict(FIELDS))
    assert "--- Logging error ---" in capsys.readouterr().err


def test_non_ascii_values_are_escaped() -> None:
    """A line stays ASCII, so a console in a legacy encoding can always write it."""
    text = dumps({"path": "/pedidos/ação"})
    assert text.isascii()
    assert json.loads(text) == {"path": "/pedidos/ação"}


def test_values_json_has_no_type_for_are_repr() -> None:
    """An object or an integer past 64 bits is still one valid line."""
    assert json.loads(dumps({"big": 2**70, "obj": object})) == {"big": 2**70, "obj": repr(object)}


def test_a_forked_process_writes_its_own_pid() -> None:
    """The pid is read once, and again in a forked child: the child's lines carry the child's pid."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one line, straight to the parent
        with os.fdopen(write, "w") as pipe:
            JsonLinesHandler(pipe).write_line("t.fork", "request", dict(FIELDS))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        line = json.loads(pipe.read())
    assert line["pid"] == pid
