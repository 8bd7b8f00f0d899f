"""The default tools agent through the real server and the real SDK, with `ChatOpenAI` talking to
`scripts/mock_llm.py` over HTTP, real MCP servers (the `mcp` package) and a LangConnect-like RAG service."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from robyn_server.graphs import system_assistant_id
from tests.agent_services import McpServer, MockLLM, RagService, agent_config, closed_port_url, silent_port
from tests.server import ServerProcess
from tools_agent.model import NO_MODEL_MESSAGE

MODEL_KEY = "mock-key-123"
USER_TOKEN = "user-jwt-abc"
PROMPT = "You are the test agent."


@pytest.fixture(scope="module")
def mock_llm() -> Iterator[MockLLM]:
    llm = MockLLM(api_key=MODEL_KEY).start()
    yield llm
    llm.stop()


@pytest.fixture(scope="module")
def mcp_open() -> Iterator[McpServer]:
    server = McpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mcp_auth() -> Iterator[McpServer]:
    server = McpServer(token=USER_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # No OpenAI key in the server's environment; short service timeouts so dead services fail fast.
    env = {"OPENAI_API_KEY": "", "TOOLS_AGENT_HTTP_TIMEOUT": "2", "TOOLS_AGENT_TOOL_TIMEOUT": "5"}
    proc = ServerProcess(config=agent_config(tmp_path_factory.mktemp("agent")), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
async def sdk(agent_server: ServerProcess) -> AsyncIterator[Any]:
    client = get_client(url=agent_server.url, api_key=None)
    yield client
    await client.http.client.aclose()


@pytest.fixture(autouse=True)
def fresh_mock(mock_llm: MockLLM) -> Iterator[None]:
    mock_llm.clear()
    mock_llm.set_rules([])
    yield
    mock_llm.set_rules([])


def model_config(mock_llm: MockLLM, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": mock_llm.base_url,
        "custom_model_name": "mock-model",
        "custom_api_key": MODEL_KEY,
        "system_prompt": PROMPT,
        **extra,
    }


async def run(
    sdk: Any,
    configurable: dict[str, Any],
    text: str,
    *,
    stream_mode: Any = "values",
    run_configurable: dict[str, Any] | None = None,
) -> tuple[str, list[Any]]:
    """Create an assistant with `configurable`, a thread, stream one run; return the thread id and parts."""
    assistant = await sdk.assistants.create("agent", config={"configurable": configurable})
    thread = await sdk.threads.create()
    parts = [
        part
        async for part in sdk.runs.stream(
            thread["thread_id"],
            assistant["assistant_id"],
            input={"messages": [{"role": "user", "content": text}]},
            config={"configurable": run_configurable} if run_configurable else None,
            stream_mode=stream_mode,
        )
    ]
    return thread["thread_id"], parts


def errors(parts: list[Any]) -> list[dict[str, Any]]:
    return [p.data for p in parts if p.event == "error"]


def final_messages(parts: list[Any]) -> list[dict[str, Any]]:
    values = [p.data for p in parts if p.event == "values"]
    assert values, [p.event for p in parts]
    return values[-1]["messages"]


# ------------------------------------------------------------------------------------------ config schema
async def test_schemas_route_serves_the_oap_settings_form(sdk: Any, agent_server: ServerProcess) -> None:
    # The MCP and RAG services are dead and no key is set: building for the schema must not need them.
    config = {"mcp_config": {"url": closed_port_url(), "tools": ["add"]}, "rag": {"rag_url": closed_port_url()}}
    assistant = await sdk.assistants.create("agent", config={"configurable": config})
    async with httpx.AsyncClient(base_url=agent_server.url, timeout=30) as http:
        resp = await http.get(f"/assistants/{assistant['assistant_id']}/schemas")
    assert resp.status_code == 200
    schema = resp.json()["config_schema"]
    props = schema["properties"]
    ui = {name: prop["metadata"]["x_oap_ui_config"] for name, prop in props.items()}
    assert set(ui) >= {"model_name", "temperature", "max_tokens", "system_prompt", "mcp_config", "rag", "base_url",
                       "custom_model_name", "custom_api_key"}  # fmt: skip
    assert ui["model_name"]["type"] == "select"
    assert {"label": "gpt-4o-mini", "value": "openai:gpt-4o-mini"} in ui["model_name"]["options"]
    assert ui["temperature"] == {**ui["temperature"], "type": "slider", "min": 0, "max": 2, "step": 0.1, "default": 0.7}
    assert (ui["max_tokens"]["type"], ui["max_tokens"]["default"]) == ("number", 4000)
    assert ui["system_prompt"]["type"] == "textarea"
    assert ui["mcp_config"]["type"] == "mcp" and ui["rag"]["type"] == "rag"
    assert ui["base_url"]["type"] == "text"
    # nested models stay resolvable from the served schema
    assert set(schema["$defs"]["MCPConfig"]["properties"]) == {"url", "tools", "auth_required"}
    assert set(schema["$defs"]["RagConfig"]["properties"]) == {"rag_url", "collections"}
    # the SDK reads the same thing, also for the graph's system assistant
    system = await sdk.assistants.get_schemas(system_assistant_id("agent"))
    assert system["config_schema"]["properties"]["mcp_config"]["metadata"]["x_oap_ui_config"] == {"type": "mcp"}


# ------------------------------------------------------------------------------------------ token streaming
async def test_messages_tuple_streams_tokens(sdk: Any, mock_llm: MockLLM) -> None:
    _, parts = await run(sdk, model_config(mock_llm), "hello streaming world", stream_mode=["messages-tuple", "values"])
    assert errors(parts) == []
    chunks = [p.data for p in parts if p.event == "messages"]
    ai = [(msg, meta) for msg, meta in chunks if msg["type"] == "AIMessageChunk"]
    tokens = [msg["content"] for msg, _ in ai if msg["content"]]
    assert tokens == ["You", " said:", " hello", " streaming", " world"]
    assert {meta["langgraph_node"] for _, meta in ai} == {"agent"}
    assert len({msg["id"] for msg, _ in ai}) == 1
    final = final_messages(parts)[-1]
    assert (final["type"], final["content"]) == ("ai", "You said: hello streaming world")
    assert final["usage_metadata"]["total_tokens"] > 0  # usage came back through the stream
    (request,) = mock_llm.requests()
    assert request["stream"] is True and request["model"] == "mock-model"
    assert request["messages"][0] == {"role": "system", "content": PROMPT}


async def test_messages_mode_streams_partials(sdk: Any, mock_llm: MockLLM) -> None:
    _, parts = await run(sdk, model_config(mock_llm), "partial tokens please", stream_mode="messages")
    assert errors(parts) == []
    events = [p.event for p in parts]
    assert events[:3] == ["metadata", "messages/metadata", "messages/partial"]
    partial_texts = [p.data[0]["content"] for p in parts if p.event == "messages/partial" and p.data[0]["type"] == "ai"]
    answer = "You said: partial tokens please"
    assert partial_texts[-1] == answer
    growing = [t for t in partial_texts if t]
    assert len(set(growing)) >= 4  # one per token, each the whole text so far
    assert all(answer.startswith(t) for t in growing)
    assert growing == sorted(growing, key=len)


# ------------------------------------------------------------------------------------------ tools: MCP
async def test_tool_call_round_trip_through_mcp(sdk: Any, mock_llm: MockLLM, mcp_open: McpServer) -> None:
    config = model_config(mock_llm, mcp_config={"url": mcp_open.url, "tools": ["add"], "auth_required": False})
    _, parts = await run(sdk, config, "What is 2 plus 3? Use add.", stream_mode=["values", "messages-tuple"])
    assert errors(parts) == []
    messages = final_messages(parts)
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    (call,) = messages[1]["tool_calls"]
    assert (call["name"], call["args"]) == ("add", {"a": 2, "b": 3})
    assert messages[2]["tool_call_id"] == call["id"] and messages[2]["status"] == "success"
    assert "5" in str(messages[2]["content"])
    assert messages[3]["content"] == "The tool returned: 5"
    # the tool message also streamed, between the two model turns
    streamed = [msg["type"] for msg, _ in (p.data for p in parts if p.event == "messages")]
    assert "tool" in streamed
    first, second = mock_llm.requests()
    assert [t["function"]["name"] for t in first["tools"]] == ["add"]  # filtered by mcp_config.tools
    assert second["messages"][-1]["role"] == "tool" and second["messages"][-1]["tool_call_id"] == call["id"]


async def test_mcp_tool_failure_reaches_the_model(sdk: Any, mock_llm: MockLLM, mcp_open: McpServer) -> None:
    config = model_config(mock_llm, mcp_config={"url": mcp_open.url, "tools": ["fail"]})
    _, parts = await run(sdk, config, "please fail now")
    assert errors(parts) == []
    tool = final_messages(parts)[2]
    assert tool["status"] == "error" and "failing on purpose" in str(tool["content"])
    assert final_messages(parts)[-1]["content"].startswith("The tool returned:")


async def test_mcp_auth_required_forwards_the_user_token(sdk: Any, mock_llm: MockLLM, mcp_auth: McpServer) -> None:
    config = model_config(mock_llm, mcp_config={"url": mcp_auth.url, "tools": ["shout"], "auth_required": True})
    _, parts = await run(sdk, config, "shout hello", run_configurable={"x-supabase-access-token": USER_TOKEN})
    assert errors(parts) == []
    messages = final_messages(parts)
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert "SHOUT HELLO" in str(messages[2]["content"])
    assert set(mcp_auth.seen_tokens()) == {USER_TOKEN}


async def test_mcp_auth_refused_or_missing_token_is_a_clear_run_error(
    sdk: Any, mock_llm: MockLLM, mcp_auth: McpServer
) -> None:
    config = model_config(mock_llm, mcp_config={"url": mcp_auth.url, "auth_required": True})
    _, parts = await run(sdk, config, "shout hi", run_configurable={"x-supabase-access-token": "stolen"})
    (err,) = errors(parts)
    assert err["error"] == "RuntimeError"
    assert f"{mcp_auth.url}/mcp" in err["message"] and "401" in err["message"]
    _, parts = await run(sdk, config, "shout hi")
    (err,) = errors(parts)
    assert err["error"] == "ValueError" and "x-supabase-access-token" in err["message"]
    assert mock_llm.requests() == []  # the model was never called


async def test_unknown_mcp_tool_name_is_a_clear_run_error(sdk: Any, mock_llm: MockLLM, mcp_open: McpServer) -> None:
    config = model_config(mock_llm, mcp_config={"url": mcp_open.url, "tools": ["add", "nope"]})
    _, parts = await run(sdk, config, "hi")
    (err,) = errors(parts)
    assert err["error"] == "ValueError" and "['nope']" in err["message"] and "add" in err["message"]


async def test_dead_or_hung_mcp_service_ends_the_run_with_an_error(sdk: Any, mock_llm: MockLLM) -> None:
    refused = closed_port_url()
    thread_id, parts = await run(sdk, model_config(mock_llm, mcp_config={"url": refused}), "hi")
    (err,) = errors(parts)
    assert err["error"] == "RuntimeError" and f"{refused}/mcp" in err["message"]
    assert "Connect" in err["message"]
    runs = await sdk.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["error"]
    with silent_port() as hung:
        _, parts = await run(sdk, model_config(mock_llm, mcp_config={"url": hung}), "hi")
    (err,) = errors(parts)
    assert err["error"] == "TimeoutError" and f"{hung}/mcp" in err["message"]


# ------------------------------------------------------------------------------------------ tools: RAG
COLLECTIONS = {
    "c-123": {
        "name": "Product docs",
        "metadata": {"description": "Robyn server manuals"},
        "documents": [
            {"id": "d1", "page_content": "Robyn serves LangGraph agents."},
            {"id": "d2", "page_content": "Unrelated text."},
        ],
    }
}


async def test_rag_search_with_the_user_token(sdk: Any, mock_llm: MockLLM) -> None:
    mock_llm.set_rules(
        [
            {
                "match": "robyn",
                "after_tool": False,
                "tool_calls": [{"name": "Product_docs", "arguments": {"query": "robyn"}}],
            }
        ]  # fmt: skip
    )
    with RagService(USER_TOKEN, COLLECTIONS) as rag:
        config = model_config(mock_llm, rag={"rag_url": rag.url, "collections": ["c-123"]})
        _, parts = await run(sdk, config, "what do the docs say about robyn?",
                             run_configurable={"x-supabase-access-token": USER_TOKEN})  # fmt: skip
        searches = list(rag.searches)
    assert errors(parts) == []
    assert searches == [{"collection": "c-123", "query": "robyn", "limit": 10}]
    messages = final_messages(parts)
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert '<document id="d1">' in messages[2]["content"] and "Robyn serves LangGraph agents." in messages[2]["content"]
    assert "d2" not in messages[2]["content"]
    assert messages[3]["content"].startswith("The tool returned: <all-documents>")
    (tool,) = mock_llm.requests()[0]["tools"]
    assert tool["function"]["name"] == "Product_docs"
    assert "Robyn server manuals" in tool["function"]["description"]


async def test_rag_failures(sdk: Any, mock_llm: MockLLM) -> None:
    with RagService(USER_TOKEN, COLLECTIONS) as rag:
        config = model_config(mock_llm, rag={"rag_url": rag.url, "collections": ["c-123"]})
        # a refused token: the collection cannot be read, the run ends with a clear error
        _, parts = await run(sdk, config, "Product_docs robyn", run_configurable={"x-supabase-access-token": "bad"})
        (err,) = errors(parts)
        assert err["error"] == "RuntimeError"
        assert f"{rag.url}/collections/c-123" in err["message"] and "401" in err["message"]
        # a failing search: the model gets an error tool message and the run goes on
        rag.fail_search = True
        _, parts = await run(
            sdk, config, "Product_docs robyn", run_configurable={"x-supabase-access-token": USER_TOKEN}
        )
    assert errors(parts) == []
    tool = final_messages(parts)[2]
    assert tool["status"] == "error"
    assert "HTTP 500" in tool["content"] and "search index is offline" in tool["content"]
    # a hung service: the run ends with a timeout error instead of waiting forever
    with silent_port() as hung:
        config = model_config(mock_llm, rag={"rag_url": hung, "collections": ["c-123"]})
        _, parts = await run(
            sdk, config, "Product_docs robyn", run_configurable={"x-supabase-access-token": USER_TOKEN}
        )
    (err,) = errors(parts)
    assert err["error"] == "TimeoutError" and f"{hung}/collections/c-123" in err["message"]


# ------------------------------------------------------------------------------------------ model errors
async def test_missing_model_configuration_says_what_to_set(sdk: Any) -> None:
    thread_id, parts = await run(sdk, {}, "hello")
    assert errors(parts) == [{"error": "ValueError", "message": NO_MODEL_MESSAGE}]
    for needed in ("base_url", "custom_model_name", "apiKeys.OPENAI_API_KEY", "OPENAI_API_KEY"):
        assert needed in NO_MODEL_MESSAGE
    assert [r["status"] for r in await sdk.runs.list(thread_id)] == ["error"]


async def test_unreachable_model_endpoint_is_a_clean_error(sdk: Any, mock_llm: MockLLM) -> None:
    dead = closed_port_url() + "/v1"
    _, parts = await run(sdk, model_config(mock_llm, base_url=dead), "hello")
    (err,) = errors(parts)
    assert err["error"] == "RuntimeError"
    assert err["message"].startswith(f"Could not connect to the model endpoint {dead}")
    assert "Traceback" not in err["message"]


async def test_rejected_api_key_is_a_clean_error(sdk: Any, mock_llm: MockLLM) -> None:
    _, parts = await run(sdk, model_config(mock_llm, custom_api_key="wrong"), "hello")
    (err,) = errors(parts)
    assert err["error"] == "ValueError"
    assert f"{mock_llm.base_url} rejected the API key (HTTP 401)" in err["message"]
    assert "custom_api_key" in err["message"]


async def test_transient_model_error_is_retried(sdk: Any, mock_llm: MockLLM) -> None:
    mock_llm.set_rules([{"status": 503, "times": 1}])
    _, parts = await run(sdk, model_config(mock_llm), "second time lucky")
    assert errors(parts) == []
    assert final_messages(parts)[-1]["content"] == "You said: second time lucky"
    assert len(mock_llm.requests()) == 2  # the failed try and the retry


# ------------------------------------------------------------------------------------------ config merging
async def test_run_configurable_overrides_the_assistant(sdk: Any, mock_llm: MockLLM) -> None:
    assistant_cfg = model_config(mock_llm, temperature=0.1, max_tokens=50, system_prompt="from the assistant")
    _, parts = await run(
        sdk, assistant_cfg, "hi", run_configurable={"system_prompt": "from the run", "temperature": 1.5}
    )
    assert errors(parts) == []
    (request,) = mock_llm.requests()
    assert request["messages"][0] == {"role": "system", "content": "from the run"}
    assert request["temperature"] == 1.5
    assert request.get("max_completion_tokens", request.get("max_tokens")) == 50
    assert request["model"] == "mock-model"
