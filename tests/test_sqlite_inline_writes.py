"""SQLite's writes run on the event loop's own connection, without a thread hand-off, when the write lock is free;
when another connection holds it they wait it out (inline retries, then the writer's thread) and store
everything; a transaction that fails leaves no lock behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from robyn_server.storage.base import RunLimitReached
from robyn_server.storage.sqlite import SqliteStorage
from tests.test_storage_contract import at, run, thread


@pytest.fixture
async def sqlite_storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(str(tmp_path / "inline.sqlite"), busy_timeout_ms=5000)
    await storage.setup()
    yield storage
    await storage.close()


def _count_hand_offs(storage: SqliteStorage) -> list[str]:
    """Record every call sent to an aiosqlite connection's thread (the writer's, the reader's, the saver's)."""
    calls: list[str] = []
    for conn in (storage._conn, storage._reader, storage._saver_conn):
        original = conn._execute  # type: ignore[union-attr]

        async def counted(fn: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(getattr(fn, "__qualname__", repr(fn)))
            return await _original(fn, *args, **kwargs)

        conn._execute = counted  # type: ignore[union-attr,method-assign]
    return calls


async def test_an_uncontended_run_lifecycle_needs_no_thread(sqlite_storage: SqliteStorage) -> None:
    storage = sqlite_storage
    hand_offs = _count_hand_offs(storage)
    t = thread()
    await storage.thread_put(t)
    r = run(t["thread_id"])
    assert await storage.run_create(r, {"graph_id": "agent"}, {"status": "busy"}, reject=True) == []
    started, _ = await storage.run_start_next(t["thread_id"], storage.instance_id, at(1))
    assert started is not None and started["run_id"] == r["run_id"]
    await storage.run_finish(t["thread_id"], r["run_id"], {"status": "idle"}, {"status": "success"})
    assert (await storage.run_get(r["run_id"]) or {})["status"] == "success"
    assert (await storage.thread_get(t["thread_id"]) or {})["status"] == "idle"
    assert await storage.thread_delete(t["thread_id"]) is True
    assert hand_offs == []


async def test_writes_wait_out_a_lock_held_by_another_connection(sqlite_storage: SqliteStorage) -> None:
    storage = sqlite_storage
    t = thread()
    await storage.thread_put(t)
    holder = sqlite3.connect(storage.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.execute, ("COMMIT",))  # longer than the inline retries
    release.start()
    try:
        r = run(t["thread_id"])
        results = await asyncio.gather(
            storage.run_create(r, {}, {"status": "busy"}, reject=False),
            storage.thread_update(t["thread_id"], {"values": {"x": 1}}),
            storage.cron_claim_due(at(0), lambda cron, when: when),
        )
    finally:
        release.join()
        holder.close()
    assert results[0] == []
    assert (await storage.run_get(r["run_id"]) or {})["status"] == "pending"
    assert (await storage.thread_get(t["thread_id"]) or {})["values"] == {"x": 1}


async def test_a_failed_transaction_leaves_no_lock(sqlite_storage: SqliteStorage) -> None:
    storage = sqlite_storage
    t = thread()
    await storage.thread_put(t)
    mine = run(t["thread_id"])
    mine["kwargs"]["config"]["configurable"] = {"langgraph_auth_user_id": "alice"}
    await storage.run_create(mine, {}, {}, reject=False, max_creator_runs=1)
    second = {**run(t["thread_id"]), "kwargs": mine["kwargs"]}
    with pytest.raises(RunLimitReached):
        await storage.run_create(second, {}, {}, reject=False, max_creator_runs=1)
    assert await storage.run_get(second["run_id"]) is None
    other = sqlite3.connect(storage.path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if the failed transaction kept the lock
        other.execute("ROLLBACK")
    finally:
        other.close()
