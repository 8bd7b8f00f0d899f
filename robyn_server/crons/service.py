"""The rules of crons, as the reference applies them: validation, ownership (the `crons` auth resource, plus
`assistants.read` and `threads.read` for what a cron points at), and the stored shape.

A cron stores its run payload (the create body, assistant resolved, `config.configurable.cron_id` set) and
fires it on `schedule`: on its thread, or (no thread) on a fresh thread per run that is deleted afterwards
unless `on_run_completed` is `keep`. `user_id` records who created it; its runs execute as that user.
"""

from __future__ import annotations

import copy
from typing import Any

from langchain_core.utils.uuid import uuid7

from robyn_server.auth.authorize import SEARCH_ALL, authorize, filtered_search, visible
from robyn_server.auth.context import current_identity
from robyn_server.context import ServerContext
from robyn_server.crons import scheduler
from robyn_server.crons.schedule import next_run_date, validate_schedule, validate_timezone
from robyn_server.crons.schemas import CRON_FIELDS, CronCount, CronCreate, CronPatch, CronSearch, ThreadCronCreate
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, validate_uuid
from robyn_server.routes.assistants import resolve_assistant_ref
from robyn_server.routes.common import select_fields
from robyn_server.runs.manager import now
from robyn_server.storage.records import to_utc
from robyn_server.webhooks import check_url


def _thread_missing(thread_id: str) -> ApiError:
    return ApiError(
        404,
        f"Thread with ID '{thread_id}' not found. Please verify the ID is correct and the thread hasn't been "
        "deleted or expired.",
    )


async def _check_assistant(ctx: ServerContext, ref: str) -> dict[str, Any]:
    assistant = await resolve_assistant_ref(ctx, ref)
    if assistant is not None and (assistant.get("metadata") or {}).get("created_by") != "system":
        filters = await authorize(None, "assistants", "read", {"assistant_id": assistant["assistant_id"]})
        if not visible(assistant, filters):
            assistant = None
    if assistant is None or assistant["graph_id"] not in ctx.registry:
        raise ApiError(404, f"Assistant '{ref}' not found")
    return assistant


async def create_cron(ctx: ServerContext, req: ApiRequest, thread_id: str | None) -> dict[str, Any]:
    """POST /runs/crons (thread_id None: a fresh thread per run) and POST /threads/{id}/runs/crons."""
    body = req.body(CronCreate if thread_id is None else ThreadCronCreate)
    if body.webhook:
        await check_url(body.webhook)
    timezone = validate_timezone(body.timezone)
    cron_id = str(uuid7())
    payload: dict[str, Any] = copy.deepcopy({k: v for k, v in req.json().items() if v is not None})
    config = payload.setdefault("config", {}) if isinstance(payload.get("config"), dict) else {}
    payload["config"] = config
    configurable = config.setdefault("configurable", {}) if isinstance(config.get("configurable"), dict) else {}
    config["configurable"] = configurable
    configurable["cron_id"] = cron_id
    metadata = dict(body.metadata or {})
    end_time = to_utc(body.end_time) if body.end_time else None
    value = {"payload": payload, "schedule": body.schedule, "cron_id": cron_id, "thread_id": thread_id,
             "user_id": current_identity(), "end_time": end_time, "metadata": metadata}  # fmt: skip
    await authorize(req, "crons", "create", value)
    metadata = value["metadata"] if isinstance(value.get("metadata"), dict) else metadata
    validate_schedule(body.schedule)
    assistant = await _check_assistant(ctx, body.assistant_id)
    payload["assistant_id"] = assistant["assistant_id"]
    if thread_id is not None:
        filters = await authorize(None, "threads", "read", {"thread_id": thread_id, "metadata": metadata})
        if not visible(await ctx.storage.thread_get(thread_id), filters):
            raise _thread_missing(thread_id)
    created = now()
    cron = {
        "cron_id": cron_id,
        "assistant_id": assistant["assistant_id"],
        "thread_id": thread_id,
        "user_id": current_identity() or "",
        "end_time": end_time,
        "schedule": body.schedule,
        "timezone": timezone,
        "payload": payload,
        "next_run_date": next_run_date(body.schedule, created, timezone),
        "metadata": metadata,
        "on_run_completed": None if thread_id is not None else body.on_run_completed,
        "enabled": body.enabled,
        "created_at": created,
        "updated_at": created,
    }
    await ctx.storage.cron_put(cron)
    scheduler.wake()
    return cron


async def _visible_cron(
    ctx: ServerContext, req: ApiRequest, cron_id: str, action: str, value: dict[str, Any]
) -> dict[str, Any] | None:
    filters = await authorize(req, "crons", action, {"cron_id": cron_id, **value})
    cron = await ctx.storage.cron_get(cron_id)
    return cron if cron is not None and visible(cron, filters) else None


async def get_cron(ctx: ServerContext, req: ApiRequest) -> dict[str, Any]:
    cron_id = req.uuid_param("cron_id", "cron")
    cron = await _visible_cron(ctx, req, cron_id, "read", {})
    if cron is None:
        raise ApiError(404, "Not Found")
    return cron


async def delete_cron(ctx: ServerContext, req: ApiRequest) -> None:
    cron_id = req.uuid_param("cron_id", "cron")
    if await _visible_cron(ctx, req, cron_id, "delete", {}) is None or not await ctx.storage.cron_delete(cron_id):
        raise ApiError(404, "Not Found")


async def patch_cron(ctx: ServerContext, req: ApiRequest) -> dict[str, Any]:
    """Set the given fields; `metadata` merges, the run payload merges shallowly, a new schedule or time zone
    recomputes `next_run_date`, `end_time: null` clears the end."""
    cron_id = req.uuid_param("cron_id", "cron")
    raw = req.json()
    body = req.body(CronPatch)
    if not raw:
        raise ApiError(400, "Request body cannot be empty")
    timezone = validate_timezone(body.timezone)
    if body.webhook:
        await check_url(body.webhook)
    if body.schedule is not None:
        validate_schedule(body.schedule)
    value = {"schedule": body.schedule, "end_time": body.end_time, "enabled": body.enabled,
             "on_run_completed": body.on_run_completed, "payload": raw}  # fmt: skip
    if body.metadata is not None:
        value["metadata"] = dict(body.metadata)
    cron = await _visible_cron(ctx, req, cron_id, "update", value)
    if cron is None:
        raise ApiError(404, f"Cron '{cron_id}' not found")
    fields: dict[str, Any] = {"updated_at": now()}
    if timezone is not None:
        fields["timezone"] = timezone
    if body.schedule is not None or timezone is not None:
        schedule = body.schedule or cron["schedule"]
        fields["schedule"] = schedule
        fields["next_run_date"] = next_run_date(schedule, now(), timezone or cron.get("timezone"))
    if "end_time" in raw:
        fields["end_time"] = to_utc(body.end_time) if body.end_time else None
    if body.enabled is not None:
        fields["enabled"] = body.enabled
    if body.on_run_completed is not None:
        fields["on_run_completed"] = body.on_run_completed
    existing = cron.get("payload") or {}
    payload = {**existing, **copy.deepcopy(raw), "assistant_id": existing.get("assistant_id")}
    config = payload["config"] if isinstance(payload.get("config"), dict) else {}
    configurable = config["configurable"] if isinstance(config.get("configurable"), dict) else {}
    payload["config"] = {**config, "configurable": {**configurable, "cron_id": cron_id}}
    fields["payload"] = payload
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else None
    updated = await ctx.storage.cron_update(cron_id, fields, metadata)
    if updated is None:
        raise ApiError(404, f"Cron '{cron_id}' not found")
    scheduler.wake()
    return updated


async def _thread_filter(thread_id: str | None) -> dict[str, Any] | None:
    if thread_id:
        return await authorize(None, "threads", "read", {"thread_id": thread_id})
    return await authorize(None, "threads", "search", {})


async def _search(
    ctx: ServerContext, *, assistant_id: str | None, thread_id: str | None, enabled: bool | None,
    metadata: dict[str, Any] | None, limit: int, offset: int, sort_by: str, sort_order: str,
) -> tuple[list[dict[str, Any]], int]:  # fmt: skip
    """Crons the caller may see: the `crons.search` filter, and thread crons only on threads they may read."""
    value = {"assistant_id": assistant_id, "thread_id": thread_id, "limit": limit, "offset": offset,
             "metadata": metadata or {}}  # fmt: skip
    filters = await authorize(None, "crons", "search", value)
    thread_filters = await _thread_filter(thread_id)
    args = {"assistant_id": assistant_id, "thread_id": thread_id, "enabled": enabled,
            "sort_by": sort_by, "sort_order": sort_order}  # fmt: skip
    if not thread_filters:
        return await filtered_search(
            ctx.storage.cron_search, filters, metadata=metadata, limit=limit, offset=offset, **args
        )
    items, _ = await filtered_search(ctx.storage.cron_search, filters, metadata=metadata, limit=SEARCH_ALL,
                                     offset=0, **args)  # fmt: skip
    kept = []
    for cron in items:
        if cron.get("thread_id") is None or visible(await ctx.storage.thread_get(cron["thread_id"]), thread_filters):
            kept.append(cron)
    return kept[offset : offset + limit], len(kept)


async def search_crons(ctx: ServerContext, req: ApiRequest) -> tuple[list[dict[str, Any]], int, int]:
    body = req.body(CronSearch)
    assistant_id = validate_uuid(body.assistant_id, "assistant") if body.assistant_id else None
    thread_id = validate_uuid(body.thread_id, "thread") if body.thread_id else None
    items, total = await _search(
        ctx, assistant_id=assistant_id, thread_id=thread_id, enabled=body.enabled, metadata=body.metadata,
        limit=body.limit, offset=body.offset, sort_by=body.sort_by or "created_at",
        sort_order=(body.sort_order or "desc").lower(),
    )  # fmt: skip
    return select_fields(items, body.select, CRON_FIELDS), body.offset, total


async def count_crons(ctx: ServerContext, req: ApiRequest) -> int:
    body = req.body(CronCount)
    assistant_id = validate_uuid(body.assistant_id, "assistant") if body.assistant_id else None
    thread_id = validate_uuid(body.thread_id, "thread") if body.thread_id else None
    _, total = await _search(
        ctx, assistant_id=assistant_id, thread_id=thread_id, enabled=None, metadata=body.metadata,
        limit=0, offset=0, sort_by="created_at", sort_order="desc",
    )  # fmt: skip
    return total
