"""Durations as service managers write them: systemd time spans (`90`, `1min 30s`, `infinity`) and
compose's Go durations (`1m30s`, `45s`), in seconds."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration"]

_UNITS = {
    "us": 1e-6,
    "usec": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zµ]*)")


def parse_duration(text: str, bare_unit: float = 1.0) -> float | None:
    """Seconds, `math.inf` for `infinity`, or None when `text` is not a duration. A number without a unit
    is worth `bare_unit` seconds (1 for systemd and compose)."""
    value = text.strip().strip("\"'").lower()
    if value == "infinity":
        return math.inf
    total, position = 0.0, 0
    while position < len(value):
        found = _PART.match(value, position)
        if not found or found.group(2) not in _UNITS:
            return None
        unit = _UNITS[found.group(2)] if found.group(2) else bare_unit
        total += float(found.group(1)) * unit
        position = found.end()
        while position < len(value) and value[position] == " ":
            position += 1
    return total if value else None
