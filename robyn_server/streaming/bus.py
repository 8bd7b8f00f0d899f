"""The event bus: where a run's events go, and how any process reads them, cancels runs and wakes workers.

Writers are the worker executing a run (one at a time per run); readers are SSE responses on any process.
`EventBus` is the embedded default (one process): the worker's `EventLog` is what readers read, and a thread's
protocol-v2 log (robyn_server/protocol_v2/log.py) is one `ThreadEventLog` in memory. The Redis bus
(`streaming/redis_bus.py`) has the same interface and carries events, protocol-v2 events, cancels and wake-ups
between processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from robyn_server import serde
from robyn_server.protocol_v2.log import LocalWriter, ThreadEventLog, ThreadLogs
from robyn_server.streaming.event_log import EventLog

# How many events a thread stream keeps for `Last-Event-ID` resume (older ones are dropped).
THREAD_LOG_ENTRIES = 1000

CancelHandler = Callable[[str, str, dict[str, str] | None], Awaitable[None]]
WakeHandler = Callable[[str], Awaitable[None]]
CredentialsHandler = Callable[[str], "dict[str, str] | None"]


class ProtocolWriter(Protocol):
    """Where one protocol-v2 run appends its thread's events (`name` is `method|ns...`, `body` the event JSON)."""

    def append(self, name: str, body: bytes) -> Any: ...

    def release(self) -> None:
        """The run appends nothing more."""


class EventBus:
    """The local, single-process bus; the base of the Redis one."""

    kind = "local"
    shared = False  # True when other processes see the same runs (Redis)

    def __init__(self, resumable_ttl_seconds: float = 120.0) -> None:
        self.resumable_ttl = resumable_ttl_seconds
        self._runs: dict[str, EventLog] = {}
        self._threads: dict[str, EventLog] = {}
        self._active: dict[str, EventLog] = {}  # thread id -> the log of its run executing here
        self._protocol = ThreadLogs()
        self.on_cancel: CancelHandler | None = None
        self.on_wake: WakeHandler | None = None
        self.on_credentials: CredentialsHandler | None = None  # run id -> the credentials held here for it
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        """Release connections (nothing to release here)."""

    async def ping(self) -> dict[str, Any]:
        return {"bus": self.kind}

    async def check(self) -> None:
        """Raise when the bus cannot carry a new run's events (nothing to check in-process)."""

    def pool_stats(self) -> dict[str, int]:
        """Connection pool use for `/metrics` (no connections in-process)."""
        return {}

    # run streams --------------------------------------------------------------------------
    async def run_writer(self, run_id: str, resumable: bool, thread_id: str, *, resumed: bool = True) -> EventLog:
        """The log the worker executing `run_id` appends to (created on first use); `resumed`: an earlier attempt
        of the run may have written events, which this one's ids must follow."""
        log = self._runs.get(run_id)
        if log is None:
            log = self._runs[run_id] = EventLog(resumable)
        log.mirror = self._threads.get(thread_id)
        self._active[thread_id] = log
        return log

    async def run_reader(self, run_id: str, resumable: bool) -> EventLog:
        """A log readers follow for `run_id`; it exists before the run starts (a stream may open first)."""
        log = self._runs.get(run_id)
        if log is None:
            log = self._runs[run_id] = EventLog(resumable)
        return log

    def known_run(self, run_id: str) -> EventLog | None:
        """The run's log if this bus still has it (a finished, non-resumable run's log is dropped)."""
        return self._runs.get(run_id)

    async def find_run(self, run_id: str, resumable: bool = True) -> EventLog | None:
        """A readable log for an existing run, wherever it executes; None when its events are gone."""
        return self._runs.get(run_id)

    def finish_run(self, run_id: str, thread_id: str, log: EventLog, result: Any, final: bool = True) -> None:
        """Close the run's log; drop it soon when nothing can read it again, else after the resumable TTL.
        `final` is False when the run was handed back to the queue (its next attempt continues the stream)."""
        if self._active.get(thread_id) is log:
            del self._active[thread_id]
        log.mirror = None
        log.close(result)
        if not log.resumable and log.readers == 0:
            self._drop_later(run_id, log, 5.0)  # a `wait` that is about to read the result still finds it
        else:
            self._drop_later(run_id, log, self.resumable_ttl if log.resumable else 5.0)

    async def end_run(self, run_id: str, result: Any) -> None:
        """End the stream of a run that never started (cancelled while pending)."""
        log = self._runs.get(run_id)
        if log is not None:
            log.close(result)
            self._drop_later(run_id, log, self.resumable_ttl if log.resumable else 5.0)

    def _drop_later(self, run_id: str, log: EventLog, delay: float) -> None:
        def drop() -> None:
            if self._runs.get(run_id) is log:
                if log.readers and not log.resumable:
                    self._drop_later(run_id, log, delay)  # still being read: keep it until the reader is done
                    return
                del self._runs[run_id]

        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(delay, drop)

    # thread streams -----------------------------------------------------------------------
    async def thread_reader(self, thread_id: str) -> EventLog:
        """The thread-wide log (`GET /threads/{id}/stream`): later run events, `run_done` markers, state updates."""
        log = self._threads.get(thread_id)
        if log is None:
            log = self._threads[thread_id] = EventLog(resumable=True, max_entries=THREAD_LOG_ENTRIES)
            active = self._active.get(thread_id)
            if active is not None and not active.closed:
                active.mirror = log
        return log

    async def publish_thread(self, thread_id: str, event: str, data: Any) -> None:
        log = self._threads.get(thread_id)
        if log is not None:
            log.append(event, serde.dumps(data))

    async def forget_thread(self, thread_id: str) -> None:
        """End the thread stream and the protocol-v2 streams of a deleted thread."""
        log = self._threads.pop(thread_id, None)
        if log is not None:
            log.close()
        self._protocol.forget(thread_id)

    # protocol-v2 thread logs --------------------------------------------------------------
    def protocol_writer(self, thread_id: str) -> ProtocolWriter:
        """The writer of a protocol-v2 run executing here (runs of one thread never overlap)."""
        return LocalWriter(self._protocol.log(thread_id))

    async def protocol_reader(self, thread_id: str) -> ThreadEventLog:
        """The thread's protocol-v2 log: its kept events (for `since`), then live ones, wherever runs execute."""
        return self._protocol.log(thread_id)

    async def protocol_last_seq(self, thread_id: str) -> int:
        """The seq of the thread's latest protocol-v2 event (0 when none is kept)."""
        return self._protocol.log(thread_id).last_seq

    # control ------------------------------------------------------------------------------
    async def send_cancel(self, run_id: str, action: str, error: dict[str, str] | None) -> None:
        """Ask whichever process executes `run_id` to stop it."""
        if self.on_cancel is not None:
            await self.on_cancel(run_id, action, error)

    async def wake(self, thread_id: str) -> None:
        """Tell the workers that the thread may have a run to start."""
        if self.on_wake is not None:
            await self.on_wake(thread_id)

    async def fetch_credentials(self, run_id: str) -> dict[str, str] | None:
        """The credentials the process that created `run_id` holds for it (in one process: none elsewhere)."""
        return None
