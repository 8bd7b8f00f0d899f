"""`/mcp`: the official MCP client lists the assistants as tools and calls one; auth applies."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.server import ServerProcess

CONFIG = Path(__file__).parent / "graphs" / "platform" / "langgraph.json"


@pytest.fixture(scope="module")
def platform_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=CONFIG).start()
    yield proc
    proc.stop()


async def _session_call(server: ServerProcess, user: str, action):
    headers = {"Authorization": f"Bearer {user}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.serverInfo.name == "LangGraph"
                return await action(session)


async def test_the_assistants_are_listed_as_tools(platform_server: ServerProcess) -> None:
    async def list_tools(session: ClientSession):
        return await session.list_tools()

    result = await _session_call(platform_server, "alice", list_tools)
    tools = {t.name: t for t in result.tools}
    assert set(tools) == {
        "agent",
        "slow_graph",
        "no_args",
        "config_only",
        "runtime_only",
        "config_and_runtime",
        "sync_cm_runtime_first",
    }
    schema = tools["runtime_only"].inputSchema
    assert schema["type"] == "object" and "question" in schema["properties"]
    assert tools["runtime_only"].description == "Tool based on the runtime_only assistant"


async def test_calling_a_tool_runs_its_assistant_as_the_caller(platform_server: ServerProcess) -> None:
    async def call(session: ClientSession):
        return await session.call_tool("runtime_only", {"question": "who am i?"})

    result = await _session_call(platform_server, "mallory", call)
    assert result.isError is False
    value = ast.literal_eval(result.content[0].text)  # the reference returns the final state's repr
    assert value["question"] == "who am i?"
    assert value["seen"]["user"] == "mallory"
    assert value["seen"]["access_context"] == "threads.create_run"


async def test_an_unknown_tool_is_an_error_result(platform_server: ServerProcess) -> None:
    async def call(session: ClientSession):
        return await session.call_tool("no_such_tool", {})

    result = await _session_call(platform_server, "alice", call)
    assert result.isError is True
    assert "Unknown tool: no_such_tool" in result.content[0].text


def test_mcp_requires_authentication(platform_server: ServerProcess) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(f"{platform_server.url}/mcp", json=body, headers=headers)
    assert r.status_code == 401
    assert httpx.get(f"{platform_server.url}/mcp", headers={"Authorization": "Bearer alice"}).status_code == 405
