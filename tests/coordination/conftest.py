"""A real SQLite file with lastro's tables, and its units of work, for the coordination tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastro.coordination.tables import ensure_tables
from lastro.db.engine import Database
from lastro.db.transactions import Transactions


@pytest.fixture
def transactions(tmp_path: Path) -> Iterator[Transactions]:
    database = Database(f"sqlite:///{tmp_path / 'service.db'}")
    ensure_tables(database)
    units = Transactions(database)
    yield units
    units.close()
    database.dispose()
