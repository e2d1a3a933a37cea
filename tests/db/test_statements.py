"""`lastro.FilteredSelect` and `lastro.PartialUpdate`: optional parts, one statement per combination, run
on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Update,
    bindparam,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from lastro import FilteredSelect, PartialUpdate

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", Integer, nullable=False),
    Column("colour", String(10)),
    Column("size", Integer),
    Column("labels", JSON),
    Column("version", Integer, nullable=False, server_default="1"),
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


def test_all_runs_the_combination_on_the_driver(engine: Engine) -> None:
    """`all` gives the rows `bind`'s statement gives, as named tuples, and refuses what `bind` refuses."""
    page = _page()
    with engine.connect() as connection, connection.begin():
        rows = page.all(connection, owner=1, colour="red", size=None)
        assert [row.id for row in rows] == [1, 2]
        assert [row.id for row in page.all(connection, owner=1, size=5)] == [2, 3]
        with pytest.raises(TypeError, match="'colur' is neither a condition nor a parameter"):
            page.all(connection, owner=1, colur="red")


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


def _change() -> PartialUpdate[Update]:
    return PartialUpdate(
        update(things)
        .where(things.c.id == bindparam("thing_id"))
        .values(version=things.c.version + 1)
        .returning(things.c.version),
        things.c.colour,
        things.c.size,
        things.c.labels,
    )


def _row(engine: Engine, thing_id: int) -> tuple[Any, ...]:
    query = select(things.c.colour, things.c.size, things.c.labels, things.c.version)
    with engine.connect() as connection:
        return tuple(connection.execute(query.where(things.c.id == thing_id)).one())


def test_an_update_sets_the_columns_given_and_what_the_base_sets(engine: Engine) -> None:
    """The columns of `values` change, the others keep their value, and the base's SET applies."""
    with engine.begin() as connection:
        version = connection.execute(*_change().bind({"colour": "green"}, thing_id=2)).scalar_one()
    assert version == 2
    assert _row(engine, 2) == ("green", 5, None, 2)


def test_a_set_value_is_bound_with_its_columns_type(engine: Engine) -> None:
    """A JSON column is set through its own type: a list is stored as JSON and reads back as a list."""
    with engine.begin() as connection:
        connection.execute(*_change().bind({"labels": ["a", "b"], "size": None}, thing_id=1))
    assert _row(engine, 1) == ("red", None, ["a", "b"], 2)


def test_one_runs_the_update_on_the_driver(engine: Engine) -> None:
    """`one` sets the columns given, through their types, and returns the RETURNING row."""
    with engine.connect() as connection, connection.begin():
        row = _change().one(connection, {"labels": ["x"], "colour": "teal"}, thing_id=3)
    assert row.version == 2
    assert _row(engine, 3) == ("teal", 5, ["x"], 2)


def test_each_set_of_columns_is_built_once() -> None:
    """The same columns give the very same statement, whatever the values or their order; none gives the
    base."""
    change = _change()
    first, params = change.bind({"colour": "red", "size": 1}, thing_id=1)
    second, _ = change.bind({"size": 9, "colour": "blue"}, thing_id=2)
    assert first is second
    assert params == {"thing_id": 1, "set_colour": "red", "set_size": 1}
    assert change.bind({"colour": "red"}, thing_id=1)[0] is not first
    assert change.bind({}, thing_id=1)[0] is change.statement([])


def test_an_unknown_column_is_a_type_error() -> None:
    """A column that is not settable raises instead of being silently dropped."""
    with pytest.raises(TypeError, match="no settable column named colur"):
        _change().bind({"colur": "red"}, thing_id=1)


def test_a_settable_column_may_not_shadow_a_base_parameter() -> None:
    """A base statement that already binds `set_<column>` is refused at construction."""
    base = update(things).where(things.c.size == bindparam("set_size"))
    with pytest.raises(ValueError, match="'set_size' is already a parameter of the base statement"):
        PartialUpdate(base, things.c.size)
