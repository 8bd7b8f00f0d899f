"""The cron scheduler: one task per server process that fires due crons through `create_run`.

Every process runs one; the storage claim (`Storage.cron_claim_due`) advances a cron's `next_run_date` in the
same transaction that selects it, so each due date fires exactly once however many processes share the
database. The task sleeps until the earliest `next_run_date`, but at most `CRON_SCHEDULER_SLEEP_TIME` seconds
(default 5), so crons that other processes create or change are noticed; crons made or patched in this process
wake it at once. A run that cannot be created (assistant or thread gone, auth refused) is logged and skipped;
the cron keeps its schedule.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from datetime import datetime
from typing import Any

from robyn_server.auth.authorize import auth_enabled
from robyn_server.auth.context import AuthUser, reset_current_user, set_current_user
from robyn_server.auth.users import ProxyUser
from robyn_server.config import ConfigError, env_float, env_int
from robyn_server.context import ServerContext
from robyn_server.crons.schedule import next_run_date
from robyn_server.errors import ApiError
from robyn_server.http import validate
from robyn_server.runs.manager import now
from robyn_server.schemas import RunCreateStateful, RunCreateStateless
from robyn_server.storage.base import Record

logger = logging.getLogger("robyn_server.crons")

_CRON_ONLY_KEYS = frozenset({"schedule", "timezone", "end_time", "enabled", "on_run_completed"})
_state: dict[str, Any] = {"wake": None, "task": None}


def settings() -> tuple[float, int]:
    """`CRON_SCHEDULER_SLEEP_TIME` (the longest sleep, seconds) and `CRON_SCHEDULER_BATCH_SIZE` (crons claimed
    at once); read at start-up, where a malformed value stops the server."""
    cap = env_float("CRON_SCHEDULER_SLEEP_TIME", 5.0)
    batch = env_int("CRON_SCHEDULER_BATCH_SIZE", 100)
    if cap <= 0 or batch <= 0:
        raise ConfigError("CRON_SCHEDULER_SLEEP_TIME and CRON_SCHEDULER_BATCH_SIZE must be positive")
    return cap, batch


def wake() -> None:
    """Re-check the schedule now (a cron was created or changed in this process)."""
    event = _state["wake"]
    if event is not None:
        event.set()


def _next_after(cron: Record, at: datetime) -> datetime:
    return next_run_date(cron["schedule"], at, cron.get("timezone"))


def run_body(cron: Record) -> RunCreateStateless:
    """The run-create body a firing of `cron` makes: its payload, cron metadata under the payload's."""
    payload = copy.deepcopy(cron.get("payload") or {})
    body = {k: v for k, v in payload.items() if k not in _CRON_ONLY_KEYS and v is not None}
    body["assistant_id"] = cron["assistant_id"]
    body["metadata"] = {**(cron.get("metadata") or {}), **(body.get("metadata") or {})}
    config = body.get("config") or {}
    if body.get("context") and isinstance(config.get("configurable"), dict):
        # create_run refuses configurable next to context; the cron id only lives in configurable
        config["configurable"].pop("cron_id", None)
        if not config["configurable"]:
            config.pop("configurable")
    if cron.get("thread_id"):
        return validate(RunCreateStateful, body)
    body["on_completion"] = "keep" if cron.get("on_run_completed") == "keep" else "delete"
    return validate(RunCreateStateless, body)


def _owner(cron: Record) -> AuthUser | None:
    """The cron's creator, as the identity its runs execute under (no token: none is stored)."""
    user_id = cron.get("user_id")
    if not auth_enabled() or not user_id:
        return None
    return AuthUser(user_id, (), ProxyUser({"identity": user_id}), None, {}, uuid.uuid4().hex)


async def fire(ctx: ServerContext, cron: Record) -> str | None:
    """Create the run of one due cron as its owner; returns the run id (None when it could not be made)."""
    from robyn_server.runs.service import create_run

    token = set_current_user(_owner(cron))
    try:
        handle = await create_run(ctx, run_body(cron), thread_id=cron.get("thread_id"))
        handle.release()  # nothing streams a cron's run from here
        return handle.run_id
    except ApiError as exc:
        logger.warning("cron %s: run not created: %s %s", cron["cron_id"], exc.status_code, exc.detail)
    except Exception:
        logger.exception("cron %s: run not created", cron["cron_id"])
    finally:
        reset_current_user(token)
    return None


async def tick(ctx: ServerContext, batch: int) -> int:
    """Claim and fire what is due now; returns how many fired."""
    due = await ctx.storage.cron_claim_due(now(), _next_after, limit=batch)
    for cron in due:
        await fire(ctx, cron)
    return len(due)


async def _loop(ctx: ServerContext, event: asyncio.Event, cap: float, batch: int) -> None:
    while True:
        event.clear()
        delay = cap
        try:
            if await tick(ctx, batch) >= batch:
                continue  # more may be due
            alarm = await ctx.storage.cron_next_due(now())
            if alarm is not None:
                delay = min(delay, max(0.0, (alarm - now()).total_seconds()) + 0.005)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away for a while; try again later
            logger.warning("cron scheduler: %s: %s", type(exc).__name__, exc)
        try:
            await asyncio.wait_for(event.wait(), timeout=delay)
        except TimeoutError:
            pass


def start(ctx: ServerContext) -> asyncio.Task[None]:
    """Start this process's scheduler on the running loop (once)."""
    task = _state["task"]
    if task is None or task.done():
        event = _state["wake"] = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = _state["task"] = loop.create_task(_loop(ctx, event, *settings()), name="robyn-server-crons")
    return task


async def stop() -> None:
    task = _state["task"]
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    _state["task"] = None
