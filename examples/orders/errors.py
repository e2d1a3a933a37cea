"""The service's domain errors, and the problem+json answer each one gets."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

import lastro

__all__ = ["Conflict", "InvalidCursor", "KeyReused", "NotFound", "Precondition", "add_error_handlers"]


class NotFound(Exception):
    pass


class Precondition(Exception):
    """The order changed since the caller read it (its `If-Match` is stale)."""


class Conflict(Exception):
    pass


class InvalidCursor(ValueError):
    pass


class KeyReused(Exception):
    """The Idempotency-Key was used before with a different body."""


PROBLEMS: dict[type[Exception], tuple[int, str | None]] = {
    NotFound: (404, None),
    Precondition: (412, "the order changed since you read it: GET it again and retry with its ETag"),
    Conflict: (409, None),
    KeyReused: (422, "this Idempotency-Key was already used with a different request body"),
    InvalidCursor: (422, None),
}


def add_error_handlers(app: FastAPI) -> None:
    for error_class, (status, detail) in PROBLEMS.items():

        async def handler(
            request: Request, exc: Exception, status: int = status, detail: str | None = detail
        ) -> Response:
            return lastro.ProblemResponse(status, detail or str(exc))

        app.add_exception_handler(error_class, handler)
