"""Thread copy and run rollback on a thread's checkpoints, each one atomic (see `storage/history.py`)."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver

from robyn_server.storage import history


async def copy_thread_checkpoints(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    """Give `target` every checkpoint (and pending write) of `source`, in one transaction."""
    await history.copy_thread(saver, source, target)


async def drop_run_checkpoints(saver: BaseCheckpointSaver, thread_id: str, run_id: str) -> None:
    """Remove the checkpoints a run wrote, keeping the rest of the thread's history (rollback), atomically."""
    await history.delete_run_checkpoints(saver, thread_id, run_id)
