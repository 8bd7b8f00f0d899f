"""State payloads (`values`, `updates`) and checkpoints in the protocol's shapes.

Messages inside state become the protocol's compact message objects (type, content blocks, id, and only the
fields that carry something), `__interrupt__` keys are dropped (interrupts travel as `input.requested`), and
LangGraph's checkpoint payloads become the protocol's `Checkpoint` (`id`, `parent_id`, `step`, `source`),
which also keeps the run's configuration, credentials included, out of the stream.
"""

from __future__ import annotations

from typing import Any

from langchain_protocol.protocol import Checkpoint

from robyn_server import serde

MESSAGE_TYPES = frozenset({"ai", "human", "system", "tool", "remove"})
ROLE_TYPES = {"assistant": "ai", "user": "human"}
BLOCK_TYPES = frozenset(
    {"text", "reasoning", "tool_call", "tool_call_chunk", "invalid_tool_call", "server_tool_call",
     "server_tool_call_chunk", "server_tool_result", "image", "audio", "video", "file", "non_standard"}
)  # fmt: skip


def _message_type(value: dict[str, Any]) -> str | None:
    kind = value.get("type")
    kind = ROLE_TYPES.get(kind, kind) if isinstance(kind, str) else None
    return kind if kind in MESSAGE_TYPES else None


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    blocks: list[Any] = []
    for entry in content:
        if isinstance(entry, str):
            blocks.append({"type": "text", "text": entry})
        elif isinstance(entry, dict) and isinstance(entry.get("type"), str):
            blocks.append(entry if entry["type"] in BLOCK_TYPES else {"type": "non_standard", "value": entry})
    return blocks or content


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    calls = []
    for call in raw if isinstance(raw, list) else ():
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            entry = {"type": "tool_call", "name": call["name"], "args": call.get("args") or {}}
            if isinstance(call.get("id"), str):
                entry["id"] = call["id"]
            calls.append(entry)
    return calls


def message(value: dict[str, Any]) -> dict[str, Any]:
    kind = _message_type(value)
    if kind is None:
        return value
    out: dict[str, Any] = {"type": kind, "content": _content(value.get("content", ""))}
    for key in ("id", "name"):
        if isinstance(value.get(key), str):
            out[key] = value[key]
    if isinstance(value.get("response_metadata"), dict) and value["response_metadata"]:
        out["response_metadata"] = value["response_metadata"]
    if kind == "tool":
        if isinstance(value.get("tool_call_id"), str):
            out["tool_call_id"] = value["tool_call_id"]
        if value.get("status") in ("success", "error"):
            out["status"] = value["status"]
        if "artifact" in value:
            out["artifact"] = value["artifact"]
    elif kind == "ai":
        if calls := _tool_calls(value.get("tool_calls")):
            out["tool_calls"] = calls
        if isinstance(value.get("invalid_tool_calls"), list) and value["invalid_tool_calls"]:
            out["invalid_tool_calls"] = value["invalid_tool_calls"]
    return out


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and "content" in value and _message_type(value) is not None


def _normalize(value: Any) -> Any:
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if not isinstance(value, dict):
        return value
    if _is_message(value):
        return message(value)
    return {k: _normalize(v) for k, v in value.items() if k != "__interrupt__"}


def state_payload(value: Any) -> Any:
    """A `values`, `updates` or `tools` payload as plain protocol data."""
    return _normalize(serde.to_jsonable(value))


def checkpoint(payload: Any) -> Checkpoint | None:
    """LangGraph's `checkpoints` stream payload as the protocol's `Checkpoint`, or None without an id."""
    if not isinstance(payload, dict):
        return None
    configurable = (payload.get("config") or {}).get("configurable") or {}
    checkpoint_id = configurable.get("checkpoint_id")
    if not isinstance(checkpoint_id, str):
        return None
    metadata = payload.get("metadata") or {}
    out: Checkpoint = {"id": checkpoint_id, "step": metadata.get("step", -1), "source": metadata.get("source", "loop")}
    parent_id = ((payload.get("parent_config") or {}).get("configurable") or {}).get("checkpoint_id")
    if isinstance(parent_id, str):
        out["parent_id"] = parent_id
    return out
