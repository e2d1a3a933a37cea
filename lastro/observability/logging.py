"""Structured logs: JSON lines in production, a readable console format in development.

structlog renders every record, including the stdlib ones from uvicorn and SQLAlchemy, so one line has
one shape: timestamp, level, logger, event, request_id (bound per request via contextvars), pid, and
whatever structured context the call passed (`extra=` for stdlib loggers, keywords for structlog).
The access line, written on every request, takes a shorter path in the JSON format: see `LineLogger`.
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from lastro.observability.json_lines import JsonLinesHandler, dumps

__all__ = [
    "ACCESS_LOGGER",
    "SLOW_LOGGER",
    "LineLogger",
    "configure_logging",
    "get_line_logger",
    "get_logger",
    "logging_config",
]

LogFormat = Literal["json", "console"]

_DROP_KEYS = ("color_message", "_record", "_from_structlog")

ACCESS_LOGGER = "lastro.access"
# The warning of a request slower than SLOW_REQUEST_SECONDS: rare, so it takes the ordinary path.
SLOW_LOGGER = "lastro.slow"


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that goes through the stdlib `logging` tree under `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


class LineLogger:
    """`info` for a line written on every request, where going through logging costs more than the request.

    In the JSON format `logging_config` gives the logger a `JsonLinesHandler` of its own, without
    propagation, and the line is written straight to it: handlers added elsewhere (pytest's `caplog`, an
    application's) do not see it. In the console format the line goes through structlog and logging.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._stdlib = logging.getLogger(name)
        self._structlog = get_logger(name)

    def info(self, event: str, **fields: Any) -> None:
        stdlib = self._stdlib
        if not stdlib.isEnabledFor(logging.INFO):
            return
        # What `logging_config` gave the logger: its own JSON lines handler, or none (the console format).
        for handler in stdlib.handlers:
            if isinstance(handler, JsonLinesHandler):
                handler.write_line(self.name, event, fields)
                return
        self._structlog.info(event, **fields)


def get_line_logger(name: str) -> LineLogger:
    """The logger of a per-request line; `logging_config` names the loggers that write directly."""
    return LineLogger(name)


def add_pid(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict["pid"] = os.getpid()
    return event_dict


def drop_internal_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in _DROP_KEYS:
        event_dict.pop(key, None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_pid,
    ]


def make_formatter(fmt: LogFormat = "json") -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler; `logging_config` names it so that child processes build their own."""
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(serializer=dumps)
        # A traceback as one string field: greppable, and no frame locals (they may hold secrets).
        exc_processors: list[Processor] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        exc_processors = []
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            drop_internal_keys,
            *exc_processors,
            renderer,
        ],
    )


def logging_config(level: str = "INFO", fmt: LogFormat = "json") -> dict[str, Any]:
    """A `logging.config.dictConfig` mapping; also handed to uvicorn so the server logs the same way.

    The path of the access line is chosen here, once: in the JSON format `lastro.access` does not
    propagate and has the stdout handler, a `JsonLinesHandler`, as its own, which `LineLogger` writes to
    directly; in the console format it propagates to the root logger like any other.
    """
    direct = fmt == "json"
    handler_class = "lastro.observability.json_lines.JsonLinesHandler" if direct else "logging.StreamHandler"
    stdout = {"class": handler_class, "formatter": "lastro", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lastro": {"()": f"{__name__}.make_formatter", "fmt": fmt}},
        "handlers": {"stdout": stdout},
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Named in both formats: dictConfig leaves a logger it is not told about as it was.
            ACCESS_LOGGER: {
                "handlers": ["stdout"] if direct else [],
                "level": "NOTSET",
                "propagate": not direct,
            },
            # uvicorn's own handlers would print a second, unstructured copy.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            # lastro writes the access line itself, with the route template and request id.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # Alembic announces its plugins and context at INFO each time a worker reads the migrations.
            "alembic": {"handlers": [], "level": "DEBUG" if level.upper() == "DEBUG" else "WARNING"},
        },
    }


def configure_logging(level: str = "INFO", fmt: LogFormat = "json") -> None:
    """Route stdlib logging and structlog through one formatter. Safe to call again."""
    logging.config.dictConfig(logging_config(level, fmt))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
