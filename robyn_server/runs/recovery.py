"""Crash recovery and background upkeep: process heartbeats, orphaned runs and thread TTL sweeps.

Every server process has an instance id (`Storage.instance_id`), stored with each run it creates, and writes a
heartbeat row every few seconds. A run is *orphaned* when its owner is gone: the owner stopped cleanly (its row
is removed), runs on this host under a pid that no longer exists (a SIGKILL or crash before a restart), or has
not written a heartbeat for `instance_timeout` seconds (another host died). Orphaned runs are claimed with a
compare-and-set, so with several processes on one database each is recovered exactly once:

- a `running` run is marked `error`, and its thread gets status `error` with an `error` saying the server
  stopped during the run (or `busy` while later runs of the thread are still queued);
- a `pending` run is queued again on this process and runs.

At start-up, threads still marked `busy` without any pending or running run are set back to `idle` (or
`interrupted`). The same loop deletes (or prunes) threads whose TTL expired.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from robyn_server import serde
from robyn_server.config import env_float
from robyn_server.context import ServerContext
from robyn_server.runs.liveness import HOST, instance_timeout, live_instances
from robyn_server.runs.manager import now, run_attempt
from robyn_server.schemas import MAX_TTL_MINUTES
from robyn_server.storage.base import Record
from robyn_server.storage.prune import keep_latest_checkpoints

logger = logging.getLogger("robyn_server.recovery")

CRASH_ERROR = "ServerStoppedError"
TTL_STRATEGIES = ("delete", "keep_latest")


def crash_error(run_id: str, attempts: int = 1) -> dict[str, str]:
    return {
        "error": CRASH_ERROR,
        "message": f"Run {run_id} did not finish: the server stopped while it was running (crash or kill), "
        f"{attempts} time(s), the most attempts allowed (BG_JOB_MAX_RETRIES). It was marked as failed; start a "
        "new run to retry.",
    }


@dataclass
class Upkeep:
    """Timings of the background loop (environment overrides exist for tests and tuning)."""

    heartbeat_seconds: float = field(default_factory=lambda: env_float("ROBYN_SERVER_HEARTBEAT_SECONDS", 5.0))
    instance_timeout: float = field(default_factory=instance_timeout)
    ttl_sweep_seconds: float = field(default_factory=lambda: env_float("ROBYN_SERVER_TTL_SWEEP_SECONDS", 60.0))


_tasks: set[asyncio.Task[None]] = set()


async def _settle_thread(ctx: ServerContext, thread_id: str, error: dict[str, str] | None) -> None:
    """Give a thread whose runs were recovered its status: busy while runs remain, else error/interrupted/idle."""
    thread = await ctx.storage.thread_get(thread_id)
    if thread is None:
        return
    fields: dict[str, Any] = {"updated_at": now()}
    state = None
    try:
        state = await ctx.runs.thread_state(thread)
    except Exception as exc:  # a graph that no longer loads must not stop recovery
        logger.warning("could not read the state of thread %s: %s", thread_id, exc)
    if state is not None:
        fields["values"] = serde.to_jsonable(state.values)
        fields["interrupts"] = serde.to_jsonable(
            {t.id: [{"id": i.id, "value": i.value} for i in t.interrupts] for t in state.tasks if t.interrupts}
        )
        fields["state_updated_at"] = fields["updated_at"]
    if await ctx.runs.inflight_runs(thread_id):
        fields["status"] = "busy"
    elif error is not None:
        fields["status"] = "error"
    elif state is not None and state.next:
        fields["status"] = "interrupted"
    else:
        fields["status"] = "idle"
    if error is not None:
        fields["error"] = error
    await ctx.storage.thread_update(thread_id, fields)


def _next_attempt(run: Record) -> dict[str, Any]:
    """The run's kwargs with `run_attempt` one higher (the `metadata` event of the next attempt says so)."""
    kwargs = dict(run.get("kwargs") or {})
    config = dict(kwargs.get("config") or {})
    config["metadata"] = {**(config.get("metadata") or {}), "run_attempt": run_attempt(run) + 1}
    kwargs["config"] = config
    return kwargs


async def recover_orphaned_runs(ctx: ServerContext, upkeep: Upkeep | None = None) -> dict[str, list[str]]:
    """Take over the runs of dead processes: a `running` one is resumed from its last checkpoint with its
    attempt increased (or marked `error` after `BG_JOB_MAX_RETRIES` attempts), a `pending` one is started
    when due. Threads with a due pending run and none running are started too (a lost wake-up)."""
    upkeep = upkeep or Upkeep()
    storage = ctx.storage
    me = storage.instance_id
    live = await live_instances(storage, upkeep.instance_timeout)
    failed: dict[str, dict[str, str]] = {}
    requeued: list[str] = []
    touched: set[str] = set()
    inflight = await storage.run_list_inflight()
    for run, owner in inflight:
        if owner in live or not await storage.run_claim(run["run_id"], owner, me):
            continue
        thread_id = run["thread_id"]
        touched.add(thread_id)
        if run["status"] != "running":
            requeued.append(run["run_id"])
            logger.warning("run %s was pending when its server stopped: queued again", run["run_id"])
        elif run_attempt(run) < ctx.runs.max_attempts:
            await storage.run_update(run["run_id"], {"status": "pending", "kwargs": _next_attempt(run),
                                                     "updated_at": now()})  # fmt: skip
            requeued.append(run["run_id"])
            logger.warning("run %s was running when its server stopped: resumed, attempt %d", run["run_id"],
                           run_attempt(run) + 1)  # fmt: skip
        else:
            await storage.run_update(run["run_id"], {"status": "error", "updated_at": now()})
            if (run.get("kwargs") or {}).get("temporary"):
                await storage.thread_delete(thread_id)
            else:
                failed[thread_id] = crash_error(run["run_id"], run_attempt(run))
            logger.warning("run %s was running when its server stopped: marked as error", run["run_id"])
    running_threads = {run["thread_id"] for run, _ in inflight if run["status"] == "running"} - touched
    waiting = {run["thread_id"] for run, _ in inflight if run["status"] == "pending"} - running_threads
    for thread_id in touched:
        await _settle_thread(ctx, thread_id, failed.get(thread_id))
    for thread_id in touched | waiting:
        await ctx.runs.kick(thread_id)
    return {"failed": sorted(failed), "requeued": requeued}


async def settle_busy_threads(ctx: ServerContext, page: int = 100) -> list[str]:
    """Threads left `busy` with no pending or running run anywhere go back to idle/interrupted."""
    storage = ctx.storage
    settled: list[str] = []
    inflight_threads = {run["thread_id"] for run, _ in await storage.run_list_inflight()}
    offset = 0
    while True:
        threads, _ = await storage.thread_search(
            ids=None, metadata=None, values=None, status="busy", limit=page, offset=offset,
            sort_by="created_at", sort_order="asc",
        )  # fmt: skip
        for thread in threads:
            tid = thread["thread_id"]
            if tid not in inflight_threads and not await ctx.runs.inflight_runs(tid):
                await _settle_thread(ctx, tid, None)
                settled.append(tid)
        if len(threads) < page:
            return settled
        offset += page - sum(1 for t in threads if t["thread_id"] in settled)


# ---------------------------------------------------------------------------------- TTL and prune
def parse_ttl(raw: Any) -> dict[str, Any]:
    """`{"strategy": "delete"|"keep_latest", "ttl": minutes}` (or a bare number of minutes), validated."""
    if isinstance(raw, bool):
        raise ValueError("ttl must be a number of minutes or {'strategy': ..., 'ttl': minutes}")
    if isinstance(raw, (int, float)):
        raw = {"ttl": raw}
    if not isinstance(raw, dict):
        raise ValueError("ttl must be a number of minutes or {'strategy': ..., 'ttl': minutes}")
    unknown = sorted(set(raw) - {"strategy", "ttl"})
    if unknown:
        raise ValueError(f"Unknown ttl field(s): {', '.join(unknown)}")
    strategy = raw.get("strategy") or "delete"
    if strategy not in TTL_STRATEGIES:
        raise ValueError(f"Invalid ttl strategy {strategy!r}: expected one of {', '.join(TTL_STRATEGIES)}")
    minutes = raw.get("ttl")
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes <= 0:
        raise ValueError("ttl.ttl must be a positive number of minutes")
    if minutes > MAX_TTL_MINUTES:
        raise ValueError(f"ttl.ttl must be at most {MAX_TTL_MINUTES} minutes")
    return {"strategy": strategy, "ttl_minutes": float(minutes)}


async def set_thread_ttl(ctx: ServerContext, thread_id: str, raw: Any, at: datetime | None = None) -> None:
    ttl = parse_ttl(raw)
    ttl["expires_at"] = (at or now()) + timedelta(minutes=ttl["ttl_minutes"])
    await ctx.storage.thread_set_ttl(thread_id, ttl)


async def delete_thread(ctx: ServerContext, thread_id: str) -> bool:
    """Cancel the thread's runs here, then delete it with its runs and checkpoints."""
    for run in await ctx.runs.inflight_runs(thread_id):
        await ctx.runs.cancel(run["run_id"], "interrupt")
    existed = await ctx.storage.thread_delete(thread_id)
    await ctx.runs.forget_thread(thread_id)
    return existed


async def prune_threads(ctx: ServerContext, thread_ids: list[str], strategy: str) -> int:
    """`delete` removes the threads; `keep_latest` keeps each thread and only its newest checkpoint(s)."""
    pruned = 0
    for thread_id in dict.fromkeys(thread_ids):
        if await ctx.storage.thread_get(thread_id) is None:
            continue
        if strategy == "delete":
            pruned += await delete_thread(ctx, thread_id)
        else:
            await keep_latest_checkpoints(ctx.storage.checkpointer, thread_id)
            pruned += 1
    return pruned


async def sweep_expired_threads(ctx: ServerContext) -> int:
    """Apply the TTL strategy of every thread whose TTL has passed; returns how many were handled."""
    handled = 0
    while True:
        due = await ctx.storage.thread_expired(now(), limit=100)
        if not due:
            return handled
        for thread_id, strategy in due:
            if strategy == "keep_latest":
                await prune_threads(ctx, [thread_id], "keep_latest")
                await ctx.storage.thread_set_ttl(thread_id, None)
            else:
                await delete_thread(ctx, thread_id)
                await ctx.storage.thread_set_ttl(thread_id, None)
            handled += 1


# ---------------------------------------------------------------------------------- the loop
async def recover_at_startup(ctx: ServerContext, upkeep: Upkeep | None = None) -> dict[str, list[str]]:
    """Register this process, recover what crashed processes left, and start the background loop."""
    upkeep = upkeep or Upkeep()
    storage = ctx.storage
    await storage.instance_beat(storage.instance_id, HOST, os.getpid(), now())
    report = await recover_orphaned_runs(ctx, upkeep)
    report["settled"] = await settle_busy_threads(ctx)
    task = asyncio.get_running_loop().create_task(_upkeep_loop(ctx, upkeep), name="robyn-server-upkeep")
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return report


async def _upkeep_loop(ctx: ServerContext, upkeep: Upkeep) -> None:
    storage = ctx.storage
    loop = asyncio.get_running_loop()
    next_sweep = loop.time()
    while True:
        await asyncio.sleep(upkeep.heartbeat_seconds)
        try:
            await storage.instance_beat(storage.instance_id, HOST, os.getpid(), now())
            await recover_orphaned_runs(ctx, upkeep)
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + upkeep.ttl_sweep_seconds
                await sweep_expired_threads(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away for a while; try again next beat
            logger.warning("background upkeep failed: %s: %s", type(exc).__name__, exc)


async def forget_this_instance(ctx: ServerContext) -> None:
    """On a clean stop: later processes may take over this process's queued runs at once."""
    for task in list(_tasks):
        task.cancel()
    await ctx.storage.instance_forget(ctx.storage.instance_id)
