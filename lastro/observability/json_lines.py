"""The JSON log format: the serializer of every line, and the handler that writes the per-request line.

Stdlib and structlog records are rendered by the handler's formatter like on any handler. The access
line, written on every request, is the exception: through logging it costs more than the route it logs,
and structlog's native fast path does not close the gap (benchmarks/RESULTS.md, section "Logging:
which path the access line takes"). So, in the JSON format, `logging_config` gives the `lastro.access`
logger a `JsonLinesHandler` of its own, and `write_line` renders that line (same keys, same order, same
serializer as the formatter) and writes it under the handler's lock, without a `LogRecord`.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from typing import Any, TextIO

import structlog

from lastro.encoding import dumps_json

__all__ = ["JsonLinesHandler", "dumps", "dumps_bytes"]


# glibc asks the kernel for the pid on every getpid(): read once, and again in a forked child.
_pid = os.getpid()


def _read_pid() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
    os.register_at_fork(after_in_child=_read_pid)


def _fallback(obj: Any) -> Any:
    # What structlog's JSONRenderer does with a value JSON has no type for.
    structlog_repr = getattr(obj, "__structlog__", None)
    return structlog_repr() if callable(structlog_repr) else repr(obj)


def dumps_bytes(event: dict[str, Any]) -> bytes:
    """One compact JSON document in ASCII, so a line survives any console encoding (NSSM's is not UTF-8)."""
    line = dumps_json(event, default=_fallback)
    if line.isascii():
        return line
    return json.dumps(event, default=_fallback, separators=(",", ":")).encode("ascii")


def dumps(event: dict[str, Any], **_: Any) -> str:
    """`dumps_bytes` as text: the serializer of structlog's JSONRenderer for every other line."""
    return dumps_bytes(event).decode("ascii")


class UtcTimestamp:
    """The text of structlog's `TimeStamper(fmt="iso", utc=True)`, the seconds formatted once a second.

    `TimeStamper` builds and formats a datetime per line, a large part of what a direct line costs.
    """

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""  # up to the seconds' dot

    def __call__(self) -> str:
        # Integer nanoseconds: cheaper than splitting a float, and no rounding to carry into the seconds.
        second, micros = divmod(time.time_ns() // 1000, 1_000_000)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, tz=datetime.UTC)
            self._second, self._prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S.")
        # isoformat() leaves the fraction out when it is zero; so does this.
        return f"{self._prefix}{micros:06d}Z" if micros else f"{self._prefix[:-1]}Z"


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """A `StreamHandler` that can also write a structlog-shaped info line directly."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._timestamp = UtcTimestamp()
        # The handler's own lock (createLock made it; a fork re-initialises it in place), held without the
        # two method calls of acquire() and release().
        assert self.lock is not None
        self._lock = self.lock

    def write_line(self, logger: str, event: str, fields: dict[str, Any]) -> None:
        """Write the info line `logger.info(event, **fields)` would, without going through logging.

        The line is built in `fields` itself: the caller hands the dict over (`LineLogger.info` passes the
        one its keywords were collected in)."""
        fields["event"] = event
        structlog.contextvars.merge_contextvars(None, "info", fields)
        fields["level"] = "info"
        fields["logger"] = logger
        fields["timestamp"] = self._timestamp()
        fields["pid"] = _pid
        text = dumps(fields) + self.terminator
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except Exception:  # a closed or broken stream: reported the way logging reports a failed emit
                self.handleError(logging.makeLogRecord({"name": logger, "msg": event, "levelname": "INFO"}))
