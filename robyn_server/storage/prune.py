"""`keep_latest` pruning of a thread's checkpoints, for any LangGraph checkpointer.

Savers that implement `aprune` (the Postgres one) prune in SQL. For the others the newest checkpoint of each
namespace is read, the thread's checkpoints are deleted, and those checkpoints are written back without
parents, so the thread keeps its current state (values, next nodes, pending writes) and loses its history.
"""

from __future__ import annotations

from collections import defaultdict

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple


async def _latest_per_namespace(saver: BaseCheckpointSaver, thread_id: str) -> list[CheckpointTuple]:
    latest: dict[str, CheckpointTuple] = {}
    async for found in saver.alist({"configurable": {"thread_id": thread_id}}):
        ns = found.config["configurable"].get("checkpoint_ns", "")
        current = latest.get(ns)
        if current is None or found.checkpoint["id"] > current.checkpoint["id"]:
            latest[ns] = found
    return sorted(latest.values(), key=lambda t: len(t.config["configurable"].get("checkpoint_ns", "")))


async def keep_latest_checkpoints(saver: BaseCheckpointSaver, thread_id: str) -> None:
    """Drop every checkpoint of the thread except the newest one per namespace."""
    if type(saver).aprune is not BaseCheckpointSaver.aprune:
        await saver.aprune([thread_id], strategy="keep_latest")
        return
    kept = await _latest_per_namespace(saver, thread_id)
    await saver.adelete_thread(thread_id)
    for found in kept:
        ns = found.config["configurable"].get("checkpoint_ns", "")
        target = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        versions = dict(found.checkpoint.get("channel_versions", {}))
        saved = await saver.aput(target, found.checkpoint, dict(found.metadata or {}), versions)
        writes: dict[str, list[tuple[str, object]]] = defaultdict(list)
        for task_id, channel, value in found.pending_writes or []:
            writes[task_id].append((channel, value))
        for task_id, items in writes.items():
            await saver.aput_writes(saved, items, task_id)
