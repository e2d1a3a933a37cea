"""JSON rendering shared by every log line, and a direct path for the line written on every request.

A structlog call that goes through stdlib logging walks about fifteen functions, two `LogRecord`s and
two renderings of the same dict, which costs more than the FastAPI route it logs. `JsonLines.write`
renders the same line (same keys, same order, same serializer) and writes it straight to the one
handler `configure_logging` installed, under that handler's lock, for a fraction of that
(benchmarks/RESULTS.md, "What moved the numbers"). It only does so when nothing else could see the
record: the logger and its ancestors have no handlers or filters of their own, and the root logger still
has exactly lastro's handler (pytest's `caplog`, or an application that adds a handler, turns the direct
path off and every line goes through logging again).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
from typing import Any

import structlog

from lastro.encoding import dumps_json

__all__ = ["JSON_LINES", "JsonLines", "dumps"]

_UTC = datetime.UTC


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


class _UtcTimestamp:
    """The text of structlog's `TimeStamper(fmt="iso", utc=True)`; the seconds are formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, tz=_UTC)
            self._second, self._prefix = second, moment.strftime("%Y-%m-%dT%H:%M:%S")
        micros = int((now - second) * 1_000_000)
        # isoformat() leaves the fraction out when it is zero; so does this.
        return f"{self._prefix}.{micros:06d}Z" if micros else f"{self._prefix}Z"


_utc_timestamp = _UtcTimestamp()


class JsonLines:
    """The handler `configure_logging` installed for JSON output, and the direct way to write to it."""

    def __init__(self) -> None:
        self.handler: logging.StreamHandler[Any] | None = None

    def attach(self, handler: logging.Handler | None) -> None:
        """Write directly through `handler` from now on; with `None` (console format), always log instead."""
        self.handler = handler if isinstance(handler, logging.StreamHandler) else None

    def write(self, logger: logging.Logger, event: str, fields: dict[str, Any]) -> bool:
        """Write one info line for `logger`; False when it must go through logging instead."""
        handler = self._direct_handler(logger)
        if handler is None:
            return False
        line = {**fields, "event": event}
        line.update(structlog.contextvars.get_contextvars())
        line["level"] = "info"
        line["logger"] = logger.name
        line["timestamp"] = _utc_timestamp()
        line["pid"] = os.getpid()
        text = dumps(line) + handler.terminator
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        except Exception:  # a closed or broken stream: let logging report it the way it always does
            return False
        finally:
            handler.release()
        return True

    def _direct_handler(self, logger: logging.Logger) -> logging.StreamHandler[Any] | None:
        handler = self.handler
        root = logging.root
        if handler is None or root.handlers != [handler] or root.filters or handler.filters:
            return None
        if handler.level > logging.INFO:
            return None
        node: logging.Logger | None = logger
        while node is not None and node is not root:
            if node.handlers or node.filters or not node.propagate:
                return None
            node = node.parent
        return handler


JSON_LINES = JsonLines()
