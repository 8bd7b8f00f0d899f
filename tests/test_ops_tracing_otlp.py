"""Traces over real OTLP/HTTP to a local receiver: one trace from the caller's `traceparent` through the
request's server span, the run's span, its node spans and model spans; the tools agent's calls to its model
endpoint, its MCP server and its RAG service carry the same trace on in `traceparent`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent_services import McpServer, RagService
from tests.ops_helpers import AGENT_RUN, wait_for
from tests.otlp_receiver import ModelStub, OtlpReceiver
from tests.server import ROOT, ServerProcess

SERVER = 2  # OTLP SpanKind values
CLIENT = 3
RAG_TOKEN = "rag-user-token"
RAG_COLLECTIONS = {"c-1": {"name": "Docs", "documents": [{"id": "d1", "page_content": "Robyn serves agents."}]}}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, OtlpReceiver, ModelStub]]:
    receiver = OtlpReceiver().start()
    stub = ModelStub().start()
    config = Path(tmp_path_factory.mktemp("otlp")) / "langgraph.json"
    graphs = {
        "agent": str(ROOT / "tests" / "graphs" / "anchor_graph.py") + ":agent",
        "tools": "tools_agent.agent:graph",
    }
    config.write_text(json.dumps({"dependencies": [str(ROOT), str(ROOT / "tests" / "graphs")], "graphs": graphs}))
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "robyn-otlp-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OPENAI_API_KEY": "",
    }
    proc = ServerProcess(config=config, env=env).start()
    yield proc, receiver, stub
    proc.stop()
    stub.stop()
    receiver.stop()


def by_name(spans: list[dict], name: str) -> list[dict]:
    return [s for s in spans if s["name"] == name]


def test_one_trace_from_request_to_run_to_nodes(traced: tuple[ServerProcess, OtlpReceiver, ModelStub]) -> None:
    proc, receiver, _ = traced
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{trace_id}-{caller_span}-01", "X-Request-Id": "otlp-req-1"}
    with httpx.Client(base_url=proc.url, timeout=30) as http:
        tid = http.post("/threads", json={}).json()["thread_id"]
        assert http.post(f"/threads/{tid}/runs/wait", json=AGENT_RUN, headers=headers).status_code == 200

    def complete() -> list[dict] | None:
        spans = receiver.trace(trace_id)
        names = [s["name"] for s in spans]
        done = "POST /threads/:thread_id/runs/wait" in names and "run agent" in names and names.count("node model") == 2
        return spans if done else None

    spans = wait_for(complete, "the request, run and node spans at the receiver")
    (server,) = by_name(spans, "POST /threads/:thread_id/runs/wait")
    (run,) = by_name(spans, "run agent")
    nodes = [*by_name(spans, "node model"), *by_name(spans, "node tools")]
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert server["kind"] == SERVER and server["parent_span_id"] == caller_span
    assert server["attributes"]["http.response.status_code"] == 200 and server["service"] == "robyn-otlp-test"
    assert run["parent_span_id"] == server["span_id"]
    assert run["attributes"]["langgraph.thread_id"] == tid and run["attributes"]["langgraph.run_status"] == "success"
    assert len(nodes) == 3 and all(n["parent_span_id"] == run["span_id"] for n in nodes)
    model_nodes = {n["span_id"] for n in by_name(spans, "node model")}
    assert len(chats) == 2 and {c["parent_span_id"] for c in chats} == model_nodes
    assert all(s["attributes"]["langgraph.request_id"] == "otlp-req-1" for s in spans)


def test_tools_agent_model_call_continues_the_trace(traced: tuple[ServerProcess, OtlpReceiver, ModelStub]) -> None:
    proc, receiver, stub = traced
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    configurable = {"base_url": f"{stub.url}/v1", "custom_model_name": "stub", "custom_api_key": "stub-key"}
    with httpx.Client(base_url=proc.url, timeout=30) as http:
        assistant = http.post("/assistants", json={"graph_id": "tools", "config": {"configurable": configurable}})
        tid = http.post("/threads", json={}).json()["thread_id"]
        body = {"assistant_id": assistant.json()["assistant_id"], "input": AGENT_RUN["input"]}
        headers = {"traceparent": f"00-{trace_id}-1111111111111111-01"}
        answer = http.post(f"/threads/{tid}/runs/wait", json=body, headers=headers).json()
        assert answer["messages"][-1]["content"] == "stub answer", answer
    sent = [c["traceparent"] for c in stub.calls if trace_id in c.get("traceparent", "")]
    assert len(sent) == 1, stub.calls
    outgoing_span = sent[0].split("-")[2]

    def arrived() -> list[dict] | None:
        spans = receiver.trace(trace_id)
        has_client = any(s["span_id"] == outgoing_span for s in spans)
        has_run = any(s["name"].startswith("run ") for s in spans)
        return spans if has_client and has_run else None

    # The batch exporter may deliver the client span and the run span in different batches.
    spans = wait_for(arrived, "the outgoing call's client span and the run span")
    (client,) = [s for s in spans if s["span_id"] == outgoing_span]
    assert client["kind"] == CLIENT  # the httpx span whose id went out in traceparent
    (run,) = [s for s in spans if s["name"].startswith("run ")]
    assert client["trace_id"] == run["trace_id"] == trace_id


def test_tools_agent_mcp_and_rag_calls_continue_the_trace(
    traced: tuple[ServerProcess, OtlpReceiver, ModelStub],
) -> None:
    """The MCP server (the `mcp` package over streamable HTTP) and the RAG service each receive the run's trace
    in `traceparent`, when the tools are listed and when the model calls them."""
    proc, receiver, stub = traced
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4738"
    mcp = McpServer().start()
    try:
        with RagService(RAG_TOKEN, RAG_COLLECTIONS) as rag:
            stub.tool_calls = [
                {"name": "add", "arguments": {"a": 2, "b": 3}},
                {"name": "Docs", "arguments": {"query": "robyn"}},
            ]
            configurable = {
                "base_url": f"{stub.url}/v1", "custom_model_name": "stub", "custom_api_key": "stub-key",
                "mcp_config": {"url": mcp.url, "tools": ["add"]},
                "rag": {"rag_url": rag.url, "collections": ["c-1"]},
            }  # fmt: skip
            with httpx.Client(base_url=proc.url, timeout=30) as http:
                assistant = http.post(
                    "/assistants", json={"graph_id": "tools", "config": {"configurable": configurable}}
                )
                tid = http.post("/threads", json={}).json()["thread_id"]
                body = {
                    "assistant_id": assistant.json()["assistant_id"],
                    "input": {"messages": [{"role": "user", "content": "add and search"}]},
                    "config": {"configurable": {"x-supabase-access-token": RAG_TOKEN}},
                }
                headers = {"traceparent": f"00-{trace_id}-2222222222222222-01"}
                answer = http.post(f"/threads/{tid}/runs/wait", json=body, headers=headers).json()
            rag_sent = [t for t in rag.traceparents if trace_id in t]
            searches = list(rag.searches)
        mcp_sent = [t for t in mcp.seen_traceparents() if trace_id in t]
    finally:
        stub.tool_calls = []
        mcp.stop()
    assert [m["type"] for m in answer["messages"]] == ["human", "ai", "tool", "tool", "ai"], answer
    assert "5" in str(answer["messages"][2]["content"]) and searches == [{"collection": "c-1", "query": "robyn",
                                                                         "limit": 10}]  # fmt: skip
    assert len(rag_sent) == 2  # the collection read when the graph is built, then the search
    assert len(mcp_sent) >= 2  # listing the tools, then calling `add` (each a few MCP requests)
    outgoing = {t.split("-")[2] for t in rag_sent + mcp_sent}

    def arrived() -> list[dict] | None:
        spans = receiver.trace(trace_id)
        ids = {s["span_id"] for s in spans}
        return spans if outgoing <= ids and any(s["name"].startswith("run ") for s in spans) else None

    spans = wait_for(arrived, "the client spans of the MCP and RAG calls and the run span")
    assert all(s["kind"] == CLIENT for s in spans if s["span_id"] in outgoing)
    tools = {s["attributes"].get("gen_ai.tool.name") for s in spans if s["name"].startswith("tool ")}
    assert tools == {"add", "Docs"}
