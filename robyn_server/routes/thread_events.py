"""Protocol v2 over HTTP: `POST /threads/{id}/commands` and the thread's SSE event stream
`POST /threads/{id}/stream/events`. Authentication and CORS are the router's, as on every route; another
user's thread answers 404 before any event. The WebSocket transport is served by the request guard over these
two routes (robyn_server/protocol_v2/websocket.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from robyn import WebSocketDisconnect

from robyn_server import serde
from robyn_server.auth.authorize import authorize, visible
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, StreamResponse
from robyn_server.protocol_v2.commands import CommandError, ThreadCommands, envelope_error, parse_filter
from robyn_server.protocol_v2.log import CHANNELS
from robyn_server.protocol_v2.source import ThreadEvents
from robyn_server.streaming.handoff import LogBody

ALLOWED_CHANNELS = ", ".join(sorted(CHANNELS))


def _json_body(req: ApiRequest) -> Any:
    body = req.raw.body
    try:
        return serde.loads(body) if body else None
    except Exception:
        raise ApiError(400, "Invalid JSON body")


def register(router: Router, ctx: ServerContext) -> ThreadEvents:
    events = ThreadEvents(ctx.runs.bus)
    ctx.runs.observers.append(events)

    async def own_thread(req: ApiRequest) -> str:
        """The thread id, after checking the caller may see the thread (one not created yet is fine:
        `run.start` creates it, and a stream may be opened first)."""
        thread_id = req.uuid_param("thread_id", "thread")
        filters = await authorize(req, "threads", "read", {"thread_id": thread_id})
        if filters:
            thread = await ctx.storage.thread_get(thread_id)
            if thread is not None and not visible(thread, filters):
                raise ApiError(404, f"Thread with ID {thread_id} not found")
        return thread_id

    async def command(req: ApiRequest) -> Any:
        """Run one protocol command on the thread."""
        thread_id = await own_thread(req)
        payload = _json_body(req)
        refused = envelope_error(payload)
        if refused is not None:
            return JsonResponse(refused, status_code=400)
        commands = ThreadCommands(ctx, thread_id, events, req.header("x-request-id"))
        return await commands.handle(payload)

    async def stream_events(req: ApiRequest) -> Any:
        """The thread's protocol events: replayed after `since`, then live, across runs; never ends."""
        thread_id = await own_thread(req)
        body = _json_body(req)
        if not isinstance(body, dict):
            raise ApiError(400, "channels is required and must be a non-empty array")
        channels = body.get("channels")
        if not isinstance(channels, list) or not channels:
            raise ApiError(400, "channels is required and must be a non-empty array")
        try:
            wanted = parse_filter(body, "stream")
        except CommandError:
            bad = ", ".join(repr(c) if not isinstance(c, str) else c for c in channels if c not in CHANNELS
                            and not (isinstance(c, str) and c.startswith("custom:")))  # fmt: skip
            raise ApiError(400, f"channels contains unsupported entries: {bad}. Allowed: {ALLOWED_CHANNELS}, "
                                "or any `custom:<name>`.")  # fmt: skip
        since = body.get("since")
        after = since if isinstance(since, int) and not isinstance(since, bool) and since >= 0 else 0
        log = await events.reader(thread_id)  # with Redis away: 503 before anything is streamed
        if after > log.last_seq:
            after = 0  # a cursor the log never reached (its events expired or were lost): replay what is kept
        return StreamResponse(LogBody(log, after, wanted=wanted, heartbeat_seconds=ctx.settings.heartbeat_seconds))

    tags = ["threads"]
    router.add("POST", "/threads/:thread_id/commands", command, tags=tags)
    router.add("POST", "/threads/:thread_id/stream/events", stream_events, tags=tags)
    return events


WEBSOCKET_PATH = "/threads/{thread_id}/stream/events"  # an actix pattern: Robyn matches WebSocket paths itself
WEBSOCKET_REFUSAL = (
    "The WebSocket transport is served by the request guard, which is switched off (ROBYN_SERVER_REQUEST_GUARD=0): "
    "Robyn 0.88 gives WebSocket handlers neither the request path (the thread id) nor its headers (the "
    "credentials). Use the SSE transport, POST /threads/{thread_id}/stream/events."
)
WEBSOCKET_LINGER_SECONDS = 1.0  # how long a refused socket stays open for the client's commands


def _refusal(command_id: Any) -> str:
    refusal = {"type": "error", "id": command_id, "error": "not_supported", "message": WEBSOCKET_REFUSAL}
    return serde.dumps(refusal).decode()


def mount_websocket(app: Any) -> None:
    """Without the request guard (which serves these WebSockets itself, robyn_server/protocol_v2/websocket.py),
    answer WebSocket upgrades on the thread event path instead of leaving them hanging (what Robyn does with an
    upgrade no WebSocket route takes): an unsolicited `not_supported` error frame (the SDKs end the stream with
    it), the same error for every command sent (so a pending command fails at once), then a close once the client
    has been quiet for a second."""

    async def refuse(websocket: Any) -> None:
        await websocket.send_text(_refusal(None))
        try:
            while True:
                raw = await asyncio.wait_for(websocket.receive_text(), WEBSOCKET_LINGER_SECONDS)
                try:
                    command = serde.loads(raw)
                except Exception:
                    command = None
                command_id = command.get("id") if isinstance(command, dict) else None
                await websocket.send_text(_refusal(command_id if isinstance(command_id, int) else None))
        except (TimeoutError, WebSocketDisconnect, ConnectionError):
            pass
        await websocket.close()

    app.websocket(WEBSOCKET_PATH)(refuse)
