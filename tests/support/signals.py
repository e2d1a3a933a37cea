"""Signal handlers a test installs in its own process, put back afterwards."""

from __future__ import annotations

import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["signals_kept"]


@contextmanager
def signals_kept(numbers: Iterable[int]) -> Iterator[None]:
    """The handlers of `numbers` as they were before the block (a supervisor installs its own)."""
    saved = {number: signal.getsignal(number) for number in numbers}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
