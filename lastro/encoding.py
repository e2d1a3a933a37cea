"""JSON, fast: orjson for every document lastro writes or reads (log lines, JSON columns, responses).

orjson encodes and decodes several times faster than the standard library's `json`, which showed in every
profile: a page of 50 orders spent more in `json.dumps` than in SQLite (benchmarks/RESULTS.md, "What moved
the numbers"). The output is compact and UTF-8. What orjson refuses (an integer past 64 bits, say) goes
to the standard library instead, so the choice never changes what can be stored or logged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["dumps_json", "dumps_json_text", "loads_json"]


def dumps_json(obj: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON; `default` turns what JSON has no type for into something it has."""
    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(obj, default=default, ensure_ascii=False, separators=(",", ":")).encode()


def dumps_json_text(obj: Any) -> str:
    """`dumps_json` as text: what SQLAlchemy's `json_serializer` must return."""
    return dumps_json(obj).decode()


def loads_json(data: str | bytes) -> Any:
    return orjson.loads(data)
