"""LangGraph's AsyncSqliteSaver with its per-run methods each done in one hop to the connection's thread.

aiosqlite runs every call (execute, fetch, commit, cursor close) as a separate hand-off between the event loop
and the connection's thread; a checkpoint write took three and a read five, about 30 per run. Here `aget_tuple`,
`aput`, `aput_writes` and `adelete_thread` run LangGraph's own synchronous `SqliteSaver` code (same SQL, same
serializer) on that thread in a single call each, under the async saver's lock so they never land inside
another caller's transaction on the connection. Everything else is the async saver's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

T = TypeVar("T")


class SqliteCheckpointer(AsyncSqliteSaver):
    """AsyncSqliteSaver whose hot methods cost one thread hop each (falls back to the async ones when the
    aiosqlite connection does not offer `_execute`)."""

    _sync: SqliteSaver | None = None

    async def setup(self) -> None:
        await super().setup()
        if self._sync is None and hasattr(self.conn, "_execute"):
            sync = SqliteSaver(self.conn._conn, serde=self.serde)  # the sqlite3 connection, used on its own thread
            sync.is_setup = True
            self._sync = sync

    async def _on_thread(self, fn: Callable[..., T], *args: Any) -> T:
        async with self.lock:
            return await self.conn._execute(fn, *args)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if self._sync is None:
            return await super().aget_tuple(config)
        return await self._on_thread(self._sync.get_tuple, config)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self._sync is None:
            return await super().aput(config, checkpoint, metadata, new_versions)
        return await self._on_thread(self._sync.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if self._sync is None:
            return await super().aput_writes(config, writes, task_id, task_path)
        await self._on_thread(self._sync.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        if self._sync is None:
            return await super().adelete_thread(thread_id)
        await self._on_thread(self._sync.delete_thread, thread_id)
