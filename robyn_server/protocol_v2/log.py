"""The thread's protocol-v2 event log: every event of the thread's protocol runs, numbered by `seq`.

One log per thread, shared by every stream on it: a reader replays what is kept after its `since` and then
follows live events, between runs too. Readers are synchronous generators driven by Robyn's worker threads
(like the run event logs), so they wait on a `threading.Condition`; everything ready leaves as one chunk.
Frames are built once, at append time, for every reader.

Where the log lives is the event bus's business (`EventBus.protocol_reader` / `protocol_writer`): in-process,
one `ThreadEventLog` per thread (`ThreadLogs`) is written by the run and read by every stream; with Redis the run
appends to a Redis stream that numbers the events, and each process's readers follow a replica of it, filled in
with `append_numbered`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from langgraph_sdk.stream.subscription import namespace_matches

from robyn_server import serde
from robyn_server.streaming.event_log import ReaderProgress
from robyn_server.streaming.sse import HEARTBEAT
from robyn_server.streaming.waiters import AsyncWaiters, wait

# Event methods and the subscription channel each belongs to (`custom` gains `:name` when it has one).
CHANNEL_OF = {
    "values": "values",
    "updates": "updates",
    "checkpoints": "checkpoints",
    "messages": "messages",
    "tools": "tools",
    "lifecycle": "lifecycle",
    "tasks": "tasks",
    "custom": "custom",
    "input.requested": "input",
}
CHANNELS = frozenset(CHANNEL_OF.values())
DEFAULT_MAX_EVENTS = 10_000  # the reference's replay buffer size
MAX_IDLE_LOGS = 1000  # in-process thread logs kept in memory; beyond it the least recently used idle ones go


def channel_of(method: str, params: dict[str, Any]) -> str:
    """The subscription channel of an event: `custom` gains `:name` when the custom event has one."""
    channel = CHANNEL_OF.get(method, method)
    if method == "custom":
        custom_name = (params.get("data") or {}).get("name")
        if isinstance(custom_name, str) and custom_name:
            channel = f"custom:{custom_name}"
    return channel


def is_channel(name: object) -> bool:
    return isinstance(name, str) and (name in CHANNELS or (name.startswith("custom:") and len(name) > 7))


@dataclass(slots=True, frozen=True)
class EventFilter:
    """What one stream or subscription wants: channels, namespace prefixes and depth below them."""

    channels: frozenset[str]
    namespaces: list[list[str]] | None = None
    depth: int | None = None

    def matches(self, entry: ProtocolEntry) -> bool:
        channel = entry.channel
        if channel not in self.channels:
            if not (channel.startswith("custom:") and "custom" in self.channels):
                return False
        if self.namespaces is None:
            return True
        return namespace_matches(list(entry.namespace), self.namespaces, self.depth)


@dataclass(slots=True)
class ProtocolEntry:
    seq: int
    channel: str
    namespace: tuple[str, ...]
    json: bytes
    frame: bytes


class ThreadEventLog:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.entries: list[ProtocolEntry] = []
        self.first_seq = 1  # seq of entries[0]
        self.last_seq = 0
        self.closed = False
        self.users = 0  # open readers and running runs: a log in use is never dropped from memory
        self.max_events = max_events
        self._epoch = str(int(time.time() * 1000)).encode()  # event ids differ from a previous process's
        self._cond = threading.Condition()
        self._waiters = AsyncWaiters()  # readers on an event loop (the request guard)

    def append(self, name: str, body: bytes) -> ProtocolEntry:
        """Number and frame one event; `name` is `method|ns...`, `body` the JSON of `{"method", "params"}`."""
        with self._cond:
            return self._add(self.last_seq + 1, self._epoch, name, body)

    def append_numbered(self, seq: int, epoch: bytes, name: str, body: bytes) -> None:
        """Add an event numbered elsewhere (a replica of a Redis stream); one already held is ignored."""
        with self._cond:
            if seq <= self.last_seq:
                return
            if not self.entries:
                self.first_seq = seq  # a replica starts at the oldest event the stream still keeps
            self._add(seq, epoch, name, body)

    def _add(self, seq: int, epoch: bytes, name: str, body: bytes) -> ProtocolEntry:
        method, *namespace = name.split("|")
        channel = channel_of(method, serde.loads(body).get("params", {}) if method == "custom" else {})
        seq_bytes = str(seq).encode()
        json = b'{"type":"event","event_id":"' + epoch + b"-" + seq_bytes + b'","seq":' + seq_bytes
        json += b"," + body[1:]
        frame = b"event: " + method.encode() + b"\r\ndata: " + json + b"\r\nid: " + seq_bytes + b"\r\n\r\n"
        entry = ProtocolEntry(seq, channel, tuple(namespace), json, frame)
        self.entries.append(entry)
        self.last_seq = seq
        if len(self.entries) > self.max_events:
            drop = len(self.entries) - self.max_events + self.max_events // 10
            del self.entries[:drop]
            self.first_seq += drop
        self._cond.notify_all()
        if self._waiters:
            self._waiters.wake()
        return entry

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
            self._waiters.wake()

    def since(self, after: int, wanted: EventFilter) -> list[ProtocolEntry]:
        """Kept events after seq `after` that `wanted` selects."""
        with self._cond:
            start = max(0, after + 1 - self.first_seq)
            return [e for e in self.entries[start:] if wanted.matches(e)]

    def read(
        self,
        after: int,
        wanted: EventFilter,
        *,
        heartbeat_seconds: float,
        progress: ReaderProgress | None = None,
    ) -> Iterator[bytes]:
        """SSE chunks of the selected events after seq `after`, then live ones; heartbeats while idle. Ends
        only when the log is closed (the thread was deleted)."""
        progress = progress or ReaderProgress()
        cursor = self._open_reader(after, heartbeat_seconds)
        try:
            while True:
                with self._cond:
                    while cursor.next_seq > self.last_seq and not self.closed:
                        remaining = cursor.next_beat - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                for piece in self._advance(cursor, wanted):
                    progress.handed_at = time.monotonic()
                    yield piece
                    progress.handed_at = None
                if cursor.closed:
                    return
        finally:
            self._close_reader(progress)

    async def aread(
        self,
        after: int,
        wanted: EventFilter,
        *,
        heartbeat_seconds: float,
        progress: ReaderProgress | None = None,
    ) -> AsyncIterator[bytes]:
        """`read` for a reader on an event loop (the request guard): the same chunks, waiting without a thread."""
        progress = progress or ReaderProgress()
        cursor = self._open_reader(after, heartbeat_seconds)
        try:
            while True:
                with self._cond:
                    remaining = cursor.next_beat - time.monotonic()
                    idle = cursor.next_seq > self.last_seq and not self.closed and remaining > 0
                    waiter = self._waiters.add() if idle else None
                if waiter is not None:
                    await wait(waiter, remaining)
                for piece in self._advance(cursor, wanted):
                    progress.handed_at = time.monotonic()
                    yield piece
                    progress.handed_at = None
                if cursor.closed:
                    return
        finally:
            self._close_reader(progress)

    def _open_reader(self, after: int, heartbeat_seconds: float) -> _Cursor:
        with self._cond:
            self.users += 1
        return _Cursor(after + 1, heartbeat_seconds, time.monotonic() + heartbeat_seconds)

    def _close_reader(self, progress: ReaderProgress) -> None:
        with self._cond:
            self.users -= 1
        progress.done = True

    def _advance(self, cursor: _Cursor, wanted: EventFilter) -> list[bytes]:
        """The selected frames after the cursor as one chunk, then a heartbeat if one is due."""
        with self._cond:
            batch = self.entries[max(0, cursor.next_seq - self.first_seq) :]
            cursor.next_seq = self.last_seq + 1
            cursor.closed = self.closed
        chunk = b"".join(e.frame for e in batch if wanted.matches(e))
        out = [chunk] if chunk else []
        if not cursor.closed and time.monotonic() >= cursor.next_beat:
            cursor.next_beat = time.monotonic() + cursor.heartbeat
            out.append(HEARTBEAT)
        return out

    def wait_after(self, seq: int, timeout: float) -> bool:
        """Block until an event after `seq` exists or the log closes (for readers on other transports)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.last_seq > seq or self.closed, timeout)


@dataclass(slots=True)
class _Cursor:
    """Where one reader is: the next seq it wants, when it next beats, whether the log had closed."""

    next_seq: int
    heartbeat: float
    next_beat: float
    closed: bool = False


class LocalWriter:
    """A run's path into an in-process thread log: the log stays in memory while the run writes to it."""

    __slots__ = ("log", "append")

    def __init__(self, log: ThreadEventLog) -> None:
        self.log = log
        self.append = log.append
        with log._cond:
            log.users += 1

    def release(self) -> None:
        with self.log._cond:
            self.log.users -= 1


class ThreadLogs:
    """Every thread's in-process protocol log, created on first use by a run or a reader; idle ones beyond
    `max_logs` are dropped, least recently used first."""

    def __init__(self, max_logs: int = MAX_IDLE_LOGS) -> None:
        self._logs: OrderedDict[str, ThreadEventLog] = OrderedDict()
        self._lock = threading.Lock()
        self.max_logs = max_logs

    def log(self, thread_id: str) -> ThreadEventLog:
        with self._lock:
            log = self._logs.get(thread_id)
            if log is None:
                log = self._logs[thread_id] = ThreadEventLog()
                if len(self._logs) > self.max_logs:
                    idle = [key for key, old in self._logs.items() if old.users == 0 and key != thread_id]
                    for key in idle[: len(self._logs) - self.max_logs]:
                        del self._logs[key]
            else:
                self._logs.move_to_end(thread_id)
            return log

    def forget(self, thread_id: str) -> None:
        """End the streams of a deleted thread."""
        with self._lock:
            log = self._logs.pop(thread_id, None)
        if log is not None:
            log.close()
