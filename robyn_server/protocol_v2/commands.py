"""Protocol-v2 commands on one thread: `{"id", "method", "params"}` in, a success or error envelope out.

Envelopes and error codes are the published protocol's (`langchain_protocol`); the methods and their
validation messages follow the reference server: `run.start`, `input.respond`, `agent.getTree` and the
`subscription.*` family (which hold no state over stateless HTTP; a WebSocket keeps its own).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langchain_protocol.protocol import CommandResponse, ErrorResponse

from robyn_server import serde
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import validate
from robyn_server.protocol_v2.log import EventFilter, is_channel
from robyn_server.protocol_v2.runner import PROTOCOL_V2_KEY
from robyn_server.protocol_v2.source import ThreadEvents
from robyn_server.runs.service import create_run
from robyn_server.schemas import RunCreateStateful

KNOWN_COMMANDS = frozenset(
    {"run.start", "input.respond", "agent.getTree", "subscription.subscribe", "subscription.unsubscribe",
     "subscription.reconnect"}
)  # fmt: skip
MULTITASK_STRATEGIES = ("reject", "interrupt", "rollback", "enqueue")
NO_RUN = "No active run is bound to this thread."
INTERRUPT_SETTLE_SECONDS = 5.0


class CommandError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error(command_id: Any, code: str, message: str) -> ErrorResponse:
    return {"type": "error", "id": command_id, "error": code, "message": message}  # type: ignore[typeddict-item]


def envelope_error(payload: Any) -> ErrorResponse | None:
    """The reference's check of the envelope itself: an integer id and a string method."""
    if isinstance(payload, dict) and isinstance(payload.get("id"), int) and not isinstance(payload["id"], bool):
        if isinstance(payload.get("method"), str):
            return None
    command_id = payload.get("id") if isinstance(payload, dict) else None
    return error(command_id, "invalid_argument", "Protocol commands must include an integer id and string method.")


def parse_filter(params: dict[str, Any], what: str) -> EventFilter:
    """Channels (required, all known), namespaces (lists of strings) and depth (a non-negative int)."""
    channels = params.get("channels")
    if not isinstance(channels, list) or not channels:
        raise CommandError("invalid_argument", f"{what} requires a non-empty channels array.")
    if not all(is_channel(c) for c in channels):
        raise CommandError("invalid_argument", f"{what} received an unsupported channel.")
    namespaces = params.get("namespaces")
    if not (isinstance(namespaces, list) and all(isinstance(ns, list) and all(isinstance(s, str) for s in ns)
                                                 for ns in namespaces)):  # fmt: skip
        namespaces = None
    depth = params.get("depth")
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        depth = None
    return EventFilter(frozenset(channels), namespaces or None, depth)


class ThreadCommands:
    """Runs the commands of one request (HTTP) or one connection (WebSocket) on a thread."""

    def __init__(self, ctx: ServerContext, thread_id: str, events: ThreadEvents, request_id: str | None) -> None:
        self.ctx = ctx
        self.thread_id = thread_id
        self.events = events
        self.request_id = request_id
        self.subscriptions: dict[str, EventFilter] = {}

    async def meta(self) -> dict[str, int]:
        return {"applied_through_seq": await self.events.last_seq(self.thread_id)}

    async def handle(self, command: dict[str, Any]) -> CommandResponse | ErrorResponse:
        command_id = command["id"]
        method = command["method"]
        if method not in KNOWN_COMMANDS:
            return error(command_id, "unknown_command", f"Unknown protocol command: {method}")
        params = command.get("params") if isinstance(command.get("params"), dict) else {}
        meta = await self.meta()  # before the command: a run it starts comes after this seq
        try:
            handler = getattr(self, "_" + method.replace(".", "_"))
            result = await handler(params)
        except CommandError as exc:
            return error(command_id, exc.code, exc.message)
        return {"type": "success", "id": command_id, "result": result, "meta": meta}  # type: ignore[typeddict-item]

    # ------------------------------------------------------------------ runs
    async def _start(self, assistant_id: str, params: dict[str, Any], command: dict[str, Any] | None) -> str:
        config = dict(params.get("config") or {}) if isinstance(params.get("config"), dict) else {}
        configurable = dict(config.get("configurable") or {})
        checkpoint_id = configurable.pop("checkpoint_id", None)
        if checkpoint_id is not None:
            try:
                checkpoint_id = str(uuid.UUID(str(checkpoint_id)))
            except ValueError:
                raise CommandError("invalid_argument", f"Invalid config.configurable.checkpoint_id: {checkpoint_id!r}.")
        configurable[PROTOCOL_V2_KEY] = True
        config["configurable"] = configurable
        strategy = params.get("multitaskStrategy")
        metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else None
        try:
            body = validate(
                RunCreateStateful,
                {
                    "assistant_id": assistant_id,
                    "input": None if command else params.get("input"),
                    "command": command,
                    "config": config,
                    "metadata": metadata,
                    "checkpoint_id": checkpoint_id,
                    "stream_subgraphs": True,
                    "stream_resumable": True,
                    "if_not_exists": "create",
                    "multitask_strategy": strategy if strategy in MULTITASK_STRATEGIES else "enqueue",
                },
            )
            handle = await create_run(self.ctx, body, thread_id=self.thread_id, request_id=self.request_id)
        except ApiError as exc:
            code = "invalid_argument" if exc.status_code in (400, 422) else "unknown_error"
            raise CommandError(code, exc.detail)
        handle.release()  # its events reach clients through the thread's protocol stream, not this handle
        return handle.run_id

    async def _run_start(self, params: dict[str, Any]) -> dict[str, Any]:
        assistant_id = params.get("assistant_id")
        if not isinstance(assistant_id, str) or not assistant_id:
            raise CommandError("invalid_argument", "run.start requires an assistant_id.")
        command = None
        if params.get("input") is not None and await self._pending_interrupts():
            command = {"resume": params["input"]}  # like the reference: input on an interrupted thread resumes it
        return {"run_id": await self._start(assistant_id, params, command)}

    async def _thread(self) -> dict[str, Any] | None:
        return await self.ctx.storage.thread_get(self.thread_id)

    async def _pending_interrupts(self) -> set[str]:
        thread = await self._thread()
        interrupts = (thread or {}).get("interrupts") or {}
        return {i["id"] for entries in interrupts.values() for i in entries if isinstance(i, dict) and "id" in i}

    async def _settled_interrupts(self, wanted: set[str]) -> set[str]:
        """Pending interrupt ids; while a run is still finishing (its `input.requested` may arrive before its
        outcome is stored, and the stored ones may still be an earlier run's), wait for it first."""
        ids = await self._pending_interrupts()
        if wanted <= ids:
            return ids
        for run in await self.ctx.runs.inflight_runs(self.thread_id):
            handle = await self.ctx.runs.find(run)
            if handle is None:
                continue
            try:
                await asyncio.wait_for(self.ctx.runs.wait(handle), INTERRUPT_SETTLE_SECONDS)
            except TimeoutError:
                break
        return await self._pending_interrupts()

    async def _input_respond(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = params.get("responses")
        if isinstance(entries, list):
            if not entries:
                raise CommandError("invalid_argument", "input.respond requires at least one response.")
            if not all(isinstance(e, dict) for e in entries):
                raise CommandError("invalid_argument", "input.respond responses entries must be objects.")
        else:
            entries = [params]
        resume: dict[str, Any] = {}
        for entry in entries:
            interrupt_id = entry.get("interrupt_id")
            if not isinstance(interrupt_id, str):
                raise CommandError("invalid_argument", "input.respond requires an interrupt_id.")
            namespace = entry.get("namespace", [])
            if not isinstance(namespace, list) or not all(isinstance(s, str) for s in namespace):
                raise CommandError("invalid_argument", "input.respond requires namespace to be a list of strings.")
            resume[interrupt_id] = entry.get("response")
        if await self._thread() is None:
            raise CommandError("no_such_run", "No interrupted run is bound to this thread.")
        pending = await self._settled_interrupts(set(resume))
        for interrupt_id in resume:
            if interrupt_id not in pending:
                raise CommandError("no_such_interrupt", f"Unknown or already-consumed interrupt: {interrupt_id}")
        thread = await self._thread()
        assistant_id = ((thread or {}).get("metadata") or {}).get("assistant_id")
        if not isinstance(assistant_id, str):
            raise CommandError("no_such_run", "No interrupted run is bound to this thread.")
        command: dict[str, Any] = {"resume": resume}
        for key in ("update", "goto"):
            if params.get(key) is not None:
                command[key] = params[key]
        await self._start(assistant_id, {"config": params.get("config"), "metadata": params.get("metadata")}, command)
        return {}

    # ------------------------------------------------------------------ agent tree
    async def _agent_getTree(self, params: dict[str, Any]) -> dict[str, Any]:
        """The latest run's graph and the subgraphs it entered, with their status, from the lifecycle events."""
        root: dict[str, Any] | None = None
        nodes: dict[tuple[str, ...], dict[str, Any]] = {}
        log = await self.events.reader(self.thread_id)
        for entry in log.since(0, EventFilter(frozenset({"lifecycle"}))):
            data = _event_data(entry.json)
            if not entry.namespace:
                if data.get("event") == "running":
                    root = {"namespace": [], "status": "running", "graph_name": data.get("graph_name", "")}
                    nodes = {(): root}
                elif root is not None:
                    root["status"] = data.get("event", root["status"])
                continue
            if root is None:
                continue
            node = nodes.get(entry.namespace)
            if node is None:
                node = {"namespace": list(entry.namespace), "status": "started",
                        "graph_name": data.get("graph_name", "")}  # fmt: skip
                parent = nodes.get(entry.namespace[:-1], root)
                parent.setdefault("children", []).append(node)
                nodes[entry.namespace] = node
            node["status"] = data.get("event", node["status"])
        if root is None:
            raise CommandError("no_such_run", NO_RUN)
        return {"tree": root}

    # ------------------------------------------------------------------ subscriptions
    async def _subscription_subscribe(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = parse_filter(params, "subscription.subscribe")
        subscription_id = str(uuid.uuid4())
        self.subscriptions[subscription_id] = wanted
        return {"subscription_id": subscription_id, "replayed_events": 0}

    async def _subscription_unsubscribe(self, params: dict[str, Any]) -> dict[str, Any]:
        subscription_id = params.get("subscription_id")
        if not isinstance(subscription_id, str):
            raise CommandError("invalid_argument", "subscription.unsubscribe requires a subscription_id.")
        if self.subscriptions.pop(subscription_id, None) is None:
            raise CommandError("no_such_subscription", f"Unknown subscription: {subscription_id}")
        return {}

    async def _subscription_reconnect(self, params: dict[str, Any]) -> dict[str, Any]:
        """Stateless HTTP has no session to restore (the reference answers the same); a `since` on the
        event stream is the way to resume."""
        if not isinstance(params.get("run_id"), str):
            raise CommandError("invalid_argument", "subscription.reconnect requires a run_id.")
        raise CommandError("no_such_run", NO_RUN)


def _event_data(json: bytes) -> dict[str, Any]:
    data = serde.loads(json).get("params", {}).get("data")
    return data if isinstance(data, dict) else {}
