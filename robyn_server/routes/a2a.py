"""`/a2a/{assistant_id}`: each assistant as an A2A agent (JSON-RPC 2.0, protocol 1.0), like the reference.

Requests and responses are the official `a2a-sdk` protobuf types, read and written in their JSON form.
`SendMessage` runs the assistant on the thread named by the message's `contextId` (created when new) with the
message's text as a user message and returns the task (`id` is `{contextId}:{runId}`, as in the reference) with
the reply as an artifact and the conversation as history; `SendStreamingMessage` streams the task, the reply's
text as artifact updates while the model produces it, and the final status; `GetTask` and `CancelTask` read and
cancel a task. The slash names of A2A 0.3 (`message/send`, ...) are accepted too. The agent card is served at
`/a2a/{assistant_id}/.well-known/agent-card.json`. Auth applies like on every route.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from a2a import types as a2a
from google.protobuf import json_format

from robyn_server import __version__, serde
from robyn_server.auth.authorize import authorize, visible
from robyn_server.auth.context import bind_iterator
from robyn_server.context import ServerContext
from robyn_server.errors import ApiError
from robyn_server.http import ApiRequest, JsonResponse, Router, StreamResponse
from robyn_server.routes.assistants import get_assistant, graph_schemas
from robyn_server.runs.manager import INFLIGHT, RunHandle
from robyn_server.runs.service import create_run
from robyn_server.schemas import RunCreateStateful

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL = -32700, -32600, -32601, -32602, -32603
TASK_NOT_FOUND, TASK_NOT_CANCELABLE, CONTENT_TYPE_NOT_SUPPORTED = -32001, -32002, -32005
METHOD_ALIASES = {
    "message/send": "SendMessage",
    "message/stream": "SendStreamingMessage",
    "tasks/get": "GetTask",
    "tasks/cancel": "CancelTask",
}
RUN_STATES = {
    "pending": a2a.TaskState.TASK_STATE_SUBMITTED,
    "running": a2a.TaskState.TASK_STATE_WORKING,
    "success": a2a.TaskState.TASK_STATE_COMPLETED,
    "interrupted": a2a.TaskState.TASK_STATE_CANCELED,
    "error": a2a.TaskState.TASK_STATE_FAILED,
    "timeout": a2a.TaskState.TASK_STATE_FAILED,
}
ARTIFACT_NAME = "Assistant Response"


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def to_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _rpc(id_: Any, *, result: Any = None, error: RpcError | None = None) -> dict[str, Any]:
    if error is not None:
        return {"jsonrpc": "2.0", "id": id_, "error": {"code": error.code, "message": error.message}}
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _parse(params: Any, message: Any) -> Any:
    try:
        return json_format.ParseDict(params if isinstance(params, dict) else {}, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise RpcError(INVALID_PARAMS, f"Invalid params: {exc}")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return ""


def _input_from_message(message: a2a.Message) -> dict[str, Any]:
    """Text parts become one user message; data parts are merged into the input as they are."""
    texts, data = [], {}
    for part in message.parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            value = json_format.MessageToDict(part.data)
            if isinstance(value, dict):
                data.update(value)
        else:
            raise RpcError(CONTENT_TYPE_NOT_SUPPORTED, f"Unsupported part kind: {kind or 'empty'}")
    if not texts and not data:
        raise RpcError(INVALID_PARAMS, "The message has no text or data parts")
    graph_input: dict[str, Any] = dict(data)
    if texts:
        graph_input["messages"] = [{"role": "user", "content": "\n".join(texts), "id": message.message_id or None}]
    return graph_input


def _history(values: Any, context_id: str, task_id: str) -> list[a2a.Message]:
    history = []
    for m in (values or {}).get("messages") or [] if isinstance(values, dict) else []:
        kind = m.get("type") if isinstance(m, dict) else None
        text = _text(m.get("content")) if isinstance(m, dict) else ""
        if kind not in ("human", "ai") or not text:
            continue
        role = a2a.Role.ROLE_USER if kind == "human" else a2a.Role.ROLE_AGENT
        history.append(
            a2a.Message(
                message_id=str(m.get("id") or uuid.uuid4()),
                context_id=context_id,
                task_id=task_id,
                role=role,
                parts=[a2a.Part(text=text)],
            )  # fmt: skip
        )
    return history


def _reply(values: Any) -> str | None:
    messages = (values or {}).get("messages") or [] if isinstance(values, dict) else []
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("type") == "ai" and _text(m.get("content")):
            return _text(m.get("content"))
    return None


def _task_id(context_id: str, run_id: str) -> str:
    return f"{context_id}:{run_id}"


def register(router: Router, ctx: ServerContext) -> None:
    async def _assistant(raw_id: str) -> dict[str, Any]:
        try:
            return await get_assistant(ctx, raw_id)
        except ApiError as exc:
            raise RpcError(INVALID_PARAMS, "Invalid assistant ID: must be a UUID" if exc.status_code == 422 else
                           f"Assistant {raw_id} not found")  # fmt: skip

    async def _state(run: dict[str, Any]) -> tuple[int, Any]:
        """The task state of a run and its thread's current values."""
        thread = await ctx.storage.thread_get(run["thread_id"])
        state = RUN_STATES.get(run["status"], a2a.TaskState.TASK_STATE_SUBMITTED)
        if run["status"] == "success" and thread is not None and thread.get("status") == "interrupted":
            state = a2a.TaskState.TASK_STATE_INPUT_REQUIRED
        return state, (thread or {}).get("values")

    def _task(run: dict[str, Any], state: int, values: Any, error: str | None = None) -> a2a.Task:
        context_id, task_id = run["thread_id"], _task_id(run["thread_id"], run["run_id"])
        status = a2a.TaskStatus(state=state)
        status.timestamp.FromDatetime(run["updated_at"])
        if error:
            status.message.CopyFrom(
                a2a.Message(
                    message_id=str(uuid.uuid4()),
                    context_id=context_id,
                    task_id=task_id,
                    role=a2a.Role.ROLE_AGENT,
                    parts=[a2a.Part(text=error)],
                )  # fmt: skip
            )
        task = a2a.Task(id=task_id, context_id=context_id, status=status, history=_history(values, context_id, task_id))
        reply = _reply(values) if state == a2a.TaskState.TASK_STATE_COMPLETED else None
        if reply:
            task.artifacts.append(a2a.Artifact(artifact_id=f"{run['run_id']}-response", name=ARTIFACT_NAME,
                                               parts=[a2a.Part(text=reply)]))  # fmt: skip
        return task

    async def _start(assistant: dict[str, Any], params: Any, streaming: bool) -> RunHandle:
        request = _parse(params, a2a.SendMessageRequest())
        if not request.HasField("message"):
            raise RpcError(INVALID_PARAMS, "Missing or invalid 'message' in params")
        message = request.message
        graph_input = _input_from_message(message)
        context_id = message.context_id or str(uuid.uuid4())
        try:
            context_id = str(uuid.UUID(context_id))
        except ValueError:
            raise RpcError(INVALID_PARAMS, "Invalid contextId: must be a UUID")
        body = RunCreateStateful(
            assistant_id=assistant["assistant_id"],
            input=graph_input,
            if_not_exists="create",
            metadata={"a2a_message_id": message.message_id} if message.message_id else None,
            stream_mode=["values", "messages-tuple"] if streaming else "values",
        )
        try:
            return await create_run(ctx, body, thread_id=context_id)
        except ApiError as exc:
            raise RpcError(INVALID_PARAMS if exc.status_code < 500 else INTERNAL, exc.detail)

    async def _finished_task(handle: RunHandle) -> a2a.Task:
        result = await ctx.runs.wait(handle)
        run = await ctx.storage.run_get(handle.run_id) or handle.run
        state, values = await _state(run)
        error = result["__error__"].get("message") if isinstance(result, dict) and "__error__" in result else None
        return _task(run, state, values, error)

    async def send_message(assistant: dict[str, Any], params: Any) -> dict[str, Any]:
        handle = await _start(assistant, params, streaming=False)
        return to_json(a2a.SendMessageResponse(task=await _finished_task(handle)))

    async def _visible_run(assistant: dict[str, Any], raw_task_id: str, action: str) -> dict[str, Any]:
        context_id, _, run_id = raw_task_id.partition(":")
        try:
            context_id, run_id = str(uuid.UUID(context_id)), str(uuid.UUID(run_id))
        except ValueError:
            raise RpcError(TASK_NOT_FOUND, f"Task not found: {raw_task_id}")
        filters = await authorize(None, "threads", action, {"thread_id": context_id, "run_id": run_id})
        run = await ctx.storage.run_get(run_id)
        if (
            run is None
            or run["thread_id"] != context_id
            or run["assistant_id"] != assistant["assistant_id"]
            or (filters and not visible(await ctx.storage.thread_get(context_id), filters))
        ):
            raise RpcError(TASK_NOT_FOUND, f"Task not found: {raw_task_id}")
        return run

    async def get_task(assistant: dict[str, Any], params: Any) -> dict[str, Any]:
        request = _parse(params, a2a.GetTaskRequest())
        run = await _visible_run(assistant, request.id, "read")
        state, values = await _state(run)
        return to_json(_task(run, state, values))

    async def cancel_task(assistant: dict[str, Any], params: Any) -> dict[str, Any]:
        request = _parse(params, a2a.CancelTaskRequest())
        run = await _visible_run(assistant, request.id, "update")
        handle = await ctx.runs.find(run) if run["status"] in INFLIGHT else None
        if handle is None or not await ctx.runs.cancel(run["run_id"], "interrupt"):
            raise RpcError(TASK_NOT_CANCELABLE, f"Task {request.id} is not cancelable: it has ended")
        return to_json(await _finished_task(handle))

    def stream_events(handle: RunHandle, rpc_id: Any) -> Iterator[bytes]:
        """The task, the reply's text as it is produced, then the final task status (SSE, one JSON-RPC response
        per event). Runs in Robyn's response thread; the finished task is read on the serving loop."""
        context_id, task_id = handle.thread_id, _task_id(handle.thread_id, handle.run_id)
        artifact_id = f"{handle.run_id}-response"

        def frame(result: Any) -> bytes:
            return b"data: " + serde.dumps(_rpc(rpc_id, result=to_json(result))) + b"\n\n"

        working = a2a.Task(
            id=task_id, context_id=context_id, status=a2a.TaskStatus(state=a2a.TaskState.TASK_STATE_WORKING)
        )
        yield frame(a2a.StreamResponse(task=working))
        sent_any = False
        token, handle.token = handle.token, None  # the creator's reservation: no message frame is emptied unread
        for chunk in handle.log.read(
            0, heartbeat_seconds=ctx.settings.heartbeat_seconds, modes=frozenset({"messages"}), token=token
        ):
            for raw in chunk.split(b"\r\n\r\n"):
                if not raw.startswith(b"event: messages\r\ndata: "):
                    continue
                data = serde.loads(raw.split(b"\r\ndata: ", 1)[1].split(b"\r\n", 1)[0])
                message = data[0] if isinstance(data, list) and data else {}
                if not isinstance(message, dict) or not str(message.get("type", "")).startswith("AIMessage"):
                    continue
                text = _text(message.get("content"))
                if text:
                    update = a2a.TaskArtifactUpdateEvent(
                        task_id=task_id, context_id=context_id, append=sent_any,
                        artifact=a2a.Artifact(artifact_id=artifact_id, name=ARTIFACT_NAME, parts=[a2a.Part(text=text)]),
                    )  # fmt: skip
                    sent_any = True
                    yield frame(a2a.StreamResponse(artifact_update=update))
        task = run_on_loop(_finished_task(handle))
        done = a2a.TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=task.status)
        yield frame(a2a.StreamResponse(status_update=done))

    loop_holder: dict[str, Any] = {}

    def run_on_loop(coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, loop_holder["loop"]).result()

    async def a2a_endpoint(req: ApiRequest) -> Any:
        """A2A JSON-RPC: `SendMessage`, `SendStreamingMessage`, `GetTask`, `CancelTask` (and the 0.3 names)."""
        import asyncio

        loop_holder.setdefault("loop", asyncio.get_running_loop())
        try:
            message = serde.loads(req.raw.body or b"")
        except Exception:
            return JsonResponse(_rpc(None, error=RpcError(PARSE_ERROR, "Invalid JSON payload")))
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            error = RpcError(INVALID_REQUEST, "Invalid JSON-RPC request: expected a JSON-RPC 2.0 object")
            return JsonResponse(_rpc(message.get("id") if isinstance(message, dict) else None, error=error))
        rpc_id, method = message.get("id"), message.get("method")
        method = METHOD_ALIASES.get(method, method)
        handlers = {"SendMessage": send_message, "GetTask": get_task, "CancelTask": cancel_task}
        try:
            assistant = await _assistant(req.path_params["assistant_id"])
            if method == "SendStreamingMessage":
                handle = await _start(assistant, message.get("params"), streaming=True)
                return StreamResponse(bind_iterator(stream_events(handle, rpc_id)))
            if method not in handlers:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
            return JsonResponse(_rpc(rpc_id, result=await handlers[method](assistant, message.get("params"))))
        except RpcError as exc:
            return JsonResponse(_rpc(rpc_id, error=exc))

    async def agent_card(req: ApiRequest) -> Any:
        """The A2A agent card of an assistant (`/a2a/{id}/.well-known/agent-card.json`, or `agent.json`)."""
        base = req.path.rsplit("/.well-known/", 1)[0]  # the assistant's A2A endpoint, under a mount prefix too
        return await _card(req, req.path_params["assistant_id"], base)

    async def agent_card_by_query(req: ApiRequest) -> Any:
        """The reference's top-level card route: `/.well-known/agent-card.json?assistant_id=...`."""
        raw_id = req.query("assistant_id")
        if not raw_id:
            return _card_error("Missing required query parameter: assistant_id")
        return await _card(req, raw_id, f"{req.path.removesuffix('/.well-known/agent-card.json')}/a2a/{raw_id}")

    def _card_error(message: str) -> Any:
        return JsonResponse({"error": {"code": INVALID_PARAMS, "message": message}}, status_code=400)

    async def _card(req: ApiRequest, raw_id: str, endpoint: str) -> Any:
        try:
            assistant = await get_assistant(ctx, raw_id)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            return _card_error(f"Assistant '{raw_id}' not found")  # the reference's JSON-RPC error
        config = {"configurable": dict((assistant.get("config") or {}).get("configurable") or {})}
        async with ctx.registry.graph(assistant["graph_id"], config, access="assistants.read") as graph:
            schema = graph_schemas(graph, assistant["graph_id"])["input_schema"] or {}
        host = req.header("host") or "127.0.0.1"
        scheme = req.header("x-forwarded-proto") or "http"
        url = f"{scheme}://{host}{endpoint}"
        name = assistant["name"]
        description = assistant.get("description") or f"{name} assistant"
        card = a2a.AgentCard(
            name=name,
            description=description,
            version=__version__,
            supported_interfaces=[a2a.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
            capabilities=a2a.AgentCapabilities(streaming=True, push_notifications=False),
            default_input_modes=["application/json", "text/plain"],
            default_output_modes=["application/json", "text/plain"],
            skills=[
                a2a.AgentSkill(
                    id=f"{assistant['assistant_id']}-main",
                    name=f"{name} Capabilities",
                    description=description,
                    tags=["assistant", "langgraph"],
                    input_modes=["application/json", "text/plain"],
                    output_modes=["application/json", "text/plain"],
                )  # fmt: skip
            ],
        )
        body = to_json(card)
        body["url"] = url  # A2A 0.3 clients read the endpoint here (and the two fields below, as the reference)
        body["capabilities"]["stateTransitionHistory"] = False
        body["skills"][0]["examples"] = []
        body["skills"][0]["metadata"] = {"inputSchema": {"required": schema.get("required", []),
                                         "properties": sorted(schema.get("properties", {})),
                                         "supportsA2A": "messages" in schema.get("properties", {})}}  # fmt: skip
        return body

    router.add("POST", "/a2a/:assistant_id", a2a_endpoint, tags=["a2a"])
    router.add("GET", "/a2a/:assistant_id/.well-known/agent-card.json", agent_card, tags=["a2a"])
    router.add("GET", "/a2a/:assistant_id/.well-known/agent.json", agent_card, tags=["a2a"])
    router.add("GET", "/.well-known/agent-card.json", agent_card_by_query, tags=["a2a"])
