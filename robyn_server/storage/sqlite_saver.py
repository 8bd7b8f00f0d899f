"""LangGraph's AsyncSqliteSaver with its per-run methods made cheap: done inline when SQLite can answer at once.

aiosqlite runs every call (execute, fetch, commit, cursor close) as a hand-off between the event loop and the
connection's thread; a checkpoint write took three and a read five, about 30 per run, and those hand-offs cost
more CPU than the SQL. Here `aget_tuple`, `aput`, `aput_writes` and `adelete_thread` run LangGraph's own
synchronous `SqliteSaver` code (same SQL, same serializer) on a second connection in the event loop's thread
whose `busy_timeout` is 0: with `synchronous=NORMAL` an uncontended commit takes tens of microseconds, about
what serializing the checkpoint costs anyway. When the write lock is taken (another connection is in a write
transaction) it fails at once instead of waiting; the call pauses on the event loop and retries (`inline_first`),
then goes to the aiosqlite connection's thread in one hop, waiting there with the configured `busy_timeout` (and
for the saver's lock, which history rewrites in `storage/history.py` hold; their open transaction also makes
inline writes fail, so they never interleave, while inline reads see the last committed history). The inline
connection never runs WAL checkpoints (`wal_autocheckpoint=0`), so the event loop never waits for an fsync; the
other connections run them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from robyn_server.storage.checkpoint_metadata import with_thread_id

T = TypeVar("T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """The error SQLite gives a connection with `busy_timeout=0` when another one holds the lock it needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


# When another connection holds the write lock, retry inline after these pauses (SQLite's own busy handler
# waits 1, 2, 5, 10 ms between tries) before handing the call to an aiosqlite thread that waits with the full
# `busy_timeout`. A call on a thread holds the write lock while it waits for the GIL (its statements run Python
# code, the saver's serializer among them), so going to a thread at the first refusal fed itself: at 50 clients
# about one call a run went to a thread, and the GIL waits and context switches cost ~1.7 ms of CPU a run (SQLite
# c50: 92 runs/s at 11.1 ms without the pauses, 107 at 9.4 ms with them). A pause on the event loop holds no
# lock, so the holder finishes and the retry runs inline.
BUSY_PAUSES_S = (0.001, 0.002, 0.005, 0.01)


async def inline_first(attempt: Callable[[], T], on_thread: Callable[[], Awaitable[T]]) -> T:
    """`attempt()` on an inline connection (it must leave no transaction open when it raises), retried after
    BUSY_PAUSES_S while the write lock is taken elsewhere, then `on_thread()`."""
    for pause in (*BUSY_PAUSES_S, None):
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
        if pause is not None:
            await asyncio.sleep(pause)
    return await on_thread()


class WalCheckpoints:
    """A PASSIVE WAL checkpoint on an aiosqlite connection's thread every `every` inline commits: the inline
    connections never checkpoint, and without checkpoints the WAL (and every read's search of it) would grow."""

    def __init__(self, conn: Any, lock: asyncio.Lock, every: int = 500) -> None:
        self.conn, self.lock, self.every = conn, lock, every
        self._count = 0
        self._running: asyncio.Task[None] | None = None

    def wrote(self) -> None:
        self._count += 1
        if self._count >= self.every and self._running is None:
            self._count = 0
            self._running = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        try:
            async with self.lock:
                await self.conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # a later one catches up; the WAL only stays longer meanwhile
        finally:
            self._running = None


class SqliteCheckpointer(AsyncSqliteSaver):
    """AsyncSqliteSaver on `conn`, with an inline connection to the same file at `path` for the hot methods."""

    def __init__(self, conn: Any, *, path: str | None = None, wal: WalCheckpoints | None = None, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._path = path
        self._wal = wal
        self._inline: SqliteSaver | None = None
        self._threaded: SqliteSaver | None = None

    async def setup(self) -> None:
        await super().setup()
        if self._threaded is None and hasattr(self.conn, "_execute"):
            threaded = SqliteSaver(self.conn._conn, serde=self.serde)  # used only on aiosqlite's thread
            threaded.is_setup = True
            self._threaded = threaded
        if self._inline is None and self._path is not None:
            raw = sqlite3.connect(self._path)
            raw.execute("PRAGMA busy_timeout=0")
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA wal_autocheckpoint=0")
            inline = SqliteSaver(raw, serde=self.serde)
            inline.is_setup = True
            self._inline = inline

    def close_inline(self) -> None:
        if self._inline is not None:
            self._inline.conn.close()
            self._inline = None

    async def _call(self, name: str, *args: Any) -> Any:
        inline = self._inline
        if inline is None:
            return await self._on_thread(name, *args)

        def attempt() -> Any:
            try:
                result = getattr(inline, name)(*args)
            except sqlite3.OperationalError:
                if inline.conn.in_transaction:
                    inline.conn.rollback()
                raise
            if self._wal is not None and name != "get_tuple":
                self._wal.wrote()
            return result

        return await inline_first(attempt, lambda: self._on_thread(name, *args))

    async def _on_thread(self, name: str, *args: Any) -> Any:
        threaded = self._threaded
        if threaded is None:
            return await getattr(super(), f"a{name}")(*args)
        async with self.lock:
            return await self.conn._execute(getattr(threaded, name), *args)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._call("get_tuple", config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._call("put", config, checkpoint, with_thread_id(config, metadata), new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._call("put_writes", config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._call("delete_thread", thread_id)
