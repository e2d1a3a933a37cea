"""`lastro.JSONResponse`: a model by its own serializer, plain data by orjson, no validation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

import pytest
from pydantic import BaseModel, PlainSerializer

from lastro import JSONResponse


class Price(BaseModel):
    amount: Annotated[Decimal, PlainSerializer(float, when_used="json")]
    at: datetime


def test_a_model_is_written_by_its_own_serializer() -> None:
    """The body is exactly what `model_dump_json` gives, with the JSON media type."""
    price = Price(amount=Decimal("10.05"), at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    response = JSONResponse(price)
    assert response.body == price.model_dump_json().encode()
    assert response.headers["content-type"] == "application/json"


def test_plain_data_is_compact_utf8_with_utc_as_z() -> None:
    """Data is written compactly, non-ASCII as UTF-8, a UTC time with `Z` as pydantic writes it."""
    data = {"name": "São João", "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), 7: [1, None, True]}
    body = JSONResponse(data).body
    assert body == '{"name":"São João","at":"2026-01-02T03:04:05.000006Z","7":[1,null,true]}'.encode()


def test_status_and_headers_are_kept() -> None:
    """Status code and headers pass through as for any Starlette response."""
    response = JSONResponse({"id": 1}, status_code=201, headers={"ETag": '"1"'})
    assert (response.status_code, response.headers["etag"]) == (201, '"1"')


def test_an_integer_past_64_bits_still_encodes() -> None:
    """What orjson refuses goes to the standard library, so the body is still valid JSON."""
    assert json.loads(JSONResponse({"big": 2**70}).body) == {"big": 2**70}


def test_a_decimal_is_refused_rather_than_guessed() -> None:
    """A Decimal is not JSON: a TypeError, not a number or a string picked silently."""
    with pytest.raises(TypeError):
        JSONResponse({"amount": Decimal("1.10")})
