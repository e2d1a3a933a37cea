"""`Records`: a logging handler that keeps what it is given, as `caplog` or an application's would."""

from __future__ import annotations

import logging

__all__ = ["Records"]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
