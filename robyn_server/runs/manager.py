"""The run manager: starts runs at once as background tasks, one at a time per thread, and owns their logs.

HTTP handlers create runs and read their event logs; they never run graphs themselves. A run's task is created
with the context of the request that made it, so request-scoped values reach graph nodes and tools.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from robyn_server import serde
from robyn_server.checkpoints import drop_run_checkpoints
from robyn_server.graphs import GraphRegistry
from robyn_server.runs.driver import build_input, stream_graph
from robyn_server.runs.errors import error_payload
from robyn_server.storage.base import Record, Storage
from robyn_server.streaming.event_log import EventLog
from robyn_server.streaming.modes import StreamMapper

logger = logging.getLogger("robyn_server.runs")

INFLIGHT = ("pending", "running")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class RunHandle:
    """A run known to this process: its event log, task and outcome."""

    run: Record
    log: EventLog
    context: contextvars.Context
    temporary: bool = False
    task: asyncio.Task[None] | None = None
    cancel_action: str | None = None
    cancel_error: dict[str, str] | None = None
    not_before: float = 0.0
    result: Any = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    sinks: list[Any] = field(default_factory=list)  # observers' per-run sinks (protocol v2 thread streams)

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def thread_id(self) -> str:
        return self.run["thread_id"]


class RunManager:
    def __init__(self, storage: Storage, registry: GraphRegistry, *, max_concurrent: int, timeout: float) -> None:
        self.storage = storage
        self.registry = registry
        self.timeout = timeout
        self._slots = asyncio.Semaphore(max_concurrent)
        self._handles: dict[str, RunHandle] = {}
        self._queues: dict[str, deque[RunHandle]] = {}
        self._active: dict[str, RunHandle] = {}
        self._finished: deque[RunHandle] = deque()
        self._thread_logs: dict[str, EventLog] = {}
        self._closing = False
        # Run observers (protocol v2): `run_started(handle)` returns a sink or None; a sink gets every
        # `(event, data)` of the run and `finished(status, result)` once the outcome is stored.
        self.observers: list[Any] = []

    # ------------------------------------------------------------------------------- lookup
    def handle(self, run_id: str) -> RunHandle | None:
        return self._handles.get(run_id)

    def thread_log(self, thread_id: str) -> EventLog:
        """The thread-wide event log, created when first watched: every later run event of the thread,
        `metadata` `run_done` markers and `state_update` events, always with ids."""
        log = self._thread_logs.get(thread_id)
        if log is None:
            log = self._thread_logs[thread_id] = EventLog(resumable=True)
            active = self._active.get(thread_id)
            if active is not None:
                active.log.mirror = log
        return log

    def publish_thread_event(self, thread_id: str, event: str, data: Any) -> None:
        log = self._thread_logs.get(thread_id)
        if log is not None:
            log.append(event, serde.dumps(data))

    def forget_thread(self, thread_id: str) -> None:
        """End the thread stream of a deleted thread."""
        log = self._thread_logs.pop(thread_id, None)
        if log is not None:
            log.close()
        for observer in self.observers:
            observer.forget(thread_id)

    def inflight(self, thread_id: str) -> list[RunHandle]:
        active = self._active.get(thread_id)
        queued = list(self._queues.get(thread_id, ()))
        return ([active] if active else []) + queued

    # ------------------------------------------------------------------------------- submit
    def submit(self, run: Record, *, temporary: bool, resumable: bool, after_seconds: float = 0) -> RunHandle:
        """Queue a stored `pending` run and start it now if its thread is free."""
        handle = RunHandle(run=run, log=EventLog(resumable), context=contextvars.copy_context(), temporary=temporary)
        handle.not_before = time.monotonic() + (after_seconds or 0)
        self._handles[handle.run_id] = handle
        self._queues.setdefault(handle.thread_id, deque()).append(handle)
        self._start_next(handle.thread_id)
        return handle

    def submit_stored(self, run: Record) -> RunHandle:
        """Queue a `pending` run read back from storage (crash recovery), keeping what is left of its delay."""
        existing = self._handles.get(run["run_id"])
        if existing is not None:
            return existing
        kwargs = run.get("kwargs") or {}
        delay = ((kwargs.get("config") or {}).get("configurable") or {}).get("__after_seconds__") or 0
        created = run.get("created_at")
        if delay and isinstance(created, datetime):
            delay = max(0.0, delay - (now() - created).total_seconds())
        return self.submit(
            run, temporary=bool(kwargs.get("temporary")), resumable=bool(kwargs.get("resumable")), after_seconds=delay
        )

    def _start_next(self, thread_id: str) -> None:
        if self._closing or thread_id in self._active:
            return
        queue = self._queues.get(thread_id)
        if not queue:
            self._queues.pop(thread_id, None)
            return
        handle = queue[0]
        wait = handle.not_before - time.monotonic()
        if wait > 0:
            # Not due yet (`after_seconds`). asyncio may fire a timer a little early, so always re-arm one
            # rather than rely on the caller's: a run must never be left queued with nothing to start it.
            asyncio.get_running_loop().call_later(wait, self._start_next, thread_id)
            return
        queue.popleft()
        self._active[thread_id] = handle
        handle.task = asyncio.get_running_loop().create_task(self._execute(handle), context=handle.context)

    # ------------------------------------------------------------------------------- cancel
    async def cancel(self, handle: RunHandle, action: str, error: dict[str, str] | None = None) -> None:
        """Stop a run: a queued one is marked (or deleted on rollback), a running one is cancelled.

        `error` is recorded as the thread's `error` (the reference's `UserInterrupt` on a client disconnect)."""
        handle.cancel_action = action
        handle.cancel_error = error
        if handle.task is not None:
            if not handle.task.done():
                handle.task.cancel()
            return
        queue = self._queues.get(handle.thread_id)
        if queue and handle in queue:
            queue.remove(handle)
        if action == "rollback":
            await self.storage.run_delete(handle.run_id)
        else:
            await self.storage.run_update(handle.run_id, {"status": "interrupted", "updated_at": now()})
        await self._finish_thread(handle, error=False)
        self._close(handle, result=None)
        self._start_next(handle.thread_id)

    async def wait(self, handle: RunHandle) -> Any:
        await handle.done.wait()
        return handle.result

    # ------------------------------------------------------------------------------- execute
    async def _execute(self, handle: RunHandle) -> None:
        run_id = handle.run_id
        kwargs = handle.run["kwargs"]
        mapper = StreamMapper(kwargs["stream_mode"], kwargs.get("subgraphs", False))
        status, errored, result = "success", False, None
        try:
            async with self._slots:
                await self.storage.run_update(run_id, {"status": "running", "updated_at": now()})
                handle.log.mirror = self._thread_logs.get(handle.thread_id)
                handle.log.append("metadata", serde.dumps({"run_id": run_id, "attempt": 1}))
                handle.sinks = [s for o in self.observers if (s := o.run_started(handle)) is not None]
                config = kwargs["config"]
                graph_id = config["configurable"]["graph_id"]
                async with asyncio.timeout(self.timeout):
                    async with self.registry.graph(graph_id, config) as graph:
                        async for event, data in stream_graph(graph, build_input(kwargs), config, kwargs, mapper):
                            handle.log.append(event, data)
                            for sink in handle.sinks:
                                sink.event(event, data)
            result = mapper.last_values if mapper.saw_values else None
        except asyncio.CancelledError:
            status = "interrupted"
            result = mapper.last_values if mapper.saw_values else None
        except TimeoutError as exc:
            status, errored = "timeout", True
            result = {"__error__": error_payload(exc)}
            handle.log.append("error", serde.dumps(result["__error__"]))
        except Exception as exc:
            logger.warning("run %s failed: %s: %s", run_id, type(exc).__name__, exc)
            status, errored = "error", True
            result = {"__error__": error_payload(exc)}
            handle.log.append("error", serde.dumps(result["__error__"]))
        await self._complete(handle, status, errored, result)

    async def _complete(self, handle: RunHandle, status: str, errored: bool, result: Any) -> None:
        """Record the outcome, refresh the thread, close the log and start the thread's next run."""
        try:
            self._active.pop(handle.thread_id, None)
            if handle.cancel_action == "rollback":
                await self.storage.run_delete(handle.run_id)
                await drop_run_checkpoints(self.storage.checkpointer, handle.thread_id, handle.run_id)
            else:
                await self.storage.run_update(handle.run_id, {"status": status, "updated_at": now()})
            if handle.temporary:
                await self.storage.thread_delete(handle.thread_id)
            else:
                await self._finish_thread(handle, error=errored and status == "error", result=result)
        except Exception:
            logger.exception("could not record the end of run %s", handle.run_id)
        finally:
            for sink in handle.sinks:
                sink.finished(status, result)
            self._close(handle, result)
            self._start_next(handle.thread_id)

    def _close(self, handle: RunHandle, result: Any) -> None:
        handle.log.mirror = None
        self.publish_thread_event(handle.thread_id, "metadata", {"status": "run_done", "run_id": handle.run_id})
        handle.result = result
        handle.log.close()
        handle.done.set()
        self._finished.append(handle)
        self._forget_old()

    def _forget_old(self, keep: int = 1000) -> None:
        while len(self._finished) > keep:
            old = self._finished.popleft()
            self._handles.pop(old.run_id, None)

    async def _finish_thread(self, handle: RunHandle, *, error: bool, result: Any = None) -> None:
        """The reference's joint status: busy while runs remain, else error, interrupted or idle."""
        thread_id = handle.thread_id
        thread = await self.storage.thread_get(thread_id)
        if thread is None:
            return
        fields: dict[str, Any] = {"updated_at": now()}
        state = await self.thread_state(thread)
        if state is not None:
            fields["values"] = serde.to_jsonable(state.values)
            fields["interrupts"] = serde.to_jsonable(
                {t.id: [{"id": i.id, "value": i.value} for i in t.interrupts] for t in state.tasks if t.interrupts}
            )
            fields["state_updated_at"] = fields["updated_at"]
        if self.inflight(thread_id):
            fields["status"] = "busy"
        elif error:
            fields["status"] = "error"
        elif state is not None and state.next:
            fields["status"] = "interrupted"
        else:
            fields["status"] = "idle"
        if isinstance(result, dict) and "__error__" in result:
            fields["error"] = result["__error__"]
        elif handle.cancel_error is not None:
            fields["error"] = handle.cancel_error
        elif "error" in thread or state is not None:
            fields["error"] = None
        await self.storage.thread_update(thread_id, fields)

    async def thread_state(self, thread: Record) -> Any:
        """The thread's latest StateSnapshot, or None when it never ran a graph."""
        graph_id = (thread.get("metadata") or {}).get("graph_id")
        if not graph_id or graph_id not in self.registry:
            return None
        config = {"configurable": {"thread_id": thread["thread_id"], "graph_id": graph_id}}
        async with self.registry.graph(graph_id, config) as graph:
            return await graph.aget_state(config)

    # ------------------------------------------------------------------------------- shutdown
    async def shutdown(self, grace: float = 3.0) -> None:
        """Cancel running runs and record them as interrupted; queued runs stay pending for the next start."""
        self._closing = True
        tasks = [h.task for h in self._active.values() if h.task and not h.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
