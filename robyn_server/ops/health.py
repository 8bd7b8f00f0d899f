"""Readiness: every dependency the server needs, checked now, each with its own answer.

`GET /ok` stays liveness (the process answers). `GET /ok?check_db=1` is readiness: the database answers a
query, Redis answers PING when `REDIS_URI` (or `REDIS_URL`) is set, and every graph of the config is loaded.
Each check has a deadline (`ROBYN_SERVER_READINESS_TIMEOUT_SECONDS`, default 2), so a hung dependency is
reported instead of hanging the probe.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from robyn_server.config import env_float
from robyn_server.storage.errors import first_line, unavailable_detail

_redis: dict[str, Any] = {}


def redis_url() -> str | None:
    return (os.environ.get("REDIS_URI") or os.environ.get("REDIS_URL") or "").strip() or None


def _timeout() -> float:
    return env_float("ROBYN_SERVER_READINESS_TIMEOUT_SECONDS", 2.0)


async def _database(storage: Any, deadline: float) -> tuple[dict[str, Any], str | None]:
    try:
        info = await asyncio.wait_for(storage.ping(), deadline)
    except TimeoutError:
        reason = f"no answer within {deadline:g}s"
        return {"ok": False, "error": reason}, f"Database unavailable, please retry: {reason}"
    except Exception as exc:
        return {"ok": False, "error": first_line(exc)}, unavailable_detail(exc)
    return {"ok": True, **info}, None


async def _redis_check(url: str, deadline: float) -> tuple[dict[str, Any], str | None]:
    from redis.asyncio import Redis

    client = _redis.get(url)
    if client is None:
        client = _redis[url] = Redis.from_url(url, socket_connect_timeout=deadline, socket_timeout=deadline)
    try:
        await asyncio.wait_for(client.ping(), deadline)
    except Exception as exc:
        reason = f"no answer within {deadline:g}s" if isinstance(exc, TimeoutError) else first_line(exc)
        return {"ok": False, "error": reason}, f"Redis unavailable: {reason}"
    return {"ok": True}, None


def _graphs(ctx: Any) -> tuple[dict[str, Any], str | None]:
    loaded = ctx.registry.graph_ids
    missing = [g.graph_id for g in ctx.config.graphs if g.graph_id not in loaded]
    if missing:
        return {"ok": False, "loaded": loaded, "missing": missing}, f"Graphs not loaded: {', '.join(missing)}"
    return {"ok": True, "loaded": loaded}, None


async def readiness(ctx: Any) -> tuple[dict[str, Any], str | None]:
    """The report, and the `detail` naming the first failing dependency (None when ready)."""
    timeout = _timeout()
    report: dict[str, Any] = {"ok": True, "services": {}}
    problems: list[str] = []
    report["database"], problem = await _database(ctx.storage, timeout)
    problems += [problem] if problem else []
    url = redis_url()
    if url is not None:
        report["redis"], problem = await _redis_check(url, timeout)
        problems += [problem] if problem else []
    report["graphs"], problem = _graphs(ctx)
    problems += [problem] if problem else []
    if problems:
        report["ok"] = False
        return report, "; ".join(problems)
    return report, None
