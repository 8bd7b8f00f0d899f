"""`keep_latest` pruning of a thread's checkpoints, for any LangGraph checkpointer.

The thread keeps the newest checkpoint of each namespace (its current state: values, next nodes, pending writes)
and loses its history, in one transaction: the saver's own `aprune` where it has one (Postgres), SQL on the
saver's connection for SQLite, dict edits for the in-memory saver (`storage/history.py`).
"""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver

from robyn_server.storage import history


async def keep_latest_checkpoints(saver: BaseCheckpointSaver, thread_id: str) -> None:
    """Drop every checkpoint of the thread except the newest one per namespace."""
    await history.keep_latest(saver, thread_id)
