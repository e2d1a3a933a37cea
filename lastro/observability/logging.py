"""Structured logs: JSON lines in production, a readable console format in development.

structlog renders every record, including the stdlib ones from uvicorn and SQLAlchemy, so one line has
one shape: timestamp, level, logger, event, request_id (bound per request via contextvars), pid, and
whatever structured context the call passed (`extra=` for stdlib loggers, keywords for structlog).
"""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from lastro.observability.json_lines import JSON_LINES, dumps

__all__ = ["configure_logging", "get_logger", "logging_config"]

LogFormat = Literal["json", "console"]

_DROP_KEYS = ("color_message", "_record", "_from_structlog")


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger that goes through the stdlib `logging` tree under `name`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


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
    """A `logging.config.dictConfig` mapping; also handed to uvicorn so the server logs the same way."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"lastro": {"()": f"{__name__}.make_formatter", "fmt": fmt}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "lastro", "stream": "ext://sys.stdout"}
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
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
    """Route stdlib logging and structlog through one formatter. Safe to call again.

    The lines carry no caller, thread or process name (the pid is added by a processor), so logging is
    told not to collect them, as its documentation's "Optimization" section describes: a fifth of the cost
    of an access line went to walking the stack for a caller nobody prints.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(logging_config(level, fmt))
    JSON_LINES.attach(logging.root.handlers[0] if fmt == "json" else None)
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
