"""Headers every response carries: `X-Content-Type-Options`, `X-Frame-Options`, `Referrer-Policy`, and
`Strict-Transport-Security` on requests that came over https.

A header the application set itself is left as it is. The scheme is what the server put in the scope:
behind a proxy, uvicorn's proxy-headers layer sets it from `X-Forwarded-Proto` when the peer is one of
`TRUSTED_PROXIES`, so a plain-http hop from the proxy does not hide that the client used https.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware"]

Header = tuple[bytes, bytes]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, referrer_policy: str = "no-referrer", hsts_seconds: int = 0) -> None:
        self.app = app
        # Built once: each response only appends the ones it lacks.
        self.plain: tuple[Header, ...] = (
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            *(((b"referrer-policy", referrer_policy.encode("latin-1")),) if referrer_policy else ()),
        )
        hsts = ((b"strict-transport-security", f"max-age={hsts_seconds}".encode()),) if hsts_seconds else ()
        self.secure: tuple[Header, ...] = self.plain + hsts
        self.names = frozenset(name for name, _ in self.secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.secure if scope.get("scheme") == "https" else self.plain
        names = self.names

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                if present.isdisjoint(names):  # the usual case: all of them, without a test each
                    headers += extra
                else:
                    headers.extend(header for header in extra if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
