"""The per-run event log: the run task appends frames, any number of SSE responses read them.

Two kinds of reader, with the same output: synchronous generators driven by Robyn's worker threads wait on a
`threading.Condition` (no hop onto the event loop per chunk), and asynchronous ones (`aread`, for the request
guard, which serves streams on the event loop without holding a thread per stream) wait on a future that
`append` resolves through their loop. Either sends everything ready as one chunk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from robyn_server.streaming.sse import HEARTBEAT, encode_frame
from robyn_server.streaming.waiters import AsyncWaiters, wait


def parse_event_id(value: str) -> tuple[int, int] | None:
    """`<ms>-<seq>` ids as a sortable pair; None for anything else."""
    ms, sep, seq = value.strip().partition("-")
    if not sep:
        return None
    try:
        return int(ms), int(seq)
    except ValueError:
        return None


@dataclass(slots=True)
class ReaderProgress:
    """How far the HTTP layer is pulling a reader: `handed_at` is set while a chunk waits to be pulled again.

    Robyn stops pulling a response's iterator once a write to a gone client fails, and drops it only when the
    GIL is next taken for it, so a reader that stays un-pulled is the surest sign that its client is gone.
    """

    handed_at: float | None = None
    done: bool = False

    def stalled_for(self) -> float:
        return 0.0 if self.handed_at is None else time.monotonic() - self.handed_at


@dataclass(slots=True)
class Entry:
    key: tuple[int, int]
    mode: str
    frame: bytes


def format_event_id(key: tuple[int, int]) -> str:
    return f"{key[0]}-{key[1]}"


PARTIAL = "messages/partial"
_MESSAGE_STARTS = frozenset({"messages/metadata", "messages/complete"})


class EventLog:
    """Frames of one run in order. `resumable` logs carry ids and are kept for replay after the run ends.

    Memory stays bounded: a `messages/partial` frame (the whole message so far) supersedes the previous partial
    of the same message, which is emptied once every reader has passed it (all of them when the log closes),
    so a reader that joins late gets the latest one; `max_entries` logs (thread streams) drop their oldest
    entries, and readers that fell behind them continue from the oldest kept.
    """

    def __init__(self, resumable: bool, *, max_entries: int | None = None) -> None:
        self.resumable = resumable
        self.entries: list[Entry] = []
        self.base = 0  # absolute index of entries[0]: indexes handed to readers stay valid when trimming
        self.max_entries = max_entries
        self.closed = False
        self.closed_at: float | None = None
        self.result: object = None  # the run's final values or `{"__error__": ...}`, set by close()
        self.readers = 0
        self._cond = threading.Condition()
        self._last_ms = 0
        self._seq = 0
        self._last_partial: int | None = None
        self._superseded: list[int] = []  # absolute indexes of partials a later partial replaces
        self._cursors: dict[int, int] = {}  # reader token -> next index it reads
        self._close_callbacks: list[Callable[[], None]] = []
        self._tokens = 0
        self._waiters = AsyncWaiters()
        # A thread-wide log that also receives this run's events (`GET /threads/{id}/stream`).
        self.mirror: EventLog | None = None
        # Called with every appended (key, event, data), e.g. to forward the events to Redis.
        self.on_append: Callable[[tuple[int, int], str, bytes], None] | None = None

    def next_key(self) -> tuple[int, int]:
        ms = int(time.time() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._seq += 1
        else:
            self._last_ms, self._seq = ms, 0
        return ms, self._seq

    def continue_after(self, key: tuple[int, int]) -> None:
        """Make later keys sort after `key` (a resumed run continues the ids of its earlier attempt)."""
        if key >= (self._last_ms, self._seq):
            self._last_ms, self._seq = key

    @property
    def end(self) -> int:
        """The absolute index after the last entry."""
        return self.base + len(self.entries)

    def append(self, event: str, data: bytes, key: tuple[int, int] | None = None) -> tuple[int, int]:
        if key is None:
            key = self.next_key()
        else:
            self.continue_after(key)
        event_id = format_event_id(key) if self.resumable else None
        mode = event.split("|", 1)[0]
        entry = Entry(key, mode, encode_frame(event, data, event_id))
        with self._cond:
            if mode == PARTIAL:
                if self._last_partial is not None:
                    self._superseded.append(self._last_partial)
                    self._compact(min(self._cursors.values(), default=self.end))
                self._last_partial = self.end
            elif mode in _MESSAGE_STARTS:
                self._last_partial = None
            self.entries.append(entry)
            if self.max_entries is not None and len(self.entries) > self.max_entries:
                drop = len(self.entries) - self.max_entries
                del self.entries[:drop]
                self.base += drop
            self._cond.notify_all()
            if self._waiters:
                self._waiters.wake()
        if self.mirror is not None:
            self.mirror.append(event, data)
        if self.on_append is not None:
            self.on_append(key, event, data)
        return key

    def _compact(self, below: int) -> None:
        """Empty the superseded partials every reader has passed (called with the lock held)."""
        keep = []
        for index in self._superseded:
            if index < below and index >= self.base:
                self.entries[index - self.base].frame = b""
            elif index >= self.base:
                keep.append(index)
        self._superseded = keep

    def reserve(self) -> int:
        """A reader token holding the log from its start, for a stream that begins reading a moment later."""
        with self._cond:
            self._tokens += 1
            self._cursors[self._tokens] = self.base
            return self._tokens

    def release(self, token: int | None) -> None:
        """Give up a reservation that no reader will use."""
        if token is not None:
            with self._cond:
                self._cursors.pop(token, None)

    def add_close_callback(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from whichever thread closes the log) once the log is closed; now if it already is."""
        with self._cond:
            if not self.closed:
                self._close_callbacks.append(callback)
                return
        callback()

    def close(self, result: object = None) -> None:
        callbacks: list[Callable[[], None]] = []
        with self._cond:
            if self.closed:
                return
            callbacks, self._close_callbacks = self._close_callbacks, []
            self._cursors.clear()
            if self.resumable:
                self._compact(self.end + 1)  # later readers replay: the last partial of each message is enough
            self.result = result
            self.closed = True
            self.closed_at = time.monotonic()
            self._cond.notify_all()
            self._waiters.wake()
        for callback in callbacks:
            callback()

    def start_index(self, last_event_id: str | None, *, replay: bool) -> int:
        """Where a reader starts: after `last_event_id`, from the start (`replay`), or at the live end."""
        with self._cond:
            if last_event_id is not None and last_event_id.strip() != "":
                if last_event_id.strip() == "-":
                    return self.base
                key = parse_event_id(last_event_id)
                if key is None:
                    return self.base
                for index, entry in enumerate(self.entries):
                    if entry.key > key:
                        return self.base + index
                return self.end
            return self.base if replay else self.end

    def wait_closed(self, timeout: float) -> bool:
        """Block until the log is closed or `timeout` seconds pass (appends do not wake it early)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.closed, timeout)

    def read(
        self,
        start: int,
        *,
        heartbeat_seconds: float,
        modes: frozenset[str] | None = None,
        on_close: Callable[[], None] | None = None,
        progress: ReaderProgress | None = None,
        token: int | None = None,
    ) -> Iterator[bytes]:
        """Yield batches of frames from `start`, heartbeats while idle, until the log is closed and drained.

        `modes` keeps only events of those base modes (plus `metadata`/`error`); `on_close` runs when the
        reader stops for any reason, including the client going away; `progress` records each hand-over.
        """
        progress = progress or ReaderProgress()
        cursor = self._open_reader(token, start, modes, heartbeat_seconds)
        try:
            while True:
                with self._cond:
                    while cursor.index >= self.end and not self.closed:
                        remaining = cursor.next_beat - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                for piece in self._advance(cursor):
                    progress.handed_at = time.monotonic()
                    yield piece
                    progress.handed_at = None
                if cursor.finished:
                    return
        finally:
            self._close_reader(cursor, progress, on_close)

    async def aread(
        self,
        start: int,
        *,
        heartbeat_seconds: float,
        modes: frozenset[str] | None = None,
        on_close: Callable[[], None] | None = None,
        progress: ReaderProgress | None = None,
        token: int | None = None,
    ) -> AsyncIterator[bytes]:
        """`read` for a reader on an event loop: the same chunks and heartbeats, waiting without a thread."""
        progress = progress or ReaderProgress()
        cursor = self._open_reader(token, start, modes, heartbeat_seconds)
        try:
            while True:
                with self._cond:
                    remaining = cursor.next_beat - time.monotonic()
                    idle = cursor.index >= self.end and not self.closed and remaining > 0
                    waiter = self._waiters.add() if idle else None
                if waiter is not None:
                    await wait(waiter, remaining)
                for piece in self._advance(cursor):
                    progress.handed_at = time.monotonic()
                    yield piece
                    progress.handed_at = None
                if cursor.finished:
                    return
        finally:
            self._close_reader(cursor, progress, on_close)

    def _open_reader(self, token: int | None, index: int, modes: frozenset[str] | None, beat: float) -> _Cursor:
        with self._cond:
            self.readers += 1
            if token is None:
                self._tokens += 1
                token = self._tokens
            if not self.closed:
                self._cursors[token] = index
        return _Cursor(index, token, modes, beat, time.monotonic() + beat)

    def _close_reader(self, cursor: _Cursor, progress: ReaderProgress, on_close: Callable[[], None] | None) -> None:
        with self._cond:
            self.readers -= 1
            self._cursors.pop(cursor.token, None)
        progress.done = True
        if on_close is not None:
            on_close()

    def _advance(self, cursor: _Cursor) -> list[bytes]:
        """What a reader sends now: the frames from its index on as one chunk, then a heartbeat if one is due."""
        with self._cond:
            index = max(cursor.index, self.base)
            batch = self.entries[index - self.base :]
            cursor.index = index + len(batch)
            if cursor.token in self._cursors:
                self._cursors[cursor.token] = cursor.index
            cursor.finished = self.closed and cursor.index >= self.end
        modes = cursor.modes
        chunk = b"".join(e.frame for e in batch if modes is None or e.mode in modes)
        out = [chunk] if chunk else []
        if not cursor.finished and time.monotonic() >= cursor.next_beat:
            cursor.next_beat = time.monotonic() + cursor.heartbeat
            out.append(HEARTBEAT)
        return out


@dataclass(slots=True)
class _Cursor:
    """Where one reader is: its next index, its reservation token, what it keeps, when it next beats."""

    index: int
    token: int
    modes: frozenset[str] | None
    heartbeat: float
    next_beat: float
    finished: bool = False
