"""Creating runs the way the reference does: resolve assistant and thread, apply the multitask strategy,
merge config/context/metadata (assistant, then thread, then run), store the run and hand it to the manager."""

from __future__ import annotations

import time
import uuid
from typing import Any

import langgraph.version
from langchain_core.utils.uuid import uuid7

from robyn_server import __version__, limits
from robyn_server.auth.authorize import visible
from robyn_server.auth.context import current_identity, get_current_user, user_config
from robyn_server.auth.runs import authorize_run
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.ops import tracing
from robyn_server.ops.requests import current_request_id
from robyn_server.routes.assistants import resolve_assistant_ref
from robyn_server.run_headers import run_headers
from robyn_server.runs import credentials
from robyn_server.runs.manager import INFLIGHT, RunHandle, now
from robyn_server.schemas import RunCreateStateful, RunCreateStateless
from robyn_server.storage.base import RunLimitReached
from robyn_server.streaming.modes import normalize_stream_mode
from robyn_server.webhooks import check_url as check_webhook_url

BUSY_DETAIL = "Thread is already running a task. Wait for it to finish or choose a different multitask strategy."
NOT_FOUND_DETAIL = "Thread or assistant not found."
# Keys the server owns in a thread's metadata; they are not copied from thread to run metadata.
_SERVER_METADATA = ("graph_id", "assistant_id")


def new_thread(thread_id: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    created = now()
    return {
        "thread_id": thread_id,
        "created_at": created,
        "updated_at": created,
        "state_updated_at": created,
        "metadata": metadata or {},
        "status": "idle",
        "config": {},
        "values": None,
    }


def _run_config(
    assistant: dict[str, Any],
    body: RunCreateStateless,
    *,
    run_id: str,
    thread_id: str,
    metadata: dict[str, Any],
    request_id: str,
    api_url: str,
) -> dict[str, Any]:
    assistant_config = assistant.get("config") or {}
    request_config = body.config.model_dump(exclude_none=True) if body.config else {}
    config = {**assistant_config, **request_config}
    configurable = {**(assistant_config.get("configurable") or {}), **(request_config.get("configurable") or {})}
    configurable.update(run_headers())  # http.configurable_headers of this request
    configurable.update(
        {
            "langgraph_auth_user": None,
            "langgraph_auth_user_id": "",
            "langgraph_auth_permissions": [],
            "langgraph_request_id": request_id,
            "__request_start_time_ms__": int(time.time() * 1000),
            "__after_seconds__": int(body.after_seconds or 0),
            "run_id": run_id,
            "thread_id": thread_id,
            "graph_id": assistant["graph_id"],
            "assistant_id": assistant["assistant_id"],
            "user_id": "",
        }
    )
    user = get_current_user()
    configurable.update(user_config(user))  # the caller and its permissions
    credentials.hold(configurable, user.token if user else None)  # tokens: never stored, added at execution
    checkpoint = getattr(body, "checkpoint", None)
    if checkpoint is not None:
        configurable.update(checkpoint.model_dump(exclude_none=True, exclude={"thread_id"}))
    checkpoint_id = getattr(body, "checkpoint_id", None)
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    config["configurable"] = configurable
    config["metadata"] = {
        **metadata,
        "run_attempt": 1,
        "langgraph_version": langgraph.version.__version__,
        "langgraph_api_version": __version__,
        "langgraph_plan": "self-hosted",
        "langgraph_host": "self-hosted",
        "langgraph_api_url": api_url,
        "thread_id": thread_id,
        "run_id": run_id,
    }
    return config


def _thread_config(assistant: dict[str, Any], thread: dict[str, Any], body: RunCreateStateless) -> dict[str, Any]:
    """The thread's `config` once a run starts on it, as the reference keeps it: the assistant's config, the
    thread's, then the run's top-level keys (tags, recursion_limit...), with `configurable` only the assistant's
    and the thread's (the run's own configurable, which may carry request headers or tokens, is not kept)."""
    assistant_config = assistant.get("config") or {}
    previous = thread.get("config") or {}
    request = body.config.model_dump(exclude_none=True) if body.config else {}
    configurable = {**(assistant_config.get("configurable") or {}), **(previous.get("configurable") or {})}
    return {**assistant_config, **previous, **request, "configurable": configurable}


async def create_run(
    ctx: ServerContext,
    body: RunCreateStateless,
    *,
    thread_id: str | None,
    request_id: str | None = None,
) -> RunHandle:
    """Validate and store a new run, then queue it. `thread_id=None` makes a stateless run."""
    if body.context and body.config is not None and body.config.configurable:
        raise ApiError(
            400,
            "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced "
            "in LangGraph 0.6.0 and is the long term planned replacement for configurable.",
        )
    await ctx.runs.bus.check()  # with Redis away a run could not stream: 503 before anything is stored
    stateless = thread_id is None
    if stateless and body.command is not None and body.command.resume is not None:
        raise ApiError(400, "You must provide a thread_id when resuming.")
    if body.webhook:
        await check_webhook_url(body.webhook)  # the URL policy (webhooks.py), before anything is stored
    assistant = await resolve_assistant_ref(ctx, body.assistant_id)
    if assistant is None or assistant["graph_id"] not in ctx.registry:
        raise ApiError(404, NOT_FOUND_DETAIL)
    run_auth = await authorize_run(body, assistant, None if stateless else thread_id)
    identity = current_identity()
    run_limits = limits.current()
    await run_limits.check_run_creation(ctx.storage, identity)  # 429 before anything is stored

    temporary = False
    created_thread = None  # a thread to create, stored with the run in one step (and not at all without it)
    if stateless:
        thread_id = str(uuid7())
        thread = created_thread = new_thread(thread_id, run_auth.thread_metadata)
        temporary = body.on_completion == "delete"
    else:
        assert thread_id is not None
        thread = await ctx.storage.thread_get(thread_id)
        if thread is not None and not visible(thread, run_auth.filters):
            raise ApiError(404, NOT_FOUND_DETAIL)
        if thread is None:
            if isinstance(body, RunCreateStateful) and body.if_not_exists == "create":
                thread = created_thread = new_thread(thread_id, run_auth.thread_metadata)
            else:
                raise ApiError(404, NOT_FOUND_DETAIL)

    strategy = body.multitask_strategy if isinstance(body, RunCreateStateful) else "enqueue"

    run_id = str(uuid7())
    thread_metadata = {k: v for k, v in (thread.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    metadata = {
        **(assistant.get("metadata") or {}),
        **thread_metadata,
        **run_auth.metadata,
        "graph_id": assistant["graph_id"],
        "assistant_id": assistant["assistant_id"],
    }
    stream_mode = normalize_stream_mode(body.stream_mode)
    config = _run_config(
        assistant,
        body,
        run_id=run_id,
        thread_id=thread_id,
        metadata=metadata,
        request_id=current_request_id() or request_id or str(uuid.uuid4()),  # the id echoed to the caller
        api_url=ctx.api_url,
    )
    durability = body.durability or ("sync" if body.checkpoint_during is False else None)
    context = {**(assistant.get("context") or {}), **(body.context or {})} if body.context else {}
    created = now()
    run = {
        "run_id": run_id,
        "thread_id": thread_id,
        "assistant_id": assistant["assistant_id"],
        "metadata": metadata,
        "status": "pending",
        "kwargs": {
            "input": body.input,
            "command": body.command.model_dump(exclude_none=True) if body.command else None,
            "config": config,
            "context": context,
            "stream_mode": stream_mode,
            "interrupt_before": body.interrupt_before,
            "interrupt_after": body.interrupt_after,
            "webhook": body.webhook,
            "feedback_keys": None,
            "temporary": temporary,
            "subgraphs": body.stream_subgraphs,
            "resumable": body.stream_resumable,
            "checkpoint_during": body.checkpoint_during if body.checkpoint_during is not None else True,
            "durability": durability or "async",
        },
        "multitask_strategy": strategy,
        "created_at": created,
        "updated_at": created,
        "langsmith_session_name": None,
    }
    trace_context = tracing.creation_context() if tracing.ENABLED else None
    if trace_context:  # the request's trace parent (ids only), for the process that executes the run
        run["kwargs"]["trace_context"] = trace_context
    # One atomic step: the thread's in-flight runs are read and the run stored under one lock, so `reject`
    # and enqueue order hold however many requests and processes race; a new thread is stored in the same step.
    # The caller's in-flight runs are counted in the same step (max_creator_runs), so a burst of creations by
    # one caller, on any threads and processes, never exceeds the limit.
    try:
        # with start_at, a run on a free thread is stored `running`, claimed by this process: `stored` has that
        # status, the answer shows the run as created (`pending`, as the reference answers)
        stored = dict(run)
        previous = await ctx.storage.run_create(
            stored,
            {"graph_id": assistant["graph_id"], "assistant_id": assistant["assistant_id"]},
            {"status": "busy", "updated_at": created}
            | ({} if thread.get("status") == "busy" else {"config": _thread_config(assistant, thread, body)}),
            reject=strategy == "reject",
            max_creator_runs=run_limits.max_creator_runs(identity),
            start_at=now() if ctx.runs.starts_at_creation else None,
            new_thread=created_thread,
        )
    except RunLimitReached:
        raise run_limits.too_many_runs(identity or "") from None
    if previous is None:
        raise ApiError(409, BUSY_DETAIL)
    started = stored if stored["status"] == "running" else None
    handle = await ctx.runs.submitted(run, resumable=body.stream_resumable, started=started)
    if previous and strategy in ("interrupt", "rollback"):
        for old in previous:
            reason = f"superseded by run {run_id} (multitask_strategy={strategy})"
            await ctx.runs.cancel(old["run_id"], strategy, reason=reason)
    return handle


def is_inflight(run: dict[str, Any]) -> bool:
    return run["status"] in INFLIGHT
