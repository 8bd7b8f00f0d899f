"""The Postgres pool's check before lending a connection, without a round trip when the connection is healthy.

psycopg_pool's `check_connection` sends an empty query on every checkout: a network round trip on top of each
storage call (about ten per run). An idle connection's socket has nothing to read unless the server sent
something, and a server that dropped the connection (a restart, a failover, `pg_terminate_backend`) sends its
error and closes the socket. So the socket is polled without waiting, and only a readable (or unusable) one gets
psycopg_pool's real check, which discards it when it is dead.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg_pool import AsyncConnectionPool


async def check_connection(conn: Any) -> None:
    """Raise (so the pool replaces the connection) when the server closed it; no round trip when it is idle."""
    try:
        fd = conn.pgconn.socket
        readable, _, _ = select.select([fd], [], [], 0)
    except Exception:  # no socket (closed or broken connection): let the real check decide
        readable = [True]
    if readable:
        await AsyncConnectionPool.check_connection(conn)
