"""A small HTTP/1.1 guard in front of Robyn: limits enforced before Robyn reads a request.

Robyn 0.88 reads the whole body into memory before any Python code sees the request (so a body-size check in a
handler comes after the memory is spent), never times out slow clients or idle keep-alive connections (its
`keep_alive_timeout` is not passed on, robyn/processpool.py), answers a `multipart/*` body without a boundary
with a plain-text 500 from Rust, and unknown methods with a plain-text 405. None of that can be changed from
Python, so this guard owns the public port and Robyn listens on a loopback port behind it.

Per request the guard reads only the head (with a deadline), refuses at once what must be refused (a
`Content-Length` over the limit: 413; a malformed multipart content type: 400; an unknown method: 405 with
`Allow`; a bad or ambiguous body framing: 400) with a JSON body and `Connection: close`, and otherwise forwards
the head and then the body as it arrives (a chunked body is cut off with 413 at the limit). Responses are copied
back byte for byte, so streams, `Expect: 100-continue` and upgrades pass unchanged, with one exception: a run or
thread stream (and a `/runs/wait` answer) that Robyn hands over (robyn_server/streaming/handoff.py) is served
here from the run's event log, because Robyn would hold one of its ~256 blocking threads per open stream; the
guard follows Robyn's response framing (robyn_server/guard_responses.py) to serve it in its place and in order.
A client connection maps to one upstream connection. A WebSocket on a thread's protocol-v2 event stream is
served here too, over the HTTP routes (robyn_server/protocol_v2/websocket.py), because Robyn's WebSocket
handlers see neither the path nor the headers. It serves on the event loop that runs Robyn's handlers: on a
thread of its own it took the GIL whenever the loop released it (every SQLite statement does), and the loop then
waited up to a switch interval (5 ms) to get it back.

Settings: `HTTP_HEADER_TIMEOUT_SECONDS` (10: from the first byte of a request to the end of its head),
`HTTP_BODY_TIMEOUT_SECONDS` (30: longest wait for the next piece of a body), `HTTP_KEEPALIVE_TIMEOUT_SECONDS`
(75: an idle connection with no response in flight is closed), `ROBYN_SERVER_REQUEST_GUARD=0` serves Robyn
directly on the public port instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import orjson

from robyn_server.config import env_float
from robyn_server.guard_responses import FramingError, ResponseFramer, ResponseHead
from robyn_server.streaming import handoff
from robyn_server.supervisor import CHILD_ENV

logger = logging.getLogger("robyn_server.guard")

KNOWN_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS"})
MAX_HEAD_BYTES = 64 * 1024
CHUNK = 64 * 1024
# Connections the kernel may hold before they are accepted (it caps this at net.core.somaxconn): with asyncio's
# default of 100, 2,000 clients connecting within a second overflowed it ~20,000 times (`nstat
# TcpExtListenOverflows`) while the loop was busy; a dropped SYN waits 1 s, then 3 s, for its retry.
LISTEN_BACKLOG = 8192
REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           413: "Content Too Large", 431: "Request Header Fields Too Large", 502: "Bad Gateway"}  # fmt: skip


@dataclass(frozen=True)
class GuardLimits:
    max_body_bytes: int
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0

    @classmethod
    def from_env(cls, max_body_bytes: int) -> GuardLimits:
        return cls(
            max_body_bytes=max_body_bytes,
            header_timeout=env_float("HTTP_HEADER_TIMEOUT_SECONDS", 10.0),
            body_timeout=env_float("HTTP_BODY_TIMEOUT_SECONDS", 30.0),
            keepalive_timeout=env_float("HTTP_KEEPALIVE_TIMEOUT_SECONDS", 75.0),
        )


class Refusal(Exception):
    """Answer the client with this status and detail, then close the connection."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def refusal_bytes(refusal: Refusal) -> bytes:
    body = orjson.dumps({"detail": refusal.detail})
    head = [f"HTTP/1.1 {refusal.status} {REASONS.get(refusal.status, 'Error')}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"]  # fmt: skip
    head += [f"{name}: {value}" for name, value in refusal.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class RequestHead:
    method: bytes
    path: str
    headers: list[tuple[bytes, bytes]]
    raw: bytes

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


def parse_head(raw: bytes) -> RequestHead:
    lines = raw.lstrip(b"\r\n").split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise Refusal(400, "Malformed request line")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise Refusal(400, "Malformed header line")
        headers.append((name.lower(), value.strip()))
    path = parts[1].split(b"?", 1)[0].decode("latin-1")
    return RequestHead(parts[0], path, headers, raw)


def body_framing(head: RequestHead, max_body: int) -> tuple[str, int]:
    """('length', n), ('chunked', 0) or ('none', 0); Refusal for what must not reach Robyn."""
    lengths = head.values(b"content-length")
    encodings = head.values(b"transfer-encoding")
    if lengths and encodings:
        raise Refusal(400, "Both Content-Length and Transfer-Encoding given")
    if encodings:
        if [e.strip().lower() for e in b",".join(encodings).split(b",")] != [b"chunked"]:
            raise Refusal(400, "Only 'Transfer-Encoding: chunked' is supported")
        return "chunked", 0
    if lengths:
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise Refusal(400, "Invalid Content-Length")
        length = int(lengths[0])
        if length > max_body:
            raise Refusal(413, f"Request body too large (limit: {max_body} bytes)")
        return "length", length
    return "none", 0


def check_content_type(head: RequestHead) -> None:
    for value in head.values(b"content-type"):
        media, _, params = value.partition(b";")
        if media.strip().lower().startswith(b"multipart/") and b"boundary=" not in params.lower():
            raise Refusal(400, "Malformed multipart content type: no boundary")


def with_handoff_secret(head: RequestHead) -> bytes:
    """The head as sent upstream: marked with this process's handoff secret (any client-sent mark dropped)."""
    name = handoff.REQUEST_NAME
    raw = head.raw
    if any(key == name for key, _ in head.headers):
        lines = raw.rstrip(b"\r\n").split(b"\r\n")
        raw = b"\r\n".join(line for line in lines if line.split(b":", 1)[0].strip().lower() != name) + b"\r\n\r\n"
    return raw[:-2] + handoff.REQUEST_MARK + b"\r\n"


def handoff_head(head: ResponseHead) -> bytes:
    """The head of a handed-off stream: Robyn's status and headers, chunked, with Robyn's streaming headers."""
    status_line = head.raw.split(b"\r\n", 1)[0]
    skip = (b"content-length", b"transfer-encoding", handoff.RESPONSE_NAME)
    lines = [status_line, b"transfer-encoding: chunked"]
    lines += [name + b": " + value for name, value in head.headers if name not in skip]
    present = {name for name, _ in head.headers}
    lines += [name + b": " + value for name, value in handoff.STREAM_HEADERS if name not in present]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Connection:
    """One client connection and its upstream connection to Robyn."""

    def __init__(self, guard: RequestGuard, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.guard, self.limits = guard, guard.limits
        self.reader, self.writer = reader, writer
        self.up_reader: asyncio.StreamReader | None = None
        self.up_writer: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None
        self.upstream_active_at = time.monotonic()
        self.forwarded_at = 0.0
        self.framer = ResponseFramer()

    async def serve(self) -> None:
        try:
            while True:
                head = await self.next_head()
                if head is None:
                    return
                if not await self.forward(head):
                    return
        except Refusal as refusal:
            await self.refuse(refusal)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            await self.close()

    async def next_head(self) -> RequestHead | None:
        """The next request head; None when the client is done or idle too long."""
        limits = self.limits
        while True:
            try:
                first = await asyncio.wait_for(self.reader.read(1), limits.keepalive_timeout)
                break
            except TimeoutError:
                now = time.monotonic()
                if (
                    self.forwarded_at >= self.upstream_active_at
                    or now - self.upstream_active_at < limits.keepalive_timeout
                ):
                    continue  # a response is pending or still streaming to the client: the connection is not idle
                return None
        if not first:
            return None
        try:
            rest = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), limits.header_timeout)
        except TimeoutError:
            raise Refusal(408, f"Request head not received within {limits.header_timeout:g} s")
        except asyncio.LimitOverrunError:
            raise Refusal(431, f"Request head larger than {MAX_HEAD_BYTES} bytes")
        except asyncio.IncompleteReadError:
            return None
        return parse_head(first + rest)

    async def forward(self, head: RequestHead) -> bool:
        """Check the request, send it upstream; False when the connection must end."""
        if head.method not in KNOWN_METHODS:
            methods = self.guard.allowed_methods(head.path)
            if methods is None:
                raise Refusal(404, "Not Found")
            raise Refusal(405, "Method Not Allowed", {"allow": ", ".join(sorted(set(methods)))})
        check_content_type(head)
        kind, length = body_framing(head, self.limits.max_body_bytes)
        upgrade = any(v.lower() == b"websocket" for v in head.values(b"upgrade"))
        if upgrade and head.method == b"GET" and self.guard.thread_stream(head.path):
            await self.guard.serve_thread_socket(self.reader, self.writer, head)
            return False
        await self.connect_upstream()
        assert self.up_writer is not None
        self.framer.methods.append(head.method)
        self.up_writer.write(with_handoff_secret(head))
        if kind == "length":
            await self.copy_body(length)
        elif kind == "chunked":
            await self.copy_chunked()
        await self.up_writer.drain()
        self.forwarded_at = time.monotonic()
        if upgrade:
            await self.copy_raw()  # after an upgrade the connection is no longer HTTP
            return False
        return True

    async def read_body(self, n: int) -> bytes:
        data = await asyncio.wait_for(self.reader.read(n), self.limits.body_timeout)
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        return data

    async def copy_body(self, length: int) -> None:
        assert self.up_writer is not None
        remaining = length
        while remaining:
            data = await self.read_body(min(CHUNK, remaining))
            remaining -= len(data)
            self.up_writer.write(data)
            await self.up_writer.drain()

    async def copy_chunked(self) -> None:
        assert self.up_writer is not None
        total, limit = 0, self.limits.max_body_bytes
        while True:
            line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), self.limits.body_timeout)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Refusal(400, "Malformed chunked body")
            total += size
            if total > limit:  # cut off: Robyn never gets the rest
                raise Refusal(413, f"Request body too large (limit: {limit} bytes)")
            self.up_writer.write(line)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), self.limits.body_timeout)
                    self.up_writer.write(trailer)
                    if trailer == b"\r\n":
                        return
            await self.copy_body(size + 2)

    async def copy_raw(self) -> None:
        assert self.up_writer is not None
        while data := await self.reader.read(CHUNK):
            self.up_writer.write(data)
            await self.up_writer.drain()

    async def connect_upstream(self) -> None:
        if self.up_writer is not None:
            if self.pump is not None and self.pump.done():
                raise ConnectionError("upstream closed")
            return
        deadline = time.monotonic() + 10.0
        while True:
            try:
                self.up_reader, self.up_writer = await asyncio.open_connection("127.0.0.1", self.guard.upstream_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise Refusal(502, "The server is starting or unavailable, please retry")
                await asyncio.sleep(0.05)
        self.pump = asyncio.get_running_loop().create_task(self.copy_responses())

    async def copy_responses(self) -> None:
        """Robyn's responses to the client in order: byte for byte, except a handed-off stream, which is served
        here from its body; the client connection ends with them."""
        assert self.up_reader is not None
        out: list[bytes] = []
        try:
            while data := await self.up_reader.read(CHUNK):
                self.upstream_active_at = time.monotonic()
                for kind, piece in self.framer.feed(data):
                    if kind == "head":
                        assert isinstance(piece, ResponseHead)
                        token = piece.get(handoff.RESPONSE_NAME)
                        chunks = handoff.take(token.decode("latin-1")) if token is not None else None
                        if chunks is not None:  # one of ours (a header a route set itself passes through)
                            self.writer.write(b"".join(out))
                            out.clear()
                            await self.serve_handoff(piece, chunks)
                            continue
                        out.append(piece.raw)
                    else:
                        out.append(piece)  # type: ignore[arg-type]
                if out:
                    self.writer.write(b"".join(out))
                    out.clear()
                    await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        except FramingError as exc:
            logger.error("request guard: cannot follow Robyn's responses: %s", exc)
        finally:
            self.writer.close()

    async def serve_handoff(self, head: ResponseHead, chunks: AsyncIterator[bytes]) -> None:
        """Write the stream's head, then its body as chunks, as Robyn would have; a gone client ends it."""
        self.writer.write(handoff_head(head))
        try:
            async for chunk in chunks:
                self.upstream_active_at = time.monotonic()  # the response is alive: not an idle connection
                self.writer.write(handoff.chunk_frame(chunk))
                await self.writer.drain()
            self.writer.write(b"0\r\n\r\n")
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def refuse(self, refusal: Refusal) -> None:
        try:
            self.writer.write(refusal_bytes(refusal))
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def close(self) -> None:
        if self.up_writer is not None:
            self.up_writer.close()
        if self.pump is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.pump), 0.5)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self.pump.cancel()
        self.writer.close()


class RequestGuard:
    """Owns the public socket; forwards to Robyn on `upstream_port` (a loopback port chosen here)."""

    def __init__(
        self,
        limits: GuardLimits,
        allowed_methods: Callable[[str], list[str] | None],
        thread_stream: Callable[[str], bool] = lambda path: False,
    ) -> None:
        self.limits = limits
        self.allowed_methods = allowed_methods
        self.thread_stream = thread_stream  # paths whose WebSocket upgrades the guard serves itself
        self.upstream_port = 0
        self._sock: socket.socket | None = None
        self._client: httpx.AsyncClient | None = None
        self._server: asyncio.Server | None = None

    async def serve_thread_socket(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                  head: RequestHead) -> None:  # fmt: skip
        """A protocol-v2 WebSocket on a thread, bridged to the thread's HTTP routes on Robyn."""
        from robyn_server.protocol_v2.websocket import ProtocolSocket, upstream_client

        if self._client is None:
            self._client = upstream_client(self.upstream_port)
        socket_ = ProtocolSocket(reader, writer, self._client, head.path, head.headers, self.limits.max_body_bytes)
        try:
            await socket_.serve(head.raw)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client went away
        except Refusal:
            raise
        except Exception:
            logger.exception("protocol WebSocket on %s failed", head.path)

    def bind(self, host: str, port: int) -> int:
        """Take the public port now (so a busy port fails here) and pick Robyn's loopback port."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if os.environ.get(CHILD_ENV) == "1":  # `--processes N`: the siblings share the port (the kernel balances)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        self._sock = sock
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.upstream_port = probe.getsockname()[1]
        return self.upstream_port

    async def start(self) -> None:
        """Start accepting on the running loop (a startup hook: the socket's backlog holds earlier clients)."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await Connection(self, reader, writer).serve()

        # `backlog` again: start_server listens on the socket anew, with 100 unless told (bind's listen is undone)
        self._server = await asyncio.start_server(
            handle, sock=self._sock, limit=MAX_HEAD_BYTES, backlog=LISTEN_BACKLOG
        )  # kept referenced
