"""Checkpoint metadata carries the thread's id, as the reference's checkpointer writes it.

LangGraph's savers leave `thread_id` out of the metadata they copy from the config; the official server adds it
back, so `metadata.thread_id` is in every state and history entry there (runs, state updates, subgraphs). The
mixin goes in front of each backend's saver.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver


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
    """LangGraph's in-memory saver with the thread id in checkpoint metadata."""
