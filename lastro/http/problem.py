"""RFC 9457 `application/problem+json` bodies, for middleware (raw ASGI) and for FastAPI handlers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Send

from lastro.http.request_id import current_request_id

__all__ = ["PROBLEM_CONTENT_TYPE", "ProblemResponse", "problem_document", "send_problem"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_document(status: int, detail: str | None = None, **members: Any) -> dict[str, Any]:
    """The problem object: `type`, `title`, `status`, `detail`, the request id, and extension members."""
    document: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail is not None:
        document["detail"] = detail
    document.update(members)
    request_id = current_request_id()
    if request_id is not None:
        document.setdefault("request_id", request_id)
    return document


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(problem_document(status, detail, **members), status_code=status, headers=headers)


async def send_problem(
    send: Send, status: int, detail: str | None = None, *, headers: dict[str, str] | None = None
) -> None:
    """Answer with a problem document straight from middleware, below any framework."""
    body = json.dumps(problem_document(status, detail), separators=(",", ":")).encode()
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
