"""Rollback, keep_latest prune and thread copy rewrite a thread's checkpoints atomically, on memory, SQLite and
Postgres: the result is right, a concurrent reader (on a second connection, like another server process) never
sees an empty thread, and a failure injected midway (a database trigger, or a failing serializer in memory) leaves
the original history intact."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint

from robyn_server.checkpoints import copy_thread_checkpoints, drop_run_checkpoints
from robyn_server.storage.base import Storage
from robyn_server.storage.postgres import PostgresStorage
from robyn_server.storage.prune import keep_latest_checkpoints
from robyn_server.storage.sqlite import SqliteStorage
from tests import test_storage_contract as contract
from tests.test_storage_contract import Backend, uid

backend = contract.backend
storage = contract.storage


@pytest.fixture
async def reader(backend: Backend, storage: Storage) -> AsyncIterator[Storage]:
    """A second storage on the same database (another process's view); the same one for memory."""
    if not backend.persistent:
        yield storage
        return
    other = await backend.open()
    yield other
    await other.close()


def root(thread_id: str, checkpoint_id: str | None = None) -> dict[str, Any]:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


async def put_run(saver: BaseCheckpointSaver, thread_id: str, run_id: str, values: list[int]) -> None:
    """Checkpoints `values` written by `run_id` after the thread's latest one, each with a pending write."""
    latest = await saver.aget_tuple(root(thread_id))
    parent = latest.config["configurable"]["checkpoint_id"] if latest else None
    version = latest.checkpoint["channel_versions"].get("x") if latest else None
    for value in values:
        checkpoint = empty_checkpoint()
        version = saver.get_next_version(version, None)
        checkpoint["channel_values"] = {"x": value}
        checkpoint["channel_versions"] = {"x": version}
        metadata = {"source": "loop", "step": value, "run_id": run_id, "thread_id": thread_id}
        saved = await saver.aput(root(thread_id, parent), checkpoint, metadata, {"x": version})  # type: ignore[arg-type]
        await saver.aput_writes(saved, [("x", value * 10)], f"task-{value}")
        parent = saved["configurable"]["checkpoint_id"]


async def history(saver: BaseCheckpointSaver, thread_id: str) -> list[tuple[Any, ...]]:
    """(value, parent value or None, pending write values, metadata thread_id), newest first."""
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]
    by_id = {t.config["configurable"]["checkpoint_id"]: t for t in tuples}
    out = []
    for t in tuples:
        parent_id = t.parent_config["configurable"]["checkpoint_id"] if t.parent_config else None
        parent = by_id.get(parent_id) if parent_id else None
        out.append(
            (
                t.checkpoint["channel_values"].get("x"),
                parent.checkpoint["channel_values"].get("x") if parent else parent_id,
                sorted(v for _, _, v in t.pending_writes or []),
                (t.metadata or {}).get("thread_id"),
            )
        )
    return out


async def two_runs(storage: Storage) -> tuple[str, str, str]:
    thread_id, first, second = uid(), uid(), uid()
    await put_run(storage.checkpointer, thread_id, first, [1, 2])
    await put_run(storage.checkpointer, thread_id, second, [3, 4])
    return thread_id, first, second


async def test_rollback_drops_only_the_runs_checkpoints(storage: Storage) -> None:
    thread_id, _, second = await two_runs(storage)
    await drop_run_checkpoints(storage.checkpointer, thread_id, second)
    assert await history(storage.checkpointer, thread_id) == [(2, 1, [20], thread_id), (1, None, [10], thread_id)]
    await drop_run_checkpoints(storage.checkpointer, thread_id, uid())  # no checkpoint of that run: unchanged
    assert len(await history(storage.checkpointer, thread_id)) == 2


async def test_keep_latest_keeps_the_head_and_its_pending_writes(storage: Storage) -> None:
    thread_id, _, _ = await two_runs(storage)
    other, _, _ = await two_runs(storage)
    await keep_latest_checkpoints(storage.checkpointer, thread_id)
    assert await history(storage.checkpointer, thread_id) == [(4, None, [40], thread_id)]
    latest = await storage.checkpointer.aget_tuple(root(thread_id))
    assert latest is not None and latest.checkpoint["channel_values"] == {"x": 4}
    assert len(await history(storage.checkpointer, other)) == 4  # other threads untouched


async def test_copy_brings_history_writes_and_values(storage: Storage) -> None:
    source, _, _ = await two_runs(storage)
    target = uid()
    await copy_thread_checkpoints(storage.checkpointer, source, target)
    expected = [(v, p, w, target) for v, p, w, _ in await history(storage.checkpointer, source)]
    assert await history(storage.checkpointer, target) == expected
    await drop_run_checkpoints(storage.checkpointer, target, "no-such-run")
    latest = await storage.checkpointer.aget_tuple(root(target))
    assert latest is not None and latest.checkpoint["channel_values"] == {"x": 4}


Rewrite = Callable[[BaseCheckpointSaver, str, str], Awaitable[None]]


async def _rollback(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    await drop_run_checkpoints(saver, thread_id, run_id)


async def _prune(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    await keep_latest_checkpoints(saver, thread_id)


@pytest.mark.parametrize("rewrite", [_rollback, _prune], ids=["rollback", "prune"])
async def test_a_concurrent_reader_never_sees_an_empty_thread(
    storage: Storage, reader: Storage, rewrite: Rewrite
) -> None:
    empty_reads = total_reads = 0
    for _ in range(5):
        thread_id, _, second = await two_runs(storage)
        await put_run(storage.checkpointer, thread_id, second, [5, 6, 7, 8])
        done, reading = asyncio.Event(), asyncio.Event()

        async def read(
            thread_id: str = thread_id, done: asyncio.Event = done, reading: asyncio.Event = reading
        ) -> None:
            nonlocal empty_reads, total_reads
            while not done.is_set():
                found = await reader.checkpointer.aget_tuple(root(thread_id))
                total_reads += 1
                empty_reads += found is None
                reading.set()
                await asyncio.sleep(0)

        task = asyncio.create_task(read())
        await reading.wait()  # the reader is reading before the rewrite starts
        await rewrite(storage.checkpointer, thread_id, second)
        done.set()
        await task
        assert [v for v, *_ in await history(storage.checkpointer, thread_id)][:1] in ([2], [8])
    assert total_reads > 0
    assert empty_reads == 0


# failure injection ------------------------------------------------------------------------------------------
class FailingSerde:
    """The memory saver's serializer, failing on every dump and on loads after the first `loads_ok` (the memory
    rewrites do all their (de)serializing before their first change)."""

    def __init__(self, inner: Any, loads_ok: int) -> None:
        self.inner, self.loads_left = inner, loads_ok

    def loads_typed(self, data: Any) -> Any:
        self.loads_left -= 1
        if self.loads_left < 0:
            raise RuntimeError("injected failure")
        return self.inner.loads_typed(data)

    def dumps_typed(self, obj: Any) -> Any:
        raise RuntimeError("injected failure")


def sqlite_exec(path: str, statement: str) -> None:
    with sqlite3.connect(path, timeout=10) as conn:
        conn.execute(statement)


async def postgres_exec(dsn: str, statement: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(statement)  # type: ignore[arg-type]


async def inject(storage: Storage, table: str, event: str) -> Callable[[], Awaitable[None]]:
    """Make every `event` (DELETE/INSERT) on the saver's `table` fail in the database; returns the undo."""
    if isinstance(storage, SqliteStorage):
        name = {"checkpoint_writes": "writes"}.get(table, table)
        sqlite_exec(
            storage.path,
            f"CREATE TRIGGER inject_failure BEFORE {event} ON {name} "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )

        async def undo_sqlite() -> None:
            sqlite_exec(storage.path, "DROP TRIGGER inject_failure")

        return undo_sqlite
    assert isinstance(storage, PostgresStorage)
    await postgres_exec(
        storage.dsn,
        "CREATE OR REPLACE FUNCTION inject_failure() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    await postgres_exec(
        storage.dsn,
        f"CREATE TRIGGER inject_failure BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION inject_failure()",
    )

    async def undo_postgres() -> None:
        await postgres_exec(storage.dsn, f"DROP TRIGGER inject_failure ON {table}")

    return undo_postgres


@pytest.mark.parametrize("rewrite", [_rollback, _prune], ids=["rollback", "prune"])
async def test_a_failure_midway_leaves_the_history_intact(storage: Storage, rewrite: Rewrite) -> None:
    thread_id, _, second = await two_runs(storage)
    before = await history(storage.checkpointer, thread_id)
    saver = storage.checkpointer
    if isinstance(storage, SqliteStorage | PostgresStorage):
        undo = await inject(storage, "checkpoints", "DELETE")  # checkpoints go after their writes
    else:
        real = saver.serde
        saver.serde = FailingSerde(real, loads_ok=0)  # type: ignore[assignment]

        async def undo() -> None:
            saver.serde = real

    with pytest.raises(Exception, match="injected failure"):
        await rewrite(saver, thread_id, second)
    await undo()
    assert await history(saver, thread_id) == before
    await rewrite(saver, thread_id, second)  # the saver is still usable and the rewrite now succeeds
    assert len(await history(saver, thread_id)) in (1, 2)


async def test_a_failed_copy_leaves_no_partial_thread(storage: Storage) -> None:
    source, _, _ = await two_runs(storage)
    target = uid()
    saver = storage.checkpointer
    if isinstance(storage, SqliteStorage | PostgresStorage):
        undo = await inject(storage, "checkpoint_writes", "INSERT")  # writes are copied after checkpoints
    else:
        real = saver.serde
        saver.serde = FailingSerde(real, loads_ok=0)  # type: ignore[assignment]

        async def undo() -> None:
            saver.serde = real

    with pytest.raises(Exception, match="injected failure"):
        await copy_thread_checkpoints(saver, source, target)
    await undo()
    assert await history(saver, target) == []
    assert len(await history(saver, source)) == 4
