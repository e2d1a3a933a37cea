"""One FastAPI app, four ways to reach the database: which one `BENCH_STRATEGY` picks.

Serve it with `uvicorn benchmarks.apps.db_access_app:create_app --factory --workers 2`, with:

- `BENCH_DB_URL`: `sqlite:////abs/path.db` or `postgresql://user@host/db` (the driver is the strategy's);
- `BENCH_STRATEGY`, one of
  - `async`: async SQLAlchemy (`create_async_engine`) over aiosqlite or asyncpg, in `async def` endpoints;
  - `sync`: a sync SQLAlchemy engine in `def` endpoints, which FastAPI runs in its thread pool
    (anyio's 40 threads per worker): one thread hop per request;
  - `lastro`: `lastro.ReadUnit` / `lastro.WriteUnit` over `lastro.db.Transactions`: on SQLite reads inline
    on the event loop and writes on one writer thread in `BEGIN IMMEDIATE`; on PostgreSQL one hop to a
    thread pool per unit of work;
- `BENCH_API`: `connection` (default: `engine.connect()` / `engine.begin()`, as lastro's unit of work) or
  `session` (`Session` / `AsyncSession` per request, as most FastAPI apps write it; `async` and `sync` only);
- `BENCH_LASTRO_READS` (`lastro` only): `default` (lastro's choice), `yield` (an `await asyncio.sleep(0)`
  after each read unit) or `threads` (`Transactions(inline_reads=False)`: SQLite reads on reader threads).

`GET /items/{id}` reads one row by primary key; `POST /items` inserts one row and returns it. The table is
`bench_db_access`, created and seeded by `benchmarks/db_access.py`. Every strategy uses the same SQLite
library (pysqlite3's: aiosqlite is handed pysqlite3 connections through `async_creator`, since its own
`sqlite3` is the Python build's, 3.40.1 here, which has the WAL-reset bug), the same pragmas and, on
PostgreSQL, the same pool (lastro's sizing for 2 workers, with pre-ping).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import (
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    make_url,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

import lastro
from lastro.db import sqlite
from lastro.db.engine import Database, DatabaseOptions
from lastro.db.transactions import Transactions

__all__ = ["STRATEGIES", "TABLE", "create_app", "items"]

STRATEGIES = ("async", "sync", "lastro")
APIS = ("connection", "session")
LASTRO_READS = ("default", "yield", "threads")
TABLE = "bench_db_access"

items = Table(
    TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False),
    Column("price", Float, nullable=False),
)
READ = select(items.c.id, items.c.name, items.c.price).where(items.c.id == bindparam("id"))
WRITE = insert(items).returning(items.c.id)


class ItemIn(BaseModel):
    name: str
    price: float


class Item(ItemIn):
    id: int


def _found(row: Any) -> Item:
    """The item of a result row, or 404."""
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return Item(id=row[0], name=row[1], price=row[2])


def _pool_options(workers: int) -> dict[str, Any]:
    """PostgreSQL: the pool lastro would build for `workers` workers, for every strategy alike."""
    options = DatabaseOptions(workers=workers)
    size, overflow = options.postgres_pool()
    return {
        "pool_size": size,
        "max_overflow": overflow,
        "pool_timeout": options.pool_timeout,
        "pool_recycle": options.pool_recycle,
        "pool_pre_ping": options.pool_pre_ping,
    }


def _sqlite_connector(path: str) -> Callable[[], Any]:
    """A pysqlite3 connection with lastro's pragmas; the driver's own transaction handling is left as is."""
    dbapi = sqlite.driver()

    def connect() -> Any:
        connection = dbapi.connect(path, check_same_thread=False)
        for name, value in sqlite.DEFAULT_PRAGMAS.items():
            connection.execute(f"PRAGMA {name}={value}")
        return connection

    return connect


# --- async SQLAlchemy -------------------------------------------------------------------------------------


def _async_engine(url: str, workers: int) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        import aiosqlite

        connector = _sqlite_connector(str(parsed.database))

        async def async_creator() -> Any:
            connection = aiosqlite.Connection(connector, iter_chunk_size=64)
            connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite connect does
            return await connection

        # SQLAlchemy's defaults for a file database (AsyncAdaptedQueuePool, 5 + 10 connections).
        return create_async_engine("sqlite+aiosqlite:///" + str(parsed.database), async_creator=async_creator)
    return create_async_engine(parsed.set(drivername="postgresql+asyncpg"), **_pool_options(workers))


def _add_async_routes(app: FastAPI, engine: AsyncEngine, api: str) -> None:
    if api == "session":

        @app.get("/items/{item_id}")
        async def read_item(item_id: int) -> Item:
            async with AsyncSession(engine) as session:
                return _found((await session.execute(READ, {"id": item_id})).first())

        @app.post("/items", status_code=201)
        async def create_item(item: ItemIn) -> Item:
            async with AsyncSession(engine) as session, session.begin():
                new_id = (await session.execute(WRITE, item.model_dump())).scalar_one()
            return Item(id=new_id, **item.model_dump())

        return

    @app.get("/items/{item_id}")
    async def read_item_c(item_id: int) -> Item:
        async with engine.connect() as connection:
            return _found((await connection.execute(READ, {"id": item_id})).first())

    @app.post("/items", status_code=201)
    async def create_item_c(item: ItemIn) -> Item:
        async with engine.begin() as connection:
            new_id = (await connection.execute(WRITE, item.model_dump())).scalar_one()
        return Item(id=new_id, **item.model_dump())


# --- sync SQLAlchemy in FastAPI's thread pool -------------------------------------------------------------


def _sync_engine(url: str, workers: int) -> Any:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # SQLAlchemy's defaults for a file database (QueuePool, 5 + 10 connections), on pysqlite3.
        return create_engine(
            "sqlite://", creator=_sqlite_connector(str(parsed.database)), poolclass=QueuePool
        )
    return create_engine(parsed.set(drivername="postgresql+psycopg"), **_pool_options(workers))


def _add_sync_routes(app: FastAPI, engine: Any, api: str) -> None:
    if api == "session":

        @app.get("/items/{item_id}")
        def read_item(item_id: int) -> Item:
            with Session(engine) as session:
                return _found(session.execute(READ, {"id": item_id}).first())

        @app.post("/items", status_code=201)
        def create_item(item: ItemIn) -> Item:
            with Session(engine) as session, session.begin():
                new_id = session.execute(WRITE, item.model_dump()).scalar_one()
            return Item(id=new_id, **item.model_dump())

        return

    @app.get("/items/{item_id}")
    def read_item_c(item_id: int) -> Item:
        with engine.connect() as connection:
            return _found(connection.execute(READ, {"id": item_id}).first())

    @app.post("/items", status_code=201)
    def create_item_c(item: ItemIn) -> Item:
        with engine.begin() as connection:
            new_id = connection.execute(WRITE, item.model_dump()).scalar_one()
        return Item(id=new_id, **item.model_dump())


# --- lastro's units of work -------------------------------------------------------------------------------


def _add_lastro_routes(app: FastAPI, yield_after_read: bool) -> None:
    @app.get("/items/{item_id}")
    async def read_item(item_id: int, unit: lastro.ReadUnit) -> Item:
        row = await unit.run(lambda connection: connection.execute(READ, {"id": item_id}).first())
        if yield_after_read:
            await asyncio.sleep(0)  # let the event loop run other ready work before the response
        return _found(row)

    @app.post("/items", status_code=201)
    async def create_item(item: ItemIn, unit: lastro.WriteUnit) -> Item:
        def work(connection: Connection) -> int:
            new_id: int = connection.execute(WRITE, item.model_dump()).scalar_one()
            return new_id

        return Item(id=await unit.run(work), **item.model_dump())


# --- the app ----------------------------------------------------------------------------------------------


def create_app() -> FastAPI:
    """The app for `BENCH_STRATEGY` and `BENCH_API` over `BENCH_DB_URL` (`uvicorn --factory`)."""
    strategy = os.environ.get("BENCH_STRATEGY", "lastro")
    api = os.environ.get("BENCH_API", "connection")
    url = os.environ["BENCH_DB_URL"]
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    if strategy not in STRATEGIES or api not in APIS or (strategy == "lastro" and api != "connection"):
        raise ValueError(f"unknown BENCH_STRATEGY={strategy!r} / BENCH_API={api!r}")

    if strategy == "async":
        async_engine = _async_engine(url, workers)

        @asynccontextmanager
        async def async_lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            await async_engine.dispose()

        app = FastAPI(lifespan=async_lifespan)
        _add_async_routes(app, async_engine, api)
        return app

    if strategy == "sync":
        engine = _sync_engine(url, workers)

        @asynccontextmanager
        async def sync_lifespan(app: FastAPI) -> AsyncIterator[None]:
            yield
            engine.dispose()

        app = FastAPI(lifespan=sync_lifespan)
        _add_sync_routes(app, engine, api)
        return app

    # lastro: its Database (pool, pragmas, explicit BEGIN) and Transactions (retry, breaker, where units run),
    # without the rest of `lastro.create_app` (middleware, health), which the other strategies lack too.
    reads = os.environ.get("BENCH_LASTRO_READS", "default")
    if reads not in LASTRO_READS:
        raise ValueError(f"unknown BENCH_LASTRO_READS={reads!r}")
    database = Database(url, DatabaseOptions(workers=workers))
    transactions = Transactions(database, inline_reads=False if reads == "threads" else None)

    @asynccontextmanager
    async def lastro_lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        transactions.close()
        database.dispose()

    app = FastAPI(lifespan=lastro_lifespan)
    app.state.lastro = SimpleNamespace(transactions=transactions)  # what lastro.ReadUnit / WriteUnit look up
    _add_lastro_routes(app, yield_after_read=reads == "yield")
    return app
