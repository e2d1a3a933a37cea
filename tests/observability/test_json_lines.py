"""The JSON format's handler and the access line's path: the same line as logging writes, chosen once."""

from __future__ import annotations

import asyncio
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


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def events(self) -> list[str]:
        return [json.loads(line)["event"] for line in self.getvalue().splitlines()]


def _stopped_loop_with(handler: JsonLinesHandler, event: str) -> None:
    """Write a line on a loop that stops, and closes, before the turn that would write it."""

    async def write_and_stop() -> None:
        handler.write_line("t.loop", event, dict(FIELDS))
        asyncio.get_running_loop().stop()  # the loop ends with this turn
        await asyncio.Event().wait()

    loop = asyncio.new_event_loop()
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(write_and_stop())
    loop.close()


def test_lines_of_one_loop_turn_go_out_in_one_write_at_the_next_turn() -> None:
    """Two lines written in one turn of an event loop are one write, made when the loop turns again."""
    stream = Writes()
    handler = JsonLinesHandler(stream)

    async def main() -> list[str]:
        handler.write_line("t.loop", "first", dict(FIELDS))
        handler.write_line("t.loop", "second", dict(FIELDS))
        assert stream.writes == []
        await asyncio.sleep(0)
        return stream.writes

    (write,) = asyncio.run(main())
    assert [json.loads(line)["event"] for line in write.splitlines()] == ["first", "second"]


def test_a_line_written_outside_an_event_loop_goes_out_at_once() -> None:
    """With no running loop (a thread, a script) each line is written when it is logged."""
    stream = Writes()
    JsonLinesHandler(stream).write_line("t.thread", "request", dict(FIELDS))
    assert len(stream.writes) == 1


def test_a_record_through_the_handler_comes_after_the_waiting_lines() -> None:
    """Any other line (the watchdog's report of a held loop, say) writes the waiting lines before itself."""
    stream = Writes()
    handler = JsonLinesHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("t.order")
    logger.addHandler(handler)
    logger.propagate = False

    async def main() -> None:
        handler.write_line("t.loop", "request", dict(FIELDS))
        logger.error("event loop blocked, worker exits")

    try:
        asyncio.run(main())
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().splitlines()[1] == "event loop blocked, worker exits"
    assert json.loads(stream.getvalue().splitlines()[0])["event"] == "request"


def test_flush_writes_the_waiting_lines() -> None:
    """`flush()`, which `logging.shutdown` calls at exit, writes the lines a stopped loop left waiting."""
    stream = Writes()
    handler = JsonLinesHandler(stream)
    _stopped_loop_with(handler, "last")
    assert stream.writes == []
    handler.flush()
    assert stream.events() == ["last"]


def test_a_line_left_by_a_stopped_loop_goes_out_with_the_next_loops_line() -> None:
    """A loop that stopped before its turn does not keep a later loop's lines waiting."""
    stream = Writes()
    handler = JsonLinesHandler(stream)
    _stopped_loop_with(handler, "left")

    async def main() -> None:
        handler.write_line("t.loop", "next", dict(FIELDS))
        await asyncio.sleep(0)

    asyncio.run(main())
    assert stream.events() == ["left", "next"]


def test_a_forked_child_does_not_write_its_parents_waiting_lines() -> None:
    """Lines waiting in the parent at the fork are the parent's to write, not the child's too."""
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        handler = JsonLinesHandler(pipe)
        _stopped_loop_with(handler, "parent's")
        pid = os.fork()
        if pid == 0:  # the child: its own line only
            handler.write_line("t.fork", "child's", dict(FIELDS))
            os._exit(0)
        os.waitpid(pid, 0)
        handler.flush()
    with os.fdopen(read) as output:
        events = [json.loads(line)["event"] for line in output.read().splitlines()]
    assert events == ["child's", "parent's"]
