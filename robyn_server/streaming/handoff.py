"""Streams handed from Robyn to the request guard, so an open stream costs no Robyn thread.

Robyn drives a streamed body from one of its blocking threads per in-flight step (about 256 per process), so
a stream that waits on a model holds a thread the whole time and the 257th open stream waits for a free one.
The guard, which owns the public port and serves it on the event loop, marks every request it forwards with this
process's secret; a handler whose body can be read asynchronously (`LogBody`) then answers Robyn with an empty
response that names a token, and the guard, seeing the token on the response, writes the status and headers
itself and streams the body from its loop (chunked, as Robyn would). Without the guard
(`ROBYN_SERVER_REQUEST_GUARD=0`) or for any other body, Robyn streams as before.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from robyn import Headers, Response
from robyn.responses import StreamingResponse

from robyn_server import serde
from robyn_server.streaming.event_log import EventLog
from robyn_server.streaming.waiters import resolve

REQUEST_HEADER = "x-robyn-server-handoff"  # guard -> Robyn: this process's secret
RESPONSE_HEADER = "x-robyn-server-handoff-token"  # Robyn -> guard: the body to stream
SECRET = secrets.token_urlsafe(24)
# The same as bytes, for the guard, which adds the mark to every request and looks for the token on every response.
REQUEST_NAME, RESPONSE_NAME = REQUEST_HEADER.encode(), RESPONSE_HEADER.encode()
REQUEST_MARK = REQUEST_NAME + b": " + SECRET.encode() + b"\r\n"
UNCLAIMED_SECONDS = 30.0  # a body the guard never took (its client went away first) is closed after this
# What Robyn's Rust layer adds to every streamed response; the guard adds the same to the streams it serves.
STREAM_HEADERS = (
    (b"pragma", b"no-cache"),
    (b"cache-control", b"no-cache, no-store, must-revalidate"),
    (b"expires", b"0"),
    (b"x-accel-buffering", b"no"),
)


class LogBody:
    """A response body read from a log: a sync iterator for Robyn's threads, or `async_chunks()` for the guard.

    `log` is a run's `EventLog` or a protocol-v2 `ThreadEventLog`: anything with `read` and `aread` taking
    `start` and the same keyword options (heartbeat_seconds, and modes, on_close, progress, token or wanted).
    """

    __slots__ = ("_log", "_start", "_options", "_sync")

    def __init__(self, log: Any, start: int, **options: Any) -> None:
        self._log, self._start, self._options, self._sync = log, start, options, None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._sync is None:
            self._sync = self._log.read(self._start, **self._options)
        return next(self._sync)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    def async_chunks(self) -> AsyncIterator[bytes] | None:
        return self._log.aread(self._start, **self._options)

    def abandon(self) -> None:
        """Nobody will read it: give back the log reservation and run `on_close` as a reader's end would."""
        release = getattr(self._log, "release", None)
        if release is not None:
            release(self._options.get("token"))
        on_close = self._options.get("on_close")
        if on_close is not None:
            on_close()


class WaitBody:
    """A run's result as one JSON document after a newline every heartbeat while it works (`/runs/wait`)."""

    __slots__ = ("_log", "_heartbeat", "_sync")

    def __init__(self, log: EventLog, heartbeat_seconds: float) -> None:
        self._log, self._heartbeat, self._sync = log, heartbeat_seconds, None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._sync is None:
            self._sync = self._blocking()
        return next(self._sync)

    def _blocking(self) -> Iterator[bytes]:
        while not self._log.wait_closed(self._heartbeat):
            yield b"\n"
        yield self._document()

    async def _waiting(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        self._log.add_close_callback(lambda: loop.call_soon_threadsafe(resolve, closed))
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(closed), self._heartbeat)
                break
            except TimeoutError:
                yield b"\n"
        yield self._document()

    def _document(self) -> bytes:
        result = self._log.result
        return serde.dumps(result if result is not None else {})

    def async_chunks(self) -> AsyncIterator[bytes] | None:
        return self._waiting()


@dataclass(slots=True)
class _Pending:
    chunks: AsyncIterator[bytes]
    content: Any
    at: float


_pending: dict[str, _Pending] = {}
# Robyn's threads offer bodies and the guard, on the event loop, takes them: every access to `_pending` holds this
# lock (a sweep iterating over it while the guard popped a token raised "dictionary changed size during iteration").
_pending_lock = threading.Lock()


def requested(request_headers: Any) -> bool:
    """Whether the guard forwarded this request, and so will stream a `LogBody` answer itself."""
    return request_headers.get(REQUEST_HEADER) == SECRET


def offer(request_headers: Any, response: Any) -> Response | None:
    """The empty response that hands `response`'s body to the guard, or None to let Robyn stream it."""
    if not isinstance(response, StreamingResponse) or not requested(request_headers):
        return None
    async_chunks = getattr(response.content, "async_chunks", None)
    chunks = async_chunks() if async_chunks is not None else None
    if chunks is None:
        return None
    _sweep()
    token = secrets.token_urlsafe(12)
    with _pending_lock:
        _pending[token] = _Pending(chunks, response.content, time.monotonic())
    headers = Headers(response.headers.to_dict())
    headers.set(RESPONSE_HEADER, token)
    return Response(status_code=response.status_code, headers=headers, description=b"")


def take(token: str) -> AsyncIterator[bytes] | None:
    """The body `offer` kept under `token` (once), for the guard to stream."""
    with _pending_lock:
        pending = _pending.pop(token, None)
    return None if pending is None else pending.chunks


def _sweep() -> None:
    now = time.monotonic()
    with _pending_lock:
        expired = [_pending.pop(t) for t in [t for t, p in _pending.items() if now - p.at > UNCLAIMED_SECONDS]]
    for pending in expired:  # outside the lock: abandoning closes the body, which may run hooks
        abandon = getattr(pending.content, "abandon", None)
        if abandon is not None:
            abandon()


def chunk_frame(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)
