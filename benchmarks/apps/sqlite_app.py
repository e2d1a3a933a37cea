"""FastAPI over one SQLite WAL file (path in env BENCH_DB).

Each worker process opens its own connection lazily on first use. Reads are a
primary-key lookup; writes insert one row inside BEGIN IMMEDIATE. The sqlite3
calls are made directly in async handlers: they take microseconds, and a worker
holds exactly one connection, so no thread pool or lock is involved.
"""

from __future__ import annotations

import os
import sqlite3

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

app = FastAPI()

_conn: sqlite3.Connection | None = None
_conn_pid: int | None = None


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def get_conn() -> sqlite3.Connection:
    """The connection of this worker process, opened on first use."""
    global _conn, _conn_pid
    pid = os.getpid()
    if _conn is None or _conn_pid != pid:
        _conn = connect(os.environ["BENCH_DB"])
        _conn_pid = pid
    return _conn


class ItemIn(BaseModel):
    name: str
    price: float


class Item(ItemIn):
    id: int


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> Item:
    row = get_conn().execute("SELECT id, name, price FROM items WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="not found")
    return Item(id=row[0], name=row[1], price=row[2])


@app.post("/items", status_code=201)
async def create_item(item: ItemIn) -> Item:
    conn = get_conn()
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute("INSERT INTO items (name, price) VALUES (?, ?)", (item.name, item.price))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    new_id = cur.lastrowid
    assert new_id is not None
    return Item(id=new_id, name=item.name, price=item.price)


def seed(path: str, rows: int) -> None:
    """Create the items table in a fresh WAL database with `rows` rows."""
    conn = connect(path)
    try:
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL)")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO items (id, name, price) VALUES (?, ?, ?)",
            ((i, f"item-{i}", (i % 1000) / 10) for i in range(1, rows + 1)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
