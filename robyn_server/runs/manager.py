"""The run engine of one process: claims runs from storage, executes them, records how they end.

Runs are claimed, not owned: storage decides atomically which run of a thread starts next (`run_start_next`,
one transaction that locks the thread), so "one run at a time per thread", enqueue order, `reject` and
cancellation hold across every process that shares the database. A process starts a thread's next run when
it creates one (`submitted`; a due run on a free thread is stored `running` by the creating transaction
itself), when one of its runs ends, when a delayed run becomes due, and when another process says so through
the bus (`wake`). Events go to the bus, where any process reads them.

Each run executes as two tasks: the graph task, which a cancel stops, and its supervisor, which is never
cancelled by a client and records the outcome (retrying until storage takes it), so no run is left
`running`, and no thread `busy`, by a cancel that lands at an awkward moment.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from robyn_server import serde, webhooks
from robyn_server.auth.context import AuthUser, set_current_user
from robyn_server.checkpoints import drop_run_checkpoints
from robyn_server.graphs import GraphRegistry
from robyn_server.ops import observe
from robyn_server.runs import credentials, liveness
from robyn_server.runs.credentials import execution_config
from robyn_server.runs.driver import build_input, stream_graph
from robyn_server.runs.errors import error_payload
from robyn_server.storage.base import Record, Storage
from robyn_server.streaming.bus import EventBus
from robyn_server.streaming.event_log import EventLog
from robyn_server.streaming.modes import StreamMapper

logger = logging.getLogger("robyn_server.runs")

INFLIGHT = ("pending", "running")
# How long a cancel for a run that is not (yet) known here is remembered, for a run about to start here.
EARLY_CANCEL_SECONDS = 60.0
# Creators' contexts kept for queued runs (a run that starts on another process leaves its entry behind).
MAX_KEPT_CONTEXTS = 10_000


def now() -> datetime:
    return datetime.now(UTC)


def run_attempt(run: Record) -> int:
    return int((((run.get("kwargs") or {}).get("config") or {}).get("metadata") or {}).get("run_attempt") or 1)


@dataclass(eq=False)
class RunHandle:
    """A run as a reader sees it: its record when found and the event log readers follow."""

    run: Record
    log: EventLog
    cancel_action: str | None = None  # set once a cancel was sent from here (client disconnects)
    token: int | None = None  # the creator's reservation of the log from its first event

    def release(self) -> None:
        """The creator will not stream this run's events (background and wait requests)."""
        self.log.release(self.token)
        self.token = None

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def thread_id(self) -> str:
        return self.run["thread_id"]

    @property
    def result(self) -> Any:
        return self.log.result


@dataclass(eq=False)
class Execution:
    """A run executing in this process."""

    run: Record
    log: EventLog
    task: asyncio.Task[tuple[str, bool, Any]] | None = None
    supervisor: asyncio.Task[None] | None = None
    finishing: bool = False  # the graph task ended: later cancels no longer change how the run is recorded
    sinks: list[Any] = field(default_factory=list)  # observers' per-run sinks (protocol v2 thread streams)
    cancel_action: str | None = None
    cancel_error: dict[str, str] | None = None

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def thread_id(self) -> str:
        return self.run["thread_id"]


def context_for_run(run: Record, held: dict[str, str] | None = None) -> contextvars.Context:
    """A context whose current user is the run's creator, for a run created by another process, with the
    credentials `held` for it there (fetched from that process)."""
    configurable = ((run.get("kwargs") or {}).get("config") or {}).get("configurable") or {}
    identity = configurable.get("langgraph_auth_user_id") or ""
    context = contextvars.Context()
    if identity:
        user = AuthUser(
            identity=identity,
            permissions=tuple(configurable.get("langgraph_auth_permissions") or ()),
            user=configurable.get("langgraph_auth_user"),
            token=(held or {}).get(credentials.TOKEN_KEY),
        )
        context.run(set_current_user, user)
    if held:
        credentials.put_back(context, held)
    return context


class RunManager:
    def __init__(
        self,
        storage: Storage,
        registry: GraphRegistry,
        *,
        max_concurrent: int,
        timeout: float,
        bus: EventBus | None = None,
        max_attempts: int = 3,
        executes: bool = True,
    ) -> None:
        self.storage = storage
        self.registry = registry
        self.bus = bus or EventBus()
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.executes = executes  # False for `--role api`: runs are left to the worker processes
        self._slots = asyncio.Semaphore(max_concurrent)
        self._executing: dict[str, Execution] = {}
        self._contexts: dict[str, contextvars.Context] = {}
        self._early_cancels: dict[str, tuple[str, dict[str, str] | None, float]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.bus.on_cancel = self._on_cancel
        self.bus.on_wake = self.kick
        self.bus.on_credentials = self._credentials_for
        # Run observers (protocol v2): `run_started(execution)` returns a sink or None; a sink gets every
        # `(event, data)` of the run and `finished(status, result)` once the outcome is stored (`pending`: the
        # run was handed back to the queue).
        self.observers: list[Any] = []

    @property
    def me(self) -> str:
        return self.storage.instance_id

    # ------------------------------------------------------------------------------- lookup
    def executing(self, run_id: str) -> Execution | None:
        return self._executing.get(run_id)

    async def find(self, run: Record) -> RunHandle | None:
        """A handle to read an existing run's events, or None when they are gone (finished, not resumable).
        A run not yet finished is always followed, even before its first event (it may start elsewhere)."""
        resumable = bool((run.get("kwargs") or {}).get("resumable"))
        if run["status"] in INFLIGHT:
            return RunHandle(run=run, log=await self.bus.run_reader(run["run_id"], resumable))
        log = await self.bus.find_run(run["run_id"], resumable)
        return None if log is None else RunHandle(run=run, log=log)

    async def inflight_runs(self, thread_id: str) -> list[Record]:
        """The thread's `pending` and `running` runs, oldest first, wherever they execute."""
        return await self.storage.run_inflight(thread_id)

    async def thread_log(self, thread_id: str) -> EventLog:
        return await self.bus.thread_reader(thread_id)

    async def publish_thread_event(self, thread_id: str, event: str, data: Any) -> None:
        await self.bus.publish_thread(thread_id, event, data)

    async def forget_thread(self, thread_id: str) -> None:
        await self.bus.forget_thread(thread_id)  # its thread stream and protocol-v2 streams end

    # ------------------------------------------------------------------------------- submit
    @property
    def starts_at_creation(self) -> bool:
        """Whether a new run may be stored `running` by this process (`Storage.run_create(start_at=...)`)."""
        return self.executes and not self._closing

    async def submitted(self, run: Record, *, resumable: bool, started: Record | None = None) -> RunHandle:
        """A run was just stored: execute `started` (its record, stored `running` at creation) if given, else
        start the thread's next run if the thread is free here or anywhere; return the handle its creator
        streams from (whose `run` is the run as created)."""
        # The creator's context (its identity and token) goes with the run when it starts here, now or later.
        self._contexts[run["run_id"]] = contextvars.copy_context()
        while len(self._contexts) > MAX_KEPT_CONTEXTS:  # runs that started on another process
            del self._contexts[next(iter(self._contexts))]
        if started is not None:
            await self._start_claimed(started)
        else:
            await self.kick(run["thread_id"])
        log = await self.bus.run_reader(run["run_id"], resumable)
        return RunHandle(run=run, log=log, token=log.reserve())

    async def kick(self, thread_id: str) -> None:
        """Start the thread's next due run here, if no run of the thread is running anywhere."""
        if self._closing:
            return
        if not self.executes:
            await self.bus.wake(thread_id)
            return
        run, wake_at = await self.storage.run_start_next(thread_id, self.me, now())
        if run is not None:
            await self._start_claimed(run)
        elif wake_at is not None:
            self._arm_timer(thread_id, wake_at)

    async def _start_claimed(self, run: Record) -> None:
        """Execute a run this process just stored as `running`."""
        try:
            await self._start(run)
        except BaseException:
            # the bus failed (Redis away): hand the run back, so it starts once it can (upkeep kicks it)
            self._executing.pop(run["run_id"], None)
            await self.storage.run_update(run["run_id"], {"status": "pending", "updated_at": now()})
            raise

    def _arm_timer(self, thread_id: str, at: datetime) -> None:
        """Kick the thread when its delayed run is due; asyncio may fire a little early, so kick re-arms."""
        old = self._timers.pop(thread_id, None)
        if old is not None:
            old.cancel()
        delay = max(0.0, (at - now()).total_seconds()) + 0.005
        loop = asyncio.get_running_loop()
        self._timers[thread_id] = loop.call_later(delay, self._spawn_kick, thread_id)

    def _spawn_kick(self, thread_id: str) -> None:
        self._timers.pop(thread_id, None)
        self._spawn(self._safe_kick(thread_id))

    async def _safe_kick(self, thread_id: str) -> None:
        try:
            await self.kick(thread_id)
        except Exception as exc:  # the database may be away; the upkeep loop kicks again later
            logger.warning("could not start the next run of thread %s: %s", thread_id, exc)

    def _spawn(self, coro: Any, context: contextvars.Context | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start(self, run: Record) -> None:
        kwargs = run["kwargs"]
        # a first attempt never ran before: no events of an earlier one to follow (every retry increases it)
        log = await self.bus.run_writer(
            run["run_id"], bool(kwargs.get("resumable")), run["thread_id"], resumed=run_attempt(run) > 1
        )
        execution = Execution(run=run, log=log)
        self._executing[run["run_id"]] = execution
        early = self._early_cancels.pop(run["run_id"], None)
        if early is not None and time.monotonic() - early[2] < EARLY_CANCEL_SECONDS:
            execution.cancel_action, execution.cancel_error = early[0], early[1]
        execution.supervisor = self._spawn(self._supervise(execution))

    # ------------------------------------------------------------------------------- cancel
    async def cancel(
        self, run_id: str, action: str, error: dict[str, str] | None = None, reason: str | None = None
    ) -> bool:
        """Stop a run wherever it is: a pending one is marked (deleted on rollback) in storage, a running one
        is cancelled by the process executing it. `error` becomes the thread's `error` (client disconnects);
        `reason` is stored as the run's `cancel_reason`. False when the run is neither pending nor running."""
        fields = None if action == "rollback" else {"status": "interrupted", "updated_at": now()}
        if fields is not None and reason:
            fields["cancel_reason"] = reason
        stopped = await self.storage.run_cancel_pending(run_id, fields)
        if stopped is not None:
            self._contexts.pop(run_id, None)
            await self._close_stopped(stopped, error)
            return True
        run = await self.storage.run_get(run_id)
        if run is None or run["status"] not in INFLIGHT:
            return False
        if reason:
            await self.storage.run_update(run_id, {"cancel_reason": reason})
        if run_id in self._executing:
            await self._on_cancel(run_id, action, error)
        elif run["status"] == "running" and await self._take_over_orphan(run_id):
            # ended here as its own worker would have ended it on this cancel
            if action == "rollback":
                await self.storage.run_delete(run_id)
                await drop_run_checkpoints(self.storage.checkpointer, run["thread_id"], run_id)
            logger.warning("run %s was running on a server that stopped: cancelled (%s) here", run_id, action)
            await self._close_stopped(run, error, run_fields=fields)
        else:
            await self.bus.send_cancel(run_id, action, error)
        return True

    async def _take_over_orphan(self, run_id: str) -> bool:
        """Claim a running run whose process is gone: nobody would act on a cancel sent to it, and the run
        would be resumed later with the cancel forgotten. True when this process now owns it."""
        owner = await self.storage.run_owner(run_id)
        if owner is None or owner == self.me:
            return False  # ours (about to start here: the bus's early cancel reaches it) or handed back
        if await liveness.owner_alive(self.storage, owner, liveness.instance_timeout()):
            return False
        return await self.storage.run_claim(run_id, owner, self.me)

    async def _close_stopped(
        self, run: Record, error: dict[str, str] | None, run_fields: dict[str, Any] | None = None
    ) -> None:
        """After a cancel stopped a run that no worker executes (a pending one, or one taken over from a gone
        process): the thread settled with `run_fields` on the run (a temporary thread deleted and its streams
        ended), then the run's stream ended everywhere and the thread's next run started."""
        run_id, thread_id = run["run_id"], run["thread_id"]
        temporary = bool((run.get("kwargs") or {}).get("temporary"))
        if temporary:
            await self.storage.thread_delete(thread_id)  # its runs and checkpoints go with it
        else:
            await self._finish_thread(thread_id, run_id, error=False, result=None, cancel_error=error,
                                      run_fields=run_fields)  # fmt: skip
        await self.bus.end_run(run_id, None)
        if temporary:
            await self.forget_thread(thread_id)
            return
        await self.publish_thread_event(thread_id, "metadata", {"status": "run_done", "run_id": run_id})
        await self.kick(thread_id)

    async def wait(self, handle: RunHandle) -> Any:
        """The run's result once it ends (for callers that do not stream it), without blocking the loop."""
        handle.release()
        loop = asyncio.get_running_loop()
        ended = loop.create_future()

        def closed() -> None:
            loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))

        handle.log.add_close_callback(closed)
        await ended
        return handle.result

    async def _on_cancel(self, run_id: str, action: str, error: dict[str, str] | None) -> None:
        """A cancel for a run that may execute here (from this process or through the bus)."""
        execution = self._executing.get(run_id)
        if execution is None:
            self._early_cancels[run_id] = (action, error, time.monotonic())
            self._forget_old_cancels()
            return
        if execution.finishing:
            return  # the graph is done and its outcome is being recorded: too late to change it
        if execution.cancel_action is None:
            execution.cancel_action, execution.cancel_error = action, error
        if execution.task is not None and not execution.task.done():
            execution.task.cancel()

    def _forget_old_cancels(self) -> None:
        cutoff = time.monotonic() - EARLY_CANCEL_SECONDS
        for run_id in [r for r, (_, _, at) in self._early_cancels.items() if at < cutoff]:
            del self._early_cancels[run_id]

    # ------------------------------------------------------------------------------- execute
    async def _supervise(self, execution: Execution) -> None:
        """Run the graph task to its end, then record the outcome; never cancelled by a client."""
        context = self._contexts.pop(execution.run_id, None)
        if context is None:  # created by another process (or before a restart)
            held = await self._fetch_credentials(execution.run_id) if self.bus.shared else None
            context = context_for_run(execution.run, held)
        execution.task = asyncio.get_running_loop().create_task(self._drive(execution), context=context)
        if execution.cancel_action is not None:
            execution.task.cancel()
        await asyncio.wait({execution.task})
        execution.finishing = True
        if execution.task.cancelled():  # cancelled before it began: nothing ran
            status, errored, result = "interrupted", False, None
        else:
            status, errored, result = execution.task.result()
        if execution.cancel_action == "requeue":
            status = "pending"
        await self._complete(execution, status, errored, result)

    async def _fetch_credentials(self, run_id: str) -> dict[str, str] | None:
        try:
            return await self.bus.fetch_credentials(run_id)
        except Exception as exc:  # Redis away: the run goes on without them, as after a crash
            logger.warning("could not fetch the credentials of run %s: %s", run_id, type(exc).__name__)
            return None

    def _credentials_for(self, run_id: str) -> dict[str, str] | None:
        """The credentials this process holds for a run it created (maybe none), for the process that executes
        it; None when the run was not created here."""
        context = self._contexts.get(run_id)
        return None if context is None else credentials.held_in(context)

    async def _drive(self, execution: Execution) -> tuple[str, bool, Any]:
        """Execute the graph, appending its events to the run's log; returns (status, errored, result)."""
        run = execution.run
        run_id = run["run_id"]
        kwargs = run["kwargs"]
        mapper = StreamMapper(kwargs["stream_mode"], kwargs.get("subgraphs", False))
        log = execution.log
        observed = None
        status = "error"
        try:
            async with self._slots:
                attempt = run_attempt(run)
                observed = observe.run_started(run)
                log.append("metadata", serde.dumps({"run_id": run_id, "attempt": attempt}))
                execution.sinks = [s for o in self.observers if (s := o.run_started(execution)) is not None]
                config = observed.config(execution_config(kwargs["config"]))  # + the caller's token, never stored
                config = {**config, "run_id": uuid.UUID(run_id)}  # the graph's root run is this run (events mode)
                graph_id = config["configurable"]["graph_id"]
                async with asyncio.timeout(self.timeout):
                    async with self.registry.graph(
                        graph_id,
                        config,
                        access="threads.create_run",
                        context=kwargs.get("context"),
                        checkpointed=not kwargs.get("temporary"),  # its thread and checkpoints go when it ends
                    ) as graph:
                        graph_input = build_input(kwargs)
                        if attempt > 1 and await self._wrote_checkpoints(graph, config, run_id):
                            graph_input = None  # a resumed attempt continues from its last checkpoint
                        async for event, data in stream_graph(graph, graph_input, config, kwargs, mapper):
                            observed.saw(event)
                            log.append(event, data)
                            for sink in execution.sinks:
                                sink.event(event, data)
            status = "success"
            return "success", False, mapper.last_values if mapper.saw_values else None
        except asyncio.CancelledError:
            status = "interrupted"
            return "interrupted", False, mapper.last_values if mapper.saw_values else None
        except TimeoutError as exc:
            status = "timeout"
            result = {"__error__": error_payload(exc)}
            log.append("error", serde.dumps(result["__error__"]))
            return "timeout", True, result
        except Exception as exc:
            logger.warning("run %s failed: %s: %s", run_id, type(exc).__name__, exc)
            result = {"__error__": error_payload(exc)}
            log.append("error", serde.dumps(result["__error__"]))
            return "error", True, result
        finally:
            observe.run_finished(observed, status)

    @staticmethod
    async def _wrote_checkpoints(graph: Any, config: dict[str, Any], run_id: str) -> bool:
        thread_config = {"configurable": {"thread_id": config["configurable"]["thread_id"]}}
        latest = await graph.checkpointer.aget_tuple(thread_config) if graph.checkpointer else None
        return latest is not None and (latest.metadata or {}).get("run_id") == run_id

    async def _complete(self, execution: Execution, status: str, errored: bool, result: Any) -> None:
        """Record the outcome until storage takes it, then close the log and start the thread's next run."""
        delay = 0.2
        while True:
            try:
                await self._record_end(execution, status, errored, result)
                break
            except Exception as exc:
                logger.warning(
                    "could not record the end of run %s (%s: %s); retrying in %.1fs",
                    execution.run_id, type(exc).__name__, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._executing.pop(execution.run_id, None)
        for sink in execution.sinks:
            sink.finished(status, result)
        self.bus.finish_run(execution.run_id, execution.thread_id, execution.log, result, final=status != "pending")
        if status != "pending":
            webhooks.notify_run_end(execution.run, status, result, webhooks.started_at(execution.log))  # if `webhook`
        try:
            if status != "pending" and execution.run["kwargs"].get("temporary"):
                # its thread is deleted: end its thread streams now (on Redis they held a copy of every event of
                # the run for an hour), and there is no next run to start
                await self.forget_thread(execution.thread_id)
                return
            await self.publish_thread_event(
                execution.thread_id, "metadata", {"status": "run_done", "run_id": execution.run_id}
            )
            if status == "pending":
                await self.bus.wake(execution.thread_id)  # handed back: another process takes it
            else:
                await self.kick(execution.thread_id)
        except Exception as exc:
            logger.warning("could not start the next run of thread %s: %s", execution.thread_id, exc)

    async def _record_end(self, execution: Execution, status: str, errored: bool, result: Any) -> None:
        run_id, thread_id = execution.run_id, execution.thread_id
        if status == "pending":  # shutdown hands the run back: next attempt resumes from its last checkpoint
            kwargs = dict(execution.run["kwargs"])
            config = dict(kwargs["config"])
            config["metadata"] = {**(config.get("metadata") or {}), "run_attempt": run_attempt(execution.run) + 1}
            kwargs["config"] = config
            await self.storage.run_update(run_id, {"status": "pending", "kwargs": kwargs, "updated_at": now()})
            await self.storage.run_claim(run_id, self.me, None)  # type: ignore[arg-type]
            return
        rollback = execution.cancel_action == "rollback"  # fixed from here on: see `finishing`
        if rollback:
            await self.storage.run_delete(run_id)
            await drop_run_checkpoints(self.storage.checkpointer, thread_id, run_id)
        if execution.run["kwargs"].get("temporary"):
            await self.storage.thread_delete(thread_id)
            return
        # The thread (its values, interrupts and status) and the run in one step: whoever sees the run ended
        # also sees the thread as the run left it.
        await self._finish_thread(
            thread_id,
            run_id,
            error=errored and status == "error",
            result=result,
            cancel_error=execution.cancel_error,
            run_fields=None if rollback else {"status": status, "updated_at": now()},
        )

    async def _finish_thread(
        self,
        thread_id: str,
        ending: str,
        *,
        error: bool,
        result: Any,
        cancel_error: dict[str, str] | None,
        run_fields: dict[str, Any] | None = None,
    ) -> None:
        """The reference's joint status: busy while runs remain (storage decides that under the thread's lock,
        so a run created meanwhile counts), else error, interrupted or idle."""
        thread = await self.storage.thread_get(thread_id)
        if thread is None:
            await self.storage.run_finish(thread_id, ending, {}, run_fields)
            return
        fields: dict[str, Any] = {"updated_at": now()}
        state = await self.thread_state(thread)
        if state is not None:
            fields["values"] = serde.to_jsonable(state.values)
            fields["interrupts"] = serde.to_jsonable(
                {t.id: [{"id": i.id, "value": i.value} for i in t.interrupts] for t in state.tasks if t.interrupts}
            )
            fields["state_updated_at"] = fields["updated_at"]
        if error:
            fields["status"] = "error"
        elif state is not None and state.next:
            fields["status"] = "interrupted"
        else:
            fields["status"] = "idle"
        if isinstance(result, dict) and "__error__" in result:
            fields["error"] = result["__error__"]
        elif cancel_error is not None:
            fields["error"] = cancel_error
        elif "error" in thread or state is not None:
            fields["error"] = None
        await self.storage.run_finish(thread_id, ending, fields, run_fields)

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
        """Stop taking runs, let running ones finish for `grace` seconds, then hand the rest back to the queue
        (another process resumes them from their last checkpoint), and wait until that is recorded."""
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        running = list(self._executing.values())
        tasks = [e.task for e in running if e.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for execution in running:
            if execution.task is not None and not execution.task.done():
                execution.cancel_action = "requeue"
                execution.task.cancel()
        supervisors = [e.supervisor for e in running if e.supervisor is not None]
        if supervisors:
            await asyncio.wait(supervisors, timeout=10.0)
