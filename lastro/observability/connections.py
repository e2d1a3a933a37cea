"""How many HTTP connections this worker has open, as the server counts them.

The server protocol (`lastro.serve.protocol`) hands over uvicorn's own set of connections when the first
one arrives; the resource monitor reads its size. Nothing is counted twice or per request.
"""

from __future__ import annotations

from collections.abc import Sized

__all__ = ["open_connections", "watch"]

_watched: Sized | None = None


def watch(connections: Sized) -> None:
    """Read `connections` (uvicorn's `ServerState.connections`) from now on."""
    global _watched
    _watched = connections


def open_connections() -> int:
    """The connections open in this process; 0 when no server has reported any (a test client)."""
    return len(_watched) if _watched is not None else 0
