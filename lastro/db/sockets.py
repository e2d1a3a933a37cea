"""Waking a database driver that waits on a dead network, without closing what it owns."""

from __future__ import annotations

import os
import socket
from contextlib import suppress

__all__ = ["shut_down"]


def shut_down(fd: int) -> None:
    """Shut the socket behind `fd` down for reading and writing.

    On a duplicate of the descriptor: the driver's wait on the original wakes, and the original, which the
    driver closes itself, is left alone.
    """
    with suppress(OSError):
        duplicate = socket.socket(fileno=os.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()
