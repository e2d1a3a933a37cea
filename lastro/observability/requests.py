"""The requests this process is serving right now, for the line that reports a worker stuck on one.

The access-log middleware, which every request passes anyway, adds each request on its way in and takes it
out on its way out: one dict store and one pop, no layer of its own. The entry holds the request's ASGI
scope itself, so the route template the router writes into it later is there when it is read.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

__all__ = ["IN_FLIGHT", "requests_in_flight", "route_template"]

Scope = MutableMapping[str, Any]

# id(scope) -> (scope, request id, time.perf_counter() at arrival)
IN_FLIGHT: dict[int, tuple[Scope, str | None, float]] = {}


def route_template(scope: Scope) -> str | None:
    """The template of the route that matched (`/orders/{order_id}`), once the router has run."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def requests_in_flight() -> list[dict[str, Any]]:
    """Method, path, route, request id and age of each request in progress, oldest first.

    Safe to call from another thread: copying the entries holds the interpreter lock throughout.
    """
    now = time.perf_counter()
    entries = sorted(IN_FLIGHT.copy().values(), key=lambda entry: entry[2])
    return [
        {
            "method": scope.get("method"),
            "path": scope.get("path"),
            "route": route_template(scope),
            "request_id": request_id,
            "seconds": round(now - started, 3),
        }
        for scope, request_id, started in entries
    ]
