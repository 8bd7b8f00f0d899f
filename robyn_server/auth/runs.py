"""Authorization of run creation (`threads` resource, `create_run` action), as the reference does it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from robyn_server.auth.authorize import auth_enabled, authorize, visible
from robyn_server.errors import ApiError

NOT_FOUND_DETAIL = "Thread or assistant not found."


@dataclass
class RunAuth:
    metadata: dict[str, Any]  # the run's metadata after the handler (which may stamp `owner`)
    filters: dict[str, Any] | None = None  # what an existing thread must match
    thread_metadata: dict[str, Any] = field(default_factory=dict)  # seed for a thread the run creates


async def authorize_run(body: Any, assistant: dict[str, Any], thread_id: str | None) -> RunAuth:
    """Run the `create_run` handler; a non-system assistant must also pass the `assistants.read` handler,
    else 404 `Thread or assistant not found.` exactly as for a missing one."""
    metadata = dict(body.metadata or {})
    if not auth_enabled():
        return RunAuth(metadata, None, dict(metadata))  # a thread the run creates starts with its metadata
    value: dict[str, Any] = {
        "thread_id": thread_id,
        "assistant_id": assistant["assistant_id"],
        "run_id": None,
        "status": "pending",
        "metadata": metadata,
        "prevent_insert_if_inflight": getattr(body, "multitask_strategy", None) == "reject",
        "multitask_strategy": getattr(body, "multitask_strategy", "enqueue"),
        "if_not_exists": getattr(body, "if_not_exists", None) or "reject",
        "after_seconds": body.after_seconds or 0,
        "kwargs": {
            "input": body.input,
            "config": body.config.model_dump(exclude_none=True) if body.config else {},
            "context": body.context or {},
            "stream_mode": body.stream_mode,
        },
    }
    filters = await authorize(None, "threads", "create_run", value)
    if (assistant.get("metadata") or {}).get("created_by") != "system":
        assistant_filters = await authorize(None, "assistants", "read", {"assistant_id": assistant["assistant_id"]})
        if not visible(assistant, assistant_filters):
            raise ApiError(404, NOT_FOUND_DETAIL)
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else metadata
    return RunAuth(metadata, filters, dict(metadata))
