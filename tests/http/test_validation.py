"""A request FastAPI finds not valid: 422 listing why, or 428 when only a required If-Match is missing."""

from __future__ import annotations

from typing import Any

from lastro.http.problem import PROBLEM_CONTENT_TYPE
from lastro.http.validation import validation_problem

MISSING_IF_MATCH = {"loc": ("header", "if-match"), "msg": "Field required", "type": "missing", "input": None}
BAD_BODY = {"loc": ("body", "name"), "msg": "Field required", "type": "missing", "input": {}}


def _document(errors: list[dict[str, Any]]) -> tuple[int, bytes]:
    response = validation_problem(errors)
    assert response.media_type == PROBLEM_CONTENT_TYPE
    return response.status_code, bytes(response.body)


def test_invalid_input_is_422_listing_each_error() -> None:
    """Each error's location, message and type are listed, and nothing of the input is echoed."""
    status, body = _document([BAD_BODY])
    assert status == 422
    assert b'"errors":[{"loc":["body","name"],"msg":"Field required","type":"missing"}]' in body


def test_only_a_missing_if_match_is_428() -> None:
    """A request whose one fault is a missing required If-Match must be conditional: 428 (RFC 6585)."""
    status, body = _document([MISSING_IF_MATCH])
    assert status == 428
    assert b"If-Match" in body or b"if-match" in body


def test_a_missing_if_match_with_other_errors_is_422() -> None:
    """A missing If-Match beside another error is answered 422, listing both."""
    status, body = _document([MISSING_IF_MATCH, BAD_BODY])
    assert status == 422
    assert b"if-match" in body


def test_another_missing_header_is_422() -> None:
    """Only the conditional headers turn a missing header into 428."""
    status, _ = _document([{**MISSING_IF_MATCH, "loc": ("header", "x-token")}])
    assert status == 422
