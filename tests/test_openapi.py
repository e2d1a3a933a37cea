"""The error contract in /openapi.json: lastro's problem answers documented on every operation."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Header
from pydantic import BaseModel

import lastro
from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.settings import get_settings

PROBLEM = {"$ref": "#/components/schemas/Problem"}


class Note(BaseModel):
    text: str


@pytest.fixture
def openapi(sqlite_url: str) -> dict[str, Any]:
    app = lastro.create_app(get_settings(DATABASE_URL=sqlite_url))

    @app.get("/notes/{note_id}", responses=lastro.problems(401, 404))
    async def read(note_id: int) -> Note:
        return Note(text=str(note_id))

    @app.put("/notes/{note_id}")
    async def write(note_id: int, note: Note, if_match: Annotated[str, Header()]) -> Note:
        return note

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    document: dict[str, Any] = app.openapi()
    return document


def _responses(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = openapi["paths"][path][method]["responses"]
    return responses


def test_problems_documents_each_status_as_problem_json() -> None:
    """`lastro.problems(404)` is a `responses=` entry whose body is the Problem schema."""
    assert lastro.problems(404) == {
        404: {"description": "Not Found", "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}}}
    }


def test_problems_documents_the_headers_a_status_requires() -> None:
    """401 carries WWW-Authenticate, 429 Retry-After (RFC 9110, RFC 6585), each marked required."""
    assert lastro.problems(401)[401]["headers"]["WWW-Authenticate"]["required"] is True
    assert lastro.problems(429)[429]["headers"]["Retry-After"]["required"] is True


def test_the_problem_schemas_replace_fastapis_validation_error(openapi: dict[str, Any]) -> None:
    """Problem and ValidationProblem are components; HTTPValidationError, never sent, is gone."""
    schemas = openapi["components"]["schemas"]
    assert {"Problem", "ValidationProblem"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_422_is_a_validation_problem(openapi: dict[str, Any]) -> None:
    """A route with parameters documents 422 as problem+json with the ValidationProblem schema."""
    content = _responses(openapi, "get", "/notes/{note_id}")["422"]["content"]
    assert content == {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}}


def test_every_operation_lists_what_lastros_layers_answer(openapi: dict[str, Any]) -> None:
    """400, 429, 431, 503 and 504 are on every operation, health routes included."""
    for operations in openapi["paths"].values():
        for operation in operations.values():
            assert {"400", "429", "431", "503", "504"} <= set(operation["responses"])


def test_a_route_without_a_body_lists_no_body_limits(openapi: dict[str, Any]) -> None:
    """A GET documents neither 408 (slow body), 413 (too large) nor 507 (disk full)."""
    assert not {"408", "413", "507"} & set(_responses(openapi, "get", "/plain"))


def test_a_write_with_a_body_lists_body_limits_and_disk_full(openapi: dict[str, Any]) -> None:
    """A PUT with a body documents 408, 413 and 507 as problem+json."""
    responses = _responses(openapi, "put", "/notes/{note_id}")
    for status in ("408", "413", "507"):
        assert responses[status]["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}}


def test_a_required_if_match_documents_428(openapi: dict[str, Any]) -> None:
    """A route whose If-Match header is required documents 428 Precondition Required; others do not."""
    assert "428" in _responses(openapi, "put", "/notes/{note_id}")
    assert "428" not in _responses(openapi, "get", "/notes/{note_id}")


def test_a_routes_own_problems_are_kept(openapi: dict[str, Any]) -> None:
    """The statuses a route declares with lastro.problems stay as declared beside lastro's."""
    responses = _responses(openapi, "get", "/notes/{note_id}")
    assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert responses["404"]["content"] == {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM}}


def test_rate_limited_and_shed_answers_document_retry_after(openapi: dict[str, Any]) -> None:
    """429 documents Retry-After and the RateLimit fields; 503 documents Retry-After."""
    responses = _responses(openapi, "get", "/plain")
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(responses["429"]["headers"])
    assert "Retry-After" in responses["503"]["headers"]


def test_health_documents_its_own_503(openapi: dict[str, Any]) -> None:
    """/health/ready answers 503 with its JSON document, not a problem: the document says so."""
    content = _responses(openapi, "get", "/health/ready")["503"]["content"]
    assert list(content) == ["application/json"]
