"""`lastro.FilteredSelect`: optional conditions, one statement per combination, run on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from lastro import FilteredSelect

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", Integer, nullable=False),
    Column("colour", String(10)),
    Column("size", Integer),
)


def _page() -> FilteredSelect[Select[Any]]:
    return FilteredSelect(
        select(things.c.id).where(things.c.owner == bindparam("owner")).order_by(things.c.id),
        colour=things.c.colour == bindparam("colour"),
        size=things.c.size >= bindparam("size"),
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'things.db'}")
    metadata.create_all(engine)
    rows = [
        {"id": 1, "owner": 1, "colour": "red", "size": 1},
        {"id": 2, "owner": 1, "colour": "red", "size": 5},
        {"id": 3, "owner": 1, "colour": "blue", "size": 5},
        {"id": 4, "owner": 2, "colour": "red", "size": 9},
    ]
    with engine.begin() as connection:
        connection.execute(insert(things), rows)
    yield engine
    engine.dispose()


def _ids(engine: Engine, page: FilteredSelect[Select[Any]], **values: object) -> list[int]:
    with engine.connect() as connection:
        return list(connection.execute(*page.bind(**values)).scalars())


def test_conditions_given_a_value_filter_the_rows(engine: Engine) -> None:
    """Each condition with a value narrows the result; the base condition always applies."""
    page = _page()
    assert _ids(engine, page, owner=1) == [1, 2, 3]
    assert _ids(engine, page, owner=1, colour="red") == [1, 2]
    assert _ids(engine, page, owner=1, colour="red", size=5) == [2]
    assert _ids(engine, page, owner=1, size=5) == [2, 3]


def test_a_condition_given_none_is_left_out(engine: Engine) -> None:
    """`None` means "not filtered", not "IS NULL": the rows are those without the condition."""
    page = _page()
    assert _ids(engine, page, owner=1, colour=None, size=None) == [1, 2, 3]
    statement, params = page.bind(owner=1, colour=None, size=5)
    assert params == {"owner": 1, "size": 5}
    assert "colour" not in str(statement)


def test_each_combination_is_built_once(engine: Engine) -> None:
    """The same conditions give the very same statement object, whatever the values or their order."""
    page = _page()
    first, _ = page.bind(owner=1, colour="red", size=1)
    second, _ = page.bind(size=9, colour="blue", owner=2)
    other, _ = page.bind(owner=1, colour="red")
    assert first is second
    assert other is not first
    assert page.bind(owner=1)[0] is page.statement([])


def test_a_base_parameter_given_none_is_passed_as_null(engine: Engine) -> None:
    """Only conditions are dropped on None: a base parameter keeps it (and matches nothing here)."""
    page = _page()
    _, params = page.bind(owner=None)
    assert params == {"owner": None}
    assert _ids(engine, page, owner=None) == []


def test_an_unknown_name_is_a_type_error() -> None:
    """A misspelt filter raises instead of being silently ignored."""
    with pytest.raises(TypeError, match="'colur' is neither a condition nor a parameter"):
        _page().bind(owner=1, colur="red")
    with pytest.raises(TypeError, match="no condition named colur"):
        _page().statement(["colur"])


def test_a_condition_must_bind_its_own_name() -> None:
    """A condition whose bound parameter has another name is refused at construction."""
    base = select(things.c.id).where(things.c.owner == bindparam("owner"))
    with pytest.raises(ValueError, match="condition 'colour' has no bound parameter named 'colour'"):
        FilteredSelect(base, colour=things.c.colour == bindparam("hue"))


def test_a_condition_may_not_shadow_a_base_parameter() -> None:
    """A condition named like a parameter of the base statement is refused at construction."""
    base = select(things.c.id).where(things.c.owner == bindparam("owner"))
    with pytest.raises(ValueError, match="'owner' is also a parameter of the base statement"):
        FilteredSelect(base, owner=things.c.owner == bindparam("owner"))
