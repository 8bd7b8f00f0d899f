"""Threads: create, search, count, get, patch, delete, copy, state (read, update, at a checkpoint), history."""

from __future__ import annotations

from typing import Any

from langchain_core.utils.uuid import uuid7

from robyn_server.checkpoints import copy_thread_checkpoints
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, StreamResponse, empty, validate_uuid
from robyn_server.routes.common import pagination_headers, select_fields
from robyn_server.runs.manager import now
from robyn_server.runs.service import new_thread
from robyn_server.schemas import (
    ThreadCount,
    ThreadCreate,
    ThreadHistory,
    ThreadPatch,
    ThreadSearch,
    ThreadStateCheckpoint,
    ThreadStateUpdate,
)
from robyn_server.state import EMPTY_STATE, snapshot_to_state
from robyn_server.streaming.event_log import parse_event_id
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


def register(router: Router, ctx: ServerContext) -> None:
    async def get_thread_record(req: ApiRequest) -> dict[str, Any]:
        thread_id = req.uuid_param("thread_id", "thread")
        thread = await ctx.storage.thread_get(thread_id)
        if thread is None:
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
            raise ApiError(422, "Thread TTL is not supported by this server yet")
        if body.supersteps:
            raise ApiError(422, "Creating a thread from supersteps is not supported by this server yet")
        thread_id = validate_uuid(body.thread_id, "thread") if body.thread_id else str(uuid7())
        existing = await ctx.storage.thread_get(thread_id)
        if existing is not None:
            if body.if_exists == "do_nothing":
                return existing
            raise ApiError(409, f"Thread with ID {thread_id} already exists")
        thread = new_thread(thread_id, body.metadata)
        await ctx.storage.thread_put(thread)
        return thread

    async def search_threads(req: ApiRequest) -> Any:
        """Search threads by ids, metadata, values and status."""
        body = req.body(ThreadSearch)
        if body.extract:
            raise ApiError(422, "'extract' is not supported by this server yet")
        ids = [validate_uuid(i, "thread") for i in body.ids] if body.ids else None
        items, total = await ctx.storage.thread_search(
            ids=ids, metadata=body.metadata, values=body.values, status=body.status, limit=body.limit,
            offset=body.offset, sort_by=body.sort_by or "created_at", sort_order=body.sort_order or "desc",
        )  # fmt: skip
        headers = pagination_headers(body.offset, len(items), total)
        return JsonResponse(select_fields(items, body.select, THREAD_FIELDS), headers=headers)

    async def count_threads(req: ApiRequest) -> Any:
        """Count threads matching the filters."""
        body = req.body(ThreadCount)
        _, total = await ctx.storage.thread_search(
            ids=None, metadata=body.metadata, values=body.values, status=body.status, limit=0, offset=0,
            sort_by="created_at", sort_order="desc",
        )  # fmt: skip
        return total

    async def read_thread(req: ApiRequest) -> Any:
        """Get a thread."""
        return await get_thread_record(req)

    async def patch_thread(req: ApiRequest) -> Any:
        """Merge metadata into a thread."""
        thread = await get_thread_record(req)
        body = req.body(ThreadPatch)
        if body.ttl is not None:
            raise ApiError(422, "Thread TTL is not supported by this server yet")
        fields: dict[str, Any] = {"updated_at": now()}
        if body.metadata is not None:
            fields["metadata"] = {**(thread.get("metadata") or {}), **body.metadata}
        updated = await ctx.storage.thread_update(thread["thread_id"], fields)
        if (req.header("prefer") or "").strip().lower() == "return=minimal":
            return empty(204)
        return updated

    async def delete_thread(req: ApiRequest) -> Any:
        """Delete a thread, cancelling its runs and removing its checkpoints."""
        thread = await get_thread_record(req)
        for handle in ctx.runs.inflight(thread["thread_id"]):
            await ctx.runs.cancel(handle, "interrupt")
        await ctx.storage.thread_delete(thread["thread_id"])
        ctx.runs.forget_thread(thread["thread_id"])
        return empty(204)

    async def copy_thread(req: ApiRequest) -> Any:
        """Copy a thread with its checkpoints into a new thread."""
        source = await get_thread_record(req)
        copy = new_thread(str(uuid7()), dict(source.get("metadata") or {}))
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
        thread = await get_thread_record(req)
        body = req.body(ThreadStateUpdate)
        inflight = ctx.runs.inflight(thread["thread_id"])
        if inflight:
            raise ApiError(409, f"Thread {thread['thread_id']} has in-flight runs: {[h.run_id for h in inflight]}")
        checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else {}
        if body.checkpoint_id:
            checkpoint["checkpoint_id"] = body.checkpoint_id
        graph_id, config = graph_config(thread, checkpoint)
        async with ctx.registry.graph(graph_id, config) as graph:
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
        ctx.runs.publish_thread_event(
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
        async with ctx.registry.graph(graph_id, config) as graph:
            return [
                snapshot_to_state(s)
                async for s in graph.aget_state_history(config, limit=limit, before=before_config, filter=metadata)
            ]

    async def history_get(req: ApiRequest) -> Any:
        """Past states of the thread, newest first (`?limit=`, `?before=`)."""
        return await history(req, req.query_int("limit", 1), req.query("before"), None, None)

    async def history_post(req: ApiRequest) -> Any:
        """Past states of the thread, newest first, filtered by checkpoint metadata."""
        body = req.body(ThreadHistory)
        checkpoint = body.checkpoint.model_dump(exclude_none=True) if body.checkpoint else None
        return await history(req, body.limit, body.before, body.metadata, checkpoint)

    async def thread_stream(req: ApiRequest) -> Any:
        """Every event of every run on the thread from now on (or after `Last-Event-ID`); never ends."""
        thread = await get_thread_record(req)
        modes = thread_stream_modes(req.query("stream_modes") or req.query("stream_mode"))
        last_event_id = req.header("last-event-id")
        if last_event_id and last_event_id.strip() != "-" and parse_event_id(last_event_id) is None:
            raise ApiError(422, "Invalid last-event-id: must be a valid Redis stream ID")
        log = ctx.runs.thread_log(thread["thread_id"])
        start = log.start_index(last_event_id, replay=False)
        chunks = log.read(start, heartbeat_seconds=ctx.settings.heartbeat_seconds, modes=modes)
        return StreamResponse(chunks)

    tags = ["threads"]
    router.add("POST", "/threads", create_thread, tags=tags, body_model=ThreadCreate)
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
    router.add("GET", "/threads/:thread_id/stream", thread_stream, tags=tags)
    router.add("POST", "/threads/:thread_id/history", history_post, tags=tags, body_model=ThreadHistory)
