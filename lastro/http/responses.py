"""`JSONResponse`: a route's fast path to JSON, for answers FastAPI need not validate again.

A route that returns a model lets FastAPI validate it against `response_model` and serialize it, which is
right by default. Where that pass shows in a profile (a page of many rows), a route can build the JSON data
itself and return it here: the body is written by orjson in one call. The route still declares
`response_model`, so `/openapi.json` documents the answer, and a test that validates served bodies against
that schema proves the two agree (the orders service's list does this: benchmarks/RESULTS.md, "The
reference service: models, helpers and speed").
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from lastro.encoding import dumps_json

__all__ = ["JSONResponse"]

# A UTC datetime as pydantic writes it ("...Z"), dict keys that are not strings as text.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


class JSONResponse(Response):
    """`application/json` from a pydantic model (its own serializer) or from plain JSON data (orjson).

    Plain data may hold dicts, lists, strings, numbers, booleans, `None`, datetimes, dates, UUIDs and
    enums; a `Decimal` is not JSON and must be converted first (to a number or a string, as the schema
    says). Nothing is validated: the schema the route declares is a promise that tests keep.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return content.__pydantic_serializer__.to_json(content)
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except TypeError:
            return dumps_json(content)  # what orjson refuses (an integer past 64 bits): the standard library
