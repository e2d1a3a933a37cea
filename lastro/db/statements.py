"""A SELECT with optional conditions, built once for each combination of the conditions a call gives.

A list endpoint with optional filters would otherwise build a new statement per request, and building a
SELECT and computing its cache key costs more than SQLite takes to run it (benchmarks/RESULTS.md, "What
moved the numbers"). The values always travel as bound parameters, so a
statement is never specific to one request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import iterate

__all__ = ["FilteredSelect"]

S = TypeVar("S", bound=Select[Any])


def _parameter_names(element: Any) -> set[str]:
    return {node.key for node in iterate(element) if isinstance(node, BindParameter)}


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
        self._built: dict[frozenset[str], S] = {}

    def bind(self, **values: Any) -> tuple[S, dict[str, Any]]:
        """The statement for the conditions given a value, and the parameters to execute it with."""
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
        return self.statement(given), params

    def statement(self, names: Iterable[str]) -> S:
        """The statement with exactly the named conditions, built on first use."""
        key = frozenset(names)
        built = self._built.get(key)
        if built is None:
            unknown = key - self._conditions.keys()
            if unknown:
                raise TypeError(f"no condition named {', '.join(sorted(unknown))}")
            # Conditions in declaration order: the same combination always compiles to the same SQL.
            chosen = [condition for name, condition in self._conditions.items() if name in key]
            built = self._built[key] = self._base.where(*chosen) if chosen else self._base
        return built
