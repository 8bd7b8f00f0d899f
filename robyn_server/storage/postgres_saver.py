"""LangGraph's AsyncPostgresSaver without its process-wide lock when it draws connections from a pool.

The saver wraps every call in one `asyncio.Lock`, which a single shared connection needs; with a pool each call
takes its own connection and Postgres orders concurrent writers itself, so the lock only made every checkpoint
read and write of the process wait in one line (several per run, each a network round trip).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg_pool import AsyncConnectionPool

from robyn_server.storage.checkpoint_metadata import ThreadIdInMetadata


class _NoLock:
    """An asyncio.Lock stand-in that never waits."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def locked(self) -> bool:
        return False


# The tables `AsyncPostgresSaver.adelete_thread` deletes a thread's rows from; the storage deletes them in its own
# thread-delete statement (tests/test_storage_contract.py checks no table keeps a deleted thread's rows).
SAVER_THREAD_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")


class PostgresCheckpointer(ThreadIdInMetadata, AsyncPostgresSaver):
    """AsyncPostgresSaver; with a pool (and so no pipeline), its calls run concurrently."""

    def __init__(self, conn: Any, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        if isinstance(conn, AsyncConnectionPool):
            self.lock = _NoLock()  # type: ignore[assignment]
