"""Answer the operator's endpoints (`/metrics`, the dashboard) before the application's router.

FastAPI matches a request against its routes one after the other, and lastro's routes, added before the
application's, would cost every request of the application a check each (about 2 µs a route, measured on
a GET by id: benchmarks/RESULTS.md, "Metrics"). This layer sends the operator's exact paths, and the paths
under its prefixes, to the operator's own router; everything else costs a set lookup and a prefix check.

The operator's router runs inside lastro's error handling but outside the application's exception
handlers: its routes answer with responses, never by raising. A path it routes nowhere (an unknown asset)
goes on to the application, which answers its 404.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["OperatorRoutesMiddleware"]


class OperatorRoutesMiddleware:
    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], paths: Iterable[str], prefixes: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.routes = Router(list(routes), default=app)
        self.paths = frozenset(paths)
        self.prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            scope["path"] in self.paths or scope["path"].startswith(self.prefixes)
        ):
            await self.routes(scope, receive, send)
            return
        await self.app(scope, receive, send)
