"""The error contract in `/openapi.json`: every answer a route can give, with the body lastro really sends.

FastAPI documents a route's success and a 422 whose body (`HTTPValidationError`) is not the one lastro
sends. `install()` gives the application a generator that, after FastAPI's:

- adds the `Problem` and `ValidationProblem` schemas (RFC 9457, `application/problem+json`);
- documents 422 with `ValidationProblem`, where FastAPI documented its own;
- adds to every operation the statuses lastro's layers answer whatever the route does: 400 (a Host not in
  `ALLOWED_HOSTS`, a malformed request), 431 (request head too large), 429 (rate limits), 503 (shedding,
  a dependency down), 504 (`REQUEST_TIMEOUT`, a commit whose outcome is unknown); with a body, 408 (slow
  body) and 413 (`MAX_BODY_BYTES`); on a write method, 507 (disk full); with a required `If-Match`, 428;
- each with the headers it carries (`Retry-After`, the `RateLimit` fields, `WWW-Authenticate`, `Allow`).

A route declares the problems of its own with `responses=lastro.problems(401, 404, 409)`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.http.validation import CONDITIONAL_HEADERS

__all__ = ["PROBLEM_SCHEMA", "VALIDATION_PROBLEM_SCHEMA", "add_error_contract", "install_openapi", "problems"]

_REF = "#/components/schemas/"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; services may add members of their own.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "`about:blank`, or a URI naming the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {"type": "string", "description": "the X-Request-ID of the request, for its logs"},
    },
    "required": ["type", "title", "status"],
}
VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "A 422 problem document listing what in the request is not valid.",
    "allOf": [
        {"$ref": f"{_REF}Problem"},
        {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                        "required": ["loc", "msg", "type"],
                    },
                }
            },
        },
    ],
}

_RETRY_AFTER = {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
_RATE_LIMIT = {
    "description": "the quota left and when it resets (IETF RateLimit fields)",
    "schema": {"type": "string"},
}
# The headers RFC 9110 (and RFC 6585 for 429) ask of these statuses, or that lastro's own answers carry.
_HEADERS: dict[int, dict[str, tuple[dict[str, Any], bool]]] = {
    401: {"WWW-Authenticate": ({"description": "how to authenticate", "schema": {"type": "string"}}, True)},
    405: {"Allow": ({"description": "the methods the resource allows", "schema": {"type": "string"}}, True)},
    429: {
        "Retry-After": (_RETRY_AFTER, True),
        "RateLimit": (_RATE_LIMIT, False),
        "RateLimit-Policy": (
            {"description": "the quota and its window", "schema": {"type": "string"}},
            False,
        ),
    },
    503: {"Retry-After": (_RETRY_AFTER, False)},
}
_WHAT: dict[int, str] = {
    400: "the Host is not one of ALLOWED_HOSTS, or the request is malformed",
    408: "the body did not arrive in time (BODY_TIMEOUT, BODY_MIN_RATE)",
    413: "the body is larger than allowed (MAX_BODY_BYTES)",
    422: "the request is not valid: `errors` lists where and why",
    428: "the request must be conditional: send If-Match with the ETag you read",
    429: "over a rate limit: retry after Retry-After seconds",
    431: "the request line and headers are too large",
    503: "the service is shedding load or a dependency is down: retry after Retry-After seconds",
    504: "no answer within REQUEST_TIMEOUT, or a write whose outcome is unknown",
    507: "the disk is full",
}
ALWAYS = (400, 429, 431, 503, 504)
WITH_BODY = (408, 413)
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own problem+json answers, e.g. `responses=lastro.problems(401, 404)`."""
    return {status: _problem_response(status) for status in statuses}


def _problem_response(status: int, schema: str = "Problem") -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _WHAT.get(status, HTTPStatus(status).phrase),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"{_REF}{schema}"}}},
    }
    headers = {
        name: {**header, "required": required}
        for name, (header, required) in _HEADERS.get(status, {}).items()
    }
    if headers:
        response["headers"] = headers
    return response


def add_error_contract(openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` (FastAPI's document) with lastro's problem answers documented; changed in place."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    for operations in openapi.get("paths", {}).values():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document(method, operation)
    if f'"{_REF}HTTPValidationError"' not in json.dumps(openapi["paths"]):  # a route may still name it
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return openapi


def _document(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation["responses"]
    validation = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if validation.get("$ref") == f"{_REF}HTTPValidationError":
        responses["422"] = _problem_response(422, "ValidationProblem")
    statuses = list(ALWAYS)
    if "requestBody" in operation:
        statuses += WITH_BODY
    if method in WRITE_METHODS:
        statuses.append(507)
    if any(
        parameter.get("in") == "header"
        and parameter.get("required")
        and parameter["name"].lower() in CONDITIONAL_HEADERS
        for parameter in operation.get("parameters", [])
    ):
        statuses.append(428)
    for status in statuses:
        responses.setdefault(str(status), _problem_response(status))


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (hence `/openapi.json`) document lastro's error contract."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_contract(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
