"""`GET /threads/{id}/storage`: the bytes a thread's checkpoints occupy, as the saver stores them.

The reference's shape: `total_bytes`, `checkpoints` (checkpoint plus metadata), `channel_values` (one entry per
stored channel version, `by_channel`) and `pending_writes`. LangGraph's SQLite saver keeps channel values inside
the checkpoint, so there they count under `checkpoints` and `channel_values` stays empty. A saver of another kind
gives None (the route answers 501, as the reference does for a custom checkpointer).
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from robyn_server.storage.history import _postgres_saver, _postgres_transaction, _sqlite_saver


def _size(value: Any) -> int:
    """Bytes held in a serialized value (typed tuples nest bytes; type names are not counted)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, tuple | list):
        return sum(_size(v) for v in value)
    return 0


def _report(checkpoints: tuple[int, int], channels: dict[str, dict[str, int]], writes: tuple[int, int]) -> dict:
    channel_bytes = sum(c["bytes"] for c in channels.values())
    return {
        "total_bytes": checkpoints[1] + channel_bytes + writes[1],
        "checkpoints": {"count": checkpoints[0], "bytes": checkpoints[1]},
        "channel_values": {
            "count": sum(c["versions"] for c in channels.values()),
            "bytes": channel_bytes,
            "by_channel": channels,
        },
        "pending_writes": {"count": writes[0], "bytes": writes[1]},
    }


def _memory(saver: InMemorySaver, thread_id: str) -> dict[str, Any]:
    stored = [v for ns in (saver.storage.get(thread_id) or {}).values() for v in ns.values()]
    channels: dict[str, dict[str, int]] = {}
    for (tid, _ns, channel, _version), blob in list(saver.blobs.items()):
        if tid == thread_id:
            entry = channels.setdefault(channel, {"versions": 0, "bytes": 0})
            entry["versions"] += 1
            entry["bytes"] += _size(blob)
    writes = [w for key, ws in list(saver.writes.items()) if key[0] == thread_id for w in ws.values()]
    return _report((len(stored), sum(map(_size, stored))), channels, (len(writes), sum(map(_size, writes))))


async def _sqlite(saver: Any, thread_id: str) -> dict[str, Any]:
    await saver.setup()
    async with saver.lock:
        cur = await saver.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints "
            "WHERE thread_id = ?",
            (thread_id,),
        )
        checkpoints = await cur.fetchone()
        cur = await saver.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE thread_id = ?", (thread_id,)
        )
        writes = await cur.fetchone()
    return _report(tuple(checkpoints), {}, tuple(writes))


async def _postgres(saver: Any, thread_id: str) -> dict[str, Any]:
    async with _postgres_transaction(saver) as conn:
        cur = await conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(pg_column_size(checkpoint) + pg_column_size(metadata)), 0) "
            "FROM checkpoints WHERE thread_id = %s",
            (thread_id,),
        )
        checkpoints = _values(await cur.fetchone())
        cur = await conn.execute(
            "SELECT channel, COUNT(*), COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_blobs "
            "WHERE thread_id = %s GROUP BY channel",
            (thread_id,),
        )
        rows = [_values(row) for row in await cur.fetchall()]
        channels = {row[0]: {"versions": int(row[1]), "bytes": int(row[2])} for row in rows}
        cur = await conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_writes WHERE thread_id = %s",
            (thread_id,),
        )
        writes = _values(await cur.fetchone())
    return _report((int(checkpoints[0]), int(checkpoints[1])), channels, (int(writes[0]), int(writes[1])))


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


async def thread_storage(saver: BaseCheckpointSaver, thread_id: str) -> dict[str, Any] | None:
    """The thread's storage report, or None when this kind of saver cannot be measured."""
    if _sqlite_saver(saver):
        return await _sqlite(saver, thread_id)
    if _postgres_saver(saver):
        return await _postgres(saver, thread_id)
    if isinstance(saver, InMemorySaver):
        return _memory(saver, thread_id)
    return None
