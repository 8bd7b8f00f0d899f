"""Protocol v2 (thread-centric streaming) with the official Python SDK (`client.threads.stream`, over SSE and over
WebSocket), raw HTTP and raw WebSocket: commands, the thread stream, replay with `since`, subgraph filters, errors
and ownership."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from langgraph_sdk import get_client
from langgraph_sdk.stream.errors import is_non_retryable_stream_error
from langgraph_sdk.stream.transport.ws import ProtocolWebSocketTransport
from websockets.exceptions import ConnectionClosedError

from tests.conftest import suite_server
from tests.runs_helpers import ANSWER
from tests.server import ROOT, ServerProcess
from tests.test_auth_support import JWT_ENV, bearer, hs256

ALL_CHANNELS = ["values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom"]
AGENT_INPUT = {"messages": [{"role": "user", "content": "weather in sf?"}]}
DEADLINE = 30.0
PROTOCOL_CONFIG = ROOT / "tests" / "graphs" / "langgraph.protocol.json"  # the test graphs plus protocol_graphs.py


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from suite_server(tmp_path_factory, PROTOCOL_CONFIG)


@pytest.fixture(scope="module")
def base_url(server: ServerProcess) -> str:
    return server.url


async def read_events(
    http: httpx.AsyncClient, thread_id: str, body: dict[str, Any], until: Any, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Events of one `POST /threads/{id}/stream/events` connection, until `until(events)` holds."""
    events: list[dict[str, Any]] = []
    async with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line:
                key, _, value = line.partition(": ")
                frame[key] = value
                continue
            if "data" in frame:
                event = json.loads(frame["data"])
                assert frame["event"] == event["method"] and frame["id"] == str(event["seq"])
                events.append(event)
                if until(events):
                    return events
            frame = {}
    raise AssertionError(f"stream ended early after {len(events)} events")


def root_lifecycle(events: list[dict[str, Any]], *phases: str) -> int:
    return sum(
        1
        for e in events
        if e["method"] == "lifecycle" and not e["params"]["namespace"] and e["params"]["data"]["event"] in phases
    )


def terminal(count: int = 1) -> Any:
    return lambda events: root_lifecycle(events, "completed", "failed") >= count


def paused_for_input(events: list[dict[str, Any]]) -> bool:
    return root_lifecycle(events, "interrupted") >= 1


async def command(http: httpx.AsyncClient, thread_id: str, method: str, params: dict[str, Any], id_: int = 1) -> Any:
    response = await http.post(f"/threads/{thread_id}/commands", json={"id": id_, "method": method, "params": params})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def ahttp(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=DEADLINE) as client:
        yield client


TRANSPORTS = pytest.mark.parametrize("transport", ["sse", "websocket"])


@TRANSPORTS
async def test_sdk_streams_tokens_tool_calls_and_final_values(client: Any, transport: str) -> None:
    """A run started by the SDK's `run.start`, on a thread id the client made up: token deltas arrive as
    separate events before the run ends, then the tool call, its result and the final values."""
    async with client.threads.stream(assistant_id="agent", transport=transport) as thread:
        raw = thread.subscribe(["messages", "lifecycle", "values", "custom", "updates", "checkpoints"])
        result = await thread.run.start(input=AGENT_INPUT)
        assert uuid.UUID(result["run_id"])
        events: list[dict[str, Any]] = []

        async def collect() -> None:
            async for event in raw:
                events.append(event)
                if root_lifecycle(events, "completed", "failed"):
                    return

        await asyncio.wait_for(collect(), DEADLINE)
        values = await asyncio.wait_for(thread.output, DEADLINE)

    methods = [e["method"] for e in events]
    assert events[0]["params"]["data"] == {"event": "running", "graph_name": "agent"}
    assert root_lifecycle(events, "completed") == 1 and methods[-1] == "lifecycle"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    deltas = [e["params"]["data"] for e in events if e["method"] == "messages"]
    text = [
        d["delta"]["text"] for d in deltas if d["event"] == "content-block-delta" and d["delta"]["type"] == "text-delta"
    ]
    assert "".join(text) == ANSWER and len(text) == 6  # one event per streamed token
    kinds = [d["event"] for d in deltas]
    assert kinds.count("message-start") == 2 and kinds.count("message-finish") == 2
    tool_call = next(
        d["content"] for d in deltas if d["event"] == "content-block-finish" and d["content"]["type"] == "tool_call"
    )
    assert tool_call == {"type": "tool_call", "id": "call_weather_1", "name": "get_weather", "args": {"city": "sf"}}
    custom = [e["params"]["data"] for e in events if e["method"] == "custom"]
    assert custom == [{"payload": {"progress": "calling get_weather", "args": {"city": "sf"}}}]
    assert {"model", "tools"} <= {k for e in events if e["method"] == "updates" for k in e["params"]["data"]}
    checkpoint = next(e["params"]["data"] for e in events if e["method"] == "checkpoints")
    assert set(checkpoint) <= {"id", "parent_id", "step", "source"} and uuid.UUID(checkpoint["id"])
    last_values = [e for e in events if e["method"] == "values"][-1]["params"]["data"]
    assert [m["type"] for m in last_values["messages"]] == ["human", "ai", "tool", "ai"]
    tool_message = last_values["messages"][2]
    assert tool_message["content"] == "It's sunny in sf" and tool_message["tool_call_id"] == "call_weather_1"
    assert values["messages"][-1]["content"][0]["text"] == ANSWER


@TRANSPORTS
async def test_sdk_answers_an_interrupt_with_input_respond(
    client: Any, ahttp: httpx.AsyncClient, transport: str
) -> None:
    async with client.threads.stream(assistant_id="interrupt", transport=transport) as thread:
        paused = thread.subscribe(["values", "lifecycle"])
        await thread.run.start(input={"request": "deploy"})

        async def until_paused() -> None:
            async for _ in paused:  # the SDK ends its projections when the run stops for input
                pass

        await asyncio.wait_for(until_paused(), DEADLINE)
        assert thread.interrupted and len(thread.interrupts) == 1
        events = await read_events(ahttp, thread.thread_id, {"channels": ["input", "lifecycle"]}, paused_for_input)
        requested = [e for e in events if e["method"] == "input.requested"]
        assert len(requested) == 1 and requested[0]["params"]["namespace"] == []
        assert requested[0]["params"]["data"] == {
            "interrupt_id": thread.interrupts[0]["interrupt_id"],
            "payload": {"question": "approve deploy?"},
        }
        assert [e["params"]["data"]["event"] for e in events if e["method"] == "lifecycle"] == [
            "running",
            "interrupted",
        ]
        assert await thread.run.respond("yes") == {}
        values = await asyncio.wait_for(thread.output, DEADLINE)
    assert values["result"] == "deploy -> yes"
    again = await command(
        ahttp,
        thread.thread_id,
        "input.respond",
        {"interrupt_id": requested[0]["params"]["data"]["interrupt_id"], "response": "no"},
    )
    assert again["error"] == "no_such_interrupt"  # already answered


@TRANSPORTS
async def test_failing_run_ends_with_lifecycle_failed_and_its_error(
    client: Any, ahttp: httpx.AsyncClient, transport: str
) -> None:
    thread_id = str(uuid.uuid4())
    async with client.threads.stream(thread_id, assistant_id="fail", transport=transport) as thread:
        await thread.run.start(input={"count": 1})
        with pytest.raises(RuntimeError, match="boom: deliberate failure"):
            await asyncio.wait_for(thread.output, DEADLINE)
    events = await read_events(ahttp, thread_id, {"channels": ["lifecycle"]}, terminal())
    assert events[-1]["params"]["data"] == {
        "event": "failed",
        "graph_name": "fail",
        "error": "boom: deliberate failure",
    }
    assert (await ahttp.get(f"/threads/{thread_id}")).json()["status"] == "error"


async def test_stream_replays_after_since_without_duplicates_and_stays_open(ahttp: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    started = await command(ahttp, thread_id, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT})
    assert started["type"] == "success" and started["meta"] == {"applied_through_seq": 0}
    body = {"channels": ALL_CHANNELS}
    first = await read_events(ahttp, thread_id, body, terminal())
    cut = first[len(first) // 2]["seq"]
    again = await read_events(ahttp, thread_id, {**body, "since": cut}, terminal())
    assert [e["seq"] for e in again] == [e["seq"] for e in first if e["seq"] > cut]
    assert [e["event_id"] for e in again] == [e["event_id"] for e in first if e["seq"] > cut]
    assert again == [e for e in first if e["seq"] > cut]  # the same events, byte for byte
    assert not [e for e in first if e["method"] == "tasks"]  # LangGraph folds task events into lifecycle

    # One connection follows the thread across runs: the second run's events arrive on it.
    async def second_run() -> None:
        await command(ahttp, thread_id, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT}, id_=2)

    reader = asyncio.create_task(read_events(ahttp, thread_id, {"channels": ["lifecycle"], "since": cut}, terminal(2)))
    await second_run()
    both = await asyncio.wait_for(reader, DEADLINE)
    assert [e["params"]["data"]["event"] for e in both if not e["params"]["namespace"]][-2:] == ["running", "completed"]
    tree = await command(ahttp, thread_id, "agent.getTree", {}, id_=3)
    assert tree["result"] == {"tree": {"namespace": [], "status": "completed", "graph_name": "agent"}}

    # A cursor beyond what this server numbered (from before a restart) replays what is kept.
    stale = await read_events(ahttp, thread_id, {"channels": ["lifecycle"], "since": 10**6}, terminal(2))
    assert stale[0]["seq"] == 1
    assert [e["params"]["data"]["event"] for e in stale] == ["running", "completed", "running", "completed"]


async def test_deleting_the_thread_ends_its_streams(ahttp: httpx.AsyncClient, base_url: str) -> None:
    """The SSE body ends; a WebSocket closes with 1011 "thread stream ended", like the reference's."""
    thread_id = str(uuid.uuid4())
    await command(ahttp, thread_id, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT})
    await read_events(ahttp, thread_id, {"channels": ["lifecycle"]}, terminal())
    socket = await websockets.connect(socket_url(base_url, thread_id), open_timeout=DEADLINE)
    await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["lifecycle"]}}))
    await answer(socket, 1)

    async def follow() -> int:
        count = 0
        async with ahttp.stream("POST", f"/threads/{thread_id}/stream/events", json={"channels": ["lifecycle"]}) as r:
            async for line in r.aiter_lines():
                count += line.startswith("data: ")
                if count == 2:
                    opened.set()
        return count

    opened = asyncio.Event()
    reader = asyncio.create_task(follow())
    await asyncio.wait_for(opened.wait(), DEADLINE)
    assert (await ahttp.delete(f"/threads/{thread_id}")).status_code == 204
    assert await asyncio.wait_for(reader, DEADLINE) == 2  # the body ended
    with pytest.raises(ConnectionClosedError) as closed:
        while True:  # kept events the socket's relay had not yet read when the subscription began come first
            frame = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
            assert frame["type"] == "event" and frame["method"] == "lifecycle", frame
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "thread stream ended")


async def test_subgraph_namespaces_and_depth(ahttp: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    await command(ahttp, thread_id, "run.start", {"assistant_id": "nested", "input": AGENT_INPUT})
    everything = await read_events(ahttp, thread_id, {"channels": ["values", "messages", "lifecycle"]}, terminal())
    inner = {tuple(e["params"]["namespace"]) for e in everything if e["params"]["namespace"]}
    assert len(inner) == 1 and next(iter(inner))[0].startswith("inner:")
    started = next(e for e in everything if e["method"] == "lifecycle" and e["params"]["data"]["event"] == "started")
    assert started["params"]["data"]["graph_name"] == "inner" and started["params"]["namespace"] == list(
        next(iter(inner))
    )

    root_only = await read_events(
        ahttp, thread_id, {"channels": ["values", "messages", "lifecycle"], "namespaces": [[]], "depth": 0}, terminal()
    )
    assert root_only and all(e["params"]["namespace"] == [] for e in root_only)
    assert [e["seq"] for e in root_only] == [e["seq"] for e in everything if not e["params"]["namespace"]]

    def inner_done(events: list[dict[str, Any]]) -> bool:
        return any(e["method"] == "lifecycle" and e["params"]["data"]["event"] == "completed" for e in events)

    scoped = await read_events(
        ahttp, thread_id, {"channels": ["messages", "lifecycle"], "namespaces": [["inner"]]}, inner_done
    )
    assert scoped and all(e["params"]["namespace"][0].startswith("inner:") for e in scoped)
    tokens = [e for e in scoped if e["method"] == "messages" and e["params"]["data"]["event"] == "content-block-delta"]
    assert len(tokens) == 7  # the tool-call args delta and six text tokens, all inside the subgraph
    tree = await command(ahttp, thread_id, "agent.getTree", {})
    child = tree["result"]["tree"]["children"][0]
    assert child["graph_name"] == "inner" and child["status"] == "completed"


async def test_command_errors(ahttp: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    unknown = await command(ahttp, thread_id, "state.teleport", {})
    assert unknown == {
        "type": "error",
        "id": 1,
        "error": "unknown_command",
        "message": "Unknown protocol command: state.teleport",
    }
    no_assistant = await command(ahttp, thread_id, "run.start", {})
    assert no_assistant["error"] == "invalid_argument" and "assistant_id" in no_assistant["message"]
    no_thread = await command(ahttp, thread_id, "input.respond", {"interrupt_id": "nope", "response": 1})
    assert no_thread["error"] == "no_such_run"  # like the reference: no thread, so no interrupted run
    bad_namespace = await command(ahttp, thread_id, "input.respond", {"interrupt_id": "x", "namespace": "root"})
    assert bad_namespace["error"] == "invalid_argument"
    bad_channels = await command(ahttp, thread_id, "subscription.subscribe", {"channels": ["telepathy"]})
    assert bad_channels["error"] == "invalid_argument"
    no_tree = await command(ahttp, thread_id, "agent.getTree", {})
    assert no_tree["error"] == "no_such_run"
    envelope = await ahttp.post(f"/threads/{thread_id}/commands", json={"id": "one", "method": "run.start"})
    assert envelope.status_code == 400 and envelope.json()["error"] == "invalid_argument"
    not_json = await ahttp.post(
        f"/threads/{thread_id}/commands", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json() == {"detail": "Invalid JSON body"}
    for body in ({}, {"channels": []}, {"channels": ["values", "telepathy"]}):
        refused = await ahttp.post(f"/threads/{thread_id}/stream/events", json=body)
        assert refused.status_code == 400 and "channels" in refused.json()["detail"]
    not_uuid = await ahttp.post("/threads/not-a-uuid/commands", json={"id": 1, "method": "agent.getTree"})
    assert not_uuid.status_code == 422


@pytest.fixture(scope="module")
def auth_server() -> Iterator[ServerProcess]:
    proc = ServerProcess(PROTOCOL_CONFIG, env={**JWT_ENV, "ROBYN_SERVER_STORAGE": "memory"})
    proc.start()
    yield proc
    proc.stop()


async def test_another_users_thread_is_404_before_any_event(auth_server: ServerProcess) -> None:
    alice, bob = bearer(hs256(f"alice-{uuid.uuid4().hex[:6]}")), bearer(hs256(f"bob-{uuid.uuid4().hex[:6]}"))
    sdk = get_client(url=auth_server.url, api_key=None, headers=alice)
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=DEADLINE) as http:
        anonymous = await http.post(f"/threads/{uuid.uuid4()}/commands", json={"id": 1, "method": "agent.getTree"})
        assert anonymous.status_code == 401
        async with sdk.threads.stream(assistant_id="agent") as thread:
            await thread.run.start(input=AGENT_INPUT)
            values = await asyncio.wait_for(thread.output, DEADLINE)
            thread_id = thread.thread_id
        assert values["messages"][-1]["content"][0]["text"] == ANSWER
        for path, body in (
            ("commands", {"id": 1, "method": "agent.getTree", "params": {}}),
            ("commands", {"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": AGENT_INPUT}}),
            ("stream/events", {"channels": ALL_CHANNELS}),
        ):
            theirs = await http.post(f"/threads/{thread_id}/{path}", json=body, headers=bob)
            assert theirs.status_code == 404, theirs.text
            assert theirs.json() == {"detail": f"Thread with ID {thread_id} not found"}
        mine = await read_events(http, thread_id, {"channels": ["lifecycle"]}, terminal(), headers=alice)
        assert root_lifecycle(mine, "completed") == 1
    await sdk.http.client.aclose()


def socket_url(base_url: str, thread_id: str) -> str:
    return base_url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"


async def answer(socket: Any, command_id: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The answer to one command, and the events that came before it."""
    events = []
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
        if frame["type"] == "event":
            events.append(frame)
        elif frame["id"] == command_id:
            return frame, events


async def socket_events(socket: Any, until: Any, events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Event frames (after `events`, those already read) until `until(events)` holds."""
    events = list(events or [])
    while not until(events):
        frame = json.loads(await asyncio.wait_for(socket.recv(), DEADLINE))
        if frame["type"] == "event":
            events.append(frame)
    return events


async def test_websocket_commands_and_subscriptions(base_url: str) -> None:
    """Commands over the socket (as the JS SDK sends them): a subscription, `run.start`, `input.respond` for the
    interrupt the run stops at; a later subscription replays the kept events it selects, `reconnect` only those
    after `since`; bad frames get error answers."""
    thread_id = str(uuid.uuid4())
    async with websockets.connect(socket_url(base_url, thread_id), open_timeout=DEADLINE) as socket:
        watch = {"channels": ["lifecycle", "input"]}
        await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": watch}))
        subscribed, _ = await answer(socket, 1)
        assert subscribed["type"] == "success" and subscribed["result"]["replayed_events"] == 0
        start = {"assistant_id": "interrupt", "input": {"request": "deploy"}}
        await socket.send(json.dumps({"id": 2, "method": "run.start", "params": start}))
        started, early = await answer(socket, 2)
        assert uuid.UUID(started["result"]["run_id"])
        paused = await socket_events(socket, paused_for_input, early)
        requested = next(e for e in paused if e["method"] == "input.requested")
        respond = {"interrupt_id": requested["params"]["data"]["interrupt_id"], "response": "yes"}
        await socket.send(json.dumps({"id": 3, "method": "input.respond", "params": respond}))
        responded, early = await answer(socket, 3)
        assert responded["result"] == {}
        resumed = await socket_events(socket, terminal(), early)
        assert {e["method"] for e in paused + resumed} == {"lifecycle", "input.requested"}

        await socket.send(json.dumps({"id": 4, "method": "subscription.subscribe", "params": {"channels": ["values"]}}))
        done, replayed = await answer(socket, 4)
        assert done["result"]["replayed_events"] == len(replayed) > 1 and {e["method"] for e in replayed} == {"values"}
        assert replayed[-1]["params"]["data"]["result"] == "deploy -> yes"
        reconnect = {"channels": ["values"], "since": replayed[0]["seq"]}
        await socket.send(json.dumps({"id": 5, "method": "subscription.reconnect", "params": reconnect}))
        done, again = await answer(socket, 5)
        assert [e["event_id"] for e in again] == [e["event_id"] for e in replayed[1:]]
        assert done["result"]["replayed_events"] == len(again)

        await socket.send("{not json")
        assert (await answer(socket, None))[0] == {
            "type": "error",
            "id": None,
            "error": "invalid_argument",
            "message": "Protocol commands must be valid JSON.",
        }
        await socket.send(json.dumps({"id": "six", "method": "run.start"}))
        assert (await answer(socket, "six"))[0]["error"] == "invalid_argument"
        await socket.send(json.dumps({"id": 6, "method": "state.teleport"}))
        assert (await answer(socket, 6))[0]["error"] == "unknown_command"
        unknown = {"subscription_id": "x"}
        await socket.send(json.dumps({"id": 7, "method": "subscription.unsubscribe", "params": unknown}))
        assert (await answer(socket, 7))[0]["error"] == "no_such_subscription"
        mine = {"subscription_id": subscribed["result"]["subscription_id"]}
        await socket.send(json.dumps({"id": 8, "method": "subscription.unsubscribe", "params": mine}))
        assert (await answer(socket, 8))[0]["type"] == "success"
    with pytest.raises(ConnectionClosedError) as closed:
        async with websockets.connect(socket_url(base_url, "not-a-uuid"), open_timeout=DEADLINE) as socket:
            await asyncio.wait_for(socket.recv(), DEADLINE)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4422, "Invalid thread ID: must be a UUID")
    async with httpx.AsyncClient(base_url=base_url, timeout=DEADLINE) as http:
        no_key = await http.get(f"/threads/{thread_id}/stream/events", headers={"connection": "upgrade",
                                                                                 "upgrade": "websocket"})  # fmt: skip
    assert no_key.status_code == 400 and no_key.json() == {"detail": "missing Sec-WebSocket-Key header."}


async def test_websocket_refusals_close_with_the_status_and_reason(auth_server: ServerProcess) -> None:
    """The upgrade is checked by the HTTP route with the client's own headers: no token closes with 4401, another
    user's thread with 4404 (the SDK's transport ends the stream on such a code instead of retrying), each with the
    route's detail; the owner's socket streams the thread."""
    alice, bob = bearer(hs256(f"alice-{uuid.uuid4().hex[:6]}")), bearer(hs256(f"bob-{uuid.uuid4().hex[:6]}"))
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=DEADLINE, headers=alice) as http:
        thread_id = str(uuid.uuid4())
        await command(http, thread_id, "run.start", {"assistant_id": "agent", "input": AGENT_INPUT})
    url = socket_url(auth_server.url, thread_id)
    for headers, code, reason in (
        ({}, 4401, "Missing bearer token"),
        (bob, 4404, f"Thread with ID {thread_id} not found"),
    ):
        with pytest.raises(ConnectionClosedError) as closed:
            async with websockets.connect(url, additional_headers=headers, open_timeout=DEADLINE) as socket:
                await asyncio.wait_for(socket.recv(), DEADLINE)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
    async with httpx.AsyncClient(base_url=auth_server.url, timeout=DEADLINE) as http:
        transport = ProtocolWebSocketTransport(client=http, thread_id=thread_id, headers=bob)  # the SDK's own
        stream = transport.open_event_stream({"channels": ["lifecycle"]})
        ended = await asyncio.wait_for(stream.done, DEADLINE)
        if stream.ready.done() and not stream.ready.cancelled():
            assert stream.ready.exception() in (None, ended)  # closed before or after the SDK's subscribe went out
        assert is_non_retryable_stream_error(ended) and ended.rcvd.code == 4404  # the SDK does not retry it
        await transport.close()
    async with websockets.connect(url, additional_headers=alice, open_timeout=DEADLINE) as socket:
        await socket.send(
            json.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["lifecycle"]}})
        )
        assert root_lifecycle(await socket_events(socket, terminal()), "completed") == 1


async def test_tools_channel_with_the_sdk_tool_calls_projection(client: Any) -> None:
    """A ToolNode tool: `tools` events (tool-started with its input, tool-finished with the tool message)."""
    async with client.threads.stream(assistant_id="tool_agent") as thread:
        await thread.run.start(input=AGENT_INPUT)
        handles: list[Any] = []

        async def collect() -> None:
            async for call in thread.tool_calls:  # ends with the run
                handles.append(call)

        await asyncio.wait_for(collect(), DEADLINE)
        values = await asyncio.wait_for(thread.output, DEADLINE)
    assert len(handles) == 1
    name, tool_input, output = handles[0].name, handles[0].input, await handles[0].output
    assert (name, tool_input) == ("get_weather", {"city": "sf"})
    assert output["type"] == "tool" and output["content"] == "It's sunny in sf"
    assert output["tool_call_id"] == "call_weather_1" and "additional_kwargs" not in output
    assert values["messages"][-1]["content"][0]["text"] == ANSWER


async def test_interrupt_inside_a_subgraph_is_answered_in_its_namespace(ahttp: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    await command(ahttp, thread_id, "run.start", {"assistant_id": "nested_interrupt", "input": {"request": "x"}})
    events = await read_events(ahttp, thread_id, {"channels": ["input", "lifecycle"]}, paused_for_input)
    requested = next(e for e in events if e["method"] == "input.requested")
    namespace = requested["params"]["namespace"]
    assert len(namespace) == 1 and namespace[0].startswith("approval:")
    answer = {"interrupt_id": requested["params"]["data"]["interrupt_id"], "namespace": namespace, "response": "ok"}
    assert (await command(ahttp, thread_id, "input.respond", answer, id_=2))["result"] == {}
    values = await read_events(ahttp, thread_id, {"channels": ["values", "lifecycle"], "namespaces": [[]], "depth": 0},
                               terminal())  # fmt: skip
    assert [e for e in values if e["method"] == "values"][-1]["params"]["data"]["result"] == "x -> ok"
