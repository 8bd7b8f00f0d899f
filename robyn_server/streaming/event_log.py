"""The per-run event log: the run task appends frames, any number of SSE responses read them.

Readers are synchronous generators driven by Robyn's worker threads, so they wait on a `threading.Condition`
instead of hopping onto the event loop for every chunk; everything ready is sent as one chunk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from robyn_server.streaming.sse import HEARTBEAT, encode_frame


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


class EventLog:
    """Frames of one run in order. `resumable` logs carry ids and are kept for replay after the run ends."""

    def __init__(self, resumable: bool) -> None:
        self.resumable = resumable
        self.entries: list[Entry] = []
        self.closed = False
        self.closed_at: float | None = None
        self._cond = threading.Condition()
        self._last_ms = 0
        self._seq = 0
        # A thread-wide log that also receives this run's events (`GET /threads/{id}/stream`).
        self.mirror: EventLog | None = None

    def _next_key(self) -> tuple[int, int]:
        ms = int(time.time() * 1000)
        if ms <= self._last_ms:
            ms = self._last_ms
            self._seq += 1
        else:
            self._last_ms, self._seq = ms, 0
        return ms, self._seq

    def append(self, event: str, data: bytes) -> None:
        key = self._next_key()
        event_id = f"{key[0]}-{key[1]}" if self.resumable else None
        entry = Entry(key, event.split("|", 1)[0], encode_frame(event, data, event_id))
        with self._cond:
            self.entries.append(entry)
            self._cond.notify_all()
        if self.mirror is not None:
            self.mirror.append(event, data)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self.closed_at = time.monotonic()
            self._cond.notify_all()

    def start_index(self, last_event_id: str | None, *, replay: bool) -> int:
        """Where a reader starts: after `last_event_id`, from the start (`replay`), or at the live end."""
        with self._cond:
            if last_event_id is not None and last_event_id.strip() != "":
                if last_event_id.strip() == "-":
                    return 0
                key = parse_event_id(last_event_id)
                if key is None:
                    return 0
                for index, entry in enumerate(self.entries):
                    if entry.key > key:
                        return index
                return len(self.entries)
            return 0 if replay else len(self.entries)

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
    ) -> Iterator[bytes]:
        """Yield batches of frames from `start`, heartbeats while idle, until the log is closed and drained.

        `modes` keeps only events of those base modes (plus `metadata`/`error`); `on_close` runs when the
        reader stops for any reason, including the client going away; `progress` records each hand-over.
        """
        progress = progress or ReaderProgress()
        index = start
        next_beat = time.monotonic() + heartbeat_seconds
        try:
            while True:
                with self._cond:
                    while index >= len(self.entries) and not self.closed:
                        remaining = next_beat - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                    batch = self.entries[index:]
                    index += len(batch)
                    finished = self.closed and index >= len(self.entries)
                if batch:
                    if modes is None:
                        chunk = b"".join(e.frame for e in batch)
                    else:
                        chunk = b"".join(e.frame for e in batch if e.mode in modes)
                    if chunk:
                        progress.handed_at = time.monotonic()
                        yield chunk
                        progress.handed_at = None
                if finished:
                    return
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + heartbeat_seconds
                    progress.handed_at = time.monotonic()
                    yield HEARTBEAT
                    progress.handed_at = None
        finally:
            progress.done = True
            if on_close is not None:
                on_close()
