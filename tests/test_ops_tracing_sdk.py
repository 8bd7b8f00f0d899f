"""Spans with the OpenTelemetry SDK's in-memory exporter, in this process: a request span, the run span under
it, node spans under the run and a model span under its node, one trace; the ops hooks drive a real graph.

With tracing off no exporter, instrumentation or tracer provider is set up (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from robyn_server.ops import observe, requests, runscope, tracing
from tests.server import ROOT


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    assert tracing.configure(processor=SimpleSpanProcessor(memory))
    yield memory
    tracing.uninstrument_httpx()
    tracing.ENABLED = False


def run_record(graph_id: str, request_id: str) -> dict[str, Any]:
    return {
        "run_id": "0190a0a0-0000-7000-8000-000000000001",
        "thread_id": "0190a0a0-0000-7000-8000-000000000002",
        "assistant_id": "a1",
        "created_at": datetime.now(UTC),
        "kwargs": {
            "config": {
                "configurable": {"graph_id": graph_id, "langgraph_request_id": request_id, "thread_id": "t"},
                "metadata": {"run_attempt": 1},
            }
        },
    }


class Headers(dict):
    def get(self, name: str, default: Any = None) -> Any:  # Robyn's headers are looked up by lower-case name
        return super().get(name.lower(), default)


async def traced_agent_request(request_id: str, parent_trace: str) -> None:
    """A request (continuing the caller's `traceparent`) that runs the test graph through the ops hooks, as the
    run manager does: a task started from the request's context."""
    import asyncio
    import contextvars

    sys.path.insert(0, str(ROOT / "tests" / "graphs"))
    from anchor_graph import agent  # the test graph: model node (fake chat model), tools node

    headers = Headers(traceparent=f"00-{parent_trace}-b7ad6b7169203331-01")

    async def request_then_run() -> None:
        info = requests.begin("POST", "/threads/t/runs/wait", request_id)
        tracing.start_server_span(info, headers)
        run = run_record("agent", info.request_id)

        async def execute() -> None:
            observed = observe.run_started(run)
            config = observed.config({"configurable": {"thread_id": "mem-thread"}})
            async for _ in agent.astream({"messages": [("user", "weather in sf?")]}, config, stream_mode="values"):
                pass
            observe.run_finished(observed, "success")

        await asyncio.get_running_loop().create_task(execute(), context=contextvars.copy_context())
        info.route = "/threads/:thread_id/runs/wait"
        tracing.end_server_span(info, 200)
        assert runscope.current() is None  # the run's scope stayed in the run's context

    await asyncio_run_in_fresh_context(request_then_run)


async def test_request_run_node_and_model_spans_form_one_trace(exporter: InMemorySpanExporter) -> None:
    parent_trace = "0af7651916cd43dd8448eb211c80319c"
    exporter.clear()
    await traced_agent_request("req-mem-1", parent_trace)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    server = spans["POST /threads/:thread_id/runs/wait"]
    run = spans["run agent"]
    model_nodes = [s for s in exporter.get_finished_spans() if s.name == "node model"]
    tools = spans["node tools"]
    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(model_nodes) == 2 and len(chats) == 2  # model → tools → model
    assert {format(s.context.trace_id, "032x") for s in exporter.get_finished_spans()} == {parent_trace}
    assert format(server.parent.span_id, "016x") == "b7ad6b7169203331"
    assert run.parent.span_id == server.context.span_id
    assert all(n.parent.span_id == run.context.span_id for n in [*model_nodes, tools])
    assert {c.parent.span_id for c in chats} == {n.context.span_id for n in model_nodes}
    for span in exporter.get_finished_spans():
        assert span.attributes["langgraph.request_id"] == "req-mem-1", span.name
    assert run.attributes["langgraph.run_status"] == "success" and run.attributes["langgraph.graph_id"] == "agent"
    assert server.attributes["http.response.status_code"] == 200


async def test_the_spans_of_a_run_encode_to_the_sdk_encoders_bytes(exporter: InMemorySpanExporter) -> None:
    """The in-place OTLP encoding (robyn_server/ops/otlp_encoding.py) of the trace a request and its run make."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from robyn_server.ops import otlp_encoding

    exporter.clear()
    await traced_agent_request("req-enc-1", "0af7651916cd43dd8448eb211c80319c")
    spans = list(exporter.get_finished_spans())
    assert len(spans) >= 7  # request, run, model node, chat, tools node, model node, chat
    ours = otlp_encoding.encode(spans)
    assert isinstance(ours, otlp_encoding.Encoded)
    assert ours.SerializePartialToString() == encode_spans(spans).SerializePartialToString()


async def test_tool_calls_get_spans_under_their_node(exporter: InMemorySpanExporter) -> None:
    from langchain_core.tools import tool

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    graph = tool_graph(lookup)
    exporter.clear()

    async def run() -> None:
        observed = observe.run_started(run_record("toolgraph", "req-tool-1"))
        await graph.ainvoke({"messages": []}, observed.config({}))
        observe.run_finished(observed, "success")

    await asyncio_run_in_fresh_context(run)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["tool lookup"].parent.span_id == spans["node ask"].context.span_id
    assert spans["node ask"].parent.span_id == spans["run toolgraph"].context.span_id
    assert spans["tool lookup"].attributes["gen_ai.tool.name"] == "lookup"


def tool_graph(tool: Any) -> Any:
    """One node, `ask`, that calls `tool`."""
    from langgraph.graph import END, START, MessagesState, StateGraph

    async def ask(state: MessagesState) -> dict:
        await tool.ainvoke({"city": "Paris"})
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile()


async def test_node_and_tool_spans_encode_with_the_run_span(exporter: InMemorySpanExporter) -> None:
    """Node, model and tool spans are handed to the exporter finished, with the run span's resource and scope:
    one batch of a run's spans encodes as one resource and one scope, with the parent links of the SDK's spans."""
    from langchain_core.tools import tool
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    exporter.clear()

    async def run() -> None:
        observed = observe.run_started(run_record("toolgraph", "req-enc-1"))
        await tool_graph(lookup).ainvoke({"messages": []}, observed.config({}))
        observe.run_finished(observed, "success")

    await asyncio_run_in_fresh_context(run)
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["node ask", "run toolgraph", "tool lookup"]
    (resource_spans,) = encode_spans(spans).resource_spans
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "robyn_server" and len(scope_spans.spans) == 3
    by_name = {s.name: s for s in scope_spans.spans}
    assert by_name["tool lookup"].parent_span_id == by_name["node ask"].span_id
    assert by_name["node ask"].parent_span_id == by_name["run toolgraph"].span_id
    assert len({s.trace_id for s in scope_spans.spans}) == 1
    assert all(s.start_time_unix_nano <= s.end_time_unix_nano for s in scope_spans.spans)


async def test_a_failing_tool_span_records_the_exception_as_the_sdk_does(exporter: InMemorySpanExporter) -> None:
    from langchain_core.tools import tool
    from opentelemetry.trace import StatusCode

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        raise LookupError(f"no {city}")

    exporter.clear()

    async def run() -> None:
        observed = observe.run_started(run_record("toolgraph", "req-err-1"))
        with pytest.raises(LookupError):
            await tool_graph(lookup).ainvoke({"messages": []}, observed.config({}))
        observe.run_finished(observed, "error")

    await asyncio_run_in_fresh_context(run)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    failed = spans["tool lookup"]
    assert failed.status.status_code == StatusCode.ERROR and failed.status.description == "LookupError"
    assert spans["node ask"].status.status_code == StatusCode.ERROR
    # what the SDK's own span records for the same exception
    reference = tracing._state["tracer"].start_span("reference")
    reference.record_exception(LookupError("no Paris"))
    reference.end()
    expected = exporter.get_finished_spans()[-1].events[0]
    (event,) = failed.events
    assert event.name == expected.name == "exception"
    assert set(event.attributes) == set(expected.attributes)
    for key in ("exception.type", "exception.message", "exception.escaped"):
        assert event.attributes[key] == expected.attributes[key], key
    assert "LookupError: no Paris" in event.attributes["exception.stacktrace"]


async def test_a_run_that_is_not_sampled_records_no_child_spans(exporter: InMemorySpanExporter) -> None:
    """Child spans follow the run span's sampling: under a caller's traceparent that is not sampled (flags 00),
    the default parent-based sampler drops the run span, and no node or tool span is made under it."""
    from langchain_core.tools import tool

    @tool
    def lookup(city: str) -> str:
        """Look a city up."""
        return f"{city}: sunny"

    exporter.clear()
    record = run_record("toolgraph", "req-unsampled-1")
    record["kwargs"]["trace_context"] = {"traceparent": "00-1bf92f3577b34da6a3ce929d0e0e4731-00f067aa0ba902b7-00"}

    async def run() -> None:
        observed = observe.run_started(record)
        assert not observed.span.get_span_context().trace_flags.sampled
        await tool_graph(lookup).ainvoke({"messages": []}, observed.config({}))
        observe.run_finished(observed, "success")

    await asyncio_run_in_fresh_context(run)
    assert exporter.get_finished_spans() == ()


async def test_code_in_a_run_writes_to_the_run_span_and_starts_spans_under_it(
    exporter: InMemorySpanExporter,
) -> None:
    """The request and run spans are recorded without the SDK's live span, but they are current: a node reads
    the run span, sets an attribute, adds an event and records an exception on it, and starts an SDK span of its
    own, which is the run span's child. The run span exports what an SDK span given the same calls exports."""
    from langgraph.graph import END, START, MessagesState, StateGraph
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, StatusCode

    def touch(span: Any) -> None:
        span.set_attribute("app.customer", "c-42")
        span.set_attributes({"app.tier": "gold", "app.items": 3})
        span.add_event("cache miss", {"key": "k1"})
        span.record_exception(ValueError("soft failure"))
        span.update_name("run renamed")

    async def work(state: MessagesState) -> dict:
        touch(trace.get_current_span())
        with tracing._state["tracer"].start_as_current_span("app lookup"):
            pass
        return {}

    builder = StateGraph(MessagesState)
    builder.add_node("work", work)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    graph = builder.compile()
    exporter.clear()

    async def request_then_run() -> None:
        info = requests.begin("POST", "/runs/wait", "req-touch-1")
        tracing.start_server_span(info, Headers())
        observed = observe.run_started(run_record("touched", info.request_id))
        await graph.ainvoke({"messages": []}, observed.config({}))
        observe.run_finished(observed, "error")
        info.route = "/runs/wait"
        tracing.end_server_span(info, 500)

    await asyncio_run_in_fresh_context(request_then_run)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    run, server, lookup = spans["run renamed"], spans["POST /runs/wait"], spans["app lookup"]
    assert lookup.parent.span_id == spans["node work"].parent.span_id == run.context.span_id
    assert run.parent.span_id == server.context.span_id and server.parent is None
    assert lookup.attributes["langgraph.request_id"] == "req-touch-1"  # stamped on SDK spans in the run
    assert server.kind is SpanKind.SERVER and run.kind is SpanKind.INTERNAL
    assert server.status.status_code is StatusCode.ERROR and server.attributes["http.response.status_code"] == 500
    assert run.status.status_code is StatusCode.ERROR and run.status.description == "error"
    assert run.resource is lookup.resource and run.instrumentation_scope.name == "robyn_server"
    # the same calls on an SDK span
    reference = tracing._state["tracer"].start_span("reference", attributes=dict(run_record_attributes(run)))
    touch(reference)
    reference.set_attribute("langgraph.run_status", "error")
    reference.set_status(trace.Status(StatusCode.ERROR, "error"))
    reference.end()
    expected = exporter.get_finished_spans()[-1]
    assert dict(run.attributes) == dict(expected.attributes)
    assert [(e.name, set(e.attributes)) for e in run.events] == [(e.name, set(e.attributes)) for e in expected.events]
    assert run.events[0].attributes == expected.events[0].attributes == {"key": "k1"}
    assert run.start_time <= run.end_time and run.context.trace_flags.sampled


def run_record_attributes(span: Any) -> dict[str, Any]:
    """The attributes the run span started with (those `touch` and the run's end did not add)."""
    added = {"app.customer", "app.tier", "app.items", "langgraph.run_status"}
    return {k: v for k, v in span.attributes.items() if k not in added}


def streaming_graph(how: str, fail_after: int | None = None) -> Any:
    """One node, `model`, that calls a chat model streaming five tokens: with `ainvoke` (its tokens streamed in
    a task of their own) or `astream` (in the node's task); the model raises after `fail_after` tokens."""
    from collections.abc import AsyncIterator

    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk, ChatResult
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph import END, START, MessagesState, StateGraph

    class FiveTokens(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "five-tokens"

        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            raise NotImplementedError

        async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
            for i in range(5):
                if fail_after is not None and i == fail_after:
                    raise RuntimeError("model down")
                yield ChatGenerationChunk(message=AIMessageChunk(content=f"t{i} "))

    model = FiveTokens()

    async def call(state: MessagesState, config: RunnableConfig) -> dict:
        if how == "ainvoke":
            return {"messages": [await model.ainvoke(state["messages"], config)]}
        chunks = [chunk async for chunk in model.astream(state["messages"], config)]
        return {"messages": [sum(chunks[1:], chunks[0])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile()


def token_witness(span_callbacks: Any) -> Any:
    """A LangChain handler called before the span callbacks for each token: it notes whether LangChain skips
    them for that token (their `ignore_llm`, read in the same task)."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Witness(BaseCallbackHandler):
        run_inline = True

        def __init__(self) -> None:
            self.skipped: list[bool] = []

        def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
            self.skipped.append(span_callbacks.ignore_llm)

    return Witness()


@pytest.mark.parametrize(("how", "skipped"), [("ainvoke", [False, True, True, True, True, True]),
                                              ("astream", [False] * 6)])  # fmt: skip
async def test_the_span_callbacks_skip_the_tokens_of_a_model_streamed_in_its_own_task(
    exporter: InMemorySpanExporter, how: str, skipped: list[bool]
) -> None:
    """The tokens of a model called with `ainvoke` stream in a task of their own: LangChain calls the span
    callbacks for the first only, and for the model's end (in a task of its own too), so its span ends. With
    `astream` every token reaches them. Five tokens, and the last, empty one LangChain adds."""
    exporter.clear()
    witness: Any = None

    async def run() -> None:
        nonlocal witness
        observed = observe.run_started(run_record("streamed", "req-stream-1"))
        config = observed.config({})
        witness = token_witness(config["callbacks"][-1])
        config = {**config, "callbacks": [witness, *config["callbacks"]]}
        async for _ in streaming_graph(how).astream({"messages": [("user", "go")]}, config, stream_mode="messages"):
            pass
        assert config["callbacks"][-1].ignore_llm is False  # the skipping stayed in the model's own task
        observe.run_finished(observed, "success")

    await asyncio_run_in_fresh_context(run)
    assert witness.skipped == skipped
    spans = {s.name: s for s in exporter.get_finished_spans()}
    chat = spans["chat FiveTokens"]
    assert chat.parent.span_id == spans["node model"].context.span_id
    assert spans["node model"].start_time <= chat.start_time <= chat.end_time <= spans["node model"].end_time


async def test_a_model_failing_while_its_tokens_are_skipped_ends_its_span_with_the_error(
    exporter: InMemorySpanExporter,
) -> None:
    from opentelemetry.trace import StatusCode

    exporter.clear()

    async def run() -> None:
        observed = observe.run_started(run_record("streamed", "req-stream-2"))
        config = observed.config({})
        with pytest.raises(RuntimeError):
            async for _ in streaming_graph("ainvoke", fail_after=3).astream(
                {"messages": [("user", "go")]}, config, stream_mode="messages"
            ):
                pass
        assert config["callbacks"][-1].ignore_llm is False
        observe.run_finished(observed, "error")

    await asyncio_run_in_fresh_context(run)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["chat FiveTokens"].status.status_code == StatusCode.ERROR
    assert spans["chat FiveTokens"].events[0].attributes["exception.message"] == "model down"
    assert spans["node model"].status.status_code == StatusCode.ERROR


async def test_a_model_called_outside_the_runs_context_gets_no_span(exporter: InMemorySpanExporter) -> None:
    """A thread started without the run's context reads no skipping flag: LangChain would skip the model's end
    there, so the span callbacks do not start its span either (nothing is left open)."""
    import contextvars
    import uuid

    exporter.clear()
    handler: Any = None

    async def run() -> None:
        nonlocal handler
        observed = observe.run_started(run_record("outside", "req-outside-1"))
        handler = observed.config({})["callbacks"][-1]
        model_run = uuid.uuid4()
        contextvars.Context().run(handler.on_chat_model_start, {"name": "m"}, [[]], run_id=model_run)
        assert handler.spans == {}
        assert contextvars.Context().run(lambda: bool(handler.ignore_llm))  # LangChain would skip the rest
        handler.on_chat_model_start({"name": "m"}, [[]], run_id=model_run)  # in the run's context: recorded
        assert model_run in handler.spans and handler.ignore_llm is False
        handler.on_llm_end(None, run_id=model_run)
        observe.run_finished(observed, "success")

    await asyncio_run_in_fresh_context(run)
    assert [s.name for s in exporter.get_finished_spans() if s.name.startswith("chat")] == ["chat m"]


async def asyncio_run_in_fresh_context(fn: Any) -> None:
    """Run `fn` as its own task with a copy of the context, like Robyn runs each request."""
    import asyncio
    import contextvars

    await asyncio.get_running_loop().create_task(fn(), context=contextvars.copy_context())


def test_the_resource_is_hashed_once_and_equal_to_the_sdk_one(exporter: InMemorySpanExporter) -> None:
    """The provider's resource caches its hash (the OTLP encoder hashes it per span); it still equals, and
    hashes like, the SDK's resource with the same attributes."""
    from opentelemetry.sdk.resources import Resource

    resource = tracing._state["provider"].resource
    plain = Resource(resource.attributes, resource.schema_url)
    assert resource == plain and hash(resource) == hash(plain)


def test_tracing_off_sets_up_nothing() -> None:
    code = (
        "import sys, os\n"
        "for k in [k for k in os.environ if k.startswith('OTEL_')]: del os.environ[k]\n"
        "from robyn_server.ops import tracing, http_hooks, observe\n"
        "import robyn_server.app, robyn_server.cli\n"
        "assert tracing.configure() is False\n"
        # langsmith (under langchain-core) imports parts of the SDK itself when it is installed; what matters is
        # that no exporter, instrumentation or span callback is loaded and no tracer provider is set
        "ours = ('opentelemetry.exporter', 'opentelemetry.instrumentation', 'robyn_server.ops.trace_callbacks')\n"
        "assert not [m for m in sys.modules if m.startswith(ours)]\n"
        "from opentelemetry import trace\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
        "assert tracing.ENABLED is False\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr + out.stdout


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
    ],
)
def test_which_settings_turn_tracing_on(env: dict[str, str], wanted: bool) -> None:
    assert tracing.wanted(env) is wanted
