"""Atomic rewrites of a thread's checkpoint history: rolling back a run, keep_latest pruning, copying a thread.

Each rewrite is all or nothing: a crash or an error midway leaves the old history, and a concurrent reader (this
process or another one on the same database) sees the history before or after it, never an empty thread. A
saver's own method is used where it implements one (`adelete_for_runs`, `aprune`, `acopy_thread`; LangGraph's
Postgres saver has `aprune`). Otherwise LangGraph's SQLite and Postgres savers get the rewrite as SQL in one
transaction on their own connection, and the in-memory saver gets dict edits that never yield to the event loop.
Any other saver falls back to reading the history and writing it back through the generic API, which is not
atomic (`generic_*` below).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver


def implements(saver: BaseCheckpointSaver, method: str) -> bool:
    """Whether the saver's class overrides `method` of BaseCheckpointSaver (whose version raises)."""
    return getattr(type(saver), method, None) is not getattr(BaseCheckpointSaver, method)


def _sqlite_saver(saver: BaseCheckpointSaver) -> bool:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    return isinstance(saver, AsyncSqliteSaver)


def _postgres_saver(saver: BaseCheckpointSaver) -> bool:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    return isinstance(saver, AsyncPostgresSaver)


# ------------------------------------------------------------------------------------------ entry points
async def delete_run_checkpoints(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    """Remove the checkpoints (and their pending writes) that `run_id` wrote on the thread; keep the rest."""
    if implements(saver, "adelete_for_runs"):
        await saver.adelete_for_runs([run_id])
    elif _sqlite_saver(saver):
        await _sqlite_delete_run(saver, thread_id, run_id)
    elif _postgres_saver(saver):
        await _postgres_delete_run(saver, thread_id, run_id)
    elif isinstance(saver, InMemorySaver):
        _memory_delete_run(saver, thread_id, run_id)
    else:
        await generic_delete_run(saver, thread_id, run_id)


async def keep_latest(saver: BaseCheckpointSaver, thread_id: str) -> None:
    """Keep only the newest checkpoint of each namespace (with its pending writes), without parents."""
    if implements(saver, "aprune"):
        await saver.aprune([thread_id], strategy="keep_latest")
    elif _sqlite_saver(saver):
        await _sqlite_keep_latest(saver, thread_id)
    elif isinstance(saver, InMemorySaver):
        _memory_keep_latest(saver, thread_id)
    else:
        await generic_keep_latest(saver, thread_id)


async def copy_thread(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    """Give `target` every checkpoint, pending write and blob of `source` (metadata `thread_id` rewritten)."""
    if implements(saver, "acopy_thread"):
        await saver.acopy_thread(source, target)
    elif _sqlite_saver(saver):
        await _sqlite_copy(saver, source, target)
    elif _postgres_saver(saver):
        await _postgres_copy(saver, source, target)
    elif isinstance(saver, InMemorySaver):
        _memory_copy(saver, source, target)
    else:
        await generic_copy(saver, source, target)


# ------------------------------------------------------------------------------------------ SQLite
@asynccontextmanager
async def _sqlite_transaction(saver: Any) -> AsyncIterator[Any]:
    """One write transaction on the saver's connection, holding its lock so no other saver call interleaves."""
    await saver.setup()
    async with saver.lock:
        conn = saver.conn
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()


_SQLITE_RUN_ID = "json_extract(CAST(metadata AS TEXT), '$.run_id')"


async def _sqlite_delete_run(saver: Any, thread_id: str, run_id: str) -> None:
    async with _sqlite_transaction(saver) as conn:
        await conn.execute(
            "DELETE FROM writes WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) IN ("
            f"SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ? AND {_SQLITE_RUN_ID} = ?)",
            (thread_id, thread_id, run_id),
        )
        await conn.execute(f"DELETE FROM checkpoints WHERE thread_id = ? AND {_SQLITE_RUN_ID} = ?", (thread_id, run_id))


_SQLITE_HEADS = "SELECT checkpoint_ns, MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns"


async def _sqlite_keep_latest(saver: Any, thread_id: str) -> None:
    async with _sqlite_transaction(saver) as conn:
        await conn.execute(
            f"DELETE FROM writes WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) NOT IN ({_SQLITE_HEADS})",
            (thread_id, thread_id),
        )
        await conn.execute(
            f"DELETE FROM checkpoints WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) NOT IN ({_SQLITE_HEADS})",
            (thread_id, thread_id),
        )
        await conn.execute("UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ?", (thread_id,))


async def _sqlite_copy(saver: Any, source: str, target: str) -> None:
    metadata = (
        "CASE WHEN json_type(CAST(metadata AS TEXT), '$.thread_id') IS NULL THEN metadata "
        "ELSE CAST(json_set(CAST(metadata AS TEXT), '$.thread_id', ?) AS BLOB) END"
    )
    async with _sqlite_transaction(saver) as conn:
        await conn.execute(
            "INSERT OR REPLACE INTO checkpoints "
            "(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) "
            f"SELECT ?, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, {metadata} "
            "FROM checkpoints WHERE thread_id = ?",
            (target, target, source),
        )
        await conn.execute(
            "INSERT OR REPLACE INTO writes "
            "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
            "SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value "
            "FROM writes WHERE thread_id = ?",
            (target, source),
        )


# ------------------------------------------------------------------------------------------ Postgres
@asynccontextmanager
async def _postgres_transaction(saver: Any) -> AsyncIterator[Any]:
    """One transaction on a connection of the saver's pool (or on its single connection, under its lock)."""
    from psycopg import AsyncConnection

    conn = saver.conn
    if isinstance(conn, AsyncConnection):
        async with saver.lock, conn.transaction():
            yield conn
        return
    async with conn.connection() as pooled, pooled.transaction():
        yield pooled


async def _postgres_delete_run(saver: Any, thread_id: str, run_id: str) -> None:
    async with _postgres_transaction(saver) as conn:
        cur = await conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, metadata ->> 'run_id' = %s AS doomed, "
            "checkpoint -> 'channel_versions' AS versions FROM checkpoints WHERE thread_id = %s FOR UPDATE",
            (run_id, thread_id),
        )
        rows = [_row(r, ("checkpoint_ns", "checkpoint_id", "doomed", "versions")) for r in await cur.fetchall()]
        doomed = [r for r in rows if r["doomed"]]
        if not doomed:
            return
        by_ns: dict[str, list[str]] = defaultdict(list)
        for r in doomed:
            by_ns[r["checkpoint_ns"]].append(r["checkpoint_id"])
        for ns, ids in by_ns.items():
            await conn.execute(
                "DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = ANY(%s)",
                (thread_id, ns, ids),
            )
            await conn.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = ANY(%s)",
                (thread_id, ns, ids),
            )
        kept = {(r["checkpoint_ns"], ch, v) for r in rows if not r["doomed"] for ch, v in (r["versions"] or {}).items()}
        garbage: dict[tuple[str, str], list[str]] = defaultdict(list)
        for r in doomed:
            for channel, version in (r["versions"] or {}).items():
                if (r["checkpoint_ns"], channel, version) not in kept:
                    garbage[(r["checkpoint_ns"], channel)].append(str(version))
        for (ns, channel), versions in garbage.items():
            await conn.execute(
                "DELETE FROM checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s AND channel = %s "
                "AND version = ANY(%s)",
                (thread_id, ns, channel, versions),
            )


def _row(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """A result row as a dict, whatever row factory the saver's connections use."""
    return dict(row) if isinstance(row, dict) else dict(zip(names, row, strict=True))


async def _postgres_copy(saver: Any, source: str, target: str) -> None:
    async with _postgres_transaction(saver) as conn:
        await conn.execute(
            "INSERT INTO checkpoints "
            "(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) "
            "SELECT %s, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, "
            "CASE WHEN metadata ? 'thread_id' THEN jsonb_set(metadata, '{thread_id}', to_jsonb(%s::text)) "
            "ELSE metadata END FROM checkpoints WHERE thread_id = %s ON CONFLICT DO NOTHING",
            (target, target, source),
        )
        await conn.execute(
            "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
            "SELECT %s, checkpoint_ns, channel, version, type, blob FROM checkpoint_blobs WHERE thread_id = %s "
            "ON CONFLICT DO NOTHING",
            (target, source),
        )
        await conn.execute(
            "INSERT INTO checkpoint_writes "
            "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob) "
            "SELECT %s, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob "
            "FROM checkpoint_writes WHERE thread_id = %s ON CONFLICT DO NOTHING",
            (target, source),
        )


# ------------------------------------------------------------------------------------------ memory
# InMemorySaver keeps `storage[thread][ns][checkpoint_id] = (checkpoint, metadata, parent_id)` (both serialized),
# `writes[(thread, ns, checkpoint_id)] = {...}` and `blobs[(thread, ns, channel, version)]`. Each edit below
# computes everything it needs first and then changes the dicts with no await in between.


def _memory_delete_run(saver: InMemorySaver, thread_id: str, run_id: str) -> None:
    namespaces = saver.storage.get(thread_id) or {}
    doomed = [
        (ns, cid)
        for ns, checkpoints in namespaces.items()
        for cid, (_, metadata, _) in checkpoints.items()
        if (saver.serde.loads_typed(metadata) or {}).get("run_id") == run_id
    ]
    for ns, cid in doomed:
        del namespaces[ns][cid]
        saver.writes.pop((thread_id, ns, cid), None)


def _memory_keep_latest(saver: InMemorySaver, thread_id: str) -> None:
    namespaces = saver.storage.get(thread_id) or {}
    heads = {ns: max(checkpoints) for ns, checkpoints in namespaces.items() if checkpoints}
    referenced = {
        (thread_id, ns, channel, version)
        for ns, cid in heads.items()
        for channel, version in saver.serde.loads_typed(namespaces[ns][cid][0]).get("channel_versions", {}).items()
    }
    for ns, cid in heads.items():
        checkpoint, metadata, _ = namespaces[ns][cid]
        namespaces[ns].clear()
        namespaces[ns][cid] = (checkpoint, metadata, None)
    for key in [k for k in saver.writes if k[0] == thread_id and heads.get(k[1]) != k[2]]:
        del saver.writes[key]
    for key in [k for k in saver.blobs if k[0] == thread_id and k not in referenced]:
        del saver.blobs[key]


def _memory_copy(saver: InMemorySaver, source: str, target: str) -> None:
    def retarget(metadata: tuple[str, bytes]) -> tuple[str, bytes]:
        loaded = saver.serde.loads_typed(metadata)
        if isinstance(loaded, dict) and "thread_id" in loaded:
            return saver.serde.dumps_typed({**loaded, "thread_id": target})
        return metadata

    checkpoints = {
        ns: {cid: (c, retarget(m), parent) for cid, (c, m, parent) in items.items()}
        for ns, items in (saver.storage.get(source) or {}).items()
    }
    writes = {(target, *k[1:]): dict(v) for k, v in saver.writes.items() if k[0] == source}
    blobs = {(target, *k[1:]): v for k, v in saver.blobs.items() if k[0] == source}
    for ns, items in checkpoints.items():
        saver.storage[target][ns].update(items)
    saver.writes.update(writes)
    saver.blobs.update(blobs)


# ------------------------------------------------------------------------------------------ generic (not atomic)
async def _all_checkpoints(saver: BaseCheckpointSaver, thread_id: str) -> list[CheckpointTuple]:
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]
    tuples.reverse()  # oldest first, so parents are written before children
    return tuples


async def _write_back(
    saver: BaseCheckpointSaver, tuples: list[CheckpointTuple], thread_id: str, *, parents: bool = True
) -> None:
    for t in tuples:
        ns = t.config["configurable"].get("checkpoint_ns", "")
        target: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        parent_id = t.parent_config["configurable"].get("checkpoint_id") if t.parent_config else None
        if parents and parent_id:
            target["configurable"]["checkpoint_id"] = parent_id
        metadata = {**(t.metadata or {})}
        if "thread_id" in metadata:
            metadata["thread_id"] = thread_id
        versions = dict(t.checkpoint.get("channel_versions", {}))
        saved = await saver.aput(target, t.checkpoint, metadata, versions)  # type: ignore[arg-type]
        writes: dict[str, list[tuple[str, object]]] = defaultdict(list)
        for task_id, channel, value in t.pending_writes or []:
            writes[task_id].append((channel, value))
        for task_id, items in writes.items():
            await saver.aput_writes(saved, items, task_id)


async def generic_delete_run(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    tuples = await _all_checkpoints(saver, thread_id)
    kept = [t for t in tuples if (t.metadata or {}).get("run_id") != run_id]
    if len(kept) == len(tuples):
        return
    await saver.adelete_thread(thread_id)
    await _write_back(saver, kept, thread_id)


async def generic_keep_latest(saver: BaseCheckpointSaver, thread_id: str) -> None:
    latest: dict[str, CheckpointTuple] = {}
    for found in await _all_checkpoints(saver, thread_id):
        ns = found.config["configurable"].get("checkpoint_ns", "")
        if ns not in latest or found.checkpoint["id"] > latest[ns].checkpoint["id"]:
            latest[ns] = found
    kept = sorted(latest.values(), key=lambda t: len(t.config["configurable"].get("checkpoint_ns", "")))
    await saver.adelete_thread(thread_id)
    await _write_back(saver, kept, thread_id, parents=False)


async def generic_copy(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    await _write_back(saver, await _all_checkpoints(saver, source), target)
