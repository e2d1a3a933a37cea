"""Headers every response carries: `X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy`, and
`Strict-Transport-Security` on requests that came over https.

A header the application set itself is left as it is. The scheme is what the server put in the scope:
behind a proxy, uvicorn's proxy-headers layer sets it from `X-Forwarded-Proto` when the peer is one of
`TRUSTED_PROXIES`, so a plain-http hop from the proxy does not hide that the client used https.

lastro's own stack does not install this layer: `RequestIdMiddleware`, the outermost, adds the same
`SecurityHeaders` in its own pass over the status line (one `send` wrapper for both, on every response).
The layer is for an application that wants the headers alone.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeaders", "SecurityHeadersMiddleware"]

Header = tuple[bytes, bytes]


class SecurityHeaders:
    """The headers, built once; `add` appends to a response's headers the ones it lacks."""

    def __init__(self, *, referrer_policy: str = "no-referrer", hsts_seconds: int = 0) -> None:
        self.plain: tuple[Header, ...] = (
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            *(((b"referrer-policy", referrer_policy.encode("latin-1")),) if referrer_policy else ()),
        )
        hsts = ((b"strict-transport-security", f"max-age={hsts_seconds}".encode()),) if hsts_seconds else ()
        self.secure: tuple[Header, ...] = self.plain + hsts
        self.names = frozenset(name for name, _ in self.secure)

    def add(self, headers: list[Header], scope: Scope, present: AbstractSet[bytes] | None = None) -> None:
        """Append the headers `headers` lacks, HSTS included when `scope` came over https; `present`, the
        lowercased names in `headers`, when the caller has them already."""
        extra = self.secure if scope.get("scheme") == "https" else self.plain
        if present is None:
            present = {name.lower() for name, _ in headers}
        if present.isdisjoint(self.names):  # the usual case: all of them, without a test each
            headers += extra
        else:
            headers.extend(header for header in extra if header[0] not in present)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, referrer_policy: str = "no-referrer", hsts_seconds: int = 0) -> None:
        self.app = app
        self.headers = SecurityHeaders(referrer_policy=referrer_policy, hsts_seconds=hsts_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        add = self.headers.add

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                add(headers, scope)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
