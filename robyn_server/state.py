"""LangGraph StateSnapshots as the reference's ThreadState JSON."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from robyn_server import serde

EMPTY_STATE: dict[str, Any] = {
    "values": {},
    "next": [],
    "tasks": [],
    "metadata": None,
    "created_at": None,
    "checkpoint": None,
    "parent_checkpoint": None,
    "interrupts": [],
    "checkpoint_id": None,
    "parent_checkpoint_id": None,
}


def _interrupts(items: Any) -> list[dict[str, Any]]:
    return [{"id": i.id, "value": i.value} for i in items or ()]


def _checkpoint(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if not config:
        return None
    conf = config.get("configurable", {})
    return {
        "checkpoint_id": conf.get("checkpoint_id"),
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
    }


def snapshot_to_state(snapshot: StateSnapshot) -> dict[str, Any]:
    """The ThreadState JSON for one snapshot (subgraph snapshots nested under their task's `state`)."""
    if snapshot.config is None or not snapshot.config.get("configurable", {}).get("checkpoint_id"):
        return dict(EMPTY_STATE)
    tasks = []
    for task in snapshot.tasks:
        nested = task.state
        tasks.append(
            {
                "id": task.id,
                "name": task.name,
                "path": list(task.path),
                "error": repr(task.error) if task.error else None,
                "interrupts": _interrupts(task.interrupts),
                "checkpoint": _checkpoint(nested) if isinstance(nested, dict) else None,
                "state": snapshot_to_state(nested) if isinstance(nested, StateSnapshot) else None,
                "result": task.result,
            }
        )
    checkpoint = _checkpoint(snapshot.config)
    parent = _checkpoint(snapshot.parent_config)
    return serde.to_jsonable(
        {
            "values": snapshot.values,
            "next": list(snapshot.next),
            "tasks": tasks,
            "metadata": snapshot.metadata,
            "created_at": snapshot.created_at,
            "checkpoint": checkpoint,
            "parent_checkpoint": parent,
            "interrupts": _interrupts(getattr(snapshot, "interrupts", ())),
            "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
            "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
        }
    )
