"""Answer only requests whose `Host` names this service (`ALLOWED_HOSTS`); others get 400 problem+json.

A service reached under a name it does not own is being probed, or fed a forged `Host` that would end up
in the links and redirects it builds. Entries are exact names (`api.example.com`) or a leading wildcard
(`*.example.com`: any subdomain, not `example.com` itself); the port is ignored; `*` alone allows any
host (and `create_app` then leaves this layer out). The liveness and readiness probes are exempt: an
orchestrator calls them by address or as `localhost`.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from lastro.http.problem import send_problem

__all__ = ["EXEMPT_PATHS", "TrustedHostMiddleware", "host_name"]

EXEMPT_PATHS = frozenset({"/health/live", "/health/ready"})


def host_name(value: bytes) -> str:
    """The name in a `Host` header value, lower-cased, without its port (`[::1]:80` gives `::1`)."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    name, sep, port = text.rpartition(":")
    return name if sep and port.isdigit() else text


class TrustedHostMiddleware:
    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str], exempt_paths: frozenset[str] = EXEMPT_PATHS
    ) -> None:
        self.app = app
        hosts = [host.strip().lower() for host in allowed_hosts]
        self.allow_any = "*" in hosts
        self.exact = frozenset(host_name(host.encode()) for host in hosts if not host.startswith("*"))
        self.suffixes = tuple(host[1:] for host in hosts if host.startswith("*."))
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allow_any or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        host = next((value for name, value in scope["headers"] if name == b"host"), None)
        if host is not None and self.allows(host_name(host)):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(send, 400, "the Host header does not name this service (ALLOWED_HOSTS)")

    def allows(self, name: str) -> bool:
        return name in self.exact or name.endswith(self.suffixes)
