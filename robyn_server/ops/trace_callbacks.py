"""LangChain callbacks that turn graph nodes, model calls and tool calls into OpenTelemetry spans.

Only imported when tracing is on. Chains that are not graph nodes (the graph itself, internal sequences) get
no span; their children attach to the nearest ancestor that has one, else to the run's span.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode


class SpanCallbacks(BaseCallbackHandler):
    run_inline = True  # called where the event happens, not through an executor

    def __init__(self, tracer: trace.Tracer, run_span: Span, scope: Any) -> None:
        self.tracer = tracer
        self.run_span = run_span
        self.scope = scope
        self.spans: dict[UUID, Span] = {}
        self.parents: dict[UUID, UUID | None] = {}

    # ------------------------------------------------------------------ helpers
    def _parent(self, parent_run_id: UUID | None) -> Span:
        seen = 0
        while parent_run_id is not None and seen < 256:
            span = self.spans.get(parent_run_id)
            if span is not None:
                return span
            parent_run_id = self.parents.get(parent_run_id)
            seen += 1
        return self.run_span

    def _start(self, name: str, run_id: UUID, parent_run_id: UUID | None, attributes: dict[str, Any]) -> None:
        # the run's ids are on the run span; each child carries the request id only (fewer bytes to export)
        if self.scope.request_id:
            attributes["langgraph.request_id"] = self.scope.request_id
        parent = trace.set_span_in_context(self._parent(parent_run_id))
        self.spans[run_id] = self.tracer.start_span(name, context=parent, attributes=attributes)
        self.parents[run_id] = parent_run_id

    def _end(self, run_id: UUID, error: BaseException | None = None, **attributes: Any) -> None:
        self.parents.pop(run_id, None)
        span = self.spans.pop(run_id, None)
        if span is None:
            return
        for key, value in attributes.items():
            if value is not None:
                span.set_attribute(key, value)
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()

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
        self._model_start(serialized, run_id, parent_run_id, kwargs)

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
