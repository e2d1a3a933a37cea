"""`make faults` (`LASTRO_FAULTS=1`): the long variants, and the tests `make test` leaves to it."""

from __future__ import annotations

import os

import pytest

FAULTS = os.environ.get("LASTRO_FAULTS") == "1"


def faults_only(covered_by: str) -> pytest.MarkDecorator:
    """Run by `make faults` only; `covered_by` says what covers the same path in `make test`."""
    return pytest.mark.skipif(not FAULTS, reason=f"make faults: in make test, {covered_by}")
