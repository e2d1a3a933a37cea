"""Durations as systemd and compose write them."""

from __future__ import annotations

import math

import pytest

from lastro.ops.doctor.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("45s", 45.0),
        ("1min 30s", 90.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("2.5s", 2.5),
        ('"10s"', 10.0),
        ("infinity", math.inf),
        ("1min30s ", 90.0),
    ],
)
def test_a_duration_is_read_in_seconds(text: str, seconds: float) -> None:
    """Bare numbers are seconds; units add up; `infinity` is infinite."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 parsecs", "-5s", "s", "5s later"])
def test_what_is_no_duration_is_none(text: str) -> None:
    """Garbage, negative numbers and unknown units are None, not a guess."""
    assert parse_duration(text) is None
