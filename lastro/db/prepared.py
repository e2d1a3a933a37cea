"""`Prepared`: a Core statement compiled once for each dialect, then run on the driver's own cursor.

    _GET_ORDER = lastro.Prepared(select(orders).where(orders.c.id == bindparam("order_id")))
    row = _GET_ORDER.first(connection, order_id=7)      # a named tuple, or None

`connection.execute(statement, params)` builds an execution context, a cursor result and a row for every
call: for a one-row SELECT, three to four times the CPU of running it on the driver's cursor on SQLite,
and nearly twice on PostgreSQL (benchmarks/RESULTS.md, "Statements run on the driver"). `Prepared`
compiles the statement once per dialect (and per set of parameter names, which are an INSERT's columns),
keeps the types' bind and result processors, and runs the SQL on the connection's driver cursor: the same
SQL, the same converted values, the rows as named tuples. The driver caches the prepared statement by its
SQL (sqlite3's statement cache, psycopg's automatic prepare).

It runs only inside a transaction SQLAlchemy began on the connection, as in a lastro unit of work. A driver
error is raised as SQLAlchemy's (`sqlalchemy.exc.IntegrityError`, say), and a lost connection is
invalidated, as `Connection.execute` does. What it cannot run the same way goes through
`Connection.execute` instead, with the same rows: a connection outside a transaction, expanding
(`IN`) or literal parameters, bind names the dialect must escape, columns with Python-side defaults, or
execution options on the statement or the connection.

A connection the driver reports closed (psycopg's `closed`) after an error is left to `Connection.execute`,
which fails on it too and handles the loss as it does: the connection and the pool's older ones are
invalidated. SQLAlchemy's execution events (`before_cursor_execute`, `handle_error`) do not fire for a
statement run on the driver.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

from lastro.db.sqlite import BEGIN_OPTION

__all__ = ["Prepared"]

Processor = Callable[[Any], Any] | None
# Connection options that change how a transaction begins, not how a statement runs.
_HARMLESS_OPTIONS = frozenset({"isolation_level", BEGIN_OPTION, "logging_token", "compiled_cache"})


class _Bind(NamedTuple):
    name: str  # the parameter's name in the compiled SQL
    key: str  # the name a caller gives it
    default: Any  # the statement's own value (a literal, or a bindparam's value)
    callable_: Callable[[], Any] | None
    required: bool
    process: Processor


class _Plan:
    """One compilation: the SQL, how to build its parameters, and how to read its rows."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: list[str]) -> None:
        # The parameters' names as column keys, as Connection.execute compiles: an INSERT's or an UPDATE's
        # columns are the ones a call gives.
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.direct = not (
            (isinstance(statement, Executable) and statement.get_execution_options())
            or compiled.escaped_bind_names
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.insert_prefetch
            or compiled.update_prefetch
            or any(bind.expanding for bind in compiled.binds.values())
        )
        self.positional = dialect.positional
        names = list(compiled.positiontup or ()) if dialect.positional else list(compiled.binds)
        self.binds = [self._bind(compiled, name, dialect) for name in names]
        self.dialect = dialect
        self.result_types = [column.type for column in getattr(statement, "exported_columns", ())]
        # The columns that have a result processor, with it; None until a cursor's description is read.
        self.converting: list[tuple[int, Callable[[Any], Any]]] | None = None
        self.row_type: Any = None  # a namedtuple class, once the columns are known

    @staticmethod
    def _bind(compiled: SQLCompiler, name: str, dialect: Dialect) -> _Bind:
        bind = compiled.binds[name]
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        return _Bind(name, bind.key, bind.value, bind.callable, bind.required, process)

    def parameters(self, given: Mapping[str, Any]) -> Any:
        values = []
        for bind in self.binds:
            if bind.key in given:
                value = given[bind.key]
            elif bind.callable_ is not None:
                value = bind.callable_()
            elif bind.required:
                raise exc.ArgumentError(f"a value is required for bind parameter {bind.key!r}")
            else:
                value = bind.default
            values.append(value if bind.process is None else bind.process(value))
        if self.positional:
            return values
        return {bind.name: value for bind, value in zip(self.binds, values, strict=True)}

    def rows(self, cursor: Any) -> list[tuple[Any, ...]]:
        description = cursor.description
        if description is None:
            return []
        if self.converting is None:
            self._read_description(description)
        make = self.row_type._make
        fetched = cursor.fetchall()
        converting = self.converting
        if not converting:
            return [make(row) for row in fetched]
        rows = []
        for row in fetched:
            values = list(row)
            for index, process in converting:
                values[index] = process(values[index])
            rows.append(make(values))
        return rows

    def _read_description(self, description: Any) -> None:
        names = [column[0] for column in description]
        types = self.result_types if len(self.result_types) == len(names) else [None] * len(names)
        processors = [
            None
            if type_ is None
            else type_.dialect_impl(self.dialect).result_processor(self.dialect, column[1])
            for type_, column in zip(types, description, strict=True)
        ]
        self.row_type = _row_class(names)  # before `converting`, which tells another thread it is ready
        self.converting = [
            (index, process) for index, process in enumerate(processors) if process is not None
        ]


class Prepared:
    """`statement`, compiled on first use for each dialect and set of parameter names; run with `all`,
    `first`, `one` or `scalar_one`.

    Safe to share between threads, like the statement itself: two threads may compile the same plan once
    each, and either is the same.
    """

    def __init__(self, statement: ClauseElement) -> None:
        if not isinstance(statement, Executable):
            raise TypeError(f"Prepared needs a select, insert, update or delete statement, not {statement!r}")
        self.statement = statement
        self._plans: weakref.WeakKeyDictionary[Dialect, dict[frozenset[str], _Plan]] = (
            weakref.WeakKeyDictionary()
        )

    def all(self, connection: Connection, /, **params: Any) -> list[Any]:
        """Every row, as named tuples."""
        return self._run(connection, params)

    def first(self, connection: Connection, /, **params: Any) -> Any | None:
        """The first row, or None."""
        rows = self._run(connection, params)
        return rows[0] if rows else None

    def one(self, connection: Connection, /, **params: Any) -> Any:
        """The only row; `NoResultFound` or `MultipleResultsFound` otherwise, as SQLAlchemy raises them."""
        rows = self._run(connection, params)
        if not rows:
            raise exc.NoResultFound("No row was found when one was required")
        if len(rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return rows[0]

    def scalar_one(self, connection: Connection, /, **params: Any) -> Any:
        """The first column of the only row."""
        return self.one(connection, **params)[0]

    def _run(self, connection: Connection, params: Mapping[str, Any]) -> list[Any]:
        plan = self._plan(connection.dialect, params)
        if not (plan.direct and connection.in_transaction()) or not _HARMLESS_OPTIONS.issuperset(
            connection.get_execution_options()
        ):
            return self._through_sqlalchemy(connection, params, plan)
        parameters = plan.parameters(params)
        driver = connection.connection.driver_connection
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(plan.sql, parameters)
            return plan.rows(cursor)
        except connection.dialect.loaded_dbapi.Error as error:
            if _closed(driver):
                # The server or the network ended the connection, so nothing can run on it: the statement
                # goes to SQLAlchemy, which fails the same way and handles the loss as it would have (the
                # pool's older connections included).
                return self._through_sqlalchemy(connection, params, plan)
            raise _sqlalchemy_error(connection, error, plan.sql, parameters, cursor) from error
        finally:
            cursor.close()

    def _plan(self, dialect: Dialect, params: Mapping[str, Any]) -> _Plan:
        keys = frozenset(params)
        plans = self._plans.get(dialect)
        if plans is None:
            plans = self._plans.setdefault(dialect, {})
        plan = plans.get(keys)
        if plan is None:
            plan = plans[keys] = _Plan(self.statement, dialect, sorted(keys))
        return plan

    def _through_sqlalchemy(
        self, connection: Connection, params: Mapping[str, Any], plan: _Plan
    ) -> list[Any]:
        result = connection.execute(self.statement, dict(params))
        if not result.returns_rows:
            return []
        rows = result.all()
        if plan.row_type is None:
            plan.row_type = _row_class(list(result.keys()))
        return [plan.row_type._make(row) for row in rows]


def _closed(driver: Any) -> bool:
    """Whether the driver says the connection is gone (psycopg does; sqlite3's never is)."""
    return bool(getattr(driver, "closed", False))


def _sqlalchemy_error(
    connection: Connection, error: Exception, sql: str, parameters: Any, cursor: Any
) -> exc.DBAPIError:
    """The driver's `error` as `Connection.execute` raises it; a lost connection is invalidated."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.driver_connection, cursor)  # type: ignore[arg-type]
    if lost:
        connection.invalidate(error)
    wrapped = exc.DBAPIError.instance(
        sql,
        parameters,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=connection.engine.hide_parameters,
        connection_invalidated=lost,
        dialect=dialect,
    )
    assert isinstance(wrapped, exc.DBAPIError)  # a driver error is always wrapped as one
    return wrapped


def _row_class(names: list[str]) -> Any:
    """A named tuple class for rows of these columns (a name that is no identifier becomes `_<index>`)."""
    return namedtuple("Row", names, rename=True)
