"""Runs: create (stream, wait, background, batch), list, get, delete, join, cancel; stateful and stateless."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote_plus

from robyn_server import serde
from robyn_server.auth.authorize import authorize, visible
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, StreamResponse, empty, validate, validate_uuid
from robyn_server.routes.common import select_fields
from robyn_server.runs.manager import INFLIGHT, RunHandle
from robyn_server.runs.service import create_run
from robyn_server.schemas import RunCreateStateful, RunCreateStateless, RunsCancel
from robyn_server.streaming import handoff
from robyn_server.streaming.event_log import ReaderProgress
from robyn_server.streaming.handoff import LogBody, WaitBody
from robyn_server.streaming.modes import STREAM_MODES
from robyn_server.streaming.sse import encode_frame

RUN_FIELDS = {
    "run_id", "thread_id", "assistant_id", "metadata", "status", "kwargs", "multitask_strategy", "created_at",
    "updated_at", "langsmith_session_name", "cancel_reason",
}  # fmt: skip
NO_RUNS_TO_CANCEL = (
    "No matching runs to cancel. Please verify the thread ID and run IDs are correct, "
    "and the runs haven't been deleted or completed."
)
MESSAGE_EVENTS = frozenset({"messages", "messages/metadata", "messages/partial", "messages/complete"})
# Streams that cancel their run on disconnect write heartbeats this often, because Robyn only notices a gone
# client when a write fails; a reader left un-pulled this long means the client went away.
DISCONNECT_PROBE_SECONDS = 1.0
DISCONNECT_STALL_SECONDS = 3.0
DISCONNECT_ERROR = {
    "error": "UserInterrupt",
    "message": "client disconnected from the run stream (on_disconnect=cancel)",
}


def _run_location(thread_id: str, run_id: str) -> str:
    return f"/threads/{thread_id}/runs/{run_id}"


def join_modes(raw: str | None) -> frozenset[str] | None:
    """`?stream_mode=` as one mode or a JSON list; the event names a join keeps (None keeps all)."""
    if raw is None or raw == "":
        return None
    try:
        parsed = serde.loads(raw) if raw.lstrip().startswith("[") else raw
    except Exception:
        raise ApiError(422, f"Invalid stream_mode: {raw!r}")
    modes = [parsed] if isinstance(parsed, str) else parsed
    if not isinstance(modes, list) or any(m not in STREAM_MODES for m in modes):
        raise ApiError(422, f"Invalid stream_mode: {raw!r}. Expected one or a list of {sorted(STREAM_MODES)}")
    keep = set(modes) | {"metadata", "error"}
    if "messages" in keep or "messages-tuple" in keep:
        keep |= MESSAGE_EVENTS
    return frozenset(keep)


def register(router: Router, ctx: ServerContext) -> None:
    settings = ctx.settings
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    def _cancel_later(handle: RunHandle) -> None:
        """Called from a response thread when a client goes away: cancel the run on the event loop."""
        loop = loop_holder.get("loop")
        if loop is None or handle.log.closed or handle.cancel_action is not None:
            return
        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(_cancel_gone(handle)))

    async def _cancel_gone(handle: RunHandle) -> None:
        if not handle.log.closed and handle.cancel_action is None:
            handle.cancel_action = "interrupt"
            await ctx.runs.cancel(
                handle.run_id, "interrupt", error=DISCONNECT_ERROR, reason=DISCONNECT_ERROR["message"]
            )

    def _watch(handle: RunHandle, progress: ReaderProgress) -> None:
        """Cancel the run once its reader stays un-pulled (the client is gone); re-check while it streams."""
        if progress.done or handle.log.closed:
            return
        if progress.stalled_for() > DISCONNECT_STALL_SECONDS:
            asyncio.ensure_future(_cancel_gone(handle))
            return
        asyncio.get_running_loop().call_later(DISCONNECT_PROBE_SECONDS, _watch, handle, progress)

    def sse(req: ApiRequest, handle: RunHandle, start: int, *, cancel_on_disconnect: bool,
            modes: frozenset[str] | None = None, headers: dict[str, str] | None = None) -> StreamResponse:  # fmt: skip
        loop = loop_holder.setdefault("loop", asyncio.get_running_loop())
        heartbeat, on_close, progress = settings.heartbeat_seconds, None, ReaderProgress()
        if cancel_on_disconnect:
            on_close = lambda: _cancel_later(handle)  # noqa: E731
            if not handoff.requested(req.raw.headers):  # the guard sees a client leave at once; Robyn does not
                heartbeat = min(heartbeat, DISCONNECT_PROBE_SECONDS)
                loop.call_later(DISCONNECT_PROBE_SECONDS, _watch, handle, progress)
        token, handle.token = (handle.token if start == 0 else None), None
        body = LogBody(handle.log, start, heartbeat_seconds=heartbeat, modes=modes, on_close=on_close,
                       progress=progress, token=token)  # fmt: skip
        return StreamResponse(body, headers=headers or {})  # frames only: no caller code runs in the body

    def wait_response(handle: RunHandle, location: str, content_location: str) -> StreamResponse:
        handle.release()
        return StreamResponse(
            WaitBody(handle.log, settings.heartbeat_seconds),  # newlines while the run works, then its result
            headers={"Location": location, "Content-Location": content_location},
            media_type="application/json",
        )

    # ------------------------------------------------------------------ stateful creates
    async def _stateful(req: ApiRequest) -> tuple[str, RunHandle, RunCreateStateful]:
        thread_id = req.uuid_param("thread_id", "thread")
        body = req.body(RunCreateStateful)
        handle = await create_run(ctx, body, thread_id=thread_id, request_id=req.header("x-request-id"))
        return thread_id, handle, body

    async def stream_run(req: ApiRequest) -> Any:
        """Create a run on a thread and stream its events."""
        thread_id, handle, body = await _stateful(req)
        loc = _run_location(thread_id, handle.run_id)
        return sse(req, handle, 0, cancel_on_disconnect=body.on_disconnect == "cancel",
                   headers={"Location": f"{loc}/stream", "Content-Location": loc})  # fmt: skip

    async def wait_run(req: ApiRequest) -> Any:
        """Create a run on a thread and wait for its final state."""
        thread_id, handle, _ = await _stateful(req)
        loc = _run_location(thread_id, handle.run_id)
        return wait_response(handle, f"{loc}/join", loc)

    async def background_run(req: ApiRequest) -> Any:
        """Create a run on a thread in the background."""
        thread_id, handle, _ = await _stateful(req)
        handle.release()
        return JsonResponse(handle.run, headers={"Content-Location": _run_location(thread_id, handle.run_id)})

    # ------------------------------------------------------------------ stateless creates
    async def _stateless(req: ApiRequest) -> RunHandle:
        body = req.body(RunCreateStateless)
        return await create_run(ctx, body, thread_id=None, request_id=req.header("x-request-id"))

    async def stream_stateless(req: ApiRequest) -> Any:
        """Create a run on a temporary thread and stream its events."""
        body = req.body(RunCreateStateless)
        handle = await create_run(ctx, body, thread_id=None, request_id=req.header("x-request-id"))
        loc = f"/runs/{handle.run_id}"
        return sse(req, handle, 0, cancel_on_disconnect=body.on_disconnect == "cancel",
                   headers={"Location": f"{loc}/stream", "Content-Location": loc})  # fmt: skip

    async def wait_stateless(req: ApiRequest) -> Any:
        """Create a run on a temporary thread and wait for its final state."""
        handle = await _stateless(req)
        loc = _run_location(handle.thread_id, handle.run_id)
        return wait_response(handle, f"{loc}/join", loc)

    async def background_stateless(req: ApiRequest) -> Any:
        """Create a run on a temporary thread in the background."""
        handle = await _stateless(req)
        handle.release()
        return JsonResponse(handle.run, headers={"Content-Location": f"/runs/{handle.run_id}"})

    async def batch_stateless(req: ApiRequest) -> Any:
        """Create several stateless background runs."""
        payload = req.json()
        if not isinstance(payload, list):
            raise ApiError(422, "Expected a JSON array of run creation payloads")
        bodies = [validate(RunCreateStateless, item) for item in payload]
        handles = [await create_run(ctx, body, thread_id=None) for body in bodies]
        for handle in handles:
            handle.release()
        return [h.run for h in handles]

    # ------------------------------------------------------------------ reads
    async def _thread_run(req: ApiRequest, action: str = "read") -> tuple[str, str, dict[str, Any] | None]:
        thread_id, run_id, run, _ = await _thread_run_visible(req, action)
        return thread_id, run_id, run

    async def _thread_run_visible(
        req: ApiRequest, action: str = "read"
    ) -> tuple[str, str, dict[str, Any] | None, bool]:
        """The run (None when missing or not the caller's) and whether the auth filters hide its thread."""
        thread_id = req.uuid_param("thread_id", "thread")
        run_id = req.uuid_param("run_id", "run")
        filters = await authorize(req, "threads", action, {"thread_id": thread_id, "run_id": run_id})
        run = await ctx.storage.run_get(run_id)
        if run is not None and run["thread_id"] != thread_id:
            run = None
        hidden = bool(filters) and not visible(await ctx.storage.thread_get(thread_id), filters)
        if hidden:
            run = None  # a run of another user's thread answers like one of a missing thread
        return thread_id, run_id, run, hidden

    async def list_runs(req: ApiRequest) -> Any:
        """Runs of a thread, newest first."""
        thread_id = req.uuid_param("thread_id", "thread")
        filters = await authorize(req, "threads", "search", {"thread_id": thread_id})
        if not visible(await ctx.storage.thread_get(thread_id), filters):
            raise ApiError(404, f"Thread with ID {thread_id} not found")
        status = req.query("status")
        limit, offset = req.query_int("limit", 10, 1, 1000), req.query_int("offset", 0)
        runs = await ctx.storage.run_list(thread_id, limit=limit, offset=offset, status=status or None)
        select = [unquote_plus(v) for v in req.raw.query_params.get_all("select")] if req.query("select") else None
        if select and len(select) == 1 and "," in select[0]:
            select = select[0].split(",")
        return select_fields(runs, select, RUN_FIELDS)

    async def get_run(req: ApiRequest) -> Any:
        """Get a run."""
        thread_id, _, run, hidden = await _thread_run_visible(req)
        if hidden:
            raise ApiError(404, f"Thread with ID {thread_id} not found")
        if run is None:
            raise ApiError(404, "Not Found")
        return run

    async def delete_run(req: ApiRequest) -> Any:
        """Delete a finished run."""
        _, run_id, run = await _thread_run(req, "delete")
        if run is None:
            raise ApiError(404, "Not Found")
        if run["status"] in INFLIGHT:
            raise ApiError(409, f"Run {run_id} is {run['status']}; cancel it before deleting it")
        await ctx.storage.run_delete(run_id)
        return empty(204)

    async def join_stream(req: ApiRequest) -> Any:
        """Join a run's event stream (replaying from `Last-Event-ID` on resumable runs)."""
        thread_id, run_id, run, hidden = await _thread_run_visible(req)
        modes = join_modes(req.query("stream_mode"))
        loc = _run_location(thread_id, run_id)
        headers = {"Location": f"{loc}/stream", "Content-Location": loc}
        if run is None:
            message = "404: Thread not found" if hidden else "404: Run not found"  # the reference's texts
            frame = encode_frame("error", serde.dumps({"error": "HTTPException", "message": message}))
            return StreamResponse(iter([frame]), headers=headers)
        handle = await ctx.runs.find(run)
        if handle is None or (handle.log.closed and not handle.log.resumable):
            return StreamResponse(iter(()), headers=headers)
        last_event_id = req.header("last-event-id")
        start = handle.log.start_index(last_event_id, replay=handle.log.resumable)
        return sse(req, handle, start, cancel_on_disconnect=req.query_bool("cancel_on_disconnect"), modes=modes,
                   headers=headers)  # fmt: skip

    async def join_run(req: ApiRequest) -> Any:
        """Wait for a run to finish and return its final state."""
        thread_id, run_id, run, hidden = await _thread_run_visible(req)
        if hidden:  # another user's thread: 404, as the reference (a missing run of one's own is a 200 `__error__`)
            raise ApiError(404, "Thread not found")
        loc = _run_location(thread_id, run_id)
        headers = {"Location": f"{loc}/join", "Content-Location": loc}
        if run is None:
            return JsonResponse(
                {"__error__": {"error": "HTTPException", "message": "404: Run not found"}}, headers=headers
            )
        handle = await ctx.runs.find(run)
        if handle is None:
            thread = await ctx.storage.thread_get(thread_id)
            return JsonResponse((thread or {}).get("values") or {}, headers=headers)
        return wait_response(handle, f"{loc}/join", loc)

    async def cancel_run(req: ApiRequest) -> Any:
        """Cancel a pending or running run (`action=interrupt|rollback`, `wait=1` to wait for it)."""
        thread_id, run_id, run = await _thread_run(req, "update")
        action = req.query("action", "interrupt") or "interrupt"
        if action not in ("interrupt", "rollback"):
            raise ApiError(422, "Invalid action: expected 'interrupt' or 'rollback'")
        if run is None or run["status"] not in INFLIGHT:
            raise ApiError(404, NO_RUNS_TO_CANCEL)
        handle = await ctx.runs.find(run) if req.query_bool("wait") else None
        reason = f"{action} requested via POST /threads/{{thread_id}}/runs/{{run_id}}/cancel"  # the reference's
        if not await ctx.runs.cancel(run_id, action, reason=reason):
            raise ApiError(404, NO_RUNS_TO_CANCEL)
        if handle is not None:
            loc = _run_location(thread_id, run_id)
            return wait_response(handle, f"{loc}/join", loc)
        return empty(202)

    async def cancel_runs(req: ApiRequest) -> Any:
        """Cancel runs by thread and ids, or every run with a status."""
        body = req.body(RunsCancel)
        action = req.query("action", "interrupt") or "interrupt"
        if action not in ("interrupt", "rollback"):
            raise ApiError(422, "Invalid action: expected 'interrupt' or 'rollback'")
        if body.status is not None:
            statuses = list(INFLIGHT) if body.status == "all" else [body.status]
            runs = await ctx.storage.run_list_by_status(statuses)
        elif body.thread_id and body.run_ids:
            thread_id = validate_uuid(body.thread_id, "thread")
            runs = [r for rid in body.run_ids if (r := await ctx.storage.run_get(validate_uuid(rid, "run")))]
            runs = [r for r in runs if r["thread_id"] == thread_id and r["status"] in INFLIGHT]
        else:
            raise ApiError(422, "Provide either 'status' or both 'thread_id' and 'run_ids'")
        filters = await authorize(req, "threads", "update", {"thread_id": body.thread_id, "run_ids": body.run_ids,
                                                             "status": body.status})  # fmt: skip
        if filters:
            runs = [r for r in runs if visible(await ctx.storage.thread_get(r["thread_id"]), filters)]
        reason = f"{action} requested via POST /runs/cancel"
        cancelled = [
            r for r in runs if r["status"] in INFLIGHT and await ctx.runs.cancel(r["run_id"], action, reason=reason)
        ]
        if not cancelled and body.status is None:
            raise ApiError(404, NO_RUNS_TO_CANCEL)
        return empty(204)

    tags = ["runs"]
    router.add("POST", "/threads/:thread_id/runs/stream", stream_run, tags=tags, body_model=RunCreateStateful)
    router.add("POST", "/threads/:thread_id/runs/wait", wait_run, tags=tags, body_model=RunCreateStateful)
    router.add("POST", "/threads/:thread_id/runs", background_run, tags=tags, body_model=RunCreateStateful)
    router.add("GET", "/threads/:thread_id/runs", list_runs, tags=tags)
    router.add("GET", "/threads/:thread_id/runs/:run_id", get_run, tags=tags)
    router.add("DELETE", "/threads/:thread_id/runs/:run_id", delete_run, tags=tags)
    router.add("GET", "/threads/:thread_id/runs/:run_id/stream", join_stream, tags=tags)
    router.add("GET", "/threads/:thread_id/runs/:run_id/join", join_run, tags=tags)
    router.add("POST", "/threads/:thread_id/runs/:run_id/cancel", cancel_run, tags=tags)
    router.add("POST", "/runs/stream", stream_stateless, tags=tags, body_model=RunCreateStateless)
    router.add("POST", "/runs/wait", wait_stateless, tags=tags, body_model=RunCreateStateless)
    router.add("POST", "/runs", background_stateless, tags=tags, body_model=RunCreateStateless)
    router.add("POST", "/runs/batch", batch_stateless, tags=tags)
    router.add("POST", "/runs/cancel", cancel_runs, tags=tags, body_model=RunsCancel)
