"""`select` on thread history (0.17): keep only the named ThreadState fields; `values.<key>` keeps one state key."""

from __future__ import annotations

from typing import Any

from robyn_server.errors import ApiError

STATE_FIELDS = (
    "values", "next", "tasks", "checkpoint", "metadata", "created_at", "parent_checkpoint", "interrupts",
    "checkpoint_id", "parent_checkpoint_id",
)  # fmt: skip


def check_state_select(select: list[str] | None) -> list[str] | None:
    """The select list, or 422 naming the fields that are neither ThreadState fields nor `values.<key>`."""
    if not select:
        return None
    unknown = [f for f in select if f not in STATE_FIELDS and not (f.startswith("values.") and len(f) > 7)]
    if unknown:
        raise ApiError(
            422, f"Invalid select field(s): {', '.join(unknown)}. Allowed: {', '.join(STATE_FIELDS)}, values.<key>"
        )
    return select


def select_state(state: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return state
    picked = {f: state.get(f) for f in select if f in STATE_FIELDS}
    keys = [f[7:] for f in select if f.startswith("values.")]
    if keys and "values" not in picked:
        values = state.get("values")
        picked["values"] = {k: values[k] for k in keys if k in values} if isinstance(values, dict) else values
    return picked
