"""Turning LangGraph stream chunks into the reference server's SSE events.

`messages-tuple` goes out as `messages` with `[chunk, metadata]`; `messages` (v1) accumulates chunks per
message id into `messages/metadata`, `messages/partial` (the whole message so far) and `messages/complete`.
With `stream_subgraphs`, events from subgraphs are named `MODE|ns1|ns2` (never the `messages/*` ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message

from robyn_server import serde
from robyn_server.runs.credentials import redact

STREAM_MODES = frozenset(
    {"values", "updates", "messages", "messages-tuple", "custom", "events", "debug", "tasks", "checkpoints", "tools"}
)
# Modes LangGraph itself streams; `messages` serves both message modes, `events` comes from astream_events.
_NATIVE = ("values", "updates", "custom", "debug", "tasks", "checkpoints", "tools")

Event = tuple[str, bytes]


def normalize_stream_mode(stream_mode: str | list[str] | None) -> list[str]:
    """The requested modes in order, de-duplicated; `values` when none are given."""
    if stream_mode is None:
        return ["values"]
    modes = [stream_mode] if isinstance(stream_mode, str) else list(stream_mode)
    seen: list[str] = []
    for mode in modes:
        if mode not in seen:
            seen.append(mode)
    return seen


def _checkpoint_ref(config: Any) -> dict[str, Any] | None:
    if not isinstance(config, dict) or "configurable" not in config:
        return None
    conf = config["configurable"]
    return {
        "checkpoint_id": conf.get("checkpoint_id"),
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
    }


def _with_checkpoint_refs(chunk: dict[str, Any]) -> dict[str, Any]:
    """Debug checkpoint payloads gain `checkpoint`/`parent_checkpoint` objects like the reference's."""
    payload = dict(chunk.get("payload") or {})
    payload["config"] = redact(payload.get("config"))
    payload["parent_config"] = redact(payload.get("parent_config"))
    payload["checkpoint"] = _checkpoint_ref(payload.get("config"))
    payload["parent_checkpoint"] = _checkpoint_ref(payload.get("parent_config"))
    return {**chunk, "payload": payload}


class StreamMapper:
    """Per-run state for mapping chunks: which modes were asked for and the messages seen so far."""

    def __init__(self, stream_mode: list[str], subgraphs: bool) -> None:
        self.requested = set(stream_mode)
        self.subgraphs = subgraphs
        self.tuple_messages = "messages-tuple" in self.requested
        self.v1_messages = "messages" in self.requested and not self.tuple_messages
        self.wants_events = "events" in self.requested
        self._messages: dict[str, BaseMessageChunk | BaseMessage] = {}
        self._metadata_obj: object = None
        self._metadata_bytes = b"null"
        self.last_values: Any = None
        self.saw_values = False

    def langgraph_modes(self) -> list[str]:
        """Modes to ask LangGraph for: the requested native ones, `messages` for either message mode, and
        always `values` so the run's final state is known for `/wait` and `/join`."""
        modes = [m for m in _NATIVE if m in self.requested]
        if self.tuple_messages or self.v1_messages:
            modes.append("messages")
        if "values" not in modes:
            modes.append("values")
        return modes

    def _name(self, mode: str, namespace: tuple[str, ...]) -> str:
        if namespace and self.subgraphs:
            return "|".join((mode, *namespace))
        return mode

    def map(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> Iterable[Event]:
        """Events for one `(namespace, mode, chunk)` from LangGraph."""
        if mode == "values" and not namespace:
            self.last_values = chunk
            self.saw_values = True
        if mode == "messages":
            if self.tuple_messages:
                return ((self._name("messages", namespace), self._tuple_bytes(*chunk)),)
            if self.v1_messages:
                return self._accumulate(*chunk)
            return ()
        if mode not in self.requested:
            return ()
        if mode == "debug" and isinstance(chunk, dict) and chunk.get("type") == "checkpoint":
            chunk = _with_checkpoint_refs(chunk)
        elif mode == "checkpoints" and isinstance(chunk, dict) and "config" in chunk:
            chunk = {**chunk, "config": redact(chunk["config"]), "parent_config": redact(chunk.get("parent_config"))}
        return ((self._name(mode, namespace), serde.dumps(chunk)),)

    def _tuple_bytes(self, message: BaseMessage, metadata: dict[str, Any]) -> bytes:
        """`[message, metadata]`; LangGraph passes one metadata dict for every token of a model call, so its
        bytes are made once per call instead of once per token."""
        if metadata is not self._metadata_obj:
            self._metadata_obj, self._metadata_bytes = metadata, serde.dumps(metadata)
        return b"[" + serde.dumps(message) + b"," + self._metadata_bytes + b"]"

    def _accumulate(self, message: BaseMessage, metadata: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        msg_id = message.id or ""
        if msg_id not in self._messages:
            events.append(("messages/metadata", serde.dumps({msg_id: {"metadata": metadata}})))
            self._messages[msg_id] = message
            if not isinstance(message, BaseMessageChunk):
                events.append(("messages/complete", serde.dumps([message])))
                return events
        elif isinstance(message, BaseMessageChunk):
            previous = self._messages[msg_id]
            self._messages[msg_id] = previous + message if isinstance(previous, BaseMessageChunk) else message
        else:
            self._messages[msg_id] = message
            events.append(("messages/complete", serde.dumps([message])))
            return events
        current = self._messages[msg_id]
        whole = message_chunk_to_message(current) if isinstance(current, BaseMessageChunk) else current
        events.append(("messages/partial", serde.dumps([whole])))
        return events

    def map_langgraph_event(self, event: dict[str, Any]) -> Iterable[Event]:
        """For `astream_events`: the root graph's stream chunks become mode events, the rest `events`."""
        if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
            chunk = event["data"].get("chunk")
            if isinstance(chunk, tuple) and len(chunk) == 3:
                return self.map(chunk[0], chunk[1], chunk[2])
            if isinstance(chunk, tuple) and len(chunk) == 2:
                return self.map((), chunk[0], chunk[1])
            return ()
        if self.wants_events:
            return (("events", serde.dumps(event)),)
        return ()
