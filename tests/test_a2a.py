"""`/a2a/{assistant_id}`: the official a2a-sdk client reads the agent card, sends and streams a task, gets and
cancels tasks; auth applies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from a2a import types as a2a
from a2a.client import ClientConfig, create_client
from a2a.utils.errors import TaskNotCancelableError
from google.protobuf import json_format

from robyn_server.graphs import system_assistant_id
from tests.server import ServerProcess

CONFIG = Path(__file__).parent / "graphs" / "platform" / "langgraph.json"
ALICE = {"Authorization": "Bearer alice"}
AGENT = system_assistant_id("agent")
ANSWER = "The weather in sf is sunny."


@pytest.fixture(scope="module")
def platform_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(config=CONFIG).start()
    yield proc
    proc.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(headers=ALICE, timeout=30) as client:
        yield client


def _message(text: str, context_id: str | None = None) -> a2a.SendMessageRequest:
    message = a2a.Message(message_id=str(uuid.uuid4()), role=a2a.Role.ROLE_USER, parts=[a2a.Part(text=text)])
    if context_id:
        message.context_id = context_id
    return a2a.SendMessageRequest(message=message)


async def test_the_agent_card_describes_the_assistant(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    card = (await http.get(f"{platform_server.url}/a2a/{AGENT}/.well-known/agent-card.json")).json()
    assert card["supportedInterfaces"] == [
        {"url": f"{platform_server.url}/a2a/{AGENT}", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
    ]
    assert card["capabilities"]["streaming"] is True
    assert card["skills"][0]["metadata"]["inputSchema"]["supportsA2A"] is True
    # the reference's other two addresses of the same card
    for path in (f"/a2a/{AGENT}/.well-known/agent.json", f"/.well-known/agent-card.json?assistant_id={AGENT}"):
        assert (await http.get(f"{platform_server.url}{path}")).json() == card, path
    missing = await http.get(f"{platform_server.url}/.well-known/agent-card.json")
    assert missing.status_code == 400
    assert missing.json() == {"error": {"code": -32602, "message": "Missing required query parameter: assistant_id"}}


async def test_send_a_task_then_get_it(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    client = await create_client(f"{platform_server.url}/a2a/{AGENT}", ClientConfig(streaming=False, httpx_client=http))
    events = [e async for e in client.send_message(_message("weather in sf?"))]
    assert len(events) == 1 and events[0].HasField("task")
    task = events[0].task
    assert task.status.state == a2a.TaskState.TASK_STATE_COMPLETED
    assert task.artifacts[0].parts[0].text == ANSWER
    assert [m.role for m in task.history] == [a2a.Role.ROLE_USER, a2a.Role.ROLE_AGENT]
    assert task.history[0].parts[0].text == "weather in sf?"
    context_id, run_id = task.id.split(":")
    assert context_id == task.context_id
    fetched = await client.get_task(a2a.GetTaskRequest(id=task.id))
    assert fetched.status.state == a2a.TaskState.TASK_STATE_COMPLETED and fetched.id == task.id
    # the context is the thread: a second message continues the conversation
    again = [e async for e in client.send_message(_message("and tomorrow?", context_id))][0].task
    assert again.context_id == context_id and again.id != task.id
    assert [m.parts[0].text for m in again.history if m.role == a2a.Role.ROLE_USER] == [
        "weather in sf?",
        "and tomorrow?",
    ]
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(a2a.CancelTaskRequest(id=task.id))  # finished: not cancelable


async def test_stream_a_task(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    client = await create_client(f"{platform_server.url}/a2a/{AGENT}", ClientConfig(streaming=True, httpx_client=http))
    events = [e async for e in client.send_message(_message("weather in sf?"))]
    assert events[0].HasField("task") and events[0].task.status.state == a2a.TaskState.TASK_STATE_WORKING
    updates = [e.artifact_update for e in events if e.HasField("artifact_update")]
    assert len(updates) > 1  # token by token
    assert "".join(u.artifact.parts[0].text for u in updates) == ANSWER
    assert events[-1].HasField("status_update")
    assert events[-1].status_update.status.state == a2a.TaskState.TASK_STATE_COMPLETED


async def test_cancel_a_running_task(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    url = f"{platform_server.url}/a2a/{system_assistant_id('slow')}"
    streaming = await create_client(url, ClientConfig(streaming=True, httpx_client=http))
    plain = await create_client(url, ClientConfig(streaming=False, httpx_client=http))
    request = a2a.SendMessageRequest(
        message=json_format.ParseDict(
            {"messageId": str(uuid.uuid4()), "role": "ROLE_USER", "parts": [{"data": {"delay": 5}}]}, a2a.Message()
        )
    )
    events = streaming.send_message(request)
    first = await anext(events)
    assert first.task.status.state == a2a.TaskState.TASK_STATE_WORKING
    cancelled = await plain.cancel_task(a2a.CancelTaskRequest(id=first.task.id))
    assert cancelled.status.state == a2a.TaskState.TASK_STATE_CANCELED
    rest = [e async for e in events]
    assert rest[-1].status_update.status.state == a2a.TaskState.TASK_STATE_CANCELED
    fetched = await plain.get_task(a2a.GetTaskRequest(id=first.task.id))
    assert fetched.status.state == a2a.TaskState.TASK_STATE_CANCELED


async def test_tasks_of_another_user_are_not_found(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    client = await create_client(f"{platform_server.url}/a2a/{AGENT}", ClientConfig(streaming=False, httpx_client=http))
    task = [e async for e in client.send_message(_message("hi"))][0].task
    body = {"jsonrpc": "2.0", "id": 7, "method": "tasks/get", "params": {"id": task.id}}
    mine = await http.post(f"{platform_server.url}/a2a/{AGENT}", json=body)
    assert mine.json()["result"]["id"] == task.id
    theirs = await http.post(f"{platform_server.url}/a2a/{AGENT}", json=body, headers={"Authorization": "Bearer bob"})
    assert theirs.json()["error"]["code"] == -32001
    assert (
        await http.post(f"{platform_server.url}/a2a/{AGENT}", json=body, headers={"Authorization": ""})
    ).status_code == 401


async def test_json_rpc_errors(platform_server: ServerProcess, http: httpx.AsyncClient) -> None:
    url = f"{platform_server.url}/a2a/{AGENT}"
    bad_json = await http.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.json()["error"]["code"] == -32700
    unknown = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tasks/explode", "params": {}})
    assert unknown.json() == {
        "jsonrpc": "2.0",
        "id": 1,
        "error": {"code": -32601, "message": "Method not found: tasks/explode"},
    }
    missing = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "SendMessage", "params": {}})
    assert missing.json()["error"]["code"] == -32602
