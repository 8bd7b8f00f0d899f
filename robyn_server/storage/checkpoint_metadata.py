"""Checkpoint metadata carries the thread's id, as the reference's checkpointer writes it.

LangGraph's savers leave `thread_id` out of the metadata they copy from the config; the official server adds it
back, so `metadata.thread_id` is in every state and history entry there (runs, state updates, subgraphs). The
mixin goes in front of each backend's saver.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from robyn_server.storage.thread_keyed import ThreadKeyed


def with_thread_id(config: Any, metadata: Any) -> Any:
    """`metadata` plus the config's `thread_id` (when it has one and the metadata does not)."""
    thread_id = (config.get("configurable") or {}).get("thread_id")
    if thread_id is None or "thread_id" in metadata:
        return metadata
    return {**metadata, "thread_id": str(thread_id)}


class ThreadIdInMetadata:
    """Adds `thread_id` (from the config's configurable) to the metadata of every checkpoint written."""

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return await super().aput(config, checkpoint, with_thread_id(config, metadata), new_versions)  # type: ignore[misc]


class MemoryCheckpointer(ThreadIdInMetadata, InMemorySaver):
    """LangGraph's in-memory saver with the thread id in checkpoint metadata; deleting a thread finds its writes
    and blobs through a per-thread index instead of a scan of every thread's."""

    def __init__(self) -> None:
        super().__init__(factory=ThreadKeyed)
        self.storage = defaultdict(lambda: defaultdict(dict))  # keyed by thread id alone: no index needed

    def delete_thread(self, thread_id: str) -> None:
        self.storage.pop(thread_id, None)
        self.writes.drop_thread(thread_id)  # type: ignore[attr-defined]
        self.blobs.drop_thread(thread_id)  # type: ignore[attr-defined]
