"""How many PostgreSQL connections a worker keeps when the settings do not say: arithmetic only, shared by
the engine, `lastro doctor` and `lastro deploy docker`, none of which may size a pool differently."""

from __future__ import annotations

__all__ = ["POSTGRES_CONNECTION_BUDGET", "POSTGRES_DEFAULT_POOL", "postgres_pool"]

# Connections all workers together may hold on a PostgreSQL server with the default max_connections=100,
# leaving room for migrations, backups and an operator's psql.
POSTGRES_CONNECTION_BUDGET = 80
# A worker's connections when DB_POOL_SIZE is unset, for one unit thread fewer (`lastro.db.postgres_units`):
# fewer threads contend less for the interpreter, and 6 kept up with 10 against a server 2.76 ms away
# (benchmarks/RESULTS.md, "Near and far, and the default itself").
POSTGRES_DEFAULT_POOL = 6


def postgres_pool(
    workers: int, instances: int = 1, pool_size: int | None = None, max_overflow: int | None = None
) -> tuple[int, int]:
    """(pool_size, max_overflow) of one worker: the settings, or a share of the connection budget.

    The budget is one server's: every worker of every instance takes its share of it, less one connection
    for its health probe's own pool. Unset, a worker keeps at most POSTGRES_DEFAULT_POOL connections and no
    overflow: its unit threads keep one connection each and leave one spare, and an overflow connection is
    closed when it comes back to a full pool, then opened again for a later unit.
    """
    share = max(2, POSTGRES_CONNECTION_BUDGET // max(workers * instances, 1) - 1)
    size = pool_size if pool_size is not None else min(POSTGRES_DEFAULT_POOL, share)
    return max(size, 1), max_overflow if max_overflow is not None else 0
