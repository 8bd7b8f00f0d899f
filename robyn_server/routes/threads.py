"""Threads: create, search, count, get, patch, delete, copy, state (read, update, at a checkpoint), history,
storage."""

from __future__ import annotations

from typing import Any

from langchain_core.utils.uuid import uuid7

from robyn_server.auth.authorize import authorize, visible
from robyn_server.checkpoints import copy_thread_checkpoints
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, StreamResponse, empty, validate_uuid
from robyn_server.routes.common import pagination_headers, select_fields
from robyn_server.routes.state_select import check_state_select, select_state
from robyn_server.routes.thread_exclude import search_threads_excluding
from robyn_server.runs.manager import now
from robyn_server.runs.recovery import parse_ttl, prune_threads, set_thread_ttl
from robyn_server.runs.service import new_thread
from robyn_server.schemas import (
    ThreadCount,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateCheckpoint,
    ThreadStateUpdate,
)
from robyn_server.state import EMPTY_STATE, snapshot_to_state
from robyn_server.storage.thread_storage import thread_storage
from robyn_server.store_config import thread_ttl_default
from robyn_server.streaming.event_log import parse_event_id
from robyn_server.streaming.handoff import LogBody
from robyn_server.streaming.modes import STREAM_MODES

THREAD_FIELDS = {
    "thread_id", "created_at", "updated_at", "state_updated_at", "metadata", "status", "config", "values", "error",
    "interrupts",
}  # fmt: skip


def _no_graph(thread_id: str) -> ApiError:
    return ApiError(
        400,
        f"Thread '{thread_id}' has no assigned graph ID. This usually occurs when no runs have been made on this "
        "particular thread. This operation requires a graph ID. Please ensure a run has been made for the thread "
        "or manually update the thread metadata (by setting the 'graph_id' field) before running this operation.",
    )


THREAD_STREAM_MODES = ("run_modes", "lifecycle", "state_update")
_RUN_EVENTS = STREAM_MODES | {"messages/metadata", "messages/partial", "messages/complete", "metadata", "error"}


def thread_stream_modes(raw: str | None) -> frozenset[str] | None:
    """`?stream_modes=run_modes,lifecycle,state_update` as the event names to keep (None keeps all)."""
    if not raw:
        return None
    requested = [m.strip() for m in raw.split(",") if m.strip()]
    unknown = [m for m in requested if m not in THREAD_STREAM_MODES]
    if unknown:
        raise ApiError(422, f"Invalid stream_modes: {unknown}. Expected any of {list(THREAD_STREAM_MODES)}")
    keep: set[str] = set()
    if "run_modes" in requested:
        keep |= _RUN_EVENTS
    if "lifecycle" in requested:
        keep.add("metadata")
    if "state_update" in requested:
        keep.add("state_update")
    return frozenset(keep)


def _check_ttl(raw: Any) -> None:
    try:
        parse_ttl(raw)
    except ValueError as exc:
        raise ApiError(422, str(exc))


def register(router: Router, ctx: ServerContext) -> None:
    async def get_thread_record(req: ApiRequest, action: str = "read", **value: Any) -> dict[str, Any]:
        thread_id = req.uuid_param("thread_id", "thread")
        filters = await authorize(req, "threads", action, {"thread_id": thread_id, **value})
        thread = await ctx.storage.thread_get(thread_id)
        if thread is None or not visible(thread, filters):  # another user's thread: 404 as if missing
            raise ApiError(404, f"Thread with ID {thread_id} not found")
        return thread

    def graph_config(thread: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        graph_id = (thread.get("metadata") or {}).get("graph_id")
        if not graph_id:
            raise _no_graph(thread["thread_id"])
        if graph_id not in ctx.registry:
            raise ApiError(404, f"Graph '{graph_id}' of thread {thread['thread_id']} is not served here")
        configurable = {"thread_id": thread["thread_id"], "graph_id": graph_id, "checkpoint_ns": ""}
        if checkpoint:
            configurable.update({k: v for k, v in checkpoint.items() if v is not None and k != "thread_id"})
        return graph_id, {"configurable": configurable}

    async def create_thread(req: ApiRequest) -> Any:
        """Create a thread."""
        body = req.body(ThreadCreate)
        if body.ttl is not None:
            _check_ttl(body.ttl)
        if body.supersteps:
            raise ApiError(422, "Creating a thread from supersteps is not supported by this server yet")
        thread_id = validate_uuid(body.thread_id, "thread") if body.thread_id else str(uuid7())
        value = {"thread_id": thread_id, "metadata": dict(body.metadata or {}), "if_exists": body.if_exists,
                 "ttl": body.ttl}  # fmt: skip
        filters = await authorize(req, "threads", "create", value)
        existing = await ctx.storage.thread_get(thread_id)
        if existing is not None:
            if not visible(existing, filters):  # another user's: a 409 would confirm that the id exists
                raise ApiError(403, "Forbidden: choose another thread ID")
            if body.if_exists == "do_nothing":
                return existing
            raise ApiError(409, f"Thread with ID {thread_id} already exists")
        thread = new_thread(thread_id, value["metadata"])
        await ctx.storage.thread_put(thread)
        ttl = body.ttl if body.ttl is not None else thread_ttl_default(ctx.config)  # checkpointer.ttl
        if ttl is not None:
            await set_thread_ttl(ctx, thread_id, ttl)
        return thread

    async def search_threads(req: ApiRequest) -> Any:
        """Search threads by ids, metadata, values and status."""
        body = req.body(ThreadSearch)
        if body.extract:
            raise ApiError(422, "'extract' is not supported by this server yet")
        ids = [validate_uuid(i, "thread") for i in body.ids] if body.ids else None
        value = {"metadata": body.metadata, "values": body.values, "status": body.status, "limit": body.limit,
                 "offset": body.offset}  # fmt: skip
        filters = await authorize(req, "threads", "search", value)
        items, total = await search_threads_excluding(
            ctx.storage.thread_search, filters, body.exclude_metadata, ids=ids, metadata=body.metadata,
            values=body.values,
            status=body.status, limit=body.limit,
            offset=body.offset, sort_by=body.sort_by or "created_at", sort_order=body.sort_order or "desc",
        )  # fmt: skip
        headers = pagination_headers(body.offset, len(items), total)
        return JsonResponse(select_fields(items, body.select, THREAD_FIELDS), headers=headers)

    async def count_threads(req: ApiRequest) -> Any:
        """Count threads matching the filters."""
        body = req.body(ThreadCount)
        value = {"metadata": body.metadata, "values": body.values, "status": body.status, "limit": 0, "offset": 0}
        filters = await authorize(req, "threads", "search", value)
        _, total = await search_threads_excluding(
            ctx.storage.thread_search, filters, body.exclude_metadata, ids=None, metadata=body.metadata,
            values=body.values,
            status=body.status, limit=0, offset=0,
            sort_by="created_at", sort_order="desc",
        )  # fmt: skip
        return total

    async def read_thread(req: ApiRequest) -> Any:
        """Get a thread (`?include=ttl` adds its `ttl`: strategy, minutes and expiry, or null)."""
        thread = await get_thread_record(req)
        include = {part.strip() for part in (req.query("include") or "").split(",")}
        if "ttl" in include:
            ttl = await ctx.storage.thread_get_ttl(thread["thread_id"])
            thread = {**thread, "ttl": ttl}
        return thread

    async def patch_thread(req: ApiRequest) -> Any:
        """Merge metadata into a thread."""
        body = req.body(ThreadPatch)
        thread = await get_thread_record(req, "update", metadata=body.metadata)
        if body.ttl is not None:
            _check_ttl(body.ttl)
            await set_thread_ttl(ctx, thread["thread_id"], body.ttl)
        fields: dict[str, Any] = {"updated_at": now()}
        if body.metadata is not None:  # as changed in place by the auth handler (which may stamp `owner`)
            # merged in storage, atomically: concurrent PATCHes of different keys must not lose each other's
            updated = await ctx.storage.thread_merge_metadata(thread["thread_id"], body.metadata, fields)
        else:
            updated = await ctx.storage.thread_update(thread["thread_id"], fields)
        if updated is None:  # deleted since it was read
            raise ApiError(404, f"Thread with ID {thread['thread_id']} not found")
        if (req.header("prefer") or "").strip().lower() == "return=minimal":
            return empty(204)
        return updated

    async def delete_thread(req: ApiRequest) -> Any:
        """Delete a thread, cancelling its runs and removing its checkpoints."""
        thread = await get_thread_record(req, "delete")
        for run in await ctx.runs.inflight_runs(thread["thread_id"]):
            await ctx.runs.cancel(run["run_id"], "interrupt")
        await ctx.storage.thread_delete(thread["thread_id"])
        await ctx.runs.forget_thread(thread["thread_id"])
        return empty(204)

    async def copy_thread(req: ApiRequest) -> Any:
        """Copy a thread with its checkpoints into a new thread."""
        source = await get_thread_record(req)
        copy_value = {"thread_id": str(uuid7()), "metadata": dict(source.get("metadata") or {})}
        await authorize(req, "threads", "create", copy_value)
        copy = new_thread(copy_value["thread_id"], copy_value["metadata"])
        await ctx.storage.thread_put(copy)
        await copy_thread_checkpoints(ctx.storage.checkpointer, source["thread_id"], copy["thread_id"])
        if source.get("values") is not None:
            copy = await ctx.storage.thread_update(copy["thread_id"], {"values": source["values"]}) or copy
        return copy

    async def get_state(req: ApiRequest, checkpoint: dict[str, Any] | None = None) -> Any:
        thread = await get_thread_record(req)
        if not (thread.get("metadata") or {}).get("graph_id"):
            return dict(EMPTY_STATE)
        graph_id, config = graph_config(thread, checkpoint)
        async with ctx.registry.graph(graph_id, config) as graph:
            snapshot = await graph.aget_state(config, subgraphs=req.query_bool("subgraphs"))
        return snapshot_to_state(snapshot)

    async def read_state(req: ApiRequest) -> Any:
        """The thread's current state."""
        return await get_state(req)

    async def read_state_at(req: ApiRequest) -> Any:
        """The thread's state at a checkpoint."""
        return await get_state(req, {"checkpoint_id": req.path_params["checkpoint_id"]})

    async def read_state_checkpoint(req: ApiRequest) -> Any:
        """The thread's state at a checkpoint given in the body."""
        body = req.body(ThreadStateCheckpoint)
        return await get_state(req, body.checkpoint.model_dump(exclude_none=True))

    async def update_state(req: ApiRequest) -> Any:
        """Write values into the thread's state as a new checkpoint."""
        thread = await get_thread_record(req, "update")
        body = req.body(ThreadStateUpdate)
        inflight = await ctx.runs.inflight_runs(thread["thread_id"])
        if inflight:
            raise ApiError(409, f"Thread {thread['thread_id']} has in-flight runs: {[r['run_id'] for r in inflight]}")
        checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else {}
        if body.checkpoint_id:
            checkpoint["checkpoint_id"] = body.checkpoint_id
        graph_id, config = graph_config(thread, checkpoint)
        async with ctx.registry.graph(graph_id, config, access="threads.update") as graph:
            next_config = await graph.aupdate_state(config, body.values, as_node=body.as_node)
            snapshot = await graph.aget_state({"configurable": {"thread_id": thread["thread_id"]}})
        stamp = now()
        await ctx.storage.thread_update(
            thread["thread_id"],
            {
                "values": snapshot_to_state(snapshot)["values"],
                "updated_at": stamp,
                "state_updated_at": stamp,
                "status": "interrupted" if snapshot.next else "idle",
            },
        )
        conf = next_config["configurable"]
        ref = {
            "thread_id": conf["thread_id"],
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
            "checkpoint_id": conf["checkpoint_id"],
        }
        await ctx.runs.publish_thread_event(
            thread["thread_id"], "state_update", {"checkpoint": ref, "values": snapshot_to_state(snapshot)["values"]}
        )
        return {"checkpoint": ref, "configurable": dict(ref), "checkpoint_id": conf["checkpoint_id"]}

    async def history(req: ApiRequest, limit: int, before: Any, metadata: dict[str, Any] | None,
                      checkpoint: dict[str, Any] | None) -> Any:  # fmt: skip
        thread = await get_thread_record(req)
        if not (thread.get("metadata") or {}).get("graph_id"):
            return []
        graph_id, config = graph_config(thread, checkpoint)
        before_config = None
        if isinstance(before, str):
            before_config = {"configurable": {"checkpoint_id": before}}
        elif isinstance(before, dict):
            before_config = {"configurable": before.get("configurable", before)}
            if not isinstance(before_config["configurable"], dict) or not isinstance(
                before_config["configurable"].get("checkpoint_id"), str
            ):
                raise ApiError(422, "'before' must be a checkpoint id or {'configurable': {'checkpoint_id': ...}}")
        async with ctx.registry.graph(graph_id, config) as graph:
            return [
                snapshot_to_state(s)
                async for s in graph.aget_state_history(config, limit=limit, before=before_config, filter=metadata)
            ]

    async def history_get(req: ApiRequest) -> Any:
        """Past states of the thread, newest first (`?limit=`, `?before=`)."""
        return await history(req, req.query_int("limit", 1, 1, 1000), req.query("before"), None, None)

    async def history_post(req: ApiRequest) -> Any:
        """Past states of the thread, newest first, filtered by checkpoint metadata."""
        body = req.body(ThreadHistory)
        select = check_state_select(body.select)
        checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else None
        return [select_state(s, select) for s in await history(req, body.limit, body.before, body.metadata, checkpoint)]

    async def storage(req: ApiRequest) -> Any:
        """Bytes the thread's checkpoints occupy: checkpoints, channel values (per channel), pending writes."""
        thread = await get_thread_record(req)
        report = await thread_storage(ctx.storage.checkpointer, thread["thread_id"])
        if report is None:
            raise ApiError(501, "Checkpoint storage is only reported for the built-in checkpointers.")
        return {"thread_id": thread["thread_id"], **report}

    async def thread_stream(req: ApiRequest) -> Any:
        """Every event of every run on the thread from now on (or after `Last-Event-ID`); never ends."""
        thread = await get_thread_record(req)
        modes = thread_stream_modes(req.query("stream_modes") or req.query("stream_mode"))
        last_event_id = req.header("last-event-id")
        if last_event_id and last_event_id.strip() != "-" and parse_event_id(last_event_id) is None:
            raise ApiError(422, "Invalid last-event-id: must be a valid Redis stream ID")
        log = await ctx.runs.thread_log(thread["thread_id"])
        start = log.start_index(last_event_id, replay=False)
        return StreamResponse(LogBody(log, start, heartbeat_seconds=ctx.settings.heartbeat_seconds, modes=modes))

    async def prune(req: ApiRequest) -> Any:
        """Delete threads (`delete`) or drop all but their latest checkpoint (`keep_latest`)."""
        body = req.body(ThreadPrune)
        thread_ids = [validate_uuid(t, "thread") for t in body.thread_ids]
        filters = await authorize(req, "threads", "delete", {"thread_ids": thread_ids})
        if filters:
            thread_ids = [t for t in thread_ids if visible(await ctx.storage.thread_get(t), filters)]
        return {"pruned_count": await prune_threads(ctx, thread_ids, body.strategy)}

    tags = ["threads"]
    router.add("POST", "/threads", create_thread, tags=tags, body_model=ThreadCreate)
    router.add("POST", "/threads/prune", prune, tags=tags, body_model=ThreadPrune)
    router.add("POST", "/threads/search", search_threads, tags=tags, body_model=ThreadSearch)
    router.add("POST", "/threads/count", count_threads, tags=tags, body_model=ThreadCount)
    router.add("GET", "/threads/:thread_id", read_thread, tags=tags)
    router.add("PATCH", "/threads/:thread_id", patch_thread, tags=tags, body_model=ThreadPatch)
    router.add("DELETE", "/threads/:thread_id", delete_thread, tags=tags)
    router.add("POST", "/threads/:thread_id/copy", copy_thread, tags=tags)
    router.add("GET", "/threads/:thread_id/state", read_state, tags=tags)
    router.add("POST", "/threads/:thread_id/state", update_state, tags=tags, body_model=ThreadStateUpdate)
    router.add("GET", "/threads/:thread_id/state/:checkpoint_id", read_state_at, tags=tags)
    router.add(
        "POST", "/threads/:thread_id/state/checkpoint", read_state_checkpoint, tags=tags,
        body_model=ThreadStateCheckpoint,
    )  # fmt: skip
    router.add("GET", "/threads/:thread_id/history", history_get, tags=tags)
    router.add("GET", "/threads/:thread_id/storage", storage, tags=tags)
    router.add("GET", "/threads/:thread_id/stream", thread_stream, tags=tags)
    router.add("POST", "/threads/:thread_id/history", history_post, tags=tags, body_model=ThreadHistory)
