"""One contract suite for every Storage backend, so SQLite and Postgres provably match MemoryStorage.

Postgres cases create a throwaway database per test (random name) on the local server and drop it after.
Without a reachable server they skip, unless REQUIRE_POSTGRES=1 makes that a failure (for CI).
Set POSTGRES_ADMIN_DSN to point at another server's maintenance database.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from langgraph.checkpoint.base import empty_checkpoint
from psycopg import sql

from robyn_server.storage.base import Record, RunLimitReached, Storage, run_creator
from robyn_server.storage.filters import sort_and_page
from robyn_server.storage.memory import MemoryStorage
from robyn_server.storage.postgres import PostgresStorage
from robyn_server.storage.sqlite import SqliteStorage

ADMIN_DSN = os.environ.get("POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def uid() -> str:
    return str(uuid.uuid4())


@dataclass
class Backend:
    """How to open (and re-open) one backend's storage; `persistent` backends keep data across opens."""

    name: str
    factory: Callable[[], Storage]
    persistent: bool

    async def open(self) -> Storage:
        storage = self.factory()
        await storage.setup()
        return storage


async def _postgres_admin() -> psycopg.AsyncConnection[Any]:
    try:
        return await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL unreachable at {ADMIN_DSN}: {exc}".strip()
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"{reason} (set REQUIRE_POSTGRES=1 to fail instead)")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", MemoryStorage, persistent=False)
    elif request.param == "sqlite":
        path = str(tmp_path / "storage.sqlite")
        yield Backend("sqlite", lambda: SqliteStorage(path), persistent=True)
    else:
        admin = await _postgres_admin()
        name = f"contract_{uuid.uuid4().hex[:16]}"
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
        try:
            yield Backend("postgres", lambda: PostgresStorage(dsn), persistent=True)
        finally:
            await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            await admin.close()


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    opened = await backend.open()
    yield opened
    await opened.close()


# record builders ---------------------------------------------------------------------------
def assistant(
    *,
    assistant_id: str | None = None,
    graph_id: str = "agent",
    name: str | None = "Untitled",
    metadata: dict[str, Any] | None = None,
    created: float = 0,
    updated: float | None = None,
    version: int = 1,
) -> Record:
    return {
        "assistant_id": assistant_id or uid(),
        "graph_id": graph_id,
        "config": {"configurable": {"k": [1, 2]}},
        "context": {"model": "x"},
        "metadata": metadata if metadata is not None else {},
        "name": name,
        "created_at": at(created),
        "updated_at": at(created if updated is None else updated),
        "version": version,
        "description": None,
    }


def thread(
    *,
    thread_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    status: str = "idle",
    values: Any = None,
    created: float = 0,
    updated: float | None = None,
    state_updated: float | None = None,
) -> Record:
    return {
        "thread_id": thread_id or uid(),
        "created_at": at(created),
        "updated_at": at(created if updated is None else updated),
        "state_updated_at": None if state_updated is None else at(state_updated),
        "metadata": metadata if metadata is not None else {},
        "status": status,
        "config": {},
        "values": values,
    }


def run(thread_id: str, *, status: str = "pending", created: float = 0, run_id: str | None = None) -> Record:
    return {
        "run_id": run_id or uid(),
        "thread_id": thread_id,
        "assistant_id": uid(),
        "metadata": {"graph_id": "agent"},
        "status": status,
        "kwargs": {"input": {"messages": [{"role": "user", "content": "hi"}]}, "config": {"tags": ["a"]}},
        "multitask_strategy": "enqueue",
        "created_at": at(created),
        "updated_at": at(created),
        "langsmith_session_name": None,
    }


def ids(records: list[Record], key: str) -> list[str]:
    return [r[key] for r in records]


async def put_checkpoint(storage: Storage, thread_id: str, value: int) -> None:
    saver = storage.checkpointer
    checkpoint = empty_checkpoint()
    version = saver.get_next_version(None, None)
    checkpoint["channel_values"] = {"x": value}
    checkpoint["channel_versions"] = {"x": version}
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    await saver.aput(config, checkpoint, {"source": "input", "step": -1}, {"x": version})


async def latest_checkpoint_value(storage: Storage, thread_id: str) -> Any:
    found = await storage.checkpointer.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    return None if found is None else found.checkpoint["channel_values"].get("x")


# assistants --------------------------------------------------------------------------------
async def test_assistant_put_get_round_trips(storage: Storage) -> None:
    record = assistant(metadata={"owner": "ann", "tags": ["a", "b"], "nested": {"n": 1.5}})
    record["extra"] = {"when": "later"}
    await storage.assistant_put(record)
    got = await storage.assistant_get(record["assistant_id"])
    assert got == record
    assert got is not None and list(got) == list(record)
    assert got["created_at"].utcoffset() == timedelta(0)
    assert await storage.assistant_get(uid()) is None


async def test_assistant_datetimes_come_back_as_utc(storage: Storage) -> None:
    record = assistant()
    record["created_at"] = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    await storage.assistant_put(record)
    got = await storage.assistant_get(record["assistant_id"])
    assert got is not None
    assert got["created_at"] == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert isinstance(got["created_at"], datetime) and got["created_at"].utcoffset() == timedelta(0)


async def test_assistant_versions_and_set_latest(storage: Storage) -> None:
    v1 = assistant(metadata={"stage": "draft"})
    aid = v1["assistant_id"]
    v2 = {**v1, "version": 2, "metadata": {"stage": "review"}, "updated_at": at(10)}
    v3 = {**v1, "version": 3, "metadata": {"stage": "final"}, "name": "Final", "updated_at": at(20)}
    await storage.assistant_put(v1)
    await storage.assistant_add_version(v2)
    await storage.assistant_add_version(v3)

    assert await storage.assistant_get(aid) == v3
    versions = await storage.assistant_versions(aid, None, 10, 0)
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[1] == v2
    assert [v["version"] for v in await storage.assistant_versions(aid, None, 1, 1)] == [2]
    assert [v["version"] for v in await storage.assistant_versions(aid, {"stage": "review"}, 10, 0)] == [2]
    assert await storage.assistant_versions(uid(), None, 10, 0) == []

    assert await storage.assistant_set_latest(aid, 1) == v1
    assert await storage.assistant_get(aid) == v1
    assert len(await storage.assistant_versions(aid, None, 10, 0)) == 3
    assert await storage.assistant_set_latest(aid, 99) is None
    assert await storage.assistant_set_latest(uid(), 1) is None
    assert await storage.assistant_get(aid) == v1


async def test_assistant_put_resets_versions(storage: Storage) -> None:
    v1 = assistant()
    await storage.assistant_put(v1)
    await storage.assistant_add_version({**v1, "version": 2})
    replacement = {**v1, "name": "Replaced"}
    await storage.assistant_put(replacement)
    versions = await storage.assistant_versions(v1["assistant_id"], None, 10, 0)
    assert versions == [replacement]
    assert await storage.assistant_get(v1["assistant_id"]) == replacement


async def test_assistant_delete(storage: Storage) -> None:
    keep, gone = assistant(), assistant()
    for a in (keep, gone):
        await storage.assistant_put(a)
    await storage.assistant_add_version({**gone, "version": 2})
    assert await storage.assistant_delete(gone["assistant_id"]) is True
    assert await storage.assistant_get(gone["assistant_id"]) is None
    assert await storage.assistant_versions(gone["assistant_id"], None, 10, 0) == []
    assert await storage.assistant_delete(gone["assistant_id"]) is False
    assert await storage.assistant_get(keep["assistant_id"]) == keep


async def test_assistant_search_filters(storage: Storage) -> None:
    a = assistant(graph_id="agent", name="Research Helper", metadata={"team": "r", "tags": ["x", "y"]}, created=1)
    b = assistant(graph_id="agent", name="writer", metadata={"team": "w", "cfg": {"deep": {"on": True}}}, created=2)
    c = assistant(graph_id="other", name="HELPER two", metadata={"team": "r"}, created=3)
    d = assistant(graph_id="other", name=None, metadata={}, created=4)
    for rec in (a, b, c, d):
        await storage.assistant_put(rec)

    async def search(**kw: Any) -> tuple[list[str], int]:
        args: dict[str, Any] = {"graph_id": None, "name": None, "metadata": None, "limit": 10, "offset": 0}
        args |= {"sort_by": "created_at", "sort_order": "asc"} | kw
        items, total = await storage.assistant_search(**args)
        return ids(items, "assistant_id"), total

    aid = {k: r["assistant_id"] for k, r in zip("abcd", (a, b, c, d), strict=True)}
    assert await search() == ([aid["a"], aid["b"], aid["c"], aid["d"]], 4)
    assert await search(graph_id="other") == ([aid["c"], aid["d"]], 2)
    assert await search(name="helper") == ([aid["a"], aid["c"]], 2)
    assert await search(name="HELPER", graph_id="agent") == ([aid["a"]], 1)
    assert await search(name="") == ([aid["a"], aid["b"], aid["c"], aid["d"]], 4)
    assert await search(metadata={"team": "r"}) == ([aid["a"], aid["c"]], 2)
    assert await search(metadata={"tags": ["y"]}) == ([aid["a"]], 1)
    assert await search(metadata={"tags": "y"}) == ([], 0)
    assert await search(metadata={"cfg": {"deep": {"on": True}}}) == ([aid["b"]], 1)
    assert await search(metadata={"team": "r", "missing": None}) == ([], 0)
    assert await search(metadata={}) == ([aid["a"], aid["b"], aid["c"], aid["d"]], 4)
    assert await search(limit=0) == ([], 4)


ASSISTANT_SORTS = ["assistant_id", "graph_id", "name", "created_at", "updated_at"]


async def test_assistant_search_sort_and_page(storage: Storage) -> None:
    records = [
        assistant(graph_id="g2", name="beta", created=5, updated=1),
        assistant(graph_id="g1", name="Alpha", created=1, updated=1),
        assistant(graph_id="g2", name=None, created=3, updated=9),
        assistant(graph_id="g1", name="alpha", created=3, updated=2),
        assistant(graph_id="g3", name="Ärger", created=2, updated=2),
    ]
    for rec in records:
        await storage.assistant_put(rec)
    for sort_by in ASSISTANT_SORTS:
        for order in ("asc", "desc"):
            for limit, offset in ((10, 0), (2, 1), (2, 4), (3, 10)):
                items, total = await storage.assistant_search(
                    graph_id=None,
                    name=None,
                    metadata=None,
                    limit=limit,
                    offset=offset,
                    sort_by=sort_by,
                    sort_order=order,
                )
                expected, expected_total = sort_and_page(records, sort_by, order, limit, offset)
                assert (ids(items, "assistant_id"), total) == (ids(expected, "assistant_id"), expected_total), (
                    sort_by,
                    order,
                    limit,
                    offset,
                )
    items, _ = await storage.assistant_search(
        graph_id=None, name=None, metadata=None, limit=10, offset=0, sort_by="name", sort_order="desc"
    )
    assert [i["name"] for i in items] == ["Ärger", "beta", "alpha", "Alpha", None]
    items, _ = await storage.assistant_search(
        graph_id=None, name=None, metadata=None, limit=10, offset=0, sort_by="created_at", sort_order="desc"
    )
    assert ids(items, "assistant_id") == ids([records[i] for i in (0, 2, 3, 4, 1)], "assistant_id")


# threads -----------------------------------------------------------------------------------
async def test_thread_put_get_and_overwrite(storage: Storage) -> None:
    record = thread(metadata={"user": "u1"}, values={"messages": [{"type": "human", "content": "hi"}]})
    await storage.thread_put(record)
    assert await storage.thread_get(record["thread_id"]) == record
    assert await storage.thread_get(uid()) is None
    replaced = {**record, "status": "busy", "metadata": {"user": "u2"}}
    await storage.thread_put(replaced)
    assert await storage.thread_get(record["thread_id"]) == replaced
    assert (await storage.thread_search(**_all_threads()))[1] == 1


async def test_thread_update_merges_fields(storage: Storage) -> None:
    record = thread(metadata={"a": 1})
    await storage.thread_put(record)
    fields = {"status": "error", "updated_at": at(50), "error": None, "interrupts": {"t": [{"id": "i"}]}}
    updated = await storage.thread_update(record["thread_id"], fields)
    assert updated == {**record, **fields}
    assert updated is not None and "error" in updated
    assert await storage.thread_get(record["thread_id"]) == {**record, **fields}
    assert await storage.thread_update(uid(), {"status": "idle"}) is None
    assert await storage.thread_get(record["thread_id"]) is not None


async def test_thread_delete_cascades_runs_and_checkpoints(storage: Storage) -> None:
    doomed, kept = thread(), thread()
    for t in (doomed, kept):
        await storage.thread_put(t)
    doomed_runs = [run(doomed["thread_id"], created=i) for i in range(3)]
    kept_run = run(kept["thread_id"])
    for r in [*doomed_runs, kept_run]:
        await storage.run_put(r)
    await put_checkpoint(storage, doomed["thread_id"], 1)
    await put_checkpoint(storage, kept["thread_id"], 2)
    assert await latest_checkpoint_value(storage, doomed["thread_id"]) == 1

    assert await storage.thread_delete(doomed["thread_id"]) is True
    assert await storage.thread_get(doomed["thread_id"]) is None
    for r in doomed_runs:
        assert await storage.run_get(r["run_id"]) is None
    assert await storage.run_list(doomed["thread_id"], limit=10, offset=0) == []
    assert await latest_checkpoint_value(storage, doomed["thread_id"]) is None

    assert await storage.thread_get(kept["thread_id"]) == kept
    assert await storage.run_get(kept_run["run_id"]) == kept_run
    assert await latest_checkpoint_value(storage, kept["thread_id"]) == 2
    assert await storage.thread_delete(doomed["thread_id"]) is False


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_thread_delete_leaves_no_row_of_the_thread_in_any_table(backend: Backend) -> None:
    """Postgres deletes LangGraph's checkpoint rows in its own thread-delete statement: if the saver ever keeps a
    thread's rows in a table more, this finds them (every table with a `thread_id` column is looked at)."""
    storage = await backend.open()
    try:
        doomed, kept = thread(), thread()
        for t in (doomed, kept):
            await storage.thread_put(t)
            await storage.run_put(run(t["thread_id"]))
            await put_checkpoint(storage, t["thread_id"], 1)
            config = {"configurable": {"thread_id": t["thread_id"], "checkpoint_ns": ""}}
            found = await storage.checkpointer.aget_tuple(config)
            assert found is not None
            await storage.checkpointer.aput_writes(found.config, [("x", 2)], str(uuid.uuid4()))
        assert await storage.thread_delete(doomed["thread_id"]) is True
        async with storage._pool_or_fail.connection() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'thread_id' "
                "AND table_schema = current_schema() AND table_name NOT LIKE 'pg_%%'"
            )
            tables = sorted({row["table_name"] for row in await cur.fetchall()})
            assert {"checkpoints", "checkpoint_blobs", "checkpoint_writes", "runs", "threads"} <= set(tables)
            left, still = {}, {}
            for table in tables:
                for tid, into in ((doomed["thread_id"], left), (kept["thread_id"], still)):
                    query = sql.SQL("SELECT count(*) AS n FROM {} WHERE thread_id::text = %s")
                    cur = await conn.execute(query.format(sql.Identifier(table)), (tid,))
                    row = await cur.fetchone()
                    into[table] = row["n"] if row else 0
        assert {t: n for t, n in left.items() if n} == {}
        assert all(still[t] > 0 for t in ("checkpoints", "checkpoint_writes", "runs", "threads"))
    finally:
        await storage.close()


def _all_threads(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"ids": None, "metadata": None, "values": None, "status": None, "limit": 100, "offset": 0}
    return args | {"sort_by": "created_at", "sort_order": "asc"} | kw


async def test_thread_search_filters(storage: Storage) -> None:
    a = thread(metadata={"user": "u1", "tags": ["x"]}, values={"topic": "cats", "n": 1}, status="idle", created=1)
    b = thread(metadata={"user": "u2"}, values={"topic": "dogs", "list": [1, 2]}, status="busy", created=2)
    c = thread(metadata={"user": "u1", "cfg": {"k": "v"}}, values=None, status="busy", created=3)
    d = thread(metadata={}, values=["not", "a", "dict"], status="error", created=4)
    for t in (a, b, c, d):
        await storage.thread_put(t)
    tid = {k: t["thread_id"] for k, t in zip("abcd", (a, b, c, d), strict=True)}

    async def search(**kw: Any) -> tuple[list[str], int]:
        items, total = await storage.thread_search(**_all_threads(**kw))
        return ids(items, "thread_id"), total

    assert await search() == ([tid["a"], tid["b"], tid["c"], tid["d"]], 4)
    assert await search(ids=[tid["c"], tid["a"], uid()]) == ([tid["a"], tid["c"]], 2)
    assert await search(ids=[]) == ([tid["a"], tid["b"], tid["c"], tid["d"]], 4)
    assert await search(metadata={"user": "u1"}) == ([tid["a"], tid["c"]], 2)
    assert await search(metadata={"cfg": {"k": "v"}}) == ([tid["c"]], 1)
    assert await search(metadata={"tags": ["x"]}) == ([tid["a"]], 1)
    assert await search(values={"topic": "dogs"}) == ([tid["b"]], 1)
    assert await search(values={"list": [2]}) == ([tid["b"]], 1)
    assert await search(values={"topic": "fish"}) == ([], 0)
    assert await search(status="busy") == ([tid["b"], tid["c"]], 2)
    assert await search(status="busy", metadata={"user": "u1"}) == ([tid["c"]], 1)
    assert await search(status="busy", ids=[tid["a"], tid["b"]]) == ([tid["b"]], 1)
    assert await search(status="interrupted") == ([], 0)
    assert await search(limit=0) == ([], 4)
    assert await search(limit=2, offset=1, metadata={"user": "u1"}) == ([tid["c"]], 2)


THREAD_SORTS = ["thread_id", "status", "created_at", "updated_at", "state_updated_at"]


async def test_thread_search_sort_and_page(storage: Storage) -> None:
    records = [
        thread(status="idle", created=4, updated=1, state_updated=None),
        thread(status="busy", created=1, updated=7, state_updated=3),
        thread(status="idle", created=4, updated=2, state_updated=1),
        thread(status="error", created=2, updated=7, state_updated=None),
        thread(status="busy", created=3, updated=0, state_updated=3),
        thread(status="interrupted", created=0, updated=5, state_updated=9),
    ]
    for t in records:
        await storage.thread_put(t)
    await storage.thread_update(records[0]["thread_id"], {"updated_at": at(8)})
    records[0]["updated_at"] = at(8)
    for sort_by in THREAD_SORTS:
        for order in ("asc", "desc"):
            for limit, offset in ((100, 0), (2, 0), (2, 3), (4, 5), (1, 6)):
                items, total = await storage.thread_search(
                    **_all_threads(sort_by=sort_by, sort_order=order, limit=limit, offset=offset)
                )
                expected, expected_total = sort_and_page(records, sort_by, order, limit, offset)
                assert (ids(items, "thread_id"), total) == (ids(expected, "thread_id"), expected_total), (
                    sort_by,
                    order,
                    limit,
                    offset,
                )
    items, total = await storage.thread_search(**_all_threads(sort_by="state_updated_at", sort_order="desc"))
    assert total == 6
    assert ids(items, "thread_id") == ids([records[i] for i in (5, 1, 4, 2, 0, 3)], "thread_id")
    items, _ = await storage.thread_search(**_all_threads(sort_by="created_at", sort_order="asc", status="idle"))
    assert ids(items, "thread_id") == ids([records[0], records[2]], "thread_id")


# runs --------------------------------------------------------------------------------------
async def test_run_put_get_update_delete(storage: Storage) -> None:
    t = thread()
    await storage.thread_put(t)
    r = run(t["thread_id"])
    await storage.run_put(r)
    assert await storage.run_get(r["run_id"]) == r
    assert await storage.run_get(uid()) is None

    updated = await storage.run_update(r["run_id"], {"status": "running", "updated_at": at(30)})
    assert updated == {**r, "status": "running", "updated_at": at(30)}
    assert await storage.run_get(r["run_id"]) == updated
    assert await storage.run_update(uid(), {"status": "running"}) is None

    assert await storage.run_delete(r["run_id"]) is True
    assert await storage.run_get(r["run_id"]) is None
    assert await storage.run_delete(r["run_id"]) is False
    assert await storage.thread_get(t["thread_id"]) == t


async def test_run_list_newest_first_with_status_and_paging(storage: Storage) -> None:
    tid, other = uid(), uid()
    runs = [
        run(tid, status="success", created=1),
        run(tid, status="pending", created=5),
        run(tid, status="success", created=3),
        run(tid, status="error", created=5),
        run(other, status="success", created=9),
    ]
    for r in runs:
        await storage.run_put(r)
    listed = await storage.run_list(tid, limit=10, offset=0)
    assert ids(listed, "run_id") == ids([runs[i] for i in (1, 3, 2, 0)], "run_id")
    assert listed[0] == runs[1]
    assert ids(await storage.run_list(tid, limit=2, offset=1), "run_id") == ids([runs[3], runs[2]], "run_id")
    assert ids(await storage.run_list(tid, limit=10, offset=0, status="success"), "run_id") == ids(
        [runs[2], runs[0]], "run_id"
    )
    assert await storage.run_list(tid, limit=10, offset=0, status="interrupted") == []
    assert await storage.run_list(uid(), limit=10, offset=0) == []


async def test_run_list_by_status(storage: Storage) -> None:
    tid = uid()
    runs = [run(tid, status=s, created=i) for i, s in enumerate(["pending", "running", "success", "pending"])]
    for r in runs:
        await storage.run_put(r)
    pending = await storage.run_list_by_status(["pending"])
    assert sorted(ids(pending, "run_id")) == sorted([runs[0]["run_id"], runs[3]["run_id"]])
    assert pending[0] in (runs[0], runs[3])
    active = await storage.run_list_by_status(["pending", "running"])
    assert sorted(ids(active, "run_id")) == sorted(ids([runs[0], runs[1], runs[3]], "run_id"))
    assert await storage.run_list_by_status(["timeout"]) == []
    assert await storage.run_list_by_status([]) == []
    await storage.run_update(runs[1]["run_id"], {"status": "success"})
    assert ids(await storage.run_list_by_status(["running"]), "run_id") == []


async def test_run_inflight_is_the_threads_pending_and_running_runs_oldest_first(storage: Storage) -> None:
    tid = uid()
    runs = [run(tid, status=s, created=c) for s, c in [("pending", 3), ("success", 0), ("running", 1), ("pending", 2)]]
    for r in [*runs, run(uid(), status="pending")]:
        await storage.run_put(r)
    assert ids(await storage.run_inflight(tid), "run_id") == ids([runs[2], runs[3], runs[0]], "run_id")
    assert await storage.run_inflight(uid()) == []


async def test_run_finish_sets_thread_and_run_in_one_step(storage: Storage) -> None:
    t = thread(status="busy")
    await storage.thread_put(t)
    ending = run(t["thread_id"], status="running")
    await storage.run_put(ending)
    await storage.run_finish(
        t["thread_id"], ending["run_id"], {"status": "idle", "values": {"x": 1}}, {"status": "success"}
    )
    assert await storage.thread_get(t["thread_id"]) == {**t, "status": "idle", "values": {"x": 1}}
    assert (await storage.run_get(ending["run_id"]))["status"] == "success"


async def test_run_finish_keeps_the_thread_busy_while_another_run_waits(storage: Storage) -> None:
    t = thread(status="busy")
    await storage.thread_put(t)
    ending, queued = run(t["thread_id"], status="running"), run(t["thread_id"], status="pending", created=1)
    await storage.run_put(ending)
    await storage.run_put(queued)  # created while `ending` was recording its outcome
    await storage.run_finish(t["thread_id"], ending["run_id"], {"status": "idle", "values": {"x": 2}}, None)
    assert await storage.thread_get(t["thread_id"]) == {**t, "status": "busy", "values": {"x": 2}}
    assert (await storage.run_get(ending["run_id"]))["status"] == "running"  # None leaves the run alone
    # A missing thread (a temporary run's thread deleted meanwhile) still records the run.
    await storage.run_finish(uid(), queued["run_id"], {"status": "idle"}, {"status": "interrupted"})
    assert (await storage.run_get(queued["run_id"]))["status"] == "interrupted"


def created_by(thread_id: str, identity: str, **fields: Any) -> Record:
    r = run(thread_id, **fields)
    r["kwargs"]["config"]["configurable"] = {"langgraph_auth_user_id": identity}
    return r


async def test_run_create_starts_a_due_run_on_a_free_thread(storage: Storage) -> None:
    """`start_at`: the run `run_start_next` would start next is stored `running` at once; a run behind another
    and a delayed run are stored `pending` as without it."""
    free, busy = thread(), thread()
    for t in (free, busy):
        await storage.thread_put(t)
    first = run(free["thread_id"], created=1)
    assert await storage.run_create(first, {}, {"status": "busy"}, reject=False, start_at=at(2)) == []
    assert first["status"] == "running" and first["updated_at"] == at(2)
    assert await storage.run_get(first["run_id"]) == first
    behind = run(free["thread_id"], created=3)
    found = await storage.run_create(behind, {}, {}, reject=False, start_at=at(3))
    assert ids(found or [], "run_id") == [first["run_id"]]
    assert (await storage.run_get(behind["run_id"]) or {})["status"] == "pending"
    assert (await storage.run_start_next(free["thread_id"], storage.instance_id, at(4)))[0] is None  # one at a time
    delayed = run(busy["thread_id"], created=5)
    delayed["kwargs"]["config"]["configurable"] = {"__after_seconds__": 60}
    assert await storage.run_create(delayed, {}, {}, reject=False, start_at=at(5)) == []
    assert (await storage.run_get(delayed["run_id"]) or {})["status"] == "pending"


async def test_run_create_stores_a_new_thread_with_its_run(storage: Storage) -> None:
    """`new_thread`: a thread that does not exist yet is stored by the same step as its first run (started at
    once, nothing being in flight on it); one that exists meanwhile is kept and takes the usual rules; a run
    refused by the creator limit leaves no thread behind."""
    fresh = thread(metadata={"owner": "a"})
    first = run(fresh["thread_id"], created=1)
    found = await storage.run_create(first, {"graph_id": "agent"}, {"status": "busy", "updated_at": at(1)},
                                     reject=True, start_at=at(2), new_thread=fresh)  # fmt: skip
    assert found == [] and first["status"] == "running"
    assert await storage.run_get(first["run_id"]) == first
    stored = {**fresh, "status": "busy", "updated_at": at(1), "metadata": {"owner": "a", "graph_id": "agent"}}
    assert await storage.thread_get(fresh["thread_id"]) == stored
    # created by another request meanwhile: kept as it is, and `reject` sees the run in flight on it
    again = {**fresh, "metadata": {"owner": "b"}, "status": "idle"}
    second = run(fresh["thread_id"], created=3)
    assert await storage.run_create(second, {}, {"status": "busy"}, reject=True, new_thread=again) is None
    assert await storage.run_get(second["run_id"]) is None
    assert await storage.thread_get(fresh["thread_id"]) == stored
    third = run(fresh["thread_id"], created=4)
    found = await storage.run_create(third, {}, {"status": "busy"}, reject=False, start_at=at(4), new_thread=again)
    assert ids(found or [], "run_id") == [first["run_id"]] and third["status"] == "pending"
    # at the creator's limit: neither the run nor its new thread is stored
    await storage.run_put(created_by(fresh["thread_id"], "carol"))
    refused = thread()
    with pytest.raises(RunLimitReached):
        await storage.run_create(created_by(refused["thread_id"], "carol"), {}, {"status": "busy"}, reject=False,
                                 max_creator_runs=1, new_thread=refused)  # fmt: skip
    assert await storage.thread_get(refused["thread_id"]) is None
    allowed = thread()
    mine = created_by(allowed["thread_id"], "dave")
    assert await storage.run_create(mine, {}, {"status": "busy"}, reject=False, max_creator_runs=1,
                                    new_thread=allowed) == []  # fmt: skip
    assert (await storage.thread_get(allowed["thread_id"]) or {})["status"] == "busy"
    assert await storage.run_get(mine["run_id"]) == mine


async def test_run_create_counts_the_creators_runs_in_flight(backend: Backend) -> None:
    """`max_creator_runs`: a burst of creations by one caller on threads of their own, from two storage
    instances (two processes) at once, stores exactly the maximum; finished runs and other callers don't count."""
    first = await backend.open()
    second = await backend.open() if backend.persistent else first
    try:
        threads = [thread() for _ in range(10)]
        for t in threads:
            await first.thread_put(t)
        await first.run_put(created_by(threads[0]["thread_id"], "alice", status="success"))
        await first.run_put(created_by(threads[0]["thread_id"], "bob"))

        async def create(i: int) -> bool:
            storage = (first, second)[i % 2]
            try:
                await storage.run_create(created_by(threads[i]["thread_id"], "alice", created=i), {}, {},
                                         reject=False, max_creator_runs=3)  # fmt: skip
            except RunLimitReached:
                return False
            return True

        outcomes = await asyncio.gather(*(create(i) for i in range(10)))
        assert sum(outcomes) == 3
        inflight = await first.run_list_by_status(["pending", "running"])
        assert sum(run_creator(r) == "alice" for r in inflight) == 3
        # another caller, a caller without identity, and no limit at all are not refused
        await first.run_create(created_by(threads[1]["thread_id"], "bob"), {}, {}, reject=False, max_creator_runs=3)
        await first.run_create(run(threads[1]["thread_id"]), {}, {}, reject=False, max_creator_runs=1)
        await first.run_create(created_by(threads[2]["thread_id"], "alice"), {}, {}, reject=False)
    finally:
        if second is not first:
            await second.close()
        await first.close()


# checkpointer and store --------------------------------------------------------------------
async def test_checkpointer_put_get(storage: Storage) -> None:
    tid = uid()
    assert await latest_checkpoint_value(storage, tid) is None
    await put_checkpoint(storage, tid, 41)
    await put_checkpoint(storage, tid, 42)
    assert await latest_checkpoint_value(storage, tid) == 42
    history = [c async for c in storage.checkpointer.alist({"configurable": {"thread_id": tid}})]
    assert [c.checkpoint["channel_values"]["x"] for c in history] == [42, 41]


async def test_store_put_get_search_list_namespaces(storage: Storage) -> None:
    store = storage.store
    await store.aput(("users", "u1"), "prefs", {"theme": "dark", "size": 2})
    await store.aput(("users", "u1"), "notes", {"theme": "light"})
    await store.aput(("users", "u2"), "prefs", {"theme": "dark"})
    await store.aput(("orgs", "o1"), "info", {"name": "acme"})

    item = await store.aget(("users", "u1"), "prefs")
    assert item is not None and item.value == {"theme": "dark", "size": 2}
    assert item.namespace == ("users", "u1") and item.key == "prefs"
    assert await store.aget(("users", "u1"), "missing") is None

    found = await store.asearch(("users",), limit=10)
    assert sorted((i.namespace, i.key) for i in found) == [
        (("users", "u1"), "notes"),
        (("users", "u1"), "prefs"),
        (("users", "u2"), "prefs"),
    ]
    dark = await store.asearch(("users",), filter={"theme": "dark"}, limit=10)
    assert sorted(i.namespace[1] for i in dark) == ["u1", "u2"]

    assert sorted(await store.alist_namespaces()) == [("orgs", "o1"), ("users", "u1"), ("users", "u2")]
    assert sorted(await store.alist_namespaces(prefix=("users",))) == [("users", "u1"), ("users", "u2")]
    assert sorted(await store.alist_namespaces(max_depth=1)) == [("orgs",), ("users",)]

    await store.adelete(("users", "u1"), "prefs")
    assert await store.aget(("users", "u1"), "prefs") is None


# persistence -------------------------------------------------------------------------------
async def test_data_survives_close_and_reopen(backend: Backend) -> None:
    if not backend.persistent:
        pytest.skip("MemoryStorage keeps nothing across instances by design")
    first = await backend.open()
    a = assistant(metadata={"k": "v"})
    t = thread(metadata={"user": "u"}, values={"v": [1]}, state_updated=2)
    r = run(t["thread_id"], status="running")
    try:
        await first.assistant_put(a)
        await first.assistant_add_version({**a, "version": 2})
        await first.thread_put(t)
        await first.run_put(r)
        await put_checkpoint(first, t["thread_id"], 7)
        await first.store.aput(("ns",), "key", {"kept": True})
    finally:
        await first.close()

    second = await backend.open()
    try:
        assert await second.assistant_get(a["assistant_id"]) == {**a, "version": 2}
        assert [v["version"] for v in await second.assistant_versions(a["assistant_id"], None, 10, 0)] == [2, 1]
        assert await second.thread_get(t["thread_id"]) == t
        assert await second.run_get(r["run_id"]) == r
        assert await second.run_list_by_status(["running"]) == [r]
        assert await latest_checkpoint_value(second, t["thread_id"]) == 7
        item = await second.store.aget(("ns",), "key")
        assert item is not None and item.value == {"kept": True}
        assert (await second.thread_search(**_all_threads(metadata={"user": "u"})))[1] == 1
    finally:
        await second.close()
