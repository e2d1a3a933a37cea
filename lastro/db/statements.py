"""Statements with optional parts, built once for each combination of the parts a call gives.

- `FilteredSelect`: a SELECT with optional conditions (a list endpoint's filters);
- `PartialUpdate`: an UPDATE that sets the columns a call gives (a PATCH's fields).

Either would otherwise build a new statement per request, and building one and computing its cache key
costs more than SQLite takes to run it (benchmarks/RESULTS.md, "What moved the numbers" and "An UPDATE
built once"). The values always travel as bound parameters, so a statement is never specific to one
request. `bind` gives the statement and its parameters for `Connection.execute`; `FilteredSelect.all` and
`PartialUpdate.one` run it on the driver's cursor instead (`lastro.db.prepared`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, ColumnElement, Connection, Select, Update, bindparam
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import iterate

from lastro.db.prepared import Prepared

__all__ = ["FilteredSelect", "PartialUpdate"]

S = TypeVar("S", bound=Select[Any])
U = TypeVar("U", bound=Update)
T = TypeVar("T")


def _parameter_names(element: Any) -> set[str]:
    return {node.key for node in iterate(element) if isinstance(node, BindParameter)}


class _Combinations(Generic[T]):
    """One statement for each combination of known names, built on first use. Two threads may build the
    same combination once each; either result is the same statement."""

    def __init__(self, known: Collection[str], what: str, build: Callable[[frozenset[str]], T]) -> None:
        self._known = frozenset(known)
        self._what = what  # "condition", "settable column": the error names it
        self._build = build
        self._built: dict[frozenset[str], T] = {}
        self._prepared: dict[frozenset[str], Prepared] = {}

    def get(self, names: Iterable[str]) -> T:
        key = frozenset(names)
        built = self._built.get(key)
        if built is None:
            unknown = key - self._known
            if unknown:
                raise TypeError(f"no {self._what} named {', '.join(sorted(unknown))}")
            built = self._built[key] = self._build(key)
        return built

    def prepared(self, names: Iterable[str]) -> Prepared:
        """The statement for `names`, prepared to run on the driver's cursor."""
        key = frozenset(names)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = Prepared(self.get(key))  # type: ignore[arg-type]
        return prepared


class FilteredSelect(Generic[S]):
    """`base` plus the conditions whose parameter a call gives.

    Each condition is named after the bound parameter it uses:

        page = FilteredSelect(
            select(orders).where(orders.c.tenant_id == bindparam("tenant_id")).order_by(orders.c.id.desc()),
            status=orders.c.status == bindparam("status"),
            customer=orders.c.customer == bindparam("customer"),
        )
        statement, params = page.bind(tenant_id=7, status="ready", customer=None)
        rows = connection.execute(statement, params).all()

    A condition whose value is `None` is left out. The parameters of `base` itself are always passed, `None`
    included. A name that is neither a condition nor a parameter of `base` is a `TypeError`, so a typo
    never silently drops a filter. Safe to share between threads: two threads may build the same
    combination once each, and either result is the same statement.
    """

    def __init__(self, base: S, **conditions: ColumnElement[bool]) -> None:
        self._base = base
        self._base_names = frozenset(_parameter_names(base))
        for name, condition in conditions.items():
            if name in self._base_names:
                raise ValueError(f"condition {name!r} is also a parameter of the base statement")
            if name not in _parameter_names(condition):
                raise ValueError(f"condition {name!r} has no bound parameter named {name!r}")
        self._conditions = dict(conditions)
        self._combinations = _Combinations(self._conditions, "condition", self._where)

    def bind(self, **values: Any) -> tuple[S, dict[str, Any]]:
        """The statement for the conditions given a value, and the parameters to execute it with."""
        given, params = self._split(values)
        return self.statement(given), params

    def all(self, connection: Connection, /, **values: Any) -> list[Any]:
        """The rows of `bind(**values)`'s statement, run on the driver's cursor (`lastro.Prepared`)."""
        given, params = self._split(values)
        return self._combinations.prepared(given).all(connection, **params)

    def _split(self, values: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
        params: dict[str, Any] = {}
        given: list[str] = []
        for name, value in values.items():
            if name in self._conditions:
                if value is None:
                    continue
                given.append(name)
            elif name not in self._base_names:
                raise TypeError(f"{name!r} is neither a condition nor a parameter of the base statement")
            params[name] = value
        return given, params

    def statement(self, names: Iterable[str]) -> S:
        """The statement with exactly the named conditions, built on first use."""
        return self._combinations.get(names)

    def _where(self, names: frozenset[str]) -> S:
        # Conditions in declaration order: the same combination always compiles to the same SQL.
        chosen = [condition for name, condition in self._conditions.items() if name in names]
        return self._base.where(*chosen) if chosen else self._base


class PartialUpdate(Generic[U]):
    """`base` (an UPDATE) that also sets the columns a call gives a value.

        change = PartialUpdate(
            update(orders)
            .where(orders.c.id == bindparam("order"), orders.c.version == bindparam("expected"))
            .values(version=orders.c.version + 1)
            .returning(orders.c.version),
            orders.c.status,
            orders.c.notes,
        )
        statement, params = change.bind({"status": "ready"}, order=7, expected=3)
        new_version = connection.execute(statement, params).scalar_one()

    `bind(values, **params)`: each column named in `values` is set from a bound parameter of its own
    (`set_<column>`, with the column's type); `params` are the parameters of `base`, which SQLAlchemy
    wants named otherwise than the table's columns (it keeps those names for the SET clause). A name in
    `values` that is not one of `columns` is a `TypeError`, so a typo never silently drops a change. Empty
    `values` gives `base` as it is. Safe to share between threads, like `FilteredSelect`.
    """

    def __init__(self, base: U, *columns: Column[Any]) -> None:
        base_names = _parameter_names(base)
        self._base = base
        self._columns = {column.key: column for column in columns}
        for key in self._columns:
            if _set_parameter(key) in base_names:
                raise ValueError(f"{_set_parameter(key)!r} is already a parameter of the base statement")
        self._combinations = _Combinations(self._columns, "settable column", self._setting)

    def bind(self, values: Mapping[str, Any], **params: Any) -> tuple[U, dict[str, Any]]:
        """The statement that sets the columns of `values`, and the parameters to execute it with."""
        return self.statement(values), _bound(values, params)

    def one(self, connection: Connection, values: Mapping[str, Any], /, **params: Any) -> Any:
        """The only row `bind(values, **params)`'s statement returns (it needs a RETURNING), run on the
        driver's cursor (`lastro.Prepared`)."""
        return self._combinations.prepared(values).one(connection, **_bound(values, params))

    def statement(self, keys: Iterable[str]) -> U:
        """The statement that sets exactly the named columns (and what `base` sets), built on first use."""
        return self._combinations.get(keys)

    def _setting(self, keys: frozenset[str]) -> U:
        sets = {
            key: bindparam(_set_parameter(key), type_=column.type)
            for key, column in self._columns.items()
            if key in keys
        }
        return self._base.values(sets) if sets else self._base


def _set_parameter(key: str) -> str:
    return f"set_{key}"


def _bound(values: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    bound = dict(params)
    for key, value in values.items():
        bound[_set_parameter(key)] = value
    return bound
