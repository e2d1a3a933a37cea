"""The answer to a request FastAPI found not valid: 422 problem+json listing why, or 428 (RFC 6585).

A route that requires `If-Match` declares it as a required header, so `/openapi.json` says so; a request
without it is then answered 428 Precondition Required, as the RFC asks, rather than a plain 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lastro.http.problem import ProblemResponse

__all__ = ["CONDITIONAL_HEADERS", "validation_problem"]

CONDITIONAL_HEADERS = frozenset({"if-match"})


def validation_problem(errors: Sequence[Any]) -> ProblemResponse:
    """The problem answer to FastAPI's validation `errors` (`RequestValidationError.errors()`)."""
    listed = [{"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in errors]
    if listed and all(_missing_condition(error) for error in listed):
        names = ", ".join(sorted({str(error["loc"][1]) for error in listed}))
        return ProblemResponse(428, f"this request must be conditional: send {names} with the ETag you read")
    return ProblemResponse(422, "the request is not valid", errors=listed)


def _missing_condition(error: dict[str, Any]) -> bool:
    location = error["loc"]
    return (
        error["type"] == "missing"
        and len(location) == 2
        and location[0] == "header"
        and str(location[1]).lower() in CONDITIONAL_HEADERS
    )
