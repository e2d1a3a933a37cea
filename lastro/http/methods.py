"""The `Allow` header of a 405: every method the path's routes take, not only the first route's.

Starlette answers 405 from the first route whose path matches, listing that route's methods; a path served
by several routes (GET and POST of `/orders` are two) would then name only some of them. RFC 9110 §15.5.6
asks for all.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["METHODS", "allowed_methods"]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The methods some route takes at the path of `scope`, for an `Allow` header: `"GET, HEAD, POST"`."""
    # Each method is tried as a request would be routed: FastAPI's included routers resolve their routes
    # only when matched, so their routes cannot be listed beforehand.
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    ]
    return ", ".join(allowed)
