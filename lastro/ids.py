"""Random ids without a system call each: `uuid4()`, a drop-in for `uuid.uuid4()`, and `random_hex()`.

`uuid.uuid4()` asks the kernel for 16 random bytes each time, and CPython lets go of the GIL around that
call: in a worker whose writer or reader thread waits for the GIL, each id then costs the event loop that
thread's turn (benchmarks/RESULTS.md, "Off the dependency solver, off the GIL"). These draw the same kind
of randomness (`os.urandom`) 256 ids at a time. `pop` hands an id to one caller only, even across threads;
a forked worker drops the batch it inherited, so no two processes hand out the same id.
"""

from __future__ import annotations

import os
import uuid

__all__ = ["random_hex", "uuid4"]

_BATCH = 256
_unused: list[bytes] = []
if hasattr(os, "register_at_fork"):  # not on Windows, where workers are never forked
    os.register_at_fork(after_in_child=_unused.clear)


def _draw() -> bytes:
    try:
        return _unused.pop()
    except IndexError:
        batch = os.urandom(16 * _BATCH)
        _unused.extend(batch[start : start + 16] for start in range(16, len(batch), 16))
        return batch[:16]


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, as `uuid.uuid4()` makes."""
    return uuid.UUID(bytes=_draw(), version=4)


def random_hex() -> str:
    """32 hex digits: a UUID4's worth of randomness, as a string."""
    return _draw().hex()
