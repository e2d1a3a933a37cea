"""starlette's `CORSMiddleware`, with a refused preflight answered in problem+json like every other error.

starlette answers a preflight it refuses with a plain-text 400 (`Disallowed CORS origin`); the browser
reads only the status, but a client or a test reading the body gets lastro's problem document instead.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware as StarletteCORSMiddleware
from starlette.responses import Response

from lastro.http.problem import ProblemResponse

__all__ = ["CORSMiddleware"]

_BODY_HEADERS = frozenset({"content-type", "content-length"})


class CORSMiddleware(StarletteCORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        kept = {name: value for name, value in response.headers.items() if name not in _BODY_HEADERS}
        refused = bytes(response.body).decode("utf-8", "replace")
        return ProblemResponse(400, f"{refused}: see CORS_ORIGINS", headers=kept)
