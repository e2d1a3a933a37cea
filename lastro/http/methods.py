"""The `Allow` header of a 405: every method the path's routes take, not only the first route's.

Starlette answers 405 from the first route whose path matches, listing that route's methods; a path served
by several routes (GET and POST of `/orders` are two) would then name only some of them. RFC 9110 §15.5.6
asks for all.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

__all__ = ["allowed_methods"]


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The methods the routes whose path matches `scope` take, for an `Allow` header: `"GET, POST"`."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))
