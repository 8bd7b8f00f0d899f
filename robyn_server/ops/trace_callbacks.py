"""LangChain callbacks that turn graph nodes, model calls and tool calls into OpenTelemetry spans.

Only imported when tracing is on. Chains that are not graph nodes (the graph itself, internal sequences) get
no span; their children attach to the nearest ancestor that has one, else to the run's span.

These spans are never made current (code in a node sees the run's span), so nothing else can change them while
they run. Each is kept as its ids, start time and attributes and handed to the export processors as a finished
`ReadableSpan` when it ends, without the SDK's live span (its locks, bounded containers, sampler call and
processor hooks): a tool span's start and end take 4.5 us instead of 20, its OTLP encoding 14 us instead of 18
(plain containers), and it waits for the export as 2 objects instead of 11. Sampling follows the parent, as the
built-in samplers decide for a child of a local span: nothing is recorded under a run span that is not sampled.
An error is recorded as the SDK's `record_exception` does.

LangChain calls the handler for every streamed token unless its `ignore_llm` is true, which also withholds the
model call's end and error. A model called with `ainvoke` streams in a task of its own (`agenerate` gathers
one per prompt), and its end and error are called in yet another (they are `@shielded`: a task each), so
`ignore_llm` is true only in a task that streamed a model's tokens, from its second token on: a 50-token run
reaches the handler 7 times instead of 57. It is read for every token, so it is a property over a ContextVar's
own (C) `get`, no Python code: the handler sets the variable to False in the run's context when it is made, and
to True in the model's task at its first token (a task runs in a copy of its creator's context, so no other
task sees it). A model call in a context that does not descend from the run's (a thread started without
copying the context) would read no value, so the property gives the handler itself, which is true: such a call
gets no span at all (its start is skipped too). With `astream` a model streams in the node's own task, and a
sync call's end comes in the task that streamed it: those are called for every token.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode

from robyn_server.ops.recorded_span import UNSET, exception_event


class _Recording:
    __slots__ = ("name", "context", "parent", "attributes", "start", "task")

    def __init__(self, name: str, context: SpanContext, parent: SpanContext, attributes: dict[str, Any]) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.attributes = attributes
        self.start = time.time_ns()
        self.task: asyncio.Task[Any] | None = None  # a model's: the task it started in, until its first token


# True in a task streaming a model's tokens after its first one, False elsewhere in the run (see the docstring)
_SKIPPING_TOKENS: ContextVar[bool] = ContextVar("robyn_server_span_callbacks_skipping_tokens")


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no event loop in this thread: a sync call
        return None


class SpanCallbacks(BaseCallbackHandler):
    run_inline = True  # called where the event happens, not through an executor

    def __init__(self, run_span: Span, scope: Any, id_generator: Any, processors: list[Any]) -> None:
        self.run_context = run_span.get_span_context()
        # the run span's resource and scope (an SDK span's; a span that is not sampled has none, nor children)
        self.resource = getattr(run_span, "resource", None)
        self.scope = getattr(run_span, "instrumentation_scope", None)
        self.new_span_id = id_generator.generate_span_id
        self.processors = processors
        self.request_id = scope.request_id
        self.spans: dict[UUID, _Recording] = {}
        self.parents: dict[UUID, UUID | None] = {}
        _SKIPPING_TOKENS.set(False)  # in the run's context: every task of the run inherits it

    # read by LangChain for every token: `_SKIPPING_TOKENS.get(self)`, the handler itself (true) where unset
    ignore_llm = property(_SKIPPING_TOKENS.get)

    # events that make no span: LangChain's callback manager does not call the handler for them at all
    @property
    def ignore_retriever(self) -> bool:
        return True

    @property
    def ignore_retry(self) -> bool:
        return True

    @property
    def ignore_custom_event(self) -> bool:
        return True

    # ------------------------------------------------------------------ helpers
    def _parent(self, parent_run_id: UUID | None) -> SpanContext:
        seen = 0
        while parent_run_id is not None and seen < 256:
            recording = self.spans.get(parent_run_id)
            if recording is not None:
                return recording.context
            parent_run_id = self.parents.get(parent_run_id)
            seen += 1
        return self.run_context

    def _start(self, name: str, run_id: UUID, parent_run_id: UUID | None, attributes: dict[str, Any]) -> None:
        self.parents[run_id] = parent_run_id
        parent = self._parent(parent_run_id)
        if not parent.trace_flags.sampled:
            return
        # the run's ids are on the run span; each child carries the request id only (fewer bytes to export)
        if self.request_id:
            attributes["langgraph.request_id"] = self.request_id
        context = SpanContext(parent.trace_id, self.new_span_id(), False, parent.trace_flags, parent.trace_state)
        self.spans[run_id] = _Recording(name, context, parent, attributes)

    def _end(self, run_id: UUID, error: BaseException | None = None, **attributes: Any) -> None:
        self.parents.pop(run_id, None)
        recording = self.spans.pop(run_id, None)
        if recording is None:
            return
        for key, value in attributes.items():
            if value is not None:
                recording.attributes[key] = value
        end = time.time_ns()
        events: tuple[Event, ...] = ()
        status = UNSET
        if error is not None:
            events = (exception_event(error, end),)
            status = Status(StatusCode.ERROR, type(error).__name__)
        span = ReadableSpan(name=recording.name, context=recording.context, parent=recording.parent,
                            resource=self.resource, attributes=recording.attributes, events=events,
                            kind=SpanKind.INTERNAL, status=status, start_time=recording.start, end_time=end,
                            instrumentation_scope=self.scope)  # fmt: skip
        for processor in self.processors:
            processor.on_end(span)

    # ------------------------------------------------------------------ nodes
    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        node = (metadata or {}).get("langgraph_node")
        if node is not None and kwargs.get("name") == node:
            attributes: dict[str, Any] = {"langgraph.node": str(node)}
            step = (metadata or {}).get("langgraph_step")
            if isinstance(step, int):
                attributes["langgraph.step"] = step
            self._start(f"node {node}", run_id, parent_run_id, attributes)
        else:
            self.parents[run_id] = parent_run_id

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # GraphInterrupt / cancellation also end here; only real errors mark the span
        interrupt = type(error).__name__ in ("GraphInterrupt", "NodeInterrupt", "ParentCommand", "CancelledError")
        self._end(run_id, None if interrupt else error)

    # ------------------------------------------------------------------ models
    def _model_start(self, serialized: Any, run_id: UUID, parent_run_id: UUID | None, kwargs: dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        metadata = kwargs.get("metadata") or {}
        name = kwargs.get("name") or (serialized or {}).get("name") or "model"
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        if model:
            attributes["gen_ai.request.model"] = str(model)
        provider = metadata.get("ls_provider")
        if provider:
            attributes["gen_ai.system"] = str(provider)
        self._start(f"chat {model or name}", run_id, parent_run_id, attributes)

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, **kwargs: Any) -> None:  # fmt: skip
        if _SKIPPING_TOKENS.get(None) is None:  # not in the run's context: its end would be skipped (docstring)
            return
        self._model_start(serialized, run_id, parent_run_id, kwargs)
        recording = self.spans.get(run_id)
        if recording is not None:
            recording.task = _current_task()

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        recording = self.spans.get(run_id)
        if recording is None or recording.task is None:
            return
        task = _current_task()
        if task is not None and task is not recording.task:  # streamed in a task of its own: skip the rest
            _SKIPPING_TOKENS.set(True)  # in this task's context only
        recording.task = None

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                     **kwargs: Any) -> None:  # fmt: skip
        self._model_start(serialized, run_id, parent_run_id, kwargs)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        usage = ((getattr(response, "llm_output", None) or {}).get("token_usage")) or {}
        input_tokens = usage.get("prompt_tokens")
        output_tokens = usage.get("completion_tokens")
        try:
            message = response.generations[0][0].message
            meta = getattr(message, "usage_metadata", None) or {}
            input_tokens = meta.get("input_tokens", input_tokens)
            output_tokens = meta.get("output_tokens", output_tokens)
        except (AttributeError, IndexError, TypeError):
            pass
        self._end(run_id, None, **{"gen_ai.usage.input_tokens": input_tokens,
                                   "gen_ai.usage.output_tokens": output_tokens})  # fmt: skip

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    # ------------------------------------------------------------------ tools
    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, parent_run_id: UUID | None = None,
                      **kwargs: Any) -> None:  # fmt: skip
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        self._start(f"tool {name}", run_id, parent_run_id, {"gen_ai.tool.name": str(name)})

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)
