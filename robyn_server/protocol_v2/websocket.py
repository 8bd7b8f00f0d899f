"""Protocol v2 over WebSocket (`/threads/{id}/stream/events`), served by the request guard.

Robyn 0.88 gives a WebSocket handler neither the request path nor its headers, so it can know neither the thread
nor the caller. The guard (robyn_server/guard.py) reads the upgrade request whole, so it ends such WebSockets
itself (websockets' sans-IO `ServerProtocol`) and speaks plain HTTP to the Robyn routes behind it, with the
client's own headers: auth, CORS, ownership and validation are exactly those of the HTTP routes.

- On connect the thread's event stream (`POST .../stream/events`, every channel, from the first kept event) is
  opened upstream. When the route refuses it (401, 404, 422, ...), the socket is accepted and closed at once with
  4000 + that status and the route's `detail` as reason: the convention both official SDKs read (a browser cannot
  read the status of a refused upgrade), so a client learns why instead of hanging.
- `subscription.subscribe` / `unsubscribe` / `reconnect` are this socket's filters on that stream, like the
  reference's WebSocket: a subscribe replays the kept events it selects, and each live event is sent once when any
  subscription selects it.
- Every other command is `POST .../commands` upstream; its answer goes back as a frame.
- The upstream stream ending (the thread was deleted) closes the socket with 1011 "thread stream ended", like the
  reference.

Everything here runs on the guard's own event loop and never blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from robyn_server.guard import Refusal
from robyn_server.protocol_v2.commands import CommandError, envelope_error, error, parse_filter
from robyn_server.protocol_v2.log import CHANNELS, DEFAULT_MAX_EVENTS, EventFilter, ProtocolEntry, channel_of

logger = logging.getLogger("robyn_server.websocket")

STREAM_SUFFIX = "/stream/events"
THREAD_STREAM_TEMPLATE = "/threads/:thread_id" + STREAM_SUFFIX
ALL_CHANNELS = sorted(CHANNELS)
LOCAL_COMMANDS = frozenset({"subscription.subscribe", "subscription.unsubscribe", "subscription.reconnect"})
# Not passed upstream: hop-by-hop headers, the handshake's own, and what the bridge sets itself.
DROPPED_HEADERS = frozenset(
    {b"host", b"connection", b"upgrade", b"content-length", b"content-type", b"transfer-encoding", b"te",
     b"trailer", b"keep-alive", b"proxy-connection", b"expect", b"accept-encoding"}
)  # fmt: skip
CLOSE_WAIT_SECONDS = 2.0  # how long a closing socket waits for the client's close frame
MAX_QUEUED_COMMANDS = 64  # past that, reading the client pauses until commands are answered
MAX_REASON_BYTES = 123  # a close frame's reason is at most 123 bytes


def thread_stream_matcher(template: Callable[[str, str], str | None]) -> Callable[[str], bool]:
    """Whether an upgrade on `path` is for a thread's event stream (wherever `http.mount_prefix` moved it)."""

    def matches(path: str) -> bool:
        found = template("POST", path)
        return found is not None and found.endswith(THREAD_STREAM_TEMPLATE)

    return matches


def upstream_client(port: int) -> httpx.AsyncClient:
    """The guard's HTTP client to Robyn on the loopback port (no proxies from the environment, no timeouts on
    streams; an instrumented client would replace the caller's `traceparent`, so tracing is kept off it)."""
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        timeout=httpx.Timeout(None, connect=10.0),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        trust_env=False,
    )
    with contextlib.suppress(Exception):
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.uninstrument_client(client)
    return client


def close_reason(text: str) -> str:
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


def detail_of(response: httpx.Response) -> str:
    try:
        detail = orjson.loads(response.content).get("detail")
    except Exception:
        detail = None
    return detail if isinstance(detail, str) else f"HTTP {response.status_code}"


class ProtocolSocket:
    """One client WebSocket on one thread, bridged to the thread's HTTP routes."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: httpx.AsyncClient,
        path: str,
        headers: list[tuple[bytes, bytes]],
        max_size: int,
    ) -> None:
        self.reader, self.writer, self.client = reader, writer, client
        self.stream_path = path
        self.commands_path = path[: -len(STREAM_SUFFIX)] + "/commands"
        self.headers = [(k, v) for k, v in headers if k not in DROPPED_HEADERS and not k.startswith(b"sec-websocket-")]
        self.proto = ServerProtocol(max_size=max_size)
        self.kept: deque[ProtocolEntry] = deque(maxlen=DEFAULT_MAX_EVENTS)
        self.last_seq = 0
        self.subscriptions: dict[str, EventFilter] = {}
        self.commands: asyncio.Queue[bytes] = asyncio.Queue(MAX_QUEUED_COMMANDS)
        self.parts: list[bytes] = []
        self.eof_sent = False
        self.ended: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------------ wire
    def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.writer.write(data)
            elif not self.eof_sent and self.writer.can_write_eof():
                self.eof_sent = True
                self.writer.write_eof()

    def send(self, data: bytes) -> None:
        self.queue(data)
        self.flush()

    def queue(self, data: bytes) -> None:
        """Frame a text message without writing it yet: the relay writes a whole upstream chunk's frames at once
        (one system call instead of one per event)."""
        if self.proto.state is State.OPEN:
            self.proto.send_text(data)

    def send_json(self, message: Any) -> None:
        self.send(orjson.dumps(message))

    def end(self, code: int, reason: str) -> None:
        """Close the socket with this code and reason (the read loop does it, as the reader's only user)."""
        if not self.ended.done():
            self.ended.set_result((code, reason))

    async def close(self, code: int, reason: str) -> None:
        """Send a close frame and give the client a moment to answer it."""
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, close_reason(reason))
            self.flush()
        with contextlib.suppress(Exception):
            await self.writer.drain()
            await asyncio.wait_for(self._until_closed(), CLOSE_WAIT_SECONDS)

    async def _until_closed(self) -> None:
        while self.proto.state is not State.CLOSED:
            data = await self.reader.read(64 * 1024)
            if not data:
                return
            self.proto.receive_data(data)
            self.proto.events_received()
            self.flush()

    # ------------------------------------------------------------------ lifecycle
    async def serve(self, head: bytes) -> None:
        proto = self.proto
        proto.receive_data(head)
        request = next(iter(proto.events_received()), None)
        response = proto.accept(request) if request is not None else proto.reject(400, "Malformed handshake\n")
        if response.status_code != 101:  # answered as JSON, like every refusal of the guard
            detail = response.body.decode(errors="replace").strip()
            raise Refusal(response.status_code, detail.removeprefix("Failed to open a WebSocket connection: "))
        events, refusal = await self.open_upstream()
        proto.send_response(response)
        self.flush()
        if events is None:
            await self.close(*refusal)
            return
        tasks = [asyncio.create_task(self.pump(events)), asyncio.create_task(self.run_commands())]
        try:
            ended = await self.read_client()
            if ended is not None:
                await self.close(*ended)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await events.aclose()

    async def open_upstream(self) -> tuple[httpx.Response | None, tuple[int, str]]:
        """The thread's event stream, or why it was refused (as a close code and reason)."""
        body = orjson.dumps({"channels": ALL_CHANNELS})
        headers = [*self.headers, (b"content-type", b"application/json")]
        request = self.client.build_request("POST", self.stream_path, content=body, headers=headers)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            return None, (1013, "The server is starting or unavailable, please retry")
        if response.status_code == 200:
            return response, (1000, "")
        await response.aread()
        await response.aclose()
        status = response.status_code
        return None, (4000 + status if 400 <= status < 500 else 1011, detail_of(response))

    async def read_client(self) -> tuple[int, str] | None:
        """Frames from the client until it closes (None: nothing more to send) or the socket must end."""
        reading = asyncio.ensure_future(self.reader.read(64 * 1024))
        try:
            while True:
                done, _ = await asyncio.wait({reading, self.ended}, return_when=asyncio.FIRST_COMPLETED)
                if self.ended in done:
                    return self.ended.result()
                data = reading.result()
                if not data:
                    self.proto.receive_eof()
                    self.flush()
                    return None
                self.proto.receive_data(data)
                for frame in self.proto.events_received():
                    await self.on_frame(frame.opcode, frame.data, frame.fin)
                self.flush()  # pongs, and the answer to a close
                await self.writer.drain()
                if self.proto.state is not State.OPEN:
                    return None
                reading = asyncio.ensure_future(self.reader.read(64 * 1024))
        finally:
            reading.cancel()

    async def on_frame(self, opcode: Opcode, data: bytes, fin: bool) -> None:
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self.parts = [data]
        elif opcode is Opcode.CONT:
            self.parts.append(data)
        else:
            return  # ping, pong and close are the protocol's
        if fin:
            message, self.parts = b"".join(self.parts), []
            await self.commands.put(message)

    # ------------------------------------------------------------------ events
    async def pump(self, response: httpx.Response) -> None:
        """Relay the upstream SSE events; a heartbeat comment becomes a ping (so a dead client is noticed)."""
        buffer = b""
        try:
            async for chunk in response.aiter_raw():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"data:"):
                        self.on_event(line[5:].strip())
                    elif line.startswith(b":") and self.proto.state is State.OPEN:
                        self.proto.send_ping(b"")
                self.flush()
                await self.writer.drain()
        except httpx.HTTPError:
            pass
        finally:  # ended, failed or cancelled: the socket ends with it (a no-op once it is closing)
            self.end(1011, "thread stream ended")

    def on_event(self, data: bytes) -> None:
        event = orjson.loads(data)
        params = event.get("params") or {}
        method = event.get("method", "")
        entry = ProtocolEntry(event.get("seq", 0), channel_of(method, params), tuple(params.get("namespace") or ()),
                              data, b"")  # fmt: skip
        self.kept.append(entry)
        self.last_seq = max(self.last_seq, entry.seq)
        if any(wanted.matches(entry) for wanted in self.subscriptions.values()):
            self.queue(data)

    # ------------------------------------------------------------------ commands
    async def run_commands(self) -> None:
        """One command at a time, in order, like the reference."""
        try:
            await self._run_commands()
        except Exception:
            logger.exception("protocol WebSocket command failed on %s", self.stream_path)
            self.end(1011, "Internal server error")

    async def _run_commands(self) -> None:
        while True:
            raw = await self.commands.get()
            try:
                command = orjson.loads(raw)
            except orjson.JSONDecodeError:
                self.send_json(error(None, "invalid_argument", "Protocol commands must be valid JSON."))
                continue
            refused = envelope_error(command)
            if refused is not None:
                self.send_json(refused)
            elif command["method"] in LOCAL_COMMANDS:
                self.send_json(self.subscription_command(command))
            else:
                await self.forward(raw, command["id"])
            await self.writer.drain()

    async def forward(self, raw: bytes, command_id: int) -> None:
        headers = [*self.headers, (b"content-type", b"application/json")]
        try:
            response = await self.client.post(self.commands_path, content=raw, headers=headers)
        except httpx.HTTPError:
            self.send_json(error(command_id, "unknown_error", "The server is starting or unavailable, please retry"))
            return
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict) and answer.get("type") in ("success", "error"):
            self.send(response.content)
        elif 400 <= response.status_code < 500:  # the route refused the caller (auth, ownership, bad id)
            self.end(4000 + response.status_code, detail_of(response))
        else:
            self.send_json(error(command_id, "unknown_error", detail_of(response)))

    def subscription_command(self, command: dict[str, Any]) -> dict[str, Any]:
        method, command_id = command["method"], command["id"]
        params = command.get("params") if isinstance(command.get("params"), dict) else {}
        meta = {"applied_through_seq": self.last_seq}
        try:
            if method == "subscription.unsubscribe":
                subscription_id = params.get("subscription_id")
                if not isinstance(subscription_id, str):
                    raise CommandError("invalid_argument", "subscription.unsubscribe requires a subscription_id.")
                if self.subscriptions.pop(subscription_id, None) is None:
                    raise CommandError("no_such_subscription", f"Unknown subscription: {subscription_id}")
                result: dict[str, Any] = {}
            else:
                result = self.subscribe(method, params)
        except CommandError as exc:
            return {**error(command_id, exc.code, exc.message), "meta": meta}
        return {"type": "success", "id": command_id, "result": result, "meta": meta}

    def subscribe(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Install a filter after replaying the kept events it selects (after `since`, when given)."""
        wanted = parse_filter(params, method)
        since = params.get("since")
        valid_since = isinstance(since, int) and not isinstance(since, bool) and since >= 0
        subscription_id = str(uuid.uuid4())
        if method == "subscription.reconnect":
            if not valid_since:
                raise CommandError("invalid_argument", "subscription.reconnect requires a non-negative integer since.")
            if isinstance(params.get("subscription_id"), str) and params["subscription_id"]:
                subscription_id = params["subscription_id"]
            if self.kept and since + 1 < self.kept[0].seq:
                raise CommandError("resume_gap", f"Events after seq {since} are no longer kept "
                                                 f"(the oldest kept is {self.kept[0].seq}).")  # fmt: skip
        after = since if valid_since else 0
        replayed = 0
        for entry in self.kept:
            if entry.seq > after and wanted.matches(entry):
                self.queue(entry.json)  # written with the command's answer, after these
                replayed += 1
        self.subscriptions[subscription_id] = wanted
        return {"subscription_id": subscription_id, "replayed_events": replayed}
