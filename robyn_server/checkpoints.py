"""Copying a thread's checkpoints through the generic checkpointer API (thread copy and run rollback)."""

from __future__ import annotations

from collections import defaultdict

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple


async def _all_checkpoints(saver: BaseCheckpointSaver, thread_id: str) -> list[CheckpointTuple]:
    tuples = [t async for t in saver.alist({"configurable": {"thread_id": thread_id}})]
    tuples.reverse()  # oldest first, so parents are written before children
    return tuples


async def _write(saver: BaseCheckpointSaver, tuples: list[CheckpointTuple], thread_id: str) -> None:
    for t in tuples:
        conf = t.config["configurable"]
        ns = conf.get("checkpoint_ns", "")
        parent_id = t.parent_config["configurable"].get("checkpoint_id") if t.parent_config else None
        target = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        if parent_id:
            target["configurable"]["checkpoint_id"] = parent_id
        checkpoint = t.checkpoint
        metadata = {**t.metadata}
        if "thread_id" in metadata:
            metadata["thread_id"] = thread_id
        saved = await saver.aput(target, checkpoint, metadata, dict(checkpoint.get("channel_versions", {})))
        writes_by_task: dict[str, list[tuple[str, object]]] = defaultdict(list)
        for task_id, channel, value in t.pending_writes or []:
            writes_by_task[task_id].append((channel, value))
        for task_id, writes in writes_by_task.items():
            await saver.aput_writes(saved, writes, task_id)


async def copy_thread_checkpoints(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    """Give `target` every checkpoint (and pending write) of `source`."""
    await _write(saver, await _all_checkpoints(saver, source), target)


async def drop_run_checkpoints(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    """Remove the checkpoints a run wrote, keeping the rest of the thread's history (rollback)."""
    tuples = await _all_checkpoints(saver, thread_id)
    kept = [t for t in tuples if (t.metadata or {}).get("run_id") != run_id]
    if len(kept) == len(tuples):
        return
    await saver.adelete_thread(thread_id)
    await _write(saver, kept, thread_id)
