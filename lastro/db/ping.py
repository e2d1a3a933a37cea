"""`IdlePing`: ping a pooled connection before use only when it has been idle long enough to die unseen.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: one more round trip for every unit of work,
a quarter of a PostgreSQL read's (ping, BEGIN, SELECT, COMMIT), and the server's CPU besides. A connection
another unit handed back a moment ago was alive then. What kills a connection unseen (a restarted server,
a firewall or NAT dropping an idle flow, `idle_session_timeout`) takes an idle spell, or cuts connections
in use too. So, like HikariCP's `aliveBypassWindowMs`, a connection idle for less than `after` seconds is
handed out without a ping. One that died within that window fails its unit's first statement: SQLAlchemy
then invalidates it and every older connection of the pool, and `Transactions` runs the unit again on a
new one, as it does for any unreachable database (`lastro.db.failures`).

A ping that finds the connection dead raises `DisconnectionError`: the pool then replaces that connection
and checks out again, which is SQLAlchemy's own pre-ping behaviour. Any other error from the ping is the
checkout's error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

__all__ = ["IdlePing"]

_IDLE_SINCE = "lastro_idle_since"  # in the pool's per-connection `info`, which a new connection starts empty


class IdlePing:
    """Ping at checkout the connections that have been back in the pool for `after` seconds or more.

    `after=0` pings at every checkout, as `pool_pre_ping=True` does. `pings` counts the pings sent.
    """

    def __init__(self, after: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if after < 0:
            raise ValueError(f"after must be >= 0 seconds, got {after!r}")
        self.after = after
        self.pings = 0
        self._clock = clock

    def install(self, engine: Engine) -> None:
        """Listen on `engine`'s pool; the engine must be built with `pool_pre_ping=False`."""
        dialect = engine.dialect

        def checked_in(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is not None:  # None: the connection was invalidated on the way back
                record.info[_IDLE_SINCE] = self._clock()

        def checking_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            since = record.info.pop(_IDLE_SINCE, None)
            if since is None or self._clock() - since < self.after:
                return  # new, or handed back moments ago
            self.pings += 1
            try:
                dialect.do_ping(dbapi_connection)
            except dialect.loaded_dbapi.Error as error:  # the driver's own errors, as SQLAlchemy's pre-ping
                if dialect.is_disconnect(error, dbapi_connection, None):
                    raise DisconnectionError(f"pooled connection found dead: {error}") from error
                raise

        event.listen(engine.pool, "checkin", checked_in)
        event.listen(engine.pool, "checkout", checking_out)
