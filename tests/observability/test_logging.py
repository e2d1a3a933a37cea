"""configure_logging: one line shape for structlog and stdlib loggers, JSON or console, filtered by level."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from lastro.observability.logging import configure_logging, get_logger, logging_config
from tests.support.log_records import Records

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def clear_context() -> Iterator[None]:
    """Context bound by a test does not leak into the next."""
    yield
    structlog.contextvars.clear_contextvars()


def json_lines(capsys: Capture) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_line_has_timestamp_level_logger_event_and_pid(capsys: Capture) -> None:
    """A structlog line in JSON carries timestamp, level, logger, event and pid."""
    configure_logging("INFO", "json")
    get_logger("tests.logging").info("order created")
    (line,) = json_lines(capsys)
    assert line["event"] == "order created"
    assert line["level"] == "info"
    assert line["logger"] == "tests.logging"
    assert line["pid"] == os.getpid()
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_keywords_become_structured_fields(capsys: Capture) -> None:
    """Keyword arguments of a structlog call are fields of the JSON line."""
    configure_logging("INFO", "json")
    get_logger("tests.logging").info("order created", order_id=7, total=12.5, tags=["a"])
    (line,) = json_lines(capsys)
    assert (line["order_id"], line["total"], line["tags"]) == (7, 12.5, ["a"])


def test_stdlib_extra_becomes_structured_fields(capsys: Capture) -> None:
    """`extra=` on a stdlib logger call adds fields to the JSON line."""
    configure_logging("INFO", "json")
    logging.getLogger("tests.stdlib").warning("slow query", extra={"duration_ms": 812, "table": "orders"})
    (line,) = json_lines(capsys)
    assert (line["event"], line["level"], line["logger"]) == ("slow query", "warning", "tests.stdlib")
    assert (line["duration_ms"], line["table"]) == (812, "orders")


def test_uvicorn_logger_has_the_same_shape(capsys: Capture) -> None:
    """uvicorn's stdlib logger writes one JSON line in lastro's shape, not its own format."""
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1234)
    (line,) = json_lines(capsys)
    assert line["event"] == "Started server process [1234]"
    assert line["logger"] == "uvicorn.error"
    assert {"timestamp", "level", "pid"} <= set(line)
    assert "color_message" not in line


def test_uvicorn_access_lines_are_silenced(capsys: Capture) -> None:
    """uvicorn's own access lines are dropped: lastro writes its own."""
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.access").info('127.0.0.1:5000 - "GET / HTTP/1.1" 200')
    assert json_lines(capsys) == []


def test_bound_context_is_added_to_every_line(capsys: Capture) -> None:
    """Context bound with contextvars (the request id) appears on structlog and stdlib lines alike."""
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(request_id="trace-0123456789")
    get_logger("tests.logging").info("from structlog")
    logging.getLogger("tests.stdlib").info("from stdlib")
    lines = json_lines(capsys)
    assert [line["request_id"] for line in lines] == ["trace-0123456789"] * 2


def test_exception_is_one_traceback_field(capsys: Capture) -> None:
    """logger.exception puts the traceback in one `exception` string field of the same line."""
    configure_logging("INFO", "json")
    try:
        raise KeyError("missing")
    except KeyError:
        get_logger("tests.logging").exception("lookup failed")
    (line,) = json_lines(capsys)
    assert line["level"] == "error"
    assert line["exception"].startswith("Traceback")
    assert "KeyError: 'missing'" in line["exception"]


def test_log_level_filters_lower_levels(capsys: Capture) -> None:
    """With LOG_LEVEL=WARNING, info lines are dropped and warnings kept, for both kinds of logger."""
    configure_logging("WARNING", "json")
    get_logger("tests.logging").info("dropped")
    logging.getLogger("tests.stdlib").info("dropped too")
    get_logger("tests.logging").warning("kept")
    logging.getLogger("uvicorn.error").warning("kept too")
    assert [line["event"] for line in json_lines(capsys)] == ["kept", "kept too"]


def test_debug_level_lets_debug_lines_through(capsys: Capture) -> None:
    """With LOG_LEVEL=DEBUG, debug lines are written."""
    configure_logging("DEBUG", "json")
    get_logger("tests.logging").debug("details")
    assert [line["level"] for line in json_lines(capsys)] == ["debug"]


def test_stdlib_records_keep_their_caller_and_thread() -> None:
    """configure_logging turns off none of logging's switches: a record still names its caller and thread."""
    configure_logging("INFO", "json")
    records = Records()
    logging.root.addHandler(records)
    try:
        logging.getLogger("tests.stdlib").info("where from")
    finally:
        logging.root.removeHandler(records)
    (record,) = records.records
    assert record.funcName == "test_stdlib_records_keep_their_caller_and_thread"
    assert record.threadName == threading.current_thread().name


def test_console_format_is_readable_text(capsys: Capture) -> None:
    """The console format is one human-readable line with the level, event, logger and fields, not JSON."""
    configure_logging("INFO", "console")
    get_logger("tests.logging").info("order created", order_id=7)
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    assert not line.startswith("{")
    assert "info" in line
    assert "order created" in line
    assert "tests.logging" in line
    assert "order_id=7" in line


def test_configure_logging_can_be_called_again(capsys: Capture) -> None:
    """Calling configure_logging twice leaves one handler: each event is written once."""
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")
    logging.getLogger("tests.stdlib").info("once")
    assert len(json_lines(capsys)) == 1


def test_logging_config_names_the_level_and_format() -> None:
    """logging_config, also handed to uvicorn, carries the level and the format."""
    config = logging_config("ERROR", "console")
    assert config["root"]["level"] == "ERROR"
    assert config["formatters"]["lastro"]["fmt"] == "console"
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
